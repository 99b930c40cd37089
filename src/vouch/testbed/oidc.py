"""A test-only OpenID Connect issuer on 127.0.0.1 that mints ID tokens on demand.

One plain-HTTP server hosts several issuers, one per path (`http://127.0.0.1:PORT/<profile>`), each
with its discovery document (`/.well-known/openid-configuration`) and JWKS (`/jwks`). Tokens are RS256
JWTs built with `cryptography`. The profiles carry the claims real CI systems put in their tokens, so
that Fulcio, configured with the matching issuer type, fills the certificate's extensions:

- `gitlab`: GitLab CI `id_tokens` claims (Fulcio `ci-provider` with GitLab-like extension templates);
- `github`: GitHub Actions claims (Fulcio `ci-provider` with GitHub-like templates);
- `kubernetes`: a projected service-account token (Fulcio `kubernetes`: the SAN is
  `https://kubernetes.io/namespaces/NS/serviceaccounts/SA`).

Nothing here is for production: the signing key lives in memory and anyone who can reach the port
can read the keys (there is no endpoint that hands out tokens).
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

DEFAULT_AUDIENCE = "sigstore"
DEFAULT_LIFETIME = 600.0

# Where the CI systems in the claims pretend to live (only ever text in certificates).
GITLAB_URL = "https://gitlab.example"
GITHUB_URL = "https://github.example"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_bytes(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8 or 1, "big")


def gitlab_claims(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """GitLab CI `id_tokens` claims; a few primary claims (project_path, ref, ref_type, sha, job_id)
    drive the derived ones (sub, ref_path, ci_config_ref_uri, namespace_path) unless those are given."""
    c: dict[str, Any] = {
        "namespace_id": "7",
        "project_id": "42",
        "project_path": "platform/images",
        "user_id": "3",
        "user_login": "release-bot",
        "user_email": "release-bot@gitlab.example",
        "user_access_level": "developer",
        "pipeline_id": "1001",
        "pipeline_source": "push",
        "job_id": "5001",
        "ref": "main",
        "ref_type": "branch",
        "ref_protected": "true",
        "runner_id": "11",
        "runner_environment": "self-hosted",
        "sha": "1f2e3d4c5b6a79880011223344556677889900aa",
        "project_visibility": "private",
        "environment": "",
    }
    c.update(overrides)
    prefix = "refs/heads/" if c["ref_type"] == "branch" else "refs/tags/"
    host = GITLAB_URL.removeprefix("https://")
    derived = {
        "namespace_path": str(c["project_path"]).rsplit("/", 1)[0],
        "ref_path": prefix + str(c["ref"]),
        "ci_config_ref_uri": f"{host}/{c['project_path']}//.gitlab-ci.yml@{prefix}{c['ref']}",
        "ci_config_sha": c["sha"],
        "sub": f"project_path:{c['project_path']}:ref_type:{c['ref_type']}:ref:{c['ref']}",
    }
    for key, value in derived.items():
        c.setdefault(key, value)
    return c


def github_claims(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """GitHub Actions OIDC claims; repository, ref, sha and workflow drive the derived ones."""
    c: dict[str, Any] = {
        "repository": "platform/images",
        "repository_id": "4242",
        "repository_owner_id": "77",
        "repository_visibility": "private",
        "ref": "refs/heads/main",
        "ref_type": "branch",
        "sha": "1f2e3d4c5b6a79880011223344556677889900aa",
        "workflow": "release",
        "event_name": "push",
        "actor": "release-bot",
        "actor_id": "3",
        "run_id": "9001",
        "run_number": "12",
        "run_attempt": "1",
        "runner_environment": "self-hosted",
        "environment": "",
    }
    c.update(overrides)
    workflow_ref = f"{c['repository']}/.github/workflows/{c['workflow']}.yml@{c['ref']}"
    derived = {
        "repository_owner": str(c["repository"]).split("/", 1)[0],
        "workflow_ref": workflow_ref,
        "workflow_sha": c["sha"],
        "job_workflow_ref": workflow_ref,
        "job_workflow_sha": c["sha"],
        "sub": f"repo:{c['repository']}:ref:{c['ref']}",
    }
    for key, value in derived.items():
        c.setdefault(key, value)
    return c


def kubernetes_claims(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A projected service-account token: overrides `namespace` and `serviceaccount` are shortcuts
    for the nested `kubernetes.io` claim; `sub` follows them."""
    over = dict(overrides)
    namespace = str(over.pop("namespace", "release"))
    account = str(over.pop("serviceaccount", "signer"))
    c: dict[str, Any] = {
        "kubernetes.io": {
            "namespace": namespace,
            "pod": {"name": f"{account}-0", "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, namespace + "/pod"))},
            "serviceaccount": {"name": account, "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, namespace + "/" + account))},
        },
        "sub": f"system:serviceaccount:{namespace}:{account}",
    }
    c.update(over)
    return c


@dataclass(frozen=True)
class Profile:
    name: str
    claims: Callable[[Mapping[str, Any]], dict[str, Any]]


PROFILES: dict[str, Profile] = {
    "gitlab": Profile("gitlab", gitlab_claims),
    "github": Profile("github", github_claims),
    "kubernetes": Profile("kubernetes", kubernetes_claims),
}


class OIDCIssuer:
    """The issuers of `PROFILES` on one loopback port. `start()` binds it; `token()` mints."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, key_size: int = 2048) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        numbers = self._key.public_key().public_numbers()
        jwk = {"kty": "RSA", "alg": "RS256", "use": "sig", "n": b64url(_int_bytes(numbers.n)),
               "e": b64url(_int_bytes(numbers.e))}
        # RFC 7638 thumbprint as the key ID
        thumb = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
        digest = hashes.Hash(hashes.SHA256())
        digest.update(thumb.encode())
        self.kid = b64url(digest.finalize())
        self._jwks = {"keys": [{**jwk, "kid": self.kid}]}
        self._host, self._port = host, port
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- server --------------------------------------------------------------------------------
    def start(self) -> OIDCIssuer:
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = issuer._document(self.path.split("?", 1)[0])
                if body is None:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="vouch-oidc", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> OIDCIssuer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the OIDC issuer is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def issuer_url(self, profile: str = "gitlab") -> str:
        if profile not in PROFILES:
            raise ValueError(f"unknown OIDC profile {profile!r} (one of {', '.join(PROFILES)})")
        return f"{self.base_url}/{profile}"

    def _document(self, path: str) -> dict[str, Any] | None:
        for name in PROFILES:
            iss = self.issuer_url(name)
            if path == f"/{name}/.well-known/openid-configuration":
                return {
                    "issuer": iss,
                    "jwks_uri": f"{iss}/jwks",
                    "authorization_endpoint": f"{iss}/authorize",
                    "token_endpoint": f"{iss}/token",
                    "response_types_supported": ["id_token"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti"],
                }
            if path == f"/{name}/jwks":
                return self._jwks
        return None

    # -- tokens --------------------------------------------------------------------------------
    def claims(self, profile: str = "gitlab", *, subject: str | None = None,
               claims: Mapping[str, Any] | None = None, audience: str = DEFAULT_AUDIENCE,
               lifetime: float = DEFAULT_LIFETIME, now: float | None = None) -> dict[str, Any]:
        """The payload `token()` signs: the profile's CI claims, `claims` over them, then the
        registered claims (iss, aud, iat, nbf, exp, jti; `subject` sets sub)."""
        iss = self.issuer_url(profile)
        body = PROFILES[profile].claims(claims or {})
        issued = int(time.time() if now is None else now)
        body.update({"iss": iss, "aud": audience, "iat": issued, "nbf": issued,
                     "exp": issued + int(lifetime), "jti": uuid.uuid4().hex})
        if subject is not None:
            body["sub"] = subject
        for key in ("iss", "aud", "exp", "iat", "nbf"):  # an explicit override wins, even a bad one
            if claims and key in claims:
                body[key] = claims[key]
        return body

    def sign(self, payload: Mapping[str, Any]) -> str:
        """An RS256 JWS (compact) over `payload`, signed with this issuer's key."""
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + b64url(json.dumps(dict(payload), separators=(",", ":")).encode()))
        signature = self._key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(signature)

    def token(self, profile: str = "gitlab", *, subject: str | None = None,
              claims: Mapping[str, Any] | None = None, audience: str = DEFAULT_AUDIENCE,
              lifetime: float = DEFAULT_LIFETIME) -> str:
        """A fresh ID token from the `profile` issuer (see `claims()`)."""
        return self.sign(self.claims(profile, subject=subject, claims=claims, audience=audience,
                                     lifetime=lifetime))


def decode_unverified(token: str) -> dict[str, Any]:
    """The payload of a compact JWS, unverified (for tests and diagnostics)."""
    part = token.split(".")[1]
    payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return payload
