"""The `vouch` command line: thin commands that parse flags, call the library and render output."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vouch.cli import keyless as kl
from vouch.cli.common import (
    CONTEXT_SETTINGS,
    LayoutOpt,
    NewBundleOpt,
    OutputFormat,
    State,
    VouchTyper,
    emit,
    err,
    global_options,
    load_signer,
    load_verifier_keys,
    parallel_map,
    parse_annotations,
    read_key_ref,
    ref_arg,
    run_app,
    state,
    write_layouts,
)
from vouch.cli.sbom import register as register_sbom
from vouch.cli.verify import register as register_verify
from vouch.cli.verify import verifier_trust
from vouch.errors import EXIT_VERIFY, InputError, NotFoundError, VouchError
from vouch.keys.cosign import (
    encrypt_private_key,
    generate_private_key,
    import_plain_private_key,
    public_key_pem,
)
from vouch.keys.files import check_writable, read_key_file, write_new_file
from vouch.keys.password import read_password
from vouch.oci.client import Descriptor
from vouch.oci.reference import Reference
from vouch.oci.source import ImageSource, RegistrySource, open_source, select_platform
from vouch.signing.sign import sign_image
from vouch.signing.signer import KeySigner

if TYPE_CHECKING:  # (loaded by what signs keyless: kl.SignFlags.signer)
    from vouch.keyless.sign import KeylessSigner

EXIT_CODES_HELP = """
Exit codes: 0 success; 1 a verification or policy said no; 2 bad usage or bad input
(reference, key, password, file); 3 registry or network failure; 70 internal error (a bug).
"""

app = VouchTyper(
    name="vouch",
    help="Sign container images, attach SBOM attestations and verify them — compatible with cosign.\n"
    + EXIT_CODES_HELP,
    epilog="Boolean flags also take cosign's spelling: --tlog-upload=false, --offline=true.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT_SETTINGS,
)

KeyOpt = Annotated[str, typer.Option(
    "--key", help="The cosign private key: a file, env://VARIABLE (the PEM itself) or k8s://NAMESPACE/NAME.")]
PublicKeysOpt = Annotated[list[str], typer.Option(
    "--key", help="Public key PEM: a file (it may hold several), env://VARIABLE, https://HOST/cosign.pub or "
                  "k8s://NAMESPACE/NAME (repeatable).")]
YesOpt = Annotated[bool, typer.Option(
    "--yes", "-y", help="Accepted for cosign compatibility: vouch never asks for confirmation.")]
TlogOpt = Annotated[bool | None, typer.Option(
    "--tlog-upload/--no-tlog-upload", show_default=False,
    help="Only --tlog-upload=false is accepted (cosign's spelling): vouch does not upload to Rekor in key mode.")]


app.callback()(global_options)  # -o/--output, -v, --insecure-registry, --ca-file, --version


# ---- registry basics ------------------------------------------------------------------------


ImageArg = Annotated[str, typer.Argument(help="Image reference or source spec.")]
PlatformOpt = Annotated[str | None, typer.Option(help="os/arch or os/arch/variant to pick from an index.")]


def _resolve(st: State, image: str, platform: str | None) -> tuple[ImageSource, Descriptor]:
    src = open_source(image, st.client())
    desc = src.resolve()
    if platform:
        desc = select_platform(src.manifest(desc.digest), platform)
    return src, desc


@app.command()
def digest(ctx: typer.Context, image: ImageArg, platform: PlatformOpt = None) -> None:
    """Print the digest an image reference resolves to."""
    st = state(ctx)
    _, desc = _resolve(st, image, platform)
    emit(st, {"digest": desc.digest, "mediaType": desc.media_type, "size": desc.size}, desc.digest)


@app.command()
def manifest(ctx: typer.Context, image: ImageArg, platform: PlatformOpt = None) -> None:
    """Print an image's manifest exactly as stored (digest-checked)."""
    src, desc = _resolve(state(ctx), image, platform)
    sys.stdout.write(src.manifest(desc.digest).raw.decode() + "\n")


@app.command()
def copy(ctx: typer.Context,
         src: Annotated[str, typer.Argument(help="Source: REF, oci:DIR[:TAG], oci-archive:FILE[:TAG], "
                                                 "docker-archive:FILE.")],
         dst: Annotated[str, typer.Argument(help="Destination: a registry reference or oci:DIR[:TAG] (an OCI "
                                                 "layout directory, made when missing).")],
         only: Annotated[str | None, typer.Option(
             help="Copy only these attachments with the image, comma separated: sig, att, sbom, bundle (cosign's "
                  "--only; default: all). 'none': the image alone.")] = None) -> None:
    """Copy an image or a whole multi-arch index between registries and OCI layout directories, digests
    preserved, with its signatures, attestations, SBOMs and sigstore bundles (as `cosign copy`; from and to
    `oci:` as `cosign save`/`load`). What the destination already holds is kept: its tags are merged, never
    replaced. Attachments are read where COSIGN_REPOSITORY says and written beside the copied image."""
    from vouch.cli.save import copy_command
    from vouch.store.copy import ALL

    st = state(ctx)
    kinds = tuple(k.strip() for k in only.split(",") if k.strip()) if only is not None else ALL
    if kinds == ("none",):
        kinds = ()
    bad = [k for k in kinds if k not in ALL]
    if bad:
        raise InputError(f"--only {bad[0][:40]!r}: write a comma-separated list of sig, att, sbom, bundle (or none)")
    copy_command(st, src, dst, kinds, explicit=only is not None)


# ---- keys -------------------------------------------------------------------------------------


@app.command("generate-key-pair")
def generate_key_pair(
    ctx: typer.Context,
    output_key_prefix: Annotated[str, typer.Option(help="Write PREFIX.key and PREFIX.pub.")] = "cosign",
    force: Annotated[bool, typer.Option(help="Overwrite existing key files.")] = False,
) -> None:
    """Generate an ECDSA P-256 key pair in cosign's encrypted format (password: COSIGN_PASSWORD,
    else prompted, else stdin)."""
    st = state(ctx)
    priv_path, pub_path = _write_key_pair(output_key_prefix, generate_private_key, force)
    emit(st, {"privateKey": str(priv_path), "publicKey": str(pub_path)}, "")


