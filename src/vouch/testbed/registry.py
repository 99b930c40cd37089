"""Real `docker-registry` (CNCF distribution, Debian package) instances on free loopback ports.

Used by the test suite, the demo and the benchmarks: nothing here is a mock.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_ca_and_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost signed by it (openssl)."""
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"

    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True)

    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=vouch test CA",
        "-keyout", str(ca_key), "-out", str(ca_crt))
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", str(key), "-out", str(csr))
    ext = directory / "ext.cnf"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(crt))
    return ca_crt, crt, key


@dataclass
class RegistryServer:
    mode: str  # plain | basic | tls
    host: str
    process: subprocess.Popen[bytes] | None
    root: Path
    username: str = "vouch"
    password: str = "s3cret-pass"
    ca_file: Path | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.mode == 'tls' else 'http'}://{self.host}"

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        return (self.root / "registry.log").read_text(errors="replace")


def start_registry(mode: str = "plain", token: dict[str, str] | None = None) -> RegistryServer:
    """mode: plain | basic | tls | token. For token, `token` gives realm, service, issuer and
    rootcertbundle (the certificate whose key signs the tokens)."""
    exe = shutil.which("docker-registry")
    if exe is None:
        raise RuntimeError("docker-registry is not installed: run scripts/install-peers.sh (apt docker-registry)")
    root = Path(tempfile.mkdtemp(prefix=f"vouch-registry-{mode}-"))
    port, debug_port = free_port(), free_port()
    lines = [
        "version: 0.1",
        "log: {level: warn}",
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}",
    ]
    http = f"http: {{addr: 127.0.0.1:{port}, debug: {{addr: 127.0.0.1:{debug_port}}}"
    ca_file = None
    server = RegistryServer(mode, f"127.0.0.1:{port}", None, root)
    if mode == "tls":
        ca_file, crt, key = make_ca_and_cert(root)
        http += f", tls: {{certificate: {crt}, key: {key}}}"
    http += "}"
    lines.append(http)
    if mode == "token":
        assert token is not None
        lines.append(f"auth: {{token: {{realm: '{token['realm']}', service: {token['service']}, "
                     f"issuer: {token['issuer']}, rootcertbundle: {token['rootcertbundle']}}}}}")
    if mode == "basic":
        htfile = root / "htpasswd"
        out = subprocess.run(["htpasswd", "-Bbn", server.username, server.password], check=True,
                             capture_output=True).stdout
        htfile.write_bytes(out)
        lines.append(f"auth: {{htpasswd: {{realm: vouch-test, path: {htfile}}}}}")
    config = root / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    logf = (root / "registry.log").open("wb")
    proc = subprocess.Popen([exe, "serve", str(config)], stdout=logf, stderr=subprocess.STDOUT,
                            env={**os.environ, "OTEL_TRACES_EXPORTER": "none"})
    server.process = proc
    server.ca_file = ca_file
    ctx = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {server.log()}")
        try:
            urllib.request.urlopen(f"{server.url}/v2/", timeout=1, context=ctx)
            return server
        except urllib.error.HTTPError as exc:
            if exc.code == 401:  # auth modes answer /v2/ with a challenge once ready
                return server
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.05)
    with contextlib.suppress(Exception):
        server.stop()
    raise RuntimeError("docker-registry did not become ready in 20 s")
