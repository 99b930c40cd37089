"""`vouch copy` as `cosign copy`: with the image, what is attached to each of its digests — the `.sig`,
`.att` and `.sbom` tags and the sigstore bundle referrers — so the copy verifies where it lands.

Nothing at the destination is lost: a tag there is merged (its layers stay, the source's missing ones are
added, through the same read-modify-write as signing, safe against racing writers and faults); a bundle
already there is not written again. A re-run copies nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from vouch.bundle.model import parse_bundle
from vouch.errors import VouchError
from vouch.oci.client import Descriptor, RegistryClient
from vouch.oci.reference import Reference
from vouch.store.bundles import SIGN_PREDICATE_TYPE, list_bundles, read_bundles, write_bundle
from vouch.store.layout import ATT_SUFFIX, SIG_SUFFIX, TagReading, TagState, layer_key, read_tag, tag_for, update_tag

SBOM_SUFFIX = "sbom"  # `cosign attach sbom`
KINDS = {"sig": SIG_SUFFIX, "att": ATT_SUFFIX, "sbom": SBOM_SUFFIX}
ALL = ("sig", "att", "sbom", "bundle")


@dataclass
class CopiedAttachments:
    added: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ALL, 0))  # entries added per kind
    present: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ALL, 0))  # already at the destination

    def to_json(self) -> dict[str, object]:
        return {"added": self.added, "alreadyPresent": self.present}


def _copy_blob(client: RegistryClient, src: Reference, dst: Reference, digest: str) -> None:
    if client.blob_exists(dst, digest):
        return
    if src.api_host == dst.api_host and src.repository != dst.repository and \
            client.mount_blob(dst, digest, src.repository):
        return
    client.push_blob_stream(dst, lambda: client.iter_blob(src, digest), digest)


def _copy_tag(client: RegistryClient, src: Reference, dst: Reference, tag: str) -> tuple[int, int]:
    """Merge the source tag's layers into the destination tag: (added, already there)."""
    source = read_tag(client, src, tag)
    if source.manifest is None or not source.layers:
        return 0, 0
    wanted = [x.descriptor for x in source.layers]
    for d in wanted:
        _copy_blob(client, src, dst, d.digest)
    added: set[str] = set()  # layers our plans added (a later plan, after our write, finds none missing)

    def planner(state: TagState) -> list[Descriptor] | None:
        have = {layer_key(x.descriptor) for x in state.layers}
        missing = [d for d in wanted if layer_key(d) not in have]
        added.update(layer_key(d) for d in missing)
        return None if not missing else [x.descriptor for x in state.layers] + missing

    result = update_tag(client, dst, tag, planner)
    n = len(added) if result.changed else 0
    return n, len(wanted) - n


def _copy_bundles(client: RegistryClient, src: Reference, dst: Reference, digest: str) -> tuple[int, int]:
    listing = list_bundles(client, src, digest)
    if not listing.entries:
        return 0, 0
    subject = client.resolve(dst.with_digest(digest))
    added = present = 0
    for item in read_bundles(client, src, listing, TagReading()):
        if item.raw is None:
            raise VouchError(f"cannot copy the bundle {item.manifest.digest} of {src.name}@{digest}: {item.error}")
        raw = item.raw
        try:
            content = "message-signature" if parse_bundle(raw).dsse_envelope is None else "dsse-envelope"
        except VouchError:
            content = "dsse-envelope"  # copied as it is: verifiers judge it at the destination
        w = write_bundle(client, dst, subject, raw, item.predicate_type or SIGN_PREDICATE_TYPE,
                         present=raw.__eq__, content=content)
        added, present = added + int(w.written), present + int(not w.written)
    return added, present


def copy_attachments(client: RegistryClient, src: Reference, dst: Reference, digests: list[str],
                     kinds: tuple[str, ...] = ALL, progress: Callable[[str], None] | None = None) -> CopiedAttachments:
    """Copy what is attached to each digest (already copied to dst) from src's repository to dst's."""
    src_repo, dst_repo = Reference(src.registry, src.repository), Reference(dst.registry, dst.repository)
    out = CopiedAttachments()
    for digest in digests:
        for kind in kinds:
            if kind == "bundle":
                added, present = _copy_bundles(client, src_repo, dst_repo, digest)
            else:
                added, present = _copy_tag(client, src_repo, dst_repo, tag_for(digest, KINDS[kind]))
            out.added[kind] += added
            out.present[kind] += present
            if progress and (added or present):
                progress(f"{kind} of {digest[:19]}: {added} added, {present} already there")
    return out
