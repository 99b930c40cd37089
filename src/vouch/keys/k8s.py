"""Keys in a Kubernetes Secret, as cosign keeps them (`k8s://NAMESPACE/NAME`).

The Secret is Opaque with data keys `cosign.key`, `cosign.pub`, `cosign.password` and
`immutable: true`; Kyverno reads `cosign.pub` from it. The API is reached with the current
kubeconfig context (token, client certificate, or basic auth; its CA), over httpx.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from vouch.errors import InputError, NotFoundError, RegistryError

PREFIX = "k8s://"


def parse_ref(ref: str) -> tuple[str, str]:
    rest = ref[len(PREFIX):]
    ns, sep, name = rest.partition("/")
    if not sep or not ns or not name or "/" in name:
        raise InputError(f"invalid key reference {ref!r}: write k8s://NAMESPACE/NAME")
    return ns, name


def secret_manifest(namespace: str, name: str, private_pem: bytes, public_pem: bytes,
                    password: bytes) -> dict[str, Any]:
    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "vouch"}},
        "type": "Opaque",
        "immutable": True,
        "data": {"cosign.key": b64(private_pem), "cosign.pub": b64(public_pem), "cosign.password": b64(password)},
    }


@dataclass
class KubeClient:
    server: str
    headers: dict[str, str]
    verify: Any
    cert: tuple[str, str] | None = None

    @staticmethod
    def from_kubeconfig(path: str | None = None) -> KubeClient:
        cfg_path = Path(path or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
                        or Path.home() / ".kube" / "config")
        try:
            cfg = yaml.safe_load(cfg_path.read_text())
        except OSError as exc:
            raise InputError(f"cannot read kubeconfig {cfg_path}: {exc.strerror}; set KUBECONFIG") from exc
        try:
            ctx_name = cfg["current-context"]
            ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
            cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
            users: list[dict[str, Any]] = [u["user"] for u in cfg.get("users") or [] if u["name"] == ctx.get("user")]
            user: dict[str, Any] = (users[0] if users else None) or {}
        except (KeyError, StopIteration, TypeError) as exc:
            raise InputError(f"kubeconfig {cfg_path} has no usable current context") from exc
        headers: dict[str, str] = {}
        if user.get("token"):
            headers["Authorization"] = f"Bearer {user['token']}"
        elif user.get("username") and user.get("password"):
            basic = base64.b64encode(f"{user['username']}:{user['password']}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        verify: Any = True
        if cluster.get("insecure-skip-tls-verify"):
            verify = False
        elif cluster.get("certificate-authority-data"):
            verify = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        elif cluster.get("certificate-authority"):
            verify = ssl.create_default_context(cafile=cluster["certificate-authority"])
        cert = None
        if user.get("client-certificate-data") and user.get("client-key-data"):
            d = Path(tempfile.mkdtemp(prefix="vouch-kube-"))
            (d / "c.pem").write_bytes(base64.b64decode(user["client-certificate-data"]))
            key_file = d / "k.pem"
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(base64.b64decode(user["client-key-data"]))
            cert = (str(d / "c.pem"), str(key_file))
        return KubeClient(str(cluster["server"]).rstrip("/"), headers, verify, cert)

    def _http(self) -> httpx.Client:
        verify = self.verify
        if self.cert is not None:
            ctx = verify if isinstance(verify, ssl.SSLContext) else ssl.create_default_context()
            ctx.load_cert_chain(*self.cert)
            verify = ctx
        return httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0), verify=verify, headers=self.headers)

    def _url(self, namespace: str, name: str | None = None) -> str:
        base = f"{self.server}/api/v1/namespaces/{namespace}/secrets"
        return f"{base}/{name}" if name else base

    def _check(self, resp: httpx.Response, what: str) -> None:
        if resp.status_code in (401, 403):
            raise RegistryError(f"{what}: the Kubernetes API refused the credentials (HTTP {resp.status_code}); "
                                "check the kubeconfig user's RBAC on secrets", resp.status_code)
        if resp.status_code == 404:
            raise NotFoundError(f"{what}: not found", 404)
        if resp.status_code >= 400:
            try:
                msg = resp.json().get("message", "")
            except ValueError:
                msg = resp.text[:200]
            raise RegistryError(f"{what}: Kubernetes API answered HTTP {resp.status_code}: {msg}", resp.status_code)

    def _request(self, method: str, namespace: str, name: str, body: dict[str, Any] | None = None) -> httpx.Response:
        what = f"secret {namespace}/{name}"
        url = self._url(namespace, None if method == "POST" else name)
        try:
            with self._http() as http:
                resp = http.request(method, url, json=body)
        except httpx.HTTPError as exc:
            raise RegistryError(f"{what}: cannot reach the Kubernetes API at {self.server}: {exc}") from exc
        if method == "POST" and resp.status_code == 409:
            raise InputError(f"{what} already exists; refusing to replace a signing key (rotate it instead)")
        self._check(resp, what)
        return resp

    def get_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        data = self._request("GET", namespace, name).json().get("data") or {}
        return {k: base64.b64decode(v) for k, v in data.items()}

    def delete_secret(self, namespace: str, name: str) -> None:
        self._request("DELETE", namespace, name)

    def create_secret(self, manifest: dict[str, Any]) -> None:
        meta = manifest["metadata"]
        self._request("POST", meta["namespace"], meta["name"], manifest)
