"""A small OCI distribution-spec v1.1 registry **with the referrers API**, for tests only.

Why it exists: the test bed's real registry (Debian `docker-registry`, distribution 2.8) has no
referrers API, and no registry that has one can be built here (zot and olareg are not on the module
proxy, distribution v3 lacks the API, go-containerregistry's `pkg/registry` ignores the
`artifactType` filter and mislabels `artifactType`). Testing cosign 3's sigstore-bundle-as-referrer
layout needs one that follows https://github.com/opencontainers/distribution-spec/blob/main/spec.md,
so this is one, written from the spec: blobs (monolithic, chunked, cross-repository mount),
manifests (by tag or digest, references checked, `OCI-Subject`), tag lists and referrers (with the
`artifactType` filter), both paginated with `Link`.

Tests only: no auth, no garbage collection, one lock around all state. Contents live in a temporary
directory, the index of repositories (tags, manifests, blob links) in memory. `referrers=False`
answers 404 on `/referrers/` and omits `OCI-Subject`, like a registry without the API.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlencode, urlsplit

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MAX_MANIFEST = 4 * 1024 * 1024
MAX_BODY = 512 * 1024 * 1024
NAME = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
DIGEST = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")
# Most specific first: a repository name may contain slashes (even a component named "blobs").
ROUTES = [
    ("upload", re.compile(r"/v2/(?P<name>.+)/blobs/uploads/(?P<ref>[^/]*)")),
    ("blob", re.compile(r"/v2/(?P<name>.+)/blobs/(?P<ref>[^/]+)")),
    ("manifest", re.compile(r"/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)")),
    ("tags", re.compile(r"/v2/(?P<name>.+)/tags/(?P<ref>list)")),
    ("referrers", re.compile(r"/v2/(?P<name>.+)/referrers/(?P<ref>[^/]+)")),
]


class LoggedRequest(NamedTuple):
    """One request as the registry saw it (query is the raw query string)."""

    method: str
    path: str
    query: str
    status: int


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class OciError(Exception):
    """An error, answered in the spec's JSON error format."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail

    def response(self) -> Response:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            err["detail"] = self.detail
        return Response(self.status, {"Content-Type": "application/json"}, json.dumps({"errors": [err]}).encode())


@dataclass
class _Req:
    name: str
    ref: str  # the path's last part: digest, tag, upload id ("" to start one) or "list"
    query: dict[str, list[str]]
    headers: Message
    body: bytes

    def arg(self, key: str) -> str | None:
        values = self.query.get(key)
        return values[0] if values else None


@dataclass
class _Manifest:
    media_type: str
    digest: str
    size: int
    subject: str | None
    artifact_type: str | None
    annotations: dict[str, str] | None

    def descriptor(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "size": self.size, "digest": self.digest}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = self.annotations
        return out


@dataclass
class _Repo:
    blobs: set[str] = field(default_factory=set)
    manifests: dict[str, _Manifest] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class _Upload:
    name: str
    path: Path
    size: int = 0


def _digest(value: str | None) -> str:
    if value is None or not DIGEST.fullmatch(value):
        raise OciError(400, "DIGEST_INVALID", f"invalid digest {value!r}")
    return value


def _matches(digest: str, data: bytes) -> bool:
    algorithm = digest.split(":", 1)[0]
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}" == digest


