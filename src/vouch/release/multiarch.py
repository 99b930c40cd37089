"""Multi-arch images: which children of an index are platform images, and the index's merged SBOM.

A pod names an image by tag (Kyverno resolves it to the *index* digest) or by a platform digest.
Admission checks the digest it sees, so both need a signature and an SBOM attestation: each platform
image gets its own SBOM, and the index gets one BOM merged from them, whose metadata.component is the
index and whose components each say on which platforms they were found (`vouch:platform`).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from packageurl import PackageURL

from vouch.oci.client import Descriptor, Manifest

PLATFORM_PROPERTY = "vouch:platform"


def platform_of(desc: Descriptor) -> str:
    p = desc.platform or {}
    return "/".join(str(x) for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)


def platform_children(index: Manifest) -> list[Descriptor]:
    """The platform images of an index (not buildkit's attestation manifests, platform unknown/unknown)."""
    out = []
    for child in index.children():
        p = child.platform or {}
        if p.get("os") in (None, "unknown") or p.get("architecture") in (None, "unknown"):
            continue
        out.append(child)
    return out


def merge_platform_boms(name: str, index_digest: str, parts: list[tuple[str, str, dict[str, Any]]],
                        timestamp: str) -> dict[str, Any]:
    """One CycloneDX BOM for the index from its platforms' BOMs: [(platform, child digest, bom)].

    Components are united by bom-ref (a purl, so the same package on two platforms is one component)
    and carry one `vouch:platform` property per platform it was found on; each platform's image is
    listed as a component too, so its own digest and properties stay in the evidence."""
    if not parts:
        raise ValueError("no platform BOMs to merge")
    first = parts[0][2]
    index_ref = f"image:{index_digest}"
    repo_url, _, last = name.rpartition("/")
    top: dict[str, Any] = {
        "bom-ref": index_ref, "name": name,
        "properties": [{"name": "vouch:image:platforms", "value": ", ".join(p for p, _, _ in parts)}],
        "purl": PackageURL("oci", name=last or name, version=index_digest,
                           qualifiers={"repository_url": name} if repo_url else None).to_string(),
        "type": "container", "version": index_digest,
    }
    components: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    depends: dict[str, set[str]] = {index_ref: set()}
    for platform, child_digest, bom in parts:
        child_ref = f"image:{child_digest}"
        meta_comp = copy.deepcopy((bom.get("metadata") or {}).get("component") or {})
        meta_comp["bom-ref"] = child_ref
        for comp in [meta_comp, *(bom.get("components") or [])]:
            ref = str(comp.get("bom-ref") or f"{comp.get('name')}@{comp.get('version')}")
            if ref not in components:
                merged = copy.deepcopy(comp)
                merged["bom-ref"] = ref
                merged["properties"] = [p for p in merged.get("properties") or []
                                        if p.get("name") != PLATFORM_PROPERTY]
                components[ref] = merged
                order.append(ref)
            props = components[ref]["properties"]
            if {"name": PLATFORM_PROPERTY, "value": platform} not in props:
                props.append({"name": PLATFORM_PROPERTY, "value": platform})
                props.sort(key=lambda p: (p.get("name", ""), p.get("value", "")))
        depends[index_ref].add(child_ref)
        for dep in bom.get("dependencies") or []:
            ref = str(dep.get("ref"))
            ref = child_ref if ref == (bom.get("metadata") or {}).get("component", {}).get("bom-ref") else ref
            depends.setdefault(ref, set()).update(str(x) for x in dep.get("dependsOn") or [])
    known = set(components) | {index_ref}
    out: dict[str, Any] = {
        "$schema": first.get("$schema", "http://cyclonedx.org/schema/bom-1.5.schema.json"),
        "bomFormat": "CycloneDX",
        "specVersion": first.get("specVersion", "1.5"),
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'vouch:{index_digest}:{timestamp}')}",
        "version": 1,
        "metadata": {"component": top, "timestamp": timestamp,
                     "tools": copy.deepcopy((first.get("metadata") or {}).get("tools") or {})},
        "components": [components[r] for r in sorted(order)],
        "dependencies": [
            {"ref": ref, **({"dependsOn": sorted(d for d in deps if d in known)} if deps & known else {})}
            for ref, deps in sorted(depends.items()) if ref in known],
    }
    return out
