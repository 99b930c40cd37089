"""Dependency-Track: upload a CycloneDX BOM (PUT /api/v1/bom) and wait for it to be processed; a whole
release as one project per image under a parent project.

The endpoints and fields are those of Dependency-Track's published v1 OpenAPI document
(github.com/DependencyTrack/docs, docs/reference/api/openapi-v1.yaml, commit fd726ec2bbf9, Aug 2026;
the same operations exist in the 4.x API server): PUT /v1/bom (BomSubmitRequest: projectName,
projectVersion, autoCreate, parentUUID, isLatest, bom base64), GET /v1/event/token/{uuid}
({processing}), GET /v1/project/lookup?name&version, PUT /v1/project (create, 201),
GET/PUT/POST /v1/project/{uuid}/property.

A re-upload is skipped by a project property (group `vouch`, name `bom.serialNumber`, value
`<serialNumber>#<version>` of the BOM last processed): Dependency-Track keeps a BOM's serial number
internally but its API has no operation that returns it for a project, while project properties are
readable and writable through the API. The property is written only after processing finished, so an
interrupted upload is done again next time.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from vouch.errors import InputError, RegistryError, VouchError
from vouch.lean_httpx import httpx
from vouch.oci.client import is_loopback

PROPERTY_GROUP = "vouch"
PROPERTY_NAME = "bom.serialNumber"


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


def bom_identity(bom: dict[str, Any]) -> str | None:
    """`<serialNumber>#<version>`, or None when the BOM has no serial number (then it is always uploaded)."""
    serial = bom.get("serialNumber")
    if not isinstance(serial, str) or not serial:
        return None
    return f"{serial}#{bom.get('version', 1)}"


class DTrack:
    """The few v1 operations vouch uses, with one-line errors carrying Dependency-Track's problem details."""

    def __init__(self, url: str, api_key: str, transport: httpx.BaseTransport | None = None,
                 timeout: float = 300.0) -> None:
        if not api_key:
            raise InputError("no Dependency-Track API key: set DTRACK_API_KEY")
        self.base = url.rstrip("/")
        parsed = urlparse(self.base)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InputError(f"--url {url!r} is not an http(s) URL of a Dependency-Track server")
        if parsed.scheme == "http" and not is_loopback(parsed.netloc):
            raise InputError(f"--url {url} is plain HTTP: the API key would cross the network in clear text; "
                             "use the server's https:// URL")
        self.timeout = timeout
        self.headers = {"X-Api-Key": api_key, "Accept": "application/json"}
        self.http = httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0), transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> DTrack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, what: str, **kw: Any) -> httpx.Response:
        try:
            resp = self.http.request(method, f"{self.base}/api{path}", headers=self.headers, **kw)
        except httpx.HTTPError as exc:
            raise RegistryError(f"cannot reach Dependency-Track at {self.base}: {exc}") from exc
        if resp.status_code in (401, 403):
            raise RegistryError(f"Dependency-Track refused the API key (HTTP {resp.status_code}){_problem(resp)}; "
                                f"check DTRACK_API_KEY and that its team may {what}", resp.status_code)
        return resp

    def _fail(self, resp: httpx.Response, what: str) -> RegistryError:
        return RegistryError(f"Dependency-Track answered HTTP {resp.status_code} to {what}{_problem(resp)}",
                             resp.status_code)

    def _json(self, resp: httpx.Response, what: str) -> Any:
        try:
            return resp.json()
        except ValueError as exc:
            raise RegistryError(f"Dependency-Track answered {what} with something that is not JSON") from exc

    def lookup(self, name: str, version: str) -> dict[str, Any] | None:
        resp = self._call("GET", "/v1/project/lookup", "view the portfolio (VIEW_PORTFOLIO)",
                          params={"name": name, "version": version})
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self._fail(resp, f"the lookup of project {name!r} {version!r}")
        data = self._json(resp, "the project lookup")
        if not isinstance(data, dict) or not isinstance(data.get("uuid"), str):
            raise RegistryError("Dependency-Track answered the project lookup without a project uuid")
        return data

    def create_project(self, name: str, version: str, classifier: str = "APPLICATION") -> dict[str, Any]:
        resp = self._call("PUT", "/v1/project", "create projects (PORTFOLIO_MANAGEMENT)",
                          json={"name": name, "version": version, "classifier": classifier, "active": True})
        if resp.status_code not in (200, 201):
            raise self._fail(resp, f"the creation of project {name!r} {version!r}")
        data = self._json(resp, "the project creation")
        if not isinstance(data, dict) or not isinstance(data.get("uuid"), str):
            raise RegistryError("Dependency-Track created a project but answered without its uuid")
        return data

    def properties(self, uuid: str) -> list[dict[str, Any]]:
        resp = self._call("GET", f"/v1/project/{uuid}/property", "read project properties (PORTFOLIO_MANAGEMENT)")
        if resp.status_code != 200:
            raise self._fail(resp, "the read of the project's properties")
        data = self._json(resp, "the property list")
        return [p for p in data if isinstance(p, dict)] if isinstance(data, list) else []

    def uploaded_identity(self, uuid: str) -> str | None:
        for p in self.properties(uuid):
            if p.get("groupName") == PROPERTY_GROUP and p.get("propertyName") == PROPERTY_NAME:
                value = p.get("propertyValue")
                return str(value) if value is not None else None
        return None

    def set_identity(self, uuid: str, value: str, exists: bool) -> None:
        body = {"groupName": PROPERTY_GROUP, "propertyName": PROPERTY_NAME, "propertyValue": value}
        what = "write project properties (PORTFOLIO_MANAGEMENT)"
        if not exists:
            resp = self._call("PUT", f"/v1/project/{uuid}/property", what, json={**body, "propertyType": "STRING",
                              "description": "CycloneDX serialNumber#version of the BOM vouch last uploaded"})
            if resp.status_code in (200, 201):
                return
            if resp.status_code != 409:  # 409: it exists after all (another uploader): update it
                raise self._fail(resp, "the creation of the project property")
        resp = self._call("POST", f"/v1/project/{uuid}/property", what, json=body)
        if resp.status_code not in (200, 201):
            raise self._fail(resp, "the update of the project property")

    def put_bom(self, project: str, version: str, bom: bytes, auto_create: bool, parent_uuid: str | None = None,
                latest: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"projectName": project, "projectVersion": version, "autoCreate": auto_create,
                                "bom": base64.b64encode(bom).decode()}
        if parent_uuid:
            body["parentUUID"] = parent_uuid
        if latest:
            body["isLatest"] = True
        resp = self._call("PUT", "/v1/bom", "upload BOMs (BOM_UPLOAD, and PROJECT_CREATION_UPLOAD with "
                          "--auto-create)", json=body)
        if resp.status_code == 404:
            raise RegistryError(f"Dependency-Track: project {project!r} version {version!r} not found "
                                f"(HTTP 404){_problem(resp)}; pass --auto-create to create it", 404)
        if resp.status_code == 400:
            raise InputError(f"Dependency-Track rejected the BOM (HTTP 400){_problem(resp)}")
        if resp.status_code != 200:
            raise RegistryError(f"Dependency-Track answered HTTP {resp.status_code}{_problem(resp)}",
                                resp.status_code)
        data = self._json(resp, "the BOM upload")
        if not isinstance(data, dict) or "token" not in data:
            raise RegistryError("Dependency-Track answered without a processing token")
        return {"token": str(data["token"]), "projectUuid": data.get("projectUuid")}

    def processing(self, token: str) -> bool:
        try:
            st = self.http.get(f"{self.base}/api/v1/event/token/{token}", headers=self.headers)
            return bool(st.json().get("processing")) if st.status_code == 200 else True
        except (httpx.HTTPError, ValueError, AttributeError):
            return True

    def wait(self, tokens: list[str], progress: Callable[[str], None] | None = None) -> None:
        """Until none of the tokens is being processed (or the timeout)."""
        deadline = time.monotonic() + self.timeout
        delay = 0.5
        pending = list(tokens)
        while True:
            pending = [t for t in pending if self.processing(t)]
            if not pending:
                return
            if time.monotonic() > deadline:
                more = f" and {len(pending) - 1} more" if len(pending) > 1 else ""
                raise RegistryError(f"Dependency-Track still processing after {self.timeout:.0f} s "
                                    f"(token {pending[0]}{more})")
            if progress:
                progress(f"processing ({len(pending)} BOM(s), token {pending[0]})")
            time.sleep(delay)
            delay = min(delay * 1.5, 5.0)


