"""Registry credentials (Docker config.json, credential helpers, env) and auth challenges."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

from vouch.errors import InputError
from vouch.record import record


@record(frozen=True)
class Credentials:
    username: str
    password: str

    @property
    def is_identity_token(self) -> bool:
        return self.username == "<token>"

    def __repr__(self) -> str:  # never print a secret
        return f"Credentials(username={self.username!r}, password=***)"


def _config_path() -> Path | None:
    for env in ("VOUCH_REGISTRY_AUTH_FILE", "REGISTRY_AUTH_FILE"):
        val = os.environ.get(env)
        if val:
            return Path(val)
    base = os.environ.get("DOCKER_CONFIG")
    path = Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"
    return path if path.exists() else None


def _host_keys(host: str) -> list[str]:
    keys = [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"]
    if host in ("docker.io", "registry-1.docker.io", "index.docker.io"):
        keys += ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"]
    return keys


def _run_helper(helper: str, host: str) -> Credentials | None:
    import shutil
    import subprocess  # (here: most commands never run a helper, and subprocess costs start-up time)

    exe = shutil.which(f"docker-credential-{helper}")
    if exe is None:
        raise InputError(
            f"credential helper docker-credential-{helper} (configured for {host}) is not on PATH; "
            "install it or remove it from your Docker config"
        )
    try:
        proc = subprocess.run([exe, "get"], input=host.encode(), capture_output=True, timeout=30, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InputError(f"credential helper docker-credential-{helper} timed out for {host}") from exc
    if proc.returncode != 0:
        # "credentials not found in native keychain" is not an error: anonymous access then.
        return None
    try:
        data = json.loads(proc.stdout)
        return Credentials(str(data["Username"]), str(data["Secret"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"credential helper docker-credential-{helper} printed something unreadable") from exc


def lookup_credentials(host: str) -> Credentials | None:
    """Credentials for a registry host: env override, then config.json credHelpers/auths/credsStore."""
    user = os.environ.get("VOUCH_REGISTRY_USERNAME")
    password = os.environ.get("VOUCH_REGISTRY_PASSWORD")
    only = os.environ.get("VOUCH_REGISTRY_HOST")
    if user is not None and password is not None and (not only or only == host):
        return Credentials(user, password)
    path = _config_path()
    if path is None:
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read registry credentials from {path}: {exc}") from exc
    keys = _host_keys(host)
    helpers = config.get("credHelpers") or {}
    for key in keys:
        if key in helpers:
            return _run_helper(str(helpers[key]), host)
    auths = config.get("auths") or {}
    for key in keys:
        entry = auths.get(key)
        if not entry:
            continue
        if entry.get("identitytoken"):
            return Credentials("<token>", str(entry["identitytoken"]))
        if entry.get("auth"):
            try:
                raw = base64.b64decode(entry["auth"]).decode()
                u, _, p = raw.partition(":")
            except (ValueError, UnicodeDecodeError) as exc:
                raise InputError(f"the auth entry for {key} in {path} is not valid base64 user:password") from exc
            return Credentials(u, p)
        if "username" in entry and "password" in entry:
            return Credentials(str(entry["username"]), str(entry["password"]))
    store = config.get("credsStore")
    if store:
        return _run_helper(str(store), host)
    return None


_PARAM_RE = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')


@record(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer"
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _PARAM_RE.finditer(rest)}
    return Challenge(scheme.lower(), params)


def basic_header(creds: Credentials) -> str:
    token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    return f"Basic {token}"
