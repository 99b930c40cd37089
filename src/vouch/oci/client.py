"""The registry client every command uses (OCI distribution API over vouch.oci.transport).

- every manifest and blob fetched is checked against its digest;
- timeouts on every call; retries with backoff on 429/5xx/dropped connections, only where safe;
- auth: anonymous, Basic, Bearer token flow (tokens cached per scope), Docker config credentials;
- redirects followed by hand: Authorization is never sent to another host;
- TLS verified by default; plain HTTP only for loopback or registries named insecure.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlencode, urljoin, urlparse

from vouch import lazylog, limits
from vouch.errors import DigestMismatchError, NotFoundError, RegistryError
from vouch.oci import mediatypes as mt
from vouch.oci import transport
from vouch.oci.auth import Credentials, basic_header, lookup_credentials, parse_challenge
from vouch.oci.digest import check_digest, hasher_for, sha256_digest
from vouch.oci.manifest import Descriptor as Descriptor  # (re-exported: callers import it from here)
from vouch.oci.manifest import Manifest as Manifest
from vouch.oci.reference import Reference
from vouch.record import record

log = lazylog.get("vouch.registry")

MAX_MANIFEST_BYTES = limits.MAX_MANIFEST_BYTES
BLOB_UNKNOWN_ATTEMPTS = 4  # PUTs of one manifest a registry refuses for a blob it does not see yet
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CHUNK = 1024 * 1024

BlobOpener = Callable[[], Iterator[bytes]]


def is_loopback(host: str) -> bool:
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]")[0]
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


@record
class RegistryOptions:
    insecure: frozenset[str] = frozenset()  # hosts where plain HTTP is allowed
    ca_file: str | None = None
    timeout: float = 60.0
    retries: int = 4
    backoff: float = 0.5
    max_retry_after: float = 30.0
    chunk_size: int = 8 * CHUNK
    user_agent: str = "vouch"
    deadline: float = limits.REQUEST_DEADLINE_SECONDS  # total time for one request and its body
    blob_seconds_per_mib: float = limits.BLOB_DEADLINE_SECONDS_PER_MIB  # more time for large blobs

    def blob_deadline(self, size: int) -> float:
        return self.deadline + self.blob_seconds_per_mib * size / (1024 * 1024)


class _Prefetch:
    """A manifest (or small blob) GET started ahead of its reader (RegistryClient.prefetch_manifests)."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.manifest: Manifest | None = None
        self.data: bytes | None = None  # a blob's bytes, digest-checked
        self.error: Exception | None = None
        self.cancelled = False


BlobsOf = Callable[[Reference, Manifest], list[tuple[str, int]]]  # blobs to read ahead: (digest, max bytes)
# manifests to read ahead after one was read (None: it was not found): (reference, Accept)
FollowUps = Callable[[Reference, "Manifest | None"], list[tuple[Reference, str]]]


