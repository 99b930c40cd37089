"""Rendered Kyverno policies validate against the Kyverno v1.19 ClusterPolicy CRD schema (shared/schemas)
plus the rules its admission webhook enforces that the schema does not carry."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import SHARED
from vouch.deploy.kyverno import admission_rule_problems, cluster_policy
from vouch.errors import InputError
from vouch.keys.cosign import generate_private_key, load_public_keys, public_key_pem


def crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load((SHARED / "schemas" / "kyverno-v1.19.0-clusterpolicies.crd.yaml").read_text())
    v1 = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return v1["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", ["audit", "enforce"])
@pytest.mark.parametrize("nkeys", [1, 2])
def test_policy_validates(mode: str, nkeys: int) -> None:
    keys = [generate_private_key() for _ in range(nkeys)]
    pem = b"".join(public_key_pem(k) for k in keys)
    policy = cluster_policy(pem, ["harbor.akko-ai.com/akko/*"], mode, dt.timedelta(days=90))
    jsonschema.Draft7Validator(crd_schema()).validate(policy)
    assert admission_rule_problems(policy) == []
    vi = policy["spec"]["rules"][0]["verifyImages"][0]
    assert vi["failureAction"] == ("Enforce" if mode == "enforce" else "Audit")
    assert vi["mutateDigest"] is False
    for attestor in [vi["attestors"][0], vi["attestations"][0]["attestors"][0]]:
        assert attestor["count"] == 1  # either key of a rotation overlap suffices
        assert len(attestor["entries"]) == nkeys  # one entry per key
        for entry in (e["keys"] for e in attestor["entries"]):
            assert entry["rekor"] == {"ignoreTlog": True} and entry["ctlog"] == {"ignoreSCT": True}
            assert len(load_public_keys(entry["publicKeys"].encode())) == 1
    att = vi["attestations"][0]
    assert att["type"] == "https://cyclonedx.org/bom"
    cond = att["conditions"][0]["all"][0]
    assert cond == {"key": "{{ time_since('', '{{ metadata.timestamp }}', '') }}", "operator": "LessThanOrEquals",
                    "value": "2160h"}


def test_admission_rules_the_schema_misses_are_caught() -> None:
    policy = cluster_policy(public_key_pem(generate_private_key()), ["r/*"], "audit")
    vi = policy["spec"]["rules"][0]["verifyImages"][0]
    vi["mutateDigest"] = True
    vi["attestors"][0]["count"] = 2
    jsonschema.Draft7Validator(crd_schema()).validate(policy)  # the schema alone accepts it
    problems = admission_rule_problems(policy)
    assert any("mutateDigest" in p for p in problems) and any("count 2" in p for p in problems)


def test_enforce_with_mutate_digest_and_bad_input() -> None:
    pem = public_key_pem(generate_private_key())
    policy = cluster_policy(pem, ["r/*"], "enforce", mutate_digest=True)
    assert policy["spec"]["rules"][0]["verifyImages"][0]["mutateDigest"] is True
    assert admission_rule_problems(policy) == []
    with pytest.raises(InputError, match="audit or enforce"):
        cluster_policy(pem, ["r/*"], "strict")


def test_cli_renders_yaml(tmp_path: Path) -> None:
    pub = tmp_path / "bundle.pub"
    pub.write_bytes(public_key_pem(generate_private_key()) + public_key_pem(generate_private_key()))
    r = subprocess.run([sys.executable, "-m", "vouch", "policy", "kyverno", "--key", str(pub), "--mode", "enforce",
                        "--max-age", "30d"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(r.stdout)
    jsonschema.Draft7Validator(crd_schema()).validate(doc)
    assert doc["spec"]["rules"][0]["verifyImages"][0]["attestations"][0]["conditions"][0]["all"][0]["value"] == "720h"
