"""Generate an image's SBOM: source → merged filesystem view → catalogers → CycloneDX."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from vouch.errors import InputError
from vouch.oci.source import ImageSource, RegistrySource, select_platform
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
from vouch.sbom.cdx import ImageSubject, bom_json, build_bom
from vouch.sbom.distro import DistroFiles, detect_distro
from vouch.sbom.fsview import ImageView, LayerInfo, ViewOptions, add_layer
from vouch.sbom.model import Distro, Package


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

    def to_json(self, indent: int | None = None, files_detail: bool = False) -> str:
        return bom_json(build_bom(self.subject, self.distro, self.packages, self.timestamp, files_detail), indent)


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
    """Read the image once, layer by layer, and catalog it. `digest` pins the manifest to read."""
    catalogers = catalogers if catalogers is not None else default_catalogers()
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
    if not platform_str and config.get("os"):
        platform_str = f"{config.get('os')}/{config.get('architecture')}"
    claimers: list[object] = [DistroFiles(), *catalogers]
    view = ImageView()
    for i, (layer, diff_id) in enumerate(zip(layers, diff_ids, strict=True)):
        info = LayerInfo(i, layer.digest, diff_id, layer.media_type, layer.size)
        view.layers.append(info)
        if progress:
            progress(f"layer {i + 1}/{len(layers)} {layer.digest[:19]} ({layer.size} bytes)")
        add_layer(view, info, source.iter_blob(layer.digest), claimers, options)
    distro = detect_distro(view)
    packages: list[Package] = []
    for c in catalogers:
        packages.extend(c.catalog(view, distro))
    packages = dedupe(drop_os_owned(packages, view))
    subject_name = name or (source.ref.name if isinstance(source, RegistrySource) else source.name)
    subject = ImageSubject(subject_name, top_digest, platform_str, list(diff_ids), manifest.digest)
    return SbomResult(subject, distro, packages, view, pinned_timestamp(timestamp), list(view.warnings))


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
