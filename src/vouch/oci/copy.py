"""Copy images and whole indexes between sources, registries and OCI layouts, digests preserved."""

from __future__ import annotations

from collections.abc import Callable

from vouch.oci.client import Descriptor, Manifest, RegistryClient
from vouch.oci.layout_write import LayoutWriter
from vouch.oci.reference import Reference
from vouch.oci.source import ImageSource, RegistrySource

Progress = Callable[[str], None]


def copy_image(src: ImageSource, client: RegistryClient, dst: Reference,
               progress: Progress | None = None) -> str:
    """Copy src (image or index, recursively) to dst. Returns the top-level digest, which is the
    source's own digest: manifests are pushed byte for byte."""
    top = src.resolve()
    done: set[str] = set()
    manifests: dict[str, Manifest] = {}

    def read(digest: str) -> Manifest:
        if digest not in manifests:
            manifests[digest] = src.manifest(digest)
        return manifests[digest]

    def blob(digest: str) -> None:
        if digest in done:
            return
        done.add(digest)
        if client.blob_exists(dst, digest):
            return
        if (isinstance(src, RegistrySource) and src.ref.api_host == dst.api_host
                and src.ref.repository != dst.repository
                and client.mount_blob(dst, digest, src.ref.repository)):
            if progress:
                progress(f"mounted {digest[:19]}")
            return
        client.push_blob_stream(dst, lambda: src.iter_blob(digest), digest)
        if progress:
            progress(f"copied {digest[:19]}")

    def blobs_of(digest: str) -> list[str]:
        m = read(digest)
        return [] if m.is_index else [m.config().digest, *(layer.digest for layer in m.layers())]

    def put(ref: Reference, digest: str) -> None:
        m = read(digest)

        def ensure_blobs() -> None:
            for d in blobs_of(digest):
                done.discard(d)
                blob(d)
        client.put_manifest(ref, m.raw, m.media_type, ensure_blobs=ensure_blobs)

    def manifest(digest: str) -> None:
        m = read(digest)
        if m.is_index:
            for child in m.children():
                manifest(child.digest)
        else:
            for d in blobs_of(digest):
                blob(d)
        put(dst.with_digest(digest), digest)

    manifest(top.digest)
    if dst.tag:
        put(dst.with_tag(dst.tag), top.digest)
    return top.digest


def image_digests(src: ImageSource, top: Descriptor) -> list[str]:
    """The digests an image is known by: an index's own and each of its platform images'."""
    m = src.manifest(top.digest)
    return [top.digest, *(c.digest for c in m.children())] if m.is_index else [top.digest]


def check_image(src: ImageSource, digest: str, check_blob: Callable[[str, int], None]) -> None:
    """Read every manifest and blob of an image (an index: recursively) and check each against its digest,
    before anything is written anywhere."""
    m = src.manifest(digest)
    if m.is_index:
        for child in m.children():
            check_image(src, child.digest, check_blob)
        return
    for d in [m.config(), *m.layers()]:
        check_blob(d.digest, d.size)


def copy_image_to_layout(src: ImageSource, layout: LayoutWriter, progress: Progress | None = None) -> Descriptor:
    """Write src (image or index, recursively) into an OCI layout's blobs, byte for byte: children before
    the manifests that name them, each blob checked against its digest before it is renamed into place.
    index.json is not touched (the caller names the image there once everything is in place). Returns the
    top-level descriptor; a blob already in the layout is not read again."""
    top = src.resolve()

    def manifest(d: Descriptor) -> None:
        if layout.has_blob(d.digest, d.size):
            return  # manifests go in last: one in place means all it names are
        m = src.manifest(d.digest)
        if m.is_index:
            for child in m.children():
                manifest(child)
        else:
            for b in [m.config(), *m.layers()]:
                if layout.write_blob(src.iter_blob(b.digest), b.digest, b.size) and progress:
                    progress(f"wrote {b.digest[:19]}")
        layout.write_blob([m.raw], m.digest, len(m.raw))

    manifest(top)
    return Descriptor(top.media_type, top.digest, top.size)
