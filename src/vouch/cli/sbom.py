"""`vouch sbom`: syft's scan, one image (or an unpacked tree) read once as a stream.

Like `vouch verify`, the command is timed against a Go binary (syft, trivy), so the entry point first tries the
Typer-free parser of vouch.cli.sbom_fast (which does the command's work for both), then starts it in a group of
its own (`fast_app`: the same global options, the same command) without importing the rest of the CLI; a
layout, an archive or a directory is read without importing the HTTP client (vouch.oci.source takes a
function that makes the client; only a registry reference calls it).
"""

from __future__ import annotations

from typing import Annotated

import typer

from vouch.cli.common import VouchTyper, one_command_app, run_app, state


def sbom(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(help="REF (registry:REF, docker://REF), oci:DIR[:TAG] (oci-dir:), "
                                              "oci-archive:FILE[:TAG], docker-archive:FILE or dir:PATH (an unpacked "
                                              "root filesystem).")],
    platform: Annotated[str | None, typer.Option(help="os/arch or os/arch/variant to pick from an index.")] = None,
    output_file: Annotated[str | None, typer.Option("--output-file",
                                                    help="Write the BOM here (default stdout).")] = None,
    format_: Annotated[str | None, typer.Option(
        "--format", metavar="cyclonedx-json|spdx-json", help="The SBOM format (default cyclonedx-json): CycloneDX "
        "1.5 or SPDX 2.3 JSON, from the same scan.")] = None,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", metavar="FORMAT[=FILE]",
        help="syft's spelling of --format (and of --output-file: -o spdx-json=sbom.spdx.json).")] = None,
    timestamp: Annotated[str | None, typer.Option(
        help="Pin the document's time (RFC 3339 or epoch seconds; default SOURCE_DATE_EPOCH, else now).")] = None,
    files: Annotated[bool, typer.Option(help="List every file each package owns (larger BOM; SPDX: with the "
                                             "SHA1 and SHA256 of each, so every file is hashed).")] = False,
    scope: Annotated[str, typer.Option(
        metavar="squashed|all-layers", help="squashed: what the image holds; all-layers: also packages later "
        "layers deleted, marked vouch:package:deleted-by-layerID (syft's --scope).")] = "squashed",
    exclude: Annotated[list[str] | None, typer.Option(
        "--exclude", metavar="GLOB", help="Leave out paths matching this glob, relative to the root: ./var/cache/**, "
        "/usr/share/doc, **/*.pyc (repeatable; syft's --exclude).")] = None,
    max_layer_bytes: Annotated[int, typer.Option(help="Refuse a layer that decompresses to more than this.")]
    = 64 * 1024**3,
) -> None:
    """Generate a CycloneDX 1.5 or SPDX 2.3 JSON SBOM for an image or an unpacked root filesystem, reading each
    layer once: OS packages (dpkg, apk, rpm), language packages (Python, npm, Java archives, Ruby gems,
    Composer, .NET), Go and Rust binaries (their embedded module lists), Java runtimes, ELF package notes
    and version-classified binaries (python, node, busybox, openssl, httpd, nginx, haproxy, memcached, php,
    ruby, perl, postgres). stderr: what was scanned (platform, the digest read) and packages per ecosystem."""
    from vouch.cli.sbom_fast import run_sbom_cmd

    run_sbom_cmd(state(ctx), image, platform, output_file, format_, output, timestamp, files, scope, exclude,
                 max_layer_bytes)


def register(app: VouchTyper) -> None:
    app.command()(sbom)


def fast_app() -> VouchTyper:
    """`vouch sbom` alone, with the `vouch` group's global options."""
    return one_command_app(register)


def run_fast() -> None:
    run_app(fast_app())
