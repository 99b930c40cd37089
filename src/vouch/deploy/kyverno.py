"""The Kyverno ClusterPolicy (kyverno.io/v1) that enforces ADR-032 at admission.

Every pod image matching the references must carry a valid cosign signature by one of the keys and
a CycloneDX attestation, by one of the keys, whose BOM is younger than the maximum age. Offline key
signatures: `rekor.ignoreTlog` and `ctlog.ignoreSCT`; `count: 1` so that during a rotation overlap
either key suffices (without it every listed key must verify).

Layouts (where the signatures live; see docs/operator.md, "Which layout each consumer reads"):
- legacy: `verifyImages` of Kyverno's default `type: Cosign`, which reads cosign's `.sig`/`.att` tags;
- bundle: `type: SigstoreBundle`, which reads sigstore bundles as OCI 1.1 referrers (or in the
  `sha256-<hex>` fallback index). Kyverno 1.19 verifies them with static keys (kyverno#16267, fixed by
  #16800): with `ignoreTlog` and `ignoreSCT` the key is the whole trusted material, no TUF root is read.
  Its signature check takes any verified bundle (an SBOM attestation too), so the rule also requires the
  signature's own statement (predicate type https://sigstore.dev/cosign/sign/v1) as an attestation;
- both: one rule per layout. Kyverno ANDs them (every rule's result for an image must pass), so the image
  must carry both layouts. They are separate rules, not two entries of one rule, because Kyverno's
  verification cache is keyed by policy, rule and image only: a second entry in the same rule would be
  answered "verified from cache" by the first one's pass.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from vouch.errors import InputError
from vouch.keys.cosign import load_public_keys, public_key_pem
from vouch.signing.attestation import PREDICATE_TYPES
from vouch.trust import PublicKey

LAYOUTS = ("legacy", "bundle", "both")
RULE_NAMES = {"legacy": "verify-signature-and-sbom", "bundle": "verify-bundle-signature-and-sbom"}
# cosign signs with the hash that goes with the curve (P-384: SHA-384, P-521: SHA-512) in both layouts;
# Kyverno verifies with SHA-256 unless the key entry says otherwise (seen with cosign 2.6.4 and 3.1.2).
_CURVE_HASH = {"secp384r1": "sha384", "secp521r1": "sha512"}
SIGN_PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1"  # the statement a cosign 3 image signature signs


def _hours(age: dt.timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{int(hours)}h" if hours == int(hours) else f"{int(age.total_seconds())}s"


def _key_entry(key: PublicKey) -> dict[str, Any]:
    entry: dict[str, Any] = {"publicKeys": public_key_pem(key).decode().strip(), "rekor": {"ignoreTlog": True},
                             "ctlog": {"ignoreSCT": True}}
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _CURVE_HASH:
        entry["signatureAlgorithm"] = _CURVE_HASH[key.curve.name]
    return {"keys": entry}


def _check_keys(keys: list[PublicKey]) -> None:
    if any(isinstance(k, ed25519.Ed25519PublicKey) for k in keys):
        # cosign signs with Ed25519ph from a key file; Kyverno 1.19 loads the key as pure Ed25519.
        raise InputError("an Ed25519 key cannot be a Kyverno attestor: cosign signs with Ed25519ph and Kyverno 1.19 "
                         "verifies pure Ed25519, in either layout, so the policy could never admit; sign with an "
                         "ECDSA P-256 key (vouch generate-key-pair) and give its public key")


def _verify_images(layout: str, images: list[str], attestor: dict[str, Any], enforce: bool, mutate_digest: bool,
                   max_age: dt.timedelta) -> dict[str, Any]:
    vi: dict[str, Any] = {"imageReferences": list(images)}
    if layout == "bundle":
        vi["type"] = "SigstoreBundle"  # legacy stays without `type`: Kyverno's default, Cosign
    attestations: list[dict[str, Any]] = [{
        "type": PREDICATE_TYPES["cyclonedx"],
        "attestors": [attestor],
        "conditions": [{"all": [{
            "key": "{{ time_since('', '{{ metadata.timestamp }}', '') }}",
            "operator": "LessThanOrEquals",
            "value": _hours(max_age),
        }]}],
    }]
    if layout == "bundle":
        # Kyverno 1.19's bundle signature check accepts any verified bundle of the image, an SBOM attestation
        # too (it filters by predicate type only for attestations): require the signature's own statement.
        attestations.append({"type": SIGN_PREDICATE_TYPE, "attestors": [attestor]})
    vi.update({
        "failureAction": "Enforce" if enforce else "Audit",
        "mutateDigest": enforce and mutate_digest,  # Kyverno refuses mutateDigest with Audit
        "verifyDigest": enforce and mutate_digest,
        "required": True,
        "useCache": True,
        "attestors": [attestor],
        "attestations": attestations,
    })
    return {
        "name": RULE_NAMES[layout],
        "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
        "verifyImages": [vi],
    }


def cluster_policy(public_keys_pem: bytes, images: list[str], mode: str = "audit",
                   max_age: dt.timedelta = dt.timedelta(days=90),
                   name: str = "akko-require-signed-images", mutate_digest: bool = False,
                   layout: str = "legacy") -> dict[str, Any]:
    """mutate_digest (enforce only): let Kyverno pin pod images to digests. Off by default: it makes
    GitOps tools (Argo CD) report drift; without it Kyverno still resolves each tag to verify it.
    layout: legacy (`.sig`/`.att` tags, Kyverno `type: Cosign`), bundle (sigstore bundle referrers, Kyverno
    `type: SigstoreBundle`) or both (one rule each; the image must carry both)."""
    mode_l = mode.lower()
    if mode_l not in ("audit", "enforce"):
        raise InputError(f"invalid mode {mode!r}: use audit or enforce")
    layout_l = layout.lower()
    if layout_l not in LAYOUTS:
        raise InputError(f"invalid layout {layout!r}: use legacy (.sig/.att tags), bundle (sigstore bundle "
                         "referrers) or both")
    if not images:
        raise InputError("give at least one image reference pattern (--images)")
    keys = load_public_keys(public_keys_pem, "the policy's public key file")
    _check_keys(keys)
    # One entry per key, any one of which suffices (count: 1). Several PEMs in a single entry work for
    # signatures, but Kyverno 1.19's attestation check then fails when the first key is not the signer.
    attestor = {"count": 1, "entries": [_key_entry(k) for k in keys]}
    enforce = mode_l == "enforce"
    kinds = ["legacy", "bundle"] if layout_l == "both" else [layout_l]
    where = {"legacy": "in cosign's tag layout (.sig/.att)",
             "bundle": "as sigstore bundles (OCI 1.1 referrers)",
             "both": "in both cosign's tag layout and as sigstore bundles"}[layout_l]
    return {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {
            "name": name,
            "annotations": {
                "policies.kyverno.io/title": "Require signed images with a fresh SBOM (ADR-032)",
                "policies.kyverno.io/description": (
                    f"Pods may only run images matching {', '.join(images)} that carry a cosign signature and "
                    f"a CycloneDX attestation younger than {_hours(max_age)}, both by the release key(s)"
                    + ("." if layout_l == "legacy" else f", {where}.")),
                "vouch.dev/generated-by": "vouch policy kyverno",
            },
        },
        "spec": {
            "background": False,
            "webhookTimeoutSeconds": 30,
            "rules": [_verify_images(k, images, attestor, enforce, mutate_digest, max_age) for k in kinds],
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
