"""The single-file install: scripts/build-zipapp.sh builds vouch.pyz offline (from the wheelhouse that
scripts/warm-testdata.py fills), and a clean venv without vouch — nothing but the interpreter — runs it:
--version, then generate-key-pair, sign and verify against the real registry, and stock cosign verifies that
signature."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import vouch
from tests.support.images import small_image
from tests.support.peers import peer, run_peer
from tests.support.registry import RegistryServer
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference

ROOT = Path(__file__).resolve().parents[1]
WHEELS = Path(os.environ.get("VOUCH_WHEELHOUSE", Path.home() / ".cache" / "vouch-testdata" / "wheels"))


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if not list(WHEELS.glob("pex-*.whl")):
        msg = f"no wheelhouse at {WHEELS}: run python3 scripts/warm-testdata.py (or scripts/build-zipapp.sh --fetch)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    out = tmp_path_factory.mktemp("zipapp") / "vouch.pyz"
    r = subprocess.run(["bash", str(ROOT / "scripts" / "build-zipapp.sh"), str(out)], capture_output=True,
                       text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-3000:]
    yield out


@pytest.fixture(scope="module")
def clean_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv of the interpreter with nothing installed (no pip, no system site-packages)."""
    venv = tmp_path_factory.mktemp("clean") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    return venv / "bin" / "python"


def run_pyz(python: Path, pyz: Path, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "COSIGN_", "PEX_"))}
    env.update({"HOME": str(home), "PEX_ROOT": str(home / "pex"), "COSIGN_PASSWORD": "pw",
                "DOCKER_CONFIG": str(home / "docker")})
    return subprocess.run([str(python), str(pyz), *args], capture_output=True, text=True, env=env, cwd=home,
                          timeout=600, stdin=subprocess.DEVNULL)


def test_zipapp_runs_from_a_clean_venv(pyz: Path, clean_python: Path, registry: RegistryServer,
                                       client: RegistryClient, repo_name: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    probe = subprocess.run([str(clean_python), "-c", "import vouch"], capture_output=True, text=True, cwd=home,
                           env={"PATH": os.environ["PATH"]}, timeout=60)
    assert probe.returncode != 0 and "No module named 'vouch'" in probe.stderr  # really nothing installed
    r = run_pyz(clean_python, pyz, "--version", home=home)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == f"vouch {vouch.__version__}"
    assert (home / "pex").is_dir()  # unpacked where PEX_ROOT says, not into the checkout
    r = run_pyz(clean_python, pyz, "generate-key-pair", "--output-key-prefix", str(home / "k"), home=home)
    assert r.returncode == 0, r.stderr[-2000:]
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), small_image("zipapp"))
    image = f"{registry.host}/{repo_name}@{digest}"
    r = run_pyz(clean_python, pyz, "sign", "--key", str(home / "k.key"), image, home=home)
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_pyz(clean_python, pyz, "verify", "--key", str(home / "k.pub"), image, home=home)
    assert r.returncode == 0, r.stderr[-2000:]
    run_peer(peer("cosign3"), "verify", "--key", str(home / "k.pub"), "--new-bundle-format=false",
             "--insecure-ignore-tlog=true", "--allow-insecure-registry", image, home=tmp_path / "cosign-home")
    other = tmp_path / "other"
    other.mkdir()
    r = run_pyz(clean_python, pyz, "generate-key-pair", "--output-key-prefix", str(other / "k"), home=home)
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_pyz(clean_python, pyz, "verify", "--key", str(other / "k.pub"), image, home=home)
    assert r.returncode == 1 and "Traceback" not in r.stderr  # a foreign key: the documented exit code
