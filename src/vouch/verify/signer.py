"""Who signed a DSSE envelope, under a trust: one of the keys, or (keyless) a verified Fulcio certificate
whose identity meets the policy, with its log entry and time evidence (`vouch.bundle.verify`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vouch.errors import VerificationError
from vouch.keyless.annotations import is_keyless
from vouch.keyless.trust import EitherTrust, KeylessTrust, pick
from vouch.signing.attestation import OpenedEnvelope
from vouch.trust import KeyTrust, PublicKey

if TYPE_CHECKING:  # (the bundle and X.509 code is loaded when a bundle or a certificate is checked)
    from vouch.keyless.identity import CertificateIdentity

Trust = list[PublicKey] | KeylessTrust | EitherTrust
KEY_REFUSAL = "DSSE signature does not verify with the given key(s) (unknown signer or edited statement)"


def envelope_signer(env: OpenedEnvelope, trust: Trust, annotations: dict[str, str] | None = None,
                    bundle: bytes | None = None) -> tuple[str | None, CertificateIdentity | None, str]:
    """(signer: key id or certificate identity, the identity when keyless, "") or (None, None, reason).
    Keyless material comes from the bundle the envelope was in, or the legacy layer's annotations."""
    if isinstance(trust, EitherTrust):
        from vouch.bundle.model import parse_bundle

        try:
            certificate = (not parse_bundle(bundle).key_signed) if bundle is not None \
                else is_keyless(annotations or {})
        except VerificationError as exc:
            return None, None, str(exc)
        trust = pick(trust, certificate)
    if not isinstance(trust, KeylessTrust):
        if bundle is not None:  # a bundle goes through the bundle engine, as keyless ones and verify-blob
            from vouch.bundle.verify import verify_bundle

            verdict = verify_bundle(bundle, artifact=None, artifact_digest=None, trust=KeyTrust.of(trust),
                                    trusted_root=None, require_tlog=False)
            return (verdict.key_id, None, "") if verdict.ok else (None, None, KEY_REFUSAL)
        kid = env.verify(trust)
        return (kid, None, "") if kid is not None else (None, None, KEY_REFUSAL)
    from vouch.bundle.model import DsseEnvelope, DsseSignature
    from vouch.bundle.verify import verify_bundle
    from vouch.keyless import legacy

    if bundle is None:
        if not annotations or not is_keyless(annotations):
            return None, None, "signed with a key, not a Fulcio certificate (verify it with --key)"
        try:
            parsed = legacy.attestation_bundle(annotations, DsseEnvelope(
                env.payload, env.payload_type, tuple(DsseSignature(s, "") for s in env.signatures)))
        except VerificationError as exc:
            return None, None, str(exc)
        verdict = verify_bundle(parsed, artifact=None, artifact_digest=None, trust=trust, trusted_root=None,
                                require_tlog=not trust.ignore_tlog)
    else:
        verdict = verify_bundle(bundle, artifact=None, artifact_digest=None, trust=trust, trusted_root=None,
                                require_tlog=not trust.ignore_tlog)
    if not verdict.ok or verdict.identity is None:
        return None, None, verdict.reason
    return verdict.identity.subject, verdict.identity, ""
