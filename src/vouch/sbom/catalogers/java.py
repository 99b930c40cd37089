"""Java archives (jar, war, ear and kin), nested ones too (Spring Boot `BOOT-INF/lib`, `WEB-INF/lib`).

Identity, best evidence first: a `pom.properties` anywhere in the archive (Maven writes them under
`META-INF/maven/<g>/<a>/`; a shaded jar holds several, relocated builds move them) — each is listed;
then `META-INF/MANIFEST.MF` (a Jenkins plugin's `Short-Name`, `Implementation-*`, the OSGi
`Bundle-SymbolicName`); then the file name (`name-1.2.3.jar`), which wins over the manifest's
names when it has that form.
Nesting depth, member count, every member's declared size and the total inflated per archive are
bounded, so a zip bomb or an archive nested a thousand deep is reported and skipped.
"""

from __future__ import annotations

import posixpath
import re
import shutil
import struct
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import BinaryIO

from vouch import limits
from vouch.sbom.catalogers.base import location, purl
from vouch.sbom.fsview import SPOOL_MEMORY, ImageView
from vouch.sbom.licenses import normalize_name_or_url
from vouch.sbom.model import Distro, Package

SUFFIXES = (".jar", ".war", ".ear", ".jpi", ".hpi", ".par", ".sar", ".nar", ".kar", ".lpkg")
MAX_DEPTH = limits.SBOM_JAVA_MAX_DEPTH
MAX_MEMBERS = limits.SBOM_JAVA_MAX_MEMBERS
MAX_NESTED_BYTES = limits.SBOM_JAVA_MAX_NESTED_BYTES  # one nested archive, inflated
MAX_TOTAL_BYTES = limits.SBOM_JAVA_MAX_TOTAL_BYTES  # everything inflated under one top-level archive
MAX_META_BYTES = limits.SBOM_JAVA_MAX_META_BYTES  # a manifest or pom.properties
MAX_DIRECTORY_BYTES = limits.SBOM_JAVA_MAX_DIRECTORY_BYTES  # the central directory, before zipfile parses it
_FILENAME = re.compile(r"^(?P<name>.+?)-(?P<version>\d[\w.\-+]*?)(?:\.[a-zA-Z]+)$")


class ArchiveLimit(ValueError):
    pass


@dataclass
class JavaPackage:
    group: str
    artifact: str
    version: str
    path: str  # outer.jar:BOOT-INF/lib/inner.jar
    evidence: str  # pom.properties | manifest | filename
    licenses: list[str] = field(default_factory=list)
    main: bool = False


@dataclass
class JavaScan:
    packages: list[JavaPackage]
    warnings: list[str]


@dataclass
class _Budget:
    left: int

    def take(self, n: int, what: str) -> None:
        self.left -= n
        if self.left < 0:
            raise ArchiveLimit(f"{what}: more than {MAX_TOTAL_BYTES} bytes inflated in one archive (zip bomb?)")


def parse_manifest(text: str) -> dict[str, str]:
    """The main section of MANIFEST.MF (continuation lines start with one space; collected and joined
    once, as appending to the value would copy it per line)."""
    out: dict[str, list[str]] = {}
    key = None
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not raw.strip():
            if out:
                break  # end of the main section
            continue
        if raw.startswith(" ") and key:
            out[key].append(raw[1:])
            continue
        k, sep, v = raw.partition(":")
        if sep:
            key = k.strip()
            out[key] = [v.strip()]
    return {k: "".join(v) for k, v in out.items()}


