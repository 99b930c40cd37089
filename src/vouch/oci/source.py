"""Where images are read from: a registry, an OCI layout directory, an oci-archive or docker-archive tar.

Spec syntax follows containers/image transports, with syft's scheme names as aliases:
  REF | docker://REF | registry:REF   a registry
  oci:DIR[:TAG] | oci-dir:DIR[:TAG]   an OCI image layout directory
  oci-archive:FILE[:TAG]              a tar of an OCI image layout (what `buildah push oci-archive:` writes)
  docker-archive:FILE[:REF]           `docker save` output
  dir:PATH                            an unpacked root filesystem (what `buildah mount` shows): `sbom` only
"""

from __future__ import annotations

import json
import re
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from vouch.errors import InputError, NotFoundError
from vouch.oci import mediatypes as mt
from vouch.oci.digest import check_digest, hasher_for, sha256_digest
from vouch.oci.manifest import Descriptor, Manifest
from vouch.oci.reference import Reference, parse_reference

if TYPE_CHECKING:
    from vouch.oci.client import RegistryClient

READ = 1024 * 1024


class ImageSource(Protocol):
    """Read-only access to one image (or index) and its blobs, everything digest-checked."""

    @property
    def name(self) -> str: ...

    def resolve(self) -> Descriptor: ...

    def manifest(self, digest: str) -> Manifest: ...

    def iter_blob(self, digest: str) -> Iterator[bytes]: ...

    def get_blob(self, digest: str, max_bytes: int = 64 * 1024 * 1024) -> bytes: ...


