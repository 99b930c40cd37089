"""A fault-injecting HTTP proxy on loopback, between the client and a real registry.

Rules match a method and a path regex and fire a number of times:
  status   answer with this HTTP status (and Retry-After) instead of forwarding
  cut      forward, then cut the connection after `after` bytes of the body
  delay    sleep `seconds` before forwarding
  corrupt  forward, but flip a byte of the body (the digest no longer matches)
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import re
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Rule:
    kind: str
    method: str = "GET"
    path: str = ".*"
    times: int = 1
    status: int = 500
    retry_after: str | None = None
    after: int = 100
    seconds: float = 0.0
    body: bytes = b'{"errors":[{"code":"INJECTED","message":"fault proxy"}]}'
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.fired < self.times and method == self.method and re.search(self.path, path) is not None


@dataclass
class FaultProxy:
    upstream: str  # host:port (plain HTTP)
    rules: list[Rule] = field(default_factory=list)
    log: list[tuple[str, str, int]] = field(default_factory=list)
    _server: socketserver.ThreadingTCPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def host(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.server_address[1]}"

    def add(self, rule: Rule) -> Rule:
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()
            self.log.clear()

    def _take(self, method: str, path: str) -> Rule | None:
        with self.lock:
            for r in self.rules:
                if r.matches(method, path):
                    r.fired += 1
                    return r
        return None

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                rule = proxy._take(self.command, self.path)
                if rule and rule.kind == "status":
                    payload = rule.body
                    self.send_response(rule.status)
                    if rule.retry_after is not None:
                        self.send_header("Retry-After", rule.retry_after)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":  # a HEAD answer has no body
                        self.wfile.write(payload)
                    with proxy.lock:
                        proxy.log.append((self.command, self.path, rule.status))
                    return
                if rule and rule.kind == "delay":
                    time.sleep(rule.seconds)
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                headers["Host"] = proxy.upstream
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                with proxy.lock:
                    proxy.log.append((self.command, self.path, resp.status))
                if rule and rule.kind == "corrupt" and data:
                    data = bytes([data[0] ^ 0x01]) + data[1:]
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() in ("connection", "transfer-encoding", "content-length"):
                        continue
                    if k.lower() == "location":
                        v = v.replace(proxy.upstream, proxy.host)
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                if rule and rule.kind == "cut":
                    self.send_header("Connection", "close")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data[: rule.after])
                    self.wfile.flush()
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def count(self, method: str, path_re: str) -> int:
        with self.lock:
            return sum(1 for m, p, _ in self.log if m == method and re.search(path_re, p))
