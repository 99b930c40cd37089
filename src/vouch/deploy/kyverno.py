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

Keyless (`keyless_attestor`, legacy layout only): the attestor is Kyverno's `type: Cosign` keyless entry,
`{subject|subjectRegExp, issuer|issuerRegExp, roots: <Fulcio CA PEMs>, rekor: {url, pubkey}, ctlog: {pubkey}}`.
It verifies fully offline: the Rekor v1 signed entry timestamp (SET) in cosign's bundle annotation proves the
log entry and the signing time, so Kyverno never calls the Rekor URL for signatures that carry one. The PEMs
come from a trusted_root.json (its Fulcio CA chains, its Rekor v1 ECDSA key, its CT log key) or from files.
Kyverno's `type: SigstoreBundle` ignores `roots` and reads keyless trust from a TUF root only, so a keyless
policy cannot be rendered for the bundle layout (see docs/operator.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from vouch.bundle.trustroot import LogKey, TrustedRoot
from vouch.errors import InputError
from vouch.keyless.identity import identity_policy
from vouch.keys.cosign import load_public_keys, public_key_pem
from vouch.signing.attestation import PREDICATE_TYPES
from vouch.trust import PublicKey, load_public_key_der

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


@dataclass(frozen=True)
class KeylessAttestor:
    """Who may have signed (one of subject / subject_regexp, one of issuer / issuer_regexp) and the trust
    material Kyverno checks the certificate and its log evidence against, as PEM text."""

    subject: str | None
    subject_regexp: str | None
    issuer: str | None
    issuer_regexp: str | None
    roots_pem: str  # the Fulcio CA certificates (roots and intermediates)
    rekor_url: str
    rekor_public_key_pem: str  # the Rekor v1 log key: checks the SET
    ct_log_public_key_pem: str | None  # None: the certificates carry no SCT (ctlog.ignoreSCT)

    def entry(self) -> dict[str, Any]:
        keyless: dict[str, Any] = {}
        keyless.update({"subject": self.subject} if self.subject else {"subjectRegExp": self.subject_regexp})
        keyless.update({"issuer": self.issuer} if self.issuer else {"issuerRegExp": self.issuer_regexp})
        keyless["roots"] = self.roots_pem
        keyless["rekor"] = {"url": self.rekor_url, "pubkey": self.rekor_public_key_pem}
        keyless["ctlog"] = ({"pubkey": self.ct_log_public_key_pem} if self.ct_log_public_key_pem
                            else {"ignoreSCT": True})
        return {"keyless": keyless}

    def describe(self) -> str:
        who = self.subject or f"identities matching {self.subject_regexp}"
        by = self.issuer or f"matching {self.issuer_regexp}"
        return f"signed keyless by {who} (issuer {by})"


def _certs_pem(data: bytes, what: str) -> str:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise InputError(f"{what} holds no PEM CERTIFICATE block (give the Fulcio root and chain PEM)") from exc
    return "\n".join(c.public_bytes(serialization.Encoding.PEM).decode().strip() for c in certs)


def _der_cert_pem(der: bytes, what: str) -> str:
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise InputError(f"{what}: a certificate of its Fulcio CA chain is not DER X.509") from exc
    return cert.public_bytes(serialization.Encoding.PEM).decode().strip()


def _log_key_pem(data: bytes, what: str) -> str:
    keys = load_public_keys(data, what)
    if len(keys) != 1 or not isinstance(keys[0], ec.EllipticCurvePublicKey):
        raise InputError(f"{what} must be one ECDSA public key PEM (Kyverno takes one key per log)")
    return public_key_pem(keys[0]).decode().strip()


def _der_key_pem(log: LogKey, what: str) -> str:
    return public_key_pem(load_public_key_der(log.public_key_der, what)).decode().strip()


def _current(logs: list[LogKey], now: dt.datetime) -> list[LogKey]:
    return [t for t in logs if t.valid_for.end is None or t.valid_for.contains(now)]


def _pick_log(logs: list[LogKey], what: str, flag: str, source: str, url: str | None) -> LogKey:
    if url:
        logs = [t for t in logs if t.base_url.rstrip("/") == url.rstrip("/")] or logs
    if len(logs) != 1:
        found = ", ".join(t.base_url or "(no URL)" for t in logs) or "none"
        raise InputError(f"the trusted root {source} has no single current {what} (found: {found}); Kyverno takes "
                         f"one key: give it with {flag}")
    return logs[0]


def keyless_attestor(*, subject: str | None = None, subject_regexp: str | None = None, issuer: str | None = None,
                     issuer_regexp: str | None = None, trusted_root: TrustedRoot | None = None,
                     fulcio_roots_pem: bytes | None = None, rekor_public_key_pem: bytes | None = None,
                     ct_log_public_key_pem: bytes | None = None, rekor_url: str | None = None,
                     ignore_sct: bool = False, now: dt.datetime | None = None) -> KeylessAttestor:
    """The keyless attestor, its PEMs from a trusted root or given one by one (then --rekor-url is needed).
    Explicit PEMs override what the trusted root says; the root's Rekor v1 and CT log keys are the ones valid
    now (Kyverno takes one key per log)."""
    identity_policy(subject, subject_regexp, issuer, issuer_regexp)  # cosign's rules: one of each, regexps compile
    when = now or dt.datetime.now(dt.UTC)
    roots = _certs_pem(fulcio_roots_pem, "--fulcio-root") if fulcio_roots_pem is not None else None
    rekor = _log_key_pem(rekor_public_key_pem, "--rekor-public-key") if rekor_public_key_pem is not None else None
    ctlog = _log_key_pem(ct_log_public_key_pem, "--ct-log-public-key") if ct_log_public_key_pem is not None else None
    url = rekor_url
    if trusted_root is not None:
        src = trusted_root.source
        if roots is None:
            pems = [_der_cert_pem(der, f"the trusted root {src}") for ca in trusted_root.certificate_authorities
                    for der in ca.certificates]
            if not pems:
                raise InputError(f"the trusted root {src} has no Fulcio certificate authority; give --fulcio-root")
            roots = "\n".join(dict.fromkeys(pems))
        if rekor is None:
            v1 = [t for t in _current(list(trusted_root.tlogs), when) if t.key_details.startswith("PKIX_ECDSA")]
            log = _pick_log(v1, "Rekor v1 (ECDSA) log", "--rekor-public-key", src, rekor_url)
            rekor = _der_key_pem(log, f"the trusted root {src}'s Rekor key")
            url = url or log.base_url
        if ctlog is None and not ignore_sct:
            ct = _pick_log(_current(list(trusted_root.ctlogs), when), "CT log", "--ct-log-public-key", src, None)
            ctlog = _der_key_pem(ct, f"the trusted root {src}'s CT log key")
    if roots is None or rekor is None:
        raise InputError("a keyless policy needs the Sigstore trust material: --trusted-root trusted_root.json, or "
                         "--fulcio-root, --rekor-public-key and --ct-log-public-key (PEM files)")
    if not url:
        raise InputError("--rekor-public-key needs --rekor-url (the Rekor v1 the key belongs to; Kyverno would "
                         "default to the public rekor.sigstore.dev)")
    if ctlog is None and not ignore_sct:
        raise InputError("a keyless policy needs the CT log's public key (--ct-log-public-key, or a trusted root "
                         "with a CT log); pass --insecure-ignore-sct only if your Fulcio issues no SCTs")
    if ignore_sct:
        ctlog = None
    return KeylessAttestor(subject or None, subject_regexp or None, issuer or None, issuer_regexp or None,
                           roots, url, rekor, ctlog)


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


def cluster_policy(public_keys_pem: bytes | None, images: list[str], mode: str = "audit",
                   max_age: dt.timedelta = dt.timedelta(days=90),
                   name: str = "akko-require-signed-images", mutate_digest: bool = False,
                   layout: str = "legacy", keyless: KeylessAttestor | None = None) -> dict[str, Any]:
    """mutate_digest (enforce only): let Kyverno pin pod images to digests. Off by default: it makes
    GitOps tools (Argo CD) report drift; without it Kyverno still resolves each tag to verify it.
    layout: legacy (`.sig`/`.att` tags, Kyverno `type: Cosign`), bundle (sigstore bundle referrers, Kyverno
    `type: SigstoreBundle`) or both (one rule each; the image must carry both).
    keyless: instead of public keys, the keyless attestor (`keyless_attestor`); legacy layout only."""
    mode_l = mode.lower()
    if mode_l not in ("audit", "enforce"):
        raise InputError(f"invalid mode {mode!r}: use audit or enforce")
    layout_l = layout.lower()
    if layout_l not in LAYOUTS:
        raise InputError(f"invalid layout {layout!r}: use legacy (.sig/.att tags), bundle (sigstore bundle "
                         "referrers) or both")
    if not images:
        raise InputError("give at least one image reference pattern (--images)")
    if keyless is not None:
        if public_keys_pem:
            raise InputError("a policy is keyless or by public keys: give --keyless or --key, not both")
        if layout_l != "legacy":
            raise InputError(f"a keyless policy cannot use --layout {layout_l}: Kyverno's type SigstoreBundle reads "
                             "keyless trust only from a TUF root, never from the policy; sign with --layout legacy "
                             "(or both) and render --layout legacy")
        attestor: dict[str, Any] = {"count": 1, "entries": [keyless.entry()]}
        signers = keyless.describe()
    else:
        if not public_keys_pem:
            raise InputError("give the release public key (--key cosign.pub), or --keyless with the signer's identity")
        keys = load_public_keys(public_keys_pem, "the policy's public key file")
        _check_keys(keys)
        # One entry per key, any one of which suffices (count: 1). Several PEMs in a single entry work for
        # signatures, but Kyverno 1.19's attestation check then fails when the first key is not the signer.
        attestor = {"count": 1, "entries": [_key_entry(k) for k in keys]}
        signers = "by the release key(s)"
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
                    f"a CycloneDX attestation younger than {_hours(max_age)}, both {signers}"
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
