"""`vouch release`: sign every image of a release by digest and attach a current SBOM attestation.

The command a pipeline re-runs on every build, so the entry point first tries the Typer-free parser of
vouch.cli.release_fast (which does the command's work for both), then starts this command in a group of its
own (`fast_app`: the same global options, the same command) without importing the rest of the CLI; a
re-run whose images are signed and whose SBOMs are current loads no SBOM scanner and no keyless code.
"""

from __future__ import annotations

from typing import Annotated

import typer

from vouch.cli import keyless as kl
from vouch.cli.common import (
    LayoutOpt,
    VouchTyper,
    one_command_app,
    run_app,
    state,
)


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
    from vouch.cli.release_fast import run_release_cmd

    code = run_release_cmd(state(ctx), images, key, manifest, concurrency, refresh_after, max_age, report, sign_images,
                           keyless, layout, sbom_format,
                           kl.SignFlags(identity_token, fulcio_url, rekor_url, signing_config, trust_config,
                                        trusted_root).signer)
    if code:
        raise typer.Exit(code)


def register(app: VouchTyper) -> None:
    app.command()(release)


def fast_app() -> VouchTyper:
    """`vouch release` alone, with the `vouch` group's global options."""
    return one_command_app(register)


def run_fast() -> None:
    run_app(fast_app())