class OciRegistry:
    """The registry's state and request handling; `start_oci_registry` serves it over HTTP."""

    def __init__(self, root: Path, referrers: bool = True, page_size: int | None = None) -> None:
        self.root, self.referrers, self.page_size = root, referrers, page_size
        self.host = ""
        self._repos: dict[str, _Repo] = {}
        self._uploads: dict[str, _Upload] = {}
        self._log: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        (root / "uploads").mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def requests(self) -> list[LoggedRequest]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        shutil.rmtree(self.root, ignore_errors=True)

    def handle(self, method: str, target: str, headers: Message, body: bytes) -> Response:
        url = urlsplit(target)
        with self._lock:
            try:
                resp = self._route(method, url.path, parse_qs(url.query, keep_blank_values=True), headers, body)
            except OciError as exc:
                resp = exc.response()
            self._log.append(LoggedRequest(method, url.path, url.query, resp.status))
        resp.headers.setdefault("Docker-Distribution-API-Version", "registry/2.0")
        return resp

    def _route(self, method: str, path: str, query: dict[str, list[str]], headers: Message, body: bytes) -> Response:
        if path in ("/v2", "/v2/"):
            return Response(200, {"Content-Type": "application/json"}, b"{}")
        for kind, pattern in ROUTES:  # noqa: B007 (kind is used after the loop)
            if m := pattern.fullmatch(path):
                break
        else:
            raise OciError(404, "UNSUPPORTED", f"no such endpoint: {path}")
        if not NAME.fullmatch(m["name"]):
            raise OciError(400, "NAME_INVALID", f"invalid repository name {m['name']!r}")
        handler = getattr(self, f"_{kind}_{'get' if method == 'HEAD' else method.lower()}", None)
        if handler is None:
            raise OciError(405, "UNSUPPORTED", f"{method} is not supported on {path}")
        resp: Response = handler(_Req(m["name"], m["ref"], query, headers, body))
        return resp

    # ---- storage: contents by digest on disk, shared by all repositories ------------------

    def _content(self, digest: str) -> Path:
        algorithm, hexpart = digest.split(":", 1)
        return self.root / "blobs" / algorithm / hexpart

    def _store(self, digest: str, data: bytes | Path) -> None:
        path = self._content(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, Path):
            os.replace(data, path)
        elif not path.exists():
            tmp = path.with_name(f".{uuid.uuid4().hex}")
            tmp.write_bytes(data)
            os.replace(tmp, path)

    def _blob_created(self, name: str, digest: str) -> Response:
        self._repos.setdefault(name, _Repo()).blobs.add(digest)
        return Response(201, {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest})

    # ---- blobs ----------------------------------------------------------------------------

    def _linked_blob(self, r: _Req) -> str:
        digest = _digest(r.ref)
        if digest not in self._repos.get(r.name, _Repo()).blobs:
            raise OciError(404, "BLOB_UNKNOWN", f"blob {digest} unknown to {r.name}")
        return digest

    def _blob_get(self, r: _Req) -> Response:
        digest = self._linked_blob(r)
        return Response(200, {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest},
                        self._content(digest).read_bytes())  # (no Range: clients need it only to resume)

    def _blob_delete(self, r: _Req) -> Response:
        self._repos[r.name].blobs.discard(self._linked_blob(r))
        return Response(202)

    # ---- uploads --------------------------------------------------------------------------

    def _upload_post(self, r: _Req) -> Response:
        if r.ref:
            raise OciError(405, "UNSUPPORTED", "POST starts an upload at /blobs/uploads/")
        if (mount := r.arg("mount")) is not None:
            source = self._repos.get(r.arg("from") or "")
            if source is not None and _digest(mount) in source.blobs:
                return self._blob_created(r.name, mount)
            # not mountable: the spec says answer 202 and start an ordinary upload
        elif (digest := r.arg("digest")) is not None:  # the whole blob in this one POST
            if not _matches(_digest(digest), r.body):
                raise OciError(400, "DIGEST_INVALID", f"content does not match {digest}")
            self._store(digest, r.body)
            return self._blob_created(r.name, digest)
        upload_id = uuid.uuid4().hex
        self._uploads[upload_id] = _Upload(r.name, self.root / "uploads" / upload_id)
        self._uploads[upload_id].path.write_bytes(b"")
        return self._upload_status(upload_id, 202)

    def _session(self, r: _Req) -> _Upload:
        upload = self._uploads.get(r.ref)
        if upload is None or upload.name != r.name:
            raise OciError(404, "BLOB_UPLOAD_UNKNOWN", f"upload {r.ref!r} unknown to {r.name}")
        return upload

    def _upload_status(self, upload_id: str, status: int) -> Response:
        upload = self._uploads[upload_id]
        return Response(status, {"Location": f"/v2/{upload.name}/blobs/uploads/{upload_id}",
                                 "Range": f"0-{max(upload.size - 1, 0)}", "Docker-Upload-UUID": upload_id})

    def _append(self, r: _Req) -> None:
        upload = self._session(r)
        if (content_range := r.headers.get("Content-Range")) is not None:  # optional: Go streams without it
            m = re.fullmatch(r"([0-9]+)-([0-9]+)", content_range.strip())
            if not m or int(m[1]) != upload.size or int(m[2]) - int(m[1]) + 1 != len(r.body):
                raise OciError(416, "BLOB_UPLOAD_INVALID", f"range {content_range!r} does not continue at "
                                                           f"{upload.size} with {len(r.body)} bytes")
        with upload.path.open("ab") as f:
            f.write(r.body)
        upload.size += len(r.body)

    def _upload_patch(self, r: _Req) -> Response:
        self._append(r)
        return self._upload_status(r.ref, 202)

    def _upload_put(self, r: _Req) -> Response:
        digest = _digest(r.arg("digest"))
        if r.body:  # a last chunk may come with the PUT
            self._append(r)
        upload = self._session(r)
        if not _matches(digest, upload.path.read_bytes()):
            raise OciError(400, "DIGEST_INVALID", f"uploaded content does not match {digest}")
        del self._uploads[r.ref]
        self._store(digest, upload.path)
        return self._blob_created(r.name, digest)

    def _upload_get(self, r: _Req) -> Response:
        self._session(r)
        return self._upload_status(r.ref, 204)

    def _upload_delete(self, r: _Req) -> Response:
        self._session(r).path.unlink(missing_ok=True)
        del self._uploads[r.ref]
        return Response(204)

    # ---- manifests ------------------------------------------------------------------------

    def _manifest_put(self, r: _Req) -> Response:
        if len(r.body) > MAX_MANIFEST:
            raise OciError(413, "SIZE_INVALID", f"manifest larger than {MAX_MANIFEST} bytes")
        try:
            doc = json.loads(r.body)
        except ValueError as exc:
            raise OciError(400, "MANIFEST_INVALID", f"manifest is not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise OciError(400, "MANIFEST_INVALID", "manifest is not a JSON object")
        media_type = (r.headers.get("Content-Type") or "").split(";")[0].strip() or doc.get("mediaType")
        if not isinstance(media_type, str) or not media_type:
            raise OciError(400, "MANIFEST_INVALID", "no Content-Type and no mediaType")
        if doc.get("mediaType", media_type) != media_type:
            raise OciError(400, "MANIFEST_INVALID", f"mediaType {doc['mediaType']!r} != Content-Type")
        tag = None if DIGEST.fullmatch(r.ref) else r.ref
        digest = r.ref if tag is None else "sha256:" + hashlib.sha256(r.body).hexdigest()
        if tag is None and not _matches(digest, r.body):
            raise OciError(400, "DIGEST_INVALID", f"manifest does not match {digest}")
        if tag is not None and not TAG.fullmatch(tag):
            raise OciError(400, "MANIFEST_INVALID", f"invalid tag {tag!r}")
        config, subject = doc.get("config"), doc.get("subject")
        blobs = ([config] if config is not None else []) + list(doc.get("layers") or [])
        children = list(doc.get("manifests") or [])
        for desc in [*blobs, *children, *([subject] if subject is not None else [])]:
            if not isinstance(desc, dict) or not DIGEST.fullmatch(str(desc.get("digest"))):
                raise OciError(400, "MANIFEST_INVALID", f"invalid descriptor {desc!r}")
        repo = self._repos.get(r.name, _Repo())
        missing = [d["digest"] for d in blobs if d["digest"] not in repo.blobs]
        missing += [d["digest"] for d in children if d["digest"] not in repo.manifests]
        if missing:  # (the subject may be pushed later: the spec says it need not exist)
            raise OciError(400, "MANIFEST_BLOB_UNKNOWN", f"manifest references unknown {', '.join(missing)}",
                           {"missing": missing})
        # The referrers descriptor's artifactType: the manifest's own, else its config's media type.
        artifact_type = doc.get("artifactType") or (config.get("mediaType") if config is not None else None)
        annotations = doc.get("annotations")
        self._store(digest, r.body)
        repo = self._repos.setdefault(r.name, repo)
        repo.manifests[digest] = _Manifest(media_type, digest, len(r.body), subject["digest"] if subject else None,
                                           artifact_type if isinstance(artifact_type, str) else None,
                                           annotations if isinstance(annotations, dict) else None)
        if tag is not None:
            repo.tags[tag] = digest
        out = {"Location": f"/v2/{r.name}/manifests/{digest}", "Docker-Content-Digest": digest}
        if subject is not None and self.referrers:
            out["OCI-Subject"] = subject["digest"]
        return Response(201, out)

    def _resolve(self, r: _Req) -> tuple[_Repo, _Manifest]:
        if (repo := self._repos.get(r.name)) is None:
            raise OciError(404, "NAME_UNKNOWN", f"repository {r.name} unknown")
        found = repo.manifests.get(r.ref if DIGEST.fullmatch(r.ref) else repo.tags.get(r.ref, ""))
        if found is None:
            raise OciError(404, "MANIFEST_UNKNOWN", f"manifest {r.ref} unknown to {r.name}")
        return repo, found

    def _manifest_get(self, r: _Req) -> Response:
        _, found = self._resolve(r)
        return Response(200, {"Content-Type": found.media_type, "Docker-Content-Digest": found.digest},
                        self._content(found.digest).read_bytes())

    def _manifest_delete(self, r: _Req) -> Response:
        repo, found = self._resolve(r)
        if DIGEST.fullmatch(r.ref):  # the manifest and every tag on it
            del repo.manifests[found.digest]
            repo.tags = {t: d for t, d in repo.tags.items() if d != found.digest}
        else:
            del repo.tags[r.ref]
        return Response(202)

    # ---- listing --------------------------------------------------------------------------

    def _tags_get(self, r: _Req) -> Response:
        if (repo := self._repos.get(r.name)) is None:
            raise OciError(404, "NAME_UNKNOWN", f"repository {r.name} unknown")
        last = r.arg("last")
        tags = [t for t in sorted(repo.tags) if last is None or t > last]
        out = {"Content-Type": "application/json"}
        if (n := r.arg("n")) is not None:
            if not n.isdigit():
                raise OciError(400, "UNSUPPORTED", f"invalid n {n!r}")
            if 0 < int(n) < len(tags):
                out["Link"] = f'</v2/{r.name}/tags/list?{urlencode({"n": n, "last": tags[int(n) - 1]})}>; rel="next"'
            tags = tags[:int(n)]
        return Response(200, out, json.dumps({"name": r.name, "tags": tags}).encode())

    def _referrers_get(self, r: _Req) -> Response:
        if not self.referrers:
            raise OciError(404, "UNSUPPORTED", "this registry has no referrers API")
        digest = _digest(r.ref)
        # The spec: a registry with the API never answers 404 here, not even for an unknown repository.
        manifests = self._repos.get(r.name, _Repo()).manifests.values()
        found = sorted((m for m in manifests if m.subject == digest), key=lambda m: m.digest)
        out, params = {"Content-Type": OCI_INDEX}, dict[str, str]()
        if (wanted := r.arg("artifactType")) is not None:
            found = [m for m in found if m.artifact_type == wanted]
            out["OCI-Filters-Applied"] = "artifactType"
            params["artifactType"] = wanted
        if (last := r.arg("last")) is not None:  # this registry's own page cursor, from its Link
            found = [m for m in found if m.digest > last]
        if self.page_size and len(found) > self.page_size:
            found = found[:self.page_size]
            params["last"] = found[-1].digest
            out["Link"] = f'</v2/{r.name}/referrers/{digest}?{urlencode(params)}>; rel="next"'
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [m.descriptor() for m in found]}
        return Response(200, out, json.dumps(index).encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    registry: OciRegistry


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as registry clients expect
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the registry keeps its own request log."""

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":  # Go streams blob uploads so
            out = bytearray()
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                out += self.rfile.read(size)
                self.rfile.readline()
                if len(out) > MAX_BODY:
                    raise OciError(413, "SIZE_INVALID", f"body larger than {MAX_BODY} bytes")
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return bytes(out)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise OciError(413, "SIZE_INVALID", f"body larger than {MAX_BODY} bytes")
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        try:
            resp = self.server.registry.handle(self.command, self.path, self.headers, self._body())
        except (OciError, ValueError) as exc:  # an unreadable body: answer, then close the connection
            self.close_connection = True
            resp = (exc if isinstance(exc, OciError) else OciError(400, "UNSUPPORTED", str(exc))).response()
        self.send_response(resp.status)
        for key, value in resp.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _serve


def start_oci_registry(referrers: bool = True, page_size: int | None = None) -> OciRegistry:
    """Serve a fresh, empty registry on a free loopback port in a background thread.

    referrers=False: 404 on `/referrers/` and no `OCI-Subject` (a registry without the API).
    page_size: at most this many referrers per response, the rest behind `Link: <...>; rel="next"`."""
    registry = OciRegistry(Path(tempfile.mkdtemp(prefix="vouch-ociregistry-")), referrers, page_size)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.registry = registry
    registry.host = f"127.0.0.1:{server.server_address[1]}"
    registry._server = server
    threading.Thread(target=server.serve_forever, name=f"ociregistry-{registry.host}", daemon=True).start()
    return registry
