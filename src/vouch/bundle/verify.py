"""Verify a sigstore bundle signed with a key: `verify_bundle`, for blobs and for OCI images alike.

The checks, in order (sigstore-go's `Verifier.Verify` for key material, and the bundle spec):
1. the material is a public key (certificate bundles come with keyless verification);
2. the signature verifies with one of the trusted keys. The bundle's key hint only orders the keys tried:
   a hint naming another key is no failure when a trusted key verifies (sigstore-go and cosign ignore it);
3. message signature: the artifact's digest equals the bundle's message digest, and the signature verifies
   over the artifact's bytes (given only the digest: as a prehashed signature, never for Ed25519);
   DSSE envelope: exactly one signature, over the PAE; with an artifact or a digest, the in-toto
   statement names it among its subjects. For an OCI image, artifact_digest is the manifest digest;
4. with require_tlog, the transparency-log entries (`vouch.bundle.tlog`) against the trust root.
RFC 3161 timestamps are kept but not verified yet (a key has no validity window to check them against).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from vouch.bundle import tlog
from vouch.bundle.model import DIGEST_SIZES, Bundle, HashOutput, parse_bundle
from vouch.bundle.trustroot import TrustedRoot
from vouch.errors import InputError, VerificationError
from vouch.keyless.trust import KeylessTrust
from vouch.record import field, record
from vouch.signing.attestation import INTOTO_PAYLOAD_TYPE, OpenedEnvelope
from vouch.trust import KeyTrust, PublicKey, check_supported, key_hint, key_id, signature_verifies

if TYPE_CHECKING:  # (X.509 is loaded for a certificate: a key-signed bundle never needs it)
    from vouch.keyless.identity import CertificateIdentity

_HASH_CLASSES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


@record(frozen=True)
class BundleCheck:
    """The verdict on one bundle: ok, or the reason it was refused; what was verified."""

    ok: bool
    reason: str = ""
    key_id: str | None = None  # the trusted key that verified the signature
    statement: dict[str, Any] | None = None  # the in-toto statement of a DSSE bundle (verified)
    integrated_time: int | None = None  # from a verified inclusion promise (seconds since the epoch)
    tlog_entries: int = 0  # transparency-log entries verified
    media_type: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)  # what was not checked or passed over
    identity: CertificateIdentity | None = None  # a keyless signature: who the certificate names (verified)

    def to_json(self) -> dict[str, Any]:
        return {"verified": self.ok, "reason": self.reason, "keyId": self.key_id, "mediaType": self.media_type,
                "integratedTime": self.integrated_time, "tlogEntries": self.tlog_entries,
                "statement": self.statement, "notes": list(self.notes),
                **({"identity": self.identity.to_json()} if self.identity is not None else {})}


def parse_digest(text: str) -> HashOutput:
    """`sha256:<hex>` (or sha384, sha512) as the digest of an artifact; InputError otherwise."""
    algorithm, _, value = text.partition(":")
    size = DIGEST_SIZES.get(algorithm.lower())
    if size is None or not re.fullmatch(f"[0-9a-fA-F]{{{2 * size}}}", value):
        raise InputError(f"{text[:80]!r} is not a digest: write sha256:<64 hex digits> (or sha384:, sha512:)")
    return HashOutput(algorithm.lower(), bytes.fromhex(value))


def _prehashed_verifies(key: PublicKey, signature: bytes, digest: HashOutput) -> bool:
    """signature over the message whose digest is given (ECDSA, RSA PKCS#1 v1.5 or PSS); never Ed25519."""
    algorithm = Prehashed(_HASH_CLASSES[digest.algorithm]())
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, digest.digest, ec.ECDSA(algorithm))
            return True
        if isinstance(key, rsa.RSAPublicKey):
            try:
                key.verify(signature, digest.digest, padding.PKCS1v15(), algorithm)
            except InvalidSignature:
                key.verify(signature, digest.digest,
                           padding.PSS(padding.MGF1(_HASH_CLASSES[digest.algorithm]()), padding.PSS.AUTO), algorithm)
            return True
    except (InvalidSignature, ValueError):
        return False
    return False


def _candidates(trust: KeyTrust, hint: str) -> list[PublicKey]:
    """The trusted keys, the ones the hint names first."""
    return sorted(trust.keys, key=lambda k: key_hint(k) != hint)


def _no_key_verifies(what: str, trust: KeyTrust, hint: str) -> VerificationError:
    keys = "the given key" if len(trust.keys) == 1 else f"any of the {len(trust.keys)} given keys"
    named = " (the bundle's key hint names none of them)" if hint and all(key_hint(k) != hint for k in trust.keys) \
        else ""
    return VerificationError(f"{what} does not verify with {keys}{named}")


