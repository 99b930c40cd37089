"""A loopback token service for docker-registry's `auth: token` mode (the flow Harbor uses).

The registry is the real CNCF distribution; this is the small piece that issues its JWTs: it checks
Basic credentials, grants the requested scope, and signs an RS256 token with a certificate the
registry trusts (`rootcertbundle`), the certificate itself in the `x5c` header.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    directory: Path
    username: str = "robot$akko+ci"
    password: str = "robot-secret"
    service: str = "vouch-registry"
    issuer: str = "vouch-test-issuer"
    requests: list[dict[str, object]] = field(default_factory=list)
    _server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> TokenServer:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vouch token signer")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = self.directory / "token-signer.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                q = parse_qs(urlparse(self.path).query)
                auth = self.headers.get("Authorization", "")
                ok = auth == "Basic " + base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
                server.requests.append({"scope": q.get("scope", []), "service": q.get("service", []),
                                        "authorized": ok})
                if not ok:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                access = []
                for scope in q.get("scope", []):
                    typ, name, actions = scope.split(":")
                    access.append({"type": typ, "name": name, "actions": actions.split(",")})
                body = json.dumps({"token": server.token(access), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def realm(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def token(self, access: list[dict[str, object]]) -> str:
        header = {"typ": "JWT", "alg": "RS256",
                  "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]}
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": self.username, "aud": self.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        sig = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(sig)}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
