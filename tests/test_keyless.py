"""Keyless signing and verification against the private Sigstore stack (Fulcio, CT log, Rekor v1 on
Trillian, Rekor v2, TSA: vouch.testbed.sigstore), both ways with stock cosign 2.6.4 and 3.1.2, in both
layouts. Nothing is mocked; a missing peer fails the test."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.images import small_image
from tests.support.peers import run_peer
from tests.support.registry import RegistryServer
from tests.test_sigstore_stack import require_peer
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.store.bundles import list_bundles
from vouch.store.layout import SIG_SUFFIX, read_tag, tag_for
from vouch.testbed.sigstore import SigstoreStack

pytestmark = pytest.mark.interop


def vouch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full = {k: v for k, v in os.environ.items() if not k.startswith(("COSIGN_", "SIGSTORE_"))}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, env=full)


@pytest.fixture
def image(registry: RegistryServer, client: RegistryClient, repo_name: str) -> str:
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), small_image("keyless-vouch"))
    return f"{registry.host}/{repo_name}@{digest}"


def sig_layers(client: RegistryClient, image: str) -> list[dict[str, str]]:
    ref = Reference.parse(image)
    assert ref.digest
    state = read_tag(client, Reference(ref.registry, ref.repository), tag_for(ref.digest, SIG_SUFFIX))
    return [dict(x.annotations or {}) for x in state.layers]


def legacy_sign_args(s: SigstoreStack, token: str) -> list[str]:
    return ["--fulcio-url", s.fulcio_url, "--rekor-url", s.rekor_url, "--trusted-root", str(s.trusted_root),
            "--identity-token", token]


def identity_args(s: SigstoreStack, profile: str = "gitlab") -> list[str]:
    return ["--trusted-root", str(s.trusted_root), "--certificate-identity", s.identity(profile=profile),
            "--certificate-oidc-issuer", s.issuer_url(profile)]


def test_vouch_signs_keyless_legacy_cosign_verifies(sigstore_stack: SigstoreStack, image: str,
                                                    client: RegistryClient, tmp_path: Path) -> None:
    s = sigstore_stack
    r = vouch("sign", *legacy_sign_args(s, s.token()), image)
    assert r.returncode == 0, r.stderr
    assert f"Signing keyless as {s.identity()}" in r.stderr
    [layer] = sig_layers(client, image)
    assert {"dev.sigstore.cosign/certificate", "dev.sigstore.cosign/chain", "dev.sigstore.cosign/bundle",
            "dev.cosignproject.cosign/signature"} <= set(layer)
    # stock cosign 2, offline (a dead Rekor URL; the SET and SCT are the evidence), and cosign 3
    env = s.cosign_env()
    verify2 = ["verify", "--offline=true", "--allow-http-registry=true", "--rekor-url", "http://127.0.0.1:9",
               "--certificate-oidc-issuer", s.oidc_issuer]
    out = run_peer(require_peer("cosign2"), *verify2, "--certificate-identity", s.identity(), image,
                   home=tmp_path, env=env)
    [payload] = json.loads(out.stdout)
    assert payload["critical"]["image"]["docker-manifest-digest"] == image.split("@")[1]
    bad = run_peer(require_peer("cosign2"), *verify2, "--certificate-identity", "https://gitlab.example/x", image,
                   home=tmp_path, env=env, check=False)
    assert bad.returncode != 0
    run_peer(require_peer("cosign3"), "verify", "--new-bundle-format=false", "--allow-http-registry=true",
             *identity_args(s), image, home=tmp_path)
    # vouch itself, by identity
    ok = vouch("verify", *identity_args(s), image)
    assert ok.returncode == 0, ok.stderr
    [mine] = json.loads(ok.stdout)
    assert mine["critical"]["image"]["docker-manifest-digest"] == image.split("@")[1]
    # the fields cosign adds for a keyless signature
    assert set(mine["optional"]) == set(payload["optional"]) >= {"Bundle", "Issuer", "Subject"}
    assert mine["optional"]["Bundle"] == payload["optional"]["Bundle"]
    assert (mine["optional"]["Subject"], mine["optional"]["Issuer"]) == (s.identity(), s.oidc_issuer)
    # idempotent by identity: a re-run with a new token (so a new certificate) writes nothing, logs nothing
    again = vouch("sign", *legacy_sign_args(s, s.token()), image)
    assert again.returncode == 0 and "Already signed (no change)" in again.stderr, again.stderr
    assert len(sig_layers(client, image)) == 1
    # another identity is another signer: its signature is added, ours kept
    other = s.token(claims={"project_path": "platform/other"})
    assert vouch("sign", *legacy_sign_args(s, other), image).returncode == 0
    assert len(sig_layers(client, image)) == 2
    assert vouch("verify", *identity_args(s), image).returncode == 0


def test_vouch_refuses_wrong_identity_issuer_root(sigstore_stack: SigstoreStack, image: str, tmp_path: Path) -> None:
    s = sigstore_stack
    assert vouch("sign", *legacy_sign_args(s, s.token()), image).returncode == 0
    base = ["verify", "--trusted-root", str(s.trusted_root)]
    r = vouch(*base, "--certificate-identity", "https://gitlab.example/other", "--certificate-oidc-issuer",
              s.oidc_issuer, image)
    assert r.returncode == 1 and "is not the expected 'https://gitlab.example/other'" in r.stderr, r.stderr
    r = vouch(*base, "--certificate-identity", s.identity(), "--certificate-oidc-issuer", "https://issuer.example",
              image)
    assert r.returncode == 1 and "OIDC issuer" in r.stderr, r.stderr
    r = vouch(*base, "--certificate-identity-regexp", "^https://gitlab\\.example/platform/",
              "--certificate-oidc-issuer", s.oidc_issuer, image)
    assert r.returncode == 0, r.stderr
    # the public-good root does not know this Fulcio: refused
    r = vouch("verify", "--certificate-identity", s.identity(), "--certificate-oidc-issuer", s.oidc_issuer, image)
    assert r.returncode == 1 and "trusted root" in r.stderr, r.stderr
    # a key-mode verification of a keyless signature, and flags that need each other
    r = vouch("verify", "--certificate-identity", s.identity(), image)
    assert r.returncode == 2 and "--certificate-oidc-issuer" in r.stderr and "Traceback" not in r.stderr


def test_cosign2_keyless_signature_verified_by_vouch(sigstore_stack: SigstoreStack, image: str,
                                                    tmp_path: Path) -> None:
    s = sigstore_stack
    run_peer(require_peer("cosign2"), "sign", "--yes", "--allow-http-registry=true", "--fulcio-url", s.fulcio_url,
             "--rekor-url", s.rekor_url, "--identity-token", s.token(), image, home=tmp_path, env=s.cosign_env())
    r = vouch("verify", "-o", "json", *identity_args(s), image)
    assert r.returncode == 0, r.stderr
    [result] = json.loads(r.stdout)
    assert result["verified"] and result["signatures"][0]["identity"]["subject"] == s.identity()
    assert result["signatures"][0]["identity"]["issuer"] == s.oidc_issuer


def test_keyless_bundle_layout_rekor_v2_both_ways(sigstore_stack: SigstoreStack, image: str, client: RegistryClient,
                                                  tmp_path: Path) -> None:
    """cosign 3's default: a bundle referrer logged in Rekor v2 with a TSA timestamp."""
    s = sigstore_stack
    token = s.token(profile="github")
    sign = ["sign", "--new-bundle-format", "--signing-config", str(s.signing_config_v2), "--trusted-root",
            str(s.trusted_root), "--identity-token", token, image]
    r = vouch(*sign)
    assert r.returncode == 0, r.stderr
    ref = Reference.parse(image)
    assert ref.digest
    assert len(list_bundles(client, Reference(ref.registry, ref.repository), ref.digest).entries) == 1
    run_peer(require_peer("cosign3"), "verify", "--allow-http-registry=true", *identity_args(s, "github"), image,
             home=tmp_path)
    ok = vouch("verify", *identity_args(s, "github"), image)
    assert ok.returncode == 0, ok.stderr
    again = vouch(*sign[:-3], "--identity-token", s.token(profile="github"), image)
    assert again.returncode == 0 and "Already signed (no change)" in again.stderr, again.stderr
    assert len(list_bundles(client, Reference(ref.registry, ref.repository), ref.digest).entries) == 1
    # and cosign 3's own keyless bundle, read by vouch
    pushed = push_image(client, Reference(ref.registry, ref.repository, "v2"), small_image("c3"))
    other = f"{ref.registry}/{ref.repository}@{pushed}"
    run_peer(require_peer("cosign3"), "sign", "--yes", "--allow-http-registry=true", "--signing-config",
             str(s.signing_config_v2), "--trusted-root", str(s.trusted_root), "--identity-token", token, other,
             home=tmp_path)
    r = vouch("verify", *identity_args(s, "github"), other)
    assert r.returncode == 0, r.stderr
    bad = vouch("verify", *identity_args(s, "gitlab"), other)
    assert bad.returncode == 1