def _write_key_pair(prefix: str, make_key: Callable[[], Any], force: bool) -> tuple[Path, Path]:
    """PREFIX.key (encrypted, 0600) and PREFIX.pub; refuses to overwrite either without force."""
    priv_path, pub_path = Path(f"{prefix}.key"), Path(f"{prefix}.pub")
    if not force:
        for p in (priv_path, pub_path):
            if p.exists():
                raise InputError(f"{p} already exists; pass --force to overwrite it")
    key = make_key()
    password = read_password(confirm=True)
    existed = priv_path.exists()
    write_new_file(priv_path, encrypt_private_key(key, password), 0o600, force)
    try:
        write_new_file(pub_path, public_key_pem(key), 0o644, force)
    except VouchError:
        if not existed:  # no lone private key left behind by this run
            priv_path.unlink(missing_ok=True)
        raise
    err(f"Private key written to {priv_path}\nPublic key written to {pub_path}")
    return priv_path, pub_path


@app.command("public-key")
def public_key(ctx: typer.Context, key: KeyOpt,
               outfile: Annotated[str | None, typer.Option(help="Write to this file instead of stdout.")] = None,
               ) -> None:
    """Print the public key of a cosign private key."""
    pub = public_key_pem(load_signer(key).public_key)
    if outfile:
        write_new_file(Path(outfile), pub, 0o644, force=True)
    else:
        sys.stdout.write(pub.decode())


@app.command("import-key-pair")
def import_key_pair(
    ctx: typer.Context,
    key: Annotated[str, typer.Option("--key", help="Unencrypted PEM EC P-256 key (PKCS#8 or SEC1).")],
    output_key_prefix: Annotated[str, typer.Option(help="Write PREFIX.key and PREFIX.pub.")] = "import-cosign",
    force: Annotated[bool, typer.Option(help="Overwrite existing key files.")] = False,
) -> None:
    """Import a plain PEM EC key and write it in cosign's encrypted format."""
    priv = import_plain_private_key(read_key_file(key))
    _write_key_pair(output_key_prefix, lambda: priv, force)


# ---- sign / verify ------------------------------------------------------------------------------


@app.command()
def sign(
    ctx: typer.Context,
    images: Annotated[list[str], typer.Argument(help="Images to sign (digests preferred).")],
    key: Annotated[str | None, typer.Option(
        "--key", help="The cosign private key: a file, env://VARIABLE (the PEM itself) or k8s://NAMESPACE/NAME. "
                      "Without it, keyless (a Fulcio certificate for the OIDC identity token).")] = None,
    annotations: Annotated[list[str] | None, typer.Option("--annotations", "-a",
                                                          help="key=value added to the payload.")] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r",
                                            help="For an index, sign every child too.")] = False,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Images handled in parallel.")] = 4,
    yes: YesOpt = False,
    tlog_upload: TlogOpt = None,
    output_signature: Annotated[str | None, typer.Option(
        metavar="FILE", help="Write the base64 signature here (several images or --recursive: FILE-sha256-<hex> "
                             "for each, as cosign).")] = None,
    output_payload: Annotated[str | None, typer.Option(
        metavar="FILE", help="Write the signed payload here (named as --output-signature).")] = None,
    output_certificate: Annotated[str | None, typer.Option(
        metavar="FILE", help="Write the signer's public key PEM here (what cosign writes in key mode; a "
                             "certificate comes with keyless signing).")] = None,
    new_bundle_format: NewBundleOpt = False,
    layout: LayoutOpt = None,
    identity_token: kl.IdentityTokenOpt = None,
    fulcio_url: kl.FulcioUrlOpt = None,
    rekor_url: kl.RekorUrlOpt = None,
    signing_config: kl.SigningConfigOpt = None,
    trust_config: kl.TrustConfigOpt = None,
    trusted_root: kl.TrustedRootOpt = None,
    oidc_issuer: kl.OidcIssuerOpt = None,
) -> None:
    """Sign images in cosign's tag layout (sha256-<hex>.sig), or with --new-bundle-format as a sigstore
    bundle referrer (cosign 3's default). With --key, a cosign key pair; without, keyless: a Fulcio
    certificate for the OIDC identity, each signature logged in Rekor. Re-signing is a no-op (keyless: a
    valid signature by the same identity is enough)."""
    st = state(ctx)
    keyless_flags = kl.SignFlags(identity_token, fulcio_url, rekor_url, signing_config, trust_config, trusted_root)
    ann = parse_annotations(annotations)
    refs = [ref_arg(i) for i in images]
    for out in (output_signature, output_payload, output_certificate):
        if out:
            check_writable(Path(out))
    signer = kl.choose_signer(key, keyless_flags, tlog_upload)
    layouts = write_layouts(new_bundle_format, layout)
    per_image = parallel_map(lambda ref: sign_image(st.client(), signer, ref, ann, recursive, warn=err,
                                                    layouts=layouts), refs, concurrency)
    results = [r for rs in per_image for r in rs]
    for r in results:
        err(("Pushing signature to: " if r.signed else "Already signed (no change): ") + r.signature_tag)
    if output_signature or output_payload:
        several = recursive or len(results) > 1
        for r in results:
            suffix = "-" + r.digest.replace(":", "-", 1) if several else ""
            if output_signature:
                write_new_file(Path(output_signature + suffix), r.signature.encode(), 0o644, force=True)
            if output_payload:
                write_new_file(Path(output_payload + suffix), r.payload, 0o644, force=True)
    if output_certificate:
        pem = signer.public_pem() if isinstance(signer, KeySigner) else signer.certificate_pem()
        write_new_file(Path(output_certificate), pem, 0o644, force=True)
    emit(st, [r.to_json() for r in results], "")


_verifier_trust = verifier_trust  # (verify-attestation, verify-release, query)
register_verify(app)  # verify: vouch.cli.verify (the entry point starts it without this module)


# ---- SBOM -----------------------------------------------------------------------------------------


register_sbom(app)  # sbom: vouch.cli.sbom (the entry point starts it without this module)


# ---- attestations --------------------------------------------------------------------------------


