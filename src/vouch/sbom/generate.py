"""Generate an image's SBOM: source → merged filesystem view → catalogers → the neutral model (packages),
encoded by sbom/formats.py as CycloneDX or SPDX."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from vouch.errors import InputError
from vouch.oci.source import DirSource, ImageSource, RegistrySource, select_platform
from vouch.sbom.catalogers.apk import ApkCataloger
from vouch.sbom.catalogers.base import Cataloger
from vouch.sbom.catalogers.binary import BinaryCataloger
from vouch.sbom.catalogers.dotnet import DotnetCataloger
from vouch.sbom.catalogers.dpkg import DpkgCataloger
from vouch.sbom.catalogers.java import JavaCataloger
from vouch.sbom.catalogers.jvm import JvmCataloger
from vouch.sbom.catalogers.npm import NpmCataloger
from vouch.sbom.catalogers.php import ComposerCataloger
from vouch.sbom.catalogers.python import PythonCataloger
from vouch.sbom.catalogers.rpmdb import RpmCataloger
from vouch.sbom.catalogers.ruby import RubyCataloger
from vouch.sbom.distro import DistroFiles, detect_distro
from vouch.sbom.formats import DEFAULT, encoder
from vouch.sbom.fsview import SCOPES, ImageView, LayerInfo, Node, Parsed, ViewOptions, add_directory, add_layer
from vouch.sbom.model import Distro, ImageSubject, Package


def default_catalogers() -> list[Cataloger]:
    return [DpkgCataloger(), ApkCataloger(), RpmCataloger(), PythonCataloger(), NpmCataloger(), RubyCataloger(),
            ComposerCataloger(), DotnetCataloger(), JavaCataloger(), JvmCataloger(), BinaryCataloger()]


@dataclass
class SbomResult:
    subject: ImageSubject
    distro: Distro | None
    packages: list[Package]
    view: ImageView
    timestamp: dt.datetime
    warnings: list[str] = field(default_factory=list)
    scope: str = "squashed"

    def to_json(self, indent: int | None = None, files_detail: bool = False, format: str = DEFAULT) -> str:
        """The document in a format of sbom/formats.py (cyclonedx-json, spdx-json)."""
        digests = None
        if files_detail and self.view.digests:  # a package's file as it lists it (/bin/bash) → the file's digests
            digests = {}
            for pkg in self.packages:
                for f in pkg.files:
                    d = self.view.digests.get(self.view.resolve(f))
                    if d is not None:
                        digests[f.lstrip("/")] = d
        return encoder(format).encode(self.subject, self.distro, self.packages, self.timestamp, files_detail,
                                      digests, indent)

    def ecosystems(self) -> dict[str, int]:
        """Packages per purl type (deb, pypi, golang …), most first."""
        counts: dict[str, int] = {}
        for p in self.packages:
            kind = p.purl[4:].split("/", 1)[0] if p.purl.startswith("pkg:") else p.type
            counts[kind] = counts.get(kind, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def summary(self) -> list[str]:
        """The two stderr lines: what was scanned (platform and the digest actually read), and the count of
        packages per ecosystem."""
        s = self.subject
        what = f"{s.name}@{s.digest}" if s.kind != "directory" else f"dir:{s.name} (listing {s.digest})"
        if s.manifest_digest and s.manifest_digest != s.digest:
            what += f" (platform image {s.manifest_digest})"
        plat = f" [{s.platform}]" if s.platform else ""
        scope = f", scope {self.scope}" if self.scope != "squashed" else ""
        excluded = f", {self.view.excluded} paths excluded" if self.view.excluded else ""
        eco = ", ".join(f"{k} {n}" for k, n in self.ecosystems().items()) or "none"
        return [f"scanned {what}{plat}: {len(self.packages)} packages{scope}{excluded}",
                f"packages per ecosystem: {eco}"]


def pinned_timestamp(value: str | None) -> dt.datetime:
    """--timestamp (RFC 3339 or epoch seconds), else SOURCE_DATE_EPOCH, else now (UTC, whole seconds)."""
    raw = value or os.environ.get("SOURCE_DATE_EPOCH")
    if raw:
        try:
            if raw.isdigit():
                return dt.datetime.fromtimestamp(int(raw), tz=dt.UTC)
            parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        except (ValueError, OverflowError) as exc:
            raise InputError(f"invalid timestamp {raw!r}: use RFC 3339 (2026-04-25T10:00:00Z) or epoch seconds") \
                from exc
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def generate_sbom(source: ImageSource, platform: str | None = None, timestamp: str | None = None,
                  catalogers: list[Cataloger] | None = None, options: ViewOptions | None = None,
                  progress: Callable[[str], None] | None = None, name: str | None = None,
                  digest: str | None = None) -> SbomResult:
    """Read the image once, layer by layer, and catalog it. `digest` pins the manifest to read. A
    DirSource (dir:PATH) is read as the image's one layer, straight from the directory tree."""
    catalogers = catalogers if catalogers is not None else default_catalogers()
    options = options or ViewOptions()
    if options.scope not in SCOPES:
        raise InputError(f"unknown --scope {options.scope!r}: use {' or '.join(SCOPES)}")
    claimers: list[object] = [DistroFiles(), *catalogers]
    view = ImageView()
    if isinstance(source, DirSource):
        info = LayerInfo(0, source.name, "", "directory", 0, 1)
        view.layers.append(info)
        if progress:
            progress(f"reading {source.name}")
        listing = add_directory(view, str(source.path), info, claimers, options)
        subject = ImageSubject(name or str(source.path), listing, platform, None, None, kind="directory")
    else:
        desc = source.resolve() if digest is None else None
        top_digest = digest or (desc.digest if desc else "")
        manifest = source.manifest(top_digest)
        platform_str = platform
        if manifest.is_index:
            child = select_platform(manifest, platform)
            manifest = source.manifest(child.digest)
            p = child.platform or {}
            platform_str = "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)
        config_desc = manifest.config()
        try:
            config = json.loads(source.get_blob(config_desc.digest, 16 * 1024 * 1024))
        except ValueError as exc:
            raise InputError(f"image config {config_desc.digest} is not valid JSON") from exc
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        layers = manifest.layers()
        if len(diff_ids) != len(layers):
            raise InputError(f"image config lists {len(diff_ids)} diff_ids for {len(layers)} layers")
        if manifest.digest == top_digest and config.get("os"):  # one image, not an index: its config says
            platform_str = "/".join(str(x) for x in (config.get("os"), config.get("architecture"),
                                                     config.get("variant")) if x)
            if platform and not platform_str.startswith(platform):
                view.warnings.append(f"--platform {platform}: {top_digest} is one image (not an index), for "
                                     f"{platform_str}; scanned it as it is")
        # The layer's read and inflate threads take the GIL back after each call into C; the default switch
        # interval (5 ms) makes each of those wait that long for the tar walk, a zstd layer's inflate ran at
        # a fifth of its speed beside it (benchmarks: big image as zstd 2.63 -> 2.23 s at 0.5 ms).
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, 0.0005))
        try:
            for i, (layer, diff_id) in enumerate(zip(layers, diff_ids, strict=True)):
                info = LayerInfo(i, layer.digest, diff_id, layer.media_type, layer.size, len(layers))
                view.layers.append(info)
                if progress:
                    progress(f"{info.label}: {layer.size} bytes")
                add_layer(view, info, source.iter_blob(layer.digest), claimers, options)
        finally:
            sys.setswitchinterval(interval)
        subject_name = name or (source.ref.name if isinstance(source, RegistrySource) else source.name)
        subject = ImageSubject(subject_name, top_digest, platform_str, list(diff_ids), manifest.digest)
    distro = detect_distro(view)
    packages: list[Package] = []
    for c in catalogers:
        packages.extend(c.catalog(view, distro))
    packages = drop_os_owned(packages, view)
    if view.history:
        packages += deleted_packages(view, distro, catalogers, {p.purl for p in packages})
    packages = dedupe(packages)
    return SbomResult(subject, distro, packages, view, pinned_timestamp(timestamp), list(view.warnings),
                      options.scope)


