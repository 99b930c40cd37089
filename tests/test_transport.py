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


# ---- the HTTP/1.1 parser's edge cases (vouch's own, since it replaced http.client) -----------------------

def test_interim_answers_are_skipped_and_folded_headers_joined(serve: Callable[..., Server]) -> None:
    srv = serve(lambda c, req, n: c.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX: y\r\n\r\n"
                                            b"HTTP/1.1 200 OK\r\nWWW-Authenticate: Bearer realm=\"r\",\r\n"
                                            b"\tservice=\"s\"\r\ncontent-length: 2\r\n\r\nok") is None)
    p = pool()
    resp = p.send("GET", f"{srv.url}/v2/")
    assert resp.status_code == 200 and resp.read() == b"ok"
    assert resp.headers.get("www-authenticate") == 'Bearer realm="r", service="s"'
    assert resp.headers["Content-Length"] == "2" and "X" not in resp.headers
    assert get(p, f"{srv.url}/v2/") == b"ok" and srv.connections == 1


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",  # two lengths: request smuggling
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
    b"HTTP/1.1 20 OK\r\n\r\n",
    b"HTTP/2 200\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 101 + b"\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",  # no CRLF after the data
])
def test_malformed_answers_are_protocol_errors(serve: Callable[..., Server], head: bytes) -> None:
    srv = serve(lambda c, req, n: bool(c.sendall(head)))
    with pytest.raises(transport.RemoteProtocolError, match=r"not valid HTTP/1\.1"):
        get(pool(), f"{srv.url}/v2/")


def test_answers_that_end_their_connection_are_not_pooled(serve: Callable[..., Server]) -> None:
    answers = [b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\na",  # HTTP/1.0 without keep-alive
               b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nb",
               b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ncHTTP/1.1 200 OK\r\n",  # more than the body
               b"HTTP/1.1 200 OK\r\n\r\nd"]  # a body delimited by the end of the connection

    def answer(c: socket.socket, req: bytes, n: int) -> bool:
        c.sendall(answers[n])
        if n == 3:
            c.shutdown(socket.SHUT_WR)
            return False
        return True

    srv = serve(answer)
    p = pool()
    assert [get(p, f"{srv.url}/v2/") for _ in range(4)] == [b"a", b"b", b"c", b"d"]
    assert srv.connections == 4


def test_chunk_extensions_and_trailers(serve: Callable[..., Server]) -> None:
    srv = serve(lambda c, req, n: c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                            b"4;name=value\r\nwiki\r\n9\r\npedia in \r\n0\r\nX-Trailer: t\r\n\r\n")
                is None)
    p = pool()
    assert get(p, f"{srv.url}/v2/") == b"wikipedia in " and get(p, f"{srv.url}/v2/") == b"wikipedia in "
    assert srv.connections == 1


def test_post_without_body_says_its_length_and_head_reads_no_body(serve: Callable[..., Server]) -> None:
    seen: list[bytes] = []

    def answer(c: socket.socket, req: bytes, n: int) -> bool:
        seen.append(req)
        c.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n" if n == 0 else
                  b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")  # a HEAD's length, without the body
        return True

    srv = serve(answer)
    p = pool()
    assert p.send("POST", f"{srv.url}/v2/r/blobs/uploads/").read() == b""
    assert b"\r\nContent-Length: 0\r\n" in seen[0]
    resp = p.send("HEAD", f"{srv.url}/v2/r/blobs/sha256:x")
    assert resp.headers.get("Content-Length") == "5000" and resp.read() == b""
    assert srv.connections == 1  # the HEAD's connection went back to the pool, nothing left to read on it


def test_any_framing_of_any_body_reads_back_whole(serve: Callable[..., Server]) -> None:
    """Property: a body framed by Content-Length or in chunks of any sizes, sent in writes of any sizes,
    reads back byte for byte, and the connection serves the next answer."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    pending: list[list[bytes]] = []

    def answer(c: socket.socket, req: bytes, n: int) -> bool:
        for piece in pending.pop(0):
            c.sendall(piece)
        return True

    srv = serve(answer)
    p = pool()

    @settings(max_examples=60, deadline=None)
    @given(body=st.binary(max_size=3000), chunked=st.booleans(), cuts=st.lists(st.integers(1, 700), max_size=8),
           writes=st.lists(st.integers(1, 900), max_size=8))
    def roundtrip(body: bytes, chunked: bool, cuts: list[int], writes: list[int]) -> None:
        if chunked:
            framed, rest = b"", body
            for size in cuts:
                part, rest = rest[:size], rest[size:]
                if part:
                    framed += b"%x\r\n%s\r\n" % (len(part), part)
            if rest:
                framed += b"%x\r\n%s\r\n" % (len(rest), rest)
            wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + framed + b"0\r\n\r\n"
        else:
            wire = ok(body)
        pieces = []
        for size in writes:
            if wire:
                pieces.append(wire[:size])
                wire = wire[size:]
        pieces.append(wire)
        pending.append([x for x in pieces if x])
        assert get(p, f"{srv.url}/v2/") == body

    roundtrip()
    assert srv.connections == 1


@pytest.mark.parametrize("target", ["/v2/a b", "/v2/a\x00", "/v2/a\x7f"])  # (urlsplit drops tabs and newlines)
def test_request_targets_with_spaces_or_control_characters_are_refused(serve: Callable[..., Server],
                                                                        target: str) -> None:
    srv = serve(lambda c, req, n: bool(c.sendall(ok(b""))))
    with pytest.raises(transport.InvalidURL):
        pool().send("GET", f"{srv.url}{target}")
    with pytest.raises(transport.InvalidURL):
        pool().send("GET", f"{srv.url}/v2/", {"X Bad": "1"})
    assert srv.requests == 0
