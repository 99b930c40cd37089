"""HTTP/1.1 for the registry client, on the standard library's http.client.

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
import http.client
import io
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:  # (ssl is imported when a TLS context is made)
    import ssl

log = logging.getLogger("vouch.http")  # request lines at -vv (vouch.cli.base.setup_logging)
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


class _Raw(io.RawIOBase):
    """The socket as http.client reads it (through a BufferedReader), each read bounded as above."""

    def __init__(self, owner: _Socket) -> None:
        self._owner = owner
        self._sock = owner.sock
        self._timeout = owner.timeout

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        left, capped = remaining(self._timeout)
        self._sock.settimeout(left)
        try:
            return self._sock.recv_into(b)
        except TimeoutError:
            raise ReadTimeout(DEADLINE_PASSED if capped else "timed out waiting for the server") from None

    def close(self) -> None:
        if not self.closed:
            super().close()
            self._owner.release_reader()


class _Socket:
    """What http.client needs of a socket (sendall, makefile, close), with every operation bounded. As a
    socket's makefile() does, an open reader keeps it open after close() (http.client closes the
    connection of an answer that ends the connection before its body is read)."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.timeout = timeout
        self._readers = 0
        self._closed = False

    def sendall(self, data: Any) -> None:
        # In pieces, each under the per-write timeout (and the deadline): a socket's timeout bounds a whole
        # sendall, and an 8 MiB upload chunk on a slow link may rightly take longer than one timeout.
        view = memoryview(data).cast("B")
        for start in range(0, len(view), SEND_PIECE) or (0,):
            left, capped = remaining(self.timeout)
            self.sock.settimeout(left)
            try:
                self.sock.sendall(view[start:start + SEND_PIECE])
            except TimeoutError:
                raise WriteError(DEADLINE_PASSED if capped else "timed out sending to the server") from None

    def makefile(self, mode: str) -> io.BufferedReader:
        self._readers += 1
        return io.BufferedReader(_Raw(self), READ_CHUNK)

    def release_reader(self) -> None:
        self._readers -= 1
        if self._closed and self._readers <= 0:
            self.sock.close()

    def close(self) -> None:
        self._closed = True
        if self._readers <= 0:
            self.sock.close()

    def setsockopt(self, *args: Any) -> None:
        self.sock.setsockopt(*args)

    def fileno(self) -> int:
        return self.sock.fileno()


class _Connection(http.client.HTTPConnection):
    def __init__(self, netloc: str, port: int, tls: Callable[[], ssl.SSLContext] | None, connect_timeout: float,
                 timeout: float) -> None:
        super().__init__(netloc, port)
        self._tls = tls
        self._connect_timeout = connect_timeout
        self._read_timeout = timeout

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
                sock = self._tls().wrap_socket(sock, server_hostname=self.host)
        except TimeoutError:
            sock.close()
            raise ConnectTimeout(f"the TLS handshake with {self.host} timed out") from None
        except OSError as exc:  # ssl.SSLError (a certificate not trusted, a server not speaking TLS) included
            sock.close()
            raise ConnectError(str(exc) or type(exc).__name__) from exc
        self.sock = _Socket(sock, self._read_timeout)

    def idle_and_open(self) -> bool:
        """Nothing to read on an idle connection: the server has not closed it (nor sent anything unasked)."""
        s = self.sock
        if s is None:
            return False
        raw = s.sock if isinstance(s, _Socket) else s
        try:
            if getattr(raw, "pending", lambda: 0)():
                return False
            readable, _, _ = select.select([raw], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable


class Response:
    """An answer whose body is read as it arrives (iter_bytes) or was read whole (content)."""

    def __init__(self, pool: Pool, key: tuple[str, str], conn: _Connection, raw: http.client.HTTPResponse,
                 method: str, url: str) -> None:
        self._pool, self._key, self._conn, self._raw = pool, key, conn, raw
        self.status_code = raw.status
        self.headers = raw.msg
        self.method = method
        self.url = url
        self.content: bytes | None = None

    def iter_bytes(self) -> Iterator[bytes]:
        if self.content is not None:
            yield self.content
            return
        try:
            while True:
                try:
                    chunk = self._raw.read1(READ_CHUNK)
                except TransportError:
                    raise
                except Exception as exc:
                    raise _mapped(exc, "read") from exc
                if not chunk:
                    if self._raw.length:  # (http.client's read1 ends a body cut short without a word)
                        raise RemoteProtocolError(f"the server closed the connection {self._raw.length} bytes "
                                                  "before the end of the body")
                    break
                yield chunk
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
        conn, self._conn = self._conn, None  # type: ignore[assignment]
        if conn is None:
            return
        if not self._raw.isclosed() and self._raw.length == 0:  # HEAD, 204, 304, an empty body
            with contextlib.suppress(Exception):
                self._raw.read()
        if self._raw.isclosed() and not self._raw.will_close:
            self._pool.release(self._key, conn)
        else:
            with contextlib.suppress(Exception):
                self._raw.close()
            conn.close()


def _mapped(exc: BaseException, phase: str) -> TransportError:
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, http.client.IncompleteRead):
        return RemoteProtocolError(f"the server closed the connection before the whole body ({exc})")
    if isinstance(exc, http.client.RemoteDisconnected):
        return RemoteProtocolError("the server closed the connection without an answer")
    if isinstance(exc, http.client.HTTPException):  # BadStatusLine, LineTooLong, too many headers …
        return RemoteProtocolError(f"the server's answer is not valid HTTP/1.1 ({type(exc).__name__}: "
                                   f"{str(exc)[:200]})")
    if isinstance(exc, TimeoutError):
        return ReadTimeout("timed out waiting for the server")
    if isinstance(exc, OSError):
        error = WriteError if phase == "write" else ReadError
        return error(str(exc) or type(exc).__name__)
    if isinstance(exc, ValueError):  # a header value or URL http.client refuses (control characters)
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
                conn = _Connection(parts.hostname, port or (443 if scheme == "https" else 80),
                                   self._context if scheme == "https" else None, self.connect_timeout,
                                   self.timeout)
                conn.connect()
            try:
                conn.request(method, target, body=content, headers=hdrs)
                raw = conn.getresponse()
            except Exception as exc:
                conn.close()
                # An idle connection the server closed just as it was reused: the request never reached
                # it. Sent again once on a new connection, and only if it reads and changes nothing.
                if (reused and attempt == 0 and method in ("GET", "HEAD")
                        and isinstance(exc, (http.client.RemoteDisconnected, BrokenPipeError,
                                             ConnectionResetError))):
                    continue
                raise _mapped(exc, "read") from exc
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s %s: HTTP %d%s", method, url, raw.status, " (kept-alive connection)" if reused else "")
            return Response(self, key, conn, raw, method, url)
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