def deleted_packages(view: ImageView, distro: Distro | None, catalogers: list[Cataloger],
                     present: set[str]) -> list[Package]:
    """--scope all-layers: the packages of what later layers hid or replaced. For each layer that did, the
    catalogers read the view as it was just below it (the records it replaced put back); a package found
    there that the image no longer has is kept, marked `vouch:package:deleted-by-layerIndex` / `…layerID`
    (0-based, as the location properties). One also in the final image only adds its older location."""
    assert view.history is not None
    by_layer: dict[int, dict[str, Parsed]] = {}
    for layer, path, parsed in view.history:
        by_layer.setdefault(layer, {}).setdefault(path, parsed)  # the first record a layer replaced
    out: list[Package] = []
    seen: set[str] = set()
    for layer in sorted(by_layer):
        old = by_layer[layer]
        nodes = dict(view.nodes)
        for path, parsed in old.items():
            if path not in nodes:
                first = parsed.layer
                nodes[path] = Node("f", first, max(first, layer - 1))
        ghost = replace(view, parsed={**view.parsed, **old}, nodes=nodes, warnings=[], history=None)
        found: list[Package] = []
        for c in catalogers:
            found.extend(c.catalog(ghost, distro))
        for p in drop_os_owned(found, ghost):
            if p.purl in present:
                out.append(p)  # the same package, also found where a lower layer had it: its location
                continue
            if p.purl in seen:
                continue
            seen.add(p.purl)
            p.properties["vouch:package:deleted-by-layerIndex"] = str(layer)
            p.properties["vouch:package:deleted-by-layerID"] = view.layers[layer].diff_id
            out.append(p)
    return out


