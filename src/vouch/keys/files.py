"""Key files on disk: private keys are only ever written encrypted, mode 0600, atomically."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from vouch.errors import InputError


def write_new_file(path: Path, data: bytes, mode: int, force: bool) -> None:
    """Write data to path atomically with mode; refuse to replace an existing file unless force."""
    if path.exists() and not force:
        raise InputError(f"{path} already exists; pass --force to overwrite it")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def read_key_file(ref: str) -> bytes:
    path = Path(ref)
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError(f"key file {ref} not found") from exc
    except OSError as exc:
        raise InputError(f"cannot read key file {ref}: {exc.strerror}") from exc
