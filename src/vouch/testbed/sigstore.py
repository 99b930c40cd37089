"""A private Sigstore stack on 127.0.0.1 for tests: Fulcio, a CT log, Rekor v1 (on Trillian and
MariaDB), Rekor v2 (rekor-tiles), a timestamp authority and our own OIDC issuer.

`start_sigstore_stack(workdir)` starts everything (about 3 s once the binaries are built by
scripts/install-peers.sh), writes the trust files of the run and returns a `SigstoreStack`:

    with start_sigstore_stack(tmp) as stack:
        token = stack.token()                      # a GitLab-like CI ID token
        env = stack.cosign_env()                   # SIGSTORE_ROOT_FILE, ..._REKOR_PUBLIC_KEY, ...
        stack.trusted_root, stack.signing_config   # per-run trust files (Rekor v1)
        stack.signing_config_v2                    # Rekor v2 + TSA

Every key and CA is made here with `cryptography`: the Fulcio CA is a file CA (root + intermediate),
the Rekor v1 signer an ECDSA P-256 key (its signed entry timestamps are ECDSA), Rekor v2's an
Ed25519 key, the CT log's a SEC1 EC key. The TSA uses its in-memory signer, so its chain is fetched
from it at each start. Nothing is written outside `workdir` (plus a short-named directory in /tmp
for MariaDB's socket when `workdir` is too deep for a unix socket path).

Fulcio's metrics port and the TSA's 2112 (and Rekor v1's, which loses the race to the TSA) listen on
every interface and no flag changes that, so the stack refuses to start unless the process is in a
network namespace whose only interface is `lo` (`unshare --net`), or VOUCH_SIGSTORE_ANY_NETWORK=1.
The TSA's fixed port 2112 also means one stack per network namespace at a time.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vouch.testbed.oidc import DEFAULT_AUDIENCE, GITHUB_URL, GITLAB_URL, OIDCIssuer
from vouch.testbed.registry import free_port

PEERS_DIR = Path(os.environ.get("VOUCH_PEERS_DIR", Path.home() / ".cache" / "vouch-peers"))
BINARIES = ("fulcio", "tesseract-posix", "rekor-tiles", "timestamp-server", "trillian_log_server",
            "trillian_log_signer", "createtree", "rekor-server")
ANY_NETWORK_ENV = "VOUCH_SIGSTORE_ANY_NETWORK"
HOST = "127.0.0.1"
OPERATOR = "vouch-testbed"
TRILLIAN_DB, TRILLIAN_USER, TRILLIAN_PASSWORD = "trillian", "trillian", "trillian-pass"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
# One-line hints shown when the stack cannot start: what to run.
INSTALL_HINT = "run scripts/install-peers.sh"

MEDIA_TRUSTED_ROOT = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
MEDIA_SIGNING_CONFIG = "application/vnd.dev.sigstore.signingconfig.v0.2+json"
MEDIA_CLIENT_TRUST_CONFIG = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"


class SigstoreStackError(RuntimeError):
    """The stack could not start; the message names the server and ends with the tail of its log."""


# --------------------------------------------------------------------------------------------
# network isolation
# --------------------------------------------------------------------------------------------
def network_interfaces() -> list[str]:
    """The interfaces of this process's network namespace (netlink: /sys/class/net shows the
    namespace sysfs was mounted in, which `unshare --net` does not change)."""
    return sorted(name for _, name in socket.if_nameindex())


def loopback_works() -> bool:
    with socket.socket() as server, socket.socket() as client:
        try:
            server.bind((HOST, 0))
            server.listen(1)
            client.settimeout(1)
            client.connect(server.getsockname())
        except OSError:
            return False
    return True


def check_network_isolation(env: Mapping[str, str] | None = None, interfaces: list[str] | None = None) -> None:
    """Refuse (one line) unless only `lo` exists or VOUCH_SIGSTORE_ANY_NETWORK=1."""
    env = os.environ if env is None else env
    if env.get(ANY_NETWORK_ENV) == "1":
        return
    interfaces = network_interfaces() if interfaces is None else sorted(interfaces)
    if interfaces != ["lo"]:
        raise SigstoreStackError(
            "the Sigstore test stack opens ports on every interface (Fulcio metrics, TSA 2112): run it in a "
            f"network namespace with only lo (unshare --net), or set {ANY_NETWORK_ENV}=1 "
            f"(interfaces here: {', '.join(interfaces) or 'none'})")


# --------------------------------------------------------------------------------------------
# keys and certificates
# --------------------------------------------------------------------------------------------
def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def spki_der(key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def spki_pem(key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def pkcs8_pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def rekor_v2_log_id(origin: str, key: ed25519.Ed25519PublicKey) -> bytes:
    """The log ID of an Ed25519 checkpoint signer (C2SP signed-note key hash, full SHA-256)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(origin.encode() + b"\n\x01" + raw).digest()