def rekor_tree_size(s: SigstoreStack) -> int:
    import urllib.request

    with urllib.request.urlopen(f"{s.rekor_url}/api/v1/log", timeout=10) as r:
        return int(json.load(r)["treeSize"])


def test_keyless_release_idempotent_by_identity(sigstore_stack: SigstoreStack, registry: RegistryServer,
                                                client: RegistryClient, repo_name: str, tmp_path: Path) -> None:
    """The ADR's switch: AKKO_SIGN_KEYLESS=true. Two images, both layouts, one certificate; cosign 2 verifies
    the signature and the SBOM attestation by identity; the gate passes by identity; a re-run with a fresh
    token (a new certificate) writes nothing and adds no log entry."""
    s = sigstore_stack
    images = []
    for i in range(2):
        ref = Reference(registry.host, f"{repo_name}-{i}", "v1")
        images.append(f"{registry.host}/{repo_name}-{i}@{push_image(client, ref, small_image(f'rel{i}'))}")
    sign = ["release", "--layout", "both", *legacy_sign_args(s, s.token()), *images]
    env = {"AKKO_SIGN_KEYLESS": "true"}
    r = vouch(*sign, env=env)
    assert r.returncode == 0, r.stderr
    assert f"signing keyless as {s.identity()}" in r.stderr
    gate = vouch("verify-release", *identity_args(s), *images)
    assert gate.returncode == 0, gate.stderr + gate.stdout
    wrong = vouch("verify-release", "--trusted-root", str(s.trusted_root), "--certificate-identity",
                  "https://gitlab.example/other", "--certificate-oidc-issuer", s.oidc_issuer, *images)
    assert wrong.returncode == 1
    # cosign 2 reads the bundle layout once a bundle exists (with the trusted root); cosign 3 both layouts
    for cosign, mode in (("cosign2", []), ("cosign3", ["--new-bundle-format=false"]), ("cosign3", [])):
        out = run_peer(require_peer(cosign), "verify-attestation", *mode, "--allow-http-registry=true",
                       "--type", "cyclonedx", *identity_args(s), images[0], home=tmp_path)
        stmt = json.loads(base64.b64decode(json.loads(out.stdout.splitlines()[0])["payload"]))
        assert stmt["predicateType"] == "https://cyclonedx.org/bom", (cosign, mode)
        assert stmt["subject"][0]["digest"]["sha256"] == images[0].split(":")[-1]
    before = rekor_tree_size(s)
    again = vouch("release", "--layout", "both", *legacy_sign_args(s, s.token()), "-o", "json", *images, env=env)
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert [(x["signature"], x["sbom"]) for x in doc["images"]] == [("already-signed", "current")] * 2
    assert rekor_tree_size(s) == before  # nothing logged on a re-run
    assert all(len(sig_layers(client, i)) == 1 for i in images)


