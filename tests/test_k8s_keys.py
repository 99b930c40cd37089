"""Keys in a Kubernetes Secret (`vouch keys init`, `k8s://` references).

No Kubernetes API server runs on this machine, so these tests use a loopback HTTP server that speaks the
real API's Secret endpoints (POST/GET /api/v1/namespaces/NS/secrets[/NAME], Bearer token auth, 409 on an
existing name, Status objects on errors) and checks what a real API server would refuse.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.images import small_image
from tests.support.registry import RegistryServer
from vouch.keys.cosign import load_private_key, load_public_keys, public_key_pem
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference

TOKEN = "kube-test-token"


class FakeKubeAPI:
    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _status(self, code: int, reason: str, message: str) -> None:
                self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                                  "reason": reason, "code": code})

            def _route(self) -> tuple[str, str | None] | None:
                parts = self.path.strip("/").split("/")
                if parts[:3] != ["api", "v1", "namespaces"] or len(parts) < 5 or parts[4] != "secrets":
                    return None
                return parts[3], (parts[5] if len(parts) > 5 else None)

            def _auth(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._status(401, "Unauthorized", "Unauthorized")
                    return False
                return True

            def do_GET(self) -> None:
                route = self._route()
                if not self._auth():
                    return
                if route is None or route[1] is None or (route[0], route[1]) not in api.secrets:
                    return self._status(404, "NotFound", f'secrets "{route[1] if route else ""}" not found')
                self._send(200, api.secrets[(route[0], route[1])])

            def do_DELETE(self) -> None:
                route = self._route()
                if not self._auth():
                    return
                if route is None or route[1] is None or (route[0], route[1]) not in api.secrets:
                    return self._status(404, "NotFound", "not found")
                del api.secrets[(route[0], route[1])]
                self._send(200, {"kind": "Status", "status": "Success"})

            def do_POST(self) -> None:
                route = self._route()
                if not self._auth():
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if (route is None or route[1] is not None or body.get("kind") != "Secret"
                        or body.get("apiVersion") != "v1" or body["metadata"].get("namespace") != route[0]):
                    return self._status(400, "BadRequest", "the namespace of the object does not match")
                for v in body.get("data", {}).values():
                    base64.b64decode(v, validate=True)
                key = (route[0], body["metadata"]["name"])
                if key in api.secrets:
                    return self._status(409, "AlreadyExists", f'secrets "{key[1]}" already exists')
                api.secrets[key] = body
                self._send(201, body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubeAPI]:
    api = FakeKubeAPI()
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "test",
           "clusters": [{"name": "c", "cluster": {"server": api.url}}],
           "users": [{"name": "u", "user": {"token": TOKEN}}],
           "contexts": [{"name": "test", "context": {"cluster": "c", "user": "u"}}]}
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    yield api
    api.server.shutdown()


def vouch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "COSIGN_PASSWORD"}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, env=full,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_keys_init_prints_the_secret_as_cosign_writes_it(tmp_path: Path) -> None:
    r = vouch("keys", "init", "--public-key-out", str(tmp_path / "cosign.pub"))
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(r.stdout)
    assert doc["kind"] == "Secret" and doc["type"] == "Opaque" and doc["immutable"] is True
    assert doc["metadata"] == {"name": "akko-cosign-keys", "namespace": "harbor",
                               "labels": {"app.kubernetes.io/managed-by": "vouch"}}
    data = {k: base64.b64decode(v) for k, v in doc["data"].items()}
    assert set(data) == {"cosign.key", "cosign.pub", "cosign.password"}
    assert b"ENCRYPTED SIGSTORE PRIVATE KEY" in data["cosign.key"]
    key = load_private_key(data["cosign.key"], data["cosign.password"])
    assert public_key_pem(key) == data["cosign.pub"] == (tmp_path / "cosign.pub").read_bytes()
    assert len(data["cosign.password"]) >= 32  # a random password when COSIGN_PASSWORD is not set


def test_apply_then_sign_and_verify_with_k8s_refs(kube: FakeKubeAPI, registry: RegistryServer,
                                                  client: RegistryClient, repo_name: str) -> None:
    r = vouch("keys", "init", "--apply", "--namespace", "harbor", "--secret", "akko-cosign-keys")
    assert r.returncode == 0, r.stderr
    assert ("harbor", "akko-cosign-keys") in kube.secrets
    again = vouch("keys", "init", "--apply")
    assert again.returncode == 2 and "already exists" in again.stderr  # never replaced silently
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), small_image("k8s"))
    image = f"{registry.host}/{repo_name}@{digest}"
    r = vouch("sign", "--key", "k8s://harbor/akko-cosign-keys", image)
    assert r.returncode == 0, r.stderr
    r = vouch("verify", "--key", "k8s://harbor/akko-cosign-keys", image)
    assert r.returncode == 0, r.stderr
    pub = base64.b64decode(kube.secrets[("harbor", "akko-cosign-keys")]["data"]["cosign.pub"])
    assert json.loads(r.stdout)[0]["critical"]["image"]["docker-manifest-digest"] == digest
    assert load_public_keys(pub)


def test_k8s_errors_are_one_line(kube: FakeKubeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = vouch("verify", "--key", "k8s://harbor/missing", "127.0.0.1:1/x:y")
    assert r.returncode == 3 and "secret harbor/missing: not found" in r.stderr and "Traceback" not in r.stderr
    r = vouch("verify", "--key", "k8s://harbor", "127.0.0.1:1/x:y")
    assert r.returncode == 2 and "k8s://NAMESPACE/NAME" in r.stderr
    cfg = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
    cfg["users"][0]["user"]["token"] = "wrong"
    (tmp_path / "bad").write_text(yaml.safe_dump(cfg))
    r = vouch("keys", "init", "--apply", env={"KUBECONFIG": str(tmp_path / "bad")})
    assert r.returncode == 3 and "refused the credentials (HTTP 401)" in r.stderr and "wrong" not in r.stderr


def test_rotate_keeps_previous_key_and_overlap(kube: FakeKubeAPI, registry: RegistryServer, client: RegistryClient,
                                               repo_name: str, tmp_path: Path) -> None:
    assert vouch("keys", "init", "--apply").returncode == 0
    old_pub = base64.b64decode(kube.secrets[("harbor", "akko-cosign-keys")]["data"]["cosign.pub"])
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), small_image("rot"))
    image = f"{registry.host}/{repo_name}@{digest}"
    assert vouch("sign", "--key", "k8s://harbor/akko-cosign-keys", image).returncode == 0
    (tmp_path / "release.yaml").write_text(yaml.safe_dump({"images": [image]}))
    r = vouch("keys", "rotate", "--public-key-out", str(tmp_path / "new.pub"), "--previous-key-out",
              str(tmp_path / "old.pub"), "--resign", str(tmp_path / "release.yaml"))
    assert r.returncode == 0, r.stderr
    live = kube.secrets[("harbor", "akko-cosign-keys")]["data"]
    previous = kube.secrets[("harbor", "akko-cosign-keys-previous")]["data"]
    assert base64.b64decode(previous["cosign.pub"]) == old_pub  # the old key is kept
    # cosign.pub is the new key alone (stock cosign reads one key); the previous one stands beside it
    assert len(load_public_keys(base64.b64decode(live["cosign.pub"]))) == 1
    assert base64.b64decode(live["cosign.previous.pub"]) == old_pub
    assert (tmp_path / "new.pub").read_bytes() == base64.b64decode(live["cosign.pub"])
    assert (tmp_path / "old.pub").read_bytes() == old_pub
    # during the overlap the image carries both signatures; each key alone verifies it
    new_only, old_only = tmp_path / "new.pub", tmp_path / "old.pub"
    assert public_key_pem(load_public_keys(new_only.read_bytes())[0]) == new_only.read_bytes()
    for key in (str(new_only), str(old_only), "k8s://harbor/akko-cosign-keys"):
        assert vouch("verify", "--key", key, image).returncode == 0, key
    r = vouch("verify-attestation", "--key", str(new_only), "--type", "cyclonedx", image)
    assert r.returncode == 0, r.stderr
