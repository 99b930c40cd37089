"""Where key passwords come from, as cosign does: COSIGN_PASSWORD (even empty), a TTY prompt, or stdin."""

from __future__ import annotations

import getpass
import os
import sys

from vouch.errors import InputError


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
    if sys.stdin is None:
        return b""
    data = sys.stdin.buffer.read()
    # A trailing newline from `echo pass |` is not part of the password (as with cosign's stdin read).
    return data[:-1] if data.endswith(b"\n") else data
