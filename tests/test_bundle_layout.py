"""cosign 3's default layout — sigstore bundles as OCI 1.1 referrers — read and written by vouch, proved
both ways against real cosign 3.1.2 (default bundle mode) and cosign 2.6.4 (`--new-bundle-format`), on
the test bed's docker-registry 2.8 (no referrers API: the `sha256-<hex>` fallback index) and on the
test-only registry with a real referrers API (`vouch.testbed.ociregistry`). Nothing here is mocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.images import small_image
from tests.support.peers import peer, run_peer
from tests.support.registry import RegistryServer
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.store.bundles import fallback_tag, list_bundles
from vouch.store.layout import read_index_tag

pytestmark = pytest.mark.interop

COSIGN3_BUNDLE = ["--new-bundle-format=true", "--use-signing-config=false", "--tlog-upload=false", "--yes",
                  "--allow-insecure-registry"]
VERIFY3 = ["--insecure-ignore-tlog=true", "--allow-insecure-registry"]
EMPTY_ROOT = '{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}'


def vouch(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COSIGN_PASSWORD": "pw"}
    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=180, stdin=subprocess.DEVNULL)


def ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}"
    return r


@pytest.fixture(scope="module")
def referrers_registry() -> Iterator[str]:
    from vouch.testbed.ociregistry import start_oci_registry

    server = start_oci_registry()
    try:
        yield server.host
    finally:
        server.stop()


@pytest.fixture(params=["fallback", "referrers"])
def host(request: pytest.FixtureRequest, registry: RegistryServer) -> str:
    """docker-registry 2.8 (no referrers API) or the registry with one."""
    if request.param == "fallback":
        return registry.host
    return str(request.getfixturevalue("referrers_registry"))


@pytest.fixture
def image(host: str, client: RegistryClient, repo_name: str) -> str:
    digest = push_image(client, Reference(host, repo_name, "v1"), small_image("bundle"))
    return f"{host}/{repo_name}@{digest}"


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    ok(vouch("generate-key-pair", "--output-key-prefix", "k", cwd=tmp_path))
    return tmp_path / "k.key", tmp_path / "k.pub"


def bundle_entries(client: RegistryClient, image: str) -> tuple[bool, int]:
    ref = Reference.parse(image)
    assert ref.digest
    listing = list_bundles(client, Reference(ref.registry, ref.repository), ref.digest)
    return listing.api, len(listing.entries)


def sbom_file(tmp_path: Path, image: str) -> Path:
    out = tmp_path / "sbom.json"
    out.write_text(ok(vouch("sbom", image)).stdout)
    return out


def test_vouch_reads_cosign3_default_bundles(image: str, host: str, registry: RegistryServer, client: RegistryClient,
                                             keys: tuple[Path, Path], tmp_path: Path) -> None:
    key, pub = keys
    cosign3 = peer("cosign3")
    env = {"COSIGN_PASSWORD": "pw"}
    run_peer(cosign3, "sign", "--key", str(key), *COSIGN3_BUNDLE, image, home=tmp_path, env=env)
    api, n = bundle_entries(client, image)
    assert (api, n) == (host != registry.host, 1)
    r = ok(vouch("verify", "--key", str(pub), image, "-o", "json"))
    [res] = json.loads(r.stdout)
    assert res["verified"] and res["signatures"][0]["layer"].startswith("bundle sha256:")
    # cosign's stdout and ours agree on the payload of a bundle signature
    theirs = json.loads(run_peer(cosign3, "verify", "--key", str(pub), *VERIFY3, image, home=tmp_path).stdout)
    assert json.loads(ok(vouch("verify", "--key", str(pub), image)).stdout) == theirs
    # another key: refused, with the reason
    ok(vouch("generate-key-pair", "--output-key-prefix", "other", cwd=tmp_path))
    bad = vouch("verify", "--key", str(tmp_path / "other.pub"), image)
    assert bad.returncode == 1 and "does not verify with the given key" in bad.stderr
    # a cosign 3 CycloneDX attestation in the bundle format passes verify-attestation with --max-age
    sbom = sbom_file(tmp_path, image)
    run_peer(cosign3, "attest", "--key", str(key), "--type", "cyclonedx", "--predicate", str(sbom), *COSIGN3_BUNDLE,
             image, home=tmp_path, env=env)
    r = ok(vouch("verify-attestation", "--key", str(pub), "--type", "cyclonedx", "--max-age", "90d", image))
    statement = json.loads(__import__("base64").b64decode(json.loads(r.stdout.splitlines()[0])["payload"]))
    assert statement["predicateType"] == "https://cyclonedx.org/bom"
    # download reads the bundle layout too (the signature bundle is not an attestation)
    lines = ok(vouch("download", "attestation", image)).stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["payloadType"] == "application/vnd.in-toto+json"
    assert json.loads(ok(vouch("download", "sbom", image)).stdout) == json.loads(sbom.read_text())
    # the signature check does not count the attestation bundle as a signature, nor the reverse
    assert len(json.loads(ok(vouch("verify", "--key", str(pub), image, "-o", "json")).stdout)[0]["signatures"]) == 1


def test_cosign_reads_vouch_bundles(image: str, host: str, registry: RegistryServer, client: RegistryClient,
                                    keys: tuple[Path, Path], tmp_path: Path) -> None:
    key, pub = keys
    out = ok(vouch("sign", "--key", str(key), "--new-bundle-format", image))
    assert "Pushing signature to" in out.stderr
    again = ok(vouch("sign", "--key", str(key), "--new-bundle-format", image))
    assert "Already signed (no change)" in again.stderr
    assert bundle_entries(client, image) == (host != registry.host, 1)
    run_peer(peer("cosign3"), "verify", "--key", str(pub), *VERIFY3, image, home=tmp_path)
    root = tmp_path / "trusted_root.json"
    root.write_text(EMPTY_ROOT)
    cosign2_flags = ["--new-bundle-format", "--trusted-root", str(root), *VERIFY3]
    run_peer(peer("cosign2"), "verify", "--key", str(pub), *cosign2_flags, image, home=tmp_path)
    sbom = sbom_file(tmp_path, image)
    ok(vouch("attest", "--key", str(key), "--new-bundle-format", "--type", "cyclonedx", "--predicate", str(sbom),
             image))
    again = ok(vouch("attest", "--key", str(key), "--new-bundle-format", "--type", "cyclonedx", "--predicate",
                     str(sbom), image))
    assert "Identical attestation already attached" in again.stderr
    assert bundle_entries(client, image)[1] == 2
    for cosign, flags in (("cosign3", VERIFY3), ("cosign2", cosign2_flags)):
        r = run_peer(peer(cosign), "verify-attestation", "--key", str(pub), "--type", "cyclonedx", *flags, image,
                     home=tmp_path)
        assert json.loads(r.stdout.splitlines()[0])["payloadType"] == "application/vnd.in-toto+json"
    # a tampered key file (another key) is refused by cosign too: the check can fail
    ok(vouch("generate-key-pair", "--output-key-prefix", "other", cwd=tmp_path))
    bad = run_peer(peer("cosign3"), "verify", "--key", str(tmp_path / "other.pub"), *VERIFY3, image, home=tmp_path,
                   check=False)
    assert bad.returncode != 0


def test_replace_keeps_other_signers(image: str, host: str, registry: RegistryServer, client: RegistryClient,
                                     keys: tuple[Path, Path], tmp_path: Path) -> None:
    """--replace takes out our own older statement of the type, never another key's."""
    key, pub = keys
    ok(vouch("generate-key-pair", "--output-key-prefix", "other", cwd=tmp_path))
    first = tmp_path / "a.json"
    first.write_text('{"n": 1}')
    second = tmp_path / "b.json"
    second.write_text('{"n": 2}')
    ok(vouch("attest", "--key", str(tmp_path / "other.key"), "--new-bundle-format", "--predicate", str(first), image))
    ok(vouch("attest", "--key", str(key), "--new-bundle-format", "--predicate", str(first), image))
    r = ok(vouch("attest", "--key", str(key), "--new-bundle-format", "--replace", "--predicate", str(second), image))
    assert "(replaced 1)" in r.stderr
    assert bundle_entries(client, image)[1] == 2  # the other key's and our new one
    mine = json.loads(ok(vouch("verify-attestation", "--key", str(pub), image, "-o", "json")).stdout)[0]
    assert [a["ok"] for a in mine["attestations"]].count(True) == 1
    ok(vouch("verify-attestation", "--key", str(tmp_path / "other.pub"), image))


