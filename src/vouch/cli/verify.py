"""`vouch verify`: cosign's verify, for many images in one invocation (verified in parallel over the one
registry client, results in the order given).

`vouch verify` is the command timed against cosign's Go binary, so the entry point starts it in a group of
its own (`fast_app`: the same global options, the same command) without importing the rest of the CLI;
what only keyless verification or other layouts need is imported when it is used.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from vouch.cli import keyless as kl
from vouch.cli.common import (
    OutputFormat,
    VouchTyper,
    emit,
    err,
    load_verifier_keys,
    one_command_app,
    parallel_map,
    parse_annotations,
    ref_arg,
    run_app,
    state,
)
from vouch.errors import EXIT_VERIFY, InputError

if TYPE_CHECKING:
    from vouch.keyless.trust import EitherTrust, KeylessTrust
    from vouch.trust import PublicKey


def verifier_trust(key: list[str] | None, identity: tuple[str | None, str | None, str | None, str | None],
                   trusted_root: str | None, ignore_sct: bool = False, ignore_tlog: bool = False,
                   extensions: list[str] | None = None) -> list[PublicKey] | KeylessTrust | EitherTrust:
    """--key: public keys; --certificate-identity …: the keyless identity policy under the trusted root; both:
    either counts (a mixed release, a rotation from keys to keyless), each for the material it fits."""
    if key and kl.wants_keyless(*identity):
        from vouch.keyless.trust import EitherTrust

        keyless = kl.keyless_trust(*identity, trusted_root, ignore_sct, ignore_tlog, extensions)
        return EitherTrust(tuple(load_verifier_keys(key)), keyless)
    if key:
        return load_verifier_keys(key)
    if kl.wants_keyless(*identity):
        return kl.keyless_trust(*identity, trusted_root, ignore_sct, ignore_tlog, extensions)
    raise InputError("give --key (a public key PEM), or --certificate-identity and --certificate-oidc-issuer "
                     "(keyless)")


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
    from vouch.verify.signatures import cosign_output, verify_image

    st = state(ctx)
    ann = parse_annotations(annotations)
    refs = [ref_arg(i) for i in images]
    keys = verifier_trust(key, (certificate_identity, certificate_identity_regexp, certificate_oidc_issuer,
                                certificate_oidc_issuer_regexp), trusted_root, insecure_ignore_sct,
                          insecure_ignore_tlog, certificate_extension)
    client = st.client()
    results = parallel_map(lambda ref: verify_image(client, ref, keys, ann, check_reference), refs, concurrency)
    failed = [r for r in results if not r.ok]
    from vouch.keyless.trust import KeylessTrust

    keyless_only = isinstance(keys, KeylessTrust)
    for r in results:
        if r.ok:
            err(f"\nVerification for {r.image} --\nThe following checks were performed on each of these "
                "signatures:\n  - The cosign claims were validated\n"
                + ("  - Existence of the claims in the transparency log was verified offline\n"
                   "  - The code-signing certificate was verified using trusted certificate authority certificates"
                   if keyless_only else
                   "  - The signatures were verified against the specified public key"))
            reasons: dict[str, int] = {}
            for c in r.checks:
                if not c.ok:
                    reasons[c.reason] = reasons.get(c.reason, 0) + 1
            for reason, n in reasons.items():
                err(f"  (ignored {n} layer(s) that did not verify: {reason})" if n > 1
                    else f"  (ignored a layer that did not verify: {reason})")
            if r.skipped:
                err(f"  (not read: {r.skipped})")
        else:
            err(f"Error: {r.image}: {r.reason()}")
    if st.output == OutputFormat.json:
        emit(st, [{"image": r.image, "digest": r.digest, "verified": r.ok, "reason": "" if r.ok else r.reason(),
                   "signatures": [{"layer": c.layer_digest, "ok": c.ok, "reason": c.reason, "keyId": c.key_id,
                                   "payload": c.payload,
                                   **({"identity": c.identity.to_json()} if c.identity is not None else {})}
                                  for c in r.checks]} for r in results], "")
    elif not failed:
        sys.stdout.write(cosign_output(results) + "\n")
    if failed:
        raise typer.Exit(EXIT_VERIFY)


def register(app: VouchTyper) -> None:
    app.command()(verify)


def fast_app() -> VouchTyper:
    """`vouch verify` alone, with the `vouch` group's global options."""
    return one_command_app(register)


def run_fast() -> None:
    run_app(fast_app())
