"""`vouch tree IMAGE` (cosign's `tree`) and `vouch download signature IMAGE` (cosign's): what is attached
to an image, in both storage layouts, without verifying it. Imports are lazy: registering these commands
must not slow `vouch --version`."""

from __future__ import annotations

import base64
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vouch.cli.common import OutputFormat, VouchTyper, emit, load_verifier_keys, ref_arg, state
from vouch.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from cryptography import x509

    from vouch.store.inventory import Entry, Inventory

SIGN_PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1"
HEADINGS = {"attestations": "💾 Attestations for an image tag:", "signatures": "🔐 Signatures for an image tag:",
            "sboms": "📦 SBOMs for an image tag:"}

ImageArg = Annotated[str, typer.Argument(help="Image reference (a tag is resolved to its digest once).")]
TreeKeysOpt = Annotated[list[str] | None, typer.Option(
    "--key", help="Public key PEM (a file, env://VARIABLE, https://HOST/cosign.pub, k8s://NAMESPACE/NAME; "
                  "repeatable): name the key that made each key-signed entry. Nothing is verified otherwise.")]


def _detail(e: Entry) -> str:
    parts = []
    if e.predicate_type == SIGN_PREDICATE_TYPE:
        parts.append("signature")
    elif e.predicate_type:
        parts.append(f"predicate {e.predicate_type}")
    if e.signer is not None:
        parts.append(f"signer {e.signer.text()}")
    if e.note:
        parts.append(f"unreadable: {e.note}")
    return f" ({'; '.join(parts)})" if parts else ""


def render_tree(inv: Inventory) -> str:
    """The tree as cosign prints it, each 🍒 line followed by what vouch knows of the entry."""
    lines = [f"📦 Supply Chain Security Related artifacts for an image: {inv.image}"]
    if not inv.groups:
        return (f"No Supply Chain Security Related Artifacts found for image {inv.image},\n start creating one "
                "with simply running $ vouch sign <img>\n")
    for g in inv.groups:
        if g.kind == "referrer":
            lines.append(f"└── 🔗 {g.artifact_type} artifacts via OCI referrer: {g.reference}")
        else:
            lines.append(f"└── {HEADINGS[g.kind]} {g.reference}")
        for i, e in enumerate(g.entries):
            branch = "   └──" if i == len(g.entries) - 1 else "   ├──"
            lines.append(f"{branch} 🍒 {e.digest}{_detail(e)}")
    return "\n".join(lines) + "\n"


def tree(ctx: typer.Context, image: ImageArg, key: TreeKeysOpt = None) -> None:
    """Show what is attached to an image's digest, as `cosign tree`: legacy .sig/.att/.sbom tags (each
    signature's signer, each attestation's predicate type) and OCI 1.1 referrers (sigstore bundles as
    cosign 3 writes them, SBOM artifacts; through the referrers API or its fallback tag).
    Signers are what the entries claim: use verify for trust. -o json for the same as data."""
    from vouch.store.inventory import inventory

    st = state(ctx)
    keys = load_verifier_keys(key) if key else []
    inv = inventory(st.client(), ref_arg(image), keys)
    if st.output == OutputFormat.text:
        sys.stdout.write(render_tree(inv))
    else:
        emit(st, inv.to_json(), "")


# ---- download signature ---------------------------------------------------------------------------


def _go_time(t: Any) -> str:
    return str(t.strftime("%Y-%m-%dT%H:%M:%SZ"))


def go_certificate(cert: x509.Certificate) -> dict[str, Any]:
    """The fields of Go's x509.Certificate that cosign's JSON carries and a script can use: the DER (`Raw`,
    base64 as Go marshals []byte) first, then its parts, serial, validity and e-mail SANs."""
    from cryptography import x509 as x
    from cryptography.hazmat.primitives import serialization

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    try:
        emails = cert.extensions.get_extension_for_class(x.SubjectAlternativeName).value.get_values_for_type(
            x.RFC822Name)
    except x.ExtensionNotFound:
        emails = []
    return {
        "Raw": b64(cert.public_bytes(serialization.Encoding.DER)),
        "RawTBSCertificate": b64(cert.tbs_certificate_bytes),
        "RawSubjectPublicKeyInfo": b64(cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)),
        "RawSubject": b64(cert.subject.public_bytes()),
        "RawIssuer": b64(cert.issuer.public_bytes()),
        "Signature": b64(cert.signature),
        "Version": cert.version.value + 1,
        "SerialNumber": cert.serial_number,
        "NotBefore": _go_time(cert.not_valid_before_utc),
        "NotAfter": _go_time(cert.not_valid_after_utc),
        "EmailAddresses": emails or None,
    }


