"""`vouch dtrack upload` against a loopback HTTP server enforcing Dependency-Track's documented contract.

No Dependency-Track server runs here (it is a Java service with a database, not installable from these
registries in test time), so this server checks what the real one requires: PUT /api/v1/bom, the
X-Api-Key header, a JSON body with projectName/projectVersion/autoCreate and a base64 `bom` that
decodes to a CycloneDX document; it answers {"token"} and then GET /api/v1/event/token/{token}.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

API_KEY = "odt_testkey_1234567890"


class FakeDT:
    def __init__(self) -> None:
        self.projects: set[tuple[str, str]] = {("existing", "1.0")}
        self.uploads: list[dict[str, Any]] = []
        self.polls = 0
        self.seen_keys: list[str | None] = []
        dt = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def _send(self, code: int, body: Any, ctype: str = "application/json") -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                dt.seen_keys.append(self.headers.get("X-Api-Key"))
                if self.path != "/api/v1/bom":
                    return self._send(404, {"title": "Not Found"})
                if self.headers.get("X-Api-Key") != API_KEY:
                    return self._send(401, {"status": 401, "title": "Unauthorized", "detail": "invalid API key"},
                                      "application/problem+json")
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                try:
                    bom = json.loads(base64.b64decode(body["bom"], validate=True))
                    assert bom["bomFormat"] == "CycloneDX"
                    name, version, auto = body["projectName"], body["projectVersion"], body["autoCreate"]
                except Exception:
                    return self._send(400, {"status": 400, "title": "Bad Request",
                                            "detail": "The uploaded BOM is invalid"}, "application/problem+json")
                if (name, version) not in dt.projects:
                    if not auto:
                        return self._send(404, {"status": 404, "title": "Project not found"},
                                          "application/problem+json")
                    dt.projects.add((name, version))
                dt.uploads.append({"project": name, "version": version, "components": len(bom.get("components", []))})
                self._send(200, {"token": str(uuid.uuid4())})

            def do_GET(self) -> None:
                if self.headers.get("X-Api-Key") != API_KEY:
                    return self._send(401, {"title": "Unauthorized"})
                if self.path.startswith("/api/v1/event/token/"):
                    dt.polls += 1
                    return self._send(200, {"processing": dt.polls < 2})
                self._send(404, {"title": "Not Found"})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def dtrack() -> Iterator[FakeDT]:
    d = FakeDT()
    yield d
    d.server.shutdown()


def run(*args: str, key: str | None = API_KEY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DTRACK_API_KEY"}
    if key is not None:
        env["DTRACK_API_KEY"] = key
    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def bom_file(tmp_path: Path) -> Path:
    p = tmp_path / "sbom.cdx.json"
    p.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
                             "components": [{"type": "library", "name": "libssl3", "version": "3.0.15-1~deb12u1"}]}))
    return p


def test_upload_waits_for_processing(dtrack: FakeDT, bom_file: Path) -> None:
    r = run("dtrack", "upload", str(bom_file), "--url", dtrack.url, "--project", "cockpit", "--version", "2026.04",
            "--auto-create")
    assert r.returncode == 0, r.stderr
    assert dtrack.uploads == [{"project": "cockpit", "version": "2026.04", "components": 1}]
    assert dtrack.polls >= 2 and "processed" in r.stderr
    assert API_KEY not in r.stderr + r.stdout  # the key never shows in output


@pytest.mark.parametrize(("case", "code", "message"), [
    ("wrong-key", 3, "refused the API key (HTTP 401): Unauthorized — invalid API key"),
    ("no-key", 2, "set DTRACK_API_KEY"),
    ("unknown-project", 3, "not found (HTTP 404): Project not found; pass --auto-create"),
    ("invalid-bom", 2, "rejected the BOM (HTTP 400): Bad Request — The uploaded BOM is invalid"),
])
def test_upload_errors(dtrack: FakeDT, bom_file: Path, tmp_path: Path, case: str, code: int, message: str) -> None:
    target = bom_file
    key: str | None = API_KEY
    project = "existing"
    if case == "wrong-key":
        key = "nope"
    elif case == "no-key":
        key = None
    elif case == "unknown-project":
        project = "missing"
    else:
        target = tmp_path / "bad.json"
        target.write_text('{"not": "a bom"}')
    r = run("dtrack", "upload", str(target), "--url", dtrack.url, "--project", project, "--version", "1.0", key=key)
    assert r.returncode == code, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_api_key_never_sent_over_plain_http_to_another_host() -> None:
    """The API key is a credential: plain HTTP is accepted only on loopback (issue 12)."""
    from vouch.dtrack import upload_bom
    from vouch.errors import InputError

    with pytest.raises(InputError, match="clear text"):
        upload_bom("http://dtrack.example.org", "secret", "p", "1", b"{}", False)
    with pytest.raises(InputError, match="not an http"):
        upload_bom("ftp://dtrack.example.org", "secret", "p", "1", b"{}", False)
