"""A real admission path on 127.0.0.1 for tests: etcd, kube-apiserver and Kyverno's admission controller.

`start_kube(workdir)` starts the three (about 15 s once scripts/install-peers.sh has built them) and returns a
`KubeCluster`: a kube-apiserver with a throwaway CA and static tokens, and Kyverno running out of cluster as a plain
process that the API server calls as its webhook (`--serverIP`: every webhook configuration says
`url: https://127.0.0.1:PORT/...`). There is no kubelet, scheduler or controller-manager: Pods are admitted (or
refused) and stored, never run.

    with kube_cluster(tmp) as kube:
        kube.kubectl("apply", "-f", "policy.yaml")
        kube.wait_policy("akko-require-signed-images")
        ok, message = kube.admit_pod("web", "127.0.0.1:5000/app@sha256:...")

Users (static tokens, `kube.kubeconfig_for(user)`): `admin` and `kyverno` are in `system:masters`; `ci` has no
role at all unless a test binds one (RBAC refusals). Every listener binds 127.0.0.1. The facts this follows are in
../shared/docs/KUBERNETES.md; docs/testbed.md says how to run it by hand.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import secrets
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from vouch.testbed.registry import free_port
from vouch.testbed.sigstore import PEERS_DIR, Server, _die_with_parent, stop_servers

HOST = "127.0.0.1"
BINARIES = ("etcd", "kube-apiserver", "kubectl", "kyverno-controller", "kyverno-reports-controller")
CRDS_DIR = PEERS_DIR / "share" / "kyverno-crds"
INSTALL_HINT = "run scripts/install-peers.sh"
USERS = {"admin": "system:masters", "kyverno": "system:masters", "ci": ""}
KYVERNO_NAMESPACE = "kyverno"
MUTATING_WEBHOOK = "kyverno-resource-mutating-webhook-cfg"
VALIDATING_WEBHOOK = "kyverno-resource-validating-webhook-cfg"


class KubeError(RuntimeError):
    """The cluster could not start, or a kubectl step failed; the message ends with the tail of a log."""


def _binary(name: str) -> Path:
    path = PEERS_DIR / "bin" / name
    if not path.exists():
        raise KubeError(f"{name} is not installed (looked in {path.parent}): {INSTALL_HINT}")
    return path


# --------------------------------------------------------------------------------------------
# a throwaway CA, the API server's serving certificate, the service-account key
# --------------------------------------------------------------------------------------------
def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _certificates(workdir: Path) -> dict[str, Path]:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vouch-testbed-kube-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    serving = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
               .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + dt.timedelta(days=2))
               .add_extension(x509.SubjectAlternativeName([
                   x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost"),
                   x509.DNSName("kubernetes.default.svc"), x509.IPAddress(ipaddress.ip_address("10.0.0.1"))]),
                   critical=False)
               .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
               .sign(ca_key, hashes.SHA256()))
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pki = workdir / "pki"
    pki.mkdir(parents=True, exist_ok=True)
    files = {
        "ca": (pki / "ca.crt", ca.public_bytes(serialization.Encoding.PEM)),
        "cert": (pki / "apiserver.crt", serving.public_bytes(serialization.Encoding.PEM)),
        "key": (pki / "apiserver.key", _pem_key(key)),
        "sa_key": (pki / "sa.key", _pem_key(sa_key)),
        "sa_pub": (pki / "sa.pub", sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)),
    }
    for path, data in files.values():
        path.write_bytes(data)
        path.chmod(0o600)
    return {name: path for name, (path, _) in files.items()}


# --------------------------------------------------------------------------------------------
# the cluster
# --------------------------------------------------------------------------------------------
@dataclass
class KubeCluster:
    """A running cluster. `api_url` is https://127.0.0.1:PORT; kubeconfigs are files of this run."""

    workdir: Path
    api_url: str = ""
    ca_file: Path = Path()
    tokens: dict[str, str] = field(default_factory=dict)
    kyverno_port: int = 0
    servers: dict[str, Server] = field(default_factory=dict)
    timeout: float = 60.0
    env: dict[str, str] = field(default_factory=dict)
    verify_cache: bool = False

    # ---- access ---------------------------------------------------------------------------
    def kubeconfig_for(self, user: str = "admin", token: str | None = None) -> Path:
        """A kubeconfig for one of USERS (or any token: a wrong one for refusals)."""
        path = self.workdir / "kubeconfig" / (f"{user}.yaml" if token is None else f"{user}-custom.yaml")
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "apiVersion": "v1", "kind": "Config", "current-context": user,
            "clusters": [{"name": "vouch-testbed", "cluster": {
                "server": self.api_url, "certificate-authority": str(self.ca_file)}}],
            "users": [{"name": user, "user": {"token": token if token is not None else self.tokens[user]}}],
            "contexts": [{"name": user, "context": {"cluster": "vouch-testbed", "user": user,
                                                    "namespace": "default"}}],
        }
        path.write_text(yaml.safe_dump(doc))
        path.chmod(0o600)
        return path

    @property
    def kubeconfig(self) -> Path:
        return self.kubeconfig_for("admin")

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True, user: str = "admin",
                timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([str(_binary("kubectl")), "--kubeconfig", str(self.kubeconfig_for(user)), *args],
                           input=stdin, capture_output=True, text=True, env=self.env,
                           timeout=timeout or self.timeout, check=False)
        if check and r.returncode != 0:
            raise KubeError(f"kubectl {' '.join(args)} failed with status {r.returncode}: "
                            f"{(r.stderr or r.stdout).strip()[-2000:]}")
        return r

    def apply(self, manifest: str | dict[str, Any], *extra: str) -> None:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        self.kubectl("apply", *extra, "-f", "-", stdin=text)

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def api_get(self, path: str, user: str = "admin") -> Any:
        """GET an API path with a user's token (urllib, the run's CA): for what kubectl does not show."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        req = urllib.request.Request(self.api_url + path, headers={"Authorization": f"Bearer {self.tokens[user]}"})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return json.loads(resp.read())

    # ---- Kyverno policies and Pods --------------------------------------------------------
    def wait_policy(self, name: str) -> None:
        """Ready, and its rules in Kyverno's mutating webhook (Kyverno verifies images there): only then does
        admission apply it."""
        self.kubectl("wait", f"clusterpolicy/{name}", "--for=condition=Ready", f"--timeout={int(self.timeout)}s",
                     timeout=self.timeout + 5)
        self._until(lambda: self._webhook_has_pods(MUTATING_WEBHOOK), f"policy {name} in {MUTATING_WEBHOOK}")

    def _webhook_has_pods(self, name: str) -> bool:
        r = self.kubectl("get", "mutatingwebhookconfiguration", name, "-o", "json", check=False)
        if r.returncode != 0:
            return False
        for hook in json.loads(r.stdout).get("webhooks") or []:
            for rule in hook.get("rules") or []:
                if "pods" in (rule.get("resources") or []):
                    return True
        return False

    def delete_policies(self) -> None:
        self.kubectl("delete", "clusterpolicy", "--all", "--wait=true")
        self._until(lambda: not self._webhook_has_pods(MUTATING_WEBHOOK), f"no policy in {MUTATING_WEBHOOK}")

    def admit_pod(self, name: str, image: str, namespace: str = "default", dry_run: bool = False,
                  labels: dict[str, str] | None = None) -> tuple[bool, str]:
        """Create a Pod running `image`: (admitted, the API server's message or the stored Pod's JSON)."""
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name}},
               "spec": {"containers": [{"name": "app", "image": image}]}}
        args = ["create", "-f", "-", "-o", "json"] + (["--dry-run=server"] if dry_run else [])
        r = self.kubectl(*args, stdin=json.dumps(pod), check=False)
        return r.returncode == 0, (r.stdout if r.returncode == 0 else r.stderr.strip())

    def report_results(self, pod: str, policy: str, namespace: str = "default") -> list[dict[str, Any]]:
        """The results of `policy` in the PolicyReport Kyverno's reports controller keeps for Pod `pod`
        (one report per resource, `scope` naming it)."""
        r = self.kubectl("get", "policyreports.wgpolicyk8s.io", "-n", namespace, "-o", "json", check=False)
        if r.returncode != 0:
            return []
        found = []
        for report in json.loads(r.stdout).get("items") or []:
            scope = report.get("scope") or {}
            if scope.get("kind") == "Pod" and scope.get("name") == pod:
                found += [res for res in report.get("results") or [] if res.get("policy") == policy]
        return found

    def wait_report(self, pod: str, policy: str, namespace: str = "default") -> dict[str, Any]:
        """Wait (bounded) for the policy report of an admitted Pod; its first result for `policy`."""
        got: list[dict[str, Any]] = []

        def ready() -> bool:
            got[:] = self.report_results(pod, policy, namespace)
            return bool(got)

        self._until(ready, f"a policy report of {policy} for pod {namespace}/{pod}")
        return got[0]

    def delete_pod(self, name: str, namespace: str = "default") -> None:
        self.kubectl("delete", "pod", name, "-n", namespace, "--ignore-not-found", "--wait=false")

    # ---- lifecycle ------------------------------------------------------------------------
    def _until(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.timeout
        delay = 0.05
        while not ready():
            self._check_alive()
            if time.monotonic() > deadline:
                raise KubeError(f"timed out after {self.timeout:.0f} s waiting for {what}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _check_alive(self) -> None:
        for server in self.servers.values():
            if not server.alive():
                raise KubeError(f"{server.name} exited with status {server.process.returncode} "
                                f"(log {server.log_path}):\n{server.tail()}")

    def log(self, name: str) -> str:
        return self.servers[name].log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Kyverno, then kube-apiserver, then etcd."""
        order = [s for n in ("kyverno-reports", "kyverno", "kube-apiserver", "etcd") if (s := self.servers.get(n))]
        stop_servers(order, grace=2.0)

    def __enter__(self) -> KubeCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _spawn(kube: KubeCluster, name: str, argv: list[str], env: dict[str, str] | None = None) -> Server:
    logs = kube.workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env or kube.env, cwd=kube.workdir, preexec_fn=_die_with_parent)
    server = Server(name, proc, log_path)
    kube.servers[name] = server
    return server


