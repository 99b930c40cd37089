"""`vouch copy` as `cosign copy`, and `vouch save`/`load` as `cosign save`/`load`: with the image, what is
attached to each of its digests — the `.sig`, `.att` and `.sbom` tags and the sigstore bundle referrers —
moved between registries and OCI layout directories, so the copy verifies where it lands.

Nothing at the destination is lost: a tag there is merged (its layers stay, the source's missing ones are
added: in a registry through the same read-modify-write as signing, safe against racing writers and
faults; in a layout under its lock, index.json replaced atomically); a bundle already there is not written
again. A re-run copies nothing. From a layout, every blob that is to be pushed is checked against its digest
first: a corrupt layout pushes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from vouch import limits
from vouch.bundle.model import parse_bundle
from vouch.errors import InputError, VouchError
from vouch.oci import mediatypes as mt
from vouch.oci.client import Descriptor, Manifest, RegistryClient
from vouch.oci.copy import check_image, copy_image, copy_image_to_layout, image_digests
from vouch.oci.digest import sha256_digest
from vouch.oci.layout_write import (
    KIND,
    KIND_ATTS,
    KIND_IMAGE,
    KIND_INDEX,
    KIND_SIGS,
    REF_NAME,
    LayoutWriter,
    SignedLayout,
    descriptor_json,
)
from vouch.oci.reference import Reference
from vouch.oci.source import ImageSource
from vouch.store.bundles import (
    ANN_PREDICATE_TYPE,
    BUNDLE_TYPES,
    SIGN_PREDICATE_TYPE,
    bundle_layers,
    list_bundles,
    read_bundles,
    write_bundle,
)
from vouch.store.layout import (
    ATT_SUFFIX,
    SIG_SUFFIX,
    TagReading,
    TagState,
    _config_for,
    layer_key,
    read_tag,
    tag_for,
    update_tag,
)

SBOM_SUFFIX = "sbom"  # `cosign attach sbom`
KINDS = {"sig": SIG_SUFFIX, "att": ATT_SUFFIX, "sbom": SBOM_SUFFIX}
ALL = ("sig", "att", "sbom", "bundle")
COSIGN_KIND = {"sig": KIND_SIGS, "att": KIND_ATTS}  # what `cosign save` marks in a directory
Progress = Callable[[str], None]


@dataclass
class CopiedAttachments:
    added: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ALL, 0))  # entries added per kind
    present: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ALL, 0))  # already at the destination

    def to_json(self) -> dict[str, object]:
        return {"added": self.added, "alreadyPresent": self.present}


@dataclass
class BundleItem:
    manifest: Manifest  # the referrer manifest, as stored at the source
    bundle: bytes
    predicate_type: str | None


# ---- where attachments are read -------------------------------------------------------------------


class AttachmentSource(Protocol):
    name: str

    def tag_manifest(self, digest: str, kind: str) -> Manifest | None: ...

    def opener(self, digest: str) -> Callable[[], Iterator[bytes]]: ...

    def bundles(self, digest: str) -> Iterator[BundleItem]: ...

    def mount_from(self) -> Reference | None: ...


class RegistryAttachments:
    """Attachments in a registry repository (the image's own, or COSIGN_REPOSITORY's)."""

    def __init__(self, client: RegistryClient, repo: Reference):
        self.client = client
        self.repo = Reference(repo.registry, repo.repository)
        self.name = self.repo.name

    def tag_manifest(self, digest: str, kind: str) -> Manifest | None:
        return read_tag(self.client, self.repo, tag_for(digest, KINDS[kind])).manifest

    def opener(self, digest: str) -> Callable[[], Iterator[bytes]]:
        return lambda: self.client.iter_blob(self.repo, digest)

    def bundles(self, digest: str) -> Iterator[BundleItem]:
        listing = list_bundles(self.client, self.repo, digest)
        for item in read_bundles(self.client, self.repo, listing, TagReading()):
            if item.raw is None:
                raise VouchError(f"cannot copy the bundle {item.manifest.digest} of {self.name}@{digest}: "
                                 f"{item.error}")
            m = self.client.get_manifest(self.repo.with_digest(item.manifest.digest), accept=mt.OCI_MANIFEST)
            yield BundleItem(m, item.raw, item.predicate_type)

    def mount_from(self) -> Reference | None:
        return self.repo


class LayoutAttachments:
    """Attachments in an OCI layout, as vouch save or cosign save wrote them."""

    def __init__(self, layout: SignedLayout, top: str):
        self.layout = layout
        self.top = top
        self.name = layout.name

    def tag_manifest(self, digest: str, kind: str) -> Manifest | None:
        return self.layout.tag_manifest(self.top, digest, tag_for(digest, KINDS[kind]), COSIGN_KIND.get(kind))

    def opener(self, digest: str) -> Callable[[], Iterator[bytes]]:
        return lambda: self.layout.iter_blob(digest)

    def bundles(self, digest: str) -> Iterator[BundleItem]:
        for m in self.layout.referrers(digest):
            body = m.json
            artifact = body.get("artifactType")
            if not isinstance(artifact, str):
                artifact = m.config().media_type
            if artifact not in BUNDLE_TYPES:
                continue  # another tool's referrer: not a sigstore bundle
            layers = bundle_layers(m)
            if len(layers) != 1:
                raise InputError(f"{self.name}: bundle manifest {m.digest[:19]} has {len(layers)} bundle layers, "
                                 "not one")
            raw = self.layout.get_blob(layers[0].digest, limits.MAX_ATTESTATION_BYTES)
            ann = body.get("annotations")
            ptype = ann.get(ANN_PREDICATE_TYPE) if isinstance(ann, dict) else None
            yield BundleItem(m, raw, ptype if isinstance(ptype, str) else None)

    def mount_from(self) -> Reference | None:
        return None


# ---- where attachments are written ----------------------------------------------------------------


class RegistryAttachmentSink:
    """Writes into a registry: tags merged through update_tag, bundles through write_bundle. image_repo is
    where the images are (a bundle's subject is resolved there); repo where the attachments go."""

    def __init__(self, client: RegistryClient, image_repo: Reference, repo: Reference):
        self.client = client
        self.image_repo = Reference(image_repo.registry, image_repo.repository)
        self.repo = Reference(repo.registry, repo.repository)

    def _blob(self, src: AttachmentSource, digest: str) -> None:
        if self.client.blob_exists(self.repo, digest):
            return
        mount = src.mount_from()
        if mount is not None and mount.api_host == self.repo.api_host and mount.repository != self.repo.repository \
                and self.client.mount_blob(self.repo, digest, mount.repository):
            return
        self.client.push_blob_stream(self.repo, src.opener(digest), digest)

    def merge_tag(self, src: AttachmentSource, digest: str, kind: str, manifest: Manifest) -> tuple[int, int]:
        wanted = manifest.layers()
        if not wanted:
            return 0, 0
        for d in wanted:
            self._blob(src, d.digest)
        added: set[str] = set()  # layers our plans added (a later plan, after our write, finds none missing)

        def planner(state: TagState) -> list[Descriptor] | None:
            have = {layer_key(x.descriptor) for x in state.layers}
            missing = [d for d in wanted if layer_key(d) not in have]
            added.update(layer_key(d) for d in missing)
            return None if not missing else [x.descriptor for x in state.layers] + missing

        result = update_tag(self.client, self.repo, tag_for(digest, KINDS[kind]), planner)
        n = len(added) if result.changed else 0
        return n, len(wanted) - n

    def add_bundle(self, src: AttachmentSource, digest: str, item: BundleItem) -> bool:
        subject = self.client.resolve(self.image_repo.with_digest(digest))
        raw = item.bundle
        try:
            content = "message-signature" if parse_bundle(raw).dsse_envelope is None else "dsse-envelope"
        except VouchError:
            content = "dsse-envelope"  # copied as it is: verifiers judge it at the destination
        w = write_bundle(self.client, self.repo, subject, raw, item.predicate_type or SIGN_PREDICATE_TYPE,
                         present=raw.__eq__, content=content)
        return w.written


class LayoutAttachmentSink:
    """Writes into an OCI layout: blobs at once (checked, renamed), index.json once, in commit()."""

    def __init__(self, layout: LayoutWriter):
        self.layout = layout
        self.tags: dict[str, Manifest] = {}  # tag -> the source's manifest, to merge at commit
        self.tag_kind: dict[str, str] = {}
        self.referrers: dict[str, Manifest] = {}
        self._snapshot = {(e.get("annotations") or {}).get(REF_NAME): e for e in layout.entries()
                          if (e.get("annotations") or {}).get(REF_NAME)}

    def _copy_blobs(self, src: AttachmentSource, m: Manifest) -> None:
        for d in [m.config(), *m.layers()]:
            if not self.layout.has_blob(d.digest, d.size):
                self.layout.write_blob(src.opener(d.digest)(), d.digest, d.size)
        self.layout.write_blob([m.raw], m.digest, len(m.raw))

    def _layers_at(self, tag: str) -> list[Descriptor]:
        e = self._snapshot.get(tag)
        if e is None or not self.layout.has_blob(e["digest"]):
            return []
        return Manifest(self.layout.read_blob(e["digest"]), mt.OCI_MANIFEST, e["digest"]).layers()

    def merge_tag(self, src: AttachmentSource, digest: str, kind: str, manifest: Manifest) -> tuple[int, int]:
        wanted = manifest.layers()
        if not wanted:
            return 0, 0
        self._copy_blobs(src, manifest)
        tag = tag_for(digest, KINDS[kind])
        self.tags[tag] = manifest
        self.tag_kind[tag] = kind
        have = {layer_key(d) for d in self._layers_at(tag)}
        n = sum(1 for d in wanted if layer_key(d) not in have)
        return n, len(wanted) - n

    def add_bundle(self, src: AttachmentSource, digest: str, item: BundleItem) -> bool:
        bundle_digest = sha256_digest(item.bundle)
        for e in self.layout.entries():
            if e.get("artifactType") in BUNDLE_TYPES and self.layout.has_blob(e["digest"]):
                m = Manifest(self.layout.read_blob(e["digest"]), mt.OCI_MANIFEST, e["digest"])
                subject = m.json.get("subject")
                if isinstance(subject, dict) and subject.get("digest") == digest and \
                        any(x.digest == bundle_digest for x in m.layers()):
                    return False  # the same bundle is there (perhaps in another tool's manifest)
        self._copy_blobs(src, item.manifest)
        self.referrers[item.manifest.digest] = item.manifest
        return True

    def _merged(self, tag: str, source: Manifest, entries: list[dict[str, Any]]) -> dict[str, Any]:
        """The entry for tag: the source's manifest byte for byte when the layout has none (or the same),
        else a new manifest holding the layout's layers and the source's missing ones."""
        current = next((e for e in entries if (e.get("annotations") or {}).get(REF_NAME) == tag), None)
        if current is None or current["digest"] == source.digest or not self.layout.has_blob(current["digest"]):
            return descriptor_json(source.descriptor(), {REF_NAME: tag})
        have = Manifest(self.layout.read_blob(current["digest"]), mt.OCI_MANIFEST, current["digest"]).layers()
        keys = {layer_key(d) for d in have}
        missing = [d for d in source.layers() if layer_key(d) not in keys]
        if not missing:
            return current
        layers = have + missing
        cfg = _config_for(layers)
        cfg_digest = self.layout.put_bytes(cfg)
        body = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                "config": {"mediaType": mt.OCI_CONFIG, "size": len(cfg), "digest": cfg_digest},
                "layers": [d.to_json() for d in layers]}
        raw = json.dumps(body, separators=(",", ":")).encode()
        digest = self.layout.put_bytes(raw)
        return descriptor_json(Descriptor(mt.OCI_MANIFEST, digest, len(raw)), {REF_NAME: tag})

    def commit(self, top: Descriptor, tag: str | None) -> bool:
        """Name the image (and what was copied with it) in index.json, in one atomic replacement; cosign's
        `kind` marks move to this image. Returns whether index.json changed."""
        top_kind = KIND_INDEX if mt.is_index(top.media_type) else KIND_IMAGE

        def plan(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            for e in entries:  # cosign's marks belong to the image written last: take them off the others
                ann = dict(e.get("annotations") or {})
                if ann.get(KIND) in (KIND_IMAGE, KIND_INDEX, KIND_SIGS, KIND_ATTS):
                    del ann[KIND]
                e = {k: v for k, v in e.items() if k != "annotations"}
                if ann:
                    e["annotations"] = ann
                out.append(e)

            def upsert(entry: dict[str, Any]) -> None:
                name = (entry.get("annotations") or {}).get(REF_NAME)
                for i, e in enumerate(out):
                    same = (e.get("annotations") or {}).get(REF_NAME) == name if name else \
                        (e["digest"] == entry["digest"] and not (e.get("annotations") or {}).get(REF_NAME))
                    if same:
                        out[i] = entry
                        return
                out.append(entry)

            ann = {KIND: top_kind, **({REF_NAME: tag} if tag else {})}
            upsert(descriptor_json(top, ann))
            for t, m in self.tags.items():
                entry = self._merged(t, m, out)
                if t == tag_for(top.digest, KINDS[self.tag_kind[t]]) and self.tag_kind[t] in COSIGN_KIND:
                    entry = {**entry, "annotations": {**(entry.get("annotations") or {}),
                                                      KIND: COSIGN_KIND[self.tag_kind[t]]}}
                upsert(entry)
            for m in self.referrers.values():
                body = m.json
                d = Descriptor(mt.OCI_MANIFEST, m.digest, len(m.raw),
                               artifact_type=body.get("artifactType") if isinstance(body.get("artifactType"), str)
                               else None)
                ann_m = body.get("annotations")
                upsert(descriptor_json(d, ann_m if isinstance(ann_m, dict) else None))
            return out

        return self.layout.update_index(plan)


class AttachmentSink(Protocol):
    def merge_tag(self, src: AttachmentSource, digest: str, kind: str, manifest: Manifest) -> tuple[int, int]: ...

    def add_bundle(self, src: AttachmentSource, digest: str, item: BundleItem) -> bool: ...


def transfer(src: AttachmentSource, sink: AttachmentSink, digests: list[str], kinds: tuple[str, ...] = ALL,
             progress: Progress | None = None) -> CopiedAttachments:
    """Copy what is attached to each digest (already at the destination) from src to sink."""
    out = CopiedAttachments()
    for digest in digests:
        for kind in kinds:
            added = present = 0
            if kind == "bundle":
                for item in src.bundles(digest):
                    if sink.add_bundle(src, digest, item):
                        added += 1
                    else:
                        present += 1
            else:
                m = src.tag_manifest(digest, kind)
                if m is not None:
                    added, present = sink.merge_tag(src, digest, kind, m)
            out.added[kind] += added
            out.present[kind] += present
            if progress and (added or present):
                progress(f"{kind} of {digest[:19]}: {added} added, {present} already there")
    return out


def copy_attachments(client: RegistryClient, src: Reference, dst: Reference, digests: list[str],
                     kinds: tuple[str, ...] = ALL, progress: Progress | None = None) -> CopiedAttachments:
    """Registry to registry: what is attached to each digest (already copied to dst) in src's repository,
    into dst's."""
    return transfer(RegistryAttachments(client, src), RegistryAttachmentSink(client, dst, dst), digests, kinds,
                    progress)


# ---- the three directions with a layout ---------------------------------------------------------


@dataclass
class CopyResult:
    digest: str
    attachments: CopiedAttachments
    index_written: bool = False
    blobs_written: int = 0


def to_layout(source: ImageSource, attachments: AttachmentSource | None, layout: LayoutWriter, tag: str | None,
              kinds: tuple[str, ...] = ALL, progress: Progress | None = None) -> CopyResult:
    """An image and its attachments into an OCI layout (`vouch save`, `vouch copy … oci:DIR[:TAG]`)."""
    top = copy_image_to_layout(source, layout, progress)
    sink = LayoutAttachmentSink(layout)
    copied = CopiedAttachments()
    if attachments is not None and kinds:
        copied = transfer(attachments, sink, image_digests(source, top), kinds, progress)
    changed = sink.commit(top, tag)
    return CopyResult(top.digest, copied, changed, layout.written_blobs)


def check_layout(layout: SignedLayout, top: str, kinds: tuple[str, ...]) -> None:
    """Every blob that a load of this image would push, checked against its digest (one read each)."""
    check_image(layout, top, layout.check_blob)
    src = LayoutAttachments(layout, top)
    for digest in image_digests(layout, layout.resolve()):
        for kind in kinds:
            if kind == "bundle":
                for item in src.bundles(digest):
                    for d in [item.manifest.config(), *item.manifest.layers()]:
                        layout.check_blob(d.digest, d.size)
                continue
            m = src.tag_manifest(digest, kind)
            if m is not None:
                for d in [m.config(), *m.layers()]:
                    layout.check_blob(d.digest, d.size)


def from_layout(client: RegistryClient, layout: SignedLayout, dst: Reference, attach_repo: Reference,
                kinds: tuple[str, ...] = ALL, progress: Progress | None = None) -> CopyResult:
    """An image and its attachments from an OCI layout into a registry (`vouch load`, `vouch copy oci:…`).
    The layout is checked whole first: a corrupt blob pushes nothing."""
    top = layout.resolve()
    if dst.digest and dst.digest != top.digest:
        raise InputError(f"{layout.name} holds {top.digest}, not {dst.digest}; name the destination by tag or by "
                         "that digest")
    check_layout(layout, top.digest, kinds)
    digest = copy_image(layout, client, dst, progress)
    copied = CopiedAttachments()
    if kinds:
        copied = transfer(LayoutAttachments(layout, digest), RegistryAttachmentSink(client, dst, attach_repo),
                          image_digests(layout, top), kinds, progress)
    return CopyResult(digest, copied)