def test_both_layouts_seen_by_each_reader(image: str, keys: tuple[Path, Path], tmp_path: Path) -> None:
    key, pub = keys
    ok(vouch("sign", "--key", str(key), image))
    cosign2 = peer("cosign2")
    run_peer(cosign2, "verify", "--key", str(pub), *VERIFY3, image, home=tmp_path)  # before: legacy alone
    root = tmp_path / "trusted_root.json"
    root.write_text(EMPTY_ROOT)
    # cosign 2.6 switches to the bundle format as soon as the image has a bundle, and then needs a trusted
    # root (from TUF, unreachable offline) even for key-signed bundles: a fact for the operator docs.
    ok(vouch("sign", "--key", str(key), "--layout", "both", image))
    refused = run_peer(cosign2, "verify", "--key", str(pub), *VERIFY3, image, home=tmp_path, check=False)
    assert refused.returncode != 0 and "trusted root is required" in refused.stderr
    run_peer(cosign2, "verify", "--key", str(pub), "--trusted-root", str(root), *VERIFY3, image, home=tmp_path)
    run_peer(peer("cosign3"), "verify", "--key", str(pub), *VERIFY3, image, home=tmp_path)
    [res] = json.loads(ok(vouch("verify", "--key", str(pub), image, "-o", "json")).stdout)
    assert sorted(s["layer"].startswith("bundle") for s in res["signatures"]) == [False, True]


