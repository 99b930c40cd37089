"""The verified CycloneDX SBOMs of a release: one per image, or per platform image of an index.

Each comes from the verification engine (`verify_attestations`: trusted signature or identity, the
statement's subject is the digest, the BOM describes it, it is fresh), so a query or a diff reads only
evidence. An image without such an SBOM is kept in the result with the reason, never dropped.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from vouch.errors import VouchError
from vouch.oci import mediatypes as mt
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.oci.source import select_platform
from vouch.release.multiarch import platform_children, platform_of
from vouch.release.plan import ReleaseImage
from vouch.signing.attestation import PREDICATE_TYPES
from vouch.verify.attestations import verify_attestations
from vouch.verify.signer import Trust

CDX = PREDICATE_TYPES["cyclonedx"]


@dataclass
class ImageBom:
    """One digest's SBOM, or why there is none that counts."""

    image: str  # repository name, as given (registry/repo)
    ref: str  # the reference as given (tag or digest)
    digest: str = ""
    platform: str = ""  # os/arch for an index's platform image, "" for a single image
    bom: dict[str, Any] | None = None
    age: dt.timedelta | None = None
    key_id: str | None = None
    layout: str = ""
    problem: str = ""  # why there is no SBOM to read (unsigned, stale, registry failure)
    exit_code: int = 0  # of the problem: 1 verification, 3 registry

    @property
    def ok(self) -> bool:
        return self.bom is not None

    def sbom_json(self) -> dict[str, Any]:
        if self.bom is None:
            return {"verified": False, "reason": self.problem}
        return {"verified": True, "ageSeconds": None if self.age is None else round(self.age.total_seconds()),
                "keyId": self.key_id, "layout": self.layout,
                "serialNumber": self.bom.get("serialNumber"),
                "timestamp": (self.bom.get("metadata") or {}).get("timestamp")}


def _one_digest(client: RegistryClient, keys: Trust, ref: Reference, given: str, digest: str, platform: str,
                max_age: dt.timedelta | None, now: dt.datetime) -> ImageBom:
    out = ImageBom(ref.name, given, digest, platform)
    try:
        res = verify_attestations(client, ref.with_digest(digest), keys, CDX, max_age, now)
    except VouchError as exc:
        out.problem, out.exit_code = str(exc), exc.exit_code
        return out
    if not res.ok:
        out.problem, out.exit_code = res.reason(), 1
        return out
    newest = min(res.verified, key=lambda c: c.age.total_seconds() if c.age is not None else float("inf"))
    stmt = newest.statement or {}
    predicate = stmt.get("predicate")
    if not isinstance(predicate, dict):
        out.problem, out.exit_code = "the verified CycloneDX statement has no BOM as its predicate", 1
        return out
    out.bom, out.age, out.key_id, out.layout = predicate, newest.age, newest.key_id, newest.where
    return out


def release_boms(client: RegistryClient, keys: Trust, images: list[ReleaseImage], max_age: dt.timedelta | None,
                 concurrency: int = 4, now: dt.datetime | None = None) -> list[ImageBom]:
    """An index stands for its platform images (the digests that run; the index's own merged SBOM
    repeats them), each with its own verified SBOM; a manifest entry with `platform:` only that one."""
    now = now or dt.datetime.now(dt.UTC)

    def one(img: ReleaseImage) -> list[ImageBom]:
        given = str(img.ref)
        try:
            desc = client.resolve(img.ref)
            if not mt.is_index(desc.media_type):
                return [_one_digest(client, keys, img.ref, given, desc.digest, img.platform or "", max_age, now)]
            index = client.get_manifest(img.ref.with_digest(desc.digest))
            children = [select_platform(index, img.platform)] if img.platform else platform_children(index)
        except VouchError as exc:
            return [ImageBom(img.ref.name, given, problem=str(exc), exit_code=exc.exit_code)]
        if not children:
            return [_one_digest(client, keys, img.ref, given, desc.digest, "index", max_age, now)]
        return [_one_digest(client, keys, img.ref, given, c.digest, platform_of(c), max_age, now)
                for c in children]

    if not images:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(images)))) as pool:
        return [b for bs in pool.map(one, images) for b in bs]


def age_text(age: dt.timedelta | None) -> str:
    if age is None:
        return "fresh (no timestamp)"
    s = age.total_seconds()
    if s < 3600:
        return f"fresh ({max(0, int(s // 60))} min old)"
    if s < 2 * 86400:
        return f"fresh ({s / 3600:.1f} h old)"
    return f"fresh ({s / 86400:.0f} days old)"