OS_CATALOGERS = ("dpkg", "apk", "rpm")
# what is read from a file an OS package may own: the OS package database is the better evidence
FROM_FILES = ("binary-classifier", "elf-package-note", "java-jvm-release")


def drop_os_owned(packages: list[Package], view: ImageView) -> list[Package]:
    """A package identified from a binary (classifier, package note, a JVM's release file) whose file an
    OS package database owns is that OS package: not listed twice. A language package an OS package
    installed (Debian's python3-yaml brings PyYAML's dist-info) stays, as syft and Dependency-Track
    expect, marked `vouch:package:installed-by` with the OS package's purl: a scanner can then prefer
    the distribution's advisories (which know its backported fixes) over the upstream ones.
    Paths are compared after symlinks (/lib → usr/lib), as the package lists and the tar may differ."""
    owner: dict[str, Package] = {}
    for p in packages:
        if p.cataloger in OS_CATALOGERS:
            for f in p.files:
                owner.setdefault(view.resolve(f), p)
    out = []
    for p in packages:
        if p.cataloger in FROM_FILES and p.files and all(view.resolve(f) in owner for f in p.files):
            continue
        if p.cataloger not in OS_CATALOGERS and p.locations:
            by = owner.get(view.resolve(p.locations[0].path))
            if by is not None:
                p.properties["vouch:package:installed-by"] = by.purl
        out.append(p)
    return out


def dedupe(packages: list[Package]) -> list[Package]:
    """One component per purl: evidence from several places is merged, never listed twice (a set of
    the locations seen: the same jar at 20,000 paths must not cost 20,000² comparisons)."""
    out: dict[str, Package] = {}
    seen: dict[str, set[tuple[str, str, int]]] = {}
    for p in packages:
        prev = out.get(p.purl)
        if prev is None:
            out[p.purl] = p
            seen[p.purl] = {(loc.path, loc.layer_diff_id, loc.layer_index) for loc in p.locations}
            continue
        known = seen[p.purl]
        for loc in p.locations:
            key = (loc.path, loc.layer_diff_id, loc.layer_index)
            if key not in known:
                known.add(key)
                prev.locations.append(loc)
        prev.files = prev.files or p.files
        prev.licenses = prev.licenses or p.licenses
    return sorted(out.values(), key=lambda p: (p.type, p.name, p.version, p.purl))
