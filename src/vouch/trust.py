"""Who may sign: trust as an object, not a list of P-256 keys passed around.

`KeyTrust` holds public keys of every type cosign verifies with (ECDSA P-256/384/521, RSA, Ed25519) and
answers one question: which of them made this signature over these bytes. The Sigstore trust root plus
an identity policy (keyless) is the second kind of trust and joins here.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from vouch.errors import KeyError_
from vouch.record import record

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

_CURVE_HASH: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256, "secp384r1": hashes.SHA384, "secp521r1": hashes.SHA512}


def spki_der(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key: PublicKey) -> str:
    """A short stable id for messages: sha256 of the SubjectPublicKeyInfo DER, first 12 hex."""
    return hashlib.sha256(spki_der(key)).hexdigest()[:12]


def key_hint(key: PublicKey) -> str:
    """The sigstore bundle's `publicKey.hint`: base64 of sha256 over the SubjectPublicKeyInfo DER (cosign 3)."""
    return base64.b64encode(hashlib.sha256(spki_der(key)).digest()).decode()


def public_key_pem(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def signature_verifies(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """cosign's rules: ECDSA over SHA-256 (and the curve's own hash, which sigstore-go uses for P-384/521),
    RSA PKCS#1 v1.5 or PSS over SHA-256, Ed25519 over the message itself."""
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
            return True
        if isinstance(key, rsa.RSAPublicKey):
            try:
                key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                key.verify(signature, data, padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO),
                           hashes.SHA256())
            return True
        algorithms: list[type[hashes.HashAlgorithm]] = [hashes.SHA256]
        own = _CURVE_HASH.get(key.curve.name)
        if own is not None and own is not hashes.SHA256:
            algorithms.append(own)
        for algorithm in algorithms:
            try:
                key.verify(signature, data, ec.ECDSA(algorithm()))
                return True
            except InvalidSignature:
                continue
        return False
    except (InvalidSignature, ValueError):
        return False


def check_supported(key: object, what: str) -> PublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVE_HASH:
            raise KeyError_(f"{what}: ECDSA curve {key.curve.name} is not supported (use P-256, P-384 or P-521)")
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise KeyError_(f"{what}: RSA key of {key.key_size} bits is too small (2048 or more)")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise KeyError_(f"{what}: unsupported key type {type(key).__name__} (use ECDSA, RSA or Ed25519)")


def load_public_key_der(der: bytes, what: str) -> PublicKey:
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyError_(f"{what}: a PUBLIC KEY block does not parse") from exc
    return check_supported(key, what)


@record(frozen=True)
class KeyTrust:
    """A set of trusted public keys: a signature is trusted when one of them verifies it."""

    keys: tuple[PublicKey, ...]

    @classmethod
    def of(cls, keys: list[PublicKey] | tuple[PublicKey, ...]) -> KeyTrust:
        return cls(tuple(keys))

    def signer_of(self, signature: bytes, data: bytes) -> PublicKey | None:
        """The first trusted key under which signature verifies over data, or None."""
        for key in self.keys:
            if signature_verifies(key, signature, data):
                return key
        return None

    def ids(self) -> list[str]:
        return [key_id(k) for k in self.keys]

    def __bool__(self) -> bool:
        return bool(self.keys)
