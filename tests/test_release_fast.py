"""`vouch release` without Typer (vouch.cli.release_fast) gives the command what the Typer command gives it.

For every argument list below, both parsers run and hand run_release_cmd its arguments (captured here,
nothing is released): the fast parser's values and state must equal the Typer command's, or the fast parser
must leave the list to Typer (None). Real releases through the fast path (the entry point takes it for
plain key-mode argument lists) are test_release's, test_startup's and the benchmarks' business."""

from __future__ import annotations

from typing import Any

import pytest

from vouch.cli import release_fast
from vouch.cli.base import State
from vouch.cli.release import fast_app

IMG = "registry.example:5000/team/app@sha256:" + "a" * 64
IMG2 = "registry.example:5000/team/web:v1"

TAKEN = [
    ["release", "--key", "k.key", IMG],
    ["release", IMG, "--key", "k.key", IMG2],
    ["release", "--key=k.key", "--manifest", "release.yaml"],
    ["-o", "json", "release", "--key", "k.key", "--manifest=release.yaml", "--concurrency", "8"],
    ["--output=json", "-v", "--insecure-registry", "r:5000", "--ca-file=ca.pem", "release", "--key", "k", IMG],
    ["release", "-o", "json", "--key", "k.key", IMG],
    ["release", "--key", "k.key", "--refresh-after", "7d", "--max-age=90d", "--report", "r.json", IMG],
    ["release", "--key", "k.key", "--layout", "both", "--sbom-format", "cyclonedx-json",
     "--sbom-format=spdx-json", IMG],
    ["release", "--key", "k.key", "--no-sign-images", IMG], ["release", "--key", "k.key", "--sign-images", IMG],
    ["release", "--key", "k.key", "--no-keyless", IMG],
    ["release", "--key", "k.key", "--allow-http-registry", IMG, IMG2],
    ["release", "--key", "k.key", "--concurrency", "64", "--concurrency=1", IMG],
    ["release", "--key", "k.key"],  # (no images: the command says what is missing, as Typer's would)
]
LEFT_TO_TYPER = [
    ["release", "--help"], ["release", "--key"], ["release", "--key", "--manifest", "m"],
    ["release", "--keyless", IMG], ["release", "--identity-token", "t", IMG], ["release", "--fulcio-url=x", IMG],
    ["release", "--key", "k", "--concurrency", "0", IMG], ["release", "--key", "k", "--concurrency", "65", IMG],
    ["release", "--key", "k", "--concurrency=x", IMG], ["release", "--key", "k", "-o", "xml", IMG],
    ["release", "--key", "k", "--output-file", "out.json", IMG], ["release", "--key", "k", "--", IMG],
    ["release", "--key", "k", "--sign-images=false", IMG], ["-ojson", "release", "--key", "k", IMG],
    ["verify", "--key", "k.pub", IMG], ["release", "--nope", IMG],
]


def _through_typer(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], State]:
    seen: dict[str, Any] = {}

    def capture(st: State, *args: Any) -> int:
        names = list(release_fast.DEFAULTS)
        seen.update(state=st, **dict(zip(names, args[:len(names)], strict=True)))
        return 0

    monkeypatch.setattr(release_fast, "run_release_cmd", capture)
    with pytest.raises(SystemExit) as exit_:
        fast_app()(argv, standalone_mode=True, prog_name="vouch")
    assert exit_.value.code in (0, None), argv
    return seen, seen["state"]


@pytest.mark.parametrize("argv", TAKEN, ids=lambda a: " ".join(a)[:70])
def test_fast_parser_gives_what_typer_gives(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = release_fast.parse(argv)
    assert parsed is not None, argv
    typer_seen, typer_state = _through_typer(argv, monkeypatch)
    assert parsed.params == {k: v for k, v in typer_seen.items() if k != "state"}
    assert (parsed.command_output or parsed.output or "text") == typer_state.output.value
    assert parsed.verbose == typer_state.verbose and parsed.ca_file == typer_state.ca_file
    insecure = list(parsed.insecure_registry)
    if parsed.allow_insecure:
        insecure += [i.split("/")[0] for i in parsed.params["images"] or []]
    assert insecure == typer_state.insecure


@pytest.mark.parametrize("argv", LEFT_TO_TYPER, ids=lambda a: " ".join(a)[:70])
def test_what_the_fast_parser_leaves_to_typer(argv: list[str]) -> None:
    assert release_fast.parse(argv) is None


def test_keyless_switch_leaves_the_release_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    """AKKO_SIGN_KEYLESS=true: the keyless options (and SIGSTORE_ID_TOKEN) are the Typer command's to read."""
    monkeypatch.setenv("AKKO_SIGN_KEYLESS", "true")
    called: list[Any] = []
    monkeypatch.setattr(release_fast, "run_release_cmd", lambda *a, **k: called.append(a) or 0)
    release_fast.try_run(["release", IMG])  # returns (no exit): the entry point then starts the Typer command
    assert called == []