def _attest(st: State, signer: KeySigner | KeylessSigner, ref: Reference, predicate: object, type_uri: str,
            replace: bool, allow_other_subject: bool = False,
            layouts: tuple[str, ...] = ("legacy",)) -> list[dict[str, object]]:
    from vouch.signing.attest import attest_image

    results = attest_image(st.client(), signer, ref, predicate, type_uri, replace, allow_other_subject, layouts)
    for r in results:
        err(("Pushing attestation to: " if r.attached else "Identical attestation already attached: ") + r.tag
            + (f" (replaced {r.replaced})" if r.replaced else ""))
    return [r.to_json() for r in results]


@app.command()
def attest(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(help="Image to attest (digest preferred).")],
    predicate: Annotated[str, typer.Option("--predicate", help="Predicate JSON file ('-' for stdin).")],
    key: Annotated[str | None, typer.Option(
        "--key", help="The cosign private key: a file, env://VARIABLE or k8s://NAMESPACE/NAME. Without it, "
                      "keyless.")] = None,
    type_: Annotated[str, typer.Option("--type", help="cyclonedx, spdxjson, slsaprovenance, slsaprovenance1, "
                                                      "openvex, vuln, custom, or a URI.")] = "custom",
    replace: Annotated[bool, typer.Option(help="Drop older attestations of the same predicate type.")] = False,
    allow_other_subject: Annotated[bool, typer.Option(
        help="Attest a CycloneDX BOM whose metadata.component names another image's digest (verifiers still "
             "refuse it as that image's SBOM).")] = False,
    yes: YesOpt = False,
    tlog_upload: TlogOpt = None,
    new_bundle_format: NewBundleOpt = False,
    layout: LayoutOpt = None,
    identity_token: kl.IdentityTokenOpt = None,
    fulcio_url: kl.FulcioUrlOpt = None,
    rekor_url: kl.RekorUrlOpt = None,
    signing_config: kl.SigningConfigOpt = None,
    trust_config: kl.TrustConfigOpt = None,
    trusted_root: kl.TrustedRootOpt = None,
) -> None:
    """Attach a signed in-toto attestation in cosign's layout (sha256-<hex>.att), or with
    --new-bundle-format as a sigstore bundle referrer (cosign 3's default); with --key or keyless."""
    from vouch.signing.attestation import predicate_type_uri

    st = state(ctx)
    flags = kl.SignFlags(identity_token, fulcio_url, rekor_url, signing_config, trust_config, trusted_root)
    ref = ref_arg(image)
    type_uri = predicate_type_uri(type_)
    from vouch import limits
    from vouch.signing.payload import loads_json

    if predicate == "-":
        data = sys.stdin.buffer.read(limits.MAX_INPUT_FILE_BYTES + 1)
        if len(data) > limits.MAX_INPUT_FILE_BYTES:
            raise InputError(f"the predicate on stdin is larger than {limits.MAX_INPUT_FILE_BYTES} bytes; refusing it")
    else:
        data = read_key_file(predicate)
    try:
        pred = loads_json(data)
    except ValueError as exc:
        raise InputError(f"predicate {predicate} is not valid JSON") from exc
    signer = kl.choose_signer(key, flags, tlog_upload)
    if ref.digest is None:
        err(f"WARNING: {ref} uses a tag, not a digest; attesting the digest it resolves to now")
    layouts = write_layouts(new_bundle_format, layout)
    results = _attest(st, signer, ref, pred, type_uri, replace, allow_other_subject, layouts)
    emit(st, results[0] if len(results) == 1 else results, "")