def _https_ok(url: str, ca_file: Path, token: str | None = None) -> bool:
    ctx = ssl.create_default_context(cafile=str(ca_file)) if ca_file != Path() else ssl._create_unverified_context()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), context=ctx, timeout=2) as r:
            return int(r.status) == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(r.status) == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


def start_kube(workdir: Path, *, timeout: float = 90.0, verify_cache: bool = False) -> KubeCluster:
    """Start etcd, kube-apiserver and Kyverno (admission and reports controllers); wait until Kyverno's webhooks
    are registered. `verify_cache`: Kyverno's image verification cache (off by default, so that every admission
    checks the registry)."""
    for name in BINARIES:
        _binary(name)
    if not CRDS_DIR.is_dir() or not any(CRDS_DIR.glob("*.yaml")):
        raise KubeError(f"Kyverno's CRDs are not in {CRDS_DIR}: {INSTALL_HINT}")
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "KYVERNO_", "HELM_"))}
    env["HOME"] = str(workdir / "home")
    (workdir / "home").mkdir(exist_ok=True)
    kube = KubeCluster(workdir=workdir, timeout=timeout, env=env, verify_cache=verify_cache)
    try:
        _start(kube)
    except BaseException:
        kube.stop()
        raise
    return kube


def _start(kube: KubeCluster) -> None:
    w = kube.workdir
    # 1. etcd
    client_port, peer_port = free_port(), free_port()
    client_url, peer_url = f"http://{HOST}:{client_port}", f"http://{HOST}:{peer_port}"
    _spawn(kube, "etcd", [str(_binary("etcd")), "--name", "testbed", "--data-dir", str(w / "etcd"),
                          "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
                          "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                          "--initial-cluster", f"testbed={peer_url}", "--unsafe-no-fsync",
                          "--log-level", "warn"])
    kube._until(lambda: _http_ok(f"{client_url}/health"), "etcd /health")

    # 2. certificates and static tokens
    pki = _certificates(w)
    kube.ca_file = pki["ca"]
    kube.tokens = {user: secrets.token_hex(16) for user in USERS}
    token_file = w / "pki" / "tokens.csv"
    token_file.write_text("".join(f'{kube.tokens[u]},{u},uid-{u}' + (f',"{g}"' if g else "") + "\n"
                                  for u, g in USERS.items()))
    token_file.chmod(0o600)

    # 3. kube-apiserver
    api_port = free_port()
    kube.api_url = f"https://{HOST}:{api_port}"
    _spawn(kube, "kube-apiserver", [
        str(_binary("kube-apiserver")), f"--etcd-servers={client_url}", f"--bind-address={HOST}",
        f"--advertise-address={HOST}", f"--secure-port={api_port}", f"--tls-cert-file={pki['cert']}",
        f"--tls-private-key-file={pki['key']}", f"--client-ca-file={pki['ca']}", f"--token-auth-file={token_file}",
        "--anonymous-auth=false", "--authorization-mode=RBAC", "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-account-key-file={pki['sa_pub']}", f"--service-account-signing-key-file={pki['sa_key']}",
        "--service-cluster-ip-range=10.0.0.0/24", "--profiling=false", f"--cert-dir={w / 'pki' / 'generated'}",
        "--enable-priority-and-fairness=false", "--v=1"])
    kube._until(lambda: _https_ok(f"{kube.api_url}/readyz", kube.ca_file, kube.tokens["admin"]),
                "kube-apiserver /readyz")

    # 4. what the controllers that do not run here would have made; Kyverno's CRDs
    kube._until(lambda: kube.kubectl("get", "serviceaccount", "default", check=False).returncode == 0
                or kube.kubectl("create", "serviceaccount", "default", check=False).returncode == 0,
                "ServiceAccount default/default")
    kube.kubectl("create", "namespace", KYVERNO_NAMESPACE)
    kube.kubectl("create", "serviceaccount", "kyverno", "-n", KYVERNO_NAMESPACE)
    kube.kubectl("create", "clusterrolebinding", "kyverno-admin", "--clusterrole=cluster-admin",
                 f"--serviceaccount={KYVERNO_NAMESPACE}:kyverno")
    kube.kubectl("apply", "--server-side", "-f", str(CRDS_DIR))
    kube.kubectl("wait", "--for=condition=Established", "crd", "--all", f"--timeout={int(kube.timeout)}s",
                 timeout=kube.timeout + 5)

    # 5. Kyverno's admission controller, out of cluster, the API server's webhook
    kube.kyverno_port = free_port()
    def common() -> list[str]:  # each process its own metrics port (Kyverno binds it even with --disableMetrics)
        return ["--disableMetrics", f"--metricsHost={HOST}", f"--metricsPort={free_port()}",
                f"--profileAddress={HOST}", "--autoMemLimitEnabled=false", "--leaderElectionRetryPeriod=1s"]

    kyverno_env = dict(kube.env)
    kyverno_env.update({
        "KYVERNO_NAMESPACE": KYVERNO_NAMESPACE, "KYVERNO_SERVICEACCOUNT_NAME": "kyverno",
        "KYVERNO_DEPLOYMENT": "kyverno-admission-controller", "KYVERNO_POD_NAME": "kyverno-testbed",
        "INIT_CONFIG": "kyverno", "METRICS_CONFIG": "kyverno-metrics",
    })
    _spawn(kube, "kyverno", [
        str(_binary("kyverno-controller")), f"--kubeconfig={kube.kubeconfig_for('kyverno')}",
        f"--serverIP={HOST}:{kube.kyverno_port}", f"--webhookServerHost={HOST}",
        f"--webhookServerPort={kube.kyverno_port}", "--caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca",
        "--tlsSecretName=kyverno-svc.kyverno.svc.kyverno-tls-pair", *common(),
        "--controllerRuntimeMetricsAddress=0", "--admissionReports=true",
        f"--imageVerifyCacheEnabled={str(kube.verify_cache).lower()}"], env=kyverno_env)
    # the reports controller turns the admission controller's ephemeral reports into PolicyReports (audit mode's
    # evidence); no background scan: only what admission saw
    _spawn(kube, "kyverno-reports", [
        str(_binary("kyverno-reports-controller")), f"--kubeconfig={kube.kubeconfig_for('kyverno')}", *common(),
        "--backgroundScan=false", "--admissionReports=true", "--aggregateReports=true", "--policyReports=true",
        "--validatingAdmissionPolicyReports=false"], env=kyverno_env)
    health = f"https://{HOST}:{kube.kyverno_port}/health/readiness"
    kube._until(lambda: _https_ok(health, Path()), "Kyverno /health/readiness")

    def webhooks() -> bool:
        names = set()
        for kind in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
            r = kube.kubectl("get", kind, "-o", "jsonpath={.items[*].metadata.name}", check=False)
            names.update(r.stdout.split())
        return {MUTATING_WEBHOOK, VALIDATING_WEBHOOK} <= names

    kube._until(webhooks, "Kyverno's webhook configurations")


@contextlib.contextmanager
def kube_cluster(workdir: Path, **kwargs: Any) -> Iterator[KubeCluster]:
    kube = start_kube(workdir, **kwargs)
    try:
        yield kube
    finally:
        kube.stop()


__all__ = ["KubeCluster", "KubeError", "kube_cluster", "start_kube"]
