"""Signers behind one small interface: key-based now, keyless later."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from vouch.keys.cosign import key_id, public_key_pem
from vouch.trust import KeyTrust, PublicKey

if TYPE_CHECKING:  # (the keyless signer, X.509 and all, is loaded only by what signs keyless)
    from typing_extensions import TypeIs

    from vouch.keyless.sign import KeylessSigner


class Signer(Protocol):
    def sign(self, data: bytes) -> bytes: ...

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey: ...


class KeySigner:
    """ECDSA P-256 over SHA-256, ASN.1 DER signatures (what cosign writes)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey):
        self._key = key

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def public_pem(self) -> bytes:
        return public_key_pem(self.public_key)


def verify_with_any(keys: list[PublicKey], signature: bytes, data: bytes) -> PublicKey | None:
    """The first key under which signature verifies over data, or None."""
    return KeyTrust.of(keys).signer_of(signature, data)


def is_keyless(signer: KeySigner | KeylessSigner) -> TypeIs[KeylessSigner]:
    """A keyless signer (Fulcio certificate) rather than a key: what isinstance would say, without
    importing the keyless module where only keys are used."""
    return not isinstance(signer, KeySigner)
