"""`vouch verify` of many images in one invocation (the images are verified in parallel over one registry
client): every image gets its own result, in the order given, whatever the concurrency; one bad image
fails the command (exit 1) without hiding the others' results. Against the real registries of the test
bed (two of them, so one client talks to two hosts), in both layouts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.images import small_image
from tests.support.keys import write_keypair
from tests.support.registry import RegistryServer
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.signing.sign import sign_image


def vouch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL, env={**os.environ, "COSIGN_PASSWORD": "pw"})


def _push(client: RegistryClient, host: str, repo: str, label: str) -> str:
    ref = Reference(host, repo, "v1")
    return f"{host}/{repo}@{push_image(client, ref, small_image(label))}"


@pytest.fixture
def release(registry: RegistryServer, registry2: RegistryServer, client: RegistryClient, repo_name: str,
            tmp_path: Path) -> tuple[Path, list[str], dict[str, str]]:
    """Nine images on two registries: seven signed with the key (one in the bundle layout), one unsigned and
    one signed with another key. Returns the public key, the images in a fixed order, the bad ones' reasons."""
    _, pub, signer = write_keypair(tmp_path, "release")
    _, _, stranger = write_keypair(tmp_path, "stranger")
    images = []
    for i in range(9):
        host = (registry if i % 2 else registry2).host
        images.append(_push(client, host, f"{repo_name}/app{i}", f"many-{i}"))
    unsigned, foreign, bundled = images[3], images[6], images[1]
    for image in images:
        if image == unsigned:
            continue
        layouts = ("bundle",) if image == bundled else ("legacy",)
        sign_image(client, stranger if image == foreign else signer, Reference.parse(image), layouts=layouts)
    return pub, images, {unsigned: "no signatures found", foreign: "signature does not verify with the given key"}


def test_many_images_each_judged_in_input_order(release: tuple[Path, list[str], dict[str, str]]) -> None:
    pub, images, bad = release
    outputs = []
    for concurrency in ("1", "3", "16"):
        r = vouch("verify", "--key", str(pub), "--concurrency", concurrency, "-o", "json", *images)
        assert r.returncode == 1, r.stderr  # a verification said no: exit 1 (not 3, not a traceback)
        assert "Traceback" not in r.stderr
        results = json.loads(r.stdout)
        assert [x["image"] for x in results] == images
        for x in results:
            assert x["verified"] is (x["image"] not in bad), x
            if x["image"] in bad:
                assert bad[x["image"]] in x["reason"]
            else:
                assert x["reason"] == ""
                [sig] = [s for s in x["signatures"] if s["ok"]]
                assert sig["payload"]["critical"]["image"]["docker-manifest-digest"] == x["digest"]
        # stderr: each image's verdict once, in input order; the bad ones as one-line errors
        lines = r.stderr.splitlines()
        order = [next(i for i, line in enumerate(lines) if image in line) for image in images]
        assert order == sorted(order), r.stderr
        for image, why in bad.items():
            [line] = [line for line in lines if line.startswith(f"Error: {image}: ")]
            assert why in line
        outputs.append(results)
    assert outputs[0] == outputs[1] == outputs[2]  # the concurrency changes nothing but the time


def test_many_good_images_print_cosigns_array_in_input_order(release: tuple[Path, list[str], dict[str, str]]) -> None:
    pub, images, bad = release
    good = [i for i in images if i not in bad]
    r = vouch("verify", "--key", str(pub), *reversed(good))
    assert r.returncode == 0, r.stderr
    payloads = json.loads(r.stdout)
    assert [p["critical"]["image"]["docker-manifest-digest"] for p in payloads] == \
        [i.rsplit("@", 1)[1] for i in reversed(good)]
    assert r.stderr.count("Verification for ") == len(good)


def test_a_missing_image_among_many_is_a_registry_error(registry: RegistryServer,
                                                         release: tuple[Path, list[str], dict[str, str]]) -> None:
    """As before parallel verification: an image that is not there stops the command with one line, exit 3."""
    pub, images, _ = release
    missing = f"{registry.host}/nothing/here@sha256:{'0' * 64}"
    r = vouch("verify", "--key", str(pub), *images[:2], missing, *images[2:])
    assert r.returncode == 3, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("Error: image ") and "not found" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
