"""HTTP/1.1 for the registry client, on sockets of the standard library.

- a pool of keep-alive connections per scheme and host, safe to use from many threads (a connection
  serves one request at a time; an idle one the server has closed is dropped, not reused);
- TLS verified through a context made at the first https request (loading the CA bundle costs more
  than the rest of a short command's start-up, and a plain-HTTP loopback registry never needs it);
- a total deadline for every request (`deadline()`), enforced where bytes are read from and written to
  the socket: a per-read timeout never fires for a server that sends one byte every few seconds, of its
  status line, its headers or its body; the deadline cuts it off wherever it drips;
- no redirects followed, no cookies, no proxies from the environment, no content decoding (bodies are
  digest-checked as sent): the registry client decides each of those itself;
- errors as TransportError subclasses, with the OS or TLS error as their cause.

vouch used httpx here before: importing it cost about 70 ms of every command's start-up and each request
about 1 ms of CPU (`benchmarks/sign_verify.py` measures verify, which is mostly requests).
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from vouch import lazylog

if TYPE_CHECKING:  # (ssl is imported when a TLS context is made)
    import ssl

log = lazylog.get("vouch.http")  # request lines at -vv (vouch.cli.base.setup_logging)
IDLE_PER_HOST = 16
READ_CHUNK = 256 * 1024
SEND_PIECE = 1024 * 1024


class TransportError(Exception):
    """The request did not get a complete answer: the network, TLS, a timeout or a malformed answer."""


class TimeoutException(TransportError):
    pass


class ConnectTimeout(TimeoutException):
    pass


class ReadTimeout(TimeoutException):
    pass


class NetworkError(TransportError):
    pass


class ConnectError(NetworkError):
    pass


class ReadError(NetworkError):
    pass


class WriteError(NetworkError):
    pass


class RemoteProtocolError(TransportError):
    """The server answered something that is not HTTP/1.1, or broke off its answer."""


class InvalidURL(TransportError):
    pass


# ---- the total deadline ------------------------------------------------------------------------------

_local = threading.local()
DEADLINE_PASSED = "the total deadline of the request passed"


@contextlib.contextmanager
def deadline(at: float) -> Iterator[None]:
    """Socket reads and writes on this thread must finish by `at` (time.monotonic())."""
    previous = getattr(_local, "at", None)
    _local.at = at if previous is None else min(at, previous)
    try:
        yield
    finally:
        _local.at = previous


def remaining(timeout: float) -> tuple[float, bool]:
    """The time a socket operation may take: timeout, or less when the deadline is nearer (then True)."""
    at: float | None = getattr(_local, "at", None)
    if at is None:
        return timeout, False
    left = at - time.monotonic()
    if left <= 0:
        raise ReadTimeout(DEADLINE_PASSED)
    return (left, True) if left < timeout else (timeout, False)


MAX_LINE = 65536  # a status or header line (http.client's limit)
MAX_HEADERS = 100
MAX_INTERIM = 16  # 1xx answers skipped before the real one
EXPECTS_BODY = frozenset({"PATCH", "POST", "PUT"})  # sent with Content-Length: 0 when they carry nothing
_ENDS_PIECE = 64 * 1024  # a body up to this size goes out in one write with the request head
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # a header name (RFC 9110 token)


class Headers:
    """An answer's header fields, looked up without regard to case (the first field of a name)."""

    __slots__ = ("_fields", "_first")

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._fields = fields
        first: dict[str, str] = {}
        for name, value in fields:
            first.setdefault(name.lower(), value)
        self._first = first

    def get(self, name: str, default: Any = None) -> Any:
        return self._first.get(name.lower(), default)

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        return [v for n, v in self._fields if n.lower() == key]

    def __getitem__(self, name: str) -> str:
        return self._first[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)


class _Closed(TransportError):
    """The server closed a connection before the first byte of an answer (retried once on a reused one)."""


