"""Every user-facing error message in the code has an entry in docs/troubleshooting.md."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from error_messages import messages  # noqa: E402


def test_every_error_message_is_documented() -> None:
    doc = (ROOT / "docs" / "troubleshooting.md").read_text()
    found = messages(ROOT / "src" / "vouch")
    assert len(found) > 100  # the extraction really sees the code's messages
    missing = [f"{f}:{line}: {key}" for f, line, key in found if key not in doc]
    assert missing == [], "add these to docs/troubleshooting.md:\n" + "\n".join(missing)


def test_operator_guide_commands_exist() -> None:
    """The commands the operator guide shows are real vouch commands."""
    import subprocess

    guide = (ROOT / "docs" / "operator.md").read_text()
    for cmd in ("generate-key-pair", "public-key", "import-key-pair", "keys init", "keys rotate", "sign", "verify",
                "download attestation", "download sbom", "verify-attestation", "verify-release", "release",
                "dtrack upload", "policy kyverno"):
        assert f"vouch {cmd}" in guide or f"vouch  {cmd}" in guide, cmd
        r = subprocess.run([sys.executable, "-m", "vouch", *cmd.split(), "--help"], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, (cmd, r.stderr)


def test_every_command_has_working_help() -> None:
    """`--help` renders for every command and group (help text is Rich markup: a stray `[...]` breaks it)."""
    import typer.main
    from typer.testing import CliRunner

    from vouch.cli.main import app

    def walk(group: object, prefix: list[str]) -> list[list[str]]:
        out = [prefix]
        for name, cmd in getattr(group, "commands", {}).items():
            out += walk(cmd, [*prefix, name])
        return out

    paths = walk(typer.main.get_command(app), [])
    assert len(paths) > 20 and ["sbom"] in paths
    runner = CliRunner()
    for path in paths:
        r = runner.invoke(app, [*path, "--help"])
        assert r.exit_code == 0, (path, r.output[-500:])


def test_operator_guide_lists_every_resource_limit() -> None:
    """docs/operator.md holds exactly the table scripts/limits_table.py renders from src/vouch/limits.py."""
    from limits_table import BEGIN, END, table

    guide = (ROOT / "docs" / "operator.md").read_text()
    assert BEGIN in guide and END in guide
    current = guide[guide.index(BEGIN): guide.index(END) + len(END)]
    assert current == table(), "re-render the limits table: python scripts/limits_table.py"