def _message(bundle: Bundle, artifact: bytes | None, digest: HashOutput | None,
             trust: KeyTrust, hint: str) -> tuple[PublicKey, HashOutput]:
    ms = bundle.message_signature
    assert ms is not None
    keys = _candidates(trust, hint)
    if artifact is not None:
        algorithm = ms.digest.algorithm if ms.digest is not None else "sha256"
        actual = HashOutput(algorithm, hashlib.new(algorithm, artifact).digest())
        if ms.digest is not None and ms.digest != actual:
            raise VerificationError(f"the artifact's digest {actual.text()} is not the bundle's message digest "
                                    f"{ms.digest.text()}")
        key = next((k for k in keys if signature_verifies(k, ms.signature, artifact)), None)
    elif digest is not None:
        if ms.digest is None:
            raise VerificationError("the bundle's message signature names no digest: verify it against the "
                                    "artifact itself, not its digest")
        if digest.algorithm != ms.digest.algorithm:
            raise VerificationError(f"the bundle's message digest is a {ms.digest.algorithm} one: give the artifact "
                                    f"itself or its {ms.digest.algorithm} digest")
        if digest != ms.digest:
            raise VerificationError(f"the digest {digest.text()} is not the bundle's message digest "
                                    f"{ms.digest.text()}")
        if all(isinstance(k, ed25519.Ed25519PublicKey) for k in keys):
            raise VerificationError("an Ed25519 message signature verifies against the artifact itself, never "
                                    "against its digest alone")
        actual = digest
        key = next((k for k in keys if _prehashed_verifies(k, ms.signature, digest)), None)
    else:
        raise VerificationError("a message signature is verified against the artifact: give the file or its "
                                "sha256:<hex> digest")
    if key is None:
        raise _no_key_verifies("the bundle's message signature", trust, hint)
    return key, actual


def _subject_problem(statement: dict[str, Any], artifact: bytes | None, digest: HashOutput | None) -> str | None:
    subjects = [s["digest"] for s in statement["subject"]]
    if digest is not None:
        want = digest.digest.hex()
        if any(str(d.get(digest.algorithm, "")).lower() == want for d in subjects):
            return None
        return f"the digest {digest.text()} is not among the statement's subjects"
    assert artifact is not None
    algorithms = sorted({a for d in subjects for a in d if a in DIGEST_SIZES})
    if not algorithms:
        return "no subject of the statement has a sha256, sha384 or sha512 digest to match the artifact against"
    for algorithm in algorithms:
        want = hashlib.new(algorithm, artifact).hexdigest()
        if any(str(d.get(algorithm, "")).lower() == want for d in subjects):
            return None
    return (f"the artifact (sha256:{hashlib.sha256(artifact).hexdigest()}) is not among the statement's "
            "subjects")


def _dsse(bundle: Bundle, artifact: bytes | None, digest: HashOutput | None, trust: KeyTrust,
          hint: str) -> tuple[PublicKey, dict[str, Any] | None]:
    env = bundle.dsse_envelope
    assert env is not None
    if len(env.signatures) != 1:
        raise VerificationError(f"the bundle's DSSE envelope must hold exactly one signature (it holds "
                                f"{len(env.signatures)})")
    data = env.pae()
    key = next((k for k in _candidates(trust, hint) if signature_verifies(k, env.signatures[0].sig, data)), None)
    if key is None:
        raise _no_key_verifies("the DSSE envelope's signature", trust, hint)
    statement: dict[str, Any] | None = None
    if env.payload_type == INTOTO_PAYLOAD_TYPE:
        try:
            statement = OpenedEnvelope(env.payload_type, env.payload, [env.signatures[0].sig], b"").statement()
        except InputError as exc:
            raise VerificationError(str(exc)) from exc
    if artifact is not None or digest is not None:
        if statement is None:
            raise VerificationError(f"the DSSE payload is {env.payload_type[:80]!r}, not an in-toto statement: it "
                                    "names no subject to match the artifact against")
        problem = _subject_problem(statement, artifact, digest)
        if problem:
            raise VerificationError(problem)
    return key, statement


