"""Issue 18's messages: a missing tag in an `oci:` layout is bad input (exit 2); a registry name that does
not resolve is not transient (no retries, a clear message, fast, offline too: `.invalid` never resolves);
durations in the largest unit that reads well; help at 80 columns with flag names in full."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.images import small_image
from vouch.oci.build import write_layout
from vouch.oci.client import RegistryClient, RegistryOptions, UnresolvedHostError
from vouch.oci.reference import Reference

UNRESOLVABLE = "registry.vouch-test.invalid"  # RFC 2606: never resolves, with or without a network


def vouch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def test_missing_tag_in_an_oci_layout_is_bad_input(tmp_path: Path) -> None:
    digest = write_layout(tmp_path / "layout", small_image("habits2"), tag="2026.04")
    ok = vouch("digest", f"oci:{tmp_path / 'layout'}:2026.04")
    assert ok.returncode == 0 and ok.stdout.strip() == digest, ok.stderr
    r = vouch("digest", f"oci:{tmp_path / 'layout'}:nope")
    assert r.returncode == 2, r.stderr
    assert "no image tagged 'nope' in index.json" in r.stderr and "Traceback" not in r.stderr


def test_a_name_that_does_not_resolve_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    client = RegistryClient(RegistryOptions(backoff=5.0, retries=4))
    retries: list[int] = []  # every retry goes through sleep_before_retry: count them, no clock involved
    monkeypatch.setattr(client, "sleep_before_retry", lambda attempt, retry_after=None: retries.append(attempt))
    with pytest.raises(UnresolvedHostError) as info:
        client.resolve(Reference(UNRESOLVABLE, "team/app", "1.0"))
    client.close()
    assert retries == []
    assert not info.value.transient and info.value.exit_code == 3
    assert f"the registry name {UNRESOLVABLE} does not resolve" in str(info.value)
    assert client.request_count == 0


def test_unresolvable_registry_on_the_command_line() -> None:
    r = vouch("digest", f"{UNRESOLVABLE}/team/app:1.0")
    assert r.returncode == 3, r.stderr
    [line] = r.stderr.strip().splitlines()
    assert line.startswith("Error: ") and f"the registry name {UNRESOLVABLE} does not resolve (" in line
    assert "check the name, and this machine's DNS and network" in line and "attempt" not in line


@pytest.mark.parametrize(("seconds", "text"), [(1, "1 s"), (45, "45 s"), (720, "12 min"), (19800, "5.5 hours"),
                                               (3 * 86400, "3.0 days")])
def test_durations_read_well(seconds: int, text: str) -> None:
    from vouch.verify.bomfacts import _fmt, parse_age

    assert _fmt(dt.timedelta(seconds=seconds)) == text
    assert _fmt(parse_age("1s")) == "1 s"  # `--max-age 1s`, never "0.0 hours"


def test_verify_help_at_80_columns() -> None:
    r = vouch("verify", "--help", env={"COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
    for flag in ("--check-reference", "--insecure-ignore-tlog", "--certificate-oidc-issuer-regexp",
                 "--certificate-identity-regexp", "--allow-insecure-registry", "--output-file"):
        assert flag in r.stdout.split() or f"{flag}," in r.stdout or f"{flag}/" in r.stdout, flag
    for noise in ("…", "<int>", "<bool>", "<text>", "<str>"):
        assert noise not in r.stdout, noise


def test_completion_for_each_shell() -> None:
    for shell in ("bash", "zsh", "fish"):
        r = vouch("completion", shell)
        assert r.returncode == 0 and "_VOUCH_COMPLETE" in r.stdout, (shell, r.stderr)
