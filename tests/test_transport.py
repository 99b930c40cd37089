"""vouch.oci.transport, the registry client's HTTP/1.1, against servers on loopback sockets that behave
as flaky or hostile registries do: closing kept-alive connections, cutting bodies short, dripping bytes,
sending more than they were asked. (The registry client's behaviour over it is in test_faults,
test_integrity and test_hostile_input, against the real registry behind a fault proxy.)"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from vouch.oci import transport


class Server:
    """Accepts connections; `answer(conn, request_bytes, n)` replies to the n-th request (0-based) and
    returns whether to keep the connection for another request."""

    def __init__(self, answer: Callable[[socket.socket, bytes, int], bool], eager: bool = False) -> None:
        self.answer = answer
        self.eager = eager  # answer at once, without waiting for a request (as to bytes that are not HTTP)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.connections = 0
        self.requests = 0
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(10)
            while not self._stop.is_set():
                data = b""
                while b"\r\n\r\n" not in data and not self.eager:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                n = self.requests
                self.requests += 1
                if not self.answer(conn, data, n):
                    return

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def make(answer: Callable[[socket.socket, bytes, int], bool], eager: bool = False) -> Server:
        servers.append(Server(answer, eager))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def pool(timeout: float = 5.0) -> transport.Pool:
    return transport.Pool(transport.no_trust_context, timeout=timeout, connect_timeout=2.0)


def get(p: transport.Pool, url: str) -> bytes:
    resp = p.send("GET", url)
    return resp.read()


def test_kept_alive_connection_serves_the_next_requests(serve: Callable[..., Server]) -> None:
    srv = serve(lambda c, req, n: c.sendall(ok(b"answer %d" % n)) is None)
    p = pool()
    assert [get(p, f"{srv.url}/v2/") for _ in range(5)] == [b"answer %d" % i for i in range(5)]
    assert srv.connections == 1  # one connection for all five (what makes a release's verify cheap)


def test_connection_the_server_closed_while_idle_is_not_reused(serve: Callable[..., Server]) -> None:
    # An HTTP/1.1 answer without "Connection: close", then the server hangs up (an idle timeout, a
    # restart): the next request must go out on a new connection, not fail on the dead one.
    srv = serve(lambda c, req, n: bool(c.sendall(ok(b"x%d" % n))))
    p = pool()
    for i in range(4):
        assert get(p, f"{srv.url}/v2/") == b"x%d" % i
        time.sleep(0.05)  # (the server's close has arrived)
    assert srv.connections == 4


def test_unread_rest_of_a_body_is_never_read_as_the_next_answer(serve: Callable[..., Server]) -> None:
    big = b"HTTP/1.1 200 OK\r\n" + b"a" * 10  # looks like an answer, inside the body of the first
    srv = serve(lambda c, req, n: c.sendall(ok(big * 50_000 if n == 0 else b"second")) is None)
    p = pool()
    resp = p.send("GET", f"{srv.url}/v2/a")
    first = next(resp.iter_bytes())
    assert first.startswith(b"HTTP/1.1 200 OK\r\naaaa")
    resp.close()  # most of the body unread: the connection is dropped, not pooled
    assert get(p, f"{srv.url}/v2/b") == b"second"
    assert srv.connections == 2


def test_body_cut_short_is_an_error_not_a_shorter_body(serve: Callable[..., Server]) -> None:
    srv = serve(lambda c, req, n: bool(c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"z" * 400)))
    with pytest.raises(transport.RemoteProtocolError, match="600 bytes before the end of the body"):
        get(pool(), f"{srv.url}/v2/")


def test_chunked_body_cut_short_is_an_error(serve: Callable[..., Server]) -> None:
    srv = serve(lambda c, req, n: bool(c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                                 b"5\r\nhello\r\n10\r\nabc")))
    with pytest.raises(transport.RemoteProtocolError):
        get(pool(), f"{srv.url}/v2/")


def test_chunked_body_is_read_whole(serve: Callable[..., Server]) -> None:
    srv = serve(lambda c, req, n: c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n") is None)
    p = pool()
    assert get(p, f"{srv.url}/v2/") == b"hello world" and get(p, f"{srv.url}/v2/") == b"hello world"
    assert srv.connections == 1


def test_not_http_is_a_protocol_error(serve: Callable[..., Server]) -> None:
    srv = serve(lambda c, req, n: bool(c.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")))
    with pytest.raises(transport.RemoteProtocolError, match=r"not valid HTTP/1\.1"):
        get(pool(), f"{srv.url}/v2/")


def test_endless_header_line_is_refused(serve: Callable[..., Server]) -> None:
    def answer(c: socket.socket, req: bytes, n: int) -> bool:
        c.sendall(b"HTTP/1.1 200 OK\r\nX-Long: ")
        for _ in range(200):
            c.sendall(b"a" * 65536)
        return False

    srv = serve(answer)
    with pytest.raises(transport.RemoteProtocolError, match="LineTooLong"):
        get(pool(), f"{srv.url}/v2/")


def test_dripping_body_is_cut_off_at_the_total_deadline(serve: Callable[..., Server]) -> None:
    def answer(c: socket.socket, req: bytes, n: int) -> bool:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):
            c.sendall(b"d")
            time.sleep(0.1)
        return False

    srv = serve(answer)
    p = pool(timeout=5.0)  # each byte comes well within the per-read timeout
    start = time.monotonic()
    with pytest.raises(transport.ReadTimeout, match=transport.DEADLINE_PASSED), \
            transport.deadline(time.monotonic() + 1.0):
        get(p, f"{srv.url}/v2/")
    assert time.monotonic() - start < 4.0


def test_silent_server_hits_the_per_read_timeout(serve: Callable[..., Server]) -> None:
    def answer(c: socket.socket, req: bytes, n: int) -> bool:
        time.sleep(3)
        return False

    srv = serve(answer)
    with pytest.raises(transport.ReadTimeout, match="timed out waiting for the server"):
        get(pool(timeout=0.5), f"{srv.url}/v2/")


def test_refused_connection_is_a_connect_error() -> None:
    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(transport.ConnectError):
        get(pool(), f"http://127.0.0.1:{port}/v2/")


def test_plain_http_server_fails_a_tls_request_closed(serve: Callable[..., Server]) -> None:
    # (a plain HTTP server answers the TLS ClientHello with a 400: not a TLS record)
    srv = serve(lambda c, req, n: bool(c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")),
                eager=True)
    with pytest.raises(transport.ConnectError):
        get(pool(), f"https://127.0.0.1:{srv.port}/v2/")


@pytest.mark.parametrize("url", ["ftp://host/x", "http:///nohost", "http://user:pw@127.0.0.1:1/x",
                                 "http://127.0.0.1:99999/x"])
def test_urls_it_refuses(url: str) -> None:
    with pytest.raises(transport.InvalidURL):
        pool().send("GET", url)


def test_header_injection_is_refused(serve: Callable[..., Server]) -> None:
    srv = serve(lambda c, req, n: bool(c.sendall(ok(b""))))
    with pytest.raises(transport.InvalidURL):
        pool().send("GET", f"{srv.url}/v2/", {"Authorization": "Bearer x\r\nX-Evil: 1"})
    assert srv.requests == 0


def test_request_carries_what_the_client_set_and_no_more(serve: Callable[..., Server]) -> None:
    seen: list[bytes] = []

    def answer(c: socket.socket, req: bytes, n: int) -> bool:
        seen.append(req)
        c.sendall(ok(b""))
        return True

    srv = serve(answer)
    pool().send("HEAD", f"{srv.url}/v2/r/manifests/x?n=1", {"Accept": "a/b"}).close()
    head = seen[0].decode().split("\r\n")
    assert head[0] == "HEAD /v2/r/manifests/x?n=1 HTTP/1.1"
    names = sorted(h.split(":")[0].lower() for h in head[1:] if h)
    assert names == ["accept", "accept-encoding", "host", "user-agent"]  # no cookies, no credentials unasked
    assert "Accept-Encoding: identity" in head  # bodies are digest-checked as sent: never decoded


def test_large_upload_to_a_slow_reader_is_bounded_per_piece_not_as_a_whole(serve: Callable[..., Server]) -> None:
    """A 16 MiB upload to a registry that reads it at ~4 MB/s takes longer than one per-write timeout (2 s
    here): each piece must meet the timeout, not the whole body (as httpx's write timeout did)."""
    body = b"u" * (16 * 1024 * 1024)

    def answer(c: socket.socket, req: bytes, n: int) -> bool:
        head, _, rest = req.partition(b"\r\n\r\n")
        length = int(next(h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")))
        got = len(rest)
        while got < length:
            chunk = c.recv(64 * 1024)
            if not chunk:
                return False
            got += len(chunk)
            time.sleep(0.015)
        c.sendall(ok(b"%d" % got))
        return True

    srv = serve(answer)
    p = pool(timeout=2.0)
    start = time.monotonic()
    with transport.deadline(time.monotonic() + 30):
        resp = p.send("PATCH", f"{srv.url}/v2/r/blobs/uploads/1", {"Content-Type": "application/octet-stream"}, body)
    assert resp.read() == b"%d" % len(body)
    assert time.monotonic() - start > 2.0  # (it did take longer than one timeout)


def test_request_lines_are_logged_at_vv_without_headers(serve: Callable[..., Server],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """`vouch -vv` shows each request's method, URL and status (what httpx's INFO lines showed), never its
    headers: the Authorization a request carries appears nowhere in the log."""
    import logging

    from vouch.cli.base import setup_logging

    srv = serve(lambda c, req, n: c.sendall(ok(b"x")) is None)
    setup_logging(2)
    try:
        with caplog.at_level(logging.DEBUG, logger="vouch.http"):
            get_with = pool().send("GET", f"{srv.url}/v2/r/manifests/v1", {"Authorization": "Bearer s3cret"})
            get_with.read()
        assert logging.getLogger("vouch.http").isEnabledFor(logging.DEBUG)
        assert any(f"GET {srv.url}/v2/r/manifests/v1: HTTP 200" in r.getMessage() for r in caplog.records)
        assert "s3cret" not in caplog.text
    finally:
        setup_logging(0)
    assert not logging.getLogger("vouch.http").isEnabledFor(logging.DEBUG)
