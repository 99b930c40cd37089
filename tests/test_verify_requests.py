"""What verify asks the registry for, counted at a proxy in front of the real registry: a predicted payload
is not downloaded (and is only ever what the signature must cover), and a later layout is read only when
the earlier ones held no valid signature."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.faultproxy import FaultProxy, Rule
from tests.support.images import small_image
from tests.support.keys import new_signer
from tests.support.registry import RegistryServer
from vouch.errors import EXIT_VERIFY, NotFoundError, RegistryError
from vouch.keys.cosign import public_key_pem
from vouch.oci import mediatypes as mt
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient, RegistryOptions
from vouch.oci.reference import Reference
from vouch.signing.payload import simple_signing_payload
from vouch.signing.sign import sign_image
from vouch.store.layout import ANN_SIGNATURE, SIG_SUFFIX, TAG_ACCEPT, tag_for
from vouch.verify.signatures import verify_image

BLOB = r"/blobs/sha256:"
FALLBACK = r"/manifests/sha256-[0-9a-f]{64}$"  # the referrers fallback tag (bundle layout)


def _image(registry: RegistryServer, repo: str) -> str:
    with RegistryClient() as direct:
        return push_image(direct, Reference(registry.host, repo, "v1"), small_image(repo, size=2_000))


def test_the_payload_verify_predicts_is_not_downloaded(registry: RegistryServer, proxy: FaultProxy,
                                                       repo_name: str) -> None:
    """A signature by vouch or cosign over this image's name and digest: its layer's digest is the digest of
    the payload verify builds from them, so the blob is not fetched (sha256 names the bytes); nor is the
    bundle layout read once the legacy one verified."""
    digest = _image(registry, repo_name)
    signer = new_signer()
    with RegistryClient() as direct:
        sign_image(direct, signer, Reference(registry.host, repo_name, None, digest))
    res = verify_image(RegistryClient(), Reference(proxy.host, repo_name, None, digest), [signer.public_key])
    # signed at the registry's own name, verified through the proxy's: the prediction (the proxy's name)
    # misses, the blob is fetched and the signature still verifies (no --check-reference)
    assert res.ok and proxy.count("GET", BLOB) == 1
    proxy.clear()
    with RegistryClient() as c:
        sign_image(c, signer, Reference(proxy.host, repo_name, None, digest))  # now signed under this name too
    proxy.clear()
    res = verify_image(RegistryClient(), Reference(proxy.host, repo_name, None, digest), [signer.public_key])
    assert res.ok and len(res.verified) == 2
    assert proxy.count("GET", BLOB) == 1  # the other name's payload only
    assert proxy.count("GET", FALLBACK) == 0 and proxy.count("GET", "/referrers/") == 0
    assert {c.where for c in res.checks} == {"legacy"}


def test_annotations_not_predicted_are_fetched(registry: RegistryServer, proxy: FaultProxy,
                                                repo_name: str) -> None:
    digest = _image(registry, repo_name)
    signer = new_signer()
    ref = Reference(proxy.host, repo_name, None, digest)
    with RegistryClient() as c:
        sign_image(c, signer, ref, {"release": "2026.04", "team": "akko"})
    proxy.clear()
    res = verify_image(RegistryClient(), ref, [signer.public_key])
    assert res.ok and proxy.count("GET", BLOB) == 1
    assert res.verified[0].payload is not None and res.verified[0].payload["optional"]["team"] == "akko"
    proxy.clear()
    res = verify_image(RegistryClient(), ref, [signer.public_key], {"release": "2026.04", "team": "akko"})
    assert res.ok and proxy.count("GET", BLOB) == 0  # exactly the annotations asked for: predicted


def test_a_predicted_digest_with_another_payloads_signature_is_refused(registry: RegistryServer,
                                                                      proxy: FaultProxy, repo_name: str) -> None:
    """An attacker writes a layer that names the predicted payload's digest but carries a signature the key
    made over another image's payload: the signature is checked over the predicted bytes, and fails."""
    digest = _image(registry, repo_name)
    other = _image(registry, repo_name + "-other")
    signer = new_signer()
    ref = Reference(proxy.host, repo_name, None, digest)
    stolen = signer.sign(simple_signing_payload(ref.docker_reference, other, None))
    expected = simple_signing_payload(ref.docker_reference, digest, None)
    with RegistryClient() as c:
        cfg = b"{}"
        cfg_d = c.push_blob(ref, cfg)
        exp_d = c.push_blob(ref, expected)
        manifest = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_d,
                               "size": len(cfg)},
                    "layers": [{"mediaType": mt.COSIGN_SIMPLESIGNING, "digest": exp_d, "size": len(expected),
                                "annotations": {ANN_SIGNATURE: base64.b64encode(stolen).decode()}}]}
        c.put_manifest(ref.with_tag(tag_for(digest, SIG_SUFFIX)), json.dumps(manifest).encode(), mt.OCI_MANIFEST)
    assert exp_d == "sha256:" + hashlib.sha256(expected).hexdigest()
    proxy.clear()
    res = verify_image(RegistryClient(), ref, [signer.public_key])
    assert not res.ok and "does not verify" in res.reason()
    assert proxy.count("GET", BLOB) == 0  # the predicted bytes were checked, not downloaded


