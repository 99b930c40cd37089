"""Keys in a Kubernetes Secret, as cosign keeps them (`k8s://NAMESPACE/NAME`).

The Secret is Opaque with data keys `cosign.key`, `cosign.pub`, `cosign.password` and
`immutable: true`; Kyverno reads `cosign.pub` from it. The API is reached with the current
kubeconfig context (token, client certificate, or basic auth; its CA), over httpx.
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vouch.errors import InputError, NotFoundError, RegistryError
from vouch.lean_httpx import httpx
from vouch.yamlsafe import load_yaml, read_limited

PREFIX = "k8s://"


def parse_ref(ref: str) -> tuple[str, str]:
    rest = ref[len(PREFIX):]
    ns, sep, name = rest.partition("/")
    if not sep or not ns or not name or "/" in name:
        raise InputError(f"invalid key reference {ref!r}: write k8s://NAMESPACE/NAME")
    return ns, name


PREVIOUS_PUB = "cosign.previous.pub"  # the previous public key during a rotation overlap (vouch reads it too)


def secret_manifest(namespace: str, name: str, private_pem: bytes, public_pem: bytes,
                    password: bytes, previous_public_pem: bytes | None = None) -> dict[str, Any]:
    """The key Secret: cosign.key/.pub/.password as cosign reads them (cosign.pub always the single current
    key, so stock `cosign verify --key k8s://…` works); during an overlap also cosign.previous.pub."""
    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode()

    data = {"cosign.key": b64(private_pem), "cosign.pub": b64(public_pem), "cosign.password": b64(password)}
    if previous_public_pem:
        data[PREVIOUS_PUB] = b64(previous_public_pem)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "vouch"}},
        "type": "Opaque",
        "immutable": True,
        "data": data,
    }


def _named(items: Any, name: Any, field: str) -> dict[str, Any] | None:
    """The `field` object of the entry called name in a kubeconfig list (contexts, clusters, users)."""
    if not isinstance(items, list) or not isinstance(name, str) or not name:
        return None
    for item in items:
        if isinstance(item, dict) and item.get("name") == name:
            value = item.get(field)
            return value if isinstance(value, dict) else None
    return None


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
            raw = read_limited(cfg_path)
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise InputError(f"cannot read kubeconfig {cfg_path}: {why}; set KUBECONFIG") from exc
        cfg = load_yaml(raw, f"kubeconfig {cfg_path}")
        ctx = cluster = None
        if isinstance(cfg, dict):
            ctx = _named(cfg.get("contexts"), cfg.get("current-context"), "context")
            cluster = _named(cfg.get("clusters"), ctx.get("cluster"), "cluster") if ctx else None
        if ctx is None or cluster is None or not isinstance(cluster.get("server"), str) or not cluster["server"]:
            raise InputError(f"kubeconfig {cfg_path} has no usable current context")
        assert isinstance(cfg, dict)
        user = _named(cfg.get("users"), ctx.get("user"), "user") or {}

        def text(obj: dict[str, Any], field: str) -> str | None:
            value = obj.get(field)
            if value is None or value == "":
                return None
            if not isinstance(value, str) or not value.isprintable():
                raise InputError(f"kubeconfig {cfg_path}: {field} is not a string of printable characters")
            return value

        def b64(obj: dict[str, Any], field: str) -> bytes | None:
            value = text(obj, field)
            if value is None:
                return None
            try:
                return base64.b64decode(value, validate=True)
            except ValueError as exc:
                raise InputError(f"kubeconfig {cfg_path}: {field} is not base64") from exc

        headers: dict[str, str] = {}
        token, username, password = text(user, "token"), text(user, "username"), text(user, "password")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif username and password:
            basic = base64.b64encode(f"{username}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        verify: Any = True
        ca_data, ca_file = b64(cluster, "certificate-authority-data"), text(cluster, "certificate-authority")
        try:
            if cluster.get("insecure-skip-tls-verify") is True:
                verify = False
            elif ca_data:
                verify = ssl.create_default_context(cadata=ca_data.decode())
            elif ca_file:
                verify = ssl.create_default_context(cafile=ca_file)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError; non-UTF-8 PEM a ValueError
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else " ".join(str(exc).split())
            raise InputError(f"kubeconfig {cfg_path}: the cluster's CA certificate does not load: {why}") from exc
        cert = None
        cert_data, key_data = b64(user, "client-certificate-data"), b64(user, "client-key-data")
        if cert_data and key_data:
            d = Path(tempfile.mkdtemp(prefix="vouch-kube-"))  # 0700; ssl reads a cert chain from files only
            atexit.register(shutil.rmtree, d, ignore_errors=True)  # the client key does not outlive the process
            (d / "c.pem").write_bytes(cert_data)
            key_file = d / "k.pem"
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key_data)
            cert = (str(d / "c.pem"), str(key_file))
        return KubeClient(str(cluster["server"]).rstrip("/"), headers, verify, cert)

    def _http(self) -> httpx.Client:
        verify = self.verify
        if self.cert is not None:
            ctx = verify if isinstance(verify, ssl.SSLContext) else ssl.create_default_context()
            try:
                ctx.load_cert_chain(*self.cert)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                raise InputError("the kubeconfig's client-certificate-data and client-key-data do not load as a "
                                 "PEM certificate and key") from exc
            verify = ctx
        return httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0), verify=verify, headers=self.headers)

    def _url(self, namespace: str, name: str | None = None) -> str:
        base = f"{self.server}/api/v1/namespaces/{namespace}/secrets"
        return f"{base}/{name}" if name else base

    @staticmethod
    def _message(resp: httpx.Response) -> str:
        """The Status message of an error answer, on one line, printable, bounded."""
        try:
            body = resp.json()
            msg = str(body.get("message", "")) if isinstance(body, dict) else ""
        except ValueError:
            msg = resp.text
        return "".join(c for c in " ".join(msg.split()) if c.isprintable())[:300]

    def _check(self, resp: httpx.Response, what: str) -> None:
        if resp.status_code == 401:
            raise RegistryError(f"{what}: the Kubernetes API refused the credentials (HTTP 401); check the "
                                "kubeconfig user's token or certificate", resp.status_code)
        if resp.status_code == 403:
            namespace = what.removeprefix("secret ").split("/")[0]
            raise RegistryError(f"{what}: the Kubernetes API forbids it (HTTP 403: {self._message(resp)}); grant the "
                                f"kubeconfig user get on secrets in {namespace} (and create, delete for keys init "
                                "and rotate)", resp.status_code)
        if resp.status_code == 404:
            raise NotFoundError(f"{what}: not found", 404)
        if resp.status_code >= 400:
            raise RegistryError(f"{what}: Kubernetes API answered HTTP {resp.status_code}: {self._message(resp)}",
                                resp.status_code)

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
        what = f"secret {namespace}/{name}"
        resp = self._request("GET", namespace, name)
        try:
            body = resp.json()
        except ValueError as exc:
            raise RegistryError(f"{what}: the Kubernetes API answered invalid JSON") from exc
        data = (body.get("data") if isinstance(body, dict) else None) or {}
        if not isinstance(body, dict) or not isinstance(data, dict):
            raise RegistryError(f"{what}: the Kubernetes API answered something else than a Secret object")
        out: dict[str, bytes] = {}
        for k, v in data.items():
            try:
                if not isinstance(v, str):
                    raise ValueError("not a string")
                out[k] = base64.b64decode(v, validate=True)
            except ValueError as exc:
                raise RegistryError(f"{what}: the Secret's data value {k[:100]!r} is not base64") from exc
        return out

    def delete_secret(self, namespace: str, name: str) -> None:
        self._request("DELETE", namespace, name)

    def create_secret(self, manifest: dict[str, Any]) -> None:
        meta = manifest["metadata"]
        self._request("POST", meta["namespace"], meta["name"], manifest)