def _certificates(pem: str | None) -> list[dict[str, Any]] | None:
    from cryptography import x509 as x

    if not pem:
        return None
    try:
        return [go_certificate(c) for c in x.load_pem_x509_certificates(pem.encode())]
    except ValueError:
        return None


def _annotation_json(text: str | None) -> Any:
    from vouch.signing.payload import loads_json

    if not text:
        return None
    try:
        return loads_json(text)
    except ValueError:
        return None


def signed_payload(annotations: dict[str, str], payload: bytes) -> dict[str, Any]:
    """cosign 2's SignedPayload for one `.sig` layer (its `download signature` line), fields in its order."""
    certs = _certificates(annotations.get("dev.sigstore.cosign/certificate"))
    return {
        "Base64Signature": annotations.get("dev.cosignproject.cosign/signature", ""),
        "Payload": base64.b64encode(payload).decode(),
        "Cert": certs[0] if certs else None,
        "Chain": _certificates(annotations.get("dev.sigstore.cosign/chain")),
        "Bundle": _annotation_json(annotations.get("dev.sigstore.cosign/bundle")),
        "RFC3161Timestamp": _annotation_json(annotations.get("dev.sigstore.cosign/rfc3161timestamp")),
    }


def _is_signature_bundle(raw: bytes) -> bool:
    from vouch.bundle.model import parse_bundle
    from vouch.errors import VerificationError
    from vouch.signing.payload import loads_json

    try:
        b = parse_bundle(raw)
        if b.message_signature is not None:
            return True
        assert b.dsse_envelope is not None
        obj = loads_json(b.dsse_envelope.payload)
    except (VerificationError, ValueError):
        return False
    return isinstance(obj, dict) and obj.get("predicateType") == SIGN_PREDICATE_TYPE


def download_signature(ctx: typer.Context, image: ImageArg,
                       layout: Annotated[str, typer.Option(
                           "--layout", metavar="legacy|bundle|both",
                           help="legacy: the .sig layers, one cosign 2 SignedPayload JSON each (Base64Signature, "
                                "Payload, Cert, Chain, Bundle, RFC3161Timestamp); bundle: each signature bundle "
                                "referrer as cosign 3 prints it; both: legacy lines, then bundles.")] = "both",
                       ) -> None:
    """Print the signatures attached to IMAGE, one JSON per line, as `cosign download signature`. Nothing is
    verified (use verify)."""
    from vouch.signing.payload import go_json
    from vouch.store.bundles import list_bundles, read_bundles
    from vouch.store.layout import (
        ANN_SIGNATURE,
        SIG_SUFFIX,
        TagReading,
        read_payloads,
        read_tag,
        tag_for,
        target_repository,
    )

    if layout not in ("legacy", "bundle", "both"):
        raise InputError(f"--layout {layout!r}: write legacy, bundle or both")
    st = state(ctx)
    client = st.client()
    ref = ref_arg(image)
    digest = ref.digest or client.resolve(ref).digest
    repo = target_repository(ref)
    found = 0
    if layout != "bundle":
        layers = [x for x in read_tag(client, repo, tag_for(digest, SIG_SUFFIX)).layers
                  if ANN_SIGNATURE in x.annotations]
        for item in read_payloads(client, repo, layers, SIG_SUFFIX, TagReading()):
            if item.payload is not None:
                sys.stdout.write(go_json(signed_payload(item.layer.annotations, item.payload)).decode() + "\n")
                found += 1
    if layout != "legacy":
        for b in read_bundles(client, repo, list_bundles(client, repo, digest), TagReading()):
            if b.raw is not None and _is_signature_bundle(b.raw):
                from vouch.signing.payload import loads_json

                sys.stdout.write(go_json(loads_json(b.raw)).decode() + "\n")
                found += 1
    if not found:
        where = {"legacy": " in the legacy layout", "bundle": " in the bundle layout", "both": ""}[layout]
        raise NotFoundError(f"no signatures{where} on {ref.name}@{digest}")


def _download_app(app: VouchTyper) -> typer.Typer:
    for group in app.registered_groups:
        if group.name == "download" and group.typer_instance is not None:
            return group.typer_instance
    raise RuntimeError("the download command group is not registered")  # a wiring bug, not a user error


def register(app: VouchTyper) -> None:
    app.command("tree")(tree)
    _download_app(app).command("signature")(download_signature)
