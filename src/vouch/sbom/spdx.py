"""Packages → an SPDX 2.3 JSON document, deterministic for a pinned timestamp (the second encoder of the
neutral model in sbom/model.py; cdx.py is the first).

The shape follows syft's `spdx-json` output so that tools reading one read the other:
- the image is the document's root package (`SPDXRef-DocumentRoot-Image-…`, primaryPackagePurpose
  CONTAINER, its digest as versionInfo and SHA256 checksum, a `pkg:oci` purl); `SPDXRef-DOCUMENT
  DESCRIBES` it and it `CONTAINS` every package;
- each package: its purl as a PACKAGE-MANAGER external reference, CPEs as SECURITY references,
  licences as `licenseDeclared` (SPDX ids as they are, other names as `LicenseRef-…` with their text in
  `hasExtractedLicensingInfos`), where the evidence was found in `sourceInfo`;
- a package relation (Depends) as `DEPENDENCY_OF`, as syft writes it (the dependency is the element);
- the distribution as an OPERATING-SYSTEM package (syft leaves it out of SPDX; vouch's CycloneDX BOM has
  it as the operating-system component);
- vouch's properties (layer of each location, source package, arch, installed-by, deleted-in-layer …) as
  package annotations, `name=value`;
- with files: every regular file a package owns, with the SHA1 and SHA256 the scan computed, `CONTAINS`,
  and the package's verification code (filesAnalyzed true); symlinks a package lists are left out.

The document namespace is unique per document and, unlike syft's (a random UUID), the same for the same
image, name, format and pinned timestamp: re-running a pinned scan reproduces the document byte for byte.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from typing import Any
from urllib.parse import quote

from packageurl import PackageURL

from vouch import __version__
from vouch.sbom.model import Distro, FileDigest, ImageSubject, Package
from vouch.sbom.spdx_ids import fixup_id, is_supported_id

Json = dict[str, Any]
SPDX_VERSION = "SPDX-2.3"
NAMESPACE_BASE = "https://spdx.org/spdxdocs/vouch"
CREATOR = f"Tool: vouch-{__version__}"
NOASSERTION = "NOASSERTION"
_PURPOSE = {"library": "LIBRARY", "application": "APPLICATION", "framework": "FRAMEWORK",
            "operating-system": "OPERATING-SYSTEM"}
_NOT_ID = re.compile(r"[^A-Za-z0-9.-]+")
_EMAIL = re.compile(r"^\s*(.*?)\s*<([^<>]*)>\s*$")


def spdx_id(*parts: str) -> str:
    """An SPDX identifier: `SPDXRef-` and letters, digits, `.` and `-` only (everything else as `-`)."""
    return "SPDXRef-" + "-".join(_NOT_ID.sub("-", p).strip("-") or "x" for p in parts)


def spdx_time(ts: dt.datetime) -> str:
    """SPDX's created: UTC, whole seconds, `Z` (YYYY-MM-DDThh:mm:ssZ)."""
    utc = ts.astimezone(dt.UTC) if ts.tzinfo else ts.replace(tzinfo=dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def actor(text: str | None) -> str:
    """A supplier as an SPDX actor: `Person: NAME (EMAIL)` for "NAME <EMAIL>" (as syft writes a Debian
    maintainer), `Organization: NAME` for a bare name, NOASSERTION for nothing."""
    if not text or not text.strip():
        return NOASSERTION
    one = " ".join(text.split())
    m = _EMAIL.match(one)
    if m:
        name = m[1].replace("(", "[").replace(")", "]") or m[2]
        return f"Person: {name} ({m[2]})"
    return "Organization: " + one.replace("(", "[").replace(")", "]")


class _Licences:
    """Licence names → an SPDX expression; names that are not SPDX ids or expressions become
    `LicenseRef-<name>` references, their text listed once in hasExtractedLicensingInfos."""

    def __init__(self) -> None:
        self.refs: dict[str, str] = {}  # name → LicenseRef id
        self._taken: set[str] = set()

    def ref(self, name: str) -> str:
        if name not in self.refs:
            clean = _NOT_ID.sub("-", name).strip("-") or "unnamed"
            # a name that is not an idstring as it is gets a short hash of itself: two names that read the
            # same once sanitised ("GPL 2" and "GPL/2") stay apart, and the same name is the same id everywhere
            base = "LicenseRef-" + (clean if clean == name else
                                    f"{clean}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}")
            ref, n = base, 1
            while ref in self._taken:
                n += 1
                ref = f"{base}-{n}"
            self._taken.add(ref)
            self.refs[name] = ref
        return self.refs[name]

    def expression(self, values: list[str]) -> str:
        terms: list[str] = []
        for v in dict.fromkeys(x.strip() for x in values if x.strip()):
            if is_supported_id(v):
                terms.append(v)
            elif (fixed := fixup_id(v)) is not None:
                terms.append(fixed)
            elif " " in v and _is_expression(v):
                terms.append(f"({v})")
            else:
                terms.append(self.ref(v))
        return " AND ".join(dict.fromkeys(terms)) if terms else NOASSERTION

    def extracted(self) -> list[Json]:
        return [{"extractedText": name, "licenseId": ref, "name": name}
                for name, ref in sorted(self.refs.items(), key=lambda kv: kv[1])]


def _purl(text: str) -> str:
    return PackageURL.from_string(text).to_string()


def _annotation(comment: str, created: str) -> Json:
    return {"annotationDate": created, "annotationType": "OTHER", "annotator": CREATOR, "comment": comment}


def _source_info(pkg: Package) -> str | None:
    paths = sorted({loc.path for loc in pkg.locations})
    if not paths:
        return None
    return f"acquired package info from {pkg.cataloger}: {', '.join(paths)}"


def _properties(pkg: Package) -> list[tuple[str, str]]:
    """The package facts vouch's CycloneDX BOM keeps as properties, in the same names."""
    props = [("vouch:package:type", pkg.type), ("vouch:cataloger", pkg.cataloger)]
    for i, loc in enumerate(pkg.locations):
        props += [(f"vouch:location:{i}:path", loc.path), (f"vouch:location:{i}:layerID", loc.layer_diff_id),
                  (f"vouch:location:{i}:layerIndex", str(loc.layer_index))]
    if pkg.source and pkg.source != pkg.name:
        props.append(("vouch:package:source", pkg.source))
    if pkg.arch:
        props.append(("vouch:package:arch", pkg.arch))
    if pkg.files:
        props.append(("vouch:package:file-count", str(len(pkg.files))))
    props += list(pkg.properties.items())
    return sorted(set(props))


def _external_refs(pkg: Package) -> list[Json]:
    refs = []
    for cpe in dict.fromkeys(pkg.cpes):
        kind = "cpe23Type" if cpe.startswith("cpe:2.3:") else "cpe22Type"
        refs.append({"referenceCategory": "SECURITY", "referenceLocator": cpe, "referenceType": kind})
    refs.append({"referenceCategory": "PACKAGE-MANAGER", "referenceLocator": _purl(pkg.purl),
                 "referenceType": "purl"})
    return refs


def _file_entry(path: str, digest: FileDigest, file_id: str) -> Json:
    checksums = [{"algorithm": "SHA1", "checksumValue": digest.sha1},
                 {"algorithm": "SHA256", "checksumValue": digest.sha256}]
    entry: Json = {"SPDXID": file_id, "checksums": checksums, "copyrightText": NOASSERTION,
                   "fileName": "./" + path.lstrip("/"),  # SPDX 2.3 §8.1: relative to the root, "./" first
                   "licenseConcluded": NOASSERTION}
    if digest.layer_diff_id:
        entry["comment"] = f"layerID: {digest.layer_diff_id}"
    return entry


def build_spdx(subject: ImageSubject, distro: Distro | None, packages: list[Package], timestamp: dt.datetime,
               files_detail: bool = False, file_digests: dict[str, FileDigest] | None = None) -> Json:
    """The SPDX 2.3 document of one scan (see the module doc). `file_digests` (path without the leading
    `/` → digests) is what the scan computed when asked to; files are listed only with files_detail."""
    created = spdx_time(timestamp)
    licences = _Licences()
    repo_url, _, last = subject.name.rpartition("/")
    root_id = spdx_id("DocumentRoot", "Image", subject.name)
    algo, _, hexd = subject.digest.partition(":")
    root: Json = {
        "SPDXID": root_id, "copyrightText": NOASSERTION, "downloadLocation": NOASSERTION,
        "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator":
                          PackageURL("oci", name=last or subject.name, version=subject.digest,
                                     qualifiers={"repository_url": subject.name} if repo_url else None).to_string()}],
        "filesAnalyzed": False, "licenseConcluded": NOASSERTION, "licenseDeclared": NOASSERTION,
        "name": subject.name, "primaryPackagePurpose": "CONTAINER", "supplier": NOASSERTION,
        "versionInfo": subject.digest,
    }
    if algo in ("sha256", "sha384", "sha512") and hexd:
        root["checksums"] = [{"algorithm": algo.upper(), "checksumValue": hexd}]
    image_notes = []
    if subject.kind == "directory":  # an unpacked root filesystem, as syft's dir: root; its listing's digest
        root_id = spdx_id("DocumentRoot", "Directory", subject.name)
        root.update({"SPDXID": root_id, "primaryPackagePurpose": "FILE"})
        for k in ("externalRefs", "checksums", "versionInfo"):
            root.pop(k, None)
        image_notes.append(("vouch:directory:listing-digest", subject.digest))
    if subject.platform:
        image_notes.append(("vouch:image:platform", subject.platform))
    if subject.manifest_digest and subject.manifest_digest != subject.digest:
        image_notes.append(("vouch:image:manifest-digest", subject.manifest_digest))
    for i, d in enumerate(subject.layer_diff_ids or []):
        image_notes.append((f"vouch:image:layer:{i}:diffID", d))
    if image_notes:
        root["annotations"] = [_annotation(f"{n}={v}", created) for n, v in image_notes]

    out_packages: list[Json] = [root]
    relationships: list[Json] = [{"relatedSpdxElement": root_id, "relationshipType": "DESCRIBES",
                                  "spdxElementId": "SPDXRef-DOCUMENT"}]
    if distro is not None:
        os_id = spdx_id("OperatingSystem", distro.id, distro.version_id or "")
        os_pkg: Json = {"SPDXID": os_id, "copyrightText": NOASSERTION, "downloadLocation": NOASSERTION,
                        "filesAnalyzed": False, "licenseConcluded": NOASSERTION, "licenseDeclared": NOASSERTION,
                        "name": distro.id, "primaryPackagePurpose": "OPERATING-SYSTEM", "supplier": NOASSERTION}
        if distro.pretty_name:
            os_pkg["description"] = distro.pretty_name
        if distro.version_id:
            os_pkg["versionInfo"] = distro.version_id
        out_packages.append(os_pkg)
        relationships.append({"relatedSpdxElement": os_id, "relationshipType": "CONTAINS", "spdxElementId": root_id})

    ids: dict[int, str] = {}
    used: set[str] = {root_id}
    for pkg in packages:
        h = hashlib.sha256(pkg.purl.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        pid = spdx_id("Package", pkg.type, pkg.name, h)
        n = 1
        while pid in used:
            n += 1
            pid = spdx_id("Package", pkg.type, pkg.name, h, str(n))
        used.add(pid)
        ids[id(pkg)] = pid

    files: dict[str, Json] = {}
    for pkg in packages:
        pid = ids[id(pkg)]
        entry: Json = {"SPDXID": pid, "copyrightText": NOASSERTION, "downloadLocation": NOASSERTION,
                       "externalRefs": _external_refs(pkg), "filesAnalyzed": False,
                       "licenseConcluded": NOASSERTION, "licenseDeclared": licences.expression(pkg.licenses),
                       "name": pkg.name, "supplier": actor(pkg.supplier)}
        if pkg.description:
            entry["description"] = pkg.description
        purpose = _PURPOSE.get(pkg.component_type)
        if purpose:
            entry["primaryPackagePurpose"] = purpose
        if info := _source_info(pkg):
            entry["sourceInfo"] = info
        if pkg.version:
            entry["versionInfo"] = pkg.version
        entry["annotations"] = [_annotation(f"{n}={v}", created) for n, v in _properties(pkg)]
        out_packages.append(entry)
        relationships.append({"relatedSpdxElement": pid, "relationshipType": "CONTAINS", "spdxElementId": root_id})
        if files_detail:
            sha1s = []
            for f in dict.fromkeys(pkg.files):
                path = f.lstrip("/")
                digest = (file_digests or {}).get(path)
                if digest is None:  # not a regular file in the image (a symlink, a directory, gone): no checksum
                    continue
                file_id = spdx_id("File", path, hashlib.sha256(path.encode("utf-8", "surrogatepass"))
                                  .hexdigest()[:16])
                if file_id not in files:
                    files[file_id] = _file_entry(path, digest, file_id)
                sha1s.append(digest.sha1)
                relationships.append({"relatedSpdxElement": file_id, "relationshipType": "CONTAINS",
                                      "spdxElementId": pid})
            if sha1s:  # SPDX 2.3 §7.9: the SHA1 of the sorted, concatenated file SHA1s
                entry["filesAnalyzed"] = True
                entry["packageVerificationCode"] = {
                    "packageVerificationCodeValue": hashlib.sha1("".join(sorted(sha1s)).encode(),
                                                                 usedforsecurity=False).hexdigest()}

    # package relations, resolved as cdx.py does: by name and `provides`, within one ecosystem
    by_name: dict[tuple[str, str], list[Package]] = {}
    for pkg in packages:
        for name in [pkg.name, *pkg.provides]:
            by_name.setdefault((pkg.type, name), []).append(pkg)
    for pkg in packages:
        targets = {ids[id(t)] for name in pkg.depends for t in by_name.get((pkg.type, name), []) if t is not pkg}
        relationships += [{"relatedSpdxElement": ids[id(pkg)], "relationshipType": "DEPENDENCY_OF",
                           "spdxElementId": t} for t in sorted(targets)]

    out_packages[1:] = sorted(out_packages[1:], key=lambda p: (p["name"], p.get("versionInfo", ""), p["SPDXID"]))
    relationships = [relationships[0], *sorted(relationships[1:], key=lambda r: (
        r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"]))]
    serial = uuid.uuid5(uuid.NAMESPACE_URL, f"vouch:spdx:{subject.name}:{subject.digest}:{created}")
    doc: Json = {
        "SPDXID": "SPDXRef-DOCUMENT",
        "creationInfo": {"created": created, "creators": [CREATOR]},
        "dataLicense": "CC0-1.0",
        "documentNamespace": f"{NAMESPACE_BASE}/{quote(subject.name, safe='')}-{serial}",
        "name": subject.name,
        "packages": out_packages,
        "relationships": relationships,
        "spdxVersion": SPDX_VERSION,
    }
    if files:
        doc["files"] = [files[k] for k in sorted(files)]
    if licences.refs:
        doc["hasExtractedLicensingInfos"] = licences.extracted()
    return doc


def spdx_json(doc: Json, indent: int | None = None) -> str:
    return json.dumps(doc, indent=indent)


def _is_expression(value: str) -> bool:
    from cyclonedx.spdx import is_expression  # (builds license-expression's index: only when an expression needs it)

    return bool(is_expression(value))
