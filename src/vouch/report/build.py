"""The report's data: the verified SBOMs of a release (`vouch.query.sboms.release_boms`, so only
evidence counts) and each digest's verified image signature, summarised per image and platform.

Everything in a BOM is signed but not trusted as text: names and licences are kept as data here and
escaped where they are shown (`vouch.report.html`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from packageurl import PackageURL

from vouch import __version__
from vouch.errors import EXIT_REGISTRY, VouchError
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.query.match import PackageQuery, iter_components, match_bom
from vouch.query.sboms import ImageBom, release_boms
from vouch.release.plan import ReleaseImage
from vouch.verify.signatures import verify_image
from vouch.verify.signer import Trust

NO_LICENCE = "(none declared)"


def ecosystem(comp: dict[str, Any]) -> str:
    """The purl type (deb, rpm, apk, pypi, npm, maven, golang …); a component without a purl: its
    CycloneDX type (operating-system, file …)."""
    purl = comp.get("purl")
    if isinstance(purl, str) and purl.startswith("pkg:"):
        try:
            return PackageURL.from_string(purl).type.lower()
        except ValueError:
            return "(invalid purl)"
    kind = comp.get("type")
    return f"({kind})" if isinstance(kind, str) and kind else "(no purl)"


def licences(comp: dict[str, Any]) -> list[str]:
    """A component's declared licences: SPDX ids, names, or expressions, as written."""
    out: list[str] = []
    for item in comp.get("licenses") or []:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("expression"), str):
            out.append(item["expression"])
            continue
        lic = item.get("license")
        if isinstance(lic, dict):
            name = lic.get("id") or lic.get("name")
            if isinstance(name, str) and name:
                out.append(name)
    return out


def bom_summary(bom: dict[str, Any]) -> dict[str, Any]:
    by_eco: Counter[str] = Counter()
    by_licence: Counter[str] = Counter()
    total = 0
    for comp in iter_components(bom):
        total += 1
        by_eco[ecosystem(comp)] += 1
        for name in licences(comp) or [NO_LICENCE]:
            by_licence[name] += 1
    return {"total": total,
            "byEcosystem": dict(sorted(by_eco.items(), key=lambda kv: (-kv[1], kv[0]))),
            "licences": [{"licence": k, "components": v}
                         for k, v in sorted(by_licence.items(), key=lambda kv: (-kv[1], kv[0]))]}


def _signature(client: RegistryClient, b: ImageBom, keys: Trust) -> dict[str, Any]:
    """The image signature of the digest the SBOM describes (each platform image of an index is signed
    by `vouch release`, as cosign's --recursive does)."""
    if not b.digest:
        return {"verified": False, "reason": b.problem or "not resolved", "exitCode": b.exit_code}
    try:
        res = verify_image(client, Reference.parse(b.ref).with_digest(b.digest), keys)
    except VouchError as exc:
        return {"verified": False, "reason": str(exc), "exitCode": exc.exit_code}
    if not res.ok:
        return {"verified": False, "reason": res.reason(), "exitCode": 1}
    c = res.verified[0]
    out: dict[str, Any] = {"verified": True, "signer": c.key_id, "layout": c.where,
                           "signatures": len(res.verified)}
    if c.identity is not None:
        out["identity"] = c.identity.to_json()
        out["signer"] = c.identity.subject
    return out


def build_report(client: RegistryClient, keys: Trust, images: list[ReleaseImage], *, release: str | None,
                 max_age: dt.timedelta | None, queries: list[PackageQuery] | None = None, concurrency: int = 8,
                 trust_text: str = "", now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or dt.datetime.now(dt.UTC)
    boms = release_boms(client, keys, images, max_age, concurrency, now)
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(boms) or 1))) as pool:
        sigs = list(pool.map(lambda b: _signature(client, b, keys), boms))
    limit_days = None if max_age is None else max_age.total_seconds() / 86400
    entries: list[dict[str, Any]] = []
    for b, sig in zip(boms, sigs, strict=True):
        sbom = b.sbom_json()
        if b.bom is not None:
            age_days = None if b.age is None else b.age.total_seconds() / 86400
            sbom["ageDays"] = None if age_days is None else round(age_days, 2)
            sbom["maxAgeDays"] = None if limit_days is None else round(limit_days, 2)
            sbom["daysLeft"] = (None if age_days is None or limit_days is None
                                else round(limit_days - age_days, 2))
            sbom["signer"] = sbom.pop("keyId")
        else:
            sbom["exitCode"] = b.exit_code
        entry: dict[str, Any] = {"image": b.image, "ref": b.ref, "digest": b.digest, "platform": b.platform,
                                 "signature": sig, "sbom": sbom}
        if b.bom is not None:
            entry["packages"] = bom_summary(b.bom)
            if queries:
                entry["matches"] = [m.to_json() for m in match_bom(queries, b.bom)]
        entries.append(entry)
    ok = [e for e in entries if e["signature"]["verified"] and e["sbom"]["verified"]]
    registry = any(e["signature"].get("exitCode") == EXIT_REGISTRY or e["sbom"].get("exitCode") == EXIT_REGISTRY
                   for e in entries)
    summary = {"images": len(images), "platformImages": len(entries),
               "signed": sum(1 for e in entries if e["signature"]["verified"]),
               "sbomVerified": sum(1 for e in entries if e["sbom"]["verified"]),
               "complete": len(ok), "registryFaults": registry,
               "packages": sum(e.get("packages", {}).get("total", 0) for e in entries)}
    if queries is not None:
        summary["matches"] = sum(1 for e in entries for m in e.get("matches", []) if m["affected"])
    return {"reportVersion": 1, "generator": f"vouch {__version__}",
            "generated": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "release": release,
            "trust": trust_text, "maxAgeDays": None if limit_days is None else round(limit_days, 2),
            "query": [q.to_json() for q in queries] if queries else None,
            "summary": summary, "images": entries}