def upload_bom(url: str, api_key: str, project: str, version: str, bom: bytes, auto_create: bool,
               wait: bool = True, timeout: float = 300.0, progress: Callable[[str], None] | None = None,
               transport: httpx.BaseTransport | None = None) -> dict[str, Any]:
    """Upload; return {"token", "processed"}. Raises with Dependency-Track's problem details on refusal."""
    with DTrack(url, api_key, transport, timeout) as dt:
        token = dt.put_bom(project, version, bom, auto_create)["token"]
        if not wait:
            return {"token": token, "processed": False}
        dt.wait([token], progress)
        return {"token": token, "processed": True}


@dataclass
class ReleaseUpload:
    project: str
    digest: str
    status: str = ""  # uploaded, skipped, not uploaded
    token: str = ""
    reason: str = ""
    exit_code: int = 0
    identity: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"project": self.project, "digest": self.digest, "status": self.status,
                **({"token": self.token} if self.token else {}), **({"reason": self.reason} if self.reason else {}),
                **({"bom": self.identity} if self.identity else {})}


def upload_release(dt: DTrack, parent_name: str, version: str, items: list[tuple[str, str, dict[str, Any]]],
                   auto_create: bool, latest: bool = False, wait: bool = True,
                   progress: Callable[[str], None] | None = None) -> tuple[dict[str, Any], list[ReleaseUpload]]:
    """items: (project name, digest, BOM). The parent project NAME/VERSION is looked up (or created with
    auto_create); each image's project is created under it by the upload (autoCreate + parentUUID); a
    project whose `vouch` property already names this BOM's serialNumber#version is skipped. Returns the
    parent and one result per item; an item's fault is kept in its result, the others go on."""
    parent = dt.lookup(parent_name, version)
    if parent is None:
        if not auto_create:
            raise RegistryError(f"Dependency-Track has no parent project {parent_name!r} version {version!r}; "
                                "pass --auto-create to create it", 404)
        parent = dt.create_project(parent_name, version)
    puuid = str(parent["uuid"])
    results: list[ReleaseUpload] = []
    started: list[tuple[ReleaseUpload, bool]] = []
    for name, digest, bom in items:
        res = ReleaseUpload(name, digest, identity=bom_identity(bom))
        results.append(res)
        try:
            existing = dt.lookup(name, version)
            had = None if existing is None else dt.uploaded_identity(str(existing["uuid"]))
            if res.identity is not None and had == res.identity:
                res.status = "skipped"
                res.reason = "this BOM (same serialNumber and version) is already there"
                continue
            import json

            up = dt.put_bom(name, version, json.dumps(bom).encode(), auto_create, puuid, latest)
            res.status, res.token = "uploaded", up["token"]
            res.extra["projectUuid"] = up.get("projectUuid") or (existing or {}).get("uuid")
            if existing is not None and (existing.get("parent") or {}).get("uuid") not in (None, puuid):
                res.reason = "the project exists under another parent: left there"
            started.append((res, had is not None))
        except VouchError as exc:
            res.status, res.reason, res.exit_code = "not uploaded", str(exc), exc.exit_code
    if not wait:
        return parent, results
    dt.wait([r.token for r, _ in started], progress)
    for res, marked in started:
        res.status = "processed"
        if res.identity is None:
            continue
        try:
            uuid = res.extra.get("projectUuid") or (dt.lookup(res.project, version) or {}).get("uuid")
            if uuid:
                dt.set_identity(str(uuid), res.identity, marked)
        except VouchError as exc:  # processed, but the next run will upload it again
            res.reason = f"processed; the marker property could not be written: {exc}"
    return parent, results