class _Connection:
    """One HTTP/1.1 connection: the request written in bounded pieces, the answer read through a buffer,
    every socket operation bounded by its timeout and the thread's deadline."""

    def __init__(self, host: str, port: int, netloc: str, tls: Callable[[], ssl.SSLContext] | None,
                 connect_timeout: float, timeout: float) -> None:
        self.host, self.port, self.netloc = host, port, netloc
        self._tls = tls
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self.sock: socket.socket | None = None
        self._buf = bytearray()

    def connect(self) -> None:
        left, capped = remaining(self._connect_timeout)
        # An ASCII name as bytes: getaddrinfo would otherwise load the idna codec to encode it.
        name: Any = self.host.encode("ascii") if self.host.isascii() else self.host
        try:
            sock = socket.create_connection((name, self.port), left)
        except TimeoutError:
            raise ConnectTimeout(DEADLINE_PASSED if capped else f"connecting to {self.host} timed out") from None
        except OSError as exc:
            raise ConnectError(str(exc) or type(exc).__name__) from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                # (an ASCII name as bytes: ssl would otherwise load the idna codec to encode it)
                sock = self._tls().wrap_socket(sock, server_hostname=name)
        except TimeoutError:
            sock.close()
            raise ConnectTimeout(f"the TLS handshake with {self.host} timed out") from None
        except OSError as exc:  # ssl.SSLError (a certificate not trusted, a server not speaking TLS) included
            sock.close()
            raise ConnectError(str(exc) or type(exc).__name__) from exc
        self.sock = sock

    def idle_and_open(self) -> bool:
        """Nothing to read on an idle connection: the server has not closed it (nor sent anything unasked)."""
        raw = self.sock
        if raw is None or self._buf:
            return False
        try:
            if getattr(raw, "pending", lambda: 0)():
                return False
            readable, _, _ = select.select([raw], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    # ---- writing ----

    def write(self, data: bytes | memoryview) -> None:
        # In pieces, each under the per-write timeout (and the deadline): a socket's timeout bounds a whole
        # sendall, and an 8 MiB upload chunk on a slow link may rightly take longer than one timeout.
        assert self.sock is not None
        view = memoryview(data).cast("B")
        for start in range(0, len(view), SEND_PIECE) or (0,):
            left, capped = remaining(self._timeout)
            self.sock.settimeout(left)
            try:
                self.sock.sendall(view[start:start + SEND_PIECE])
            except TimeoutError:
                raise WriteError(DEADLINE_PASSED if capped else "timed out sending to the server") from None

    def request(self, method: str, target: str, headers: dict[str, str], body: bytes | None) -> None:
        if not method.isalpha() or " " in target or not target.isprintable():
            raise InvalidURL(f"a request target with a space or control character: {target[:200]!r}")
        lines = [f"{method} {target} HTTP/1.1"]
        given = {name.lower() for name in headers}
        if "host" not in given:
            lines.append(f"Host: {self.netloc}")
        if "accept-encoding" not in given:
            lines.append("Accept-Encoding: identity")  # bodies are digest-checked as sent: never decoded
        for name, value in headers.items():
            if not _TOKEN.fullmatch(name):
                raise InvalidURL(f"not a valid header name: {name[:100]!r}")
            if "\r" in value or "\n" in value or "\0" in value:
                raise InvalidURL(f"the value of header {name} holds a line break or NUL")
            lines.append(f"{name}: {value}")
        if "content-length" not in given and "transfer-encoding" not in given:
            if body is not None:
                lines.append(f"Content-Length: {len(body)}")
            elif method in EXPECTS_BODY:
                lines.append("Content-Length: 0")
        lines.append("\r\n")
        try:
            head = "\r\n".join(lines).encode("latin-1")
        except UnicodeEncodeError as exc:
            raise InvalidURL(f"a header or target that is not Latin-1: {exc}") from None
        if body is not None and len(body) <= _ENDS_PIECE:
            self.write(head + body)
        else:
            self.write(head)
            if body:
                self.write(body)

    # ---- reading ----

    def _recv(self, size: int) -> bytes:
        """Up to size bytes from the socket (b"" when the server has closed the connection), bounded."""
        assert self.sock is not None
        left, capped = remaining(self._timeout)
        self.sock.settimeout(left)
        try:
            return self.sock.recv(size)
        except TimeoutError:
            raise ReadTimeout(DEADLINE_PASSED if capped else "timed out waiting for the server") from None

    def _fill(self) -> bool:
        """Read what the socket has into the buffer; False when the server has closed the connection."""
        data = self._recv(READ_CHUNK)
        if not data:
            return False
        self._buf += data
        return True

    def _line(self, what: str) -> bytes | None:
        """The next line without its CRLF; None when the connection ends before any byte of it."""
        buf = self._buf
        searched = 0
        while True:
            end = buf.find(b"\n", searched)
            if end >= 0:
                if end > MAX_LINE:
                    break
                line = bytes(buf[:end])
                del buf[:end + 1]
                return line[:-1] if line.endswith(b"\r") else line
            if len(buf) > MAX_LINE:
                break
            searched = len(buf)
            if not self._fill():
                if not buf:
                    return None
                raise RemoteProtocolError(f"the server closed the connection in the middle of {what}")
        raise RemoteProtocolError(f"the server's answer is not valid HTTP/1.1 (LineTooLong: {what} longer than "
                                  f"{MAX_LINE} bytes)")

    def read_head(self, method: str) -> tuple[int, Headers, int | None, bool, bool]:
        """status, headers, body length (None: chunked or to the end), chunked, and whether the connection
        ends with this answer."""
        for _ in range(MAX_INTERIM + 1):
            line = self._line("the status line")
            if line is None:
                raise _Closed("the server closed the connection without an answer")
            version, _, rest = line.partition(b" ")
            code = rest[:3]
            if (version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit()
                    or rest[3:4] not in (b"", b" ")):
                raise RemoteProtocolError(f"the server's answer is not valid HTTP/1.1 (BadStatusLine: "
                                          f"{line[:80]!r})")
            status = int(code)
            fields: list[tuple[str, str]] = []
            while True:
                hline = self._line("the header")
                if hline is None:
                    raise RemoteProtocolError("the server closed the connection in the middle of the header")
                if not hline:
                    break
                if hline[:1] in (b" ", b"\t") and fields:  # an obsolete folded continuation
                    name, value = fields[-1]
                    fields[-1] = (name, f"{value} {hline.strip().decode('latin-1')}")
                    continue
                name_b, sep, value_b = hline.partition(b":")
                if not sep or not name_b or name_b != name_b.strip():
                    raise RemoteProtocolError(f"the server's answer is not valid HTTP/1.1 (a header line "
                                              f"{hline[:80]!r})")
                if len(fields) >= MAX_HEADERS:
                    raise RemoteProtocolError(f"the server's answer is not valid HTTP/1.1 (more than "
                                              f"{MAX_HEADERS} header fields)")
                fields.append((name_b.decode("latin-1"), value_b.strip(b" \t").decode("latin-1")))
            if 100 <= status < 200 and status != 101:
                continue  # 100 Continue and the like: the real answer follows
            break
        else:
            raise RemoteProtocolError(f"the server sent more than {MAX_INTERIM} interim (1xx) answers")
        headers = Headers(fields)
        connection = (headers.get("Connection") or "").lower()
        closes = "close" in connection or (version == b"HTTP/1.0" and "keep-alive" not in connection)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return status, headers, 0, False, closes
        te = (headers.get("Transfer-Encoding") or "").lower()
        if te:
            if te.replace(" ", "").split(",")[-1] != "chunked":
                return status, headers, None, False, True  # delimited by the end of the connection
            return status, headers, None, True, closes or "content-length" in headers
        lengths = {v.strip() for v in headers.get_all("Content-Length")}
        if not lengths:
            return status, headers, None, False, True
        value = lengths.pop()
        if lengths or not value.isdigit():
            raise RemoteProtocolError(f"the server's answer is not valid HTTP/1.1 (Content-Length "
                                      f"{headers.get('Content-Length')[:40]!r})")
        return status, headers, int(value), False, closes

    def read_some(self, limit: int) -> bytes:
        """Up to limit bytes of what has arrived (waiting for some); b"" when the server closed."""
        buf = self._buf
        if not buf:  # straight from the socket: a body's bytes are not copied through the buffer
            return self._recv(min(limit, READ_CHUNK))
        if len(buf) <= limit:
            data = bytes(buf)
            buf.clear()
        else:
            data = bytes(buf[:limit])
            del buf[:limit]
        return data


class Response:
    """An answer whose body is read as it arrives (iter_bytes) or was read whole (content)."""

    def __init__(self, pool: Pool, key: tuple[str, str], conn: _Connection, status: int, headers: Headers,
                 length: int | None, chunked: bool, closes: bool, method: str, url: str) -> None:
        self._pool, self._key = pool, key
        self._conn: _Connection | None = conn
        self.status_code = status
        self.headers = headers
        self.method = method
        self.url = url
        self.content: bytes | None = None
        self._left = length  # bytes of the body (or of the current chunk) still to read
        self._chunked = chunked
        self._closes = closes
        self._done = length == 0 and not chunked

    def _chunks(self, conn: _Connection) -> Iterator[bytes]:
        while not self._done:
            if self._chunked and not self._left:
                if self._left == 0 and conn._line("a chunk") != b"":  # the CRLF after a chunk's data
                    raise RemoteProtocolError("the server's chunked body is not valid HTTP/1.1 (no CRLF after "
                                              "a chunk)")
                size_line = conn._line("a chunk size")
                if size_line is None:
                    raise RemoteProtocolError("the server closed the connection before the end of the body")
                size_hex = size_line.split(b";", 1)[0].strip()
                try:
                    size = int(size_hex, 16) if size_hex and size_hex.isalnum() else -1
                except ValueError:
                    size = -1
                if size < 0:
                    raise RemoteProtocolError(f"the server's chunked body is not valid HTTP/1.1 (chunk size "
                                              f"{size_line[:40]!r})")
                if size == 0:
                    for _ in range(MAX_HEADERS + 1):  # the trailer, up to its empty line
                        trailer = conn._line("the trailer")
                        if trailer is None:
                            raise RemoteProtocolError("the server closed the connection in the trailer")
                        if not trailer:
                            break
                    else:
                        raise RemoteProtocolError("the server's chunked trailer is too long")
                    self._done = True
                    return
                self._left = size
                continue
            want = READ_CHUNK if self._left is None else min(READ_CHUNK, self._left)
            data = conn.read_some(want)
            if not data:
                if self._left is None:  # a body that ends with the connection
                    self._done = True
                    return
                if self._chunked:
                    raise RemoteProtocolError("the server closed the connection before the end of the body")
                raise RemoteProtocolError(f"the server closed the connection {self._left} bytes before the end "
                                          "of the body")
            if self._left is not None:
                self._left -= len(data)
                if not self._left and not self._chunked:
                    self._done = True
            yield data

    def iter_bytes(self) -> Iterator[bytes]:
        if self.content is not None:
            yield self.content
            return
        conn = self._conn
        try:
            if conn is not None:
                try:
                    yield from self._chunks(conn)
                except TransportError:
                    raise
                except Exception as exc:
                    raise _mapped(exc, "read") from exc
        finally:
            self.close()

    def read(self) -> bytes:
        if self.content is None:
            self.content = b"".join(self.iter_bytes())
        return self.content

    def json(self) -> Any:
        import json

        return json.loads(self.read())

    def close(self) -> None:
        """Give the connection back when the whole body was read; close it otherwise (what is left of a
        body must never be read as the next answer)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and not self._closes:
            self._pool.release(self._key, conn)
        else:
            conn.close()


def _mapped(exc: BaseException, phase: str) -> TransportError:
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, TimeoutError):
        return ReadTimeout("timed out waiting for the server")
    if isinstance(exc, OSError):  # ssl.SSLError included
        error = WriteError if phase == "write" else ReadError
        return error(str(exc) or type(exc).__name__)
    if isinstance(exc, ValueError):
        return InvalidURL(str(exc))
    return TransportError(f"{type(exc).__name__}: {exc}")


class Pool:
    """Connections to every host a command talks to. tls makes the TLS context (called once, at the first
    https request)."""

    def __init__(self, tls: Callable[[], ssl.SSLContext], *, timeout: float = 60.0, connect_timeout: float = 10.0,
                 user_agent: str = "vouch") -> None:
        self._make_tls = tls
        self._tls: ssl.SSLContext | None = None
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.user_agent = user_agent
        self._idle: dict[tuple[str, str], list[_Connection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _context(self) -> ssl.SSLContext:
        with self._lock:
            if self._tls is None:
                self._tls = self._make_tls()
            return self._tls

    def _checkout(self, key: tuple[str, str]) -> _Connection | None:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None or conn.idle_and_open():
                return conn
            conn.close()

    def release(self, key: tuple[str, str], conn: _Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if not self._closed and len(idle) < IDLE_PER_HOST:
                idle.append(conn)
                return
        conn.close()

    def send(self, method: str, url: str, headers: dict[str, str] | None = None,
             content: bytes | None = None) -> Response:
        """One request; the answer's body is left to read (Response.iter_bytes, .read, .close)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise InvalidURL(f"{url[:200]!r}: {exc}") from exc
        scheme, netloc = parts.scheme, parts.netloc
        if scheme not in ("http", "https") or not parts.hostname or "@" in netloc:
            raise InvalidURL(f"not an http(s) URL of a host: {url[:200]!r}")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        hdrs = {"User-Agent": self.user_agent, **(headers or {})}
        key = (scheme, netloc)
        for attempt in (0, 1):
            conn = self._checkout(key)
            reused = conn is not None
            if conn is None:
                conn = _Connection(parts.hostname, port or (443 if scheme == "https" else 80), netloc,
                                   self._context if scheme == "https" else None, self.connect_timeout,
                                   self.timeout)
                conn.connect()
            phase = "write"
            try:
                conn.request(method, target, hdrs, content)
                phase = "read"
                status, rheaders, length, chunked, closes = conn.read_head(method)
            except Exception as exc:
                conn.close()
                # An idle connection the server closed just as it was reused: the request never reached
                # it. Sent again once on a new connection, and only if it reads and changes nothing.
                if (reused and attempt == 0 and method in ("GET", "HEAD")
                        and isinstance(exc, (_Closed, BrokenPipeError, ConnectionResetError))):
                    continue
                if isinstance(exc, _Closed):
                    raise RemoteProtocolError(str(exc)) from None
                raise _mapped(exc, phase) from exc
            if log.isEnabledFor(10):
                log.debug("%s %s: HTTP %d%s", method, url, status, " (kept-alive connection)" if reused else "")
            return Response(self, key, conn, status, rheaders, length, chunked, closes, method, url)
        raise RemoteProtocolError("unreachable")  # pragma: no cover

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for c in conns:
            c.close()


def no_trust_context() -> ssl.SSLContext:
    """A TLS context that verifies certificates and trusts none: any TLS through it fails closed."""
    import ssl

    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname, no CA loaded


def verifying_context(ca_file: str | None = None) -> ssl.SSLContext:
    """Certificates verified against ca_file, else $SSL_CERT_FILE or $SSL_CERT_DIR, else certifi's bundle
    (what httpx trusted), else the system's."""
    import ssl

    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    try:
        import certifi
    except ImportError:  # pragma: no cover
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())

