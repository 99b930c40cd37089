"""Files the tool writes and reads whole: keys (private ones only ever encrypted, mode 0600), public keys,
SBOMs, reports. Writes are atomic: a temporary file in the target's directory, created 0600, filled,
fsynced, given its mode, then renamed over the target (or hard-linked to it when the target must not
exist yet, which is atomic too). A failure leaves no partial file; every OSError is an InputError
with a one-line message."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from vouch import limits
from vouch.errors import InputError


def _why(exc: OSError) -> str:
    return exc.strerror or " ".join(str(exc).split())


def _cannot_write(path: Path, exc: OSError) -> InputError:
    parent = path.parent
    if isinstance(exc, FileNotFoundError) and not parent.is_dir():
        return InputError(f"cannot write {path}: the directory {parent} does not exist; create it first")
    if isinstance(exc, IsADirectoryError) or path.is_dir():
        return InputError(f"cannot write {path}: it is a directory; give a file name")
    if isinstance(exc, FileExistsError):
        return InputError(f"{path} already exists; pass --force to overwrite it")
    return InputError(f"cannot write {path}: {_why(exc)}")


def write_new_file(path: Path, data: bytes, mode: int, force: bool) -> None:
    """Write data to path atomically with mode; refuse to replace an existing file unless force."""
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
        if not force and (path.exists() or path.is_symlink()):
            raise FileExistsError(errno.EEXIST, "File exists", str(path))
        if force and path.exists() and not stat.S_ISREG(path.stat().st_mode):
            _write_in_place(path, data)  # /dev/stdout, /dev/null, a FIFO: nothing to replace atomically
            return
        import tempfile

        # mkstemp: O_CREAT | O_EXCL, mode 0600 from the start, so a private key is never readable by others.
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:64]}.", suffix=".tmp")
    except OSError as exc:
        raise _cannot_write(path, exc) from exc
    except ValueError as exc:  # a NUL byte in the name
        raise InputError(f"cannot write {str(path)!r}: {exc}") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    except OSError as exc:
        raise _cannot_write(path, exc) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def check_writable(path: Path) -> None:
    """Refuse early, before any work, an output path write_new_file(force=True) would fail on: its directory
    missing, or a directory in its place."""
    if path.is_dir():
        raise _cannot_write(path, IsADirectoryError(errno.EISDIR, "Is a directory", str(path)))
    if not path.parent.is_dir():
        raise _cannot_write(path, FileNotFoundError(errno.ENOENT, "No such file or directory", str(path)))


def _write_in_place(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _link_new(tmp: Path, path: Path) -> None:
    """Give tmp the name path only if path does not exist (FileExistsError otherwise), atomically."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV):
            raise
        # No hard links on this filesystem: check, then rename (a concurrent writer could still win the race).
        if path.exists() or path.is_symlink():
            raise FileExistsError(errno.EEXIST, "File exists", str(path)) from exc
        os.replace(tmp, path)


def read_key_file(ref: str, limit: int = limits.MAX_INPUT_FILE_BYTES) -> bytes:
    """The whole file at ref (a key, or a predicate for `attest`), at most limit bytes."""
    path = Path(ref)
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError as exc:
        raise InputError(f"key file {ref} not found") from exc
    except IsADirectoryError as exc:
        raise InputError(f"cannot read key file {ref}: it is a directory") from exc
    except OSError as exc:
        raise InputError(f"cannot read key file {ref}: {_why(exc)}") from exc
    except ValueError as exc:  # a NUL byte in the name
        raise InputError(f"cannot read key file {ref!r}: {exc}") from exc
    if len(data) > limit:
        raise InputError(f"file {ref} is larger than {limit} bytes; refusing to read it")
    return data
