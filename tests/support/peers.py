"""Real peer binaries (cosign 2.x and 3.x), built by scripts/install-peers.sh and cached under ~/.cache.

A test that needs a peer fails in CI (CI=true) when the peer is missing, and skips elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PEERS_DIR = Path(os.environ.get("VOUCH_PEERS_DIR", Path.home() / ".cache" / "vouch-peers")) / "bin"


def peer(name: str) -> Path:
    found = shutil.which(name)
    path = Path(found) if found else PEERS_DIR / name
    if not path.exists():
        msg = f"peer {name} is not installed: run scripts/install-peers.sh"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def run_peer(binary: Path, *args: str, home: Path, env: dict[str, str] | None = None,
             cwd: Path | None = None, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("COSIGN_", "SIGSTORE_"))}
    full_env.update({"HOME": str(home), "TUF_ROOT": str(home / "tuf")})
    full_env.update(env or {})
    r = subprocess.run([str(binary), *args], capture_output=True, text=True, env=full_env, cwd=cwd,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise AssertionError(f"{binary.name} {' '.join(args)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r
