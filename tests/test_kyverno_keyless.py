"""`vouch policy kyverno --keyless` (and the chart's `imagePolicy.keyless`), proven with the real Kyverno CLI
(v1.19.0) against images signed keyless by `vouch release --keyless` on the private Sigstore stack (Fulcio, CT
log, Rekor v1 on Trillian: vouch.testbed.sigstore). Nothing is mocked; a missing peer fails the test.

The policy is offline: its Rekor URL is a dead port in the admission checks, so the Rekor v1 signed entry
timestamp (SET) in each signature's bundle annotation and the certificate's SCT are all Kyverno checks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.images import small_image
from tests.support.keys import write_keypair
from tests.support.registry import RegistryServer
from tests.test_kyverno_policy import crd_schema
from tests.test_sigstore_stack import require_peer
from vouch.bundle.trustroot import load_trusted_root
from vouch.deploy.kyverno import admission_rule_problems, cluster_policy, keyless_attestor
from vouch.errors import InputError
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.testbed.sigstore import SigstoreStack, make_fulcio_ca, spki_pem

pytestmark = pytest.mark.interop

CHART = Path(__file__).resolve().parents[1] / "deploy" / "helm" / "akko-opa"
DEAD_REKOR = "http://127.0.0.1:9"  # nothing listens: the SET must suffice


def vouch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("COSIGN_", "SIGSTORE_", "AKKO_", "VOUCH_"))}
    full.update(env or {})
    r = subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL, env=full)
    assert r.returncode == 0, r.stderr
    return r


def sign_args(s: SigstoreStack, token: str) -> list[str]:
    return ["--fulcio-url", s.fulcio_url, "--rekor-url", s.rekor_url, "--trusted-root", str(s.trusted_root),
            "--identity-token", token]


def admitted(tmp_path: Path, policy: str, image: str) -> tuple[bool, str]:
    """`kyverno apply` of the policy to a pod running image: (admitted, Kyverno's output)."""
    name = re.sub(r"[^a-z0-9]+", "-", image.split("/")[-1].lower()).strip("-")[:40]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
           "spec": {"containers": [{"name": "app", "image": image}]}}
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(pod))
    (tmp_path / "policy.yaml").write_text(policy)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COSIGN_", "SIGSTORE_", "TUF_"))}
    r = subprocess.run([str(require_peer("kyverno")), "apply", str(tmp_path / "policy.yaml"), "--resource",
                        str(tmp_path / "pod.yaml")], capture_output=True, text=True, timeout=300,
                       env={**env, "HOME": str(tmp_path)}, stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    m = re.search(r"pass: (\d+), fail: (\d+), warn: (\d+), error: (\d+)", out)
    assert m, out[-2000:]
    passed, failed, _, errors = map(int, m.groups())
    assert errors == 0, out[-2000:]
    return passed > 0 and failed == 0, out


def helm_render(tmp_path: Path, *sets: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([str(require_peer("helm")), "template", "akko-opa", str(CHART), *sets], capture_output=True,
                       text=True, timeout=120, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
                       stdin=subprocess.DEVNULL)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def stale_bom(tmp_path: Path) -> Path:
    """A CycloneDX BOM whose metadata.timestamp is 120 days old (the policy's limit is 90 days)."""
    bom = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
           "metadata": {"timestamp": (dt.datetime.now(dt.UTC) - dt.timedelta(days=120))
                        .strftime("%Y-%m-%dT%H:%M:%SZ")}, "components": []}
    path = tmp_path / "old-bom.json"
    path.write_text(json.dumps(bom))
    return path


# ---- rendering (no peers) ---------------------------------------------------------------------------


def test_keyless_rendering_without_peers(tmp_path: Path) -> None:
    """The attestor's fields, from PEMs; the rules it refuses; the key-based rendering untouched."""
    ca = make_fulcio_ca(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    roots = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (ca.intermediate, ca.root))
    rekor, ct = spki_pem(ec.generate_private_key(ec.SECP256R1()).public_key()), spki_pem(
        ec.generate_private_key(ec.SECP256R1()).public_key())
    att = keyless_attestor(subject_regexp="^https://ci\\.example/", issuer="https://issuer.example",
                           fulcio_roots_pem=roots, rekor_public_key_pem=rekor, ct_log_public_key_pem=ct,
                           rekor_url="https://rekor.example")
    for mode in ("audit", "enforce"):
        policy = cluster_policy(None, ["r.example/app/*"], mode, keyless=att)
        jsonschema.Draft7Validator(crd_schema()).validate(policy)
        assert admission_rule_problems(policy) == []
    vi = policy["spec"]["rules"][0]["verifyImages"][0]
    entry = vi["attestors"][0]["entries"][0]["keyless"]
    assert entry["subjectRegExp"] == "^https://ci\\.example/" and "subject" not in entry
    assert entry["issuer"] == "https://issuer.example"
    assert entry["roots"].count("BEGIN CERTIFICATE") == 2
    assert entry["rekor"] == {"url": "https://rekor.example", "pubkey": rekor.decode().strip()}
    assert entry["ctlog"] == {"pubkey": ct.decode().strip()}
    [sbom] = vi["attestations"]
    assert sbom["type"] == "https://cyclonedx.org/bom" and sbom["attestors"] == vi["attestors"]
    assert sbom["conditions"][0]["all"][0]["value"] == "2160h"
    # refused: the bundle layouts, keys and keyless together, missing pieces, two identities
    for layout in ("bundle", "both"):
        with pytest.raises(InputError, match="Kyverno's type SigstoreBundle reads keyless trust only from a TUF"):
            cluster_policy(None, ["r.example/*"], layout=layout, keyless=att)
    _, pub, _ = write_keypair(tmp_path, "k")
    with pytest.raises(InputError, match="give --keyless or --key, not both"):
        cluster_policy(pub.read_bytes(), ["r.example/*"], keyless=att)
    with pytest.raises(InputError, match="--rekor-public-key needs --rekor-url"):
        keyless_attestor(subject="a", issuer="b", fulcio_roots_pem=roots, rekor_public_key_pem=rekor,
                         ct_log_public_key_pem=ct)
    with pytest.raises(InputError, match="needs the CT log's public key"):
        keyless_attestor(subject="a", issuer="b", fulcio_roots_pem=roots, rekor_public_key_pem=rekor,
                         rekor_url="https://r.example")
    with pytest.raises(InputError, match="not both"):
        keyless_attestor(subject="a", subject_regexp="a", issuer="b", fulcio_roots_pem=roots,
                         rekor_public_key_pem=rekor, ct_log_public_key_pem=ct, rekor_url="https://r.example")
    with pytest.raises(InputError, match="holds no PEM CERTIFICATE block"):
        keyless_attestor(subject="a", issuer="b", fulcio_roots_pem=rekor, rekor_public_key_pem=rekor,
                         ct_log_public_key_pem=ct, rekor_url="https://r.example")
    no_sct = keyless_attestor(subject="a", issuer="b", fulcio_roots_pem=roots, rekor_public_key_pem=rekor,
                              rekor_url="https://r.example", ignore_sct=True)
    assert no_sct.entry()["keyless"]["ctlog"] == {"ignoreSCT": True}
    # the key-based policy is what it was: no keyless field anywhere
    keyed = cluster_policy(pub.read_bytes(), ["r.example/*"])
    assert "keyless" not in json.dumps(keyed)
    assert "both by the release key(s)." in keyed["metadata"]["annotations"]["policies.kyverno.io/description"]


# ---- real Kyverno against real keyless signatures ---------------------------------------------------


def test_kyverno_admits_keyless_release(sigstore_stack: SigstoreStack, registry: RegistryServer,
                                        client: RegistryClient, repo_name: str, tmp_path: Path) -> None:
    s = sigstore_stack

    def image(tag: str) -> str:
        digest = push_image(client, Reference(registry.host, repo_name, tag), small_image(f"kl-{tag}"))
        return f"{registry.host}/{repo_name}@{digest}"

    signed, unsigned, stale, other = image("signed"), image("unsigned"), image("stale"), image("other")
    vouch("release", "--keyless", *sign_args(s, s.token()), signed)
    vouch("sign", *sign_args(s, s.token()), stale)
    vouch("attest", "--type", "cyclonedx", "--predicate", str(stale_bom(tmp_path)), *sign_args(s, s.token()), stale)
    other_identity = s.identity(claims={"project_path": "platform/other"})
    assert other_identity != s.identity()
    vouch("release", *sign_args(s, s.token(claims={"project_path": "platform/other"})), other,
          env={"AKKO_SIGN_KEYLESS": "true"})

    images = f"{registry.host}/{repo_name}*"
    base = ["policy", "kyverno", "--keyless", "--images", images, "--mode", "enforce", "--max-age", "90d",
            "--trusted-root", str(s.trusted_root), "--rekor-url", DEAD_REKOR]
    policy = vouch(*base, "--certificate-identity", s.identity(), "--certificate-oidc-issuer", s.oidc_issuer).stdout
    doc = yaml.safe_load(policy)
    jsonschema.Draft7Validator(crd_schema()).validate(doc)
    entry = doc["spec"]["rules"][0]["verifyImages"][0]["attestors"][0]["entries"][0]["keyless"]
    # the PEMs derived from trusted_root.json are the stack's own files
    assert entry["roots"].count("BEGIN CERTIFICATE") == 2
    assert s.fulcio_root_pem.read_text().strip() in entry["roots"]
    assert entry["rekor"]["pubkey"] == s.rekor_public_key_pem.read_text().strip()
    assert entry["ctlog"]["pubkey"] == s.ct_log_public_key_pem.read_text().strip()

    ok, out = admitted(tmp_path, policy, signed)
    assert ok, out[-3000:]
    ok, out = admitted(tmp_path, policy, unsigned)  # (b)
    assert not ok and "no signatures found" in out, out[-3000:]
    ok, out = admitted(tmp_path, policy, stale)  # (c) the SBOM is 120 days old
    assert not ok, out[-3000:]
    # the signature verified; the attestation's freshness condition is what failed
    assert "attestation checks failed" in out and "https://cyclonedx.org/bom" in out, out[-3000:]
    assert "failed to verify image" not in out, out[-3000:]
    ok, out = admitted(tmp_path, policy, other)  # (d) signed keyless, by another identity
    assert not ok, out[-3000:]
    assert f"subject mismatch: expected {s.identity()}, received {other_identity}" in out, out[-3000:]

    # (a) the policy rendered for another subject refuses the properly signed image
    wrong = vouch(*base, "--certificate-identity", other_identity, "--certificate-oidc-issuer", s.oidc_issuer).stdout
    ok, out = admitted(tmp_path, wrong, signed)
    assert not ok and "subject mismatch" in out, out[-3000:]
    ok, out = admitted(tmp_path, wrong, other)  # … and admits the image that subject signed
    assert ok, out[-3000:]
    # the issuer counts as much as the subject
    bad_issuer = vouch(*base, "--certificate-identity", s.identity(), "--certificate-oidc-issuer",
                       "https://issuer.example").stdout
    ok, out = admitted(tmp_path, bad_issuer, signed)
    assert not ok and "issuer mismatch" in out, out[-3000:]
    # regexps, and the PEM files instead of the trusted root
    by_regexp = vouch("policy", "kyverno", "--keyless", "--images", images, "--mode", "enforce",
                      "--certificate-identity-regexp", "^https://gitlab\\.example/platform/",
                      "--certificate-oidc-issuer-regexp", "^http://127\\.0\\.0\\.1:",
                      "--fulcio-root", str(s.fulcio_chain_pem), "--rekor-public-key", str(s.rekor_public_key_pem),
                      "--ct-log-public-key", str(s.ct_log_public_key_pem), "--rekor-url", DEAD_REKOR).stdout
    for img in (signed, other):
        ok, out = admitted(tmp_path, by_regexp, img)
        assert ok, out[-3000:]
    ok, out = admitted(tmp_path, by_regexp, stale)
    assert not ok, out[-3000:]

    # the Helm chart renders the same policy from the same values, and Kyverno decides the same
    sets = ["--set", "imagePolicy.enforce=true", "--set", f"imagePolicy.images[0]={images}",
            "--set", "imagePolicy.keyless.enabled=true",
            "--set", f"imagePolicy.keyless.subject={s.identity()}",
            "--set", f"imagePolicy.keyless.issuer={s.oidc_issuer}",
            "--set-file", f"imagePolicy.keyless.roots={s.fulcio_chain_pem}",
            "--set", f"imagePolicy.keyless.rekor.url={DEAD_REKOR}",
            "--set-file", f"imagePolicy.keyless.rekor.pubkey={s.rekor_public_key_pem}",
            "--set-file", f"imagePolicy.keyless.ctlog.pubkey={s.ct_log_public_key_pem}"]
    chart = helm_render(tmp_path, *sets).stdout
    chart_doc = yaml.safe_load(chart)
    jsonschema.Draft7Validator(crd_schema()).validate(chart_doc)
    assert admission_rule_problems(chart_doc) == []
    assert chart_doc["spec"] == doc["spec"]  # the chart and `vouch policy kyverno --keyless` agree
    ok, out = admitted(tmp_path, chart, signed)
    assert ok, out[-3000:]
    for img in (unsigned, stale, other):
        ok, out = admitted(tmp_path, chart, img)
        assert not ok, (img, out[-3000:])


def test_keyless_policy_from_the_trusted_root_alone(sigstore_stack: SigstoreStack, tmp_path: Path) -> None:
    """One file: without --rekor-url the trusted root's Rekor v1 URL is the policy's; its Ed25519 Rekor v2 key
    is not a Kyverno attestor key and is left out. The chart derives the same from the same file."""
    s = sigstore_stack
    att = keyless_attestor(subject=s.identity(), issuer=s.oidc_issuer, trusted_root=load_trusted_root(s.trusted_root))
    assert att.rekor_url == s.rekor_url
    assert att.rekor_public_key_pem == s.rekor_public_key_pem.read_text().strip()
    r = vouch("policy", "kyverno", "--keyless", "--trusted-root", str(s.trusted_root), "--certificate-identity",
              s.identity(), "--certificate-oidc-issuer", s.oidc_issuer)
    assert yaml.safe_load(r.stdout)["spec"]["rules"][0]["verifyImages"][0]["attestors"][0]["entries"][0][
        "keyless"]["rekor"]["url"] == s.rekor_url
    for extra_cli, extra_chart in (([], []),
                                   (["--rekor-url", DEAD_REKOR],
                                    ["--set", f"imagePolicy.keyless.rekor.url={DEAD_REKOR}"]),
                                   (["--certificate-identity-regexp", "^https://", "--insecure-ignore-sct"],
                                    ["--set", "imagePolicy.keyless.subjectRegExp=^https://",
                                     "--set", "imagePolicy.keyless.ctlog.ignoreSCT=true"])):
        who = ([] if "--certificate-identity-regexp" in extra_cli else ["--certificate-identity", s.identity()])
        cli = vouch("policy", "kyverno", "--keyless", "--trusted-root", str(s.trusted_root), *who,
                    "--certificate-oidc-issuer", s.oidc_issuer, *extra_cli).stdout
        chart = helm_render(tmp_path, "--set", "imagePolicy.keyless.enabled=true",
                            *([] if who == [] else ["--set", f"imagePolicy.keyless.subject={s.identity()}"]),
                            "--set", f"imagePolicy.keyless.issuer={s.oidc_issuer}",
                            "--set-file", f"imagePolicy.keyless.trustedRoot={s.trusted_root}", *extra_chart).stdout
        assert yaml.safe_load(chart)["spec"] == yaml.safe_load(cli)["spec"], extra_cli


def test_chart_keyless_values_are_validated(tmp_path: Path, sigstore_stack: SigstoreStack) -> None:
    s = sigstore_stack
    full = ["--set", "imagePolicy.keyless.enabled=true", "--set", "imagePolicy.keyless.subject=https://ci.example/x",
            "--set", "imagePolicy.keyless.issuer=https://issuer.example",
            "--set-file", f"imagePolicy.keyless.roots={s.fulcio_chain_pem}",
            "--set", "imagePolicy.keyless.rekor.url=https://rekor.example",
            "--set-file", f"imagePolicy.keyless.rekor.pubkey={s.rekor_public_key_pem}",
            "--set-file", f"imagePolicy.keyless.ctlog.pubkey={s.ct_log_public_key_pem}"]
    doc = yaml.safe_load(helm_render(tmp_path, *full).stdout)
    jsonschema.Draft7Validator(crd_schema()).validate(doc)

    def refused(*sets: str) -> str:
        r = helm_render(tmp_path, *sets, check=False)
        assert r.returncode != 0
        return r.stderr

    assert "imagePolicy.keyless.subject or imagePolicy.keyless.subjectRegExp is required" in refused(
        *full, "--set", "imagePolicy.keyless.subject=")
    assert "not both" in refused(*full, "--set", "imagePolicy.keyless.subjectRegExp=^x")
    assert "imagePolicy.keyless.issuer or imagePolicy.keyless.issuerRegExp is required" in refused(
        *full, "--set", "imagePolicy.keyless.issuer=")
    assert "imagePolicy.keyless.roots holds no PEM CERTIFICATE block" in refused(
        *full, "--set-file", f"imagePolicy.keyless.roots={s.rekor_public_key_pem}")
    assert "imagePolicy.keyless.rekor.pubkey holds no PEM PUBLIC KEY block" in refused(
        *full, "--set-file", f"imagePolicy.keyless.rekor.pubkey={s.fulcio_root_pem}")
    assert "imagePolicy.keyless.rekor.url is required" in refused(*full, "--set", "imagePolicy.keyless.rekor.url=")
    empty = tmp_path / "empty"
    empty.write_text("")  # helm applies --set-file after --set: a file value is emptied by an empty file
    assert "imagePolicy.keyless.ctlog.pubkey is required" in refused(
        *full, "--set-file", f"imagePolicy.keyless.ctlog.pubkey={empty}")
    assert "Kyverno's type SigstoreBundle reads keyless trust only from a TUF root" in refused(
        *full, "--set", "imagePolicy.layout=bundle")
    assert "keyless or by public keys" in refused(*full, "--set", "imagePolicy.publicKeys=x")
    no_sct = yaml.safe_load(helm_render(tmp_path, *full, "--set-file", f"imagePolicy.keyless.ctlog.pubkey={empty}",
                                        "--set", "imagePolicy.keyless.ctlog.ignoreSCT=true").stdout)
    entry = no_sct["spec"]["rules"][0]["verifyImages"][0]["attestors"][0]["entries"][0]["keyless"]
    assert entry["ctlog"] == {"ignoreSCT": True}
