"""Packages → a CycloneDX 1.5 JSON BOM (cyclonedx-python-lib), deterministic for a pinned timestamp."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.component_evidence import ComponentEvidence, Occurrence
from cyclonedx.model.dependency import Dependency
from cyclonedx.model.license import DisjunctiveLicense
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output.json import JsonV1Dot5
from cyclonedx.spdx import is_supported_id
from packageurl import PackageURL

from vouch import __version__
from vouch.sbom.model import Distro, Package

_TYPES = {"library": ComponentType.LIBRARY, "application": ComponentType.APPLICATION,
          "framework": ComponentType.FRAMEWORK, "operating-system": ComponentType.OPERATING_SYSTEM}


@dataclass
class ImageSubject:
    name: str  # REGISTRY/REPO (or the source spec)
    digest: str  # manifest digest
    platform: str | None = None
    layer_diff_ids: list[str] | None = None
    manifest_digest: str | None = None  # the platform image's manifest when digest names an index


def _image_properties(subject: ImageSubject) -> list[Property]:
    props = []
    if subject.platform:
        props.append(Property(name="vouch:image:platform", value=subject.platform))
    if subject.manifest_digest and subject.manifest_digest != subject.digest:
        props.append(Property(name="vouch:image:manifest-digest", value=subject.manifest_digest))
    for i, d in enumerate(subject.layer_diff_ids or []):
        props.append(Property(name=f"vouch:image:layer:{i}:diffID", value=d))
    return props


def _licenses(values: list[str]) -> list[DisjunctiveLicense]:
    out = []
    for v in values:
        out.append(DisjunctiveLicense(id=v) if is_supported_id(v) else DisjunctiveLicense(name=v))
    return out


def build_bom(subject: ImageSubject, distro: Distro | None, packages: list[Package],
              timestamp: dt.datetime, files_detail: bool = False) -> Bom:
    repo_url, _, last = subject.name.rpartition("/")
    image = Component(
        type=ComponentType.CONTAINER, name=subject.name, version=subject.digest,
        bom_ref=f"image:{subject.digest}",
        purl=PackageURL("oci", name=last or subject.name, version=subject.digest,
                        qualifiers={"repository_url": subject.name} if repo_url else None),
        properties=_image_properties(subject),
    )
    tool = Component(type=ComponentType.APPLICATION, name="vouch", version=__version__, bom_ref="tool:vouch")
    bom = Bom(metadata=BomMetaData(component=image, timestamp=timestamp,
                                   tools=ToolRepository(components=[tool])))
    bom.serial_number = uuid.uuid5(uuid.NAMESPACE_URL, f"vouch:{subject.digest}:{timestamp.isoformat()}")
    os_component = None
    if distro is not None:
        os_component = Component(
            type=ComponentType.OPERATING_SYSTEM, name=distro.id, version=distro.version_id or None,
            description=distro.pretty_name, bom_ref=f"os:{distro.id}@{distro.version_id}",
            properties=[Property(name="vouch:distro:name", value=distro.name)],
        )
        bom.components.add(os_component)

    refs: dict[int, Component] = {}
    used: set[str] = set()
    for pkg in packages:
        ref = pkg.purl
        n = 1
        while ref in used:
            n += 1
            ref = f"{pkg.purl}#{n}"
        used.add(ref)
        props = [Property(name="vouch:package:type", value=pkg.type),
                 Property(name="vouch:cataloger", value=pkg.cataloger)]
        for i, loc in enumerate(pkg.locations):
            props += [Property(name=f"vouch:location:{i}:path", value=loc.path),
                      Property(name=f"vouch:location:{i}:layerID", value=loc.layer_diff_id),
                      Property(name=f"vouch:location:{i}:layerIndex", value=str(loc.layer_index))]
        if pkg.source and pkg.source != pkg.name:
            props.append(Property(name="vouch:package:source", value=pkg.source))
        if pkg.arch:
            props.append(Property(name="vouch:package:arch", value=pkg.arch))
        if pkg.files:
            props.append(Property(name="vouch:package:file-count", value=str(len(pkg.files))))
        if files_detail:
            props += [Property(name="vouch:package:file", value=f) for f in sorted(pkg.files)]
        props += [Property(name=k, value=v) for k, v in sorted(pkg.properties.items())]
        comp = Component(
            type=_TYPES.get(pkg.component_type, ComponentType.LIBRARY), name=pkg.name, version=pkg.version,
            bom_ref=ref, purl=PackageURL.from_string(pkg.purl), licenses=_licenses(pkg.licenses),
            publisher=pkg.supplier, description=pkg.description, cpe=pkg.cpes[0] if pkg.cpes else None,
            properties=props,
            evidence=ComponentEvidence(occurrences=[Occurrence(location=loc.path) for loc in pkg.locations])
            if pkg.locations else None,
        )
        refs[id(pkg)] = comp
        bom.components.add(comp)

    # dependencies: package relations resolved by name and `provides`, within one ecosystem
    by_name: dict[tuple[str, str], list[Package]] = {}
    for pkg in packages:
        for name in [pkg.name, *pkg.provides]:
            by_name.setdefault((pkg.type, name), []).append(pkg)
    # (the graph is added directly: Bom.register_dependency searches linearly, O(n²) over a big image)
    graph: dict[int, tuple[Component, dict[str, Component]]] = {}
    for pkg in packages:
        deps: dict[str, Component] = {}
        for name in pkg.depends:
            for target in by_name.get((pkg.type, name), []):
                if target is not pkg:
                    c = refs[id(target)]
                    deps[str(c.bom_ref)] = c
        graph[id(pkg)] = (refs[id(pkg)], deps)
    top = ([os_component] if os_component else []) + [refs[id(p)] for p in packages]
    graph[id(image)] = (image, {str(c.bom_ref): c for c in top})
    if os_component is not None:
        graph[id(os_component)] = (os_component, {})
    for comp, deps in graph.values():
        bom.dependencies.add(Dependency(ref=comp.bom_ref, dependencies=[Dependency(ref=deps[k].bom_ref)
                                                                         for k in sorted(deps)]))
    return bom


def _already_registered(target: object, depends_on: object = None) -> None:
    return None


def all_registered(bom: Bom) -> bool:
    refs = {str(d.ref) for d in bom.dependencies}
    comps = [bom.metadata.component, *bom.components] if bom.metadata.component else list(bom.components)
    return all(str(c.bom_ref) in refs for c in comps)


def bom_json(bom: Bom, indent: int | None = None) -> str:
    # The graph above already gives every component its dependency entry; the library's output step
    # would re-register each one with a linear search (O(n²): seconds on a 1,000-component image).
    if all_registered(bom):
        bom.register_dependency = _already_registered  # type: ignore[method-assign]
    text = JsonV1Dot5(bom).output_as_string(indent=indent)
    # cyclonedx-python-lib keeps occurrences in a set of objects hashed by identity: their order would
    # change from run to run. Sorted by path, the BOM is byte-identical across runs.
    doc = json.loads(text)
    for comp in doc.get("components") or []:
        occurrences = (comp.get("evidence") or {}).get("occurrences")
        if occurrences and len(occurrences) > 1:
            occurrences.sort(key=lambda o: o.get("location", ""))
    return json.dumps(doc, indent=indent)
