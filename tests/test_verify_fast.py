"""`vouch verify` without Typer (vouch.cli.verify_fast) gives the command what the Typer command gives it.

For every argument list below, both parsers run and hand run_verify its arguments (captured here, nothing is
verified): the fast parser's values and state must equal the Typer command's, or the fast parser must leave
the list to Typer (None), which then parses, helps or fails as the whole CLI does. Running real
verifications through the fast path against a registry and cosign is test_startup's, test_sign_verify's and
test_verify_many's business (the entry point takes that path for their plain argument lists)."""

from __future__ import annotations

from typing import Any

import pytest

from vouch.cli import verify_fast
from vouch.cli.base import State
from vouch.cli.verify import fast_app

IMG = "registry.example:5000/team/app@sha256:" + "a" * 64
IMG2 = "registry.example:5000/team/web:v1"

TAKEN = [  # plain lists: the fast parser runs them
    ["verify", "--key", "k.pub", IMG],
    ["verify", IMG, "--key", "k.pub", IMG2],
    ["verify", "--key=k.pub", "--key", "env://PUB", IMG],
    ["-o", "json", "verify", "--key", "k.pub", IMG],
    ["--output=json", "-v", "--insecure-registry", "r:5000", "--insecure-registry=s:5000", "--ca-file=ca.pem",
     "verify", "--key", "k.pub", IMG],
    ["-vv", "verify", "--key", "k.pub", IMG],
    ["verify", "-o", "json", "--key", "k.pub", IMG],
    ["-o", "text", "verify", "--output=yaml", "--key", "k.pub", IMG],
    ["verify", "--key", "k.pub", "--insecure-ignore-tlog", "--offline", IMG],
    ["verify", "--key", "k.pub", "--insecure-ignore-tlog=true", "--offline=true", "--allow-http-registry=true", IMG],
    ["verify", "--key", "k.pub", "--insecure-ignore-tlog=false", "--offline=false", IMG],
    ["verify", "--key", "k.pub", "--no-offline", "--check-reference", IMG],
    ["verify", "--key", "k.pub", "--check-reference=false", "--check-reference=1", IMG],
    ["verify", "--key", "k.pub", "--no-check-reference", IMG],
    ["verify", "--key", "k.pub", "-a", "env=prod", "--annotations=team=a", "--annotations", "x=", IMG],
    ["verify", "--key", "k.pub", "--concurrency", "8", "--concurrency=2", IMG],
    ["verify", "--key", "k.pub", "--concurrency", "64", IMG],
    ["verify", "--certificate-identity", "https://ci/x", "--certificate-oidc-issuer", "https://issuer",
     "--trusted-root", "root.json", "--insecure-ignore-sct", IMG],
    ["verify", "--certificate-identity-regexp", "^https://ci/", "--certificate-oidc-issuer-regexp", ".*",
     "--certificate-extension", "githubWorkflowRef=refs/heads/main", "--certificate-extension=x=y", IMG],
    ["verify", "--key", "k.pub", "--allow-insecure-registry", IMG, "not a reference"],
    ["verify", "--key", "k.pub", "--insecure-ignore-sct=false", IMG],
]
LEFT_TO_TYPER = [  # help, errors, rarer forms: the Typer command parses them
    ["verify", "--help"], ["verify", "-h"], ["--help"], ["verify"], ["verify", "--key", "k.pub"],
    ["verify", "--key"], ["verify", "--key", "--offline", IMG], ["verify", "--key", "k.pub", "--concurrency", "0", IMG],
    ["verify", "--key", "k.pub", "--concurrency", "65", IMG], ["verify", "--key", "k.pub", "--concurrency=x", IMG],
    ["-o", "xml", "verify", "--key", "k.pub", IMG], ["verify", "-o", "xml", "--key", "k.pub", IMG],
    ["verify", "--key", "k.pub", "--offline=maybe", IMG], ["verify", "--key", "k.pub", "--no-offline=true", IMG],
    ["verify", "--nope", IMG], ["verify", "--key", "k.pub", "--output-file", "out.json", IMG],
    ["verify", "--key", "k.pub", "--", IMG], ["-ojson", "verify", "--key", "k.pub", IMG],
    ["--version", "verify"], ["sign", "--key", "k", IMG], ["verify", "-v", "--key", "k.pub", IMG],
    ["verify", "-akey=v", "--key", "k.pub", IMG],
]


def _through_typer(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], State]:
    seen: dict[str, Any] = {}

    def capture(st: State, images: list[str], *args: Any) -> int:
        names = list(verify_fast.DEFAULTS)
        seen.update(images=images, state=st, **dict(zip(names, args, strict=True)))
        return 0

    monkeypatch.setattr(verify_fast, "run_verify", capture)
    with pytest.raises(SystemExit) as exit_:
        fast_app()(argv, standalone_mode=True, prog_name="vouch")
    assert exit_.value.code in (0, None), argv
    return seen, seen["state"]


@pytest.mark.parametrize("argv", TAKEN, ids=lambda a: " ".join(a)[:70])
def test_fast_parser_gives_what_typer_gives(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = verify_fast.parse(argv)
    assert parsed is not None, argv
    typer_seen, typer_state = _through_typer(argv, monkeypatch)
    ours = {"images": parsed.images, **parsed.params}
    theirs = {k: v for k, v in typer_seen.items() if k != "state"}
    assert ours == theirs
    # the state the command runs with: the output format (global, or -o after the command), verbosity,
    # the registries allowed plain HTTP (--insecure-registry, and cosign's --allow-http-registry), the CA
    assert (parsed.command_output or parsed.output or "text") == typer_state.output.value
    assert parsed.verbose == typer_state.verbose and parsed.ca_file == typer_state.ca_file
    insecure = list(parsed.insecure_registry)
    if parsed.allow_insecure:
        insecure += [i.split("/")[0] for i in parsed.images if "/" in i and " " not in i]
    assert insecure == typer_state.insecure


@pytest.mark.parametrize("argv", LEFT_TO_TYPER, ids=lambda a: " ".join(a)[:70])
def test_what_the_fast_parser_leaves_to_typer(argv: list[str]) -> None:
    assert verify_fast.parse(argv) is None


def test_parallel_map_keeps_order_bounds_threads_and_raises_the_first_error() -> None:
    import threading
    import time

    from vouch.cli.base import parallel_map

    running, peak, lock = [0], [0], threading.Lock()

    def slow_square(n: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.01 * (n % 3))
        with lock:
            running[0] -= 1
        if n in (7, 4):
            raise ValueError(f"item {n}")
        return n * n

    assert parallel_map(lambda n: n * n, list(range(20)), 4) == [n * n for n in range(20)]
    done: list[int] = []
    with pytest.raises(ValueError, match="item 4"):  # the first in input order, after every item ran
        parallel_map(lambda n: done.append(n) or slow_square(n), list(range(12)), 3)
    assert sorted(done) == list(range(12)) and 1 < peak[0] <= 3