@app.command("attest-sbom")
def attest_sbom(
    ctx: typer.Context,
    images: Annotated[list[str], typer.Argument(help="Images to SBOM and attest.")],
    key: Annotated[str | None, typer.Option(
        "--key", help="The cosign private key: a file, env://VARIABLE or k8s://NAMESPACE/NAME. Without it, "
                      "keyless.")] = None,
    platform: Annotated[str | None, typer.Option(
        help="For an index: only this os/arch (its SBOM attached to its own digest). Default: every platform "
             "image gets its own SBOM and the index a BOM merged from them.")] = None,
    replace: Annotated[bool, typer.Option(help="Replace older attestations of the same format (default); the "
                                               "other format's stay.")] = True,
    files: Annotated[bool, typer.Option(help="Include per-package file lists (larger).")] = False,
    format_: Annotated[list[str] | None, typer.Option(
        "--format", metavar="cyclonedx-json|spdx-json",
        help="The SBOM format to attest (repeatable: both from one scan). cyclonedx-json is attached as "
             "https://cyclonedx.org/bom (cosign --type cyclonedx), spdx-json as https://spdx.dev/Document (cosign "
             "--type spdxjson), side by side on the digest. Default cyclonedx-json.")] = None,
    yes: YesOpt = False,
    tlog_upload: TlogOpt = None,
    new_bundle_format: NewBundleOpt = False,
    layout: LayoutOpt = None,
    identity_token: kl.IdentityTokenOpt = None,
    fulcio_url: kl.FulcioUrlOpt = None,
    rekor_url: kl.RekorUrlOpt = None,
    signing_config: kl.SigningConfigOpt = None,
    trust_config: kl.TrustConfigOpt = None,
    trusted_root: kl.TrustedRootOpt = None,
) -> None:
    """Generate the SBOM of each image's exact digest and attach it as an attestation (with --key or keyless),
    CycloneDX and/or SPDX from one scan; for a multi-arch index, each platform image's own SBOM on its digest
    and the merged CycloneDX BOM on the index (the index gets no merged SPDX document)."""
    from vouch.oci import mediatypes as mt
    from vouch.oci.source import select_platform
    from vouch.release.multiarch import merge_platform_boms, platform_children, platform_of
    from vouch.sbom.formats import CYCLONEDX_JSON, encoder
    from vouch.sbom.fsview import ViewOptions
    from vouch.sbom.generate import generate_sbom

    st = state(ctx)
    refs = [ref_arg(i) for i in images]
    encoders = list({e.name: e for e in (encoder(f) for f in (format_ or [CYCLONEDX_JSON.name]))}.values())
    signer = kl.choose_signer(key, kl.SignFlags(identity_token, fulcio_url, rekor_url, signing_config, trust_config,
                                                trusted_root), tlog_upload)
    layouts = write_layouts(new_bundle_format, layout)
    cdx = CYCLONEDX_JSON.predicate_type
    with_cdx = CYCLONEDX_JSON in encoders
    out: list[dict[str, Any]] = []
    options = ViewOptions(file_digests=files and any(e.needs_file_digests for e in encoders))

    def one(ref: Reference, digest: str, plat: str) -> dict[str, Any]:
        pinned = ref.with_digest(digest)
        result = generate_sbom(RegistrySource(st.client(), pinned), None, digest=digest, options=options)
        cdx_bom: dict[str, Any] = {}
        for enc in encoders:
            doc = json.loads(result.to_json(files_detail=files, format=enc.name))
            if enc is CYCLONEDX_JSON:
                cdx_bom = doc
            out.extend({**r, "packages": len(result.packages), "platform": plat, "format": enc.name}
                       for r in _attest(st, signer, pinned, doc, enc.predicate_type, replace, layouts=layouts))
        return cdx_bom

    for ref in refs:
        desc = st.client().resolve(ref)
        if not mt.is_index(desc.media_type):
            one(ref, desc.digest, platform or "")
            continue
        index = st.client().get_manifest(ref.with_digest(desc.digest))
        if platform:
            child = select_platform(index, platform)
            one(ref, child.digest, platform_of(child))
            continue
        parts = [(platform_of(c), c.digest, one(ref, c.digest, platform_of(c))) for c in platform_children(index)]
        if not parts:
            raise InputError(f"index {ref.name}@{desc.digest} lists no platform image")
        if not with_cdx:
            err(f"note: {ref.name}@{desc.digest} is an index: its platform images got their SPDX documents; the "
                "index's merged BOM is CycloneDX only (add --format cyclonedx-json)")
            continue
        merged = merge_platform_boms(ref.name, desc.digest, parts,
                                     dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00"))
        out.extend({**r, "packages": len(merged["components"]), "platform": "index", "format": CYCLONEDX_JSON.name}
                   for r in _attest(st, signer, ref.with_digest(desc.digest), merged, cdx, replace, layouts=layouts))
    emit(st, out, "")


@app.command("verify-attestation")
def verify_attestation(
    ctx: typer.Context,
    images: Annotated[list[str], typer.Argument(help="Images to check.")],
    key: Annotated[list[str] | None, typer.Option(
        "--key", help="Public key PEM (repeatable). Without it, keyless: --certificate-identity and "
                      "--certificate-oidc-issuer.")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Predicate type to require (short name or URI).")]
    = "custom",
    max_age: Annotated[str | None, typer.Option(
        help="Refuse CycloneDX SBOMs older than this (90d, 2160h) by their metadata.timestamp.")] = None,
    insecure_ignore_tlog: Annotated[bool, typer.Option(
        "--insecure-ignore-tlog", help="Accepted for cosign compatibility; vouch never contacts Rekor.")] = False,
    offline: Annotated[bool, typer.Option(help="Accepted for cosign compatibility.")] = True,
    certificate_identity: kl.IdentityOpt = None,
    certificate_identity_regexp: kl.IdentityRegexpOpt = None,
    certificate_oidc_issuer: kl.IssuerOpt = None,
    certificate_oidc_issuer_regexp: kl.IssuerRegexpOpt = None,
    certificate_extension: kl.CiExtensionsOpt = None,
    trusted_root: kl.TrustedRootOpt = None,
    insecure_ignore_sct: kl.IgnoreSctOpt = False,
) -> None:
    """Verify attestations (made with a key, or keyless by the signer's identity): DSSE signature, payload
    type, subject digest, and SBOM freshness. stdout: each verified envelope, one JSON per line, as cosign
    prints them."""
    from vouch.signing.attestation import predicate_type_uri
    from vouch.verify.attestations import verify_attestations
    from vouch.verify.bomfacts import parse_age

    st = state(ctx)
    refs = [ref_arg(i) for i in images]
    keys = _verifier_trust(key, (certificate_identity, certificate_identity_regexp, certificate_oidc_issuer,
                                 certificate_oidc_issuer_regexp), trusted_root, insecure_ignore_sct,
                           insecure_ignore_tlog, certificate_extension)
    type_uri = predicate_type_uri(type_) if type_ else None
    age = parse_age(max_age) if max_age else None
    results = [verify_attestations(st.client(), ref, keys, type_uri, age) for ref in refs]
    _sbom_ages(results, age)
    for r in results:
        for p in r.problems()[:20]:
            err(f"  refused {p}")
        if len(r.problems()) > 20:
            err(f"  … and {len(r.problems()) - 20} more refused layer(s)")
        if r.skipped:
            err(f"  (not read: {r.skipped})")
        if r.ok:
            err(f"Verification for {r.image} --\nThe following checks were performed on each of these "
                "attestations:\n  - The signatures were verified against the specified public key\n"
                "  - The statement subject matches the image digest" + ("\n  - The SBOM is younger than "
                                                                       f"{max_age}" if max_age else ""))
        else:
            err(f"Error: {r.image}: {r.reason()}")
    if st.output == OutputFormat.json:
        emit(st, [{"image": r.image, "verified": r.ok, "reason": "" if r.ok else r.reason(),
                   "attestations": [{"layer": c.layer_digest, "ok": c.ok, "reason": c.reason,
                                     "predicateType": c.predicate_type, "keyId": c.key_id,
                                     "ageSeconds": c.age.total_seconds() if c.age else None}
                                    for c in r.checks]} for r in results], "")
    else:
        for r in results:
            for c in r.verified:
                assert c.envelope is not None
                sys.stdout.write(c.envelope.decode().strip() + "\n")
    if any(not r.ok for r in results):
        raise typer.Exit(EXIT_VERIFY)


def _sbom_ages(results: list[Any], max_age: dt.timedelta | None) -> None:
    """Every verified SBOM statement of either format (CycloneDX, SPDX) gets its age, and --max-age refuses
    an SPDX document older than it by its creationInfo.created, as the policy does CycloneDX's timestamp."""
    from vouch.verify.bomfacts import SPDX_TYPE, bom_time, sbom_age_problem

    now = dt.datetime.now(dt.UTC)
    for r in results:
        for c in r.verified:
            if c.statement is None or c.statement.get("predicateType") != SPDX_TYPE:
                continue
            predicate = c.statement.get("predicate")
            if isinstance(predicate, str):  # cosign --type spdx: the document as a JSON string
                try:
                    predicate = json.loads(predicate)
                except ValueError:
                    predicate = None
            ts, _ = bom_time(predicate)
            c.age = now - ts if ts is not None else None
            if max_age is not None and (problem := sbom_age_problem(predicate, now, max_age)):
                c.ok, c.reason, c.envelope = False, problem, None


download_app = VouchTyper(help="Download attestations or the attached SBOM.", no_args_is_help=True)
app.add_typer(download_app, name="download")
from vouch.cli.blob import register; register(app)  # noqa: E402, E702, I001 (verify-blob, verify-bundle)
from vouch.cli.query import register as register_query; register_query(app)  # noqa: E402, E702, I001 (query, diff)
from vouch.cli.tree import register as register_tree; register_tree(app)  # noqa: E402, E702, I001 (tree, download signature)


@download_app.command("attestation")
def download_attestation(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument()],
    predicate_type: Annotated[str | None, typer.Option(help="Only this predicate type (short name or URI).")]
    = None,
) -> None:
    """Print every attestation envelope of IMAGE, one JSON per line (as cosign does)."""
    from vouch.signing.attestation import predicate_type_uri
    from vouch.store.attest import attestation_envelopes

    st = state(ctx)
    ref = ref_arg(image)
    digest = st.client().resolve(ref).digest
    want = predicate_type_uri(predicate_type) if predicate_type else None
    found = 0
    for ptype, raw in attestation_envelopes(st.client(), ref, digest):
        if want is not None and ptype != want:
            continue
        sys.stdout.write(raw.decode().strip() + "\n")
        found += 1
    if not found:
        raise NotFoundError(f"no attestation{' of type ' + want if want else ''} on {ref.name}@{digest}")


@download_app.command("sbom")
def download_sbom(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument()],
    key: Annotated[list[str] | None, typer.Option(
        "--key", help="Print only an SBOM whose attestation verifies with this public key (repeatable): signature, "
                      "subject digest, the BOM's own metadata.component, timestamp.")] = None,
    max_age: Annotated[str | None, typer.Option(help="With --key: refuse an SBOM older than this (90d).")] = None,
    format_: Annotated[str, typer.Option(
        "--format", metavar="cyclonedx-json|spdx-json",
        help="Which attested SBOM: the CycloneDX one (https://cyclonedx.org/bom) or the SPDX one "
             "(https://spdx.dev/Document).")] = "cyclonedx-json",
) -> None:
    """Print the SBOM attested on IMAGE (the predicate of its newest attestation of that format: CycloneDX by
    default, SPDX with --format spdx-json). Without --key the attestation is not verified (as `cosign
    download`): pass --key for evidence."""
    import contextlib

    from vouch.sbom.formats import encoder

    st = state(ctx)
    ref = ref_arg(image)
    enc = encoder(format_)
    if key:
        from vouch.verify.attestations import verify_attestations
        from vouch.verify.bomfacts import parse_age

        age = parse_age(max_age) if max_age else None
        res = verify_attestations(st.client(), ref, load_verifier_keys(key), enc.predicate_type, age)
        _sbom_ages([res], age)
        if not res.ok:
            err(f"Error: {res.image}: {res.reason()}")
            raise typer.Exit(EXIT_VERIFY)
        newest = max(res.verified, key=lambda c: -(c.age.total_seconds() if c.age else 0.0))
        assert newest.statement is not None
        doc = newest.statement.get("predicate")
        if isinstance(doc, str):  # cosign --type spdx: the document as a JSON string
            with contextlib.suppress(ValueError):
                doc = json.loads(doc)
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    if max_age:
        raise InputError("--max-age needs --key: an unverified SBOM's age is not evidence")
    from vouch.store.attest import attested_bom

    digest, predicate = attested_bom(st.client(), ref, enc.predicate_type)
    if predicate is None:
        what = "CycloneDX" if enc.cosign_type == "cyclonedx" else "SPDX"
        raise NotFoundError(f"no {what} attestation on {ref.name}@{digest}")
    sys.stdout.write(json.dumps(predicate, indent=2) + "\n")


