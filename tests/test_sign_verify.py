"""Signing and verification against the real registry, the shared vectors, and tampering."""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
from pathlib import Path

import pytest

from tests.conftest import VECTORS
from tests.support.images import small_image, two_platform_index
from tests.support.keys import new_signer
from tests.support.registry import RegistryServer
from vouch.keys.cosign import load_public_keys
from vouch.oci import mediatypes as mt
from vouch.oci.build import push_image
from vouch.oci.client import Descriptor, RegistryClient
from vouch.oci.reference import Reference
from vouch.signing.payload import simple_signing_payload
from vouch.signing.sign import sign_image
from vouch.store.layout import ANN_SIGNATURE, SIG_SUFFIX, StoredLayer, read_tag, tag_for
from vouch.verify.signatures import check_layer, cosign_output, verify_image

SIGS = VECTORS / "cosign-signatures"


def _vector_layers(folder: Path) -> list[tuple[StoredLayer, bytes]]:
    out = []
    for f in sorted(folder.glob("signature-*")):
        raw = f.read_bytes()
        assert raw.startswith(b"\x00sigstore-json\n")
        obj = json.loads(raw[len(b"\x00sigstore-json\n"):])
        payload = base64.b64decode(obj["payload"])
        desc = Descriptor(obj["mimeType"], "sha256:" + hashlib.sha256(payload).hexdigest(), len(payload),
                          obj["annotations"])
        out.append((StoredLayer(desc, payload), payload))
    return out


@pytest.mark.parametrize("folder", ["dir-img-cosign-valid", "dir-img-cosign-valid-2"])
def test_vectors_verify(folder: str) -> None:
    keys = load_public_keys((SIGS / "cosign.pub").read_bytes())
    digest = "sha256:" + hashlib.sha256((SIGS / folder / "manifest.json").read_bytes()).hexdigest()
    layers = _vector_layers(SIGS / folder)
    assert layers
    for layer, payload in layers:
        check = check_layer(layer, payload, digest, keys, None, None)
        assert check.ok, check.reason
        assert check.payload is not None and check.payload["optional"] is None


def test_vectors_tampering_refused() -> None:
    keys = load_public_keys((SIGS / "cosign.pub").read_bytes())
    folder = SIGS / "dir-img-cosign-valid"
    manifest = bytearray((folder / "manifest.json").read_bytes())
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    layer, payload = _vector_layers(folder)[0]
    # one flipped bit in the payload
    bad = bytearray(payload)
    bad[10] ^= 1
    assert not check_layer(layer, bytes(bad), digest, keys, None, None).ok
    # one flipped bit in the signature
    sig = bytearray(base64.b64decode(layer.annotations[ANN_SIGNATURE]))
    sig[-1] ^= 1
    bad_layer = StoredLayer(Descriptor(layer.descriptor.media_type, layer.descriptor.digest, layer.descriptor.size,
                                       {ANN_SIGNATURE: base64.b64encode(bytes(sig)).decode()}))
    assert not check_layer(bad_layer, payload, digest, keys, None, None).ok
    # one flipped bit in the manifest: another digest
    manifest[5] ^= 1
    other = "sha256:" + hashlib.sha256(manifest).hexdigest()
    r = check_layer(layer, payload, other, keys, None, None)
    assert not r.ok and "not this image" in r.reason
    # wrong key
    r = check_layer(layer, payload, digest, [new_signer().public_key], None, None)
    assert not r.ok and "does not verify" in r.reason
    # missing annotation
    r = check_layer(StoredLayer(Descriptor(layer.descriptor.media_type, layer.descriptor.digest, 1, {})), payload,
                    digest, keys, None, None)
    assert not r.ok and "annotation" in r.reason
    # containers/image's docker-reference check
    r = check_layer(layer, payload, digest, keys, None, "example.com/other")
    assert not r.ok and "docker-reference" in r.reason


