"""`vouch --version` answers without importing the CLI and its libraries (no timed assertion: what is
imported is checked, which is what the start-up costs)."""

from __future__ import annotations

import subprocess
import sys

from vouch import __version__

PROBE = """
import sys
sys.argv = ["vouch", "--version"]
from vouch.cli import entry
try:
    entry.run()
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.startswith(("vouch.cli.main", "httpx", "typer", "cryptography")))
print("HEAVY", heavy)
"""


def test_version_imports_nothing_heavy() -> None:
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == f"vouch {__version__}"
    assert r.stdout.splitlines()[1] == "HEAVY []", r.stdout


def test_version_through_the_module_and_other_commands_still_parse() -> None:
    r = subprocess.run([sys.executable, "-m", "vouch", "--version"], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, f"vouch {__version__}\n")
    r = subprocess.run([sys.executable, "-m", "vouch", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "verify" in r.stdout