dtrack_app = VouchTyper(help="Dependency-Track.", no_args_is_help=True)
app.add_typer(dtrack_app, name="dtrack")


@dtrack_app.command("upload")
def dtrack_upload(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Argument(
        help="A BOM file, or an image (its attested SBOM, else a fresh one). Or --manifest.")] = None,
    url: Annotated[str, typer.Option(help="Dependency-Track base URL.")] = "",
    project: Annotated[str | None, typer.Option(help="Project name (one BOM).")] = None,
    version: Annotated[str | None, typer.Option(
        help="Project version (default with --manifest: the manifest's `release:`).")] = None,
    manifest: Annotated[str | None, typer.Option(
        help="release.yaml: one project per image (and platform) under --parent, version = the release; only "
             "verified, fresh SBOMs are uploaded (--key or keyless identity flags).")] = None,
    parent: Annotated[str | None, typer.Option(
        help="With --manifest: the parent project's name (its version is the release's).")] = None,
    latest: Annotated[bool, typer.Option(
        "--latest", help="Mark projects created by this upload as their latest version (isLatest).")] = False,
    auto_create: Annotated[bool, typer.Option(help="Create the project if it does not exist.")] = False,
    wait: Annotated[bool, typer.Option(help="Wait until Dependency-Track has processed the BOM.")] = True,
    key: Annotated[list[str] | None, typer.Option(
        "--key", help="With --manifest: public key PEM (repeatable) the SBOM attestations must verify with.")]
    = None,
    max_age: Annotated[str, typer.Option("--max-age", help="With --manifest: older SBOMs are not uploaded.")]
    = "90d",
    certificate_identity: kl.IdentityOpt = None,
    certificate_identity_regexp: kl.IdentityRegexpOpt = None,
    certificate_oidc_issuer: kl.IssuerOpt = None,
    certificate_oidc_issuer_regexp: kl.IssuerRegexpOpt = None,
    certificate_extension: kl.CiExtensionsOpt = None,
    trusted_root: kl.TrustedRootOpt = None,
) -> None:
    """Upload a CycloneDX BOM to Dependency-Track (API key from DTRACK_API_KEY); with --manifest a whole
    release: one project per image under a parent project, a BOM already uploaded (same serialNumber and
    version) skipped, processing waited for. Exit 1 when an image had no verified SBOM, 3 on a fault."""
    import os

    from vouch.dtrack import DTrack, upload_bom, upload_release

    st = state(ctx)
    if not url:
        raise InputError("give --url, the Dependency-Track base URL")
    status = (lambda m: err(f"  {m}")) if sys.stderr.isatty() or st.verbose else None
    if manifest:
        from vouch.query.sboms import release_boms
        from vouch.release.plan import load_manifest
        from vouch.verify.bomfacts import parse_age

        if source or project:
            raise InputError("--manifest uploads every image of the release: give no BOM file, image or --project")
        if not parent:
            raise InputError("--manifest needs --parent NAME: the project the release's images go under")
        rel = load_manifest(manifest)
        version = version or rel.name
        if not version:
            raise InputError(f"release manifest {manifest} has no `release:` name: give --version")
        keys = _verifier_trust(key, (certificate_identity, certificate_identity_regexp, certificate_oidc_issuer,
                                     certificate_oidc_issuer_regexp), trusted_root, extensions=certificate_extension)
        api_key = os.environ.get("DTRACK_API_KEY", "")
        boms = release_boms(st.client(), keys, rel.images, parse_age(max_age))
        items = [(_dtrack_project(b.image, b.platform), b.digest, b.bom) for b in boms if b.bom is not None]
        with DTrack(url, api_key) as dt:
            parent_project, results = upload_release(dt, parent, version, items, auto_create, latest, wait, status)
        rows: list[dict[str, Any]] = [r.to_json() for r in results] + [
            {"project": _dtrack_project(b.image, b.platform), "digest": b.digest, "status": "not uploaded",
             "reason": b.problem} for b in boms if b.bom is None]
        doc = {"parent": {"name": parent, "version": version, "uuid": parent_project.get("uuid")}, "images": rows}
        for r in rows:
            err(f"  {r['project']}: {r['status']}" + (f" ({r['reason']})" if r.get("reason") else ""))
        counts = {s: sum(1 for r in rows if r["status"] == s)
                  for s in ("processed", "uploaded", "skipped", "not uploaded")}
        err(f"Dependency-Track {parent} {version}: {counts['processed'] + counts['uploaded']} uploaded"
            + (" and processed" if wait else "") + f", {counts['skipped']} already there (skipped), "
            f"{counts['not uploaded']} not uploaded")
        emit(st, doc, "")
        if any(r.exit_code == 3 for r in results) or any(b.exit_code == 3 for b in boms if b.bom is None):
            raise typer.Exit(3)
        if counts["not uploaded"]:
            raise typer.Exit(1)
        return
    if not source or not project or not version:
        raise InputError("give a BOM file or image with --project and --version, or --manifest release.yaml "
                         "--parent NAME")
    path = Path(source)
    if path.is_file():
        bom = read_key_file(source)  # bounded read (limits.MAX_INPUT_FILE_BYTES)
    else:
        from vouch.sbom.generate import generate_sbom
        from vouch.store.attest import attested_bom

        ref = ref_arg(source)
        digest, predicate = attested_bom(st.client(), ref)
        if predicate is not None:
            bom = json.dumps(predicate).encode()
            err(f"Uploading the CycloneDX SBOM attested on {ref.name}@{digest} (its signature is not checked "
                "here: verify-attestation does that; --manifest uploads verified SBOMs only)")
        else:
            generated = generate_sbom(RegistrySource(st.client(), ref.with_digest(digest)), digest=digest)
            bom = generated.to_json().encode()
            err(f"No CycloneDX SBOM is attested on {ref.name}@{digest}: generated one now "
                f"({len(generated.packages)} packages) and uploading it")
    result = upload_bom(url, os.environ.get("DTRACK_API_KEY", ""), project, version, bom, auto_create, wait,
                        progress=status)
    err(f"Uploaded to Dependency-Track: {project} {version} (token {result['token']}"
        + (", processed)" if result["processed"] else ")"))
    emit(st, result, "")