def test_concurrent_bundle_writers_lose_nothing(registry: RegistryServer, client: RegistryClient, repo_name: str,
                                                tmp_path: Path) -> None:
    """Six signers add bundles to the same fallback index at once: every one of them is there after."""
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), small_image("race"))
    image = f"{registry.host}/{repo_name}@{digest}"
    for i in range(6):
        ok(vouch("generate-key-pair", "--output-key-prefix", f"k{i}", cwd=tmp_path))
    results: list[subprocess.CompletedProcess[str]] = []

    def one(i: int) -> None:
        results.append(vouch("sign", "--key", str(tmp_path / f"k{i}.key"), "--new-bundle-format", image))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.returncode == 0 for r in results), [r.stderr[-500:] for r in results]
    state = read_index_tag(client, Reference(registry.host, repo_name), fallback_tag(digest))
    assert len(state.layers) == 6
    for i in range(6):
        ok(vouch("verify", "--key", str(tmp_path / f"k{i}.pub"), image))


def test_release_in_both_layouts(host: str, client: RegistryClient, repo_name: str, keys: tuple[Path, Path],
                                 tmp_path: Path) -> None:
    """`vouch release --layout both`: every digest of a multi-arch index carries a signature and a current
    SBOM in each layout, read by cosign 3 (bundle), cosign 2 (legacy, as long as no bundle exists: see
    above) and the gate; a re-run writes nothing."""
    from tests.support.images import two_platform_index

    key, pub = keys
    index = two_platform_index("rel")
    push_image(client, Reference(host, repo_name, "multi"), index)
    image = f"{host}/{repo_name}:multi"
    r = ok(vouch("release", "--key", str(key), "--layout", "both", image, "-o", "json"))
    rows = json.loads(r.stdout)["images"]
    assert [x["sbom"] for x in rows] == ["attested"] * 3
    again = json.loads(ok(vouch("release", "--key", str(key), "--layout", "both", image, "-o", "json")).stdout)
    assert [(x["signature"], x["sbom"]) for x in again["images"]] == [("already-signed", "current")] * 3
    for d in [index.digest, *[i.digest for i in index.images]]:
        pinned = f"{host}/{repo_name}@{d}"
        run_peer(peer("cosign3"), "verify", "--key", str(pub), *VERIFY3, pinned, home=tmp_path)
        run_peer(peer("cosign3"), "verify-attestation", "--key", str(pub), "--type", "cyclonedx", *VERIFY3, pinned,
                 home=tmp_path)
    gates = json.loads(ok(vouch("verify-release", "--key", str(pub), image, "-o", "json")).stdout)
    assert [g["layouts"] for g in gates] == [{"signature": ["bundle", "legacy"], "sbom": ["bundle", "legacy"]}] * 3
