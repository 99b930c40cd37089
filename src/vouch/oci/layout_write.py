"""OCI image layout directories as a copy destination, and as the signed-image directories `cosign save`
writes and `cosign load` reads.

A layout is image-spec's `oci-layout`, `index.json` and `blobs/<alg>/<hex>`. vouch writes, besides the image:
- each `.sig`/`.att`/`.sbom` tag of every digest (the index and each platform image) as an `index.json` entry
  named by `org.opencontainers.image.ref.name` = the tag (`sha256-<hex>.sig`), its manifest byte for byte;
- each sigstore bundle referrer as an `index.json` entry (its manifest, with `subject`, byte for byte);
- cosign's own marks, so that stock `cosign load` finds them: `kind` = `dev.cosignproject.cosign/image` (or
  `/imageIndex`) on the image, `/sigs` and `/atts` on the top digest's signature and attestation tags.
  They mark the image most recently written; an older image's entries keep their names.

Reading (SignedLayout) takes what either tool wrote: cosign's `kind` marks, vouch's named tags, and the
bundle referrers cosign 3 leaves in `blobs/` without an `index.json` entry (found by their `subject`).

Every write is atomic: a blob goes to a temporary file in its directory, is checked against its digest,
fsynced and renamed; `index.json` is replaced by rename under a lock on the directory, after every blob it
names is in place, and only when its content changes (a re-run writes nothing). A crash leaves the old
`index.json` and at most a few unnamed blobs, which the next run reuses.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from vouch import limits
from vouch.errors import InputError, NotFoundError
from vouch.oci import mediatypes as mt
from vouch.oci.client import Descriptor, Manifest
from vouch.oci.digest import hasher_for, sha256_digest
from vouch.oci.source import LayoutSource

OCI_LAYOUT = b'{"imageLayoutVersion": "1.0.0"}'  # byte for byte what go-containerregistry (cosign) writes
REF_NAME = "org.opencontainers.image.ref.name"
KIND = "kind"  # cosign's annotation in a saved directory (pkg/oci/layout)
KIND_IMAGE = "dev.cosignproject.cosign/image"
KIND_INDEX = "dev.cosignproject.cosign/imageIndex"
KIND_SIGS = "dev.cosignproject.cosign/sigs"
KIND_ATTS = "dev.cosignproject.cosign/atts"
COSIGN_KINDS = frozenset({KIND_IMAGE, KIND_INDEX, KIND_SIGS, KIND_ATTS})
READ = 1024 * 1024
_HEX = {"sha256": re.compile(r"[0-9a-f]{64}"), "sha512": re.compile(r"[0-9a-f]{128}")}
_ATTACHMENT_TAG = re.compile(r"sha(256|512)-[0-9a-f]+\.(sig|att|sbom)")


def split_layout_spec(spec: str) -> tuple[Path, str | None] | None:
    """`oci:DIR[:TAG]` / `oci-dir:DIR[:TAG]` as (DIR, TAG), or None for any other spec."""
    for prefix in ("oci:", "oci-dir:"):
        if spec.startswith(prefix):
            rest = spec[len(prefix):]
            path, sep, tag = rest.rpartition(":")
            if sep and path and "/" not in tag:
                if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", tag):
                    raise InputError(f"{spec}: {tag[:60]!r} is not a valid tag (letters, digits, '.', '_', '-')")
                return Path(path), tag
            if not rest:
                raise InputError(f"{prefix} needs a directory: {prefix}DIR[:TAG]")
            return Path(rest), None
    return None


def blob_relpath(digest: str) -> Path:
    algo, _, hexd = digest.partition(":")
    pattern = _HEX.get(algo)
    if pattern is None or not pattern.fullmatch(hexd):
        raise InputError(f"digest {digest[:80]!r}: an OCI layout stores sha256 or sha512 blobs only")
    return Path("blobs") / algo / hexd


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LayoutWriter:
    """Writes into an OCI image layout directory (made when missing). A directory that holds other files
    and no layout is refused: vouch does not write a layout over someone's data."""

    def __init__(self, path: Path):
        self.path = path
        self.written_blobs = 0
        self.index_writes = 0
        if path.exists() and not path.is_dir():
            raise InputError(f"{path} exists and is not a directory; give a directory for the OCI layout")
        if path.is_dir() and not (path / "index.json").exists():
            others = [p.name for p in path.iterdir() if p.name not in ("oci-layout", "blobs")]
            if others:
                raise InputError(f"{path} is not an OCI image layout and is not empty (it holds {others[0]!r}); "
                                 "give a new or empty directory")
        try:
            (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            if not (path / "oci-layout").exists():
                self._atomic_write(path / "oci-layout", OCI_LAYOUT)
            if not (path / "index.json").exists():
                with self.locked():
                    if not (path / "index.json").exists():
                        self._atomic_write(path / "index.json", _index_bytes([]))
        except OSError as exc:
            raise InputError(f"cannot write the OCI layout {path}: {exc.strerror or exc}") from exc

    # ---- blobs -------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.path / blob_relpath(digest)

    def has_blob(self, digest: str, size: int | None = None) -> bool:
        """A blob is there when its file is (files appear only by rename after their digest was checked);
        a file of the wrong size is not it."""
        p = self.blob_path(digest)
        try:
            st = p.stat()
        except FileNotFoundError:
            return False
        return size is None or st.st_size == size

    def write_blob(self, chunks: Iterable[bytes], digest: str, size: int | None = None) -> bool:
        """Store a blob from chunks, checked against digest (and size) before it is renamed into place.
        Returns False (and reads nothing) when it is already there."""
        if self.has_blob(digest, size):
            return False
        target = self.blob_path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        h = hasher_for(digest)
        n = 0
        fd, tmp = tempfile.mkstemp(prefix=".vouch-tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    h.update(chunk)
                    n += len(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            got = f"{digest.split(':', 1)[0]}:{h.hexdigest()}"
            if got != digest or (size is not None and n != size):
                raise InputError(f"blob {digest} arrived with content digest {got} ({n} bytes); not written to "
                                 f"{self.path} (the source is corrupt or was altered)")
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self.written_blobs += 1
        return True

    def put_bytes(self, data: bytes) -> str:
        digest = sha256_digest(data)
        self.write_blob([data], digest, len(data))
        return digest

    def read_blob(self, digest: str, max_bytes: int = limits.MAX_MANIFEST_BYTES) -> bytes:
        return _read_checked(self.blob_path(digest), digest, str(self.path), max_bytes)

    # ---- index.json --------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """An exclusive lock on the layout directory (flock on its descriptor: no lock file in the layout)."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def entries(self) -> list[dict[str, Any]]:
        return read_index(self.path)

    def update_index(self, plan: Callable[[list[dict[str, Any]]], list[dict[str, Any]] | None]) -> bool:
        """Read-plan-replace of index.json under the directory lock. plan returns the new entry list or None;
        an unchanged list writes nothing. Returns whether index.json was replaced."""
        with self.locked():
            current = self.entries()
            new = plan([dict(e) for e in current])
            if new is None or new == current:
                return False
            self._atomic_write(self.path / "index.json", _index_bytes(new))
            self.index_writes += 1
            return True

    def _atomic_write(self, target: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".vouch-tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(target.parent)


def _index_bytes(entries: list[dict[str, Any]]) -> bytes:
    doc = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}
    return json.dumps(doc, indent=2).encode() + b"\n"


def read_index(path: Path) -> list[dict[str, Any]]:
    """index.json's entries, each checked to be a descriptor (the file comes from outside)."""
    try:
        raw = (path / "index.json").read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path} is not an OCI image layout (no index.json)") from None
    except OSError as exc:
        raise InputError(f"cannot read {path / 'index.json'}: {exc.strerror or exc}") from exc
    if len(raw) > limits.MAX_MANIFEST_BYTES:
        raise InputError(f"{path}/index.json is larger than {limits.MAX_MANIFEST_BYTES} bytes; refusing it")
    try:
        doc = json.loads(raw)
    except ValueError:
        raise InputError(f"{path}/index.json is not valid JSON; the layout is damaged") from None
    manifests = doc.get("manifests") if isinstance(doc, dict) else None
    if not isinstance(manifests, list):
        raise InputError(f"{path}/index.json has no `manifests` list; the layout is damaged")
    for m in manifests:
        Descriptor.from_json(m)
    return [dict(m) for m in manifests]


def _read_checked(p: Path, digest: str, where: str, max_bytes: int) -> bytes:
    try:
        with p.open("rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise NotFoundError(f"{where}: blob {digest} is missing") from None
    except OSError as exc:
        raise InputError(f"{where}: cannot read blob {digest}: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise InputError(f"{where}: blob {digest} is larger than {max_bytes} bytes; refusing it")
    h = hasher_for(digest)
    h.update(data)
    if f"{digest.split(':', 1)[0]}:{h.hexdigest()}" != digest:
        raise InputError(_corrupt(where, digest))
    return data


def _corrupt(where: str, digest: str) -> str:
    return (f"{where}: blob {digest} does not match its digest; the layout is corrupt or was altered "
            "(nothing was pushed for this image)")


def descriptor_json(d: Descriptor, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": d.media_type, "digest": d.digest, "size": d.size}
    if d.artifact_type:
        out["artifactType"] = d.artifact_type
    if annotations:
        out["annotations"] = dict(annotations)
    if d.platform is not None:
        out["platform"] = d.platform
    return out


def is_attachment_tag(name: str) -> bool:
    return _ATTACHMENT_TAG.fullmatch(name) is not None


class SignedLayout(LayoutSource):
    """An OCI layout read as a signed image: the image, its attachment tags and its bundle referrers.
    Every manifest and blob read is checked against its digest; a mismatch is an input error (exit 2)."""

    def __init__(self, path: Path, tag: str | None):
        super().__init__(path, tag)
        self._entries = [Descriptor.from_json(e) for e in read_index(path)]
        self._referrers: dict[str, list[str]] | None = None

    def _pick(self) -> Descriptor:
        named = [e for e in self._entries if (e.annotations or {}).get(REF_NAME)]
        if self.tag:
            for e in named:
                if (e.annotations or {}).get(REF_NAME) == self.tag:
                    return e
            raise InputError(f"{self.name}: no image tagged {self.tag!r} in index.json")
        marked = [e for e in self._entries if (e.annotations or {}).get(KIND) in (KIND_IMAGE, KIND_INDEX)]
        if marked:
            return marked[0]  # cosign load takes the first one, so does vouch
        images = [e for e in self._entries if not is_attachment_tag((e.annotations or {}).get(REF_NAME, ""))
                  and e.artifact_type not in _BUNDLE_ARTIFACTS]
        if len(images) != 1:
            raise InputError(f"{self.name}: index.json lists {len(images)} images and none is marked as the saved "
                             "one; name one with :TAG")
        return images[0]

    def resolve(self) -> Descriptor:
        d = self._pick()
        return Descriptor(d.media_type, d.digest, d.size, platform=d.platform)

    def blob_file(self, digest: str) -> Path:
        p = self.path / blob_relpath(digest)
        if not p.is_file():
            raise NotFoundError(f"{self.name}: blob {digest} is missing")
        return p

    def manifest(self, digest: str) -> Manifest:
        raw = _read_checked(self.blob_file(digest), digest, self.name, limits.MAX_MANIFEST_BYTES)
        try:
            media = json.loads(raw).get("mediaType")
        except (ValueError, AttributeError):
            raise InputError(f"{self.name}: manifest {digest} is not a JSON object") from None
        if not isinstance(media, str):
            media = mt.OCI_INDEX if b'"manifests"' in raw else mt.OCI_MANIFEST
        return Manifest(raw, media, digest)

    def get_blob(self, digest: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        return _read_checked(self.blob_file(digest), digest, self.name, max_bytes)

    def iter_blob(self, digest: str) -> Iterator[bytes]:
        path = self.blob_file(digest)

        def chunks() -> Iterator[bytes]:
            h = hasher_for(digest)
            with path.open("rb") as f:
                while chunk := f.read(READ):
                    h.update(chunk)
                    yield chunk
            if f"{digest.split(':', 1)[0]}:{h.hexdigest()}" != digest:
                raise InputError(_corrupt(self.name, digest))
        return chunks()

    def check_blob(self, digest: str, size: int | None = None) -> None:
        """Hash a blob's file (one read) and refuse it when it does not match: run before anything is pushed."""
        n = 0
        for chunk in self.iter_blob(digest):
            n += len(chunk)
        if size is not None and n != size:
            raise InputError(f"{self.name}: blob {digest} is {n} bytes, its descriptor says {size}; the layout is "
                             "corrupt (nothing was pushed for this image)")

    # ---- attachments -------------------------------------------------------------------------

    def tag_manifest(self, top: str, digest: str, tag: str, kind: str | None) -> Manifest | None:
        """The manifest of an attachment tag: vouch's named entry, else (for the saved image's own digest)
        the entry cosign marked with `kind`."""
        for e in self._entries:
            if (e.annotations or {}).get(REF_NAME) == tag:
                return self.manifest(e.digest)
        if kind is not None and digest == top:
            for e in self._entries:
                if (e.annotations or {}).get(KIND) == kind:
                    return self.manifest(e.digest)
        return None

    def referrers(self, digest: str) -> list[Manifest]:
        """Manifests in the layout whose `subject` is digest: those index.json lists and those `cosign save`
        leaves in blobs/ unlisted. Small JSON files only are looked at (at most MAX_MANIFEST_BYTES)."""
        if self._referrers is None:
            found: dict[str, list[str]] = {}
            for algo in ("sha256", "sha512"):
                d = self.path / "blobs" / algo
                if not d.is_dir():
                    continue
                for p in d.iterdir():
                    if p.name.startswith(".") or not _HEX[algo].fullmatch(p.name):
                        continue
                    try:
                        if p.stat().st_size > limits.MAX_MANIFEST_BYTES:
                            continue
                        with p.open("rb") as f:
                            head = f.read(1)
                            if head != b"{":
                                continue
                            body = json.loads(head + f.read())
                    except (OSError, ValueError):
                        continue
                    subject = body.get("subject") if isinstance(body, dict) else None
                    if isinstance(subject, dict) and isinstance(subject.get("digest"), str):
                        found.setdefault(subject["digest"], []).append(f"{algo}:{p.name}")
            self._referrers = {k: sorted(v) for k, v in found.items()}
        return [self.manifest(m) for m in self._referrers.get(digest, [])]


_BUNDLE_ARTIFACTS = frozenset({"application/vnd.dev.sigstore.bundle.v0.3+json",
                               "application/vnd.dev.sigstore.bundle+json;version=0.3"})
