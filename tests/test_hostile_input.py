"""Hostile and malformed input from outside: each case gives a VouchError with a one-line message (exit 1/2/3
from the CLI), never another exception, a hang or a partial file. One test per case of issue 12."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import resource
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.images import small_image
from tests.support.keys import new_signer, write_keypair
from vouch.errors import InputError, KeyError_, ReferenceError_, RegistryError, VerificationError, VouchError
from vouch.keys.cosign import decrypt_envelope, encrypt_envelope, load_public_keys, pem_blocks, public_key_pem
from vouch.keys.files import read_key_file, write_new_file
from vouch.keys.k8s import KubeClient
from vouch.oci import mediatypes as mt
from vouch.oci.build import write_layout
from vouch.oci.client import Descriptor
from vouch.oci.reference import is_digest, parse_reference
from vouch.release.plan import load_manifest
from vouch.signing.attestation import INTOTO_PAYLOAD_TYPE, envelope, open_envelope
from vouch.signing.payload import SIGNATURE_TYPE, go_json, parse_payload
from vouch.store.layout import ANN_SIGNATURE, StoredLayer
from vouch.verify.signatures import check_layer
from vouch.yamlsafe import load_yaml

DIGEST = "sha256:" + "ab" * 32


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text, repr(text)
    return text


def vouch(*args: str, cwd: Path | None = None, memory_limit: int | None = None,
          timeout: float = 120) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if memory_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "COSIGN_PASSWORD": "pw"}, stdin=subprocess.DEVNULL, timeout=timeout,
                          preexec_fn=limit if memory_limit is not None else None)


def assert_clean_usage_error(r: subprocess.CompletedProcess[str], fragment: str) -> None:
    """Exit 2 and exactly one line on stderr, 'Error: ...', no traceback."""
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], r.stderr


# ---- simple-signing payloads --------------------------------------------------------------------------------


def _payload(critical: Any = None, optional: Any = None, **over: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "critical": critical if critical is not None else {
            "identity": {"docker-reference": "r.example/a/b"},
            "image": {"docker-manifest-digest": DIGEST},
            "type": SIGNATURE_TYPE,
        },
        "optional": optional,
    }
    obj.update(over)
    return obj


def _check(obj: Any, annotations: dict[str, str] | None = None, docker_reference: str | None = None) -> str:
    """check_layer on a .sig layer whose signature verifies (the attacker holds a trusted key, or the checks
    after the signature must hold on their own): the reason it is refused."""
    signer = new_signer()
    payload = go_json(obj)
    layer = StoredLayer(Descriptor(mt.COSIGN_SIMPLESIGNING, "sha256:" + hashlib.sha256(payload).hexdigest(),
                                   len(payload), {ANN_SIGNATURE: base64.b64encode(signer.sign(payload)).decode()}))
    check = check_layer(layer, payload, DIGEST, [signer.public_key], annotations, docker_reference)
    assert not check.ok
    return check.reason


def test_payload_identity_a_string_is_refused() -> None:
    obj = _payload()
    obj["critical"]["identity"] = "r.example/a/b"
    with pytest.raises(VerificationError) as info:
        parse_payload(go_json(obj))
    assert "critical.identity" in one_line(info.value)
    # the verifier, which reads critical.identity.docker-reference, reports it instead of crashing
    assert "critical.identity" in _check(obj, docker_reference="r.example/a/b")


def test_payload_optional_a_list_is_refused() -> None:
    obj = _payload(optional=["org=akko"])
    with pytest.raises(VerificationError) as info:
        parse_payload(go_json(obj))
    assert "optional" in one_line(info.value)
    assert "optional" in _check(obj, annotations={"org": "akko"})


@pytest.mark.parametrize(("mutate", "where"), [
    (lambda o: o["critical"].pop("identity"), "critical.identity"),
    (lambda o: o["critical"]["identity"].update({"docker-reference": 5}), "docker-reference"),
    (lambda o: o["critical"].update({"image": [DIGEST]}), "critical.image"),
    (lambda o: o["critical"]["image"].update({"docker-manifest-digest": {"sha256": "ab"}}), "docker-manifest-digest"),
    (lambda o: o["critical"].update({"type": None}), "critical.type"),
    (lambda o: o.update({"critical": "x"}), "critical"),
])
def test_payload_shapes_refused(mutate: Any, where: str) -> None:
    obj = _payload()
    mutate(obj)
    with pytest.raises(VerificationError) as info:
        parse_payload(go_json(obj))
    assert where in one_line(info.value)


def test_payload_deeply_nested_json_is_refused() -> None:
    with pytest.raises(VerificationError) as info:
        parse_payload(b'{"optional":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    one_line(info.value)


# ---- DSSE envelopes and in-toto statements -----------------------------------------------------------------


def _statement(**over: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"_type": "https://in-toto.io/Statement/v0.1", "predicateType": "https://cyclonedx.org/bom",
                           "subject": [{"name": "r.example/a/b", "digest": {"sha256": "ab" * 32}}],
                           "predicate": {"bomFormat": "CycloneDX"}}
    obj.update(over)
    return obj


def test_statement_subject_digest_a_string_is_refused() -> None:
    stmt = _statement(subject=[{"name": "r.example/a/b", "digest": "sha256:" + "ab" * 32}])
    env = open_envelope(envelope(new_signer(), go_json(stmt)))
    with pytest.raises(InputError) as info:
        env.statement()
    assert "not an in-toto statement: subject[0].digest" in one_line(info.value)


@pytest.mark.parametrize(("stmt", "where"), [
    (_statement(subject=[]), "subject"),
    (_statement(subject={"name": "x"}), "subject"),
    (_statement(subject=["r.example/a/b"]), "subject[0]"),
    (_statement(subject=[{"name": 1, "digest": {}}]), "subject[0].name"),
    (_statement(subject=[{"name": "x", "digest": {"sha256": 5}}]), "subject[0].digest"),
    (_statement(predicateType=["https://cyclonedx.org/bom"]), "predicateType"),
    (_statement(_type=None), "_type"),
    (["not", "an", "object"], "not a JSON object"),
])
def test_statement_shapes_refused(stmt: Any, where: str) -> None:
    env = open_envelope(envelope(new_signer(), go_json(stmt)))
    with pytest.raises(InputError) as info:
        env.statement()
    assert where in one_line(info.value)


@pytest.mark.parametrize("raw", [
    b"[]", b'"x"', b"null", b'{"payloadType": 1, "payload": ""}', b'{"payloadType": "t", "payload": 5}',
    b'{"payloadType": "t", "payload": "", "signatures": {"sig": ""}}',
    b'{"payloadType": "t", "payload": "", "signatures": ["c2ln"]}',
    b'{"payloadType": "t", "payload": "", "signatures": [{"sig": 5}]}',
    b'{"payloadType": "t", "payload": "\xc3\xa9"}',
    b'{"payloadType": "t", "payload": "", "signatures": [{"sig": "@"}]}',
    b"[" * 50_000, b"\xff\xfe\x00",
    # UTF-16 JSON: json.loads reads it, but `download attestation` prints envelopes as UTF-8
    '{"payloadType": "t", "payload": ""}'.encode("utf-16"),
])
def test_envelope_shapes_refused(raw: bytes) -> None:
    with pytest.raises(InputError) as info:
        open_envelope(raw)
    assert one_line(info.value).startswith("not a DSSE envelope")


def test_envelope_still_opens() -> None:
    env = open_envelope(envelope(new_signer(), go_json(_statement())))
    assert env.payload_type == INTOTO_PAYLOAD_TYPE and env.statement()["subject"][0]["digest"]["sha256"] == "ab" * 32


# ---- image references ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "host.example/repo\n:tag", "host.example/repo:tag\n", "host.example/re\npo", "host.example/repo:t\tag",
    "host.example\n/repo", f"host.example/repo@{DIGEST}\n", "host.example/repo:tag\x00", "alpine\x1b[2J",
    "host.example/repo:tagé", "host.example/repo:٣",
])
def test_reference_with_control_or_non_ascii_characters_refused(text: str) -> None:
    with pytest.raises(ReferenceError_) as info:
        parse_reference(text)
    one_line(info.value)


def test_is_digest_is_anchored() -> None:
    assert is_digest(DIGEST) and not is_digest(DIGEST + "\n")


def test_reference_messages_stay_short() -> None:
    with pytest.raises(ReferenceError_) as info:
        parse_reference("A" * 1_000_000)
    assert len(one_line(info.value)) < 2000


# ---- YAML: release.yaml and kubeconfig ----------------------------------------------------------------------


def billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "images:\n  - alpine\n" + "\n".join(lines) + f"\nrelease: *a{levels}\n"  # 9**10 strings


@pytest.mark.timeout(60)
def test_billion_laughs_release_manifest_is_refused_fast(tmp_path: Path) -> None:
    path = tmp_path / "release.yaml"
    path.write_text(billion_laughs())
    started = time.monotonic()
    with pytest.raises(InputError) as info:
        load_manifest(str(path))
    elapsed = time.monotonic() - started
    assert "uses YAML aliases (&anchor/*alias)" in one_line(info.value), info.value
    print(f"billion laughs refused in {elapsed:.3f} s")
    # and from the CLI, under a memory cap so that a regression cannot take the test machine down
    r = vouch("release", "--key", "unused.key", "--manifest", str(path), memory_limit=1024**3, timeout=50)
    assert_clean_usage_error(r, "uses YAML aliases")


def test_any_anchor_is_refused() -> None:
    with pytest.raises(InputError, match="aliases"):
        load_yaml("images: &x\n  - alpine\n", "release manifest r.yaml")


def test_non_utf8_release_manifest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "release.yaml"
    path.write_bytes(b"release: 2026.04\nimages:\n  - caf\xe9:1\n")
    with pytest.raises(InputError) as info:
        load_manifest(str(path))
    assert f"release manifest {path} is not UTF-8 text" in one_line(info.value)


@pytest.mark.parametrize(("text", "fragment"), [
    ("images:\n  - {ref: alpine, platform: [linux/amd64]}\n", "images[0].platform must be a string"),
    ("images:\n  - {ref: alpine, platform: 5}\n", "images[0].platform must be a string"),
    ("release: [1, 2]\nimages:\n  - alpine\n", "`release:` must be a name or version"),
    ("release: {a: 1}\nimages:\n  - alpine\n", "`release:` must be a name or version"),
    ("release: 2026-13-45\nimages:\n  - alpine\n", "is not valid YAML"),
    ("images:\n  - alpine\n  - x: [\n", "is not valid YAML"),
    ("images:" + " [" * 5000 + "\n", "nested more than"),
    ("images:\n  - alpine\n---\nimages: []\n", "is not valid YAML"),
    ("images:\n  - !!python/object/apply:os.system [true]\n", "is not valid YAML"),
])
def test_release_manifest_shapes_refused(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "release.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_manifest(str(path))
    assert fragment in one_line(info.value)


def test_release_manifest_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "release.yaml"
    path.write_text("release: 2026.04\nimages:\n  - alpine:3.20\n  - {ref: r.example/a/b:1, platform: linux/arm64}\n")
    rel = load_manifest(str(path))
    assert rel.name == "2026.04" and [str(i.ref) for i in rel.images] == ["docker.io/library/alpine:3.20",
                                                                         "r.example/a/b:1"]
    assert rel.images[1].platform == "linux/arm64"


def test_oversized_or_special_release_manifest_refused(tmp_path: Path) -> None:
    path = tmp_path / "release.yaml"
    path.write_bytes(b"images:\n  - alpine\n" + b"#" * (9 * 1024 * 1024) + b"\n")
    with pytest.raises(InputError, match="is larger than"):
        load_manifest(str(path))
    with pytest.raises(InputError, match="is larger than"):
        load_manifest("/dev/zero")  # never read whole
    with pytest.raises(InputError, match="cannot read release manifest"):
        load_manifest(str(tmp_path))


KUBECONFIG = """apiVersion: v1
kind: Config
current-context: test
clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: test, context: {cluster: c, user: u}}]
"""


@pytest.mark.parametrize(("text", "fragment"), [
    (KUBECONFIG.replace("user: {token: t}", "user: just-a-string"), None),
    (KUBECONFIG.replace("cluster: {server: \"http://127.0.0.1:1\"}", "cluster: {}"), "no usable current context"),
    (KUBECONFIG.replace("context: {cluster: c, user: u}", "context: [c, u]"), "no usable current context"),
    (KUBECONFIG.replace("current-context: test", "current-context: [test]"), "no usable current context"),
    (KUBECONFIG.replace("{token: t}", "{token: [t]}"), "token is not a string"),
    (KUBECONFIG.replace("{token: t}", "{token: \"t\\nX-Injected: 1\"}"), "token is not a string"),
    (KUBECONFIG.replace("server: \"http://127.0.0.1:1\"", "server: \"http://127.0.0.1:1\", "
                        "certificate-authority-data: '!!'"), "certificate-authority-data is not base64"),
    (KUBECONFIG.replace("server: \"http://127.0.0.1:1\"", "server: \"http://127.0.0.1:1\", "
                        "certificate-authority-data: 'bm90IGEgY2VydA=='"), "CA certificate does not load"),
    (KUBECONFIG.replace("server: \"http://127.0.0.1:1\"", "server: \"http://127.0.0.1:1\", "
                        "certificate-authority: /nonexistent/ca.pem"), "CA certificate does not load"),
    ("users: &u [{name: u}]\nx: *u\n", "uses YAML aliases"),
    ("- a\n- b\n", "no usable current context"),
    ("\xff", None),
])
def test_kubeconfig_shapes_refused(tmp_path: Path, text: str, fragment: str | None) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(text, encoding="latin-1")
    try:
        KubeClient.from_kubeconfig(str(path))
    except InputError as exc:
        assert fragment is None or fragment in one_line(exc), exc
    else:
        assert fragment is None  # a user that is not an object is no user: no credentials, not a crash


def test_kubernetes_secret_answers_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = KubeClient("http://127.0.0.1:1", {}, True)
    for body in ({"data": {"cosign.pub": "!!not base64"}}, {"data": {"cosign.pub": 5}}, {"data": ["x"]}, "x"):
        monkeypatch.setattr(KubeClient, "_request", lambda *a, body=body, **k: httpx.Response(200, json=body))
        with pytest.raises(RegistryError) as info:
            kube.get_secret("ns", "name")
        one_line(info.value)
    monkeypatch.setattr(KubeClient, "_request", lambda *a, **k: httpx.Response(200, content=b"<html>"))
    with pytest.raises(RegistryError, match="invalid JSON"):
        kube.get_secret("ns", "name")


# ---- files written and read ---------------------------------------------------------------------------------


def test_generate_key_pair_into_missing_directory(tmp_path: Path) -> None:
    r = vouch("generate-key-pair", "--output-key-prefix", "missing/dir/cosign", cwd=tmp_path)
    assert_clean_usage_error(r, "cannot write missing/dir/cosign.key: the directory missing/dir does not exist")
    assert list(tmp_path.iterdir()) == []


def test_public_key_outfile_is_a_directory(tmp_path: Path) -> None:
    priv, _, _ = write_keypair(tmp_path, "k", b"pw")
    (tmp_path / "out").mkdir()
    r = vouch("public-key", "--key", str(priv), "--outfile", str(tmp_path / "out"))
    assert_clean_usage_error(r, "is a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.key", "k.pub", "out"]  # no temp file left
    assert list((tmp_path / "out").iterdir()) == []


def test_sbom_output_file_into_missing_directory(tmp_path: Path) -> None:
    write_layout(tmp_path / "img", small_image("hostile"))
    r = vouch("sbom", f"oci:{tmp_path / 'img'}", "--output-file", str(tmp_path / "missing" / "x.json"))
    assert_clean_usage_error(r, "does not exist")
    assert not (tmp_path / "missing").exists()


def test_write_failure_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "sbom.json"
    target.write_bytes(b"old")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(InputError) as info:
        write_new_file(target, b"new" * 1000, 0o644, force=True)
    assert one_line(info.value) == f"cannot write {target}: No space left on device"
    assert target.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [target]


def test_private_key_is_0600_from_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    modes = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        modes.append(stat.S_IMODE(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    old_umask = os.umask(0)  # a permissive umask must not matter
    try:
        write_new_file(tmp_path / "k.key", b"secret", 0o600, force=False)
    finally:
        os.umask(old_umask)
    assert modes == [0o600] and stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600


def test_no_overwrite_holds_against_a_racing_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The target appears between the existence check and the rename: it is kept, not replaced."""
    target = tmp_path / "cosign.key"
    real_mkstemp = tempfile.mkstemp

    def racing_mkstemp(*a: Any, **k: Any) -> tuple[int, str]:
        target.write_bytes(b"the other writer's key")
        fd, name = real_mkstemp(*a, **k)
        return fd, str(name)

    monkeypatch.setattr(tempfile, "mkstemp", racing_mkstemp)
    with pytest.raises(InputError, match="already exists"):
        write_new_file(target, b"mine", 0o600, force=False)
    assert target.read_bytes() == b"the other writer's key" and sorted(tmp_path.iterdir()) == [target]