def test_keyless_attest_and_verify_attestation(sigstore_stack: SigstoreStack, image: str, client: RegistryClient,
                                               tmp_path: Path) -> None:
    """`vouch attest` keyless in both layouts (one log entry), cosign 2 reads it by identity, vouch's
    verify-attestation by identity; the same statement by the same identity is not attached twice."""
    s = sigstore_stack
    predicate = tmp_path / "pred.json"
    predicate.write_text(json.dumps({"builder": "ci", "n": 1}))
    attest = ["attest", "--predicate", str(predicate), "--type", "custom", "--layout", "both",
              *legacy_sign_args(s, s.token()), image]
    before = rekor_tree_size(s)
    r = vouch(*attest)
    assert r.returncode == 0, r.stderr
    assert rekor_tree_size(s) == before + 1  # one signature serves both layouts
    out = run_peer(require_peer("cosign2"), "verify-attestation", "--allow-http-registry=true", "--type", "custom",
                   *identity_args(s), image, home=tmp_path)
    stmt = json.loads(base64.b64decode(json.loads(out.stdout.splitlines()[0])["payload"]))
    assert stmt["predicate"] == {"builder": "ci", "n": 1}
    ok = vouch("verify-attestation", "--type", "custom", *identity_args(s), image)
    assert ok.returncode == 0, ok.stderr
    assert len(ok.stdout.strip().splitlines()) == 2  # the legacy layer and the bundle
    again = vouch(*attest[:-3], "--identity-token", s.token(), image)
    assert again.returncode == 0 and again.stderr.count("Identical attestation already attached") == 2, again.stderr
    assert rekor_tree_size(s) == before + 1
    bad = vouch("verify-attestation", "--type", "custom", "--trusted-root", str(s.trusted_root),
                "--certificate-identity", "https://gitlab.example/other", "--certificate-oidc-issuer", s.oidc_issuer,
                image)
    assert bad.returncode == 1 and "is not the expected" in bad.stderr, bad.stderr


