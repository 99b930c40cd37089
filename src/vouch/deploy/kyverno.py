"""The Kyverno ClusterPolicy (kyverno.io/v1) that enforces ADR-032 at admission.

Every pod image matching the references must carry a valid cosign signature by one of the keys and
a CycloneDX attestation, by one of the keys, whose BOM is younger than the maximum age. Offline key
signatures: `rekor.ignoreTlog` and `ctlog.ignoreSCT`; `count: 1` so that during a rotation overlap
either key suffices (without it every listed key must verify).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml

from vouch.errors import InputError
from vouch.keys.cosign import load_public_keys, public_key_pem
from vouch.signing.attestation import PREDICATE_TYPES


def _hours(age: dt.timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{int(hours)}h" if hours == int(hours) else f"{int(age.total_seconds())}s"


def cluster_policy(public_keys_pem: bytes, images: list[str], mode: str = "audit",
                   max_age: dt.timedelta = dt.timedelta(days=90),
                   name: str = "akko-require-signed-images", mutate_digest: bool = False) -> dict[str, Any]:
    """mutate_digest (enforce only): let Kyverno pin pod images to digests. Off by default: it makes
    GitOps tools (Argo CD) report drift; without it Kyverno still resolves each tag to verify it."""
    mode_l = mode.lower()
    if mode_l not in ("audit", "enforce"):
        raise InputError(f"invalid mode {mode!r}: use audit or enforce")
    if not images:
        raise InputError("give at least one image reference pattern (--images)")
    keys = load_public_keys(public_keys_pem, "the policy's public key file")
    # One entry per key, any one of which suffices (count: 1). Several PEMs in a single entry work for
    # signatures, but Kyverno 1.19's attestation check then fails when the first key is not the signer.
    attestor = {
        "count": 1,
        "entries": [{"keys": {"publicKeys": public_key_pem(k).decode().strip(), "rekor": {"ignoreTlog": True},
                              "ctlog": {"ignoreSCT": True}}} for k in keys],
    }
    enforce = mode_l == "enforce"
    return {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {
            "name": name,
            "annotations": {
                "policies.kyverno.io/title": "Require signed images with a fresh SBOM (ADR-032)",
                "policies.kyverno.io/description": (
                    f"Pods may only run images matching {', '.join(images)} that carry a cosign signature and "
                    f"a CycloneDX attestation younger than {_hours(max_age)}, both by the release key(s)."),
                "vouch.dev/generated-by": "vouch policy kyverno",
            },
        },
        "spec": {
            "background": False,
            "webhookTimeoutSeconds": 30,
            "rules": [{
                "name": "verify-signature-and-sbom",
                "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                "verifyImages": [{
                    "imageReferences": list(images),
                    "failureAction": "Enforce" if enforce else "Audit",
                    "mutateDigest": enforce and mutate_digest,  # Kyverno refuses mutateDigest with Audit
                    "verifyDigest": enforce and mutate_digest,
                    "required": True,
                    "useCache": True,
                    "attestors": [attestor],
                    "attestations": [{
                        "type": PREDICATE_TYPES["cyclonedx"],
                        "attestors": [attestor],
                        "conditions": [{"all": [{
                            "key": "{{ time_since('', '{{ metadata.timestamp }}', '') }}",
                            "operator": "LessThanOrEquals",
                            "value": _hours(max_age),
                        }]}],
                    }],
                }],
            }],
        },
    }


def admission_rule_problems(policy: dict[str, Any]) -> list[str]:
    """Rules Kyverno's webhook enforces that the CRD schema does not carry."""
    problems = []
    for rule in policy.get("spec", {}).get("rules", []):
        for vi in rule.get("verifyImages", []):
            if vi.get("mutateDigest") and vi.get("failureAction", "Audit") == "Audit":
                problems.append(f"rule {rule.get('name')}: mutateDigest must be false with failureAction Audit")
            for group in [vi.get("attestors", [])] + [a.get("attestors", []) for a in vi.get("attestations", [])]:
                for att in group:
                    if att.get("count") is not None and att["count"] > len(att.get("entries", [])):
                        problems.append(f"rule {rule.get('name')}: attestor count {att['count']} is larger than "
                                        f"its {len(att.get('entries', []))} entries")
    return problems


def to_yaml(policy: dict[str, Any]) -> str:
    class _Literal(str):
        pass

    def literal(dumper: yaml.SafeDumper, data: _Literal) -> yaml.ScalarNode:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")

    yaml.add_representer(_Literal, literal, Dumper=yaml.SafeDumper)

    def mark(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: mark(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [mark(x) for x in obj]
        if isinstance(obj, str) and "\n" in obj:
            return _Literal(obj)
        return obj

    return yaml.safe_dump(mark(policy), sort_keys=False, width=120)