def parse_properties(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        k, sep, v = line.partition("=")
        if not sep:
            k, sep, v = line.partition(":")
        out[k.strip()] = v.strip()
    return out


def _between(text: str, start: str, end: str) -> str | None:
    i = text.find(start)
    if i < 0:
        return None
    j = text.find(end, i + len(start))
    return text[i + len(start):j] if j >= 0 else None


def pom_xml_licenses(text: str) -> list[str]:
    """`<licenses>` of a pom.xml, read with plain string searches: linear time on hostile input, and no
    XML parser ever sees untrusted entities."""
    block = _between(text, "<licenses>", "</licenses>")
    if block is None:
        return []
    out: list[str] = []
    for piece in block.split("<license>")[1:]:
        entry = piece.split("</license>", 1)[0]
        name, url = _between(entry, "<name>", "</name>"), _between(entry, "<url>", "</url>")
        value = (normalize_name_or_url(name) if name else None) or (normalize_name_or_url(url) if url else None) \
            or (name.strip() if name and name.strip() else None)
        if value and value not in out:
            out.append(value)
    return out


def _split_outside_quotes(text: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def manifest_licenses(manifest: dict[str, str]) -> list[str]:
    """OSGi `Bundle-License`: SPDX ids or licence URLs, comma-separated, with `;attribute` parts."""
    out: list[str] = []
    for part in _split_outside_quotes(manifest.get("Bundle-License", "")):
        token = part.split(";", 1)[0].strip().strip('"')
        if not token:
            continue
        value = normalize_name_or_url(token) or token
        if value not in out:
            out.append(value)
    return out


# Stored and deflate only, as the JAR format itself: zipfile inflates those in bounded calls, but hands
# a bzip2 or LZMA member's whole expansion back from one call (380 bytes of bzip2 were 300 MiB at once).
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def _central_directory_size(f: BinaryIO) -> int:
    """The central directory's size from the end record (zip64 too), read before zipfile builds an
    object per member: that costs ~10x the directory's bytes in memory."""
    f.seek(0, 2)
    end = f.tell()
    f.seek(max(0, end - 65557))
    tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return 0  # zipfile reports what is wrong
    size = struct.unpack_from("<I", tail, at + 12)[0]
    locator = at - 20
    if size == 0xFFFFFFFF and locator >= 0 and tail[locator:locator + 4] == b"PK\x06\x07":
        f.seek(struct.unpack_from("<Q", tail, locator + 8)[0])
        record = f.read(56)
        if len(record) == 56 and record[:4] == b"PK\x06\x06":
            size = struct.unpack_from("<Q", record, 40)[0]
    return int(size)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, budget: _Budget, what: str) -> bytes:
    if info.compress_type not in _METHODS:
        raise ArchiveLimit(f"{what}:{info.filename} is compressed with method {info.compress_type}, which jars "
                           "do not use; not read")
    if info.file_size > limit:
        raise ArchiveLimit(f"{what}:{info.filename} declares {info.file_size} bytes, over {limit}")
    budget.take(info.file_size, what)
    with zf.open(info) as f:
        data = f.read(limit + 1)  # zipfile stops at the declared size and checks the CRC
    if len(data) > limit:
        raise ArchiveLimit(f"{what}:{info.filename} inflates beyond {limit} bytes")
    return data


def scan_archive(f: BinaryIO, path: str, depth: int = 0, budget: _Budget | None = None,
                 warnings: list[str] | None = None) -> list[JavaPackage]:
    budget = budget or _Budget(MAX_TOTAL_BYTES)
    warnings = warnings if warnings is not None else []
    directory = _central_directory_size(f)
    if directory > MAX_DIRECTORY_BYTES:
        raise ArchiveLimit(f"{path}: a central directory of {directory} bytes, over {MAX_DIRECTORY_BYTES}")
    f.seek(0)
    zf = zipfile.ZipFile(f)
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ArchiveLimit(f"{path}: {len(infos)} members, over {MAX_MEMBERS}")
    manifest: dict[str, str] = {}
    poms: list[dict[str, str]] = []
    pom_licenses: dict[str, list[str]] = {}
    nested: list[zipfile.ZipInfo] = []
    for info in infos:
        name = info.filename
        if info.compress_type not in _METHODS:  # never read (see _METHODS); said so if it mattered
            if name.upper() == "META-INF/MANIFEST.MF" or _is_pom_file(name, "pom.properties") or \
                    name.lower().endswith(SUFFIXES):
                warnings.append(f"{path}:{name}: compressed with method {info.compress_type}, which jars do not "
                                "use; not read")
            continue
        if name.upper() == "META-INF/MANIFEST.MF" and not info.is_dir():
            manifest = parse_manifest(_read_member(zf, info, MAX_META_BYTES, budget, path).decode("utf-8", "replace"))
        elif _is_pom_file(name, "pom.properties"):
            props = parse_properties(_read_member(zf, info, MAX_META_BYTES, budget, path).decode("utf-8", "replace"))
            if props.get("artifactId") and props.get("version") and not _template(props):
                props["_dir"] = posixpath.dirname(name)
                poms.append(props)
        elif _is_pom_file(name, "pom.xml") and posixpath.dirname(name):
            text = _read_member(zf, info, MAX_META_BYTES, budget, path).decode("utf-8", "replace")
            pom_licenses[posixpath.dirname(name)] = pom_xml_licenses(text)
        elif name.lower().endswith(SUFFIXES) and not info.is_dir():
            nested.append(info)
    found = identify(path, manifest, poms)
    bundle = manifest_licenses(manifest)
    by_dir = {p["artifactId"]: pom_licenses.get(p["_dir"], []) for p in poms}
    for jp in found:
        jp.licenses = by_dir.get(jp.artifact) or (bundle if jp.main else [])
    if nested and depth + 1 > MAX_DEPTH:
        warnings.append(f"{path}: archives nested deeper than {MAX_DEPTH} levels were not read")
        return found
    for info in nested:
        inner = f"{path}:{info.filename}"
        if info.file_size > MAX_NESTED_BYTES:
            warnings.append(f"{inner}: declares {info.file_size} bytes, over {MAX_NESTED_BYTES}; not read")
            continue
        budget.take(info.file_size, path)
        try:
            with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY, prefix="vouch-") as spool:
                with zf.open(info) as src:  # stops at the declared size, checks the CRC
                    shutil.copyfileobj(src, spool, 1024 * 1024)
                spool.seek(0)
                found.extend(scan_archive(spool, inner, depth + 1, budget, warnings))  # type: ignore[arg-type]
        except ArchiveLimit:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
            warnings.append(f"{inner}: not a readable archive ({exc})")
    return found