def test_tampered_keyless_layers_are_refused(sigstore_stack: SigstoreStack, registry: RegistryServer,
                                            client: RegistryClient, repo_name: str) -> None:
    """A keyless layer whose log entry belongs to another signature, or whose certificate was swapped, is
    refused with its reason; a key-mode layer under keyless trust too."""
    from vouch.oci import mediatypes as mt
    from vouch.store.layout import NewLayer, update_tag

    s = sigstore_stack
    imgs = []
    for i in range(2):
        ref = Reference(registry.host, repo_name, f"t{i}")
        imgs.append(f"{registry.host}/{repo_name}@{push_image(client, ref, small_image(f'tamper{i}'))}")
    for img in imgs:
        assert vouch("sign", *legacy_sign_args(s, s.token()), img).returncode == 0
    repo = Reference(registry.host, repo_name)
    a, b = (sig_layers(client, img)[0] for img in imgs)
    digest0 = imgs[0].split("@")[1]
    state = read_tag(client, repo, tag_for(digest0, SIG_SUFFIX))
    layer = state.layers[0]
    payload = client.get_blob(repo, layer.descriptor.digest)  # the signed simple-signing payload

    def replace_with(annotations: dict[str, str]) -> None:
        new = NewLayer(mt.COSIGN_SIMPLESIGNING, payload, annotations)
        client.push_blob(repo, payload)
        update_tag(client, repo, tag_for(digest0, SIG_SUFFIX),
                   lambda st: None if [x.descriptor for x in st.layers] == [new.descriptor()] else [new.descriptor()],
                   replacing=True, superseded=lambda d, st: True)

    replace_with({**a, "dev.sigstore.cosign/bundle": b["dev.sigstore.cosign/bundle"]})
    r = vouch("verify", *identity_args(s), imgs[0])
    assert r.returncode == 1 and "the log entry records" in r.stderr, r.stderr
    replace_with({**a, "dev.sigstore.cosign/certificate": b["dev.sigstore.cosign/certificate"]})
    r = vouch("verify", *identity_args(s), imgs[0])
    assert r.returncode == 1 and "does not verify" in r.stderr, r.stderr
    replace_with({k: v for k, v in a.items() if k != "dev.sigstore.cosign/bundle"})
    r = vouch("verify", *identity_args(s), imgs[0])
    assert r.returncode == 1 and "has no transparency-log entry" in r.stderr, r.stderr
    # without a log entry (and no signed timestamp) nothing vouches for the time the short-lived cert was valid
    r = vouch("verify", "--insecure-ignore-tlog", *identity_args(s), imgs[0])
    assert r.returncode == 1 and "no verified time of signing" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_mixed_release_keyed_and_keyless(sigstore_stack: SigstoreStack, registry: RegistryServer,
                                         client: RegistryClient, repo_name: str, tmp_path: Path) -> None:
    """A release where one image is signed with the key and one keyless (a rotation to keyless half done):
    the gate with --key and the identity passes both; with only one of them, the other image fails."""
    from tests.support.keys import write_keypair

    s = sigstore_stack
    priv, pub, _ = write_keypair(tmp_path, "k")
    images = []
    for i in range(2):
        ref = Reference(registry.host, f"{repo_name}-{i}", "v1")
        images.append(f"{registry.host}/{repo_name}-{i}@{push_image(client, ref, small_image(f'mixed{i}'))}")
    keyed = vouch("release", "--key", str(priv), images[0], env={"COSIGN_PASSWORD": "pw"})
    assert keyed.returncode == 0, keyed.stderr
    keyless = vouch("release", "--keyless", *legacy_sign_args(s, s.token()), images[1])
    assert keyless.returncode == 0, keyless.stderr
    both = vouch("verify-release", "--key", str(pub), *identity_args(s), *images)
    assert both.returncode == 0, both.stdout + both.stderr
    only_key = vouch("verify-release", "--key", str(pub), *images)
    only_identity = vouch("verify-release", *identity_args(s), *images)
    assert only_key.returncode == 1 and only_identity.returncode == 1
    assert vouch("verify", "--key", str(pub), *identity_args(s), *images).returncode == 0