def test_the_bundle_layout_is_read_when_the_legacy_one_does_not_verify(registry: RegistryServer,
                                                                      proxy: FaultProxy, repo_name: str) -> None:
    digest = _image(registry, repo_name)
    ours, stranger = new_signer(), new_signer()
    ref = Reference(proxy.host, repo_name, None, digest)
    with RegistryClient() as c:
        sign_image(c, stranger, ref)  # legacy: someone else's key
        sign_image(c, ours, ref, layouts=("bundle",))
    proxy.clear()
    res = verify_image(RegistryClient(), ref, [ours.public_key])
    assert res.ok and [c.where for c in res.verified] != ["legacy"]
    assert any(not c.ok and c.where == "legacy" for c in res.checks)
    with RegistryClient() as c:
        sign_image(c, ours, ref)  # now in both layouts
    both = verify_image(RegistryClient(), ref, [ours.public_key], exhaustive=True)
    assert {c.where for c in both.verified} == {"legacy", res.verified[0].where}
    first = verify_image(RegistryClient(), ref, [ours.public_key])
    assert {c.where for c in first.verified} == {"legacy"}


def test_a_prefetched_manifest_is_read_once_and_its_error_kept(registry: RegistryServer, proxy: FaultProxy,
                                                               repo_name: str) -> None:
    """prefetch_manifests: the later get_manifest takes the answer already asked for (one GET in all); an
    error is raised, as it was, in the thread that asks; a second ask goes to the registry again; close()
    drops what nobody took."""
    digest = _image(registry, repo_name)
    with RegistryClient() as c:
        sign_image(c, new_signer(), Reference(proxy.host, repo_name, None, digest))
    sig = Reference(proxy.host, repo_name, tag_for(digest, SIG_SUFFIX))
    missing = Reference(proxy.host, repo_name, tag_for("sha256:" + "0" * 64, SIG_SUFFIX))
    proxy.clear()
    client = RegistryClient(RegistryOptions(backoff=0.01, retries=1))
    client.prefetch_manifests([sig, missing], TAG_ACCEPT, 4)
    assert client.get_manifest(sig, TAG_ACCEPT).layers()
    with pytest.raises(NotFoundError):
        client.get_manifest(missing, TAG_ACCEPT)
    assert proxy.count("GET", r"\.sig$") == 2  # one each: taken from the prefetch
    client.get_manifest(sig, TAG_ACCEPT)
    assert proxy.count("GET", r"\.sig$") == 3  # taken once; the next ask is a new request
    proxy.add(Rule("status", "GET", r"\.sig$", times=100, status=503))
    client.prefetch_manifests([sig], TAG_ACCEPT, 1)
    with pytest.raises(RegistryError) as info:
        client.get_manifest(sig, TAG_ACCEPT)
    assert "HTTP 503" in str(info.value)
    client.prefetch_manifests([sig], TAG_ACCEPT, 1)
    client.close()  # not taken: dropped, and nothing waits for it