class RegistrySource:
    def __init__(self, client: RegistryClient, ref: Reference):
        self.client = client
        self.ref = ref
        self._resolved: Descriptor | None = None

    @property
    def name(self) -> str:
        return str(self.ref)

    def resolve(self) -> Descriptor:
        if self._resolved is None:
            self._resolved = self.client.resolve(self.ref)
        return self._resolved

    def manifest(self, digest: str) -> Manifest:
        return self.client.get_manifest(self.ref.with_digest(digest))

    def iter_blob(self, digest: str) -> Iterator[bytes]:
        return self.client.iter_blob(self.ref, digest)

    def get_blob(self, digest: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        return self.client.get_blob(self.ref, digest, max_bytes)


def _read_all(stream: IO[bytes], digest: str, what: str, max_bytes: int) -> bytes:
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError(f"{what}: blob {digest} is larger than {max_bytes} bytes")
    check_digest(data, digest, what)
    return data


def _iter_checked(stream: IO[bytes], digest: str, what: str) -> Iterator[bytes]:
    h = hasher_for(digest)
    with stream:
        while chunk := stream.read(READ):
            h.update(chunk)
            yield chunk
    got = f"{digest.split(':', 1)[0]}:{h.hexdigest()}"
    if got != digest:
        raise InputError(f"{what}: blob {digest} has content digest {got}; the archive is corrupt or tampered")


def _pick_from_index(index: dict[str, Any], tag: str | None, what: str) -> Descriptor:
    manifests = index.get("manifests") or []
    if tag:
        for m in manifests:
            if (m.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag:
                return Descriptor.from_json(m)
        raise InputError(f"{what}: no image tagged {tag!r} in index.json")
    if len(manifests) != 1:
        # a directory of `cosign save` / `vouch save`: the image is the one entry cosign's `kind` marks as such
        # (the others are its signatures and attestations)
        marked = [m for m in manifests if isinstance(m, dict) and (m.get("annotations") or {}).get("kind") in
                  ("dev.cosignproject.cosign/image", "dev.cosignproject.cosign/imageIndex")]
        if len(marked) == 1:
            return Descriptor.from_json(marked[0])
        raise InputError(f"{what}: index.json lists {len(manifests)} images; name one with :TAG")
    return Descriptor.from_json(manifests[0])


class LayoutSource:
    """An OCI image layout directory."""

    def __init__(self, path: Path, tag: str | None):
        self.path = path
        self.tag = tag
        if not (path / "index.json").is_file():
            raise InputError(f"{path} is not an OCI image layout (no index.json)")

    @property
    def name(self) -> str:
        return f"oci:{self.path}" + (f":{self.tag}" if self.tag else "")

    def _blob_path(self, digest: str) -> Path:
        algo, _, hexd = digest.partition(":")
        p = self.path / "blobs" / algo / hexd
        if not p.is_file():
            raise NotFoundError(f"{self.name}: blob {digest} is missing")
        return p

    def resolve(self) -> Descriptor:
        index = json.loads((self.path / "index.json").read_text())
        return _pick_from_index(index, self.tag, self.name)

    def manifest(self, digest: str) -> Manifest:
        with self._blob_path(digest).open("rb") as f:
            raw = _read_all(f, digest, self.name, 4 * 1024 * 1024)
        return Manifest(raw, _media_type_of(raw), digest)

    def iter_blob(self, digest: str) -> Iterator[bytes]:
        return _iter_checked(self._blob_path(digest).open("rb"), digest, self.name)

    def get_blob(self, digest: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        with self._blob_path(digest).open("rb") as f:
            return _read_all(f, digest, self.name, max_bytes)


class _TarReader:
    """Random access to members of an uncompressed tar file (thread-safe: one handle per read)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            with tarfile.open(path, "r:") as tf:
                self.members = {m.name.lstrip("./").lstrip("/"): m for m in tf.getmembers() if m.isfile()}
        except (tarfile.TarError, OSError) as exc:
            raise InputError(f"{path}: not a readable tar archive ({exc})") from exc
        self._lock = threading.Lock()

    def open(self, name: str) -> IO[bytes]:
        member = self.members.get(name.lstrip("./"))
        if member is None:
            raise NotFoundError(f"{self.path}: no member {name!r}")
        tf = tarfile.open(self.path, "r:")  # noqa: SIM115 - closed with the returned member file
        f = tf.extractfile(member)
        if f is None:
            raise InputError(f"{self.path}: member {name!r} is not a regular file")
        return f


class OciArchiveSource:
    def __init__(self, path: Path, tag: str | None):
        self.path = path
        self.tag = tag
        self.tar = _TarReader(path)
        if "index.json" not in self.tar.members:
            raise InputError(f"{path} is not an oci-archive (no index.json inside)")

    @property
    def name(self) -> str:
        return f"oci-archive:{self.path}" + (f":{self.tag}" if self.tag else "")

    def resolve(self) -> Descriptor:
        with self.tar.open("index.json") as f:
            index = json.loads(f.read())
        return _pick_from_index(index, self.tag, self.name)

    def _member(self, digest: str) -> str:
        algo, _, hexd = digest.partition(":")
        return f"blobs/{algo}/{hexd}"

    def manifest(self, digest: str) -> Manifest:
        with self.tar.open(self._member(digest)) as f:
            raw = _read_all(f, digest, self.name, 4 * 1024 * 1024)
        return Manifest(raw, _media_type_of(raw), digest)

    def iter_blob(self, digest: str) -> Iterator[bytes]:
        return _iter_checked(self.tar.open(self._member(digest)), digest, self.name)

    def get_blob(self, digest: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        with self.tar.open(self._member(digest)) as f:
            return _read_all(f, digest, self.name, max_bytes)


class DockerArchiveSource:
    """`docker save` output: synthesises a Docker v2 manifest (digests of the files as stored)."""

    def __init__(self, path: Path, ref: str | None):
        self.path = path
        self.tar = _TarReader(path)
        if "manifest.json" not in self.tar.members:
            raise InputError(f"{path} is not a docker-archive (no manifest.json inside)")
        with self.tar.open("manifest.json") as f:
            entries = json.loads(f.read())
        if not isinstance(entries, list) or not entries:
            raise InputError(f"{path}: manifest.json lists no image")
        entry = entries[0]
        if ref:
            matches = [e for e in entries if ref in (e.get("RepoTags") or [])]
            if not matches:
                raise InputError(f"{path}: no image tagged {ref!r}")
            entry = matches[0]
        elif len(entries) > 1:
            raise InputError(f"{path} holds {len(entries)} images; name one with :REPO:TAG")
        self.ref = ref
        self._files: dict[str, str] = {}
        config_name = str(entry["Config"])
        config_digest = self._digest_of(config_name)
        layers = []
        for name in entry["Layers"]:
            digest = self._digest_of(str(name))
            with self.tar.open(str(name)) as f:
                magic = f.read(4)
            media = mt.DOCKER_LAYER_GZIP if magic[:2] == b"\x1f\x8b" else mt.DOCKER_LAYER
            if magic == b"\x28\xb5\x2f\xfd":
                media = mt.OCI_LAYER_ZSTD
            layers.append({"mediaType": media, "size": self.tar.members[_norm(name)].size, "digest": digest})
        manifest = {
            "schemaVersion": 2,
            "mediaType": mt.DOCKER_MANIFEST,
            "config": {"mediaType": mt.DOCKER_CONFIG, "size": self.tar.members[_norm(config_name)].size,
                       "digest": config_digest},
            "layers": layers,
        }
        self._manifest_raw = json.dumps(manifest, separators=(",", ":")).encode()
        self._manifest_digest = sha256_digest(self._manifest_raw)

    def _digest_of(self, name: str) -> str:
        h = hasher_for("sha256:" + "0" * 64)
        with self.tar.open(name) as f:
            while chunk := f.read(READ):
                h.update(chunk)
        digest = "sha256:" + h.hexdigest()
        self._files[digest] = name
        return digest

    @property
    def name(self) -> str:
        return f"docker-archive:{self.path}" + (f":{self.ref}" if self.ref else "")

    def resolve(self) -> Descriptor:
        return Descriptor(mt.DOCKER_MANIFEST, self._manifest_digest, len(self._manifest_raw))

    def manifest(self, digest: str) -> Manifest:
        if digest != self._manifest_digest:
            raise NotFoundError(f"{self.name}: no manifest {digest}")
        return Manifest(self._manifest_raw, mt.DOCKER_MANIFEST, digest)

    def _open(self, digest: str) -> IO[bytes]:
        name = self._files.get(digest)
        if name is None:
            raise NotFoundError(f"{self.name}: no blob {digest}")
        return self.tar.open(name)

    def iter_blob(self, digest: str) -> Iterator[bytes]:
        return _iter_checked(self._open(digest), digest, self.name)

    def get_blob(self, digest: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        with self._open(digest) as f:
            return _read_all(f, digest, self.name, max_bytes)


def _norm(name: str) -> str:
    return name.lstrip("./").lstrip("/")


def _media_type_of(raw: bytes) -> str:
    try:
        obj = json.loads(raw)
    except ValueError as exc:
        raise InputError("manifest is not valid JSON") from exc
    media = obj.get("mediaType")
    if media:
        return str(media)
    return mt.OCI_INDEX if "manifests" in obj else mt.OCI_MANIFEST


def _split_path_tag(rest: str) -> tuple[str, str | None]:
    path, sep, tag = rest.rpartition(":")
    if sep and "/" not in tag and path:
        return path, tag
    return rest, None


class DirSource:
    """An unpacked root filesystem. Not an image: it has no manifest or layers (generate_sbom reads it
    with fsview.add_directory); the image operations refuse it in one line."""

    def __init__(self, path: Path):
        self.path = path
        if not path.is_dir():
            raise InputError(f"dir:{path}: not a directory" + (" (it does not exist)" if not path.exists() else ""))

    @property
    def name(self) -> str:
        return f"dir:{self.path}"

    def _refuse(self) -> InputError:
        return InputError(f"{self.name} is a directory, not an image: only `vouch sbom` reads it (digest, manifest, "
                          "copy, sign and attest need an image)")

    def resolve(self) -> Descriptor:
        raise self._refuse()

    def manifest(self, digest: str) -> Manifest:
        raise self._refuse()

    def iter_blob(self, digest: str) -> Iterator[bytes]:
        raise self._refuse()

    def get_blob(self, digest: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        raise self._refuse()


SCHEMES = ("registry:", "docker://", "oci:", "oci-dir:", "oci-archive:", "docker-archive:", "dir:")
# syft's other sources, which read through a daemon or a single file: refused with what to do instead
_DAEMON = {"docker": "docker save -o image.tar IMAGE, then docker-archive:image.tar",
           "podman": "podman save --format oci-archive -o image.tar IMAGE, then oci-archive:image.tar",
           "containerd": "ctr image export image.tar IMAGE, then oci-archive:image.tar"}
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(?://)?")


def unknown_scheme(spec: str) -> str | None:
    """The scheme of a spec that names a source scheme vouch does not know ("dir2:/x", "file:a.tar"), else
    None (a plain reference: `alpine:3.20`, `localhost:5000/app` are not schemes)."""
    m = _SCHEME_RE.match(spec)
    if m is None:
        return None
    rest = spec[m.end():]
    # `docker:dind` is an image and a tag; `docker:/x`, `file:./a.tar` and `x://…` can only be schemes
    if "://" in spec[:m.end()] or rest.startswith(("/", "./", "../", "~")):
        return m[1]
    return None


def open_source(spec: str, client: RegistryClient | Callable[[], RegistryClient]) -> ImageSource:
    """Open an image source from a transport-prefixed spec (see module doc). `client` may be a function that
    makes one: it is then called only for a registry (reading a layout or an archive imports no HTTP code)."""
    if callable(client):  # a factory (a RegistryClient is not callable)
        return _open_source(spec, client)
    given = client
    return _open_source(spec, lambda: given)


def _open_source(spec: str, client: Callable[[], RegistryClient]) -> ImageSource:
    if spec.startswith("registry:"):
        spec = spec[len("registry:"):]
        if spec.startswith("//"):
            spec = spec[2:]
        return RegistrySource(client(), parse_reference(spec))
    if spec.startswith("dir:"):
        if not spec[4:]:
            raise InputError("dir: needs a path: dir:/path/to/rootfs")
        return DirSource(Path(spec[4:]))
    if spec.startswith("oci-dir:"):
        spec = "oci:" + spec[len("oci-dir:"):]
    if spec.startswith("oci:"):
        path, tag = _split_path_tag(spec[4:])
        return LayoutSource(Path(path), tag)
    if spec.startswith("oci-archive:"):
        path, tag = _split_path_tag(spec[len("oci-archive:"):])
        return OciArchiveSource(Path(path), tag)
    if spec.startswith("docker-archive:"):
        rest = spec[len("docker-archive:"):]
        path, _, ref = rest.partition(":")
        return DockerArchiveSource(Path(path), ref or None)
    if spec.startswith("docker://"):
        spec = spec[len("docker://"):]
    elif (scheme := unknown_scheme(spec)) is not None:
        hint = _DAEMON.get(scheme.lower())
        raise InputError(f"unknown source scheme {scheme + ':'!r} in {spec!r}: vouch reads "
                         f"{', '.join(SCHEMES)} or a plain image reference"
                         + (f" (for a {scheme} image: {hint})" if hint else ""))
    return RegistrySource(client(), parse_reference(spec))


def parse_platform(text: str) -> dict[str, str]:
    parts = text.split("/")
    if len(parts) < 2 or len(parts) > 3 or not all(parts):
        raise InputError(f"invalid platform {text!r}: write os/arch or os/arch/variant (linux/arm64)")
    out = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        out["variant"] = parts[2]
    return out


def select_platform(index: Manifest, platform: str | None) -> Descriptor:
    """Pick the child of an index for a platform (default linux/amd64)."""
    want = parse_platform(platform or "linux/amd64")
    candidates = []
    for child in index.children():
        p = child.platform or {}
        if p.get("os") == want["os"] and p.get("architecture") == want["architecture"]:
            if "variant" in want and p.get("variant") != want["variant"]:
                continue
            candidates.append(child)
    if not candidates:
        have = sorted({f"{(c.platform or {}).get('os')}/{(c.platform or {}).get('architecture')}"
                       for c in index.children()})
        raise InputError(f"no image for platform {platform or 'linux/amd64'} in index {index.digest} "
                         f"(it has: {', '.join(have) or 'none'}); pick one with --platform")
    return candidates[0]
