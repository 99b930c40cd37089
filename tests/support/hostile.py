"""A hostile registry on loopback, driven per test: wrong digests, huge and slow bodies, redirects to a
second host that logs what it receives, bogus challenges, many-layer tags.

Each server is a plain ThreadingHTTPServer whose answers come from a `route` function the test
gives: `route(request) -> Answer | None` (None: 404). Every request is logged with its headers, so a
test can assert what a client sent to which host (credentials above all).
"""

from __future__ import annotations

import http.server
import socketserver
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | Iterator[bytes] = b""  # an iterator streams (chunk by chunk, e.g. dripping)
    length: int | None = None  # Content-Length to announce for a streamed body


Route = Callable[[Request], Answer | None]


class HostileServer:
    def __init__(self, route: Route) -> None:
        self.route = route
        self.log: list[Request] = []
        self.sent_bytes = 0  # body bytes written (until the client hung up)
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with server._lock:
                    server.log.append(req)
                ans = server.route(req) or Answer(404, {"Content-Type": "application/json"},
                                                  b'{"errors":[{"code":"NOT_FOUND","message":"hostile: no route"}]}')
                self.send_response(ans.status)
                for k, v in ans.headers.items():
                    self.send_header(k, v)
                if isinstance(ans.body, bytes):
                    self.send_header("Content-Length", str(len(ans.body)))
                elif ans.length is not None:
                    self.send_header("Content-Length", str(ans.length))
                else:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if self.command == "HEAD":
                    return
                chunks = [ans.body] if isinstance(ans.body, bytes) else ans.body
                try:
                    for chunk in chunks:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        with server._lock:
                            server.sent_bytes += len(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def requests(self, method: str | None = None, path_contains: str = "") -> list[Request]:
        with self._lock:
            return [r for r in self.log if (method is None or r.method == method) and path_contains in r.path]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def json_answer(body: bytes, media_type: str = "application/json", digest: str | None = None) -> Answer:
    headers = {"Content-Type": media_type}
    if digest:
        headers["Docker-Content-Digest"] = digest
    return Answer(200, headers, body)


def repeated(chunk: bytes, total: int) -> Iterator[bytes]:
    """total bytes made of chunk, streamed (a huge body without holding it)."""
    sent = 0
    while sent < total:
        part = chunk[: total - sent]
        sent += len(part)
        yield part


def drip(data: bytes, every: float, stop_after: float = 60.0) -> Iterator[bytes]:
    """One byte every `every` seconds (bounded: stops after stop_after seconds)."""
    start = time.monotonic()
    for i in range(len(data)):
        if time.monotonic() - start > stop_after:
            return
        yield data[i:i + 1]
        time.sleep(every)


@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    max_rss_mib: float
    seconds: float


def _hwm_kib(pid: int) -> int | None:
    """The process's peak RSS so far (VmHWM: reset by exec, so the parent's pages before exec do not count)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def run_measured(args: list[str], env: dict[str, str] | None = None, timeout: float = 300.0) -> Measured:
    """Run a child and measure its own peak RSS, polling its VmHWM (monotonic) until it exits."""
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as errf:
        start = time.monotonic()
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=errf, stdin=subprocess.DEVNULL)
        deadline = start + timeout
        peak = 0
        while proc.poll() is None:
            # read before the exit is reaped; a zombie has no VmHWM, so the last live reading stands
            hwm = _hwm_kib(proc.pid)
            if hwm is not None:
                peak = max(peak, hwm)
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                break
            time.sleep(0.01)
        seconds = time.monotonic() - start
        out.seek(0)
        errf.seek(0)
        return Measured(proc.returncode, out.read().decode(errors="replace"), errf.read().decode(errors="replace"),
                        peak / 1024, seconds)
