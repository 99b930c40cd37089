"""`vouch sbom` without Typer (vouch.cli.sbom_fast) gives the command what the Typer command gives it.

For every argument list below, both parsers run and hand run_sbom_cmd its arguments (captured here, nothing is
scanned): the fast parser's values and state must equal the Typer command's, or the fast parser must leave
the list to Typer (None). Real scans through the fast path (the entry point takes it for plain argument lists)
are the business of test_sbom_sources, test_sbom_syft, test_spdx and the benchmark."""

from __future__ import annotations

from typing import Any

import pytest

from vouch.cli import sbom_fast
from vouch.cli.base import State
from vouch.cli.sbom import fast_app

IMG = "registry.example:5000/team/app@sha256:" + "a" * 64

TAKEN = [
    ["sbom", IMG], ["sbom", "oci:/tmp/layout:v1", "--output-file", "bom.json"],
    ["sbom", "--format", "spdx-json", "dir:/rootfs"], ["sbom", "-o", "spdx-json=out.spdx.json", IMG],
    ["sbom", "--output=cyclonedx-json", IMG], ["sbom", "-o", "json", IMG],
    ["-v", "--insecure-registry", "r:5000", "--ca-file=ca.pem", "sbom", IMG],
    ["-o", "json", "sbom", IMG],
    ["sbom", IMG, "--platform", "linux/arm64", "--timestamp=2026-01-01T00:00:00Z", "--files"],
    ["sbom", "--no-files", "--scope", "all-layers", "--exclude", "./var/cache/**", "--exclude=**/*.pyc", IMG],
    ["sbom", "--max-layer-bytes", "1000000", IMG], ["sbom", "--allow-http-registry", IMG],
    ["sbom", "docker-archive:/tmp/image.tar", "--output-file=/dev/null"],
]
LEFT_TO_TYPER = [
    ["sbom"], ["sbom", "--help"], ["sbom", IMG, IMG], ["sbom", "--platform", IMG],
    ["sbom", "--max-layer-bytes", "lots", IMG], ["sbom", "--", IMG], ["sbom", "--nope", IMG],
    ["sbom", "--files=true", IMG], ["-o", "xml", "sbom", IMG], ["verify", IMG], ["-ojson", "sbom", IMG],
]


def _through_typer(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], State]:
    seen: dict[str, Any] = {}

    def capture(st: State, *args: Any) -> None:
        seen.update(state=st, **dict(zip(list(sbom_fast.DEFAULTS), args, strict=True)))

    monkeypatch.setattr(sbom_fast, "run_sbom_cmd", capture)
    with pytest.raises(SystemExit) as exit_:
        fast_app()(argv, standalone_mode=True, prog_name="vouch")
    assert exit_.value.code in (0, None), argv
    return seen, seen["state"]


@pytest.mark.parametrize("argv", TAKEN, ids=lambda a: " ".join(a)[:70])
def test_fast_parser_gives_what_typer_gives(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = sbom_fast.parse(argv)
    assert parsed is not None, argv
    typer_seen, typer_state = _through_typer(argv, monkeypatch)
    assert parsed.params == {k: v for k, v in typer_seen.items() if k != "state"}
    assert (parsed.output or "text") == typer_state.output.value
    assert parsed.verbose == typer_state.verbose and parsed.ca_file == typer_state.ca_file
    insecure = list(parsed.insecure_registry) + ([IMG.split("/")[0]] if parsed.allow_insecure else [])
    assert insecure == typer_state.insecure


@pytest.mark.parametrize("argv", LEFT_TO_TYPER, ids=lambda a: " ".join(a)[:70])
def test_what_the_fast_parser_leaves_to_typer(argv: list[str]) -> None:
    assert sbom_fast.parse(argv) is None