def _is_pom_file(member: str, base: str) -> bool:
    """A Maven descriptor anywhere in the archive: `META-INF/maven/<g>/<a>/` is where Maven writes it, but
    a shaded build's relocation moves the bundled artefacts' descriptors with their classes
    (`com/acme/shaded/META-INF/maven/...`), and other tools put them elsewhere."""
    return member == base or member.endswith("/" + base)


def _template(props: dict[str, str]) -> bool:
    """An archetype's or a build's unfilled template (`version=${project.version}`): no package."""
    return any("${" in props.get(k, "") for k in ("groupId", "artifactId", "version"))


_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+\-]{0,199}")


def _token(value: str | None) -> str:
    """An attribute usable as an artifact id: one word (`spring-core`), not a title ("Spring Core")."""
    value = (value or "").split(";", 1)[0].strip()
    return value if _TOKEN.fullmatch(value) else ""


def _manifest_identity(base: str, file_name: str, file_version: str,
                       manifest: dict[str, str]) -> tuple[str, str, str, str]:
    """(group, artifact, version, evidence) of an archive no Maven descriptor names.

    The file name wins when it has the repository layout's `artifact-version` form; a name without a
    version (`test.jar`, `app.jar`, a Jenkins `gradle.hpi`) says nothing, and the manifest's own
    identity is used: a Jenkins plugin's `Short-Name`, then `Implementation-Title` (when it is an id,
    not a title), then the OSGi `Bundle-SymbolicName`."""
    jenkins = base.lower().endswith((".hpi", ".jpi"))
    symbolic = _token(manifest.get("Bundle-SymbolicName"))
    name = ""
    if jenkins:
        name = _token(manifest.get("Short-Name")) or _token(manifest.get("Extension-Name"))
    if not name and not file_version:
        name = _token(manifest.get("Implementation-Title")) or symbolic
    name = name or file_name
    versions = [manifest.get("Plugin-Version", "").split(" ", 1)[0]] if jenkins else []
    versions += [manifest.get(k, "") for k in ("Implementation-Version", "Bundle-Version", "Specification-Version")]
    from_manifest = next((v.strip() for v in versions if v.strip()), "")
    version = from_manifest or file_version
    group = _token(manifest.get("Group-Id")) or _token(manifest.get("Implementation-Vendor-Id"))
    if not group and symbolic and "." in symbolic and (symbolic == name or symbolic.endswith("." + name)):
        group = symbolic[:len(symbolic) - len(name) - 1] if symbolic != name else symbolic.rsplit(".", 1)[0]
    group = group or _known_group(name) or name
    return group, name, version, "manifest" if from_manifest or name != file_name else "filename"


