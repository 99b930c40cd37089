from __future__ import annotations

from pathlib import Path

from vouch.keys.cosign import encrypt_private_key, generate_private_key, public_key_pem
from vouch.signing.signer import KeySigner


def new_signer() -> KeySigner:
    return KeySigner(generate_private_key())


def write_keypair(directory: Path, name: str, password: bytes = b"pw") -> tuple[Path, Path, KeySigner]:
    key = generate_private_key()
    priv, pub = directory / f"{name}.key", directory / f"{name}.pub"
    priv.write_bytes(encrypt_private_key(key, password))
    pub.write_bytes(public_key_pem(key))
    return priv, pub, KeySigner(key)