def _dtrack_project(image: str, platform: str) -> str:
    """An image's project: its repository path (the registry left out: a copy is the same image), with the
    platform for each platform image of an index."""
    repo = image.split("/", 1)[1] if "/" in image and ("." in image.split("/", 1)[0]
                                                        or ":" in image.split("/", 1)[0]
                                                        or image.split("/", 1)[0] == "localhost") else image
    return f"{repo} [{platform}]" if platform and platform != "index" else repo


# ---- release (vouch.cli.release) -------------------------------------------------------------------

from vouch.cli.release_fast import release_images  # noqa: E402, I001  (verify-release reads the same plan)
from vouch.cli.release import register as register_release; register_release(app)  # noqa: E402, E702


@app.command("verify-release")
def verify_release_cmd(
    ctx: typer.Context,
    images: Annotated[list[str] | None, typer.Argument(help="Images (or use --manifest).")] = None,
    key: Annotated[list[str] | None, typer.Option(
        "--key", help="Public key PEM: a file (bundles ok), env://VARIABLE, https://HOST/cosign.pub or "
                      "k8s://NAMESPACE/NAME (repeatable).")] = None,
    manifest: Annotated[str | None, typer.Option(help="release.yaml.")] = None,
    max_age: Annotated[str, typer.Option(help="Oldest acceptable SBOM.")] = "90d",
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = 4,
    certificate_identity: kl.IdentityOpt = None,
    certificate_identity_regexp: kl.IdentityRegexpOpt = None,
    certificate_oidc_issuer: kl.IssuerOpt = None,
    certificate_oidc_issuer_regexp: kl.IssuerRegexpOpt = None,
    certificate_extension: kl.CiExtensionsOpt = None,
    trusted_root: kl.TrustedRootOpt = None,
) -> None:
    """The CI gate: every image signed (by --key, or keyless by the identity) and with a fresh SBOM
    attestation; else exit 1 and what is missing."""
    from rich.console import Console
    from rich.table import Table

    from vouch.release.run import verify_release
    from vouch.verify.bomfacts import parse_age

    st = state(ctx)
    plan = release_images(manifest, images)
    keys = _verifier_trust(key, (certificate_identity, certificate_identity_regexp, certificate_oidc_issuer,
                                 certificate_oidc_issuer_regexp), trusted_root, extensions=certificate_extension)
    gates = verify_release(st.client(), keys, plan, parse_age(max_age), concurrency)
    bad = [g for g in gates if not g.ok]
    table = Table(title=f"verify-release: {len(gates) - len(bad)}/{len(gates)} digests pass")
    for col in ("image", "platform", "digest", "signature", "sbom", "layouts"):
        table.add_column(col, overflow="fold")
    for g in gates:
        where = " ".join(f"{what}:{'+'.join(ls)}" for what, ls in g.layouts.items() if ls)
        table.add_row(g.image, g.platform or "-", g.digest[7:19], g.signature, g.sbom, where or "-")
    Console(stderr=True, width=max(120, Console(stderr=True).width)).print(table)
    emit(st, [g.__dict__ for g in gates], "")
    if bad:
        raise typer.Exit(max(g.exit_code for g in bad))


