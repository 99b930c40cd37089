"""Executables and shared libraries, read once from the layer stream:

- Go: the embedded build info (ELF, PE, Mach-O; both layouts) → the main module, every dependency
  (replacements applied) and the Go standard library as `stdlib` with the toolchain's version;
- Rust: the `.dep-v0` section `cargo auditable` embeds (zlib-compressed JSON; ELF, PE, Mach-O and
  WebAssembly) → every runtime crate;
- classifiers for binaries no package database lists (python, node, busybox, openssl, httpd, haproxy,
  nginx, memcached, php, ruby, perl, postgres): a version string found in the file's read-only data;
- package notes (`.note.package`, systemd's FDO packaging metadata) naming the distribution package a
  binary was built in — what distroless images without a package database still carry.
Packages found from a binary are dropped later when an OS package database owns the file
(`generate.drop_os_owned`), so nothing is reported twice.
"""

from __future__ import annotations

import json
import posixpath
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

from vouch import limits
from vouch.sbom.catalogers.base import location, purl
from vouch.sbom.catalogers.golang import (
    BuildInfo,
    Module,
    main_version,
    read_buildinfo,
    read_macho_buildinfo,
    read_pe_buildinfo,
)
from vouch.sbom.elf import ELF_MAGIC, ElfError, ElfFile
from vouch.sbom.fsview import ImageView
from vouch.sbom.macho import MachOFile, is_macho
from vouch.sbom.model import Distro, Package
from vouch.sbom.pe import PeFile

MAX_AUDIT_COMPRESSED = limits.SBOM_AUDIT_MAX_COMPRESSED
MAX_AUDIT_JSON = limits.SBOM_AUDIT_MAX_JSON
_SCAN_CHUNK = 16 * 1024 * 1024
_SCAN_OVERLAP = 256
_XCOFF = (b"\x01\xdf", b"\x01\xf7")  # 32- and 64-bit XCOFF, which debug/buildinfo reads too


@dataclass(frozen=True)
class Rule:
    package: str
    name: re.Pattern[str]  # on the file's base name; a `v` group is a version prefix the content must start with
    content: tuple[bytes, ...]  # patterns with a `version` group; `{v}` is replaced by the name's version
    cpes: tuple[str, ...]


# PY_VERSION ("3.11.7") stands alone in Debian's build; a source build (the official images, pyenv) lets the
# linker merge it into the tail of a longer string such as ".../versions/3.11.7" or "Python-3.11.7"
_PY_VERSION = rb"[\x00/-](?P<version>{v}\.[0-9]+(?:[abrc]+[0-9]+|\+)?)\x00"
_PY_CPES = ("cpe:2.3:a:python_software_foundation:python:{version}:*:*:*:*:*:*:*",
            "cpe:2.3:a:python:python:{version}:*:*:*:*:*:*:*")