def verify_bundle(bundle: Bundle | bytes, *, artifact: bytes | None, artifact_digest: str | None,
                  trust: KeyTrust | KeylessTrust, trusted_root: TrustedRoot | None, require_tlog: bool,
                  now: dt.datetime | None = None) -> BundleCheck:
    """The verdict on a bundle (its JSON bytes or parsed). artifact: the signed bytes; or artifact_digest:
    `sha256:<hex>` of them (an OCI image: its manifest digest); for a DSSE bundle both may be None (the
    signature alone is checked). trust: keys (a key-signed bundle), or a trusted root and identity policy
    (a keyless one; trusted_root and require_tlog are then taken from it). A refusal is a BundleCheck with
    the reason; InputError only for bad arguments (both artifact and digest, a malformed digest,
    require_tlog without a trust root)."""
    if artifact is not None and artifact_digest is not None:
        raise InputError("give the artifact or its digest, not both")
    digest = parse_digest(artifact_digest) if artifact_digest is not None else None
    if require_tlog and trusted_root is None and not isinstance(trust, KeylessTrust):
        raise InputError("checking the transparency-log entries needs a trusted root")
    media_type = ""
    try:
        parsed = parse_bundle(bundle) if isinstance(bundle, bytes) else bundle
        media_type = parsed.media_type
        if isinstance(trust, KeylessTrust):
            return _keyless(parsed, artifact, digest, trust, now)
        if not parsed.key_signed:
            raise VerificationError("the bundle is signed with a certificate (keyless): verify it with "
                                    "--certificate-identity and --certificate-oidc-issuer, not a key")
        if not trust:
            raise VerificationError("no public key to verify the key-signed bundle with")
        hint = parsed.material.public_key_hint or ""
        statement: dict[str, Any] | None = None
        artifact_hash: HashOutput | None = None
        if parsed.message_signature is not None:
            key, artifact_hash = _message(parsed, artifact, digest, trust, hint)
        else:
            key, statement = _dsse(parsed, artifact, digest, trust, hint)
        notes: list[str] = []
        if hint and key_hint(key) != hint:
            notes.append("the bundle's key hint names another key than the one that verified it")
        result = tlog.TlogResult(0, None, ())
        if require_tlog:
            assert trusted_root is not None
            result = tlog.verify_entries(parsed, key, trusted_root, artifact_hash, now)
            notes.extend(result.notes)
        elif parsed.material.tlog_entries:
            notes.append(f"{len(parsed.material.tlog_entries)} transparency-log entr"
                         f"{'y' if len(parsed.material.tlog_entries) == 1 else 'ies'} not checked")
        if parsed.material.signed_timestamps:
            notes.append(f"{len(parsed.material.signed_timestamps)} RFC 3161 timestamp(s) not verified (a key has "
                         "no validity window to check them against)")
        return BundleCheck(True, "", key_id(key), statement, result.integrated_time, result.verified, media_type,
                           tuple(notes))
    except VerificationError as exc:
        return BundleCheck(False, str(exc), media_type=media_type)


def _keyless(parsed: Bundle, artifact: bytes | None, digest: HashOutput | None, trust: KeylessTrust,
             now: dt.datetime | None) -> BundleCheck:
    """A certificate-signed bundle: signature by the certificate's key, log entries recording that certificate,
    a verified time (SET or signed timestamp) at which the certificate chained to a Fulcio root of the trusted
    root and was valid, its SCT, the code-signing profile, then the identity policy."""
    from vouch.keyless import certs
    from vouch.keyless.identity import identity_of

    if parsed.key_signed or not parsed.material.certificates:
        raise VerificationError("the signature is made with a key, not a Fulcio certificate: verify it with --key")
    leaf_der = parsed.material.certificates[0]
    leaf = certs.load_der_certificate(leaf_der, "the signing certificate")
    for i, der in enumerate(parsed.material.certificates[1:], 1):
        if certs.is_self_signed(certs.load_der_certificate(der, f"certificate {i} of the bundle's chain")):
            raise VerificationError("the bundle's certificate chain holds a root certificate: roots are taken from "
                                    "the trusted root only")
    try:
        leaf_key = check_supported(leaf.public_key(), "the signing certificate's key")
    except InputError as exc:
        raise VerificationError(str(exc)) from exc
    keys = KeyTrust.of([leaf_key])
    statement: dict[str, Any] | None = None
    artifact_hash: HashOutput | None = None
    if parsed.message_signature is not None:
        _, artifact_hash = _message(parsed, artifact, digest, keys, "")
    else:
        _, statement = _dsse(parsed, artifact, digest, keys, "")
    root = trust.root
    notes: list[str] = []
    times: list[dt.datetime] = []
    result = tlog.TlogResult(0, None, ())
    if not trust.ignore_tlog:
        result = tlog.verify_entries(parsed, leaf_key, root, artifact_hash, now, certificate=leaf_der)
        notes.extend(result.notes)
        if result.integrated_time is not None:
            times.append(dt.datetime.fromtimestamp(result.integrated_time, dt.UTC))
    times += certs.verify_timestamps(parsed.material.signed_timestamps, parsed.signature, root)
    if not times:
        raise VerificationError("no verified time of signing (neither a log entry's SET nor a signed timestamp): a "
                                "Fulcio certificate is valid for minutes only, so it cannot be checked")
    chain: list[Any] = []
    for at in times:
        chain = certs.verify_chain(leaf, root, at)
        if not leaf.not_valid_before_utc <= at <= leaf.not_valid_after_utc:
            raise VerificationError(f"the signing certificate was not valid at the time of signing "
                                    f"({at:%Y-%m-%dT%H:%M:%SZ}; valid {leaf.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} "
                                    f"to {leaf.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ})")
    if trust.ignore_sct:
        notes.append("the certificate's SCT was not checked (--insecure-ignore-sct)")
    else:
        certs.verify_sct(leaf, chain, root)
    certs.check_code_signing(leaf)
    who = identity_of(leaf)
    reason = trust.policy.check(who)
    if reason:
        raise VerificationError(reason)
    return BundleCheck(True, "", None, statement, result.integrated_time, result.verified, parsed.media_type,
                       tuple(notes), who)
