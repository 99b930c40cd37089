"""Interop with the real cosign binaries (2.x tag layout, 3.x legacy layout), both directions,
against the real registry. Nothing here is mocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.images import small_image, two_platform_index
from tests.support.peers import peer, run_peer
from tests.support.registry import RegistryServer
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.store.layout import SIG_SUFFIX, read_tag, tag_for

pytestmark = pytest.mark.interop

COSIGNS = ["cosign2", "cosign3"]
VERIFY_OFFLINE = ["--insecure-ignore-tlog=true", "--offline=true", "--allow-http-registry=true"]


def sign_flags(name: str) -> list[str]:
    flags = ["--tlog-upload=false", "--yes", "--allow-http-registry=true"]
    if name == "cosign3":
        flags += ["--new-bundle-format=false", "--use-signing-config=false"]
    return flags


def vouch(*args: str, password: str = "pw", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COSIGN_PASSWORD": password}
    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=180, stdin=subprocess.DEVNULL)


def ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}"
    return r


@pytest.fixture
def image(registry: RegistryServer, client: RegistryClient, repo_name: str) -> str:
    ref = Reference(registry.host, repo_name, "v1")
    digest = push_image(client, ref, small_image("interop"))
    return f"{registry.host}/{repo_name}@{digest}"


def sig_layers(client: RegistryClient, image_ref: str) -> int:
    ref = Reference.parse(image_ref)
    assert ref.digest
    return len(read_tag(client, Reference(ref.registry, ref.repository), tag_for(ref.digest, SIG_SUFFIX)).layers)


@pytest.mark.parametrize("cosign", COSIGNS)
def test_cosign_verifies_vouch_signatures(cosign: str, image: str, tmp_path: Path) -> None:
    binary = peer(cosign)
    ok(vouch("generate-key-pair", "--output-key-prefix", "vouch", cwd=tmp_path))
    ok(vouch("sign", "--key", str(tmp_path / "vouch.key"), image))
    r = run_peer(binary, "verify", "--key", str(tmp_path / "vouch.pub"), *VERIFY_OFFLINE, image, home=tmp_path)
    [payload] = json.loads(r.stdout)
    assert payload["critical"]["image"]["docker-manifest-digest"] == image.split("@")[1]
    # vouch's own stdout is the same JSON cosign prints
    assert json.loads(ok(vouch("verify", "--key", str(tmp_path / "vouch.pub"), image)).stdout) == [payload]


@pytest.mark.parametrize("cosign", COSIGNS)
def test_cosign_verifies_vouch_annotations(cosign: str, image: str, tmp_path: Path) -> None:
    binary = peer(cosign)
    ok(vouch("generate-key-pair", "--output-key-prefix", "vouch", cwd=tmp_path))
    ok(vouch("sign", "--key", str(tmp_path / "vouch.key"), "-a", "release=2026.04", "-a", "team=akko", image))
    pub = str(tmp_path / "vouch.pub")
    r = run_peer(binary, "verify", "--key", pub, *VERIFY_OFFLINE, "-a", "release=2026.04", image, home=tmp_path)
    assert json.loads(r.stdout)[0]["optional"] == {"release": "2026.04", "team": "akko"}
    bad = run_peer(binary, "verify", "--key", pub, *VERIFY_OFFLINE, "-a", "release=1999", image, home=tmp_path,
                   check=False)
    assert bad.returncode != 0


@pytest.mark.parametrize("cosign", COSIGNS)
def test_cosign_verifies_vouch_recursive_index(cosign: str, registry: RegistryServer, client: RegistryClient,
                                               repo_name: str, tmp_path: Path) -> None:
    binary = peer(cosign)
    index = two_platform_index("interop")
    push_image(client, Reference(registry.host, repo_name, "multi"), index)
    ok(vouch("generate-key-pair", "--output-key-prefix", "vouch", cwd=tmp_path))
    ok(vouch("sign", "--recursive", "--key", str(tmp_path / "vouch.key"), f"{registry.host}/{repo_name}:multi"))
    for d in [index.digest] + [i.digest for i in index.images]:
        run_peer(binary, "verify", "--key", str(tmp_path / "vouch.pub"), *VERIFY_OFFLINE,
                 f"{registry.host}/{repo_name}@{d}", home=tmp_path)


@pytest.mark.parametrize("cosign", COSIGNS)
def test_vouch_verifies_cosign_signatures(cosign: str, image: str, tmp_path: Path) -> None:
    binary = peer(cosign)
    run_peer(binary, "generate-key-pair", home=tmp_path, cwd=tmp_path, env={"COSIGN_PASSWORD": "pw"})
    run_peer(binary, "sign", "--key", str(tmp_path / "cosign.key"), *sign_flags(cosign), image, home=tmp_path,
             env={"COSIGN_PASSWORD": "pw"})
    r = ok(vouch("verify", "--key", str(tmp_path / "cosign.pub"), image))
    assert json.loads(r.stdout)[0]["critical"]["image"]["docker-manifest-digest"] == image.split("@")[1]
    # and a key cosign made signs with vouch, verified by cosign
    ok(vouch("sign", "--key", str(tmp_path / "cosign.key"), "-a", "by=vouch", image))
    run_peer(binary, "verify", "--key", str(tmp_path / "cosign.pub"), *VERIFY_OFFLINE, "-a", "by=vouch", image,
             home=tmp_path)


@pytest.mark.parametrize("cosign", COSIGNS)
def test_cosign_signs_with_vouch_key(cosign: str, image: str, tmp_path: Path) -> None:
    binary = peer(cosign)
    ok(vouch("generate-key-pair", "--output-key-prefix", "vouch", cwd=tmp_path))
    run_peer(binary, "sign", "--key", str(tmp_path / "vouch.key"), *sign_flags(cosign), image, home=tmp_path,
             env={"COSIGN_PASSWORD": "pw"})
    ok(vouch("verify", "--key", str(tmp_path / "vouch.pub"), image))
    run_peer(binary, "verify", "--key", str(tmp_path / "vouch.pub"), *VERIFY_OFFLINE, image, home=tmp_path)


@pytest.mark.parametrize("cosign", COSIGNS)
def test_no_duplicate_layers_across_tools(cosign: str, registry: RegistryServer, client: RegistryClient,
                                          repo_name: str, tmp_path: Path) -> None:
    binary = peer(cosign)
    ok(vouch("generate-key-pair", "--output-key-prefix", "k", cwd=tmp_path))
    key = str(tmp_path / "k.key")
    a = f"{registry.host}/{repo_name}@{push_image(client, Reference(registry.host, repo_name, 'a'), small_image())}"
    b = f"{registry.host}/{repo_name}@{push_image(client, Reference(registry.host, repo_name, 'b'), small_image())}"
    # vouch first, then cosign with the same key: cosign sees the signature and adds nothing
    ok(vouch("sign", "--key", key, a))
    run_peer(binary, "sign", "--key", key, *sign_flags(cosign), a, home=tmp_path, env={"COSIGN_PASSWORD": "pw"})
    assert sig_layers(client, a) == 1
    # cosign first, then vouch: vouch sees it and writes nothing
    run_peer(binary, "sign", "--key", key, *sign_flags(cosign), b, home=tmp_path, env={"COSIGN_PASSWORD": "pw"})
    r = ok(vouch("sign", "--key", key, b))
    assert "Already signed" in r.stderr
    assert sig_layers(client, b) == 1


@pytest.mark.parametrize("cosign", COSIGNS)
def test_cosign_rejects_tampered_vouch_signature(cosign: str, image: str, client: RegistryClient,
                                                 tmp_path: Path) -> None:
    """A control: the peer is really checking (a wrong key fails in cosign too)."""
    binary = peer(cosign)
    ok(vouch("generate-key-pair", "--output-key-prefix", "signer", cwd=tmp_path))
    ok(vouch("generate-key-pair", "--output-key-prefix", "other", cwd=tmp_path))
    ok(vouch("sign", "--key", str(tmp_path / "signer.key"), image))
    r = run_peer(binary, "verify", "--key", str(tmp_path / "other.pub"), *VERIFY_OFFLINE, image, home=tmp_path,
                 check=False)
    assert r.returncode != 0
    r2 = vouch("verify", "--key", str(tmp_path / "other.pub"), image)
    assert r2.returncode == 1 and "does not verify" in r2.stderr


@pytest.mark.parametrize("cosign", COSIGNS)
def test_cosign_repository_override(cosign: str, image: str, client: RegistryClient, tmp_path: Path,
                                    registry: RegistryServer) -> None:
    """COSIGN_REPOSITORY stores signatures in another repository; both tools agree on where."""
    binary = peer(cosign)
    ok(vouch("generate-key-pair", "--output-key-prefix", "vouch", cwd=tmp_path))
    sigrepo = f"{registry.host}/signatures/{tmp_path.name[-12:].lower().replace('_', '-')}"
    env = {**os.environ, "COSIGN_PASSWORD": "pw", "COSIGN_REPOSITORY": sigrepo}
    r = subprocess.run([sys.executable, "-m", "vouch", "sign", "--key", str(tmp_path / "vouch.key"), image],
                       capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    ref = Reference.parse(image)
    assert ref.digest
    assert sig_layers(client, image) == 0  # nothing in the image's own repository
    sig_repo_ref = Reference.parse(sigrepo)
    assert len(read_tag(client, Reference(sig_repo_ref.registry, sig_repo_ref.repository),
                        tag_for(ref.digest, SIG_SUFFIX)).layers) == 1
    run_peer(binary, "verify", "--key", str(tmp_path / "vouch.pub"), *VERIFY_OFFLINE, image, home=tmp_path,
             env={"COSIGN_REPOSITORY": sigrepo})
    r = subprocess.run([sys.executable, "-m", "vouch", "verify", "--key", str(tmp_path / "vouch.pub"), image],
                       capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr


# ---- attestations ---------------------------------------------------------------------------------

BOM = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
       "metadata": {"timestamp": "2026-11-20T10:00:00Z"},
       "components": [{"type": "library", "name": "zlib1g", "version": "1:1.2.13.dfsg-1",
                       "purl": "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12"}]}


def att_count(client: RegistryClient, image_ref: str, predicate_type: str | None = None) -> int:
    from vouch.store.attest import read_attestations, statement_info

    ref = Reference.parse(image_ref)
    assert ref.digest
    repo, layers = read_attestations(client, ref, ref.digest)
    if predicate_type is None:
        return len(layers)
    return sum(1 for x in layers if statement_info(client, repo, x)[0] == predicate_type)


@pytest.mark.parametrize("cosign", COSIGNS)
def test_cosign_verifies_vouch_attestation(cosign: str, image: str, tmp_path: Path) -> None:
    binary = peer(cosign)
    ok(vouch("generate-key-pair", "--output-key-prefix", "vouch", cwd=tmp_path))
    (tmp_path / "bom.json").write_text(json.dumps(BOM))
    ok(vouch("attest", "--key", str(tmp_path / "vouch.key"), "--type", "cyclonedx", "--predicate",
             str(tmp_path / "bom.json"), image))
    r = run_peer(binary, "verify-attestation", "--key", str(tmp_path / "vouch.pub"), "--type", "cyclonedx",
                 *VERIFY_OFFLINE, image, home=tmp_path)
    env = json.loads(r.stdout.splitlines()[0])
    import base64

    assert json.loads(base64.b64decode(env["payload"]))["predicate"] == BOM
    # a wrong key fails in cosign too (the peer really checks)
    ok(vouch("generate-key-pair", "--output-key-prefix", "other", cwd=tmp_path))
    bad = run_peer(binary, "verify-attestation", "--key", str(tmp_path / "other.pub"), "--type", "cyclonedx",
                   *VERIFY_OFFLINE, image, home=tmp_path, check=False)
    assert bad.returncode != 0


def attest_flags(name: str) -> list[str]:
    return sign_flags(name)


@pytest.mark.parametrize("cosign", COSIGNS)
def test_vouch_verifies_cosign_attestation_and_download_matches(cosign: str, image: str, tmp_path: Path) -> None:
    binary = peer(cosign)
    run_peer(binary, "generate-key-pair", home=tmp_path, cwd=tmp_path, env={"COSIGN_PASSWORD": "pw"})
    (tmp_path / "bom.json").write_text(json.dumps(BOM))
    run_peer(binary, "attest", "--key", str(tmp_path / "cosign.key"), "--type", "cyclonedx", "--predicate",
             str(tmp_path / "bom.json"), *attest_flags(cosign), image, home=tmp_path, env={"COSIGN_PASSWORD": "pw"})
    r = ok(vouch("verify-attestation", "--key", str(tmp_path / "cosign.pub"), "--type", "cyclonedx",
                 "--max-age", "3650d", image))
    assert len(r.stdout.splitlines()) == 1
    ours = ok(vouch("download", "attestation", image)).stdout
    theirs = run_peer(binary, "download", "attestation", "--allow-http-registry=true", image, home=tmp_path).stdout
    assert ours.strip()
    if cosign == "cosign2":
        assert ours == theirs  # both print the stored envelope bytes
    else:
        # cosign 3 stores its envelope without the empty `keyid` and re-serialises it on download (payloadType
        # first, `"keyid": ""` added): the same envelope, payload and signature byte for byte.
        def norm(text: str) -> list[dict[str, object]]:
            out = []
            for line in text.splitlines():
                env = json.loads(line)
                env["signatures"] = [{"keyid": s.get("keyid", ""), "sig": s["sig"]} for s in env["signatures"]]
                out.append(env)
            return out

        assert norm(ours) == norm(theirs)


@pytest.mark.parametrize("cosign", COSIGNS)
def test_replace_across_tools_leaves_one_statement(cosign: str, registry: RegistryServer, client: RegistryClient,
                                                   repo_name: str, tmp_path: Path) -> None:
    binary = peer(cosign)
    ok(vouch("generate-key-pair", "--output-key-prefix", "k", cwd=tmp_path))
    key = str(tmp_path / "k.key")
    cdx = "https://cyclonedx.org/bom"
    a = f"{registry.host}/{repo_name}@{push_image(client, Reference(registry.host, repo_name, 'a'), small_image())}"
    b = f"{registry.host}/{repo_name}@{push_image(client, Reference(registry.host, repo_name, 'b'), small_image())}"
    newer = dict(BOM, metadata={"timestamp": "2026-11-25T10:00:00Z"})
    (tmp_path / "old.json").write_text(json.dumps(BOM))
    (tmp_path / "new.json").write_text(json.dumps(newer))
    # vouch first, then cosign --replace
    ok(vouch("attest", "--key", key, "--type", "cyclonedx", "--predicate", str(tmp_path / "old.json"), a))
    run_peer(binary, "attest", "--key", key, "--type", "cyclonedx", "--predicate", str(tmp_path / "new.json"),
             "--replace", *attest_flags(cosign), a, home=tmp_path, env={"COSIGN_PASSWORD": "pw"})
    assert att_count(client, a, cdx) == 1
    # cosign first, then vouch --replace
    run_peer(binary, "attest", "--key", key, "--type", "cyclonedx", "--predicate", str(tmp_path / "old.json"),
             *attest_flags(cosign), b, home=tmp_path, env={"COSIGN_PASSWORD": "pw"})
    ok(vouch("attest", "--key", key, "--type", "cyclonedx", "--predicate", str(tmp_path / "new.json"),
             "--replace", b))
    assert att_count(client, b, cdx) == 1
    r = ok(vouch("verify-attestation", "--key", str(tmp_path / "k.pub"), "--type", "cyclonedx", b))
    import base64

    stmt = json.loads(base64.b64decode(json.loads(r.stdout.splitlines()[0])["payload"]))
    assert stmt["predicate"]["metadata"]["timestamp"] == "2026-11-25T10:00:00Z"