RULES = (
    Rule("python", re.compile(r"^python(?P<v>[0-9]+\.[0-9]+)$"), (_PY_VERSION,), _PY_CPES),
    Rule("python", re.compile(r"^libpython(?P<v>[0-9]+\.[0-9]+)[a-z]?\.so"), (_PY_VERSION,), _PY_CPES),
    Rule("node", re.compile(r"^(node|libnode\.so.*)$"),
         (rb"node\.js/v(?P<version>[0-9]+\.[0-9]+\.[0-9]+)",
          rb"\x00(?:node )?v(?P<version>(?:0|4|5|6)\.[0-9]+\.[0-9]+)\x00"),
         ("cpe:2.3:a:nodejs:node.js:{version}:*:*:*:*:*:*:*",)),
    Rule("busybox", re.compile(r"^busybox$"), (rb"BusyBox\s+v(?P<version>[0-9]+\.[0-9]+\.[0-9]+)",),
         ("cpe:2.3:a:busybox:busybox:{version}:*:*:*:*:*:*:*",)),
    Rule("openssl", re.compile(r"^(openssl|libssl\.so.*|libcrypto\.so.*)$"),
         (rb"\x00OpenSSL (?P<version>[0-9]+\.[0-9]+\.[0-9]+(?:[a-z]+|-alpha[0-9]|-beta[0-9]|-rc[0-9])?)[ \x00]",),
         ("cpe:2.3:a:openssl:openssl:{version}:*:*:*:*:*:*:*",)),
    # servers and runtimes the official images build from source into /usr/local
    Rule("httpd", re.compile(r"^(httpd|apache2)$"), (rb"Apache/(?P<version>2\.[0-9]+\.[0-9]+)",),
         ("cpe:2.3:a:apache:http_server:{version}:*:*:*:*:*:*:*",)),
    Rule("nginx", re.compile(r"^nginx$"), (rb"nginx/(?P<version>[0-9]+\.[0-9]+\.[0-9]+)[\r\n\x00<]",),
         ("cpe:2.3:a:f5:nginx:{version}:*:*:*:*:*:*:*",)),
    Rule("haproxy", re.compile(r"^haproxy$"),
         (rb"\x00 version (?P<version>[0-9]+\.[0-9]+\.[0-9]+)(?:-[^\x00,]*)?, released",),
         ("cpe:2.3:a:haproxy:haproxy:{version}:*:*:*:*:*:*:*",)),
    Rule("memcached", re.compile(r"^memcached$"), (rb"\x00memcached (?P<version>[0-9]+\.[0-9]+\.[0-9]+)\x00",),
         ("cpe:2.3:a:memcached:memcached:{version}:*:*:*:*:*:*:*",)),
    Rule("php", re.compile(r"^(php[0-9.]*|php-fpm[0-9.]*|libphp[0-9.]*\.so)$"),
         (rb"X-Powered-By: PHP/(?P<version>[0-9]+\.[0-9]+\.[0-9]+)",),
         ("cpe:2.3:a:php:php:{version}:*:*:*:*:*:*:*",)),
    Rule("ruby", re.compile(r"^(ruby|libruby[-0-9.]*\.so.*)$"),
         (rb"ruby (?P<version>[0-9]+\.[0-9]+\.[0-9]+(?:p[0-9]+|preview[0-9]*|rc[0-9]*|dev)?) \(",),
         ("cpe:2.3:a:ruby-lang:ruby:{base}:*:*:*:*:*:*:*",)),
    Rule("perl", re.compile(r"^perl(?:[0-9.]+)?$"), (rb"\x00v(?P<version>5\.[0-9]+\.[0-9]+)\x00",),
         ("cpe:2.3:a:perl:perl:{version}:*:*:*:*:*:*:*",)),
    Rule("postgresql", re.compile(r"^postgres$"), (rb"\(PostgreSQL\) (?P<version>[0-9]+(?:\.[0-9]+)+)",),
         ("cpe:2.3:a:postgresql:postgresql:{version}:*:*:*:*:*:*:*",)),
)
# the first three letters of every rule's names: a cheap test before the regex
_NAME_PREFIXES = frozenset(("pyt", "lib", "nod", "bus", "ope", "htt", "apa", "ngi", "hap", "mem", "php", "rub",
                            "per", "pos"))
_NAMES = re.compile("|".join(f"(?:{r.name.pattern.replace('(?P<v>', '(')})" for r in RULES))


@dataclass
class Crate:
    name: str
    version: str
    source: str
    root: bool


@dataclass
class BinaryFacts:
    go: BuildInfo | None = None
    crates: list[Crate] | None = None
    classified: list[tuple[Rule, str]] | None = None
    notes: list[dict[str, str]] | None = None
    warnings: list[str] = field(default_factory=list)


FDO_PACKAGING_METADATA = 0xCAFE1A7E
MAX_NOTE = 64 * 1024


