"""`vouch verify`: cosign's verify, for many images in one invocation (verified in parallel over the one
registry client, results in the order given).

`vouch verify` is the command timed against cosign's Go binary, so the entry point first tries to run it
without Typer (vouch.cli.verify_fast: the same work, `run_verify`, for plain argument lists), else starts it
in a group of its own (`fast_app`: the same global options, the same command) without importing the rest
of the CLI; what only keyless verification or other layouts need is imported when it is used.
"""

from __future__ import annotations

from typing import Annotated

import typer

from vouch.cli import keyless as kl
from vouch.cli import verify_fast
from vouch.cli.common import VouchTyper, one_command_app, run_app, state
from vouch.cli.verify_fast import verifier_trust as verifier_trust  # (re-exported: verify-attestation uses it)


def verify(
    ctx: typer.Context,
    images: Annotated[list[str], typer.Argument(help="Images to verify.")],
    key: Annotated[list[str] | None, typer.Option(
        "--key", help="Public key PEM: a file (it may hold several), env://VARIABLE, https://HOST/cosign.pub or "
                      "k8s://NAMESPACE/NAME (repeatable). Without it, keyless: --certificate-identity and "
                      "--certificate-oidc-issuer.")] = None,
    annotations: Annotated[list[str] | None, typer.Option("--annotations", "-a",
                                                          help="key=value the payload must carry.")] = None,
    check_reference: Annotated[bool, typer.Option(
        help="Also require docker-reference to equal the image's repository (as containers/image does).")] = False,
    insecure_ignore_tlog: Annotated[bool, typer.Option(
        "--insecure-ignore-tlog", help="Key mode: accepted for cosign compatibility (vouch never contacts Rekor). "
                                       "Keyless: do not require a log entry (a signed timestamp must then give the "
                                       "time).")] = False,
    offline: Annotated[bool, typer.Option(help="Accepted for cosign compatibility; vouch is always offline "
                                               "(it talks to the registry only).")] = True,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Images verified in parallel.")] = 4,
    certificate_identity: kl.IdentityOpt = None,
    certificate_identity_regexp: kl.IdentityRegexpOpt = None,
    certificate_oidc_issuer: kl.IssuerOpt = None,
    certificate_oidc_issuer_regexp: kl.IssuerRegexpOpt = None,
    certificate_extension: kl.CiExtensionsOpt = None,
    trusted_root: kl.TrustedRootOpt = None,
    insecure_ignore_sct: kl.IgnoreSctOpt = False,
) -> None:
    """Verify cosign signatures, made with a key or keyless (by the signer's identity, offline against the
    trusted root); stdout is cosign's JSON array of verified payloads."""
    code = verify_fast.run_verify(state(ctx), images, key, annotations, check_reference, insecure_ignore_tlog,
                                  offline, concurrency, certificate_identity, certificate_identity_regexp,
                                  certificate_oidc_issuer, certificate_oidc_issuer_regexp, certificate_extension,
                                  trusted_root, insecure_ignore_sct)
    if code:
        raise typer.Exit(code)


def register(app: VouchTyper) -> None:
    app.command()(verify)


def fast_app() -> VouchTyper:
    """`vouch verify` alone, with the `vouch` group's global options."""
    return one_command_app(register)


def run_fast() -> None:
    run_app(fast_app())
