"""The test-only OCI 1.1 registry (vouch.testbed.ociregistry): the distribution spec as vouch's own client
sees it, and real cosign 3 writing and reading sigstore bundles as referrers against it. No mocks."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from tests.support.peers import peer, run_peer
from vouch.oci import mediatypes as mt
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient, RegistryOptions
from vouch.oci.digest import sha256_digest
from vouch.oci.reference import Reference
from vouch.testbed.ociregistry import OciRegistry, start_oci_registry
from vouch.testbed.samples import sample_image

REPO = "team/apps/web"  # slashes in the name on purpose
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"


@pytest.fixture
def oci() -> Iterator[OciRegistry]:
    registry = start_oci_registry()
    yield registry
    registry.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


def repo_ref(registry: OciRegistry, repo: str = REPO) -> Reference:
    return Reference(registry.host, repo)


def push_sample(client: RegistryClient, registry: OciRegistry, repo: str = REPO) -> str:
    return push_image(client, Reference(registry.host, repo, "v1"), sample_image("web", "debian"))


def push_referrer(client: RegistryClient, registry: OciRegistry, subject: str, artifact_type: str | None = None,
                  config_type: str = EMPTY_TYPE, annotations: dict[str, str] | None = None) -> tuple[str, bool]:
    """An artifact manifest whose `subject` is subject; (its digest, whether the registry sent OCI-Subject)."""
    ref = repo_ref(registry)
    payload = os.urandom(16)
    doc: dict[str, object] = {
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": client.push_blob(ref, b"{}"), "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": client.push_blob(ref, payload), "size": 16}],
        "subject": {"mediaType": mt.OCI_MANIFEST, "digest": subject, "size": 123},
    }
    if artifact_type:
        doc["artifactType"] = artifact_type
    if annotations:
        doc["annotations"] = annotations
    raw = json.dumps(doc).encode()
    return client.put_manifest_subject(ref.with_digest(sha256_digest(raw)), raw, mt.OCI_MANIFEST)


def errors(resp: httpx.Response) -> list[str]:
    return [e["code"] for e in resp.json()["errors"]]


# ---- the spec, through vouch's client and plain HTTP ------------------------------------------------


def test_push_and_pull_an_image(oci: OciRegistry, client: RegistryClient, http: httpx.Client) -> None:
    assert http.get(f"{oci.url}/v2/").status_code == 200
    digest = push_sample(client, oci)
    by_tag = client.get_manifest(Reference(oci.host, REPO, "v1"))
    by_digest = client.get_manifest(repo_ref(oci).with_digest(digest))
    assert by_tag.digest == by_digest.digest == digest and by_tag.raw == by_digest.raw
    assert by_tag.media_type == mt.OCI_MANIFEST
    head = http.head(f"{oci.url}/v2/{REPO}/manifests/v1")
    assert head.status_code == 200 and head.headers["Docker-Content-Digest"] == digest
    assert int(head.headers["Content-Length"]) == len(by_tag.raw)
    for desc in [by_tag.config(), *by_tag.layers()]:
        assert sha256_digest(client.get_blob(repo_ref(oci), desc.digest)) == desc.digest
    assert client.list_tags(repo_ref(oci)) == ["v1"]
    assert http.get(f"{oci.url}/v2/{REPO}/manifests/v2").status_code == 404
    assert errors(http.get(f"{oci.url}/v2/other/manifests/v1")) == ["NAME_UNKNOWN"]
    assert errors(http.get(f"{oci.url}/v2/{REPO}/blobs/sha256:{'0' * 64}")) == ["BLOB_UNKNOWN"]


def test_manifest_checks(oci: OciRegistry, client: RegistryClient, http: httpx.Client) -> None:
    ref = repo_ref(oci)
    missing = sha256_digest(b"never pushed")
    config = client.push_blob(ref, b"{}")
    doc = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
           "config": {"mediaType": EMPTY_TYPE, "digest": config, "size": 2},
           "layers": [{"mediaType": "application/octet-stream", "digest": missing, "size": 12}]}
    url = f"{oci.url}/v2/{REPO}/manifests/broken"
    resp = http.put(url, content=json.dumps(doc), headers={"Content-Type": mt.OCI_MANIFEST})
    assert resp.status_code == 400 and errors(resp) == ["MANIFEST_BLOB_UNKNOWN"]
    assert resp.json()["errors"][0]["detail"] == {"missing": [missing]}
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
             "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": missing, "size": 1}]}
    assert errors(http.put(url, content=json.dumps(index), headers={"Content-Type": mt.OCI_INDEX})) \
        == ["MANIFEST_BLOB_UNKNOWN"]
    assert errors(http.put(url, content=b"not json", headers={"Content-Type": mt.OCI_MANIFEST})) == ["MANIFEST_INVALID"]
    assert errors(http.put(url, content=json.dumps(doc), headers={"Content-Type": mt.OCI_INDEX})) \
        == ["MANIFEST_INVALID"]  # Content-Type must be the manifest's mediaType
    raw = json.dumps({**doc, "layers": []}).encode()
    wrong = f"{oci.url}/v2/{REPO}/manifests/{sha256_digest(b'other')}"
    assert errors(http.put(wrong, content=raw, headers={"Content-Type": mt.OCI_MANIFEST})) == ["DIGEST_INVALID"]
    ok = http.put(url, content=raw, headers={"Content-Type": mt.OCI_MANIFEST})
    assert ok.status_code == 201 and ok.headers["Docker-Content-Digest"] == sha256_digest(raw)
    assert "OCI-Subject" not in ok.headers  # no subject, nothing to say
    assert http.get(url).content == raw  # the exact bytes


def test_deletes(oci: OciRegistry, client: RegistryClient, http: httpx.Client) -> None:
    digest = push_sample(client, oci)
    ref = repo_ref(oci)
    client.put_manifest(ref.with_tag("also"), client.get_manifest(ref.with_digest(digest)).raw, mt.OCI_MANIFEST)
    sig, _ = push_referrer(client, oci, digest, BUNDLE_TYPE)
    assert http.delete(f"{oci.url}/v2/{REPO}/manifests/also").status_code == 202
    assert client.list_tags(ref) == ["v1"]
    client.delete_manifest(ref, digest)  # by digest: the tags on it go too
    assert client.list_tags(ref) == [] and client.head_manifest(ref.with_digest(digest)) is None
    client.delete_manifest(ref, sig)  # a deleted referrer leaves the list
    assert client.referrers(ref, digest) == []
    blob = client.push_blob(ref, b"bye")
    assert http.delete(f"{oci.url}/v2/{REPO}/blobs/{blob}").status_code == 202
    assert not client.blob_exists(ref, blob)
    assert http.delete(f"{oci.url}/v2/{REPO}/blobs/{blob}").status_code == 404


def test_blob_uploads_monolithic_chunked_and_mounted(oci: OciRegistry, http: httpx.Client) -> None:
    data = os.urandom(10_000)
    digest = sha256_digest(data)
    small = RegistryClient(RegistryOptions(backoff=0.01, chunk_size=4096))
    try:
        ref = repo_ref(oci)
        small.push_blob_stream(ref, lambda: iter([data[i:i + 1000] for i in range(0, len(data), 1000)]), digest)
        patches = [r for r in oci.requests if r.method == "PATCH"]
        # the client flushes once it holds >= 4096 bytes: two PATCHes of 5000 (Content-Range 0-4999, 5000-9999)
        assert len(patches) == 2 and all(r.status == 202 for r in patches)
        assert small.get_blob(ref, digest) == data
        assert small.mount_blob(Reference(oci.host, "elsewhere/app"), digest, REPO) is True  # 201
        assert small.blob_exists(Reference(oci.host, "elsewhere/app"), digest)
        assert small.mount_blob(Reference(oci.host, "third"), sha256_digest(b"absent"), REPO) is False  # 202
    finally:
        small.close()
    one = os.urandom(100)
    resp = http.post(f"{oci.url}/v2/{REPO}/blobs/uploads/?digest={sha256_digest(one)}", content=one)
    assert resp.status_code == 201 and resp.headers["Location"] == f"/v2/{REPO}/blobs/{sha256_digest(one)}"
    bad = http.post(f"{oci.url}/v2/{REPO}/blobs/uploads/?digest={sha256_digest(b'x')}", content=one)
    assert errors(bad) == ["DIGEST_INVALID"]
    # chunks out of order are refused with 416; a wrong final digest with DIGEST_INVALID
    start = http.post(f"{oci.url}/v2/{REPO}/blobs/uploads/")
    loc = oci.url + start.headers["Location"]
    assert start.status_code == 202
    first = http.patch(loc, content=b"abcd", headers={"Content-Range": "0-3"})
    assert first.status_code == 202 and first.headers["Range"] == "0-3"
    assert http.patch(loc, content=b"efgh", headers={"Content-Range": "5-8"}).status_code == 416
    status = http.get(loc)
    assert status.status_code == 204 and status.headers["Range"] == "0-3"
    assert errors(http.put(f"{loc}?digest={sha256_digest(b'nope')}")) == ["DIGEST_INVALID"]
    again = oci.url + http.post(f"{oci.url}/v2/{REPO}/blobs/uploads/").headers["Location"]
    http.patch(again, content=b"abcd", headers={"Content-Range": "0-3"})
    done = http.put(f"{again}?digest={sha256_digest(b'abcdefgh')}", content=b"efgh", headers={"Content-Range": "4-7"})
    assert done.status_code == 201 and done.headers["Docker-Content-Digest"] == sha256_digest(b"abcdefgh")
    assert http.get(f"{oci.url}/v2/{REPO}/blobs/{sha256_digest(b'abcdefgh')}").content == b"abcdefgh"
    assert http.delete(again).status_code == 404  # finished uploads are gone


def test_tag_list_pagination(oci: OciRegistry, client: RegistryClient, http: httpx.Client) -> None:
    digest = push_sample(client, oci)
    raw = client.get_manifest(repo_ref(oci).with_digest(digest)).raw
    for tag in ["b", "a", "d", "c"]:
        client.put_manifest(repo_ref(oci).with_tag(tag), raw, mt.OCI_MANIFEST)
    first = http.get(f"{oci.url}/v2/{REPO}/tags/list", params={"n": 2})
    assert first.json() == {"name": REPO, "tags": ["a", "b"]}
    assert first.headers["Link"] == f'</v2/{REPO}/tags/list?n=2&last=b>; rel="next"'
    last = http.get(f"{oci.url}/v2/{REPO}/tags/list", params={"n": 2, "last": "d"})
    assert last.json()["tags"] == ["v1"] and "Link" not in last.headers
    zero = http.get(f"{oci.url}/v2/{REPO}/tags/list", params={"n": 0})
    assert zero.json()["tags"] == [] and "Link" not in zero.headers
    assert client.list_tags(repo_ref(oci), page_size=2) == ["a", "b", "c", "d", "v1"]
    assert sum(r.path.endswith("/tags/list") for r in oci.requests) == 3 + 3


def test_referrers_list_descriptors_with_artifact_type_and_annotations(oci: OciRegistry, client: RegistryClient,
                                                                       http: httpx.Client) -> None:
    subject = sha256_digest(b"a subject pushed later")  # the spec: referrers may come first
    sig, indexed = push_referrer(client, oci, subject, BUNDLE_TYPE, annotations={"k": "v"})
    assert indexed  # OCI-Subject
    sbom, _ = push_referrer(client, oci, subject, config_type="application/vnd.example.sbom.v1")
    push_referrer(client, oci, sha256_digest(b"another subject"), BUNDLE_TYPE)
    found = {d.digest: d for d in client.referrers(repo_ref(oci), subject) or []}
    assert set(found) == {sig, sbom}
    assert found[sig].artifact_type == BUNDLE_TYPE and found[sig].annotations == {"k": "v"}
    assert found[sbom].artifact_type == "application/vnd.example.sbom.v1"  # the config's media type
    assert found[sbom].annotations is None and found[sig].media_type == mt.OCI_MANIFEST
    resp = http.get(f"{oci.url}/v2/{REPO}/referrers/{subject}")
    assert resp.headers["Content-Type"] == mt.OCI_INDEX and "OCI-Filters-Applied" not in resp.headers
    assert resp.json()["schemaVersion"] == 2 and resp.json()["mediaType"] == mt.OCI_INDEX


def test_referrers_unknown_digest_or_repository_is_an_empty_index(oci: OciRegistry, http: httpx.Client) -> None:
    for repo in [REPO, "never/pushed"]:
        resp = http.get(f"{oci.url}/v2/{repo}/referrers/{sha256_digest(b'nothing')}")
        assert resp.status_code == 200 and resp.json()["manifests"] == []  # never 404 with the API
    assert errors(http.get(f"{oci.url}/v2/{REPO}/referrers/sha256:short")) == ["DIGEST_INVALID"]


def test_referrers_artifact_type_filter(oci: OciRegistry, client: RegistryClient, http: httpx.Client) -> None:
    subject = sha256_digest(b"subject")
    sig, _ = push_referrer(client, oci, subject, BUNDLE_TYPE)
    push_referrer(client, oci, subject, "application/vnd.example.sbom.v1")
    resp = http.get(f"{oci.url}/v2/{REPO}/referrers/{subject}", params={"artifactType": BUNDLE_TYPE})
    assert resp.headers["OCI-Filters-Applied"] == "artifactType"
    assert [d["digest"] for d in resp.json()["manifests"]] == [sig]
    none = http.get(f"{oci.url}/v2/{REPO}/referrers/{subject}", params={"artifactType": "application/x-none"})
    assert none.json()["manifests"] == [] and none.headers["OCI-Filters-Applied"] == "artifactType"


def test_referrers_pagination(client: RegistryClient, http: httpx.Client) -> None:
    paged = start_oci_registry(page_size=2)
    try:
        subject = sha256_digest(b"popular")
        pushed = {push_referrer(client, paged, subject, BUNDLE_TYPE)[0] for _ in range(5)}
        push_referrer(client, paged, subject, "application/vnd.example.other")
        pages: list[list[str]] = []
        url: str | None = f"{paged.url}/v2/{REPO}/referrers/{subject}?{urlencode({'artifactType': BUNDLE_TYPE})}"
        while url:
            resp = http.get(url)
            assert resp.headers["OCI-Filters-Applied"] == "artifactType"  # on every page
            pages.append([d["digest"] for d in resp.json()["manifests"]])
            link = resp.headers.get("Link")
            url = paged.url + link.split(";")[0].strip("<>") if link else None
            assert link is None or link.endswith('; rel="next"')
        assert [len(p) for p in pages] == [2, 2, 1] and {d for p in pages for d in p} == pushed
        assert len(client.referrers(repo_ref(paged), subject) or []) == 6  # vouch follows the Links
    finally:
        paged.stop()


def test_without_referrers_api(client: RegistryClient, http: httpx.Client) -> None:
    plain = start_oci_registry(referrers=False)
    try:
        subject = push_sample(client, plain)
        _, indexed = push_referrer(client, plain, subject, BUNDLE_TYPE)
        assert not indexed  # no OCI-Subject
        assert http.get(f"{plain.url}/v2/{REPO}/referrers/{subject}").status_code == 404
        assert client.referrers(repo_ref(plain), subject) is None
    finally:
        plain.stop()


def test_concurrent_pushes(oci: OciRegistry) -> None:
    def push(i: int) -> str:
        with RegistryClient(RegistryOptions(backoff=0.01)) as c:
            return push_image(c, Reference(oci.host, REPO, f"t{i}"), sample_image(f"app{i}", "alpine"))

    with ThreadPoolExecutor(8) as pool:
        digests = list(pool.map(push, range(8)))
    with RegistryClient(RegistryOptions(backoff=0.01)) as c:
        assert sorted(c.list_tags(repo_ref(oci))) == sorted(f"t{i}" for i in range(8))
        assert [c.resolve(Reference(oci.host, REPO, f"t{i}")).digest for i in range(8)] == digests


# ---- real cosign 3: sigstore bundles as referrers ---------------------------------------------------

COSIGN3_WRITE = ["--new-bundle-format=true", "--use-signing-config=false", "--tlog-upload=false",
                 "--allow-insecure-registry", "-y"]
COSIGN3_READ = ["--insecure-ignore-tlog=true", "--allow-insecure-registry"]
NO_PASSWORD = {"COSIGN_PASSWORD": ""}


@pytest.fixture
def cosign3(tmp_path: Path) -> Path:
    binary = peer("cosign3")
    run_peer(binary, "generate-key-pair", home=tmp_path, cwd=tmp_path, env=NO_PASSWORD)
    return binary


def manifest_puts(registry: OciRegistry) -> list[str]:
    """The references (tag or digest) of the manifests PUT since the log was cleared."""
    return [r.path.rsplit("/manifests/", 1)[1] for r in registry.requests
            if r.method == "PUT" and "/manifests/" in r.path]


def assert_bundle_referrer(registry: OciRegistry, client: RegistryClient, digest: str) -> dict[str, object]:
    """cosign asked the referrers API, wrote one manifest whose subject is digest, and no fallback tag."""
    fallback_tag = digest.replace(":", "-")
    assert any(r.method == "GET" and r.path == f"/v2/{REPO}/referrers/{digest}" and r.status == 200
               for r in registry.requests)
    puts = manifest_puts(registry)
    assert len(puts) == 1 and puts[0].startswith("sha256:") and fallback_tag not in puts
    assert fallback_tag not in client.list_tags(repo_ref(registry))
    written = client.get_manifest(repo_ref(registry).with_digest(puts[0])).json
    assert written["subject"]["digest"] == digest and written["artifactType"] == BUNDLE_TYPE
    listed = client.referrers(repo_ref(registry), digest) or []
    assert [(d.digest, d.artifact_type) for d in listed] == [(puts[0], BUNDLE_TYPE)]
    return written


@pytest.mark.interop
def test_cosign3_signs_as_referrer_and_verifies(oci: OciRegistry, client: RegistryClient, cosign3: Path,
                                                tmp_path: Path) -> None:
    digest = push_sample(client, oci)
    image = f"{oci.host}/{REPO}@{digest}"
    oci.clear_log()
    run_peer(cosign3, "sign", "--key", str(tmp_path / "cosign.key"), *COSIGN3_WRITE, image, home=tmp_path,
             env=NO_PASSWORD)
    assert_bundle_referrer(oci, client, digest)
    oci.clear_log()
    run_peer(cosign3, "verify", "--key", str(tmp_path / "cosign.pub"), *COSIGN3_READ, image, home=tmp_path)
    assert any("/referrers/" in r.path for r in oci.requests)
    other = tmp_path / "other"
    other.mkdir()
    run_peer(cosign3, "generate-key-pair", home=other, cwd=other, env=NO_PASSWORD)
    bad = run_peer(cosign3, "verify", "--key", str(other / "cosign.pub"), *COSIGN3_READ, image, home=tmp_path,
                   check=False)
    assert bad.returncode != 0


@pytest.mark.interop
def test_cosign3_attests_as_referrer_and_verifies(oci: OciRegistry, client: RegistryClient, cosign3: Path,
                                                  tmp_path: Path) -> None:
    digest = push_sample(client, oci)
    image = f"{oci.host}/{REPO}@{digest}"
    bom = tmp_path / "bom.json"
    bom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": []}))
    oci.clear_log()
    run_peer(cosign3, "attest", "--key", str(tmp_path / "cosign.key"), "--type", "cyclonedx", "--predicate", str(bom),
             *COSIGN3_WRITE, image, home=tmp_path, env=NO_PASSWORD)
    written = assert_bundle_referrer(oci, client, digest)
    annotations = written["annotations"]
    assert isinstance(annotations, dict)
    assert annotations["dev.sigstore.bundle.predicateType"] == "https://cyclonedx.org/bom"
    listed = client.referrers(repo_ref(oci), digest) or []
    assert listed[0].annotations == annotations  # the registry copies the manifest's annotations
    r = run_peer(cosign3, "verify-attestation", "--key", str(tmp_path / "cosign.pub"), "--type", "cyclonedx",
                 *COSIGN3_READ, image, home=tmp_path)
    envelope = json.loads(r.stdout.strip().splitlines()[-1])
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["predicateType"] == "https://cyclonedx.org/bom"
    assert statement["predicate"]["bomFormat"] == "CycloneDX"
    assert statement["subject"][0]["digest"]["sha256"] == digest.split(":")[1]


@pytest.mark.interop
def test_cosign3_falls_back_to_the_tag_index_without_referrers_api(client: RegistryClient, cosign3: Path,
                                                                   tmp_path: Path) -> None:
    plain = start_oci_registry(referrers=False)
    try:
        digest = push_sample(client, plain)
        image = f"{plain.host}/{REPO}@{digest}"
        fallback_tag = digest.replace(":", "-")
        plain.clear_log()
        run_peer(cosign3, "sign", "--key", str(tmp_path / "cosign.key"), *COSIGN3_WRITE, image, home=tmp_path,
                 env=NO_PASSWORD)
        assert any(r.path == f"/v2/{REPO}/referrers/{digest}" and r.status == 404 for r in plain.requests)
        puts = manifest_puts(plain)
        assert len(puts) == 2 and puts[1] == fallback_tag  # the bundle manifest, then the tag index
        index = client.get_manifest(Reference(plain.host, REPO, fallback_tag))
        assert index.media_type == mt.OCI_INDEX
        assert [(d.digest, d.artifact_type) for d in index.children()] == [(puts[0], BUNDLE_TYPE)]
        run_peer(cosign3, "verify", "--key", str(tmp_path / "cosign.pub"), *COSIGN3_READ, image, home=tmp_path)
    finally:
        plain.stop()
