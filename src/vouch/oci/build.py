"""Build real OCI images in memory (layers from files) and push them. Used by the demo and the tests."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vouch.oci import mediatypes as mt
from vouch.oci.client import RegistryClient
from vouch.oci.digest import sha256_digest
from vouch.oci.reference import Reference

# A layer entry: path -> bytes (a file), or a TarEntry for anything else.


@dataclass
class TarEntry:
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    linkname: str = ""
    mode: int = 0o644


LayerFiles = dict[str, "bytes | TarEntry"]


def make_tar(files: LayerFiles) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path in sorted(files):
            entry = files[path]
            if isinstance(entry, bytes):
                entry = TarEntry(data=entry)
            info = tarfile.TarInfo(path)
            info.type = entry.type
            info.mode = entry.mode if entry.type != tarfile.DIRTYPE else 0o755
            info.mtime = 0
            info.linkname = entry.linkname
            if entry.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
                info.size = len(entry.data)
                tf.addfile(info, io.BytesIO(entry.data))
            else:
                tf.addfile(info)
    return buf.getvalue()


@dataclass
class Layer:
    tar: bytes  # uncompressed
    blob: bytes  # as stored (gzip)
    media_type: str = mt.OCI_LAYER_GZIP

    @property
    def diff_id(self) -> str:
        return sha256_digest(self.tar)

    @property
    def digest(self) -> str:
        return sha256_digest(self.blob)

    @staticmethod
    def from_files(files: LayerFiles, compress: bool = True) -> Layer:
        tar = make_tar(files)
        if not compress:
            return Layer(tar, tar, mt.OCI_LAYER)
        return Layer(tar, gzip.compress(tar, mtime=0), mt.OCI_LAYER_GZIP)


@dataclass
class Image:
    layers: list[Layer]
    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None
    config_extra: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, str] | None = None

    def config_bytes(self) -> bytes:
        cfg: dict[str, Any] = {
            "architecture": self.architecture,
            "os": self.os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in self.layers]},
            **self.config_extra,
        }
        if self.variant:
            cfg["variant"] = self.variant
        return json.dumps(cfg, separators=(",", ":"), sort_keys=True).encode()

    def manifest_bytes(self) -> bytes:
        cfg = self.config_bytes()
        m: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": sha256_digest(cfg), "size": len(cfg)},
            "layers": [{"mediaType": la.media_type, "digest": la.digest, "size": len(la.blob)}
                       for la in self.layers],
        }
        if self.annotations:
            m["annotations"] = self.annotations
        return json.dumps(m, separators=(",", ":")).encode()

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest_bytes())

    def platform(self) -> dict[str, str]:
        p = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            p["variant"] = self.variant
        return p


@dataclass
class Index:
    images: list[Image]

    def manifest_bytes(self) -> bytes:
        m = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_INDEX,
            "manifests": [
                {"mediaType": mt.OCI_MANIFEST, "digest": img.digest, "size": len(img.manifest_bytes()),
                 "platform": img.platform()}
                for img in self.images
            ],
        }
        return json.dumps(m, separators=(",", ":")).encode()

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest_bytes())


def push_image(client: RegistryClient, ref: Reference, image: Image | Index) -> str:
    """Push an image or index (children first); tag it if ref has a tag. Returns the digest."""
    if isinstance(image, Index):
        for child in image.images:
            push_image(client, ref.with_digest(child.digest), child)
        raw = image.manifest_bytes()
        client.put_manifest(ref if ref.tag else ref.with_digest(image.digest), raw, mt.OCI_INDEX)
        return image.digest
    def ensure_blobs() -> None:
        for layer in image.layers:
            client.push_blob(ref, layer.blob, layer.digest)
        client.push_blob(ref, image.config_bytes())
    ensure_blobs()
    raw = image.manifest_bytes()
    return client.put_manifest(ref if ref.tag else ref.with_digest(image.digest), raw, mt.OCI_MANIFEST,
                               ensure_blobs=ensure_blobs)


def write_layout(path: Path, image: Image | Index, tag: str = "latest") -> str:
    """Write an OCI image layout directory holding image under tag."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> str:
        d = sha256_digest(data)
        (blobs / d.split(":")[1]).write_bytes(data)
        return d

    def write(img: Image | Index) -> tuple[str, int, str]:
        if isinstance(img, Index):
            for child in img.images:
                write(child)
            raw = img.manifest_bytes()
            return put(raw), len(raw), mt.OCI_INDEX
        for layer in img.layers:
            put(layer.blob)
        put(img.config_bytes())
        raw = img.manifest_bytes()
        return put(raw), len(raw), mt.OCI_MANIFEST

    digest, size, media = write(image)
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": media, "digest": digest, "size": size,
         "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    (path / "index.json").write_text(json.dumps(index))
    return digest