def test_keyless_faults_write_nothing(sigstore_stack: SigstoreStack, image: str, client: RegistryClient) -> None:
    """A Rekor that does not answer, an expired token, a Fulcio that refuses the token's issuer: a one-line
    error with its exit code, and nothing written to the registry (the log entry comes before any write)."""
    from vouch.store.bundles import list_bundles

    s = sigstore_stack
    dead = ["--fulcio-url", s.fulcio_url, "--rekor-url", "http://127.0.0.1:9", "--trusted-root", str(s.trusted_root),
            "--identity-token", s.token()]
    r = vouch("sign", "--layout", "both", *dead, image)
    assert r.returncode == 3 and "signing and logging failed" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 2
    assert sig_layers(client, image) == []
    ref = Reference.parse(image)
    assert ref.digest and list_bundles(client, Reference(ref.registry, ref.repository), ref.digest).entries == []
    expired = vouch("sign", *legacy_sign_args(s, s.token(lifetime=-60)), image)
    assert expired.returncode in (2, 3) and "Traceback" not in expired.stderr, expired.stderr
    foreign = vouch("sign", *legacy_sign_args(s, s.token(claims={"iss": "https://issuer.example"})), image)
    assert foreign.returncode == 3 and "Fulcio did not issue a signing certificate" in foreign.stderr, foreign.stderr
    assert sig_layers(client, image) == []
