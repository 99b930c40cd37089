"""Language catalogers on real artefacts: wheels installed by pip, a real `npm install`."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
from pathlib import Path

from tests.support.testdata import npm_tree, pip_tree
from vouch.oci.build import Image, Layer, write_layout
from vouch.oci.source import LayoutSource
from vouch.sbom.catalogers.python import normalize_name
from vouch.sbom.generate import generate_sbom


def _files_under(root: Path, prefix: str, skip: str = ".complete") -> dict[str, bytes]:
    out = {}
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink() and p.name != skip:
            out[f"{prefix}/{p.relative_to(root).as_posix()}"] = p.read_bytes()
    return out


def test_pip_installed_packages(tmp_path: Path) -> None:
    site = pip_tree()
    truth = {normalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions(path=[str(site)])}
    assert {"requests", "urllib3", "idna", "certifi", "charset-normalizer", "pyyaml", "attrs"} <= set(truth)
    files = _files_under(site, "usr/local/lib/python3.11/site-packages")
    files["etc/os-release"] = b'ID=debian\nVERSION_ID="12"\n'
    write_layout(tmp_path / "img", Image([Layer.from_files(files)]))
    result = generate_sbom(LayoutSource(tmp_path / "img", None), timestamp="2026-04-25T10:00:00Z")
    got = {normalize_name(p.name): p for p in result.packages if p.type == "pypi"}
    assert {k: p.version for k, p in got.items()} == truth  # every package once, right version
    assert got["requests"].purl == "pkg:pypi/requests@2.32.3"
    assert got["pyyaml"].purl == "pkg:pypi/pyyaml@6.0.2"
    assert "/usr/local/lib/python3.11/site-packages/requests/api.py" in got["requests"].files
    assert "urllib3" in got["requests"].depends
    assert got["attrs"].licenses == ["MIT"]
    purls = [p.purl for p in result.packages]
    assert len(purls) == len(set(purls))


def test_npm_installed_packages(tmp_path: Path) -> None:
    app = npm_tree()
    tree = json.loads(subprocess.run(["npm", "ls", "--all", "--json", "--prefix", str(app)], capture_output=True,
                                     text=True).stdout)
    truth: set[tuple[str, str]] = set()

    def walk(deps: dict[str, dict[str, object]]) -> None:
        for name, info in deps.items():
            if isinstance(info.get("version"), str):
                truth.add((name, str(info["version"])))
            walk(info.get("dependencies") or {})  # type: ignore[arg-type]

    walk(tree["dependencies"])
    assert len(truth) > 40 and ("express", "4.19.2") in truth and ("@types/node", "20.14.9") in truth
    files = {k: v for k, v in _files_under(app, "opt/akko/ui").items() if k.endswith("package.json")}
    write_layout(tmp_path / "img", Image([Layer.from_files(files)]))
    result = generate_sbom(LayoutSource(tmp_path / "img", None), timestamp="2026-04-25T10:00:00Z")
    libs = {(p.name, p.version) for p in result.packages if p.type == "npm" and p.component_type == "library"}
    assert libs == truth  # every installed package (nested and scoped too), no extras
    apps = [p for p in result.packages if p.component_type == "application"]
    assert [(p.name, p.version) for p in apps] == [("akko-ui", "2026.4.0")]
    express = next(p for p in result.packages if p.name == "express")
    assert express.purl == "pkg:npm/express@4.19.2" and express.licenses == ["MIT"]
    types_node = next(p for p in result.packages if p.name == "@types/node")
    assert types_node.purl == "pkg:npm/%40types/node@20.14.9"
    purls = [p.purl for p in result.packages]
    assert len(purls) == len(set(purls))
