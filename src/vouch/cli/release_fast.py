"""`vouch release` without Typer: the command's work (`run_release_cmd`, which the Typer command in
vouch.cli.release calls too) and a parser for the plain key-mode argument lists a pipeline re-runs on every
build (`try_run`).

A re-run whose images are signed and whose SBOMs are current does little besides starting up, and
importing Typer and building its parser cost about a tenth of it. So the entry point first tries this
parser: the global options, and release's own in the forms click accepts (`--key K`, `--key=K`, flags,
options between the images). Anything else — help, keyless options, `--output-file`, a value that looks like
an option, an unknown option — it leaves to the Typer command. test_release_fast checks that both parsers
give the command the same values.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vouch.cli.base import (
    PlainArgs,
    State,
    emit,
    ended,
    err,
    load_signer,
    parse_globals,
    plain_outputs_valid,
    plain_state,
    ref_arg,
    text_table,
    write_layouts,
)
from vouch.errors import InputError

if TYPE_CHECKING:
    from vouch.keyless.sign import KeylessSigner
    from vouch.release.plan import ReleaseImage
    from vouch.signing.signer import KeySigner


def release_images(manifest: str | None, images: list[str] | None) -> list[ReleaseImage]:
    from vouch.release.plan import ReleaseImage, load_manifest

    if manifest and images:
        raise InputError("give either --manifest or images, not both")
    if manifest:
        return load_manifest(manifest).images
    if not images:
        raise InputError("nothing to do: give --manifest release.yaml or image references")
    return [ReleaseImage(ref_arg(i)) for i in images]


def run_release_cmd(st: State, images: list[str] | None, key: str | None, manifest: str | None, concurrency: int,
                    refresh_after: str, max_age: str, report: str | None, sign_images: bool | None,
                    keyless: bool | None, layout: str | None, sbom_format: list[str] | None,
                    keyless_signer: Callable[[], KeylessSigner] | None = None) -> int:
    """vouch release's work; the exit code. keyless_signer makes the keyless signer from the command's
    keyless options (None: the defaults, as the Typer command's options default)."""
    from vouch.release.plan import KEYLESS_SWITCH, SIGN_SWITCH, switch

    if not switch(sign_images, SIGN_SWITCH, True):
        err("vouch release: signing disabled (AKKO_SIGN_IMAGES/VOUCH_SIGN_IMAGES=false); nothing done")
        emit(st, {"skipped": True}, "")
        return 0
    use_keyless = switch(keyless, KEYLESS_SWITCH, False)
    if use_keyless and key:
        raise InputError("keyless signing (AKKO_SIGN_KEYLESS/VOUCH_SIGN_KEYLESS=true or --keyless) and --key "
                         "exclude each other: unset one")
    if not use_keyless and not key:
        raise InputError("--key is required (a cosign private key), or keyless signing: AKKO_SIGN_KEYLESS=true "
                         "(or --keyless) with an identity token")
    layouts = write_layouts(False, layout)
    # The key's scrypt (about 0.1 s, the GIL released) runs while the rest of the release machinery is
    # imported, when the password comes from the environment (a prompt stays on this thread).
    unlocking = None
    if key and os.environ.get("COSIGN_PASSWORD") is not None:
        unlocking = _in_thread(lambda: load_signer(key))
    try:
        from vouch.release.plan import ReleaseImage, load_manifest, sbom_formats

        if manifest and images:
            raise InputError("give either --manifest or images, not both")
        if not manifest and not images:
            raise InputError("nothing to do: give --manifest release.yaml or image references")
        release = load_manifest(manifest) if manifest else None
        plan = release.images if release is not None else [ReleaseImage(ref_arg(i)) for i in images or []]
        _read_ahead(st, plan, layouts, concurrency)
        from vouch.release.run import exit_code, run_release
        from vouch.verify.bomfacts import parse_age

        formats = sbom_formats(sbom_format, "--sbom-format") if sbom_format else \
            (release.sbom_formats if release is not None else ("cyclonedx-json",))
        refresh, limit = parse_age(refresh_after), parse_age(max_age)
        signer: KeySigner | KeylessSigner
        if use_keyless:
            assert keyless_signer is not None  # (try_run leaves keyless releases to the Typer command)
            signer = keyless_signer()
            err(f"vouch release: signing keyless as {signer.identity.subject} (issuer {signer.identity.issuer})")
        else:
            assert key is not None
            signer = unlocking() if unlocking is not None else load_signer(key)
    except BaseException:
        if unlocking is not None:  # (its thread ends before the command does: no import cut off at exit)
            with contextlib.suppress(BaseException):
                unlocking()
        raise
    started = time.perf_counter()
    reports = _run_with_progress(lambda done: run_release(st.client(), signer, plan, concurrency, refresh, limit,
                                                          done, layouts=layouts, spdx="spdx-json" in formats),
                                 len(plan))
    elapsed = time.perf_counter() - started
    _release_table(reports, elapsed, st.client().request_count)
    doc = {"seconds": round(elapsed, 3), "requests": st.client().request_count,
           "images": [r.to_json() for r in reports]}
    if report:
        from vouch.keys.files import write_new_file

        write_new_file(Path(report), json.dumps(doc, indent=2).encode() + b"\n", 0o644, force=True)
    emit(st, doc, "")
    failed = [r for r in reports if r.error]
    for r in failed:
        err(f"Error: {r.image}: {r.error}")
    return exit_code(reports) if failed else 0


def _in_thread(fn: Callable[[], Any]) -> Callable[[], Any]:
    """fn started in a daemon thread; the returned function waits for its result (or raises its error)."""
    import threading

    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # (re-raised in the thread that asks)
            box["error"] = exc

    t = threading.Thread(target=work, name="vouch-key", daemon=True)
    t.start()

    def result() -> Any:
        t.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    return result


def _read_ahead(st: State, plan: list[ReleaseImage], layouts: tuple[str, ...], concurrency: int) -> None:
    """Start reading the signature and attestation tags of the images pinned by digest (with the attestations'
    envelopes) now, while the release code is imported and the key unlocked; for the legacy layout, where a
    re-run finds what it needs. A write never starts from such an answer (store.layout.update_tag)."""
    if "legacy" not in layouts:
        return
    from vouch.store.layout import ATT_SUFFIX, SIG_SUFFIX, TAG_ACCEPT, attestation_blobs, tag_for, target_repository

    refs = [target_repository(i.ref).with_tag(tag_for(i.ref.digest, s)) for i in plan if i.ref.digest
            for s in (SIG_SUFFIX, ATT_SUFFIX)]
    if refs:
        st.client().prefetch_manifests(refs, TAG_ACCEPT, concurrency, attestation_blobs)


def _run_with_progress(work: Callable[[Callable[[Any], None]], list[Any]], total: int) -> list[Any]:
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


# ---- the parser for plain argument lists ---------------------------------------------------------------

_VALUES = {"--key": "key", "--manifest": "manifest", "--concurrency": "concurrency",
           "--refresh-after": "refresh_after", "--max-age": "max_age", "--report": "report", "--layout": "layout",
           "--sbom-format": "sbom_format", "--output": "output", "-o": "output"}
_FLAGS = {"--sign-images": ("sign_images", True), "--no-sign-images": ("sign_images", False),
          "--no-keyless": ("keyless", False), "--allow-insecure-registry": ("allow_insecure", True),
          "--allow-http-registry": ("allow_insecure", True)}

DEFAULTS: dict[str, Any] = {
    "images": None, "key": None, "manifest": None, "concurrency": 4, "refresh_after": "30d", "max_age": "90d",
    "report": None, "sign_images": None, "keyless": None, "layout": None, "sbom_format": None,
}


def parse(argv: list[str]) -> PlainArgs | None:
    """argv (after the program name) as `vouch [global options] release …` gives it, or None for anything this
    parser does not take on (the Typer command then parses it)."""
    out = PlainArgs(DEFAULTS)
    start = parse_globals(argv, "release", out)
    if start is None:
        return None
    i = start
    images: list[str] = []
    formats: list[str] = []
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-":
            images.append(arg)
            i += 1
            continue
        name, eq, inline = arg.partition("=")
        if name in _VALUES:
            if not eq and (i + 1 >= len(argv) or argv[i + 1].startswith("-")):
                return None
            value = inline if eq else argv[i + 1]
            param = _VALUES[name]
            if param == "sbom_format":
                formats.append(value)
            elif param == "output":
                out.command_output = value
            else:
                out.params[param] = value
            i += 1 if eq else 2
        elif arg in _FLAGS:  # (click's boolean flags take no =value)
            param, on = _FLAGS[arg]
            if param == "allow_insecure":
                out.allow_insecure = True
            else:
                out.params[param] = on
            i += 1
        else:
            return None  # --help, --keyless and its options, --output-file, `--`, an option not known here
    out.params["images"] = images or None
    out.params["sbom_format"] = formats or None
    try:
        concurrency = int(out.params["concurrency"])
    except (TypeError, ValueError):
        return None
    if not 1 <= concurrency <= 64:
        return None
    out.params["concurrency"] = concurrency
    return out if plain_outputs_valid(out) else None


def try_run(argv: list[str]) -> None:
    """Run `vouch release` from argv and exit, if argv is plain (see parse); return otherwise."""
    parsed = parse(argv)
    if parsed is None:
        return
    from vouch.release.plan import KEYLESS_SWITCH, switch

    if switch(parsed.params["keyless"], KEYLESS_SWITCH, False):
        return  # keyless (AKKO_SIGN_KEYLESS=true): the Typer command, with its keyless options and their envvars
    try:
        st = plain_state(parsed, parsed.params["images"] or [])
        code = run_release_cmd(st, **parsed.params)
    except (Exception, KeyboardInterrupt) as exc:
        sys.exit(ended(exc))
    sys.exit(code)