class RegistryClient:
    """One client for all registries a command touches. Thread-safe for concurrent use."""

    def __init__(self, options: RegistryOptions | None = None):
        self.options = options or RegistryOptions()
        ca_file = self.options.ca_file
        self._http = transport.Pool(lambda: transport.verifying_context(ca_file), timeout=self.options.timeout,
                                    connect_timeout=10.0, user_agent=self.options.user_agent)
        self._lock = threading.Lock()
        self._schemes: dict[str, str] = {}
        self._probe_locks: dict[str, threading.Lock] = {}
        self._tokens: dict[tuple[str, str], str] = {}
        self._basic: dict[str, str] = {}
        self._creds: dict[str, Credentials | None] = {}
        self._no_referrers_api: set[str] = set()  # hosts whose 404 said the route does not exist
        self._prefetched: dict[tuple[str, str], _Prefetch] = {}
        self._prefetched_blobs: dict[tuple[str, str], _Prefetch] = {}
        self.request_count = 0  # for tests and reports: how many HTTP requests were made

    def close(self) -> None:
        with self._lock:
            for p in [*self._prefetched.values(), *self._prefetched_blobs.values()]:
                p.cancelled = True
            self._prefetched.clear()
            self._prefetched_blobs.clear()
        self._http.close()

    def prefetch_manifests(self, refs: list[Reference], accept: str, concurrency: int,
                           blobs_of: BlobsOf | None = None, then: FollowUps | None = None) -> None:
        """Start GETting these manifests in the background (daemon threads), for a later get_manifest of the
        same reference and Accept to take: a command's requests then overlap the imports and key loading
        it does before it reads them. Each answer, or error, is taken once, by the first get_manifest that
        asks; one never asked for is dropped. Nothing is written, so an abandoned prefetch costs only a read.
        The answer is as of the prefetch and says so (Manifest.prefetched): store.layout.update_tag may find
        nothing to do from it, but reads afresh before it plans a write. With blobs_of, the blobs it names
        of each manifest read are read ahead too, for get_blob to take (a blob is content-addressed and
        digest-checked: an answer read ahead is as good as one read now). With then, the manifests it
        names after each answer (or after a 404: None) are read ahead in turn, by the same threads (a
        reader that would go on to them: verify's bundle layout after a missing .sig tag)."""
        todo: list[tuple[Reference, str, _Prefetch]] = []

        def register(items: list[tuple[Reference, str]]) -> list[tuple[Reference, str, _Prefetch]]:
            out = []
            with self._lock:
                for ref, acc in items:
                    key = (str(ref), acc)
                    if key not in self._prefetched:
                        self._prefetched[key] = p = _Prefetch()
                        out.append((ref, acc, p))
            return out

        todo.extend(register([(ref, accept) for ref in refs]))
        if not todo:
            return
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    if not todo:
                        return
                    ref, acc, p = todo.pop(0)
                blobs: list[tuple[str, int, _Prefetch]] = []
                more: list[tuple[Reference, str]] = []
                if not p.cancelled:
                    try:
                        p.manifest = self._fetch_manifest(ref, acc)
                        p.manifest.prefetched = True
                        if blobs_of is not None:
                            blobs = self._register_blobs(ref, blobs_of(ref, p.manifest))
                    except Exception as exc:  # (re-raised, as it was, in the thread that asks for it)
                        p.error = exc
                    if then is not None and (p.manifest is not None or isinstance(p.error, NotFoundError)):
                        with contextlib.suppress(Exception):  # (a hint: a reader asks for itself anyway)
                            more = then(ref, p.manifest)
                p.done.set()
                if more:
                    follow = register(more)
                    with lock:
                        todo.extend(follow)
                for digest, cap, b in blobs:
                    if not b.cancelled:
                        try:
                            b.data = self._read_blob(ref, digest, cap)
                        except Exception as exc:  # (the reader then reads it itself)
                            b.error = exc
                    b.done.set()

        for _ in range(max(1, min(concurrency, len(todo)))):
            threading.Thread(target=work, name="vouch-prefetch", daemon=True).start()

    def _register_blobs(self, ref: Reference, wanted: list[tuple[str, int]]) -> list[tuple[str, int, _Prefetch]]:
        out = []
        with self._lock:
            for digest, cap in wanted:
                key = (f"{ref.registry}/{ref.repository}", digest)
                if key not in self._prefetched_blobs:
                    self._prefetched_blobs[key] = b = _Prefetch()
                    out.append((digest, cap, b))
        return out

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- plumbing -------------------------------------------------------------------------

    def _scheme(self, host: str) -> str:
        with self._lock:
            if host in self._schemes:
                return self._schemes[host]
            probe_lock = self._probe_locks.setdefault(host, threading.Lock())
        with probe_lock:  # one probe per host, however many threads ask at once
            with self._lock:
                if host in self._schemes:
                    return self._schemes[host]
            scheme = "https"
            if host in self.options.insecure or is_loopback(host):
                # Try TLS first, as Docker does; fall back to plain HTTP only for these hosts.
                try:
                    self._probe_tls(host)
                except (transport.ConnectError, transport.RemoteProtocolError, transport.ReadError) as exc:
                    # A certificate error proves the server speaks TLS: keep https (and report it later).
                    if not _is_cert_error(exc):
                        scheme = "http"
                except transport.TransportError:
                    scheme = "https"
            with self._lock:
                self._schemes[host] = scheme
            return scheme

    def _probe_tls(self, host: str) -> None:
        """GET https://host/v2/: an answer or a certificate error means the host speaks TLS. Through a context
        that trusts no CA (so the CA bundle is loaded only when https is used): a TLS server fails it with a
        certificate error, which says as much as an answer; nothing is sent past the handshake."""
        probe = transport.Pool(transport.no_trust_context, timeout=5.0, connect_timeout=5.0,
                               user_agent=self.options.user_agent)
        try:
            with transport.deadline(time.monotonic() + 10.0):
                probe.send("GET", f"https://{host}/v2/").close()
        finally:
            probe.close()

    def _url(self, ref: Reference, path: str) -> str:
        host = ref.api_host
        return f"{self._scheme(host)}://{host}/v2/{ref.repository}/{path}"

    def _credentials(self, host: str) -> Credentials | None:
        with self._lock:
            if host in self._creds:
                return self._creds[host]
        creds = lookup_credentials(host)
        with self._lock:
            self._creds[host] = creds
        return creds

    def _fetch_token(self, host: str, params: dict[str, str], scope: str) -> str:
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"{host} asked for a bearer token but gave no realm")
        realm_url = urlparse(realm)
        if realm_url.scheme not in ("http", "https") or not realm_url.netloc:
            raise RegistryError(f"{host} named a token realm that is not an http(s) URL ({realm[:100]!r}); refusing it")
        if realm_url.scheme == "http" and not (
                self._scheme(host) == "http" or is_loopback(realm_url.netloc)
                or realm_url.netloc in self.options.insecure):
            raise RegistryError(
                f"{host} (TLS) named a plain-HTTP token realm {realm_url.netloc}; refusing to send credentials "
                "there in clear text")
        creds = self._credentials(host)
        query: dict[str, str] = {}
        if params.get("service"):
            query["service"] = params["service"]
        if scope:
            query["scope"] = scope
        headers = {}
        try:
            if creds is not None and creds.is_identity_token:
                form = {"grant_type": "refresh_token", "refresh_token": creds.password,
                        "service": query.get("service", ""), "scope": scope, "client_id": "vouch"}
                method, url, content = "POST", realm, urlencode(form).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                if creds is not None:
                    headers["Authorization"] = basic_header(creds)
                method, url, content = "GET", realm + ("&" if "?" in realm else "?") + urlencode(query), None
            until = time.monotonic() + self.options.deadline
            with transport.deadline(until):
                resp = self._http.send(method, url, headers, content)
                if resp.status_code == 200:
                    body_bytes = _read_capped(resp, limits.MAX_TOKEN_RESPONSE_BYTES, f"token answer of {host}",
                                              until)
                else:
                    _read_error(resp)
                    body_bytes = b""
        except transport.TransportError as exc:
            raise RegistryError(f"cannot reach the token service of {host} ({realm}): {exc}") from exc
        if resp.status_code in (401, 403):
            raise RegistryError(
                f"{host} refused the credentials for scope {scope!r} (HTTP {resp.status_code}); "
                "check `docker login` / VOUCH_REGISTRY_USERNAME and the account's permissions",
                resp.status_code,
            )
        if resp.status_code != 200:
            raise RegistryError(f"token service of {host} answered HTTP {resp.status_code}", resp.status_code)
        try:
            body = json.loads(body_bytes)
            token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        except ValueError:
            token = None
        if not token or not isinstance(token, str):
            raise RegistryError(f"token service of {host} answered without a token")
        if len(token) > limits.MAX_TOKEN_BYTES:
            raise RegistryError(f"token service of {host} answered a token of {len(token)} bytes, over the "
                                f"{limits.MAX_TOKEN_BYTES}-byte limit; refusing it")
        if not all(33 <= ord(c) < 127 for c in token):
            raise RegistryError(f"token service of {host} answered a token with characters a header cannot carry; "
                                "refusing it")
        return token

    def _auth_header(self, host: str, scope: str) -> str | None:
        with self._lock:
            tok = self._tokens.get((host, scope))
            if tok:
                return f"Bearer {tok}"
            return self._basic.get(host)

    def _handle_challenge(self, host: str, header: str, scope: str) -> bool:
        """React to a 401. Return True if a retry with new credentials makes sense."""
        challenge = parse_challenge(header)
        if challenge is None:
            return False
        if challenge.scheme == "basic":
            creds = self._credentials(host)
            if creds is None:
                raise RegistryError(
                    f"{host} requires a login: run `docker login {host}` or set "
                    "VOUCH_REGISTRY_USERNAME and VOUCH_REGISTRY_PASSWORD", 401)
            value = basic_header(creds)
            with self._lock:
                if self._basic.get(host) == value:
                    return False
                self._basic[host] = value
            return True
        if challenge.scheme == "bearer":
            token = self._fetch_token(host, challenge.params, challenge.params.get("scope") or scope)
            with self._lock:
                if self._tokens.get((host, scope)) == token:
                    return False
                self._tokens[(host, scope)] = token
            return True
        return False

    def _sleep_for_retry(self, attempt: int, resp: transport.Response | None) -> None:
        self.sleep_before_retry(attempt, _retry_after(resp) if resp is not None else None)

    def sleep_before_retry(self, attempt: int, retry_after: float | None = None) -> None:
        """Exponential backoff with jitter; a server's Retry-After (capped) when it is longer."""
        delay = self.options.backoff * (2**attempt) * (0.5 + random.random())
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.options.max_retry_after))
        time.sleep(delay)

    def request(
        self,
        method: str,
        ref: Reference,
        url: str,
        *,
        scope: str,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        stream: bool = False,
        retry: bool = True,
        ok: tuple[int, ...] = (200,),
        what: str = "",
        max_body: int = MAX_MANIFEST_BYTES,
    ) -> transport.Response:
        """Send one request with auth, retries (when `retry`), manual redirects. Raise on non-`ok` status.

        Every response is streamed: with `stream` the caller reads the body (and bounds it); otherwise
        at most `max_body` bytes are read here, within the request deadline. Error bodies are read
        only as far as limits.MAX_ERROR_BODY_BYTES. A 401 is answered with credentials only when the
        registry itself sent it, never a host it redirected to."""
        host = ref.api_host
        attempts = self.options.retries + 1 if retry else 1
        auth_rounds = 0
        attempt = 0
        last_error: str = ""
        while True:
            hdrs = dict(headers or {})
            auth = self._auth_header(host, scope)
            if auth:
                hdrs["Authorization"] = auth
            until = time.monotonic() + self.options.deadline
            try:
                with transport.deadline(until):
                    resp, final_url = self._send(method, url, hdrs, content, host)
                    if resp.status_code in ok and not stream:
                        resp.content = _read_capped(resp, max_body, what or f"{method} {url}", until)
            except (transport.TransportError, DigestMismatchError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                if _is_cert_error(exc):
                    raise RegistryError(
                        f"{host}: TLS certificate not trusted ({exc}); pass --ca-file with the registry's CA, "
                        f"or --insecure-registry {host} only if it is a test registry") from exc
                dns = _dns_failure(exc)
                if dns is not None:
                    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
                    raise UnresolvedHostError(
                        f"{what or method + ' ' + url}: the registry name {name} does not resolve "
                        f"({dns.strerror or dns}); check the name, and this machine's DNS and network") from exc
                attempt += 1
                if attempt >= attempts:
                    raise RegistryError(
                        f"{what or method + ' ' + url}: {host} failed after {attempt} attempt(s): {last_error}"
                    ) from exc
                log.info("retrying %s %s after %s", method, url, last_error)
                self._sleep_for_retry(attempt - 1, None)
                continue
            self.request_count += 1
            if resp.status_code == 401 and urlparse(final_url).netloc != urlparse(url).netloc:
                _read_error(resp)
                raise RegistryError(
                    f"{what or url}: {host} redirected to {urlparse(final_url).netloc}, which asked for credentials "
                    f"(HTTP 401); vouch sends no credentials to a host other than {host}", 401)
            if resp.status_code == 401 and auth_rounds < 2:
                challenge = resp.headers.get("WWW-Authenticate", "")
                _close(resp)
                auth_rounds += 1
                if self._handle_challenge(host, challenge, scope):
                    continue
                raise RegistryError(
                    f"{what or url}: {host} denied access (HTTP 401); check the credentials for {host}", 401)
            if resp.status_code in RETRY_STATUSES and attempt + 1 < attempts:
                attempt += 1
                log.info("retrying %s %s after HTTP %s", method, url, resp.status_code)
                _close(resp)
                self._sleep_for_retry(attempt - 1, resp)
                continue
            if resp.status_code in ok:
                return resp
            body = _read_error(resp)
            if resp.status_code == 404:
                raise NotFoundError(f"{what or url}: not found on {host}{body}", 404)
            if resp.status_code == 403:
                raise RegistryError(
                    f"{what or url}: {host} forbids this (HTTP 403){body}; check the account's permissions", 403)
            if resp.status_code == 401:
                raise RegistryError(f"{what or url}: {host} denied access (HTTP 401){body}", 401)
            error = RegistryError(f"{what or url}: {host} answered HTTP {resp.status_code}{body}", resp.status_code)
            error.retry_after = _retry_after(resp)
            raise error

    def _send(self, method: str, url: str, headers: dict[str, str], content: bytes | None,
              host: str) -> tuple[transport.Response, str]:
        """Send, following redirects by hand; returns the response (streamed) and the URL that answered."""
        for _ in range(6):
            resp = self._http.send(method, url, headers, content)
            if resp.status_code in (301, 302, 303, 307, 308) and method in ("GET", "HEAD"):
                location = resp.headers.get("Location")
                _read_error(resp)
                if not location:
                    raise RegistryError(f"{host} redirected without a Location")
                new_url = urljoin(url, location)
                new = urlparse(new_url)
                old = urlparse(url)
                if new.scheme not in ("http", "https"):
                    raise RegistryError(f"{host} redirected to a non-HTTP URL ({new.scheme}:); refusing")
                if new.netloc != old.netloc or new.scheme != old.scheme:
                    # Never forward credentials to another host (object storage, CDN, attacker), nor
                    # to the same host over another scheme.
                    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                if new.scheme == "http" and old.scheme == "https" and not (
                        new.netloc in self.options.insecure or is_loopback(new.netloc)):
                    raise RegistryError(f"{host} redirected from HTTPS to plain HTTP at {new.netloc}; refusing")
                if new.scheme == "http" and new.netloc != old.netloc and not (
                        new.netloc in self.options.insecure or is_loopback(new.netloc)):
                    raise RegistryError(f"{host} redirected to plain HTTP at {new.netloc}; refusing")
                url = new_url
                continue
            return resp, url
        raise RegistryError(f"{host}: too many redirects")

    # ---- manifests ------------------------------------------------------------------------

    def get_manifest(self, ref: Reference, accept: str = mt.ACCEPT_MANIFESTS) -> Manifest:
        """GET a manifest by tag or digest; the body is checked against the digest."""
        if self._prefetched:
            with self._lock:
                p = self._prefetched.pop((str(ref), accept), None)
            if p is not None:
                p.done.wait()
                if p.error is not None:
                    raise p.error
                if p.manifest is not None:
                    return p.manifest
        return self._fetch_manifest(ref, accept)

    def _fetch_manifest(self, ref: Reference, accept: str) -> Manifest:
        url = self._url(ref, f"manifests/{ref.identifier}")
        for attempt in range(self.options.retries + 1):
            resp = self.request("GET", ref, url, scope=_pull(ref), headers={"Accept": accept},
                                what=f"manifest {ref}", stream=True)
            until = time.monotonic() + self.options.deadline
            try:
                with transport.deadline(until):
                    raw = _read_capped(resp, MAX_MANIFEST_BYTES, f"manifest {ref}", until)
            except transport.TransportError as exc:
                if attempt == self.options.retries:
                    if "total deadline" in str(exc):
                        raise RegistryError(f"manifest {ref}: the answer did not arrive in time ({exc}); the registry "
                                            "is too slow or stalling, try again later") from exc
                    raise RegistryError(f"manifest {ref}: connection dropped: {exc}") from exc
                continue
            media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
            try:
                if ref.digest:
                    check_digest(raw, ref.digest, f"manifest {ref}")
                    digest = ref.digest
                else:
                    digest = sha256_digest(raw)
                    header = resp.headers.get("Docker-Content-Digest")
                    if header and header.startswith("sha256:") and header != digest:
                        raise DigestMismatchError(
                            f"manifest {ref}: body digest {digest} differs from the registry's "
                            f"Docker-Content-Digest {header}; refusing it")
            except DigestMismatchError:
                if attempt == self.options.retries:
                    raise
                log.info("manifest %s: digest mismatch, retrying", ref)
                continue
            if media_type not in mt.MANIFEST_TYPES:
                with contextlib.suppress(ValueError):
                    media_type = str(json.loads(raw).get("mediaType") or media_type)
            return Manifest(raw, media_type, digest)
        raise RegistryError(f"manifest {ref}: unreachable")  # pragma: no cover

    def head_manifest(self, ref: Reference, accept: str = mt.ACCEPT_MANIFESTS) -> Descriptor | None:
        """HEAD a manifest: its descriptor, or None when it does not exist."""
        url = self._url(ref, f"manifests/{ref.identifier}")
        try:
            resp = self.request("HEAD", ref, url, scope=_pull(ref), headers={"Accept": accept},
                                what=f"manifest {ref}")
        except NotFoundError:
            return None
        digest = resp.headers.get("Docker-Content-Digest")
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        size = int(resp.headers.get("Content-Length", "0") or 0)
        if not digest:
            m = self.get_manifest(ref, accept)
            return m.descriptor()
        if ref.digest and digest != ref.digest:
            raise DigestMismatchError(f"manifest {ref}: registry reports digest {digest}")
        return Descriptor(media_type, digest, size)

    def resolve(self, ref: Reference) -> Descriptor:
        """Tag (or digest) → descriptor of the top-level manifest; NotFoundError if absent."""
        desc = self.head_manifest(ref)
        if desc is None:
            raise NotFoundError(f"image {ref} not found", 404)
        return desc

    def put_manifest(self, ref: Reference, raw: bytes, media_type: str, retry: bool = True,
                     ensure_blobs: Callable[[], None] | None = None) -> str:
        """PUT a manifest under ref's tag (or digest). Returns its digest.

        Retrying the same body is safe for an image's own tag or digest, never for a tag whose content
        was planned from an earlier read (signature tags: the store re-reads and re-plans instead)."""
        return self.put_manifest_subject(ref, raw, media_type, retry, ensure_blobs)[0]

    def put_manifest_subject(self, ref: Reference, raw: bytes, media_type: str, retry: bool = True,
                             ensure_blobs: Callable[[], None] | None = None) -> tuple[str, bool]:
        """put_manifest, and whether the registry said it indexed the manifest's `subject` (the
        `OCI-Subject` header of OCI distribution 1.1: it has a referrers API).

        With retry, a 400 naming an unknown blob is answered by ensure_blobs (make sure every blob the
        manifest names is there) and the same bytes put again, a few times: a registry may briefly not
        see a blob another writer commits at the same moment (distribution's filesystem driver rewrites
        the repository's blob link in place, and answers DIGEST_INVALID + MANIFEST_BLOB_UNKNOWN)."""
        digest = sha256_digest(raw)
        url = self._url(ref, f"manifests/{ref.tag or digest}")
        attempts = BLOB_UNKNOWN_ATTEMPTS if retry else 1
        attempt = 1
        while True:
            try:
                resp = self.request("PUT", ref, url, scope=_push(ref), headers={"Content-Type": media_type},
                                    content=raw, ok=(200, 201, 202), what=f"push manifest {ref}", retry=retry)
            except RegistryError as exc:
                if exc.status != 400 or "BLOB_UNKNOWN" not in str(exc) or attempt >= attempts:
                    raise
                log.info("push manifest %s: registry did not see a blob yet (%s); retrying", ref, exc)
                time.sleep(random.uniform(0.05, 0.2) * attempt)
                if ensure_blobs is not None:
                    ensure_blobs()
                attempt += 1
                continue
            return digest, bool(resp.headers.get("OCI-Subject"))

    def referrers(self, ref: Reference, digest: str) -> list[Descriptor] | None:
        """The descriptors of the manifests whose `subject` is digest, from the OCI 1.1 referrers API
        (following `Link` pagination, bounded); None when the registry has no such API (404)."""
        host = ref.api_host
        with self._lock:
            if host in self._no_referrers_api:
                return None
        url: str | None = self._url(ref, f"referrers/{digest}")
        found: list[Descriptor] = []
        pages = 0
        what = f"referrers of {ref.name}@{digest}"
        while url:
            pages += 1
            if pages > limits.MAX_TAG_PAGES:
                raise RegistryError(f"{what}: more than {limits.MAX_TAG_PAGES} pages; refusing to read on")
            resp = self.request("GET", ref, url, scope=_pull(ref), headers={"Accept": mt.OCI_INDEX},
                                what=what, ok=(200, 404), stream=True)
            until = time.monotonic() + self.options.deadline
            if resp.status_code == 404:
                body = _read_capped(resp, limits.MAX_ERROR_BODY_BYTES, "error body", until, truncate=True)
                if pages > 1:
                    raise NotFoundError(f"{what}: page {pages} not found on {host}", 404)
                if not _error_codes(body):
                    # Not an answer of the API (which names an error code: NAME_UNKNOWN …) but of a server
                    # without the route (distribution: "404 page not found"): it has no referrers API, for
                    # any repository; not asked again in this command.
                    with self._lock:
                        self._no_referrers_api.add(host)
                return None
            with transport.deadline(until):
                resp.content = _read_capped(resp, MAX_MANIFEST_BYTES, what, until)
            try:
                page = resp.json()
            except ValueError as exc:
                raise RegistryError(f"{what}: the registry answered invalid JSON") from exc
            items = page.get("manifests") if isinstance(page, dict) else None
            if items is not None and not isinstance(items, list):
                raise RegistryError(f"{what}: `manifests` is not a list")
            found.extend(Descriptor.from_json(x) for x in items or [])
            if len(found) > limits.MAX_REFERRERS:
                raise RegistryError(f"{what}: more than {limits.MAX_REFERRERS}; refusing to read on")
            url = self._next_page(ref, resp)
        return found

    def _next_page(self, ref: Reference, resp: transport.Response) -> str | None:
        """The next page's URL from a `Link: <…>; rel="next"` header (tag lists, referrers), or None."""
        link = str(resp.headers.get("Link") or "")
        if "rel=\"next\"" not in link.replace("'", '"'):
            return None
        return urljoin(self._url(ref, ""), link.split(";")[0].strip().strip("<>"))

    def delete_manifest(self, ref: Reference, digest: str) -> None:
        url = self._url(ref, f"manifests/{digest}")
        self.request("DELETE", ref, url, scope=_push(ref, delete=True), ok=(200, 202),
                     what=f"delete {ref.name}@{digest}")

    def list_tags(self, ref: Reference, page_size: int = 1000) -> list[str]:
        """Every tag of the repository, following `Link` pagination."""
        url: str | None = self._url(ref, f"tags/list?n={page_size}")
        tags: list[str] = []
        pages = 0
        while url:
            pages += 1
            if pages > limits.MAX_TAG_PAGES:
                raise RegistryError(f"tags of {ref.name}: more than {limits.MAX_TAG_PAGES} pages; refusing to read on")
            try:
                resp = self.request("GET", ref, url, scope=_pull(ref), what=f"tags of {ref.name}")
            except NotFoundError:
                return tags
            try:
                page = resp.json()
                page_tags = page.get("tags") if isinstance(page, dict) else None
            except ValueError as exc:
                raise RegistryError(f"tags of {ref.name}: the registry answered invalid JSON") from exc
            if page_tags is not None and not (isinstance(page_tags, list)
                                              and all(isinstance(t, str) for t in page_tags)):
                raise RegistryError(f"tags of {ref.name}: the registry answered a tag list that is not strings")
            tags.extend(page_tags or [])
            url = self._next_page(ref, resp)
        return tags

    # ---- blobs ----------------------------------------------------------------------------

    def blob_exists(self, ref: Reference, digest: str) -> bool:
        url = self._url(ref, f"blobs/{digest}")
        try:
            self.request("HEAD", ref, url, scope=_pull(ref), what=f"blob {digest}")
        except NotFoundError:
            return False
        return True

    def get_blob(self, ref: Reference, digest: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        """A small blob (config, signature payload) read whole, digest-checked (or taken, once, from a read
        ahead: prefetch_manifests' blobs_of)."""
        if self._prefetched_blobs:
            with self._lock:
                b = self._prefetched_blobs.pop((f"{ref.registry}/{ref.repository}", digest), None)
            if b is not None:
                b.done.wait()
                if b.data is not None and len(b.data) <= max_bytes:
                    return b.data
        return self._read_blob(ref, digest, max_bytes)

    def _read_blob(self, ref: Reference, digest: str, max_bytes: int) -> bytes:
        out = bytearray()
        for chunk in self.iter_blob(ref, digest):
            out += chunk
            if len(out) > max_bytes:
                raise RegistryError(f"blob {digest} is larger than {max_bytes} bytes; refusing to read it whole")
        return bytes(out)

    def iter_blob(self, ref: Reference, digest: str) -> Iterator[bytes]:
        """Stream a blob. Resumes dropped connections with Range; the digest is checked at the end,
        and a mismatch raises DigestMismatchError (consumers must not trust data before the end)."""
        hasher = hasher_for(digest)
        url = self._url(ref, f"blobs/{digest}")
        offset = 0
        failures = 0
        started = time.monotonic()
        while True:
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            resp = self.request("GET", ref, url, scope=_pull(ref), headers=headers, stream=True,
                                ok=(200, 206), what=f"blob {digest} of {ref.name}")
            skip = offset if resp.status_code == 200 else 0
            try:
                length = int(resp.headers.get("Content-Length") or 0)
            except ValueError:
                length = 0
            deadline = started + self.options.blob_deadline(offset + length)
            try:
                for chunk in resp.iter_bytes():  # as the network delivers it, so the deadline is checked
                    if time.monotonic() > deadline:
                        raise RegistryError(
                            f"blob {digest} of {ref.name}: not received within {deadline - started:.0f} s "
                            f"({offset} bytes so far); the registry is too slow or stalling, try again later")
                    if skip:
                        if len(chunk) <= skip:
                            skip -= len(chunk)
                            continue
                        chunk = chunk[skip:]
                        skip = 0
                    hasher.update(chunk)
                    offset += len(chunk)
                    yield chunk
            except transport.TransportError as exc:
                failures += 1
                if failures > self.options.retries:
                    raise RegistryError(
                        f"blob {digest} of {ref.name}: connection dropped {failures} times, giving up: {exc}"
                    ) from exc
                log.info("blob %s: connection dropped at %d bytes, resuming", digest, offset)
                self._sleep_for_retry(failures - 1, None)
                continue
            finally:
                resp.close()
            break
        got = f"{digest.split(':', 1)[0]}:{hasher.hexdigest()}"
        if got != digest:
            raise DigestMismatchError(
                f"blob {digest} of {ref.name}: content digest is {got}; refusing it "
                "(the registry or a proxy served wrong or tampered content)")

    def mount_blob(self, ref: Reference, digest: str, from_repository: str) -> bool:
        """Cross-repository mount. True if mounted; False if the registry started an upload instead."""
        url = self._url(ref, "blobs/uploads/?" + urlencode({"mount": digest, "from": from_repository}))
        scope = f"repository:{ref.repository}:pull,push repository:{from_repository}:pull"
        resp = self.request("POST", ref, url, scope=scope, ok=(201, 202), what=f"mount {digest}")
        if resp.status_code == 202:
            loc = resp.headers.get("Location")
            if loc:  # cancel the upload the registry started
                with contextlib.suppress(RegistryError):
                    self.request("DELETE", ref, urljoin(url, loc), scope=_push(ref), ok=(200, 202, 204, 404),
                                 retry=False)
            return False
        return True

    def push_blob(self, ref: Reference, data: bytes, digest: str | None = None) -> str:
        """Monolithic upload of an in-memory blob (skipped if present). Returns its digest."""
        digest = digest or sha256_digest(data)
        if self.blob_exists(ref, digest):
            return digest
        for attempt in range(self.options.retries + 1):
            try:
                loc = self._start_upload(ref)
                self.request("PUT", ref, _with_query(loc, {"digest": digest}), scope=_push(ref),
                             headers={"Content-Type": "application/octet-stream"}, content=data,
                             ok=(201, 204), retry=False, what=f"upload {digest}")
                return digest
            except RegistryError as exc:
                if attempt == self.options.retries or not exc.transient:
                    raise
                self._sleep_for_retry(attempt, None)
        return digest  # pragma: no cover

    def push_blob_stream(self, ref: Reference, opener: BlobOpener, digest: str) -> str:
        """Chunked upload from a re-openable stream (PATCH per chunk, PUT to finish). A failure
        restarts the whole upload from a fresh stream. The registry checks the digest at the end."""
        if self.blob_exists(ref, digest):
            return digest
        for attempt in range(self.options.retries + 1):
            try:
                loc = self._start_upload(ref)
                offset = 0
                buf = bytearray()

                def flush(loc: str, offset: int, buf: bytearray) -> tuple[str, int]:
                    end = offset + len(buf) - 1
                    resp = self.request(
                        "PATCH", ref, loc, scope=_push(ref), content=bytes(buf), retry=False,
                        headers={"Content-Type": "application/octet-stream",
                                 "Content-Range": f"{offset}-{end}", "Content-Length": str(len(buf))},
                        ok=(202, 204), what=f"upload chunk of {digest}")
                    return urljoin(loc, resp.headers.get("Location", loc)), end + 1

                for chunk in opener():
                    buf += chunk
                    if len(buf) >= self.options.chunk_size:
                        loc, offset = flush(loc, offset, buf)
                        buf = bytearray()
                if buf:
                    loc, offset = flush(loc, offset, buf)
                self.request("PUT", ref, _with_query(loc, {"digest": digest}), scope=_push(ref),
                             headers={"Content-Type": "application/octet-stream", "Content-Length": "0"},
                             content=b"", ok=(201, 204), retry=False, what=f"finish upload of {digest}")
                return digest
            except RegistryError as exc:
                if attempt == self.options.retries or not exc.transient:
                    raise
                log.info("upload of %s failed (%s), restarting", digest, exc)
                self._sleep_for_retry(attempt, None)
        return digest  # pragma: no cover

    def _start_upload(self, ref: Reference) -> str:
        url = self._url(ref, "blobs/uploads/")
        resp = self.request("POST", ref, url, scope=_push(ref), ok=(202,), what=f"start upload to {ref.name}")
        loc = resp.headers.get("Location")
        if not loc:
            raise RegistryError(f"{ref.api_host} started an upload without a Location")
        return str(urljoin(url, loc))


def _retry_after(resp: transport.Response) -> float | None:
    try:
        value = float(resp.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


class UnresolvedHostError(RegistryError):
    """The registry's name does not resolve (DNS): not a transient fault, so never retried."""

    @property
    def transient(self) -> bool:
        return False


def _dns_failure(exc: BaseException) -> socket.gaierror | None:
    """The name-resolution error under a connect error (transport.ConnectError → socket.gaierror), if that is it."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, socket.gaierror):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _is_cert_error(exc: Exception) -> bool:
    text = str(exc)
    return "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _pull(ref: Reference) -> str:
    return f"repository:{ref.repository}:pull"


def _push(ref: Reference, delete: bool = False) -> str:
    return f"repository:{ref.repository}:{'delete,pull,push' if delete else 'pull,push'}"


def _close(resp: transport.Response) -> None:
    with contextlib.suppress(Exception):
        resp.close()


def _read_capped(resp: transport.Response, cap: int, what: str, deadline: float | None = None,
                 truncate: bool = False) -> bytes:
    """The body, at most cap bytes (more is refused, or with truncate cut off), within the deadline."""
    out = bytearray()
    try:
        for chunk in resp.iter_bytes():
            out += chunk
            if len(out) > cap:
                if truncate:
                    return bytes(out[:cap])
                raise RegistryError(f"{what}: larger than {cap} bytes; refusing it")
            if deadline is not None and time.monotonic() > deadline:
                raise RegistryError(f"{what}: the answer did not arrive in time ({len(out)} bytes so far); "
                                    "the registry is too slow or stalling, try again later")
    finally:
        resp.close()
    return bytes(out)


def _error_codes(body: bytes) -> list[str]:
    """The OCI error codes of an error body (`{"errors": [{"code": …}]}`); none for anything else."""
    try:
        data = json.loads(body)
        errors = data.get("errors") if isinstance(data, dict) else None
        return [str(e["code"]) for e in errors or [] if isinstance(e, dict) and e.get("code")]
    except (ValueError, TypeError):
        return []


def _read_error(resp: transport.Response) -> str:
    """The registry's error messages from an error body, reading at most MAX_ERROR_BODY_BYTES of it."""
    try:
        if resp.method == "HEAD":
            return ""
        raw = _read_capped(resp, limits.MAX_ERROR_BODY_BYTES, "error body",
                           time.monotonic() + 10.0, truncate=True)
        data = json.loads(raw)
        errors = data.get("errors") or []
        msgs = [f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors if isinstance(e, dict)]
        text = "; ".join(msgs)[:500]
        return f" ({text})" if msgs else ""
    except Exception:
        return ""
    finally:
        _close(resp)
