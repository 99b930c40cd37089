"""`vouch save` / `vouch load` (cosign's): a signed image and what is attached to it, to and from an OCI layout
directory; and the body of `vouch copy`, which takes `oci:DIR[:TAG]` on either side. Imports are lazy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vouch.cli.common import State, VouchTyper, emit, err, ref_arg, state
from vouch.errors import InputError


def _summary(added: int, present: int) -> None:
    err(f"Copied {added} signature(s), attestation(s), SBOM(s) and bundle(s); {present} were already there")


def copy_command(st: State, src: str, dst: str, kinds: tuple[str, ...], explicit: bool) -> None:
    from vouch.oci.copy import copy_image, image_digests
    from vouch.oci.layout_write import LayoutWriter, SignedLayout, split_layout_spec
    from vouch.oci.source import RegistrySource, open_source
    from vouch.store import copy as sc
    from vouch.store.layout import target_repository

    progress = (lambda m: err(f"  {m}")) if st.verbose else None
    src_layout = split_layout_spec(src)
    source = SignedLayout(*src_layout) if src_layout is not None else open_source(src, st.client())
    attachments: sc.AttachmentSource | None = None
    if isinstance(source, RegistrySource):
        attachments = sc.RegistryAttachments(st.client(), target_repository(source.ref))
    elif isinstance(source, SignedLayout):
        attachments = sc.LayoutAttachments(source, source.resolve().digest)
    dst_layout = split_layout_spec(dst)
    doc: dict[str, object] = {"source": source.name}
    if dst_layout is not None:
        path, tag = dst_layout
        result = sc.to_layout(source, attachments, LayoutWriter(path), tag, kinds if attachments else (), progress)
        doc.update({"destination": f"oci:{path}" + (f":{tag}" if tag else ""), "digest": result.digest})
        shown = f"oci:{path}@{result.digest}"
    else:
        dest = ref_arg(dst)
        if isinstance(source, SignedLayout):
            result = sc.from_layout(st.client(), source, dest, dest, kinds, progress)
        else:
            result = sc.CopyResult(copy_image(source, st.client(), dest, progress), sc.CopiedAttachments())
            if attachments is not None and kinds:
                result.attachments = sc.transfer(attachments, sc.RegistryAttachmentSink(st.client(), dest, dest),
                                                 image_digests(source, source.resolve()), kinds, progress)
        doc.update({"destination": str(dest), "digest": result.digest})
        shown = f"{dest.name}@{result.digest}"
    if attachments is not None and kinds:
        doc["attachments"] = result.attachments.to_json()
        _summary(sum(result.attachments.added.values()), sum(result.attachments.present.values()))
    elif kinds and explicit:
        err(f"  ({source.name} is not a registry or an OCI layout: only the image was copied, no attachments)")
    emit(st, doc, shown)


DirOpt = Annotated[str, typer.Option("--dir", help="The OCI layout directory (cosign's --dir).", show_default=False)]


def save(ctx: typer.Context, image: Annotated[str, typer.Argument(help="The image in a registry: REF.")],
         directory: DirOpt) -> None:
    """Save an image (every platform of an index) with its signatures, attestations, SBOMs and sigstore bundles
    to an OCI layout directory, as `cosign save --dir DIR IMAGE`: `cosign load` and `vouch load` read it.
    Every digest is kept; a re-run writes nothing; attachments are read where COSIGN_REPOSITORY says."""
    from vouch.oci.layout_write import LayoutWriter
    from vouch.oci.source import RegistrySource
    from vouch.store import copy as sc
    from vouch.store.layout import target_repository

    st = state(ctx)
    ref = ref_arg(image)
    progress = (lambda m: err(f"  {m}")) if st.verbose else None
    source = RegistrySource(st.client(), ref)
    result = sc.to_layout(source, sc.RegistryAttachments(st.client(), target_repository(ref)),
                          LayoutWriter(_dir(directory)), None, sc.ALL, progress)
    a = result.attachments
    _summary(sum(a.added.values()), sum(a.present.values()))
    emit(st, {"source": str(ref), "directory": directory, "digest": result.digest, "attachments": a.to_json(),
              "blobsWritten": result.blobs_written, "indexWritten": result.index_written},
         f"oci:{directory}@{result.digest}")


def load(ctx: typer.Context, image: Annotated[str, typer.Argument(help="Where to push it: REF (a tag; default "
                                                                        "latest) or REF@DIGEST.")],
         directory: DirOpt) -> None:
    """Load a signed image from an OCI layout directory (what `cosign save` or `vouch save` wrote) into a
    registry, as `cosign load --dir DIR IMAGE`: the image or index, digests preserved, and its signatures,
    attestations, SBOMs and bundles, merged into what the registry holds (COSIGN_REPOSITORY: written there).
    Every blob is checked against its digest before anything is pushed."""
    from vouch.oci.layout_write import SignedLayout
    from vouch.store import copy as sc
    from vouch.store.layout import target_repository

    st = state(ctx)
    dest = ref_arg(image)
    if dest.tag is None and dest.digest is None:
        dest = dest.with_tag("latest")  # cosign load pushes to the reference as given: docker's default tag
    progress = (lambda m: err(f"  {m}")) if st.verbose else None
    layout = SignedLayout(_dir(directory), None)
    result = sc.from_layout(st.client(), layout, dest, target_repository(dest), sc.ALL, progress)
    a = result.attachments
    _summary(sum(a.added.values()), sum(a.present.values()))
    emit(st, {"directory": directory, "destination": str(dest), "digest": result.digest,
              "attachments": a.to_json()}, f"{dest.name}@{result.digest}")


def _dir(directory: str) -> Path:
    if not directory:
        raise InputError("--dir needs a directory")
    return Path(directory)


def register(app: VouchTyper) -> None:
    app.command("save")(save)
    app.command("load")(load)
