"""Verification of cosign signatures, as data: each layer checked, reasons kept for humans."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
from typing import TYPE_CHECKING, Any

from vouch.errors import VerificationError, VouchError
from vouch.keyless.annotations import ANN_BUNDLE, is_keyless
from vouch.keyless.oids import FULCIO
from vouch.keys.cosign import key_id
from vouch.oci import mediatypes as mt
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.record import field, record
from vouch.signing.payload import SIGNATURE_TYPE, go_json, parse_payload, simple_signing_payload
from vouch.signing.signer import verify_with_any
from vouch.store.layout import (
    ANN_SIGNATURE,
    SIG_SUFFIX,
    StoredLayer,
    TagReading,
    read_payloads,
    read_tag,
    tag_for,
)
from vouch.trust import KeyTrust, PublicKey

if TYPE_CHECKING:  # (the bundle layout's code is loaded when a bundle is read: key-mode legacy never does)
    from typing import TypeAlias

    from vouch.keyless.identity import CertificateIdentity
    from vouch.keyless.trust import EitherTrust, KeylessTrust
    from vouch.store.bundles import BundleRead


@record
class SignatureCheck:
    layer_digest: str
    ok: bool
    reason: str = ""
    key_id: str | None = None
    payload: dict[str, Any] | None = None
    where: str = "legacy"  # the layout it was found in: legacy, referrers API, fallback tag …
    identity: CertificateIdentity | None = None  # keyless: who the verified certificate names


@record
class VerifyResult:
    image: str
    digest: str
    checks: list[SignatureCheck] = field(default_factory=list)
    problem: str = ""  # a reason that concerns the whole tag (missing, wrong media types)
    skipped: str = ""  # layers not read (over the bounds of limits.py), said to the user

    @property
    def verified(self) -> list[SignatureCheck]:
        return [c for c in self.checks if c.ok]

    @property
    def ok(self) -> bool:
        return bool(self.verified) and not self.problem

    def reason(self) -> str:
        if self.problem:
            return self.problem
        tail = f" ({self.skipped})" if self.skipped else ""
        if not self.checks:
            return "no signatures found" + tail
        return "no valid signature: " + "; ".join(sorted({c.reason for c in self.checks})) + tail


Trust: TypeAlias = "list[PublicKey] | KeylessTrust | EitherTrust"  # (keys: a list; keyless code loads for the rest)


def check_layer(layer: StoredLayer, payload: bytes, digest: str, keys: Trust,
                annotations: dict[str, str] | None, docker_reference: str | None) -> SignatureCheck:
    """cosign's checks on one signature layer (payload already fetched and digest-checked): with keys, the
    signature by one of them; keyless, the certificate, log entry and identity (`verify_bundle`)."""
    d = layer.descriptor
    if d.media_type != mt.COSIGN_SIMPLESIGNING:
        return SignatureCheck(d.digest, False, f"layer media type {d.media_type!r} is not a cosign signature")
    if ANN_SIGNATURE not in layer.annotations:
        return SignatureCheck(d.digest, False, f"layer has no {ANN_SIGNATURE} annotation")
    try:
        sig = base64.b64decode(layer.annotations[ANN_SIGNATURE], validate=True)
    except (binascii.Error, ValueError):
        return SignatureCheck(d.digest, False, "signature annotation is not base64")
    who: CertificateIdentity | None = None
    signer_id: str | None = None
    if not isinstance(keys, (list, tuple)):  # (key mode never imports the keyless trust)
        from vouch.keyless.trust import pick

        keys = pick(keys, is_keyless(layer.annotations))
    if not isinstance(keys, (list, tuple)):
        from vouch.bundle.verify import verify_bundle  # (keyless only: key mode never loads the bundle code)

        if not is_keyless(layer.annotations):
            return SignatureCheck(d.digest, False, "signed with a key, not a Fulcio certificate (verify it with --key)")
        try:
            from vouch.keyless import legacy

            bundle = legacy.signature_bundle(layer.annotations, sig, payload)
        except VerificationError as exc:
            return SignatureCheck(d.digest, False, str(exc))
        verdict = verify_bundle(bundle, artifact=payload, artifact_digest=None, trust=keys, trusted_root=None,
                                require_tlog=not keys.ignore_tlog)
        if not verdict.ok:
            return SignatureCheck(d.digest, False, verdict.reason)
        who = verdict.identity
        signer_id = who.subject if who is not None else None
    else:
        key = verify_with_any(keys, sig, payload)
        if key is None:
            return SignatureCheck(d.digest, False, "signature does not verify with the given key(s)")
        signer_id = key_id(key)
    try:
        obj = parse_payload(payload)
    except VerificationError as exc:
        return SignatureCheck(d.digest, False, str(exc))
    critical = obj["critical"]
    if not isinstance(critical, dict):
        return SignatureCheck(d.digest, False, "payload's critical section is not an object")
    if critical.get("type") != SIGNATURE_TYPE:
        return SignatureCheck(d.digest, False, f"payload type {critical.get('type')!r} is not {SIGNATURE_TYPE!r}")
    signed_digest = critical["image"]["docker-manifest-digest"]
    if signed_digest != digest:
        return SignatureCheck(d.digest, False, f"payload is for {signed_digest}, not this image ({digest})")
    if docker_reference is not None:
        got = (critical.get("identity") or {}).get("docker-reference")
        if got != docker_reference:
            return SignatureCheck(d.digest, False, f"docker-reference {got!r} is not {docker_reference!r}")
    if annotations:
        optional = obj.get("optional") or {}
        for k, v in annotations.items():
            if optional.get(k) != v:
                return SignatureCheck(d.digest, False, f"annotation {k}={v!r} missing (got {optional.get(k)!r})")
    if who is not None:  # what cosign adds to a keyless signature's printed payload
        shown = dict(obj)
        optional = dict(shown.get("optional") or {})
        bundle_json = layer.annotations.get(ANN_BUNDLE)
        if bundle_json:
            with contextlib.suppress(ValueError):
                optional["Bundle"] = json.loads(bundle_json)
        if who.issuer_v1:
            optional[f"{FULCIO}.1"] = who.issuer_v1  # (the v1 issuer extension's OID)
        optional.update({"Issuer": who.issuer, "Subject": who.subject})
        shown["optional"] = optional
        obj = shown
    return SignatureCheck(d.digest, True, "", signer_id, obj, identity=who)


def check_bundle(item: BundleRead, digest: str, keys: Trust, annotations: dict[str, str] | None,
                 docker_reference: str, where: str) -> SignatureCheck:
    """cosign 3's checks on one signature bundle: a DSSE envelope signed by a trusted key over an in-toto
    statement of type cosign/sign/v1 whose subject is this image. The payload reported is the one
    `cosign3 verify` prints for a bundle (a simple-signing object made from the statement)."""
    from vouch.signing.attestation import INTOTO_PAYLOAD_TYPE, open_envelope
    from vouch.store.bundles import SIGN_PREDICATE_TYPE, bundle_envelope
    from vouch.verify.policy import AllOf, PredicateType, SubjectDigest

    entry = f"bundle {item.manifest.digest}"
    if item.raw is None:
        return SignatureCheck(entry, False, item.error, where=where)
    try:
        env = open_envelope(bundle_envelope(item.raw))
    except VouchError as exc:
        return SignatureCheck(entry, False, str(exc), where=where)
    if env.payload_type != INTOTO_PAYLOAD_TYPE:
        return SignatureCheck(entry, False, f"payloadType {env.payload_type!r} is not {INTOTO_PAYLOAD_TYPE!r}",
                              where=where)
    from vouch.bundle.model import parse_bundle  # (a bundle: the bundle layout's code, loaded when it is read)
    from vouch.bundle.verify import verify_bundle

    who: CertificateIdentity | None = None
    if not isinstance(keys, (list, tuple)):
        from vouch.keyless.trust import EitherTrust, pick

        if isinstance(keys, EitherTrust):
            try:
                keys = pick(keys, not parse_bundle(item.raw).key_signed)
            except VerificationError as exc:
                return SignatureCheck(entry, False, str(exc), where=where)
    if not isinstance(keys, (list, tuple)):
        verdict = verify_bundle(item.raw, artifact=None, artifact_digest=digest, trust=keys, trusted_root=None,
                                require_tlog=not keys.ignore_tlog)
        if not verdict.ok:
            return SignatureCheck(entry, False, verdict.reason, where=where)
        who = verdict.identity
        kid = who.subject if who is not None else None
    else:  # the same bundle engine as keyless and verify-blob: signature, subject, (unchecked) log entries
        verdict = verify_bundle(item.raw, artifact=None, artifact_digest=digest, trust=KeyTrust.of(keys),
                                trusted_root=None, require_tlog=False)
        if not verdict.ok:
            reason = verdict.reason
            if "does not verify with" in reason:
                reason = "signature does not verify with the given key(s)"
            return SignatureCheck(entry, False, reason, where=where)
        kid = verdict.key_id
    try:
        stmt = env.statement()
    except VouchError as exc:
        return SignatureCheck(entry, False, str(exc), where=where)
    reason = AllOf((PredicateType(SIGN_PREDICATE_TYPE), SubjectDigest(digest))).check(stmt)
    if reason:
        return SignatureCheck(entry, False, reason, where=where)
    if annotations:
        given: dict[str, Any] = {}
        for s in stmt.get("subject") or []:
            if isinstance(s, dict) and isinstance(s.get("annotations"), dict):
                given.update(s["annotations"])
        for k, v in annotations.items():
            if given.get(k) != v:
                return SignatureCheck(entry, False, f"annotation {k}={v!r} missing (got {given.get(k)!r})",
                                      where=where)
    payload = {"critical": {"identity": {"docker-reference": docker_reference},
                            "image": {"docker-manifest-digest": digest}, "type": SIGN_PREDICATE_TYPE},
               "optional": dict(annotations or {})}
    return SignatureCheck(entry, True, "", kid, payload, where=where, identity=who)


def verify_image(client: RegistryClient, image: Reference, keys: Trust,
                 annotations: dict[str, str] | None = None, check_reference: bool = False,
                 layouts: tuple[str, ...] = ("legacy", "bundle"), exhaustive: bool = False) -> VerifyResult:
    """The image's signatures in the given layouts ("legacy" `.sig` tag, "bundle" referrers), in that
    order, each checked; the result says which layouts held a valid one.

    As cosign, verification stops at the first layout that holds a valid signature: one is what the
    policy asks for, and the later layouts' requests are saved (the stdout of a legacy-signed image is
    then cosign 2's). The layouts after it are read only when none verified so far, or when exhaustive
    (a report of every signature there is).

    A reference by digest names what the signatures must be about, so the image's manifest is not read
    first (cosign does not read it either): only when no signature verifies is the image looked up, so
    that a missing image is still reported as missing (NotFoundError), not as unsigned."""
    digest = image.digest or client.resolve(image).digest
    result = VerifyResult(f"{image.name}@{digest}", digest)
    from vouch.layouts import layouts as by_name  # (the layouts use this module's checks)

    problems: list[str] = []
    reading = TagReading()
    for layout in by_name(layouts):
        if result.verified and not exhaustive:
            break
        problems += layout.signatures(client, image, digest, keys, annotations, check_reference, reading, result)
    if not result.checks and problems:
        result.problem = problems[0]
    result.skipped = reading.note()
    if image.digest and not result.ok:
        client.resolve(image)  # a missing image: "image … not found" (exit 3), as when it is resolved first
    return result


def legacy_checks(client: RegistryClient, repo: Reference, image: Reference, digest: str, keys: Trust,
                  annotations: dict[str, str] | None, check_reference: bool, result: VerifyResult,
                  reading: TagReading) -> list[str]:
    tag = tag_for(digest, SIG_SUFFIX)
    state = read_tag(client, repo, tag)
    if state.manifest is None:
        return [f"no signatures found (no {tag} in {repo.name})"]
    if state.manifest.media_type != mt.OCI_MANIFEST:
        return [(f"{tag} uses Docker media type {state.manifest.media_type}; cosign signature "
                 "manifests must be OCI (containers/image refuses Docker media types)")]
    ref_check = image.docker_reference if check_reference else None
    # The payload cosign (and vouch) signs for this image: a layer whose digest is its digest needs no
    # download. A signature made under another name, or with other annotations, is fetched and checked.
    expected = simple_signing_payload(image.docker_reference, digest, annotations)
    known = {"sha256:" + hashlib.sha256(expected).hexdigest(): expected}
    for item in read_payloads(client, repo, state.layers, SIG_SUFFIX, reading, known):
        if item.payload is None:
            result.checks.append(SignatureCheck(item.layer.descriptor.digest, False, item.error))
            continue
        result.checks.append(check_layer(item.layer, item.payload, digest, keys, annotations, ref_check))
    return []


def cosign_output(results: list[VerifyResult]) -> str:
    """stdout of `cosign verify`: a JSON array of the verified payloads, re-marshalled."""
    payloads = [c.payload for r in results for c in r.verified]
    return go_json(payloads).decode()

