"""Copy images and whole indexes between sources and registries, digests preserved."""

from __future__ import annotations

from collections.abc import Callable

from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.oci.source import ImageSource, RegistrySource

Progress = Callable[[str], None]


def copy_image(src: ImageSource, client: RegistryClient, dst: Reference,
               progress: Progress | None = None) -> str:
    """Copy src (image or index, recursively) to dst. Returns the top-level digest, which is the
    source's own digest: manifests are pushed byte for byte."""
    top = src.resolve()
    done: set[str] = set()

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

    def manifest(digest: str) -> None:
        m = src.manifest(digest)
        if m.is_index:
            for child in m.children():
                manifest(child.digest)
        else:
            blob(m.config().digest)
            for layer in m.layers():
                blob(layer.digest)
        client.put_manifest(dst.with_digest(digest), m.raw, m.media_type)

    manifest(top.digest)
    if dst.tag:
        m = src.manifest(top.digest)
        client.put_manifest(dst.with_tag(dst.tag), m.raw, m.media_type)
    return top.digest
