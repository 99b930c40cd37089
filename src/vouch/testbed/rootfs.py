"""Build OCI image layouts on disk from real directory trees (streamed, never whole in memory).

- `tar_tree` packs a directory (or a subset) into a layer tar;
- `diff_tree` packs what an upper tree changed relative to a lower one, with whiteouts for what it
  removed, so a layer can come from a real package operation (dpkg --purge in a chroot copy);
- `LayoutWriter` gzips layers into a layout's blobs and writes config, manifest and index.json.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import stat
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vouch.oci import mediatypes as mt


def _walk(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        d = Path(dirpath)
        if d != root:
            yield d
        for f in sorted(filenames):
            yield d / f
        for dn in dirnames:
            p = d / dn
            if p.is_symlink():
                yield p
        dirnames[:] = [dn for dn in dirnames if not (d / dn).is_symlink()]


def _add(tf: tarfile.TarFile, root: Path, path: Path) -> None:
    rel = path.relative_to(root).as_posix()
    info = tf.gettarinfo(str(path), arcname=rel)
    info.uname = info.gname = ""
    if info.isreg():
        with path.open("rb") as f:
            tf.addfile(info, f)
    elif info.isdev() or info.isfifo():
        return  # device nodes and fifos stay out of test images
    else:
        tf.addfile(info)


def tar_tree(root: Path, out: Path, only: list[str] | None = None, exclude: list[str] | None = None) -> None:
    """Pack root (or the listed top-level entries) into an uncompressed tar at out."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        for path in _walk(root):
            rel = path.relative_to(root).as_posix()
            top = rel.split("/")[0]
            if only is not None and top not in only:
                continue
            if exclude is not None and any(rel == e or rel.startswith(e + "/") for e in exclude):
                continue
            _add(tf, root, path)


def _same(a: Path, b: Path) -> bool:
    sa, sb = a.lstat(), b.lstat()
    if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode) or sa.st_mode != sb.st_mode:
        return False
    if stat.S_ISLNK(sa.st_mode):
        return os.readlink(a) == os.readlink(b)
    if stat.S_ISREG(sa.st_mode):
        if sa.st_size != sb.st_size:
            return False
        with a.open("rb") as fa, b.open("rb") as fb:
            while True:
                x, y = fa.read(1 << 20), fb.read(1 << 20)
                if x != y:
                    return False
                if not x:
                    return True
    return True


def diff_tree(lower: Path, upper: Path, out: Path) -> None:
    """A layer tar turning lower into upper: changed/new entries, `.wh.NAME` for removed ones."""
    lower_set = {p.relative_to(lower).as_posix() for p in _walk(lower)}
    upper_paths = list(_walk(upper))
    upper_set = {p.relative_to(upper).as_posix() for p in upper_paths}
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        for path in upper_paths:
            rel = path.relative_to(upper).as_posix()
            if rel in lower_set and ((path.is_dir() and not path.is_symlink()) or _same(lower / rel, path)):
                continue
            _add(tf, upper, path)
        removed = sorted(lower_set - upper_set)
        removed_set = set(removed)
        for rel in removed:
            parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
            if parent and parent in removed_set:
                continue  # the parent's whiteout hides it
            name = rel.rsplit("/", 1)[-1]
            info = tarfile.TarInfo((parent + "/" if parent else "") + ".wh." + name)
            info.size = 0
            tf.addfile(info)


class LayoutWriter:
    """An OCI image layout on disk; layers are gzipped and hashed in one streamed pass."""

    def __init__(self, path: Path):
        self.path = path
        self.blobs = path / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.layers: list[dict[str, Any]] = []
        self.diff_ids: list[str] = []

    def _put(self, data: bytes) -> str:
        d = hashlib.sha256(data).hexdigest()
        (self.blobs / d).write_bytes(data)
        return "sha256:" + d

    def add_layer_tar(self, tar_path: Path, level: int = 6) -> None:
        diff = hashlib.sha256()
        tmp = self.blobs / f".tmp-{os.getpid()}"
        comp = hashlib.sha256()

        class _Hashing:
            def __init__(self, f: Any):
                self.f = f

            def write(self, b: bytes) -> int:
                comp.update(b)
                return int(self.f.write(b))

            def flush(self) -> None:
                self.f.flush()

        with tmp.open("wb") as raw, tar_path.open("rb") as src:
            hw = _Hashing(raw)
            with gzip.GzipFile(fileobj=hw, mode="wb", compresslevel=level, mtime=0) as gz:
                while chunk := src.read(1 << 20):
                    diff.update(chunk)
                    gz.write(chunk)
        digest = comp.hexdigest()
        size = tmp.stat().st_size
        tmp.rename(self.blobs / digest)
        self.layers.append({"mediaType": mt.OCI_LAYER_GZIP, "digest": "sha256:" + digest, "size": size})
        self.diff_ids.append("sha256:" + diff.hexdigest())

    def finish(self, tag: str = "latest", arch: str = "amd64") -> str:
        config = json.dumps({"architecture": arch, "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": self.diff_ids}},
                            separators=(",", ":")).encode()
        cfg_digest = self._put(config)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                               "config": {"mediaType": mt.OCI_CONFIG, "digest": cfg_digest, "size": len(config)},
                               "layers": self.layers}, separators=(",", ":")).encode()
        m_digest = self._put(manifest)
        (self.path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        (self.path / "index.json").write_text(json.dumps({
            "schemaVersion": 2, "mediaType": mt.OCI_INDEX,
            "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": m_digest, "size": len(manifest),
                           "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
        return m_digest


def copy_tree(src: Path, dst: Path) -> None:
    """Copy a root filesystem. Device nodes, fifos and sockets are skipped, never read: reading
    `dev/zero` or `dev/full` as a file would fill the disk."""

    def special(directory: str, names: list[str]) -> list[str]:
        skip = []
        for n in names:
            mode = os.lstat(os.path.join(directory, n)).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                skip.append(n)
        return skip

    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, symlinks=True, ignore=special)
