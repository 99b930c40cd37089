"""`vouch verify-blob` (cosign's spelling) and `vouch verify-bundle` (the Sigstore conformance suite's):
verify a sigstore bundle over a file, or over a digest `sha256:<hex>`, offline."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated

import typer

from vouch import limits
from vouch.bundle.model import parse_bundle
from vouch.bundle.trustroot import TrustedRoot, load_trusted_root, production_trusted_root
from vouch.bundle.verify import verify_bundle
from vouch.cli.common import OutputFormat, VouchTyper, emit, err, load_verifier_keys, state
from vouch.errors import EXIT_VERIFY, InputError
from vouch.keyless.identity import identity_policy
from vouch.keyless.trust import KeylessTrust
from vouch.trust import KeyTrust

_DIGEST = re.compile(r"(sha256|sha384|sha512):[0-9a-fA-F]+")
_CHUNK = 1024 * 1024

BlobArg = Annotated[str, typer.Argument(metavar="FILE_OR_DIGEST",
                                        help="The signed file, or its digest: sha256:<hex> (sha384:, sha512:).")]
BundleOpt = Annotated[str, typer.Option("--bundle", metavar="FILE",
                                        help="The sigstore bundle (cosign sign-blob/attest-blob --bundle).")]
KeysOpt = Annotated[list[str] | None, typer.Option(
    "--key", help="Public key PEM: a file (it may hold several), env://VARIABLE, https://HOST/cosign.pub or "
                  "k8s://NAMESPACE/NAME (repeatable).")]
TrustedRootOpt = Annotated[str | None, typer.Option(
    "--trusted-root", metavar="FILE", help="trusted_root.json naming the transparency logs to accept (default: the "
                                           "Sigstore public-good root shipped with the sigstore package).")]
IgnoreTlogOpt = Annotated[bool, typer.Option(
    "--insecure-ignore-tlog", help="Do not require a transparency-log entry (bundles signed with "
                                   "--tlog-upload=false); present entries are not checked.")]
IdentityOpt = Annotated[str | None, typer.Option(
    "--certificate-identity", help="Keyless: the signer's identity (a SAN of the Fulcio certificate).")]
IdentityRegexpOpt = Annotated[str | None, typer.Option(
    "--certificate-identity-regexp", help="Keyless: a regular expression the signer's identity matches.")]
IssuerOpt = Annotated[str | None, typer.Option(
    "--certificate-oidc-issuer", help="Keyless: the OIDC issuer of the signer's identity.")]
IssuerRegexpOpt = Annotated[str | None, typer.Option(
    "--certificate-oidc-issuer-regexp", help="Keyless: a regular expression the OIDC issuer matches.")]
IgnoreSctOpt = Annotated[bool, typer.Option(
    "--insecure-ignore-sct", help="Keyless: do not require the certificate's CT log SCT.")]
OfflineOpt = Annotated[bool, typer.Option(help="Accepted for cosign compatibility; vouch verifies bundles offline.")]


def _read_bundle(path: str) -> bytes:
    try:
        with Path(path).open("rb") as f:
            return f.read(limits.MAX_ATTESTATION_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read the bundle {path}: {exc.strerror or exc}") from exc


def _artifact(target: str, algorithm: str) -> tuple[bytes | None, str | None]:
    """(bytes, None) for a file small enough to hold, else (None, its digest); (None, target) for a digest."""
    if _DIGEST.fullmatch(target) and not Path(target).exists():
        return None, target.lower()
    path = Path(target)
    try:
        with path.open("rb") as f:
            size = path.stat().st_size if path.is_file() else None
            if size is not None and size <= limits.BLOB_IN_MEMORY_BYTES:
                return f.read(limits.BLOB_IN_MEMORY_BYTES + 1), None
            h = hashlib.new(algorithm)
            while chunk := f.read(_CHUNK):
                h.update(chunk)
            return None, f"{algorithm}:{h.hexdigest()}"
    except OSError as exc:
        raise InputError(f"cannot read {target}: {exc.strerror or exc}") from exc


def _verify(ctx: typer.Context, blob: str, bundle: str, key: list[str] | None, trusted_root: str | None,
            insecure_ignore_tlog: bool, identity: tuple[str | None, str | None, str | None, str | None],
            ignore_sct: bool = False) -> None:
    st = state(ctx)
    keyless = any(v is not None for v in identity)
    if key and keyless:
        raise InputError("--key and --certificate-identity/--certificate-oidc-issuer exclude each other: a bundle is "
                         "signed with a key or with a certificate")
    if not key and not keyless:
        raise InputError("give --key (the signer's public key), or --certificate-identity and "
                         "--certificate-oidc-issuer (keyless), to verify the bundle")
    raw = _read_bundle(bundle)
    parsed = parse_bundle(raw)  # a malformed bundle is refused before anything else
    trust: KeyTrust | KeylessTrust
    root: TrustedRoot | None = None
    if keyless:
        policy = identity_policy(*identity)
        root = load_trusted_root(trusted_root) if trusted_root else production_trusted_root()
        trust = KeylessTrust(root, policy, ignore_sct=ignore_sct, ignore_tlog=insecure_ignore_tlog)
    else:
        trust = KeyTrust.of(load_verifier_keys(key or []))
        if not insecure_ignore_tlog:
            root = load_trusted_root(trusted_root) if trusted_root else production_trusted_root()
    ms = parsed.message_signature
    artifact, digest = _artifact(blob, ms.digest.algorithm if ms is not None and ms.digest is not None else "sha256")
    check = verify_bundle(parsed, artifact=artifact, artifact_digest=digest, trust=trust, trusted_root=root,
                          require_tlog=not insecure_ignore_tlog)
    if st.output != OutputFormat.text:
        emit(st, check.to_json(), "")
    if not check.ok:
        err(f"Error: {check.reason}")
        raise typer.Exit(EXIT_VERIFY)
    if insecure_ignore_tlog:
        err("WARNING: Skipping tlog verification is an insecure practice that lacks transparency and auditability "
            "verification for the blob.")
    for note in check.notes:
        err(f"  ({note})")
    err("Verified OK")


def verify_blob(ctx: typer.Context, blob: BlobArg, bundle: BundleOpt, key: KeysOpt = None,
                trusted_root: TrustedRootOpt = None, insecure_ignore_tlog: IgnoreTlogOpt = False,
                certificate_identity: IdentityOpt = None, certificate_identity_regexp: IdentityRegexpOpt = None,
                certificate_oidc_issuer: IssuerOpt = None, certificate_oidc_issuer_regexp: IssuerRegexpOpt = None,
                insecure_ignore_sct: IgnoreSctOpt = False, offline: OfflineOpt = True) -> None:
    """Verify a sigstore bundle over a file (or its digest) with a public key or, keyless, by the signer's
    identity, offline: the signature, the artifact's digest or the attestation's subject, the transparency-log
    entries and (keyless) the certificate chain, SCT and signed time against the trusted root.
    Exit 1 with the reason when it does not verify."""
    _verify(ctx, blob, bundle, key, trusted_root, insecure_ignore_tlog,
            (certificate_identity, certificate_identity_regexp, certificate_oidc_issuer,
             certificate_oidc_issuer_regexp), insecure_ignore_sct)


def verify_bundle_command(ctx: typer.Context, blob: BlobArg, bundle: BundleOpt, key: KeysOpt = None,
                          trusted_root: TrustedRootOpt = None, insecure_ignore_tlog: IgnoreTlogOpt = False,
                          certificate_identity: IdentityOpt = None,
                          certificate_identity_regexp: IdentityRegexpOpt = None,
                          certificate_oidc_issuer: IssuerOpt = None,
                          certificate_oidc_issuer_regexp: IssuerRegexpOpt = None,
                          insecure_ignore_sct: IgnoreSctOpt = False, offline: OfflineOpt = True) -> None:
    """verify-blob under the Sigstore conformance suite's name: `verify-bundle --bundle FILE --key KEY
    [--trusted-root FILE] FILE_OR_DIGEST` (exit 0: verified)."""
    _verify(ctx, blob, bundle, key, trusted_root, insecure_ignore_tlog,
            (certificate_identity, certificate_identity_regexp, certificate_oidc_issuer,
             certificate_oidc_issuer_regexp), insecure_ignore_sct)


def register(app: VouchTyper) -> None:
    app.command("verify-blob")(verify_blob)
    app.command("verify-bundle")(verify_bundle_command)
