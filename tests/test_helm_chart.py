"""The Helm chart deploy/helm/akko-opa, rendered by real `helm template` (built from the Go module proxy
by scripts/install-peers.sh): audit → enforce is one value, and both render to a ClusterPolicy that
validates against the Kyverno v1.19 CRD and matches what `vouch policy kyverno` renders."""

from __future__ import annotations

import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.support.peers import peer
from tests.test_kyverno_policy import crd_schema
from vouch.deploy.kyverno import admission_rule_problems, cluster_policy
from vouch.keys.cosign import generate_private_key, public_key_pem

CHART = Path(__file__).resolve().parents[1] / "deploy" / "helm" / "akko-opa"


def render(tmp_path: Path, *sets: str) -> dict:  # type: ignore[type-arg]
    helm = peer("helm")
    r = subprocess.run([str(helm), "template", "akko-opa", str(CHART), *sets], capture_output=True, text=True,
                       timeout=120, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    assert len(docs) == 1
    return docs[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("enforce", [False, True])
def test_chart_renders_the_policy(tmp_path: Path, enforce: bool) -> None:
    bundle = tmp_path / "cosign.pub"
    pem = public_key_pem(generate_private_key()) + public_key_pem(generate_private_key())
    bundle.write_bytes(pem)
    sets = ["--set-file", f"imagePolicy.publicKeys={bundle}"]
    if enforce:
        sets += ["--set", "imagePolicy.enforce=true"]
    doc = render(tmp_path, *sets)
    jsonschema.Draft7Validator(crd_schema()).validate(doc)
    assert admission_rule_problems(doc) == []
    ours = cluster_policy(pem, ["harbor.akko-ai.com/akko/*"], "enforce" if enforce else "audit")
    assert doc["spec"] == ours["spec"]  # the chart and `vouch policy kyverno` agree


def test_chart_requires_keys(tmp_path: Path) -> None:
    helm = peer("helm")
    r = subprocess.run([str(helm), "template", "akko-opa", str(CHART)], capture_output=True, text=True, timeout=120,
                       env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode != 0 and "imagePolicy.publicKeys is required" in r.stderr


def test_chart_takes_the_previous_key_separately(tmp_path: Path) -> None:
    """Rotation (issue 15): cosign.pub stays the single current key; the overlap's previous key is its own
    value, and the chart renders one attestor entry per key, as `vouch policy kyverno` does for both."""
    current, previous = public_key_pem(generate_private_key()), public_key_pem(generate_private_key())
    (tmp_path / "cosign.pub").write_bytes(current)
    (tmp_path / "cosign.previous.pub").write_bytes(previous)
    doc = render(tmp_path, "--set-file", f"imagePolicy.publicKeys={tmp_path / 'cosign.pub'}",
                 "--set-file", f"imagePolicy.previousPublicKeys={tmp_path / 'cosign.previous.pub'}")
    jsonschema.Draft7Validator(crd_schema()).validate(doc)
    assert doc["spec"] == cluster_policy(current + previous, ["harbor.akko-ai.com/akko/*"], "audit")["spec"]
    entries = doc["spec"]["rules"][0]["verifyImages"][0]["attestors"][0]["entries"]
    assert len(entries) == 2
