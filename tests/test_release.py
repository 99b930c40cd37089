"""The release pipeline against the real registry: idempotence, switches, faults, kills, races, the gate."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.conftest import SHARED
from tests.support.faultproxy import FaultProxy, Rule
from tests.support.keys import write_keypair
from tests.support.registry import RegistryServer
from vouch.keys.cosign import load_public_keys
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.signing.attestation import PREDICATE_TYPES
from vouch.store.attest import read_attestations, statement_info
from vouch.store.layout import SIG_SUFFIX, read_tag, tag_for
from vouch.testbed.samples import sample_release
from vouch.verify.attestations import verify_attestations
from vouch.verify.bomfacts import parse_age
from vouch.verify.signatures import verify_image

ROOT = Path(__file__).resolve().parents[1]
CDX = PREDICATE_TYPES["cyclonedx"]


def vouch(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("AKKO_", "VOUCH_SIGN"))}
    full.update({"COSIGN_PASSWORD": "pw", **(env or {})})
    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, env=full,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def push_release(client: RegistryClient, host: str, prefix: str, names: list[str] | None = None) -> list[str]:
    release = sample_release()
    refs = []
    for name, img in release.items():
        if names is not None and name not in names:
            continue
        ref = Reference(host, f"{prefix}/{name}", "2026.04")
        push_image(client, ref, img)
        refs.append(str(ref))
    return refs


def manifest_file(tmp_path: Path, refs: list[str]) -> Path:
    p = tmp_path / "release.yaml"
    p.write_text(yaml.safe_dump({"release": "2026.04", "images": refs}))
    return p


def state_of(client: RegistryClient, ref_text: str, pub: Path) -> tuple[int, int, int, int]:
    """(signature layers, valid by our key, cyclonedx statements, valid+fresh ones)."""
    keys = load_public_keys(pub.read_bytes())
    ref = Reference.parse(ref_text)
    digest = client.resolve(ref).digest
    repo = Reference(ref.registry, ref.repository)
    sig_layers = len(read_tag(client, repo, tag_for(digest, SIG_SUFFIX)).layers)
    sig_ok = len(verify_image(client, ref.with_digest(digest), keys).verified)
    _, layers = read_attestations(client, ref, digest)
    cdx = sum(1 for x in layers if statement_info(client, repo, x)[0] == CDX)
    att_ok = len(verify_attestations(client, ref.with_digest(digest), keys, CDX, parse_age("90d")).verified)
    return sig_layers, sig_ok, cdx, att_ok


# ---- pipelines ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["10-image-sign.yml", "06-trivy-verify-gate.yml"])
def test_woodpecker_pipelines_validate(name: str) -> None:
    schema = json.loads((SHARED / "schemas" / "woodpecker-v3.17.0-schema.json").read_text())
    doc = yaml.safe_load((ROOT / "deploy" / "woodpecker" / name).read_text())
    jsonschema.Draft7Validator(schema).validate(doc)
    for step in doc["steps"]:
        assert not step.get("privileged"), "no privileged step"
        for var, value in step.get("environment", {}).items():
            if any(s in var for s in ("PASSWORD", "KEY", "USERNAME")):
                assert isinstance(value, dict) and "from_secret" in value, f"{var} must come from a secret"
    commands = " ".join(c for s in doc["steps"] for c in s["commands"])
    if name.startswith("10"):
        assert "vouch release" in commands and "--manifest" in commands
        assert doc["steps"][0]["environment"]["AKKO_SIGN_IMAGES"] == {"from_secret": "akko_sign_images"}
    else:
        assert "vouch verify-release" in commands and "--max-age 90d" in commands


def test_example_manifest_lists_the_adr_images() -> None:
    from vouch.release.plan import load_manifest

    rel = load_manifest(str(ROOT / "deploy" / "release.example.yaml"))
    assert len(rel.images) == 14 and rel.name == "2026.04"
    assert all(i.ref.registry == "harbor.akko-ai.com" for i in rel.images)


# ---- end to end -----------------------------------------------------------------------------------


def test_release_then_rerun_writes_nothing(registry: RegistryServer, proxy: FaultProxy, client: RegistryClient,
                                           repo_name: str, tmp_path: Path) -> None:
    priv, pub, _ = write_keypair(tmp_path, "k")
    refs = push_release(client, registry.host, repo_name, ["cockpit", "auth", "scheduler", "model-server"])
    via_proxy = [r.replace(registry.host, proxy.host) for r in refs]
    man = manifest_file(tmp_path, via_proxy)
    r = vouch("release", "--key", str(priv), "--manifest", str(man), "--report", str(tmp_path / "report.json"))
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert {i["signature"] for i in report["images"]} == {"signed"}
    assert {i["sbom"] for i in report["images"]} == {"attested"}
    for ref in refs:
        assert state_of(client, ref, pub) == (1, 1, 1, 1)
    proxy.clear()
    r = vouch("release", "--key", str(priv), "--manifest", str(man), "--report", str(tmp_path / "report2.json"))
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "report2.json").read_text())
    assert {i["signature"] for i in report["images"]} == {"already-signed"}
    assert {i["sbom"] for i in report["images"]} == {"current"}
    writes = [e for e in proxy.log if e[0] in ("PUT", "POST", "PATCH", "DELETE")]
    assert writes == []
    # resolve, then .sig, .att and one envelope per digest; an index also reads its manifest, and each of its
    # platform images is checked like an image (+ the scheme probe)
    indexes = {"cockpit": 2}  # the sample indexes among these images, with their platform count
    budget = sum(2 + 3 * (indexes[n] + 1) if n in indexes else 4 for n in ["cockpit", "auth", "scheduler",
                                                                          "model-server"])
    assert len(proxy.log) <= budget + 1
    r = vouch("verify-release", "--key", str(pub), "--manifest", str(man))
    assert r.returncode == 0, r.stderr


def test_switches(registry: RegistryServer, proxy: FaultProxy, client: RegistryClient, repo_name: str,
                  tmp_path: Path) -> None:
    priv, _, _ = write_keypair(tmp_path, "k")
    [ref] = push_release(client, registry.host, repo_name, ["auth"])
    image = ref.replace(registry.host, proxy.host)
    for env, args in [({"AKKO_SIGN_IMAGES": "false"}, []), ({"VOUCH_SIGN_IMAGES": "false"}, []),
                      ({}, ["--no-sign-images"])]:
        proxy.clear()
        r = vouch("release", "--key", str(priv), *args, image, env=env)
        assert r.returncode == 0 and "signing disabled" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        assert proxy.log == []  # not even a read
    r = vouch("release", "--key", str(priv), image, env={"AKKO_SIGN_KEYLESS": "true"})
    assert r.returncode == 2 and "keyless signing" in r.stderr and "Traceback" not in r.stderr
    r = vouch("release", "--key", str(priv), image, env={"AKKO_SIGN_IMAGES": "maybe"})
    assert r.returncode == 2 and "neither true nor false" in r.stderr


def test_partial_failure_and_gate(registry: RegistryServer, client: RegistryClient, repo_name: str,
                                  tmp_path: Path) -> None:
    priv, pub, _ = write_keypair(tmp_path, "k")
    refs = push_release(client, registry.host, repo_name, ["auth", "docs"])
    missing = f"{registry.host}/{repo_name}/missing:2026.04"
    r = vouch("release", "--key", str(priv), refs[0], missing, refs[1])
    assert r.returncode == 3
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "missing" in errors[0] and "not found" in errors[0]
    for ref in refs:
        assert state_of(client, ref, pub) == (1, 1, 1, 1)  # the others were done
    # the gate: an unsigned image fails it, with the reason in the table
    unsigned = push_release(client, registry.host, repo_name + "-u", ["scheduler"])[0]
    r = vouch("verify-release", "--key", str(pub), *refs, unsigned)
    assert r.returncode == 1 and "2/3 digests pass" in r.stderr and "no signatures found" in r.stderr


def test_registry_errors_mid_release_are_retried(registry: RegistryServer, proxy: FaultProxy,
                                                 client: RegistryClient, repo_name: str, tmp_path: Path) -> None:
    priv, pub, _ = write_keypair(tmp_path, "k")
    refs = push_release(client, registry.host, repo_name, ["cockpit", "ingest", "migrations"])
    proxy.add(Rule("status", "PUT", r"/manifests/sha256-.*\.sig", times=2, status=503))
    proxy.add(Rule("status", "PUT", r"/manifests/sha256-.*\.att", times=2, status=500))
    proxy.add(Rule("status", "GET", r"/blobs/sha256:", times=3, status=502))
    proxy.add(Rule("status", "HEAD", r"/manifests/2026.04", times=1, status=429, retry_after="1"))
    proxy.add(Rule("cut", "GET", r"/blobs/sha256:", times=2, after=2000))
    r = vouch("release", "--key", str(priv), *[x.replace(registry.host, proxy.host) for x in refs])
    assert r.returncode == 0, r.stderr
    assert sum(rule.fired for rule in proxy.rules) >= 8
    for ref in refs:
        assert state_of(client, ref, pub) == (1, 1, 1, 1)


def test_sigkill_at_random_moments_converges(registry: RegistryServer, client: RegistryClient, repo_name: str,
                                             tmp_path: Path) -> None:
    """Kill `vouch release` with SIGKILL at random moments, many times, while a verifier polls: it never sees
    a half-written tag (every layer present verifies), a signature once seen never disappears, and a final
    run converges to exactly one valid signature and one current SBOM attestation per image."""
    priv, pub, _ = write_keypair(tmp_path, "k")
    keys = load_public_keys(pub.read_bytes())
    refs = push_release(client, registry.host, repo_name, ["cockpit", "auth", "scheduler"])
    problems: list[str] = []
    seen_signed: set[str] = set()
    stop = threading.Event()

    def poll() -> None:
        with RegistryClient() as c:
            while not stop.is_set():
                for ref_text in refs:
                    ref = Reference.parse(ref_text)
                    sig = verify_image(c, ref, keys)
                    if any(not ch.ok for ch in sig.checks):
                        problems.append(f"{ref_text}: an invalid signature layer was visible")
                    if sig.ok:
                        seen_signed.add(ref_text)
                    elif ref_text in seen_signed:
                        problems.append(f"{ref_text}: a signature disappeared")
                    att = verify_attestations(c, ref, keys, CDX)
                    if any(not ch.ok for ch in att.checks):
                        problems.append(f"{ref_text}: an invalid attestation was visible")

    poller = threading.Thread(target=poll)
    poller.start()
    rng = random.Random(4242)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AKKO_")}, "COSIGN_PASSWORD": "pw"}
    try:
        for _ in range(8):
            proc = subprocess.Popen([sys.executable, "-m", "vouch", "release", "--key", str(priv), *refs], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.3, 2.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        r = vouch("release", "--key", str(priv), *refs)
        assert r.returncode == 0, r.stderr
    finally:
        stop.set()
        poller.join()
    assert problems == []
    for ref in refs:
        assert state_of(client, ref, pub) == (1, 1, 1, 1)


def test_two_releases_at_once_converge(registry: RegistryServer, client: RegistryClient, repo_name: str,
                                       tmp_path: Path) -> None:
    priv, pub, _ = write_keypair(tmp_path, "k")
    refs = push_release(client, registry.host, repo_name, ["cockpit", "worker", "ui", "search"])
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AKKO_")}, "COSIGN_PASSWORD": "pw"}
    procs = [subprocess.Popen([sys.executable, "-m", "vouch", "release", "--key", str(priv), *refs], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
             for _ in range(2)]
    for p in procs:
        _, errtext = p.communicate(timeout=300)
        assert p.returncode == 0, errtext
    for ref in refs:
        assert state_of(client, ref, pub) == (1, 1, 1, 1)
