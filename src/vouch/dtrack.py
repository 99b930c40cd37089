"""Dependency-Track: upload a CycloneDX BOM (PUT /api/v1/bom) and wait for it to be processed."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import httpx

from vouch.errors import InputError, RegistryError
from vouch.oci.client import is_loopback


def _problem(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        text = resp.text.strip()
        return f": {text[:300]}" if text else ""
    if isinstance(data, dict):
        parts = [str(data[k]) for k in ("title", "detail") if data.get(k)]
        if parts:
            return ": " + " — ".join(parts)
    if isinstance(data, list):  # validation errors come as a list
        return ": " + "; ".join(str(x.get("message", x)) if isinstance(x, dict) else str(x) for x in data)[:500]
    return ""


def upload_bom(url: str, api_key: str, project: str, version: str, bom: bytes, auto_create: bool,
               wait: bool = True, timeout: float = 300.0, progress: Callable[[str], None] | None = None,
               transport: httpx.BaseTransport | None = None) -> dict[str, Any]:
    """Upload; return {"token", "processed"}. Raises with Dependency-Track's problem details on refusal."""
    if not api_key:
        raise InputError("no Dependency-Track API key: set DTRACK_API_KEY")
    base = url.rstrip("/")
    parsed = urlparse(base)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError(f"--url {url!r} is not an http(s) URL of a Dependency-Track server")
    if parsed.scheme == "http" and not is_loopback(parsed.netloc):
        raise InputError(f"--url {url} is plain HTTP: the API key would cross the network in clear text; "
                         "use the server's https:// URL")
    body = {"projectName": project, "projectVersion": version, "autoCreate": auto_create,
            "bom": base64.b64encode(bom).decode()}
    headers = {"X-Api-Key": api_key, "Content-Type": "application/json", "Accept": "application/json"}
    with httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0), transport=transport) as http:
        try:
            resp = http.put(f"{base}/api/v1/bom", json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise RegistryError(f"cannot reach Dependency-Track at {base}: {exc}") from exc
        if resp.status_code in (401, 403):
            raise RegistryError(f"Dependency-Track refused the API key (HTTP {resp.status_code}){_problem(resp)}; "
                                "check DTRACK_API_KEY and that its team has BOM_UPLOAD (and PROJECT_CREATION_UPLOAD "
                                "with --auto-create)", resp.status_code)
        if resp.status_code == 404:
            raise RegistryError(f"Dependency-Track: project {project!r} version {version!r} not found "
                                f"(HTTP 404){_problem(resp)}; pass --auto-create to create it", 404)
        if resp.status_code == 400:
            raise InputError(f"Dependency-Track rejected the BOM (HTTP 400){_problem(resp)}")
        if resp.status_code != 200:
            raise RegistryError(f"Dependency-Track answered HTTP {resp.status_code}{_problem(resp)}",
                                resp.status_code)
        try:
            token = str(resp.json()["token"])
        except (ValueError, KeyError, TypeError) as exc:
            raise RegistryError("Dependency-Track answered without a processing token") from exc
        if not wait:
            return {"token": token, "processed": False}
        deadline = time.monotonic() + timeout
        delay = 0.5
        while True:
            try:
                st = http.get(f"{base}/api/v1/event/token/{token}", headers=headers)
                processing = bool(st.json().get("processing")) if st.status_code == 200 else True
            except (httpx.HTTPError, ValueError):
                processing = True
            if not processing:
                return {"token": token, "processed": True}
            if time.monotonic() > deadline:
                raise RegistryError(f"Dependency-Track still processing after {timeout:.0f} s (token {token})")
            if progress:
                progress(f"processing (token {token})")
            time.sleep(delay)
            delay = min(delay * 1.5, 5.0)