def test_reading_special_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        read_key_file(str(tmp_path))
    with pytest.raises(InputError, match="is larger than"):
        read_key_file("/dev/zero", limit=1024)


# ---- cosign key files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mutate", "fragment"), [
    (lambda e: e["kdf"]["params"].update({"N": 1e400}), "kdf.params.N"),
    (lambda e: e["kdf"]["params"].update({"N": "32768"}), "kdf.params.N"),
    (lambda e: e["kdf"]["params"].update({"N": 32768.0}), "kdf.params.N"),
    (lambda e: e["kdf"]["params"].update({"r": True}), "kdf.params.r"),
    (lambda e: e["kdf"].update({"params": [32768, 8, 1]}), "kdf.params"),
    (lambda e: e["kdf"].update({"salt": 5}), "kdf.salt"),
    (lambda e: e["kdf"].update({"name": ["scrypt"]}), "kdf.name"),
    (lambda e: e["cipher"].update({"nonce": "é"}), "not base64"),
    (lambda e: e.update({"cipher": "nacl/secretbox"}), "cipher"),
    (lambda e: e.update({"ciphertext": None}), "ciphertext"),
])
def test_encrypted_envelope_wrong_types(mutate: Any, fragment: str) -> None:
    env = json.loads(encrypt_envelope(b"x", b"pw"))
    mutate(env)
    with pytest.raises(KeyError_) as info:
        decrypt_envelope(json.dumps(env).encode(), b"pw")
    assert fragment in one_line(info.value)


def test_encrypted_envelope_nested_too_deep() -> None:
    with pytest.raises(KeyError_):
        decrypt_envelope(b"[" * 100_000, b"pw")


@pytest.mark.timeout(30)
def test_pem_scan_is_linear() -> None:
    started = time.monotonic()
    assert pem_blocks(b"-----BEGIN PUBLIC KEY-----\n" * 40_000) == []
    with pytest.raises(KeyError_, match="no PEM 'PUBLIC KEY' block"):
        load_public_keys(b"-----BEGIN A-----" * 40_000)
    assert time.monotonic() - started < 20  # was quadratic: minutes for this half megabyte


def test_public_key_bundle_still_reads() -> None:
    a, b = new_signer().public_key, new_signer().public_key
    assert len(load_public_keys(public_key_pem(a) + b"comment\n" + public_key_pem(b))) == 2


def test_vouch_error_is_the_only_failure_for_key_garbage() -> None:
    for data in (b"-----BEGIN PUBLIC KEY-----\n\xff\xfe\n-----END PUBLIC KEY-----\n",
                 b"-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n", b"{}", b""):
        with pytest.raises(VouchError):
            load_public_keys(data)