def test_payload_bytes_exactly_like_cosign() -> None:
    d = "sha256:" + "ab" * 32
    assert simple_signing_payload("r.example/a/b", d, None) == (
        b'{"critical":{"identity":{"docker-reference":"r.example/a/b"},"image":{"docker-manifest-digest":"'
        + d.encode() + b'"},"type":"cosign container image signature"},"optional":null}')
    assert simple_signing_payload("r/a", d, {"z": "1", "a": "<&>"}).endswith(
        b'"optional":{"a":"\\u003c\\u0026\\u003e","z":"1"}}')


def _push(registry: RegistryServer, client: RegistryClient, repo: str) -> Reference:
    ref = Reference(registry.host, repo, "v1")
    push_image(client, ref, small_image("sign"))
    return ref


def test_sign_verify_roundtrip_and_idempotent(registry: RegistryServer, client: RegistryClient,
                                              repo_name: str) -> None:
    ref = _push(registry, client, repo_name)
    signer = new_signer()
    warnings: list[str] = []
    [r1] = sign_image(client, signer, ref, warn=warnings.append)
    assert r1.signed and warnings and "uses a tag" in warnings[0]
    res = verify_image(client, ref, [signer.public_key])
    assert res.ok and len(res.verified) == 1
    out = json.loads(cosign_output([res]))
    assert out[0]["critical"]["image"]["docker-manifest-digest"] == r1.digest
    assert out[0]["critical"]["identity"]["docker-reference"] == f"{registry.host}/{repo_name}"
    # re-signing: no new layer, no manifest write
    before = read_tag(client, Reference(registry.host, repo_name), tag_for(r1.digest, SIG_SUFFIX))
    puts_before = client.request_count
    [r2] = sign_image(client, signer, ref.with_digest(r1.digest))
    assert not r2.signed
    after = read_tag(client, Reference(registry.host, repo_name), tag_for(r1.digest, SIG_SUFFIX))
    assert after.manifest is not None and before.manifest is not None
    assert after.manifest.digest == before.manifest.digest
    assert client.request_count - puts_before <= 3  # HEAD image, GET .sig manifest (+ maybe nothing else)


def test_second_key_appends_and_rotation_bundle(registry: RegistryServer, client: RegistryClient,
                                                repo_name: str) -> None:
    ref = _push(registry, client, repo_name)
    old, new = new_signer(), new_signer()
    sign_image(client, old, ref)
    sign_image(client, new, ref)
    state = read_tag(client, Reference(registry.host, repo_name), tag_for(client.resolve(ref).digest, SIG_SUFFIX))
    assert len(state.layers) == 2
    assert state.layers[0].descriptor.digest == state.layers[1].descriptor.digest  # same payload, two keys
    assert verify_image(client, ref, [old.public_key]).ok
    assert verify_image(client, ref, [new.public_key]).ok
    res = verify_image(client, ref, [new.public_key, old.public_key])
    assert len(res.verified) == 2


def test_annotations(registry: RegistryServer, client: RegistryClient, repo_name: str) -> None:
    ref = _push(registry, client, repo_name)
    signer = new_signer()
    sign_image(client, signer, ref, {"release": "2026.04", "team": "akko"})
    assert verify_image(client, ref, [signer.public_key], {"release": "2026.04"}).ok
    res = verify_image(client, ref, [signer.public_key], {"release": "2026.05"})
    assert not res.ok and "annotation release" in res.reason()


def test_recursive_index(registry: RegistryServer, client: RegistryClient, repo_name: str) -> None:
    ref = Reference(registry.host, repo_name, "multi")
    index = two_platform_index()
    push_image(client, ref, index)
    signer = new_signer()
    results = sign_image(client, signer, ref, recursive=True)
    assert [r.digest for r in results] == [index.digest] + [i.digest for i in index.images]
    for d in [index.digest] + [i.digest for i in index.images]:
        assert verify_image(client, ref.with_digest(d), [signer.public_key]).ok


def test_unsigned_and_wrong_key(registry: RegistryServer, client: RegistryClient, repo_name: str) -> None:
    ref = _push(registry, client, repo_name)
    res = verify_image(client, ref, [new_signer().public_key])
    assert not res.ok and "no signatures found" in res.reason()
    sign_image(client, new_signer(), ref)
    res = verify_image(client, ref, [new_signer().public_key])
    assert not res.ok and "does not verify" in res.reason()