@dataclass(frozen=True)
class FulcioCA:
    root: x509.Certificate
    intermediate: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey


def make_fulcio_ca(not_before: dt.datetime, days: int = 7) -> FulcioCA:
    """A root and a code-signing intermediate (what Fulcio's file CA signs with), P-256."""
    not_after = not_before + dt.timedelta(days=days)
    root_key = ec.generate_private_key(ec.SECP256R1())
    inter_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vouch testbed"),
                           x509.NameAttribute(NameOID.COMMON_NAME, "vouch testbed Fulcio root")])
    inter_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vouch testbed"),
                            x509.NameAttribute(NameOID.COMMON_NAME, "vouch testbed Fulcio intermediate")])
    ca_usage = x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                             encipher_only=False, decipher_only=False)
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(ca_usage, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    intermediate = (x509.CertificateBuilder().subject_name(inter_name).issuer_name(root_name)
                    .public_key(inter_key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(not_before).not_valid_after(not_after)
                    .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                    .add_extension(ca_usage, critical=True)
                    .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
                    .add_extension(x509.SubjectKeyIdentifier.from_public_key(inter_key.public_key()),
                                   critical=False)
                    .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                                   critical=False)
                    .sign(root_key, hashes.SHA256()))
    return FulcioCA(root, intermediate, inter_key)


def pem_certs(data: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(data)


def der_b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


# --------------------------------------------------------------------------------------------
# Fulcio configuration: the OIDC issuers and the CI claim templates
# --------------------------------------------------------------------------------------------
GITLAB_TEMPLATES = {
    "BuildSignerURI": "https://{{ .ci_config_ref_uri }}",
    "BuildSignerDigest": "ci_config_sha",
    "RunnerEnvironment": "runner_environment",
    "SourceRepositoryURI": "{{ .url }}/{{ .project_path }}",
    "SourceRepositoryDigest": "sha",
    "SourceRepositoryRef": 'refs/{{if eq .ref_type "branch"}}heads/{{ else }}tags/{{end}}{{ .ref }}',
    "SourceRepositoryIdentifier": "project_id",
    "SourceRepositoryOwnerURI": "{{ .url }}/{{ .namespace_path }}",
    "SourceRepositoryOwnerIdentifier": "namespace_id",
    "BuildConfigURI": "https://{{ .ci_config_ref_uri }}",
    "BuildConfigDigest": "ci_config_sha",
    "BuildTrigger": "pipeline_source",
    "RunInvocationURI": "{{ .url }}/{{ .project_path }}/-/jobs/{{ .job_id }}",
    "SourceRepositoryVisibilityAtSigning": "project_visibility",
    "DeploymentEnvironment": "environment",
}
GITHUB_TEMPLATES = {
    "BuildSignerURI": "{{ .url }}/{{ .job_workflow_ref }}",
    "BuildSignerDigest": "job_workflow_sha",
    "RunnerEnvironment": "runner_environment",
    "SourceRepositoryURI": "{{ .url }}/{{ .repository }}",
    "SourceRepositoryDigest": "sha",
    "SourceRepositoryRef": "ref",
    "SourceRepositoryIdentifier": "repository_id",
    "SourceRepositoryOwnerURI": "{{ .url }}/{{ .repository_owner }}",
    "SourceRepositoryOwnerIdentifier": "repository_owner_id",
    "BuildConfigURI": "{{ .url }}/{{ .workflow_ref }}",
    "BuildConfigDigest": "workflow_sha",
    "BuildTrigger": "event_name",
    "RunInvocationURI": "{{ .url }}/{{ .repository }}/actions/runs/{{ .run_id }}/attempts/{{ .run_attempt }}",
    "SourceRepositoryVisibilityAtSigning": "repository_visibility",
    "DeploymentEnvironment": "environment",
}


def fulcio_config(oidc: OIDCIssuer, client_id: str = DEFAULT_AUDIENCE) -> dict[str, Any]:
    gitlab, github, k8s = oidc.issuer_url("gitlab"), oidc.issuer_url("github"), oidc.issuer_url("kubernetes")
    return {
        "OIDCIssuers": {
            gitlab: {"IssuerURL": gitlab, "ClientID": client_id, "Type": "ci-provider",
                     "CIProvider": "vouch-gitlab"},
            github: {"IssuerURL": github, "ClientID": client_id, "Type": "ci-provider",
                     "CIProvider": "vouch-github"},
            k8s: {"IssuerURL": k8s, "ClientID": client_id, "Type": "kubernetes"},
        },
        "CIIssuerMetadata": {
            "vouch-gitlab": {"DefaultTemplateValues": {"url": GITLAB_URL},
                             "ExtensionTemplates": GITLAB_TEMPLATES,
                             "SubjectAlternativeNameTemplate": "https://{{ .ci_config_ref_uri }}"},
            "vouch-github": {"DefaultTemplateValues": {"url": GITHUB_URL},
                             "ExtensionTemplates": GITHUB_TEMPLATES,
                             "SubjectAlternativeNameTemplate": "{{ .url }}/{{ .job_workflow_ref }}"},
        },
    }


# --------------------------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------------------------
def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Own process group, and SIGKILL when the process that started us dies (no orphans even if
    pytest is killed)."""
    os.setpgrp()
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(ANSI_ESCAPE.sub("", line) for line in text.splitlines()[-lines:])

    def terminate(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the whole process group: anything the server forked goes too."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def stop_servers(servers: list[Server], grace: float = 0.5) -> None:
    """SIGTERM every group at once, give them `grace` seconds together, then SIGKILL (test data is
    thrown away, so nothing needs a clean shutdown; Trillian takes 5 s and more to stop)."""
    for server in servers:
        server.terminate()
    deadline = time.monotonic() + grace
    for server in servers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.process.wait(timeout=max(0.0, deadline - time.monotonic()))
    for server in servers:
        server.kill()


def _binary(name: str) -> Path:
    found = shutil.which(name)
    path = Path(found) if found else PEERS_DIR / "bin" / name
    if not path.exists():
        raise SigstoreStackError(f"{name} is not installed (looked in PATH and {path.parent}): {INSTALL_HINT}")
    return path


def _system_binary(name: str) -> Path:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if not found:
        raise SigstoreStackError(f"{name} is not installed (apt mariadb-server): {INSTALL_HINT}")
    return Path(found)


def _http_get(url: str, timeout: float = 1.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        data: bytes = r.read()
        return data


def _tcp_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((HOST, port)) == 0


# --------------------------------------------------------------------------------------------
# the stack
# --------------------------------------------------------------------------------------------
@dataclass
class SigstoreStack:
    """A running stack. URLs are plain http on 127.0.0.1; paths are files of this run."""

    workdir: Path
    oidc: OIDCIssuer
    fulcio_url: str = ""
    fulcio_grpc_port: int = 0
    ctlog_url: str = ""
    rekor_url: str = ""  # Rekor v1
    rekor_v2_url: str = ""
    tsa_url: str = ""  # POST RFC 3161 requests here (…/api/v1/timestamp)
    rekor_v2_origin: str = HOST
    tree_id: int = 0
    # trust material (files of this run)
    trusted_root: Path = Path()
    signing_config: Path = Path()  # Fulcio + Rekor v1
    signing_config_v2: Path = Path()  # Fulcio + Rekor v2 + TSA
    trust_config: Path = Path()  # ClientTrustConfig: trusted root + signing_config
    trust_config_v2: Path = Path()  # ClientTrustConfig: trusted root + signing_config_v2
    fulcio_root_pem: Path = Path()
    fulcio_chain_pem: Path = Path()  # intermediate + root
    rekor_public_key_pem: Path = Path()
    rekor_v2_public_key_pem: Path = Path()
    ct_log_public_key_pem: Path = Path()
    tsa_chain_pem: Path = Path()
    servers: dict[str, Server] = field(default_factory=dict)
    started_in: float = 0.0
    _cleanup: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _stopped: bool = field(default=False, repr=False)

    # -- identity -----------------------------------------------------------------------------
    @property
    def oidc_issuer(self) -> str:
        """The GitLab-like CI issuer `token()` uses by default."""
        return self.oidc.issuer_url("gitlab")

    def issuer_url(self, profile: str = "gitlab") -> str:
        return self.oidc.issuer_url(profile)

    def token(self, subject: str | None = None, claims: Mapping[str, Any] | None = None, *,
              profile: str = "gitlab", audience: str = DEFAULT_AUDIENCE, lifetime: float = 600) -> str:
        """Mint an RS256 ID token Fulcio accepts. `profile`: gitlab | github | kubernetes."""
        return self.oidc.token(profile, subject=subject, claims=claims, audience=audience, lifetime=lifetime)

    def identity(self, claims: Mapping[str, Any] | None = None, profile: str = "gitlab") -> str:
        """The certificate SAN Fulcio will issue for a token minted with these claims."""
        c = self.oidc.claims(profile, claims=claims)
        if profile == "gitlab":
            return f"https://{c['ci_config_ref_uri']}"
        if profile == "github":
            return f"{GITHUB_URL}/{c['job_workflow_ref']}"
        k = c["kubernetes.io"]
        return f"https://kubernetes.io/namespaces/{k['namespace']}/serviceaccounts/{k['serviceaccount']['name']}"

    # -- clients ------------------------------------------------------------------------------
    def cosign_env(self) -> dict[str, str]:
        """What cosign needs to sign (legacy: --fulcio-url/--rekor-url) and verify offline against
        this stack without TUF."""
        return {
            "SIGSTORE_ROOT_FILE": str(self.fulcio_root_pem),
            "SIGSTORE_REKOR_PUBLIC_KEY": str(self.rekor_public_key_pem),
            "SIGSTORE_CT_LOG_PUBLIC_KEY_FILE": str(self.ct_log_public_key_pem),
        }

    def log(self, name: str) -> str:
        return self.servers[name].log_path.read_text(errors="replace")

    # -- lifecycle ----------------------------------------------------------------------------
    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        stop_servers(list(self.servers.values()))
        self.oidc.stop()
        for fn in reversed(self._cleanup):
            with contextlib.suppress(Exception):
                fn()

    def __enter__(self) -> SigstoreStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Launcher:
    def __init__(self, stack: SigstoreStack, timeout: float) -> None:
        self.stack = stack
        self.timeout = timeout
        self.logs = stack.workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SIGSTORE_", "COSIGN_", "FULCIO_", "OTEL_", "TUF_"))}
        # TesseraCT pushes OpenTelemetry metrics over OTLP/HTTP: point it at a closed loopback port
        self.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://{HOST}:9"
        self.env["OTEL_METRIC_EXPORT_INTERVAL"] = "3600000"
        self.one_shot = {"mariadb-install-db"}

    def spawn(self, name: str, argv: list[str], cwd: Path | None = None) -> Server:
        log_path = self.logs / f"{name}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=self.env, cwd=cwd or self.stack.workdir, preexec_fn=_die_with_parent)
        server = Server(name, proc, log_path)
        self.stack.servers[name] = server
        return server

    def fail(self, server: Server, why: str) -> SigstoreStackError:
        return SigstoreStackError(f"{server.name} {why} (log {server.log_path}):\n{server.tail()}")

    def wait(self, server: Server, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.timeout
        delay = 0.02
        while True:
            if not server.alive():
                raise self.fail(server, f"exited with status {server.process.returncode} before {what}")
            self.check_others(server)
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                if ready():
                    return
            if time.monotonic() > deadline:
                raise self.fail(server, f"was not ready ({what}) after {self.timeout:.0f} s")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)

    def check_others(self, current: Server) -> None:
        """Any server started earlier that has died is the error, whatever we are waiting for."""
        for other in self.stack.servers.values():
            if other is not current and other.name not in self.one_shot and not other.alive():
                raise self.fail(other, f"exited with status {other.process.returncode}")

    def wait_exit(self, server: Server, what: str) -> None:
        """A one-shot command started with spawn(): wait for it, and fail unless it exits 0."""
        deadline = time.monotonic() + self.timeout
        while (status := server.process.poll()) is None:
            self.check_others(server)
            if time.monotonic() > deadline:
                raise self.fail(server, f"did not finish {what} in {self.timeout:.0f} s")
            time.sleep(0.05)
        if status != 0:
            raise self.fail(server, f"failed {what} with status {status}")

    def wait_http(self, server: Server, url: str) -> bytes:
        got: list[bytes] = []

        def ready() -> bool:
            got.append(_http_get(url))
            return True

        self.wait(server, ready, f"GET {url}")
        return got[-1]

    def run(self, name: str, argv: list[str], stdin: bytes | None = None) -> bytes:
        log_path = self.logs / f"{name}.log"
        try:
            r = subprocess.run(argv, input=stdin, capture_output=True, env=self.env, timeout=self.timeout,
                               check=False)
        except subprocess.TimeoutExpired as e:
            raise SigstoreStackError(f"{name} timed out after {self.timeout:.0f} s") from e
        log_path.write_bytes(r.stdout + r.stderr)
        if r.returncode != 0:
            tail = "\n".join((r.stdout + r.stderr).decode(errors="replace").splitlines()[-25:])
            raise SigstoreStackError(f"{name} failed with status {r.returncode} (log {log_path}):\n{tail}")
        return r.stdout


def _write(path: Path, data: bytes | str, mode: int = 0o644) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)
    return path


def _mariadb_socket_dir(workdir: Path) -> tuple[Path, Callable[[], None] | None]:
    # sun_path holds 108 bytes; pytest's tmp paths can be deep
    if len(str(workdir / "mariadb" / "mysqld.sock")) < 100:
        d = workdir / "mariadb"
        d.mkdir(parents=True, exist_ok=True)
        return d, None
    d = Path(tempfile.mkdtemp(prefix="vouch-mdb-"))
    return d, lambda: shutil.rmtree(d, ignore_errors=True)


MARIADB_TUNING = ["--innodb-log-file-size=4M", "--innodb-buffer-pool-size=16M", "--innodb-flush-method=nosync",
                  "--innodb-doublewrite=0", "--innodb-flush-log-at-trx-commit=0", "--skip-name-resolve"]


def start_sigstore_stack(workdir: Path | None = None, *, timeout: float = 30.0, keep: bool = False,
                         check_network: bool = True) -> SigstoreStack:
    """Start the whole stack in a new directory under `workdir` (the system temporary directory when
    None); stop() removes that directory unless `keep`. Raises SigstoreStackError naming the server
    that failed, with the tail of its log."""
    t0 = time.monotonic()
    if check_network:
        check_network_isolation()
    if not loopback_works():
        raise SigstoreStackError(f"cannot connect to {HOST}: is lo down? (ip link set lo up)")
    binaries = {name: _binary(name) for name in BINARIES}
    mariadbd, install_db = _system_binary("mariadbd"), _system_binary("mariadb-install-db")
    mariadb_client = _system_binary("mariadb")
    storage_sql = PEERS_DIR / "share" / "trillian-storage.sql"
    if not storage_sql.exists():
        raise SigstoreStackError(f"Trillian's schema {storage_sql} is missing: {INSTALL_HINT}")

    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="vouch-sigstore-", dir=workdir))
    oidc = OIDCIssuer(HOST).start()
    stack = SigstoreStack(workdir=root, oidc=oidc)
    if not keep:
        stack._cleanup.append(lambda: shutil.rmtree(root, ignore_errors=True))
    try:
        _start(stack, _Launcher(stack, timeout), binaries, mariadbd, install_db, mariadb_client, storage_sql)
    except BaseException:
        stack.stop()
        raise
    stack.started_in = time.monotonic() - t0
    return stack


def _start(stack: SigstoreStack, L: _Launcher, binaries: dict[str, Path], mariadbd: Path, install_db: Path,
           mariadb_client: Path, storage_sql: Path) -> None:
    root = stack.workdir
    keys = root / "keys"
    keys.mkdir(exist_ok=True)
    trust = root / "trust"
    trust.mkdir(exist_ok=True)
    not_before = _now() - dt.timedelta(minutes=5)

    # -- MariaDB: initialise the data directory in the background while the rest starts ------
    socket_dir, cleanup = _mariadb_socket_dir(root)
    if cleanup:
        stack._cleanup.append(cleanup)
    datadir = root / "mariadb-data"
    sock = socket_dir / "mysqld.sock"
    install = L.spawn("mariadb-install-db", [
        str(install_db), "--no-defaults", f"--datadir={datadir}", "--user=root",
        "--auth-root-authentication-method=socket", "--skip-test-db", *MARIADB_TUNING])

    # -- keys -----------------------------------------------------------------------------------
    ca = make_fulcio_ca(not_before)
    ca_cert = _write(keys / "fulcio-chain.pem", b"".join(
        c.public_bytes(serialization.Encoding.PEM) for c in (ca.intermediate, ca.root)))
    ca_key = _write(keys / "fulcio-intermediate.key", pkcs8_pem(ca.intermediate_key), 0o600)
    stack.fulcio_root_pem = _write(trust / "fulcio-root.pem", ca.root.public_bytes(serialization.Encoding.PEM))
    stack.fulcio_chain_pem = _write(trust / "fulcio-chain.pem", ca_cert.read_bytes())
    ct_key = ec.generate_private_key(ec.SECP256R1())
    ct_key_file = _write(keys / "ctlog.key", ct_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,  # SEC1 "EC PRIVATE KEY"
        serialization.NoEncryption()), 0o600)
    stack.ct_log_public_key_pem = _write(trust / "ctlog.pub", spki_pem(ct_key.public_key()))
    rekor_key = ec.generate_private_key(ec.SECP256R1())
    rekor_key_file = _write(keys / "rekor.key", pkcs8_pem(rekor_key), 0o600)
    stack.rekor_public_key_pem = _write(trust / "rekor.pub", spki_pem(rekor_key.public_key()))
    rekor2_key = ed25519.Ed25519PrivateKey.generate()
    rekor2_key_file = _write(keys / "rekor-v2.key", pkcs8_pem(rekor2_key), 0o600)
    stack.rekor_v2_public_key_pem = _write(trust / "rekor-v2.pub", spki_pem(rekor2_key.public_key()))

    # -- TSA (first: its metrics port 2112 is fixed, and Rekor v1's silently loses it) ------------
    tsa_port = free_port()
    tsa = L.spawn("timestamp-server", [
        str(binaries["timestamp-server"]), "serve", "--host", HOST, "--port", str(tsa_port),
        "--timestamp-signer", "memory", "--disable-ntp-monitoring", "--log-type", "dev"])
    stack.tsa_url = f"http://{HOST}:{tsa_port}/api/v1/timestamp"

    # -- CT log (TesseraCT, POSIX storage) -------------------------------------------------------
    ct_port = free_port()
    ct_roots = _write(keys / "ctlog-roots.pem", stack.fulcio_root_pem.read_bytes())
    (root / "ctlog").mkdir(exist_ok=True)
    ctlog = L.spawn("tesseract", [
        str(binaries["tesseract-posix"]), f"--http_endpoint={HOST}:{ct_port}", f"--origin={HOST}",
        f"--storage_dir={root / 'ctlog'}", f"--roots_pem_file={ct_roots}", f"--private_key={ct_key_file}",
        "--checkpoint_interval=200ms", "--batch_max_age=50ms", "--logtostderr"])
    stack.ctlog_url = f"http://{HOST}:{ct_port}"

    # -- Rekor v2 (rekor-tiles, POSIX storage) ----------------------------------------------------
    r2_http, r2_grpc, r2_metrics = free_port(), free_port(), free_port()
    (root / "rekor-v2").mkdir(exist_ok=True)
    rekor2 = L.spawn("rekor-tiles", [
        str(binaries["rekor-tiles"]), "serve", f"--hostname={stack.rekor_v2_origin}",
        f"--storage-dir={root / 'rekor-v2'}", f"--signer-filepath={rekor2_key_file}",
        f"--http-address={HOST}", f"--http-port={r2_http}", f"--http-metrics-port={r2_metrics}",
        f"--grpc-address={HOST}", f"--grpc-port={r2_grpc}",
        "--checkpoint-interval=200ms", "--batch-max-age=50ms"])
    stack.rekor_v2_url = f"http://{HOST}:{r2_http}"

    # -- Fulcio (file CA, CT log, our OIDC issuers) -----------------------------------------------
    f_http, f_grpc, f_metrics = free_port(), free_port(), free_port()
    while f_grpc == f_http:  # equal ports make Fulcio 1.8.8 panic
        f_grpc = free_port()
    fulcio_cfg = _write(root / "fulcio-config.json", json.dumps(fulcio_config(stack.oidc), indent=2))
    fulcio = L.spawn("fulcio", [
        str(binaries["fulcio"]), "serve", f"--config-path={fulcio_cfg}", "--ca=fileca",
        f"--fileca-cert={ca_cert}", f"--fileca-key={ca_key}", "--fileca-key-passwd=unused", "--fileca-watch=false",
        f"--ct-log-url={stack.ctlog_url}", f"--ct-log-public-key-path={stack.ct_log_public_key_pem}",
        f"--host={HOST}", f"--port={f_http}", f"--grpc-host={HOST}", f"--grpc-port={f_grpc}",
        f"--metrics-port={f_metrics}",
        # abstract socket (no file to survive a crash), unique so stacks never share it
        f"--legacy-unix-domain-socket=@vouch-fulcio-{os.getpid()}-{f_http}", "--log_type=dev"])
    stack.fulcio_url, stack.fulcio_grpc_port = f"http://{HOST}:{f_http}", f_grpc

    # -- MariaDB, the Trillian schema, Trillian ----------------------------------------------------
    L.wait_exit(install, "initialising the data directory")
    db = L.spawn("mariadb", [
        str(mariadbd), "--no-defaults", f"--datadir={datadir}", f"--socket={sock}", "--skip-networking",
        "--user=root", f"--pid-file={socket_dir / 'mysqld.pid'}", f"--log-error={L.logs / 'mariadb.log'}",
        *MARIADB_TUNING])
    client = [str(mariadb_client), "--no-defaults", f"--socket={sock}", "--user=root"]
    L.wait(db, lambda: sock.exists() and subprocess.run(
        [*client, "-e", "SELECT 1"], capture_output=True, timeout=5, check=False).returncode == 0,
        "accepting connections")
    setup = (f"CREATE DATABASE {TRILLIAN_DB};\n"
             f"CREATE USER '{TRILLIAN_USER}'@'localhost' IDENTIFIED BY '{TRILLIAN_PASSWORD}';\n"
             f"GRANT ALL ON {TRILLIAN_DB}.* TO '{TRILLIAN_USER}'@'localhost';\n")
    L.run("mariadb-setup", client, setup.encode())
    L.run("trillian-schema", [*client, TRILLIAN_DB], storage_sql.read_bytes())
    dsn = f"{TRILLIAN_USER}:{TRILLIAN_PASSWORD}@unix({sock})/{TRILLIAN_DB}"
    t_rpc, s_rpc = free_port(), free_port()
    tlog = L.spawn("trillian_log_server", [
        str(binaries["trillian_log_server"]), "--storage_system=mysql", f"--mysql_uri={dsn}",
        "--quota_system=noop", f"--rpc_endpoint={HOST}:{t_rpc}", "--http_endpoint=", "--logtostderr"])
    tsigner = L.spawn("trillian_log_signer", [
        str(binaries["trillian_log_signer"]), "--storage_system=mysql", f"--mysql_uri={dsn}",
        "--quota_system=noop", "--force_master", f"--rpc_endpoint={HOST}:{s_rpc}", "--http_endpoint=",
        "--sequencer_interval=50ms", "--batch_size=100", "--num_sequencers=1", "--logtostderr"])
    L.wait(tlog, lambda: _tcp_open(t_rpc), f"listening on {HOST}:{t_rpc}")
    tree = L.run("createtree", [str(binaries["createtree"]), f"--admin_server={HOST}:{t_rpc}",
                                "--tree_type=LOG", "--display_name=vouch-testbed", "--max_root_duration=0"])
    stack.tree_id = int(tree.decode().strip().splitlines()[-1])
    L.wait(tsigner, lambda: _tcp_open(s_rpc), f"listening on {HOST}:{s_rpc}")

    # -- Rekor v1 on Trillian (after the TSA holds 2112) -----------------------------------------
    tsa_chain = L.wait_http(tsa, f"http://{HOST}:{tsa_port}/api/v1/timestamp/certchain")
    rekor_port = free_port()
    rekor = L.spawn("rekor-server", [
        str(binaries["rekor-server"]), "serve", f"--rekor_server.address={HOST}", f"--port={rekor_port}",
        f"--rekor_server.hostname={HOST}", f"--rekor_server.signer={rekor_key_file}",
        f"--trillian_log_server.address={HOST}", f"--trillian_log_server.port={t_rpc}",
        f"--trillian_log_server.tlog_id={stack.tree_id}", "--enable_retrieve_api=false",
        "--enabled_api_endpoints=getLogInfo,getPublicKey,getLogProof,createLogEntry,getLogEntryByIndex,"
        "getLogEntryByUUID,searchLogQuery", "--log_type=dev"])
    stack.rekor_url = f"http://{HOST}:{rekor_port}"

    # -- readiness of the rest ---------------------------------------------------------------------
    L.wait_http(ctlog, f"{stack.ctlog_url}/ct/v1/get-roots")
    L.wait_http(rekor2, f"{stack.rekor_v2_url}/healthz")
    L.wait_http(fulcio, f"{stack.fulcio_url}/api/v1/rootCert")
    L.wait_http(rekor, f"{stack.rekor_url}/api/v1/log")

    # -- trust files of this run ---------------------------------------------------------------
    stack.tsa_chain_pem = _write(trust / "tsa-chain.pem", tsa_chain)
    _write_trust_files(stack, ca, ct_key.public_key(), rekor_key.public_key(), rekor2_key.public_key(),
                       pem_certs(tsa_chain), not_before)


def _tlog(base_url: str, key_der: bytes, details: str, log_id: bytes, start: dt.datetime) -> dict[str, Any]:
    return {"baseUrl": base_url, "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": base64.b64encode(key_der).decode(), "keyDetails": details,
                          "validFor": {"start": rfc3339(start)}},
            "logId": {"keyId": base64.b64encode(log_id).decode()}}


def _service(url: str, start: dt.datetime, version: int = 1) -> dict[str, Any]:
    return {"url": url, "majorApiVersion": version, "validFor": {"start": rfc3339(start)}, "operator": OPERATOR}


def _write_trust_files(stack: SigstoreStack, ca: FulcioCA, ct_pub: ec.EllipticCurvePublicKey,
                       rekor_pub: ec.EllipticCurvePublicKey, rekor2_pub: ed25519.Ed25519PublicKey,
                       tsa_chain: list[x509.Certificate], start: dt.datetime) -> None:
    trust = stack.workdir / "trust"
    tsa_start = min(c.not_valid_before_utc for c in tsa_chain)
    trusted_root = {
        "mediaType": MEDIA_TRUSTED_ROOT,
        "tlogs": [
            _tlog(stack.rekor_url, spki_der(rekor_pub), "PKIX_ECDSA_P256_SHA_256",
                  hashlib.sha256(spki_der(rekor_pub)).digest(), start),
            _tlog(stack.rekor_v2_url, spki_der(rekor2_pub), "PKIX_ED25519",
                  rekor_v2_log_id(stack.rekor_v2_origin, rekor2_pub), start),
        ],
        "certificateAuthorities": [{
            "subject": {"organization": "vouch testbed", "commonName": "vouch testbed Fulcio"},
            "uri": stack.fulcio_url,
            "certChain": {"certificates": [{"rawBytes": der_b64(c)} for c in (ca.intermediate, ca.root)]},
            "validFor": {"start": rfc3339(start)},
        }],
        "ctlogs": [_tlog(stack.ctlog_url, spki_der(ct_pub), "PKIX_ECDSA_P256_SHA_256",
                         hashlib.sha256(spki_der(ct_pub)).digest(), start)],
        "timestampAuthorities": [{
            "subject": {"organization": "vouch testbed", "commonName": "vouch testbed TSA"},
            "uri": stack.tsa_url,
            "certChain": {"certificates": [{"rawBytes": der_b64(c)} for c in tsa_chain]},
            "validFor": {"start": rfc3339(min(tsa_start, start))},
        }],
    }

    def signing_config(rekor: dict[str, Any], tsas: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "mediaType": MEDIA_SIGNING_CONFIG,
            "caUrls": [_service(stack.fulcio_url, start)],
            "oidcUrls": [_service(stack.oidc_issuer, start)],
            "rekorTlogUrls": [rekor],
            "tsaUrls": tsas,
            "rekorTlogConfig": {"selector": "ANY"},
            "tsaConfig": {"selector": "ANY"},
        }

    sc_v1 = signing_config(_service(stack.rekor_url, start, 1), [])
    sc_v2 = signing_config(_service(stack.rekor_v2_url, start, 2), [_service(stack.tsa_url, start)])

    def dump(name: str, doc: dict[str, Any]) -> Path:
        return _write(trust / name, json.dumps(doc, indent=2) + "\n")

    stack.trusted_root = dump("trusted_root.json", trusted_root)
    stack.signing_config = dump("signing_config.json", sc_v1)
    stack.signing_config_v2 = dump("signing_config_v2.json", sc_v2)
    stack.trust_config = dump("trust_config.json", {
        "mediaType": MEDIA_CLIENT_TRUST_CONFIG, "trustedRoot": trusted_root, "signingConfig": sc_v1})
    stack.trust_config_v2 = dump("trust_config_v2.json", {
        "mediaType": MEDIA_CLIENT_TRUST_CONFIG, "trustedRoot": trusted_root, "signingConfig": sc_v2})


@contextlib.contextmanager
def sigstore_stack(workdir: Path | None = None, **kwargs: Any) -> Iterator[SigstoreStack]:
    stack = start_sigstore_stack(workdir, **kwargs)
    try:
        yield stack
    finally:
        stack.stop()


__all__ = ["SigstoreStack", "SigstoreStackError", "check_network_isolation", "sigstore_stack",
           "start_sigstore_stack"]
