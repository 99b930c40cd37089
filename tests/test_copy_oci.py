"""`vouch copy` to and from `oci:DIR[:TAG]` layouts, with signatures, attestations and bundles: registry →
layout → another registry keeps every digest and stock cosign 3 verifies at the end; several images share a
layout by tag; a tag already in the layout is merged, not replaced; a re-run writes nothing; a corrupt source
blob is never renamed into place. Real docker-registry instances, real cosign."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.faultproxy import FaultProxy, Rule
from tests.support.images import small_image, two_platform_index
from tests.support.keys import write_keypair
from tests.support.peers import peer, run_peer
from tests.support.registry import RegistryServer
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.store.layout import SIG_SUFFIX, read_tag, tag_for

pytestmark = pytest.mark.interop
REF_NAME = "org.opencontainers.image.ref.name"


def vouch(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COSIGN_PASSWORD": "pw"}
    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, env=env,
                          timeout=300, stdin=subprocess.DEVNULL)


def ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}"
    return r


def entries(layout: Path) -> list[dict[str, object]]:
    return list(json.loads((layout / "index.json").read_text())["manifests"])


def named(layout: Path, name: str) -> dict[str, object]:
    return next(e for e in entries(layout) if (e.get("annotations") or {}).get(REF_NAME) == name)  # type: ignore[union-attr]


def files(d: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(d)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(d.rglob("*"))
            if p.is_file()}


def test_registry_to_layout_to_registry(registry: RegistryServer, registry2: RegistryServer,
                                        client: RegistryClient, repo_name: str, tmp_path: Path) -> None:
    priv, pub, _ = write_keypair(tmp_path, "k")
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), two_platform_index("copy-oci"))
    src = f"{registry.host}/{repo_name}@{digest}"
    ok(vouch("sign", "--key", str(priv), "--recursive", "--layout", "both", src))
    layout = tmp_path / "layout"
    doc = json.loads(ok(vouch("-o", "json", "copy", src, f"oci:{layout}:v1")).stdout)
    assert doc["digest"] == digest
    assert doc["attachments"]["added"]["sig"] == 3 and doc["attachments"]["added"]["bundle"] == 3
    assert named(layout, "v1")["digest"] == digest
    assert (layout / "oci-layout").read_text() == '{"imageLayoutVersion": "1.0.0"}'
    before = files(layout)
    again = json.loads(ok(vouch("-o", "json", "copy", src, f"oci:{layout}:v1")).stdout)
    assert sum(again["attachments"]["added"].values()) == 0
    assert files(layout) == before  # nothing rewritten, not even index.json
    # the layout's digest and its attachments, into another registry
    dst = f"{registry2.host}/{repo_name}"
    back = json.loads(ok(vouch("-o", "json", "copy", f"oci:{layout}:v1", f"{dst}:v1")).stdout)
    assert back["digest"] == digest
    assert back["attachments"]["added"]["sig"] == 3 and back["attachments"]["added"]["bundle"] == 3
    assert client.resolve(Reference(registry2.host, repo_name, "v1")).digest == digest
    home = tmp_path / "home"
    cosign3 = peer("cosign3")
    platforms = [c.digest for c in client.get_manifest(Reference(registry.host, repo_name, None, digest)).children()]
    for d in [digest, *platforms]:
        assert client.head_manifest(Reference(registry2.host, repo_name, None, d)) is not None
        run_peer(cosign3, "verify", "--key", str(pub), "--insecure-ignore-tlog=true", "--allow-insecure-registry",
                 f"{dst}@{d}", home=home)  # the bundle
        run_peer(cosign3, "verify", "--key", str(pub), "--new-bundle-format=false", "--insecure-ignore-tlog=true",
                 "--allow-insecure-registry", f"{dst}@{d}", home=home)  # the legacy .sig
    # layout to layout: the same entries, byte for byte
    copy2 = tmp_path / "copy2"
    ok(vouch("copy", f"oci:{layout}:v1", f"oci:{copy2}:v1"))
    for d in [digest, *platforms]:
        name = tag_for(d, SIG_SUFFIX)
        assert named(copy2, name)["digest"] == named(layout, name)["digest"]


def test_layout_holds_several_images_and_merges_tags(registry: RegistryServer, registry2: RegistryServer,
                                                     client: RegistryClient, repo_name: str, tmp_path: Path) -> None:
    a_priv, a_pub, _ = write_keypair(tmp_path, "a")
    b_priv, b_pub, _ = write_keypair(tmp_path, "b")
    one = push_image(client, Reference(registry.host, repo_name, "one"), small_image("one"))
    two = push_image(client, Reference(registry.host, repo_name, "two"), small_image("two"))
    for d in (one, two):
        ok(vouch("sign", "--key", str(a_priv), f"{registry.host}/{repo_name}@{d}"))
    layout = tmp_path / "layout"
    ok(vouch("copy", f"{registry.host}/{repo_name}@{one}", f"oci:{layout}:one"))
    ok(vouch("copy", f"{registry.host}/{repo_name}@{two}", f"oci:{layout}:two"))
    assert named(layout, "one")["digest"] == one and named(layout, "two")["digest"] == two
    # cosign's marks follow the image written last; the first keeps its named entries
    marked = {e["digest"] for e in entries(layout) if (e.get("annotations") or {}).get("kind")}  # type: ignore[union-attr]
    assert two in marked and one not in marked
    first_sig = named(layout, tag_for(one, SIG_SUFFIX))["digest"]
    # a second signer at the source: the layout's tag gets both, the old manifest stays as a blob
    ok(vouch("sign", "--key", str(b_priv), f"{registry.host}/{repo_name}@{one}"))
    doc = json.loads(ok(vouch("-o", "json", "copy", f"{registry.host}/{repo_name}@{one}",
                              f"oci:{layout}:one")).stdout)
    assert doc["attachments"]["added"]["sig"] == 1 and doc["attachments"]["alreadyPresent"]["sig"] == 1
    merged = named(layout, tag_for(one, SIG_SUFFIX))
    assert merged["digest"] != first_sig and (layout / "blobs" / "sha256" / first_sig.split(":")[1]).is_file()
    # what the layout held and what the source added: both verify after the copy out, by tag
    ok(vouch("copy", f"oci:{layout}:one", f"{registry2.host}/{repo_name}:one"))
    assert len(read_tag(client, Reference(registry2.host, repo_name), tag_for(one, SIG_SUFFIX)).layers) == 2
    for pub in (a_pub, b_pub):
        ok(vouch("verify", "--key", str(pub), f"{registry2.host}/{repo_name}@{one}"))
    run_peer(peer("cosign3"), "verify", "--key", str(b_pub), "--new-bundle-format=false",
             "--insecure-ignore-tlog=true", "--allow-insecure-registry", f"{registry2.host}/{repo_name}@{one}",
             home=tmp_path / "home")
    untagged = json.loads(ok(vouch("-o", "json", "copy", f"oci:{layout}", f"{registry2.host}/{repo_name}:x")).stdout)
    assert untagged["digest"] == one  # no tag: the image cosign's marks name, the one written last (one, again)
    r = vouch("copy", f"oci:{layout}:three", f"{registry2.host}/{repo_name}:x")
    assert r.returncode == 2 and "no image tagged 'three'" in r.stderr


def test_corrupt_source_blob_is_never_renamed_into_the_layout(proxy: FaultProxy, registry: RegistryServer,
                                                              client: RegistryClient, repo_name: str,
                                                              tmp_path: Path) -> None:
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), small_image("corrupt-src"))
    layer = client.get_manifest(Reference(registry.host, repo_name, None, digest)).layers()[0].digest
    proxy.add(Rule("corrupt", "GET", rf"/blobs/{layer}", times=100))
    layout = tmp_path / "layout"
    r = vouch("copy", f"{proxy.host}/{repo_name}@{digest}", f"oci:{layout}:v1")
    assert r.returncode in (2, 3) and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, \
        r.stderr
    assert not (layout / "blobs" / "sha256" / layer.split(":")[1]).exists()
    assert not list(layout.rglob(".vouch-tmp-*"))  # no temporary file left behind
    assert entries(layout) == []  # index.json names nothing: the image is not half there
    proxy.clear()
    ok(vouch("copy", f"{proxy.host}/{repo_name}@{digest}", f"oci:{layout}:v1"))  # a re-run completes it
    assert named(layout, "v1")["digest"] == digest
    # a corrupt blob in a source layout: a layout-to-layout copy refuses it the same way
    p = layout / "blobs" / "sha256" / layer.split(":")[1]
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF
    p.write_bytes(bytes(data))
    out = tmp_path / "out"
    r = vouch("copy", f"oci:{layout}:v1", f"oci:{out}:v1")
    assert r.returncode == 2 and "does not match its digest" in r.stderr, r.stderr
    assert not (out / "blobs" / "sha256" / layer.split(":")[1]).exists() and entries(out) == []
    bad = vouch("copy", f"{registry.host}/{repo_name}@{digest}", "oci:")
    assert bad.returncode == 2 and "oci: needs a directory" in bad.stderr