def test_sig_copied_onto_another_image_refused(registry: RegistryServer, client: RegistryClient,
                                               repo_name: str) -> None:
    a = _push(registry, client, repo_name)
    b = Reference(registry.host, repo_name, "v2")
    push_image(client, b, small_image("other"))
    signer = new_signer()
    [ra] = sign_image(client, signer, a)
    repo = Reference(registry.host, repo_name)
    sig_manifest = client.get_manifest(repo.with_tag(tag_for(ra.digest, SIG_SUFFIX)))
    client.put_manifest(repo.with_tag(tag_for(client.resolve(b).digest, SIG_SUFFIX)), sig_manifest.raw,
                        mt.OCI_MANIFEST)
    res = verify_image(client, b, [signer.public_key])
    assert not res.ok and "not this image" in res.reason()


def test_docker_media_type_sig_manifest_refused(registry: RegistryServer, client: RegistryClient,
                                                repo_name: str) -> None:
    ref = _push(registry, client, repo_name)
    signer = new_signer()
    [r] = sign_image(client, signer, ref)
    repo = Reference(registry.host, repo_name)
    tag = tag_for(r.digest, SIG_SUFFIX)
    m = json.loads(client.get_manifest(repo.with_tag(tag)).raw)
    m["mediaType"] = mt.DOCKER_MANIFEST
    m["config"]["mediaType"] = mt.DOCKER_CONFIG
    client.put_manifest(repo.with_tag(tag), json.dumps(m).encode(), mt.DOCKER_MANIFEST)
    res = verify_image(client, ref, [signer.public_key])
    assert not res.ok and "containers/image refuses Docker media types" in res.reason()


def test_oversized_payload_refused(registry: RegistryServer, client: RegistryClient, repo_name: str) -> None:
    ref = _push(registry, client, repo_name)
    digest = client.resolve(ref).digest
    signer = new_signer()
    big = simple_signing_payload(ref.docker_reference, digest, {"pad": "x" * (2 * 1024 * 1024)})
    sig = base64.b64encode(signer.sign(big)).decode()
    repo = Reference(registry.host, repo_name)
    client.push_blob(repo, big)
    from vouch.store.layout import build_manifest

    raw = build_manifest(client, repo, [Descriptor(mt.COSIGN_SIMPLESIGNING, "sha256:" + hashlib.sha256(big).hexdigest(),
                                                   len(big), {ANN_SIGNATURE: sig})])
    client.put_manifest(repo.with_tag(tag_for(digest, SIG_SUFFIX)), raw, mt.OCI_MANIFEST)
    res = verify_image(client, ref, [signer.public_key])
    assert not res.ok and "over the" in res.reason()


def _sign_in_process(host: str, repo: str, digest: str, seed: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.derive_private_key(seed, ec.SECP256R1())
    from vouch.signing.signer import KeySigner

    with RegistryClient() as c:
        [r] = sign_image(c, KeySigner(key), Reference(host, repo, None, digest))
    out.put(r.signed)


def test_concurrent_signers_both_land(registry: RegistryServer, client: RegistryClient, repo_name: str) -> None:
    """Several processes sign the same digest at once with different keys: every signature ends up there."""
    from cryptography.hazmat.primitives.asymmetric import ec

    ref = _push(registry, client, repo_name)
    digest = client.resolve(ref).digest
    ctx = multiprocessing.get_context("spawn")
    q: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    seeds = [1001, 2002, 3003, 4004]
    procs = [ctx.Process(target=_sign_in_process, args=(registry.host, repo_name, digest, s, q)) for s in seeds]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert sorted(q.get() for _ in seeds) == [True] * len(seeds)
    keys = [ec.derive_private_key(s, ec.SECP256R1()).public_key() for s in seeds]
    for k in keys:
        assert verify_image(client, ref, [k]).ok
    state = read_tag(client, Reference(registry.host, repo_name), tag_for(digest, SIG_SUFFIX))
    assert len(state.layers) == len(seeds)
