"""What catalogers find: packages with identity, evidence and relationships."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Location:
    path: str
    layer_diff_id: str
    layer_index: int


@dataclass
class Package:
    name: str
    version: str
    type: str  # deb, apk, rpm, pypi, npm, golang, maven, cargo, gem, composer, nuget, binary
    purl: str
    cataloger: str
    arch: str | None = None
    licenses: list[str] = field(default_factory=list)
    source: str | None = None  # source package (deb Source, apk origin, rpm SOURCERPM)
    supplier: str | None = None
    description: str | None = None
    cpes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # paths the package owns
    locations: list[Location] = field(default_factory=list)  # where the evidence was found
    depends: list[str] = field(default_factory=list)  # names (resolved to refs later)
    provides: list[str] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)
    component_type: str = "library"  # library | application | framework | operating-system

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.type, self.name, self.version, self.arch or "")


@dataclass
class ImageSubject:
    """What was scanned: an image (REGISTRY/REPO, or the source spec) by its digest, or a directory."""

    name: str  # REGISTRY/REPO (or the source spec)
    digest: str  # manifest digest (a dir: source: the digest of its file listing)
    platform: str | None = None
    layer_diff_ids: list[str] | None = None
    manifest_digest: str | None = None  # the platform image's manifest when digest names an index
    kind: str = "image"  # image | directory


@dataclass(frozen=True, slots=True)
class FileDigest:
    """A regular file's content digests, computed while its layer streams (only when asked: SPDX files)."""

    sha1: str
    sha256: str
    layer_diff_id: str = ""


@dataclass
class Distro:
    id: str
    version_id: str
    name: str
    pretty_name: str | None = None
    id_like: list[str] = field(default_factory=list)
    version_codename: str | None = None

    @property
    def qualifier(self) -> str:
        """The purl `distro=` value as syft writes it (debian-12, alpine-3.20.3, rocky-9.4)."""
        return f"{self.id}-{self.version_id}" if self.version_id else self.id
