"""Where key passwords come from, as cosign does: COSIGN_PASSWORD (even empty), a TTY prompt, or stdin.

Nothing at all on a non-TTY stdin (`</dev/null`, a CI step) is what cosign takes as the empty password.
vouch does too when it opens a key (a key without a password still opens), but a key that needs one gets
"no COSIGN_PASSWORD and no TTY", not "wrong password"; and a new key is never encrypted with it."""

from __future__ import annotations

import getpass
import os
import sys

import nacl.exceptions
from cryptography.hazmat.primitives.asymmetric import ec

from vouch.errors import InputError, KeyError_


class NoPasswordError(InputError):
    """No COSIGN_PASSWORD, no TTY, and nothing on stdin."""


def read_password(*, confirm: bool, prompt: str = "Enter password for private key: ") -> bytes:
    env = os.environ.get("COSIGN_PASSWORD")
    if env is not None:
        return env.encode()
    if sys.stdin is not None and sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if confirm:
            second = getpass.getpass("Enter password for private key again: ")
            if first != second:
                raise InputError("the passwords do not match; run the command again")
        return first.encode()
    data = sys.stdin.buffer.read() if sys.stdin is not None else b""
    if not data:
        raise NoPasswordError("no COSIGN_PASSWORD and no TTY to prompt on; set COSIGN_PASSWORD (empty for a key "
                              "without a password) or pipe the password on stdin")
    # A trailing newline from `echo pass |` is not part of the password (as with cosign's stdin read).
    return data[:-1] if data.endswith(b"\n") else data


def open_private_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    """A cosign private key decrypted with the password from read_password; with none to be had, the empty
    password (as cosign reads an empty stdin), and if that is not it, NoPasswordError rather than
    "wrong password"."""
    from vouch.keys.cosign import load_private_key

    try:
        password = read_password(confirm=False)
    except NoPasswordError as none:
        try:
            return load_private_key(pem, b"")
        except KeyError_ as exc:
            if isinstance(exc.__cause__, nacl.exceptions.CryptoError):  # the empty password is not it
                raise none from None
            raise
    return load_private_key(pem, password)