def identify(path: str, manifest: dict[str, str], poms: list[dict[str, str]]) -> list[JavaPackage]:
    """The archive's own package (main=True) and any others its pom.properties name (shaded)."""
    base = posixpath.basename(path.rsplit(":", 1)[-1])
    m = _FILENAME.match(base) if len(base) <= 255 else None  # bounded: the pattern is quadratic
    file_name, file_version = (m.group("name"), m.group("version")) if m else (base.rsplit(".", 1)[0], "")
    out: list[JavaPackage] = []
    main_pom = next((p for p in poms if p["artifactId"] == file_name), None)
    if main_pom is None and len(poms) == 1 and (poms[0]["artifactId"] in base or not file_version):
        main_pom = poms[0]  # the one descriptor of an archive renamed on deployment (app.jar)
    for p in poms:
        out.append(JavaPackage(p.get("groupId") or p["artifactId"], p["artifactId"], p["version"], path,
                               "pom.properties", main=p is main_pom))
    if main_pom is None:
        group, name, version, evidence = _manifest_identity(base, file_name, file_version, manifest)
        if name and version:
            out.append(JavaPackage(group, name, version, path, evidence, main=True))
    return out


# Well-known artifact families whose jars carry no pom.properties (Spring's own builds, for one).
_FAMILIES = (("spring-boot", "org.springframework.boot"), ("spring-security-", "org.springframework.security"),
             ("spring-data-", "org.springframework.data"), ("spring-cloud-", "org.springframework.cloud"),
             ("spring-", "org.springframework"))


def _known_group(name: str) -> str | None:
    for prefix, group in _FAMILIES:
        if name.startswith(prefix):
            return group
    return None


class JavaCataloger:
    name = "java"
    max_file_bytes = 4 * 1024**3

    def wants(self, path: str, mode: int, size: int) -> bool:
        # runs for every regular file: lower-casing only the tail, not the whole path
        return path[-6:].lower().endswith(SUFFIXES)

    def accepts(self, path: str, head: bytes) -> bool:
        return True  # zipfile finds the central directory; executable jars start with a shell script

    def reduce_file(self, path: str, f: BinaryIO, size: int) -> JavaScan | None:
        scan = JavaScan([], [])
        scan.packages = scan_archive(f, path, warnings=scan.warnings)
        return scan if scan.packages or scan.warnings else None

    def catalog(self, view: ImageView, distro: Distro | None) -> list[Package]:
        packages: list[Package] = []
        for path, parsed in sorted(view.parsed_by(self.name)):
            scan: JavaScan = parsed.value
            view.warnings.extend(scan.warnings)
            for jp in scan.packages:
                pkg = Package(jp.artifact, jp.version, "maven", purl("maven", jp.group, jp.artifact, jp.version),
                              "java-archive", licenses=list(jp.licenses))
                pkg.properties["vouch:java:evidence"] = jp.evidence
                if jp.path != path:
                    pkg.properties["vouch:java:nested-path"] = "/" + jp.path
                pkg.locations.append(location(view, path, parsed.layer))
                packages.append(pkg)
        return packages