def read_package_notes(elf: ElfFile) -> list[dict[str, str]] | None:
    """systemd's package notes (`.note.package`, owner FDO): the JSON a distribution's build stamps into
    each binary (`ld --package-metadata`), naming the package it came from."""
    sec = elf.section(".note.package")
    if sec is None:
        return None
    data = elf.section_data(sec, MAX_NOTE)
    order = elf.order
    out = []
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from(order + "III", data, pos)
        pos += 12
        name = data[pos:pos + namesz].rstrip(b"\0")
        pos += namesz + (-namesz % 4)
        desc = data[pos:pos + descsz]
        pos += descsz + (-descsz % 4)
        if name != b"FDO" or ntype != FDO_PACKAGING_METADATA or pos > len(data):
            continue
        try:
            doc = json.loads(desc.rstrip(b"\0").decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            raise ElfError(f"a package note is not JSON ({exc})") from exc
        if isinstance(doc, dict) and isinstance(doc.get("name"), str) and isinstance(doc.get("version"), str) \
                and doc["name"].strip():
            out.append({k: v for k, v in doc.items() if isinstance(v, str)})
    return out or None


_NOTE_TYPES = frozenset(("rpm", "deb", "apk", "alpm"))  # purl types as they are; anything else is generic


def _cpe_product_version(cpe: str) -> tuple[str, str]:
    """(product, version) of a CPE 2.2 URI (cpe:/o:vendor:product:version) or 2.3 string."""
    parts = cpe.split(":")
    if cpe.startswith("cpe:/") and len(parts) >= 4:
        return parts[3], parts[4] if len(parts) > 4 else ""
    if cpe.startswith("cpe:2.3:") and len(parts) >= 6:
        return parts[4], parts[5] if parts[5] not in ("*", "-") else ""
    return "", ""


def note_package(note: dict[str, str], path: str) -> Package:
    os_name, os_version = note.get("os", ""), note.get("osVersion", "")
    if not (os_name and os_version) and note.get("osCpe"):
        cpe_os, cpe_version = _cpe_product_version(note["osCpe"])
        os_name, os_version = os_name or cpe_os, os_version or cpe_version
    ptype = note.get("type", "") if note.get("type") in _NOTE_TYPES else "generic"
    os_name = os_name.lower()  # Debian writes "Debian"; the purl types' namespaces are lowercase
    namespace = os_name if ptype != "generic" and os_name else note.get("system") or None
    distro = f"{os_name}-{os_version}" if os_name and os_version else os_name or None
    pkg = Package(note["name"], note["version"], ptype, purl(ptype, namespace, note["name"], note["version"],
                                                            {"distro": distro}),
                  "elf-package-note", arch=note.get("architecture"), files=["/" + path],
                  licenses=[note["license"]] if note.get("license") else [])
    if note.get("appCpe"):
        pkg.cpes.append(note["appCpe"])
    return pkg


def read_audit(exe: ElfFile | PeFile | MachOFile) -> list[Crate] | None:
    """The `.dep-v0` section cargo auditable embeds, in any of the formats it writes (go-rustaudit's
    names, the legacy ones too)."""
    legacy = {ElfFile: ".rust-deps-v0", PeFile: "rdep-v0", MachOFile: "rust-deps-v0"}[type(exe)]
    sec = exe.section(".dep-v0") or exe.section(legacy)
    if sec is None:
        return None
    return decode_audit(exe.section_data(sec, MAX_AUDIT_COMPRESSED))  # type: ignore[arg-type]


def decode_audit(raw: bytes) -> list[Crate]:
    d = zlib.decompressobj()
    try:
        text = d.decompress(raw, MAX_AUDIT_JSON)  # bounded output, one call
    except zlib.error as exc:
        raise ElfError(f"cargo-auditable data is not zlib ({exc})") from exc
    if d.unconsumed_tail:
        raise ElfError(f"cargo-auditable data expands beyond {MAX_AUDIT_JSON} bytes")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ElfError(f"cargo-auditable data is not JSON ({exc})") from exc
    packages = doc.get("packages") if isinstance(doc, dict) else None
    crates = []
    for p in packages if isinstance(packages, list) else []:
        if not isinstance(p, dict) or not p.get("name") or not p.get("version"):
            continue
        if p.get("kind", "runtime") != "runtime":
            continue  # build-only crates are not in the binary
        crates.append(Crate(str(p["name"]), str(p["version"]), str(p.get("source") or ""), bool(p.get("root"))))
    return crates


WASM_MAGIC = b"\0asm\x01\0\0\0"


def read_wasm_audit(f: BinaryIO, size: int) -> list[Crate] | None:
    """A WebAssembly module's custom section `.dep-v0` (id 0), where cargo auditable puts the data."""
    pos = 8
    while pos < size:
        f.seek(pos)
        head = f.read(1 + 5)
        if len(head) < 2:
            break
        section_id, (length, used) = head[0], _leb128(head, 1)
        body = pos + 1 + used
        if body + length > size:
            raise ElfError("a WebAssembly section runs past the file")
        if section_id == 0:
            f.seek(body)
            name_head = f.read(min(length, 5 + 64))
            n, k = _leb128(name_head, 0)
            if name_head[k:k + n] == b".dep-v0":
                if length - k - n > MAX_AUDIT_COMPRESSED:
                    raise ElfError(f"cargo-auditable data is larger than {MAX_AUDIT_COMPRESSED} bytes")
                f.seek(body + k + n)
                return decode_audit(f.read(length - k - n))
        pos = body + length
    return None


def _leb128(data: bytes, pos: int) -> tuple[int, int]:
    """(value, bytes used) of an unsigned LEB128 of at most 5 bytes (a u32), starting at pos."""
    value = 0
    for i in range(5):
        if pos + i >= len(data):
            break
        b = data[pos + i]
        value |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            return value, i + 1
    raise ElfError("bad LEB128 in a WebAssembly module")


def _scan(elf: ElfFile, patterns: list[re.Pattern[bytes]]) -> str | None:
    ranges = [(s.offset, s.size) for name in (".rodata", ".data") if (s := elf.section(name)) and s.type != 8]
    if not ranges:
        ranges = [(0, elf.size)]
    for start, size in ranges:
        end = min(start + size, elf.size)
        pos, tail = start, b""
        while pos < end:
            chunk = tail + elf.read_at(pos, min(_SCAN_CHUNK, end - pos))
            for rx in patterns:
                m = rx.search(chunk)
                if m:
                    return m.group("version").decode("ascii", "replace")
            pos += _SCAN_CHUNK
            tail = chunk[-_SCAN_OVERLAP:]
    return None


def classify(path: str, elf: ElfFile) -> list[tuple[Rule, str]]:
    base = posixpath.basename(path)
    out = []
    for rule in RULES:
        m = rule.name.match(base)
        if not m:
            continue
        prefix = m.groupdict().get("v")
        pats = [re.compile(p.replace(b"{v}", re.escape(prefix.encode()) if prefix else b"[0-9]+\\.[0-9]+"))
                for p in rule.content]
        version = _scan(elf, pats)
        if version:
            out.append((rule, version))
    return out


class BinaryCataloger:
    name = "binary"
    max_file_bytes = 4 * 1024**3

    def wants(self, path: str, mode: int, size: int) -> bool:
        if mode & 0o111 or path.endswith((".exe", ".EXE", ".dll", ".DLL", ".wasm")):
            return True
        base = path[path.rfind("/") + 1:]
        return base[:3] in _NAME_PREFIXES and _NAMES.match(base) is not None

    def accepts(self, path: str, head: bytes) -> bool:
        return head.startswith((ELF_MAGIC, b"MZ", WASM_MAGIC, *_XCOFF)) or is_macho(head)

    def reduce_file(self, path: str, f: BinaryIO, size: int) -> BinaryFacts | None:
        head = f.read(64)
        if head.startswith(ELF_MAGIC):
            elf = ElfFile(f, size)
            facts = BinaryFacts(read_buildinfo(elf), read_audit(elf), classify(path, elf) or None,
                                read_package_notes(elf))
        elif head.startswith(b"MZ"):  # Windows: Go build info and cargo-auditable data, as in ELF
            pe = PeFile(f, size)
            facts = BinaryFacts(read_pe_buildinfo(pe), read_audit(pe))
        elif is_macho(head):
            macho = MachOFile(f, size)
            facts = BinaryFacts(read_macho_buildinfo(macho), read_audit(macho))
        elif head.startswith(WASM_MAGIC):
            facts = BinaryFacts(crates=read_wasm_audit(f, size))
        else:  # XCOFF (AIX): Go can build for it, nothing here reads it; said, not silently passed over
            return BinaryFacts(warnings=[f"/{path}: an XCOFF (AIX) executable; Go build info in that format "
                                         "is not read"])
        return facts if facts.go or facts.crates or facts.classified or facts.notes else None

    def catalog(self, view: ImageView, distro: Distro | None) -> list[Package]:
        packages: list[Package] = []
        for path, parsed in sorted(view.parsed_by(self.name)):
            facts: BinaryFacts = parsed.value
            view.warnings.extend(facts.warnings)
            found: list[Package] = _go_packages(facts.go) if facts.go else []
            for c in facts.crates or []:
                pkg = Package(c.name, c.version, "cargo", purl("cargo", None, c.name, c.version), "rust-audit-binary",
                              component_type="application" if c.root else "library")
                if c.source:
                    pkg.properties["vouch:cargo:source"] = c.source
                found.append(pkg)
            for rule, version in facts.classified or []:
                found.append(Package(
                    rule.package, version, "binary", purl("generic", None, rule.package, version), "binary-classifier",
                    cpes=[c.format(version=version, base=_numeric(version)) for c in rule.cpes], files=["/" + path],
                    component_type="application"))
            found.extend(note_package(n, path) for n in facts.notes or [])
            loc = location(view, path, parsed.layer)
            for pkg in found:
                pkg.locations.append(loc)
            packages.extend(found)
        return packages


def _numeric(version: str) -> str:
    """3.1.2p20 → 3.1.2 (a CPE's version field; the rest is the update)"""
    m = re.match(r"[0-9]+(?:\.[0-9]+)*", version)
    return m.group(0) if m else version


def _go_purl(path: str, version: str) -> str:
    namespace, _, name = path.rstrip("/").rpartition("/")
    if not name:  # "/" and such: not a module path, named as written
        namespace, name = "", path
    return purl("golang", namespace or None, name, version)


def _go_packages(info: BuildInfo) -> list[Package]:
    out = []
    main = info.main
    if main and main.path and main.path != "command-line-arguments":
        version = main_version(info)
        pkg = Package(main.path, version, "golang", _go_purl(main.path, version), "go-module-binary",
                      component_type="application")
        pkg.properties.update({f"vouch:go:build:{k}": v for k, v in info.settings.items()
                               if k in ("vcs.revision", "vcs.time", "GOOS", "GOARCH", "-trimpath")})
        out.append(pkg)
    for dep in info.deps:
        eff: Module = dep.replace or dep
        if not eff.path:
            continue  # a `dep` line without a module path names nothing
        version = eff.version or "(devel)"
        pkg = Package(eff.path, version, "golang", _go_purl(eff.path, version), "go-module-binary")
        if dep.replace is not None:
            pkg.properties["vouch:go:replaces"] = f"{dep.path}@{dep.version}"
        if eff.sum:
            pkg.properties["vouch:go:h1"] = eff.sum
        out.append(pkg)
    if info.go_version.startswith("go"):
        v = info.go_version[2:]
        out.append(Package("stdlib", info.go_version, "golang", purl("golang", None, "stdlib", v), "go-module-binary",
                           cpes=[f"cpe:2.3:a:golang:go:{v}:*:*:*:*:*:*:*"]))
    return out