def test_cli_verify_reads_each_signature_tag_once(registry: RegistryServer, proxy: FaultProxy,
                                                 repo_name: str, tmp_path: Path) -> None:
    """`vouch verify` of images by digest: the signature tags are prefetched while the code and the key load;
    each is read once, no payload is downloaded, a wrong key still fails, an unsigned image is still
    "no signatures found" (exit 1), a missing key file one line (exit 2)."""
    signer = new_signer()
    (tmp_path / "k.pub").write_bytes(public_key_pem(signer.public_key))
    (tmp_path / "other.pub").write_bytes(public_key_pem(new_signer().public_key))
    images = []
    for i in range(3):
        digest = _image(registry, f"{repo_name}-{i}")
        images.append(f"{proxy.host}/{repo_name}-{i}@{digest}")
        with RegistryClient() as c:
            sign_image(c, signer, Reference.parse(images[-1]))
    unsigned = f"{proxy.host}/{repo_name}-u@{_image(registry, f'{repo_name}-u')}"
    proxy.clear()
    r = subprocess.run([sys.executable, "-m", "vouch", "verify", "--key", str(tmp_path / "k.pub"), *images],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)) == 3
    assert proxy.count("GET", r"\.sig$") == 3 and proxy.count("GET", BLOB) == 0
    r = subprocess.run([sys.executable, "-m", "vouch", "verify", "--key", str(tmp_path / "other.pub"), images[0]],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == EXIT_VERIFY and "does not verify" in r.stderr
    r = subprocess.run([sys.executable, "-m", "vouch", "verify", "--key", str(tmp_path / "k.pub"), unsigned],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == EXIT_VERIFY and "no signatures found" in r.stderr
    r = subprocess.run([sys.executable, "-m", "vouch", "verify", "--key", str(tmp_path / "missing.pub"), *images],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_cli_verify_reads_the_bundle_layout_ahead_and_once(registry: RegistryServer, proxy: FaultProxy,
                                                           repo_name: str, tmp_path: Path) -> None:
    """Images signed in the bundle layout only (cosign 3's default): when a `.sig` tag answers 404, the
    prefetch goes on to the referrers fallback tag, then to the bundle manifests and their bundles, for the
    verify threads to take: each is still read once (an answer read ahead and not taken would be read
    twice), and a legacy-signed image's bundle layout is not read at all."""
    signer = new_signer()
    (tmp_path / "k.pub").write_bytes(public_key_pem(signer.public_key))
    images = []
    for i in range(3):
        digest = _image(registry, f"{repo_name}-{i}")
        images.append(f"{proxy.host}/{repo_name}-{i}@{digest}")
        with RegistryClient() as c:
            sign_image(c, signer, Reference.parse(images[-1]), layouts=("bundle",))
    legacy = f"{proxy.host}/{repo_name}-l@{_image(registry, f'{repo_name}-l')}"
    with RegistryClient() as c:
        sign_image(c, signer, Reference.parse(legacy))
    proxy.clear()
    r = subprocess.run([sys.executable, "-m", "vouch", "verify", "--key", str(tmp_path / "k.pub"), *images, legacy],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)) == 4
    gets = [path for method, path, _ in proxy.log if method == "GET"]
    assert len(gets) == len(set(gets)), sorted(gets)  # nothing read twice
    assert proxy.count("GET", r"\.sig$") == 4 and proxy.count("GET", FALLBACK) == 3
    legacy_hex = legacy.rsplit(":", 1)[1]
    assert not [g for g in gets if g.endswith(f"sha256-{legacy_hex}")]
    assert proxy.count("GET", r"/manifests/sha256:[0-9a-f]{64}$") == 3 and proxy.count("GET", BLOB) == 3


def test_a_write_is_never_planned_from_a_prefetched_answer(registry: RegistryServer, repo_name: str) -> None:
    """`vouch release` reads the `.sig` and `.att` tags ahead (RegistryClient.prefetch_manifests). When another
    signer adds a signature after that read and ours must still be written, the write starts from a fresh
    read: the other signer's signature stays (planned from the answer read ahead, it would be lost)."""
    digest = _image(registry, repo_name)
    first, other, ours = new_signer(), new_signer(), new_signer()
    pinned = Reference(registry.host, repo_name, None, digest)
    with RegistryClient() as direct:
        sign_image(direct, first, pinned)
    with RegistryClient() as client:
        tag = Reference(registry.host, repo_name, tag_for(digest, SIG_SUFFIX))
        client.prefetch_manifests([tag], TAG_ACCEPT, 1)
        assert client._prefetched[(str(tag), TAG_ACCEPT)].done.wait(10)  # the answer: `first`'s signature alone
        with RegistryClient() as elsewhere:
            sign_image(elsewhere, other, pinned)  # another writer, after the read ahead
        assert sign_image(client, ours, pinned)[0].signed  # ours is not there yet: a write
        # an answer read ahead that needs no write is still used (the idempotent re-run costs no second read)
        client.prefetch_manifests([tag], TAG_ACCEPT, 1)
        assert client._prefetched[(str(tag), TAG_ACCEPT)].done.wait(10)
        before = client.request_count
        assert not sign_image(client, ours, pinned)[0].signed
        assert client.request_count - before == 1  # the image's HEAD (resolve); the tag's answer was read ahead
    with RegistryClient() as fresh:
        for signer in (first, other, ours):
            assert verify_image(fresh, pinned, [signer.public_key]).ok
