"""`vouch release`: sign every image of a release by digest and attach a current SBOM attestation.

The command a pipeline re-runs on every build, so the entry point starts it in a group of its own
(`fast_app`: the same global options, the same command) without importing the rest of the CLI; a re-run
whose images are signed and whose SBOMs are current loads no SBOM scanner and no keyless code.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vouch.cli import keyless as kl
from vouch.cli.common import (
    LayoutOpt,
    State,
    VouchTyper,
    emit,
    err,
    load_signer,
    one_command_app,
    ref_arg,
    run_app,
    state,
    text_table,
    write_layouts,
)
from vouch.errors import InputError
from vouch.keys.files import write_new_file

if TYPE_CHECKING:
    from vouch.keyless.sign import KeylessSigner
    from vouch.release.plan import ReleaseImage
    from vouch.signing.signer import KeySigner


def _release_images(manifest: str | None, images: list[str] | None) -> list[ReleaseImage]:
    from vouch.release.plan import ReleaseImage, load_manifest

    if manifest and images:
        raise InputError("give either --manifest or images, not both")
    if manifest:
        return load_manifest(manifest).images
    if not images:
        raise InputError("nothing to do: give --manifest release.yaml or image references")
    return [ReleaseImage(ref_arg(i)) for i in images]


def release(
    ctx: typer.Context,
    images: Annotated[list[str] | None, typer.Argument(help="Images (or use --manifest).")] = None,
    key: Annotated[str | None, typer.Option(
        "--key", help="cosign private key: a file, env://VARIABLE or k8s://NAMESPACE/NAME.")] = None,
    manifest: Annotated[str | None, typer.Option(help="release.yaml: `images:` list of references.")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Images handled in parallel.")] = 4,
    refresh_after: Annotated[str, typer.Option(
        help="Regenerate an attached SBOM older than this (it must stay inside the admission limit).")] = "30d",
    max_age: Annotated[str, typer.Option(help="The admission limit the read-back check applies.")] = "90d",
    report: Annotated[str | None, typer.Option(help="Write the JSON report here.")] = None,
    sign_images: Annotated[bool | None, typer.Option(
        "--sign-images/--no-sign-images",
        help="Kill switch; default from VOUCH_SIGN_IMAGES or AKKO_SIGN_IMAGES (true).")] = None,
    keyless: Annotated[bool | None, typer.Option(
        "--keyless/--no-keyless", help="Keyless signing; default from VOUCH_SIGN_KEYLESS or AKKO_SIGN_KEYLESS.")]
    = None,
    layout: LayoutOpt = None,
    sbom_format: Annotated[list[str] | None, typer.Option(
        "--sbom-format", metavar="FORMAT",
        help="cyclonedx-json (always) and spdx-json: an SPDX 2.3 attestation beside the CycloneDX one, from the "
             "same scan (repeatable; default: the manifest's sbomFormats, else CycloneDX alone).")] = None,
    identity_token: kl.IdentityTokenOpt = None,
    fulcio_url: kl.FulcioUrlOpt = None,
    rekor_url: kl.RekorUrlOpt = None,
    signing_config: kl.SigningConfigOpt = None,
    trust_config: kl.TrustConfigOpt = None,
    trusted_root: kl.TrustedRootOpt = None,
) -> None:
    """Sign every image of a release by digest and attach a current CycloneDX SBOM attestation, with
    --key or keyless (AKKO_SIGN_KEYLESS=true: one Fulcio certificate for the whole release).
    Idempotent: unchanged digests with a current SBOM by the same key or identity cost a few registry
    reads and no write (keyless: no new log entry either)."""
    from vouch.release.plan import KEYLESS_SWITCH, SIGN_SWITCH, switch

    st = state(ctx)
    if not switch(sign_images, SIGN_SWITCH, True):
        err("vouch release: signing disabled (AKKO_SIGN_IMAGES/VOUCH_SIGN_IMAGES=false); nothing done")
        emit(st, {"skipped": True}, "")
        return
    # The key's scrypt (about 0.1 s, the GIL released) runs while the rest of the release machinery is
    # imported, when the password comes from the environment (a prompt stays on this thread).
    unlocking = None
    if key and os.environ.get("COSIGN_PASSWORD") is not None and not switch(keyless, KEYLESS_SWITCH, False):
        unlocking = ThreadPoolExecutor(1, thread_name_prefix="vouch-key").submit(load_signer, key)
    from vouch.release.plan import load_manifest, sbom_formats
    from vouch.release.run import exit_code, run_release
    from vouch.verify.bomfacts import parse_age

    formats = sbom_formats(sbom_format, "--sbom-format") if sbom_format else \
        (load_manifest(manifest).sbom_formats if manifest else ("cyclonedx-json",))
    signer: KeySigner | KeylessSigner
    if switch(keyless, KEYLESS_SWITCH, False):
        if key:
            raise InputError("keyless signing (AKKO_SIGN_KEYLESS/VOUCH_SIGN_KEYLESS=true or --keyless) and --key "
                             "exclude each other: unset one")
        plan = _release_images(manifest, images)
        refresh, limit = parse_age(refresh_after), parse_age(max_age)
        signer = kl.SignFlags(identity_token, fulcio_url, rekor_url, signing_config, trust_config,
                              trusted_root).signer()
        err(f"vouch release: signing keyless as {signer.identity.subject} (issuer {signer.identity.issuer})")
    else:
        if not key:
            raise InputError("--key is required (a cosign private key), or keyless signing: AKKO_SIGN_KEYLESS=true "
                             "(or --keyless) with an identity token")
        plan = _release_images(manifest, images)
        refresh, limit = parse_age(refresh_after), parse_age(max_age)
        signer = unlocking.result() if unlocking is not None else load_signer(key)
    started = time.perf_counter()
    layouts = write_layouts(False, layout)
    reports = _run_with_progress(st, lambda done: run_release(st.client(), signer, plan, concurrency, refresh,
                                                              limit, done, layouts=layouts,
                                                              spdx="spdx-json" in formats), len(plan))
    elapsed = time.perf_counter() - started
    _release_table(reports, elapsed, st.client().request_count)
    doc = {"seconds": round(elapsed, 3), "requests": st.client().request_count,
           "images": [r.to_json() for r in reports]}
    if report:
        write_new_file(Path(report), json.dumps(doc, indent=2).encode() + b"\n", 0o644, force=True)
    emit(st, doc, "")
    failed = [r for r in reports if r.error]
    if failed:
        for r in failed:
            err(f"Error: {r.image}: {r.error}")
        raise typer.Exit(exit_code(reports))


def _run_with_progress(st: State, work: Callable[[Callable[[Any], None]], list[Any]], total: int) -> list[Any]:
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      transient=True) as bar:
            task = bar.add_task("release", total=total)
            return work(lambda r: bar.advance(task))

    def line(r: Any) -> None:
        status = "FAILED" if r.error else f"{r.signature}, sbom {r.sbom}"
        err(f"vouch release: {r.image}@{r.digest[:19]}: {status}")

    return work(line)


def _release_table(reports: list[Any], elapsed: float, requests: int) -> None:
    rows = []
    for r in reports:
        sbom = (r.error and "FAILED") or (r.sbom + (f", spdx {r.spdx}" if r.spdx else ""))
        rows.append([r.image, r.platform or "-", r.digest[7:19], r.signature or "-", sbom,
                     "" if r.packages is None else str(r.packages), f"{sum(r.seconds.values()):.2f}"])
    sys.stderr.write(text_table(f"release: {len(reports)} images in {elapsed:.2f} s, {requests} registry requests",
                                ["image", "platform", "digest", "signature", "sbom", "packages", "seconds"], rows))


def register(app: VouchTyper) -> None:
    app.command()(release)


def fast_app() -> VouchTyper:
    """`vouch release` alone, with the `vouch` group's global options."""
    return one_command_app(register)


def run_fast() -> None:
    run_app(fast_app())
