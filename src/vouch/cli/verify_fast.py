"""`vouch verify` without Typer: the command's work (`run_verify`, which the Typer command calls too) and a
parser for the plain argument lists that scripts and pipelines type (`try_run`).

`vouch verify` is timed against cosign's Go binary, and importing Typer and building its parser cost a
quarter of a verify of 14 images. So the entry point first tries this parser: it knows verify's options
and the global ones, in the forms click accepts (`--key K`, `--key=K`, cosign's `--flag=true|false`,
options between the images). Anything else — help, `--output-file`, a value that looks like an option,
an unknown option, a malformed value — it leaves to the Typer command, which parses, helps and fails as
the whole CLI does. test_verify_fast checks that both parsers give the command the same values.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from vouch.cli.base import (
    OutputFormat,
    PlainArgs,
    State,
    emit,
    ended,
    err,
    keyless_trust,
    load_verifier_keys,
    parallel_map,
    parse_annotations,
    parse_globals,
    plain_outputs_valid,
    plain_state,
    ref_arg,
)
from vouch.errors import EXIT_VERIFY, InputError

if TYPE_CHECKING:
    from vouch.keyless.trust import EitherTrust, KeylessTrust
    from vouch.trust import PublicKey

# strconv.ParseBool, which cosign's flags use (as vouch.cli.common.cosign_bool_args)
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}

# option → (parameter, kind): "one" a value (the last one counts), "many" a repeatable value
_VALUES: dict[str, tuple[str, str]] = {
    "--key": ("key", "many"), "--annotations": ("annotations", "many"), "-a": ("annotations", "many"),
    "--concurrency": ("concurrency", "one"), "--certificate-identity": ("certificate_identity", "one"),
    "--certificate-identity-regexp": ("certificate_identity_regexp", "one"),
    "--certificate-oidc-issuer": ("certificate_oidc_issuer", "one"),
    "--certificate-oidc-issuer-regexp": ("certificate_oidc_issuer_regexp", "one"),
    "--certificate-extension": ("certificate_extension", "many"), "--trusted-root": ("trusted_root", "one"),
    "--output": ("output", "one"), "-o": ("output", "one"),
}
# flag → (parameter, value it sets, whether cosign's --flag=false may turn it off)
_FLAGS: dict[str, tuple[str, bool]] = {
    "--check-reference": ("check_reference", True), "--no-check-reference": ("check_reference", False),
    "--insecure-ignore-tlog": ("insecure_ignore_tlog", True), "--offline": ("offline", True),
    "--no-offline": ("offline", False), "--insecure-ignore-sct": ("insecure_ignore_sct", True),
    "--allow-insecure-registry": ("allow_insecure", True), "--allow-http-registry": ("allow_insecure", True),
}
_NEGATABLE = {"--check-reference": "--no-check-reference", "--offline": "--no-offline"}

DEFAULTS: dict[str, Any] = {
    "key": None, "annotations": None, "check_reference": False, "insecure_ignore_tlog": False, "offline": True,
    "concurrency": 4, "certificate_identity": None, "certificate_identity_regexp": None,
    "certificate_oidc_issuer": None, "certificate_oidc_issuer_regexp": None, "certificate_extension": None,
    "trusted_root": None, "insecure_ignore_sct": False,
}


def parse(argv: list[str]) -> PlainArgs | None:
    """argv (after the program name) as `vouch [global options] verify …` gives it, or None for anything this
    parser does not take on (the Typer command then parses it)."""
    out = PlainArgs(DEFAULTS)
    start = parse_globals(argv, "verify", out)
    if start is None:
        return None
    i = start
    many: dict[str, list[str]] = {}
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-":
            out.images.append(arg)
            i += 1
            continue
        name, eq, inline = arg.partition("=")
        if name in _VALUES:
            if not eq and (i + 1 >= len(argv) or argv[i + 1].startswith("-")):
                return None
            value = inline if eq else argv[i + 1]
            param, kind = _VALUES[name]
            if kind == "many":
                many.setdefault(param, []).append(value)
            elif param == "output":
                out.command_output = value
            else:
                out.params[param] = value
            i += 1 if eq else 2
        elif name in _FLAGS:
            param, on = _FLAGS[name]
            if eq:
                if name.startswith("--no-") or (inline not in _TRUE and inline not in _FALSE):
                    return None
                if inline in _FALSE:
                    if name in _NEGATABLE:
                        param, on = _FLAGS[_NEGATABLE[name]]
                    elif DEFAULTS.get(param, False) is False:
                        i += 1  # off, as it is by default
                        continue
                    else:
                        return None
            if param == "allow_insecure":
                out.allow_insecure = True
            else:
                out.params[param] = on
            i += 1
        else:
            return None  # --help, --output-file, `--`, an option this parser does not know
    out.params.update(many)
    try:
        concurrency = int(out.params["concurrency"])
    except (TypeError, ValueError):
        return None
    if not 1 <= concurrency <= 64 or not out.images:
        return None
    out.params["concurrency"] = concurrency
    return out if plain_outputs_valid(out) else None


def try_run(argv: list[str]) -> None:
    """Run `vouch verify` from argv and exit, if argv is plain (see parse); return otherwise."""
    parsed = parse(argv)
    if parsed is None:
        return
    try:
        st = plain_state(parsed, parsed.images)
        code = run_verify(st, parsed.images, **parsed.params)
    except (Exception, KeyboardInterrupt) as exc:
        sys.exit(ended(exc))
    sys.exit(code)


def verifier_trust(key: list[str] | None, identity: tuple[str | None, str | None, str | None, str | None],
                   trusted_root: str | None, ignore_sct: bool = False, ignore_tlog: bool = False,
                   extensions: list[str] | None = None) -> list[PublicKey] | KeylessTrust | EitherTrust:
    """--key: public keys; --certificate-identity …: the keyless identity policy under the trusted root; both:
    either counts (a mixed release, a rotation from keys to keyless), each for the material it fits."""
    keyless = any(identity)
    if key and keyless:
        from vouch.keyless.trust import EitherTrust

        return EitherTrust(tuple(load_verifier_keys(key)),
                           keyless_trust(*identity, trusted_root, ignore_sct, ignore_tlog, extensions))
    if key:
        return load_verifier_keys(key)
    if keyless:
        return keyless_trust(*identity, trusted_root, ignore_sct, ignore_tlog, extensions)
    raise InputError("give --key (a public key PEM), or --certificate-identity and --certificate-oidc-issuer "
                     "(keyless)")


def run_verify(st: State, images: list[str], key: list[str] | None, annotations: list[str] | None,
               check_reference: bool, insecure_ignore_tlog: bool, offline: bool, concurrency: int,
               certificate_identity: str | None, certificate_identity_regexp: str | None,
               certificate_oidc_issuer: str | None, certificate_oidc_issuer_regexp: str | None,
               certificate_extension: list[str] | None, trusted_root: str | None,
               insecure_ignore_sct: bool) -> int:
    """Verify the images' cosign signatures; print what cosign prints; the exit code."""
    ann = parse_annotations(annotations)
    refs = [ref_arg(i) for i in images]
    client = st.client()
    # The signature tags of images named by digest are read first whatever else happens: those requests
    # start now, and overlap the loading of the verification code and the keys.
    from vouch.store.bundles import read_ahead, read_ahead_blobs
    from vouch.store.layout import SIG_SUFFIX, TAG_ACCEPT, tag_for, target_repository

    client.prefetch_manifests([target_repository(r).with_tag(tag_for(r.digest, SIG_SUFFIX)) for r in refs
                               if r.digest], TAG_ACCEPT, concurrency, read_ahead_blobs, read_ahead)
    from vouch.verify.signatures import cosign_output, verify_image

    keys = verifier_trust(key, (certificate_identity, certificate_identity_regexp, certificate_oidc_issuer,
                                certificate_oidc_issuer_regexp), trusted_root, insecure_ignore_sct,
                          insecure_ignore_tlog, certificate_extension)
    # -o json is the report of every signature, in every layout; text is cosign's (the first layout that verifies)
    every = st.output == OutputFormat.json
    results = parallel_map(lambda ref: verify_image(client, ref, keys, ann, check_reference, exhaustive=every),
                           refs, concurrency)
    failed = [r for r in results if not r.ok]
    keyless_only = False
    if not isinstance(keys, list):  # (the keyless module is imported only when keyless trust is in use)
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
    return EXIT_VERIFY if failed else 0