keys_app = VouchTyper(help="Signing keys in Kubernetes.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


PRIVATE_SECRET_WARNING = (
    "warning: the manifest on stdout holds the (encrypted) private key and its password: commit it only sealed "
    "(SealedSecrets, SOPS), never as plain YAML; the public key alone is --public-key-out")


@keys_app.command("init")
def keys_init(
    ctx: typer.Context,
    namespace: Annotated[str, typer.Option(help="Namespace of the Secret.")] = "harbor",
    secret: Annotated[str, typer.Option(help="Secret name.")] = "akko-cosign-keys",
    apply: Annotated[bool, typer.Option(help="Create the Secret through the Kubernetes API (kubeconfig).")]
    = False,
    public_key_out: Annotated[str | None, typer.Option(help="Also write cosign.pub here (the Helm chart's copy).")]
    = None,
) -> None:
    """Generate a key pair and print its Secret manifest (GitOps) or create the Secret (--apply).
    Password: COSIGN_PASSWORD if set, else a random one stored in the Secret (as cosign.password)."""
    import os
    import secrets as pysecrets

    import yaml

    from vouch.keys.k8s import KubeClient, secret_manifest

    env = os.environ.get("COSIGN_PASSWORD")
    password = env.encode() if env is not None else pysecrets.token_urlsafe(32).encode()
    key = generate_private_key()
    manifest = secret_manifest(namespace, secret, encrypt_private_key(key, password), public_key_pem(key), password)
    if apply:
        KubeClient.from_kubeconfig().create_secret(manifest)
        err(f"Secret {namespace}/{secret} created (immutable); sign with --key k8s://{namespace}/{secret}")
    else:
        err(PRIVATE_SECRET_WARNING)
        st = state(ctx)
        if st.output == OutputFormat.json:
            sys.stdout.write(json.dumps(manifest, indent=2) + "\n")
        else:  # text and yaml: the manifest as kubectl applies it
            sys.stdout.write(yaml.safe_dump(manifest, sort_keys=False))
    if public_key_out:
        write_new_file(Path(public_key_out), public_key_pem(key), 0o644, force=True)
        err(f"Public key written to {public_key_out}")


@keys_app.command("rotate")
def keys_rotate(
    ctx: typer.Context,
    namespace: Annotated[str, typer.Option(help="Namespace of the Secret.")] = "harbor",
    secret: Annotated[str, typer.Option(help="Secret name.")] = "akko-cosign-keys",
    public_key_out: Annotated[str | None, typer.Option(
        help="Write the new public key here (the committed cosign.pub: one key, as stock cosign reads it).")]
    = None,
    previous_key_out: Annotated[str | None, typer.Option(
        help="Write the previous public key here (cosign.previous.pub: the Helm chart's previousPublicKeys, a "
             "second --key for vouch and Kyverno during the overlap).")] = None,
    resign_manifest: Annotated[str | None, typer.Option(
        "--resign", help="Then sign and attest this release manifest with the new key (the previous key's "
                         "signatures and SBOMs stay).")] = None,
    from_manifest: Annotated[str | None, typer.Option(
        help="GitOps: read the current Secret from this manifest (as `keys init` printed it) instead of the API, "
             "and print the new Secret and NAME-previous manifests on stdout.")] = None,
) -> None:
    """Rotate the key pair in the Secret: the previous Secret is kept as NAME-previous; the new Secret's
    cosign.pub is the new key alone (what stock cosign reads), and cosign.previous.pub the previous one,
    which vouch's k8s:// keys, and the policy when given both keys, accept during the overlap."""
    import os

    from vouch.keys.k8s import KubeClient
    from vouch.keys.rotate import apply_in_cluster, plan_rotation, secret_from_manifest
    from vouch.release.plan import load_manifest
    from vouch.release.run import exit_code, run_release

    st = state(ctx)
    kube = None if from_manifest else KubeClient.from_kubeconfig()
    if from_manifest:
        old, namespace, secret = secret_from_manifest(from_manifest)
    else:
        assert kube is not None
        old = kube.get_secret(namespace, secret)
    env = os.environ.get("COSIGN_PASSWORD")
    rotation = plan_rotation(old, namespace, secret, env.encode() if env is not None else None)
    key, previous = rotation.key, rotation.previous
    if kube is None:
        import yaml

        err(PRIVATE_SECRET_WARNING)
        sys.stdout.write(yaml.safe_dump_all([rotation.new_secret, rotation.backup], sort_keys=False))
        err(f"Rotated {from_manifest}: apply both manifests ({namespace}/{secret} replaced, the previous key as "
            f"{namespace}/{secret}-previous)")
    else:
        apply_in_cluster(kube, namespace, secret, rotation)
        err(f"Rotated {namespace}/{secret}; the previous key is kept in {namespace}/{secret}-previous")
    if public_key_out:
        write_new_file(Path(public_key_out), public_key_pem(key), 0o644, force=True)
        err(f"New public key written to {public_key_out}")
    if previous_key_out:
        write_new_file(Path(previous_key_out), public_key_pem(previous), 0o644, force=True)
        err(f"Previous public key written to {previous_key_out} (keep it in the policy until the overlap ends)")
    if resign_manifest:
        plan = load_manifest(resign_manifest).images
        from vouch.release.run import keep_signed_by
        from vouch.signing.signer import KeySigner as _Signer
        from vouch.verify.bomfacts import parse_age

        reports = run_release(st.client(), _Signer(key), plan, 4, parse_age("30d"), parse_age("90d"),
                              keep=keep_signed_by([previous]))
        failed = [r for r in reports if r.error]
        for r in failed:
            err(f"Error: {r.image}: {r.error}")
        err(f"Re-signed {len(reports) - len(failed)}/{len(reports)} images with the new key")
        if failed:
            raise typer.Exit(exit_code(reports))


# ---- deploy renderers --------------------------------------------------------------------------------

policy_app = VouchTyper(help="Admission policies.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


@policy_app.command("kyverno")
def policy_kyverno(
    key: Annotated[list[str] | None, typer.Option("--key", help="Public key PEM: a file, env://VARIABLE or "
                                                                "https://HOST/cosign.pub; repeatable (during a "
                                                                "rotation: cosign.pub and cosign.previous.pub), one "
                                                                "attestor each.")] = None,
    images: Annotated[list[str] | None, typer.Option("--images", help="Image reference patterns (repeatable).")]
    = None,
    mode: Annotated[str, typer.Option(help="audit (report only) or enforce (refuse pods).")] = "audit",
    max_age: Annotated[str, typer.Option(help="Oldest acceptable SBOM (90d = 2160h).")] = "90d",
    name: Annotated[str, typer.Option(help="ClusterPolicy name.")] = "akko-require-signed-images",
    mutate_digest: Annotated[bool, typer.Option(help="Enforce mode: pin images to digests (GitOps drift).")]
    = False,
    layout: Annotated[str, typer.Option(
        "--layout", metavar="legacy|bundle|both",
        help="Where the images' signatures live: legacy (.sig/.att tags; Kyverno type Cosign, what cosign 2 and "
             "Harbor read), bundle (sigstore bundle referrers, cosign 3's default; Kyverno type SigstoreBundle, "
             "Kyverno 1.19 or later) or both (a rule each: the image must carry both).")] = "legacy",
    keyless: Annotated[bool, typer.Option(
        "--keyless", help="Keyless attestors (Fulcio certificate by identity, Rekor v1 SET, CT log SCT) instead of "
                          "--key; verified offline; legacy layout only.")] = False,
    identity: kl.IdentityOpt = None,
    identity_regexp: kl.IdentityRegexpOpt = None,
    issuer: kl.IssuerOpt = None,
    issuer_regexp: kl.IssuerRegexpOpt = None,
    trusted_root: Annotated[str | None, typer.Option(
        "--trusted-root", metavar="FILE",
        help="Keyless: the Sigstore instance's trusted_root.json; the policy's Fulcio roots, Rekor v1 key and CT log "
             "key are taken from it (default, without the PEM flags: the public-good root).")] = None,
    fulcio_root: Annotated[str | None, typer.Option(
        "--fulcio-root", metavar="PEM", help="Keyless: the Fulcio root (and chain) certificates, PEM.")] = None,
    rekor_public_key: Annotated[str | None, typer.Option(
        "--rekor-public-key", metavar="PEM", help="Keyless: the Rekor v1 public key, PEM (with --rekor-url).")]
    = None,
    ct_log_public_key: Annotated[str | None, typer.Option(
        "--ct-log-public-key", metavar="PEM", help="Keyless: the CT log public key, PEM.")] = None,
    rekor_url: Annotated[str | None, typer.Option(
        "--rekor-url", help="Keyless: the Rekor v1 URL written to the policy (default: the trusted root's). "
                            "Kyverno needs it only for signatures without a SET.")] = None,
    ignore_sct: kl.IgnoreSctOpt = False,
) -> None:
    """Print the Kyverno ClusterPolicy requiring a signature and a fresh CycloneDX SBOM attestation."""
    from vouch.bundle.trustroot import load_trusted_root, production_trusted_root
    from vouch.deploy.kyverno import cluster_policy, keyless_attestor, to_yaml
    from vouch.verify.bomfacts import parse_age

    attestor = None
    pem_flags = (fulcio_root, rekor_public_key, ct_log_public_key)
    if keyless:
        if key:
            raise InputError("a policy is keyless or by public keys: give --keyless or --key, not both")

        def read(path: str | None) -> bytes | None:
            return read_key_file(path) if path else None

        root = (load_trusted_root(trusted_root) if trusted_root
                else None if fulcio_root or rekor_public_key else production_trusted_root())
        attestor = keyless_attestor(subject=identity, subject_regexp=identity_regexp, issuer=issuer,
                                    issuer_regexp=issuer_regexp, trusted_root=root,
                                    fulcio_roots_pem=read(fulcio_root), rekor_public_key_pem=read(rekor_public_key),
                                    ct_log_public_key_pem=read(ct_log_public_key), rekor_url=rekor_url,
                                    ignore_sct=ignore_sct)
    elif kl.wants_keyless(identity, identity_regexp, issuer, issuer_regexp, trusted_root, rekor_url, ignore_sct,
                          *pem_flags):
        raise InputError("the certificate identity, trusted root and log flags are for a keyless policy: add "
                         "--keyless (or leave them out with --key)")
    pems = b"".join(read_key_ref(k, public=True).strip() + b"\n" for k in key or [])
    policy = cluster_policy(pems or None, images or ["harbor.akko-ai.com/akko/*"], mode,
                            parse_age(max_age), name, mutate_digest, layout, keyless=attestor)
    sys.stdout.write(to_yaml(policy))


# ---- shell completion --------------------------------------------------------------------------------


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


COMPLETE_VAR = "_VOUCH_COMPLETE"


@app.command()
def completion(shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish.")]) -> None:
    """Print the shell completion script. bash: `source <(vouch completion bash)` (or save it under
    /etc/bash_completion.d); zsh: `vouch completion zsh > "${fpath[1]}/_vouch"`; fish:
    `vouch completion fish > ~/.config/fish/completions/vouch.fish`."""
    from typer._completion_shared import get_completion_script

    sys.stdout.write(get_completion_script(prog_name="vouch", complete_var=COMPLETE_VAR, shell=shell.value) + "\n")


# ---- entry point ---------------------------------------------------------------------------------


def run() -> None:
    """Console entry point: expected failures print one line and exit with their code."""
    if COMPLETE_VAR in os.environ:  # a shell asking for completions: Typer's protocol (see `vouch completion`)
        from typer._completion_classes import completion_init

        completion_init()
    run_app(app)

from vouch.cli.report import register as register_report; register_report(app)  # noqa: E402, E702, I001
from vouch.cli.save import register as register_save; register_save(app)  # noqa: E402, E702, I001 (save, load)
