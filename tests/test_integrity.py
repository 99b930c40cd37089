"""Issue 12: nothing lost, nothing leaked, nothing unbounded — against the real registry behind the fault
proxy, and against a hostile registry on loopback (tests/support/hostile.py).

Each test is one case of the issue, asserting the exact outcome: no signature or attestation lost, the
exit code and message, and (where memory is the point) the peak RSS of a child process.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.faultproxy import FaultProxy, Rule
from tests.support.hostile import Answer, HostileServer, Request, drip, json_answer, repeated, run_measured
from tests.support.images import small_image
from tests.support.keys import new_signer, write_keypair
from tests.support.registry import RegistryServer
from vouch import __version__, limits
from vouch.errors import RegistryError
from vouch.oci import mediatypes as mt
from vouch.oci.build import push_image
from vouch.oci.client import Descriptor, RegistryClient, RegistryOptions
from vouch.oci.digest import sha256_digest
from vouch.oci.reference import Reference
from vouch.signing.attestation import PREDICATE_TYPES, envelope, statement
from vouch.signing.payload import simple_signing_payload
from vouch.signing.sign import sign_image
from vouch.store.attest import attach, read_attestations
from vouch.store.layout import ANN_SIGNATURE, ATT_SUFFIX, SIG_SUFFIX, build_manifest, read_tag, tag_for
from vouch.verify.attestations import verify_attestations
from vouch.verify.bomfacts import parse_age
from vouch.verify.signatures import verify_image

CDX = PREDICATE_TYPES["cyclonedx"]


def _push(registry: RegistryServer, repo: str) -> str:
    with RegistryClient() as c:
        return push_image(c, Reference(registry.host, repo, "v1"), small_image(repo))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AKKO_", "VOUCH_SIGN", "COSIGN_"))}
    env.update({"COSIGN_PASSWORD": "pw", **extra})
    return env


def _sig_layers(registry: RegistryServer, repo: str, digest: str) -> int:
    with RegistryClient() as c:
        return len(read_tag(c, Reference(registry.host, repo), tag_for(digest, SIG_SUFFIX)).layers)


# ---- 1. a retried manifest PUT must not replay a stale plan ---------------------------------------------


def test_retried_put_after_503_does_not_overwrite_a_concurrent_signer(
        registry: RegistryServer, proxy: FaultProxy, repo_name: str) -> None:
    """Signer A's .sig PUT gets 503 + Retry-After: 2; signer B writes, reads back and exits meanwhile.
    Before: A replayed its old body after the wait and B's signature was lost (both exit 0)."""
    digest = _push(registry, repo_name)
    a, b = new_signer(), new_signer()
    proxy.add(Rule("status", "PUT", r"/manifests/sha256-.*\.sig", times=1, status=503, retry_after="2"))
    errors: list[BaseException] = []

    def sign_a() -> None:
        try:
            sign_image(RegistryClient(RegistryOptions(backoff=0.01)), a, Reference(proxy.host, repo_name, None, digest))
        except BaseException as exc:  # reported below
            errors.append(exc)

    t = threading.Thread(target=sign_a)
    t.start()
    for _ in range(500):  # until A's PUT has been refused
        if any(m == "PUT" and s == 503 for m, _, s in proxy.log):
            break
        time.sleep(0.01)
    assert any(m == "PUT" and s == 503 for m, _, s in proxy.log)
    with RegistryClient() as direct:
        [rb] = sign_image(direct, b, Reference(registry.host, repo_name, None, digest))
        assert rb.signed
    t.join(60)
    assert not errors
    with RegistryClient() as direct:
        target = Reference(registry.host, repo_name, None, digest)
        assert verify_image(direct, target, [a.public_key]).ok
        assert verify_image(direct, target, [b.public_key]).ok  # nobody's signature lost
    assert _sig_layers(registry, repo_name, digest) == 2


def test_layers_removed_by_a_stale_writer_are_put_back(registry: RegistryServer, repo_name: str) -> None:
    """A writer whose read-back finds a layer it had seen gone (a stale overwrite) puts it back."""
    digest = _push(registry, repo_name)
    first, second, third = new_signer(), new_signer(), new_signer()
    with RegistryClient() as c:
        target = Reference(registry.host, repo_name, None, digest)
        sign_image(c, first, target)
        repo = Reference(registry.host, repo_name)
        tag = tag_for(digest, SIG_SUFFIX)
        seen = read_tag(c, repo, tag)
        sign_image(c, second, target)

        # The third signer's planner runs while a stale writer overwrites the tag with the old list.
        from vouch.store import layout

        real_read = layout.read_tag
        calls = {"n": 0}

        def stale_once(client: RegistryClient, r: Reference, t: str) -> layout.TagState:
            calls["n"] += 1
            state = real_read(client, r, t)
            if calls["n"] == 2:  # the read-back: a stale writer has just put the first-signer-only list
                raw = build_manifest(client, r, [x.descriptor for x in seen.layers])
                client.put_manifest(r.with_tag(t), raw, mt.OCI_MANIFEST)
                return real_read(client, r, t)
            return state

        layout.read_tag = stale_once  # type: ignore[assignment]
        try:
            sign_image(c, third, target)
        finally:
            layout.read_tag = real_read
        for s in (first, second, third):
            assert verify_image(c, target, [s.public_key]).ok
        assert len(read_tag(c, repo, tag).layers) == 3


# ---- 2. a transient 404 on the tag read must not wipe other keys' layers ------------------------------------


def test_transient_404_on_sig_tag_keeps_other_signatures(registry: RegistryServer, proxy: FaultProxy,
                                                         repo_name: str) -> None:
    digest = _push(registry, repo_name)
    k1, k2 = new_signer(), new_signer()
    with RegistryClient() as direct:
        sign_image(direct, k1, Reference(registry.host, repo_name, None, digest))
    proxy.add(Rule("status", "GET", r"/manifests/sha256-.*\.sig", times=1, status=404,
                   body=b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"eventually consistent"}]}'))
    [r] = sign_image(RegistryClient(RegistryOptions(backoff=0.01)), k2, Reference(proxy.host, repo_name, None, digest))
    assert r.signed
    with RegistryClient() as direct:
        target = Reference(registry.host, repo_name, None, digest)
        assert verify_image(direct, target, [k1.public_key]).ok  # before: removed by k2's "new" tag
        assert verify_image(direct, target, [k2.public_key]).ok


def test_transient_404_on_att_tag_keeps_other_attestations(registry: RegistryServer, proxy: FaultProxy,
                                                           repo_name: str) -> None:
    digest = _push(registry, repo_name)
    signer = new_signer()
    with RegistryClient() as direct:
        ref = Reference(registry.host, repo_name, None, digest)
        stmt = statement(PREDICATE_TYPES["openvex"], ref.docker_reference, digest, {"a": 1})
        attach(direct, ref, digest, envelope(signer, stmt), stmt, PREDICATE_TYPES["openvex"], signer.public_key,
               False)
    proxy.add(Rule("status", "GET", r"/manifests/sha256-.*\.att", times=1, status=404))
    via = Reference(proxy.host, repo_name, None, digest)
    stmt2 = statement(PREDICATE_TYPES["custom"], via.docker_reference, digest, {"b": 2})
    with RegistryClient(RegistryOptions(backoff=0.01)) as c:
        assert attach(c, via, digest, envelope(signer, stmt2), stmt2, PREDICATE_TYPES["custom"], signer.public_key,
                      False).attached
    with RegistryClient() as direct:
        ref = Reference(registry.host, repo_name, None, digest)
        assert verify_attestations(direct, ref, [signer.public_key], PREDICATE_TYPES["openvex"]).ok
        assert verify_attestations(direct, ref, [signer.public_key], PREDICATE_TYPES["custom"]).ok
        assert len(read_attestations(direct, ref, digest)[1]) == 2


def test_tag_listed_but_404_refuses_to_write(registry: RegistryServer, proxy: FaultProxy, repo_name: str) -> None:
    """A registry that lists the tag but keeps answering 404 for it: no write at all, exit 3, tag intact."""
    digest = _push(registry, repo_name)
    k1, k2 = new_signer(), new_signer()
    with RegistryClient() as direct:
        sign_image(direct, k1, Reference(registry.host, repo_name, None, digest))
    proxy.add(Rule("status", "GET", r"/manifests/sha256-.*\.sig", times=1000, status=404))
    with pytest.raises(RegistryError, match="lists this tag but answers 404") as info:
        sign_image(RegistryClient(RegistryOptions(backoff=0.01)), k2, Reference(proxy.host, repo_name, None, digest))
    assert info.value.exit_code == 3
    assert proxy.count("PUT", r"/manifests/") == 0
    assert _sig_layers(registry, repo_name, digest) == 1


def test_404_on_read_back_after_write_loses_nothing(registry: RegistryServer, proxy: FaultProxy,
                                                    repo_name: str) -> None:
    digest = _push(registry, repo_name)
    k1, k2 = new_signer(), new_signer()
    with RegistryClient() as direct:
        sign_image(direct, k1, Reference(registry.host, repo_name, None, digest))
    # the first read sees the tag; the read-back after the write answers 404 once
    client = RegistryClient(RegistryOptions(backoff=0.01))
    via = Reference(proxy.host, repo_name, None, digest)
    orig_put = client.put_manifest
    armed = []

    def put_then_404(*args: object, **kw: object) -> str:
        out = orig_put(*args, **kw)  # type: ignore[arg-type]
        if not armed:  # the first write's read-back answers 404 once
            armed.append(proxy.add(Rule("status", "GET", r"/manifests/sha256-.*\.sig", times=1, status=404)))
        return out

    client.put_manifest = put_then_404  # type: ignore[method-assign]
    sign_image(client, k2, via)
    assert armed and armed[0].fired == 1
    with RegistryClient() as direct:
        target = Reference(registry.host, repo_name, None, digest)
        assert verify_image(direct, target, [k1.public_key]).ok
        assert verify_image(direct, target, [k2.public_key]).ok
    assert _sig_layers(registry, repo_name, digest) == 2


# ---- 3. credentials never go to another host ------------------------------------------------------------------


def test_redirect_target_challenge_gets_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registry H (Basic auth) redirects a blob GET to host B; B answers 401 with a Bearer challenge whose
    realm is on B. Before: vouch answered it with H's Basic credentials (sent to B's token endpoint)."""
    blob = b"layer"
    digest = sha256_digest(blob)
    with HostileServer(lambda r: None) as b_host:
        def b_route(req: Request) -> Answer:
            return Answer(401, {"WWW-Authenticate": f'Bearer realm="http://{b_host.host}/token",service="b"'}, b"")

        b_host.route = b_route

        def h_route(req: Request) -> Answer:
            if req.headers.get("authorization") != "Basic " + base64.b64encode(b"user:s3cret").decode():
                return Answer(401, {"WWW-Authenticate": 'Basic realm="h"'}, b"")
            if "/blobs/" in req.path:
                return Answer(307, {"Location": f"http://{b_host.host}/storage/{digest}"}, b"")
            return Answer(200, {}, b"{}")

        with HostileServer(h_route) as h:
            monkeypatch.setenv("VOUCH_REGISTRY_USERNAME", "user")
            monkeypatch.setenv("VOUCH_REGISTRY_PASSWORD", "s3cret")
            with RegistryClient(RegistryOptions(backoff=0.01, retries=1)) as c, \
                    pytest.raises(RegistryError, match="sends no credentials") as info:
                c.get_blob(Reference(h.host, "akko/app"), digest)
            assert info.value.exit_code == 3
            assert b_host.log, "the redirect was followed"
            for req in b_host.log:
                assert "authorization" not in req.headers, (req.path, req.headers)
            assert not b_host.requests(path_contains="/token")


def test_plain_http_realm_for_tls_registry_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOUCH_REGISTRY_USERNAME", "user")
    monkeypatch.setenv("VOUCH_REGISTRY_PASSWORD", "s3cret")
    with HostileServer(lambda r: None) as realm, RegistryClient() as c:
        c._schemes["registry.example"] = "https"  # a TLS registry (no request is made before the refusal)
        with pytest.raises(RegistryError, match="plain-HTTP token realm"):
            c._fetch_token("registry.example", {"realm": "http://evil.example:80/token"}, "repository:a:pull")
        with pytest.raises(RegistryError, match="not an http"):
            c._fetch_token("registry.example", {"realm": f"file://{realm.host}/x"}, "repository:a:pull")
        assert not realm.log


# ---- 4. tokens are capped ----------------------------------------------------------------------------------------


def test_huge_token_is_refused() -> None:
    def route(req: Request) -> Answer:
        if req.path.startswith("/token"):
            size = 50 * 1024 * 1024
            prefix, suffix = b'{"token":"', b'"}'
            chunks = iter([prefix, *repeated(b"A" * 65536, size), suffix])
            return Answer(200, {"Content-Type": "application/json"}, chunks, len(prefix) + size + len(suffix))
        return Answer(401, {"WWW-Authenticate": f'Bearer realm="http://{server.host}/token",service="h"'}, b"")

    with HostileServer(route) as server, RegistryClient(RegistryOptions(backoff=0.01, retries=0)) as c:
        with pytest.raises(RegistryError, match=f"larger than {limits.MAX_TOKEN_RESPONSE_BYTES} bytes"):
            c.get_manifest(Reference(server.host, "akko/app", "v1"))
        assert server.sent_bytes < 50 * 1024 * 1024  # the client hung up early


def test_token_too_long_for_a_header_is_refused() -> None:
    def route(req: Request) -> Answer:
        if req.path.startswith("/token"):
            return json_answer(json.dumps({"token": "t" * (limits.MAX_TOKEN_BYTES + 1)}).encode())
        return Answer(401, {"WWW-Authenticate": f'Bearer realm="http://{server.host}/token"'}, b"")

    with HostileServer(route) as server, RegistryClient(RegistryOptions(backoff=0.01, retries=0)) as c, \
            pytest.raises(RegistryError, match="over the 16384-byte limit"):
        c.get_manifest(Reference(server.host, "akko/app", "v1"))


# ---- 6. error bodies and payloads: bounded memory -------------------------------------------------------------------


def _image_route(digest: str, extra: dict[str, Answer]) -> HostileServer:
    def route(req: Request) -> Answer | None:
        if req.method == "HEAD" and req.path.endswith("/manifests/v1"):
            return Answer(200, {"Docker-Content-Digest": digest, "Content-Type": mt.OCI_MANIFEST}, b"")
        for path, ans in extra.items():
            if req.path.endswith(path):
                return ans
        return None

    return HostileServer(route)


def test_404_with_huge_body_is_read_bounded(tmp_path: Path) -> None:
    """HEAD ok, then GET of the .sig tag answers 404 with a 400 MiB body. Before: 851 MiB RSS."""
    digest = "sha256:" + "ab" * 32
    _, pub, _ = write_keypair(tmp_path, "k")
    huge = 400 * 1024 * 1024
    server = _image_route(digest, {tag_for(digest, SIG_SUFFIX): Answer(
        404, {"Content-Type": "application/json"}, repeated(b" " * 65536, huge), huge)})
    with server:
        m = run_measured([sys.executable, "-m", "vouch", "verify", "--key", str(pub), f"{server.host}/akko/app:v1"],
                         env=_env())
    assert m.returncode == 1, m.stderr
    assert "no signatures found" in m.stderr and "Traceback" not in m.stderr
    assert m.max_rss_mib < 150, m.max_rss_mib
    assert server.sent_bytes < huge


def _att_server(n_layers: int, layer_bytes: int) -> tuple[HostileServer, str]:
    """An image whose .att tag has n layers of layer_bytes each: DSSE envelopes signed by nobody."""
    digest = "sha256:" + "cd" * 32
    blobs: dict[str, bytes] = {}
    layers = []
    for i in range(n_layers):
        head = b'{"payloadType":"application/vnd.in-toto+json","payload":"'
        tail = b'","signatures":[{"keyid":"","sig":"' + base64.b64encode(b"sig%d" % i) + b'"}]}'
        fill = layer_bytes - len(head) - len(tail)
        body = head + b"QUFB" * (fill // 4) + tail
        d = sha256_digest(body)
        blobs[d] = body
        layers.append(Descriptor(mt.DSSE_ENVELOPE, d, len(body), {"predicateType": CDX}).to_json())
    cfg = b"{}"
    blobs[sha256_digest(cfg)] = cfg
    manifest = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                           "config": {"mediaType": mt.OCI_CONFIG, "digest": sha256_digest(cfg), "size": 2},
                           "layers": layers}).encode()

    def route(req: Request) -> Answer | None:
        if req.method == "HEAD" and req.path.endswith("/manifests/v1"):
            return Answer(200, {"Docker-Content-Digest": digest, "Content-Type": mt.OCI_MANIFEST}, b"")
        if req.path.endswith(tag_for(digest, ATT_SUFFIX)):
            return json_answer(manifest, mt.OCI_MANIFEST)
        for d, body in blobs.items():
            if req.path.endswith(f"/blobs/{d}"):
                return Answer(200, {"Content-Type": "application/octet-stream"}, body)
        return None

    return HostileServer(route), digest


@pytest.mark.timeout(600)
def test_many_large_attestation_layers_use_flat_memory(tmp_path: Path) -> None:
    """.att with 8 layers of 64 MiB: before, 807 MiB RSS, growing with the layer count (every payload kept).
    Now one layer at a time, and the tag's byte budget stops reading after limits.MAX_ATTESTATION_BYTES_PER_TAG."""
    _, pub, _ = write_keypair(tmp_path, "k")
    peaks = {}
    for n in (2, 8):
        server, _ = _att_server(n, 64 * 1024 * 1024)
        with server:
            m = run_measured([sys.executable, "-m", "vouch", "verify-attestation", "--key", str(pub), "--type",
                              "cyclonedx", f"{server.host}/akko/app:v1"], env=_env())
        assert m.returncode == 1, m.stderr
        assert "does not verify" in m.stderr and "Traceback" not in m.stderr
        peaks[n] = m.max_rss_mib
        if n == 8:
            assert "not read" in m.stderr  # the budget was reached and the user is told
    assert peaks[8] < peaks[2] + 64, peaks  # flat: not one more payload's worth per layer
    assert peaks[8] < 400, peaks


# ---- 7. a tag with thousands of layers cannot stall verify --------------------------------------------------------


def test_12000_layer_sig_tag_is_bounded(registry: RegistryServer, proxy: FaultProxy, repo_name: str) -> None:
    digest = _push(registry, repo_name)
    repo = Reference(registry.host, repo_name)
    payload = simple_signing_payload(f"{registry.host}/{repo_name}", digest, None)
    with RegistryClient() as c:
        pd = c.push_blob(repo, payload)
        descs = [Descriptor(mt.COSIGN_SIMPLESIGNING, pd, len(payload),
                            {ANN_SIGNATURE: base64.b64encode(b"bogus%05d" % i).decode()}) for i in range(12000)]
        raw = build_manifest(c, repo, descs)
        assert len(raw) < limits.MAX_MANIFEST_BYTES
        c.put_manifest(repo.with_tag(tag_for(digest, SIG_SUFFIX)), raw, mt.OCI_MANIFEST)
    signer = new_signer()
    with RegistryClient() as c:
        res = verify_image(c, Reference(proxy.host, repo_name, None, digest), [signer.public_key])
    assert not res.ok
    assert len(res.checks) == limits.MAX_LAYERS_PER_TAG
    assert f"past the first {limits.MAX_LAYERS_PER_TAG} not read" in res.reason()
    assert proxy.count("GET", f"/blobs/{pd}") == 1  # the same blob fetched once, not 12,000 times


# ---- 8. every request has a total deadline -----------------------------------------------------------------


def test_dripping_manifest_body_hits_the_deadline() -> None:
    body = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "layers": []}).encode()

    def route(req: Request) -> Answer | None:
        if req.path.endswith("/manifests/v1"):
            return Answer(200, {"Content-Type": mt.OCI_MANIFEST}, drip(body, 0.5, stop_after=30), len(body))
        return None

    with HostileServer(route) as server, \
            RegistryClient(RegistryOptions(deadline=2.0, timeout=5.0, retries=0)) as c, \
            pytest.raises(RegistryError, match="did not arrive in time"):
        c.get_manifest(Reference(server.host, "akko/app", "v1"))  # before: read for as long as the server dripped


def test_dripping_blob_hits_the_deadline() -> None:
    blob = b"x" * 4096
    digest = sha256_digest(blob)

    def route(req: Request) -> Answer | None:
        if "/blobs/" in req.path:
            return Answer(200, {"Content-Type": "application/octet-stream"}, drip(blob, 0.5, stop_after=30),
                          len(blob))
        return None

    with HostileServer(route) as server, \
            RegistryClient(RegistryOptions(deadline=2.0, timeout=5.0, retries=0)) as c, \
            pytest.raises(RegistryError, match="not received within"):
        c.get_blob(Reference(server.host, "akko/app"), digest)


# ---- 11. timestamps: future and non-RFC 3339 are refused ------------------------------------------------


def _bom(ts: str) -> dict[str, object]:
    return {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
            "metadata": {"timestamp": ts, "tools": {"components": [{"name": "vouch", "version": __version__}]}},
            "components": []}


@pytest.mark.parametrize("ts", ["2099-01-01T00:00:00Z", "2026-05-01", "2026-W18-5", "2026-05-01T00:00:00",
                                "2026-05-01 00:00:00Z", "2026-05-01t00:00:00z"])
def test_future_or_non_rfc3339_sbom_timestamps_are_refused(registry: RegistryServer, client: RegistryClient,
                                                           repo_name: str, ts: str) -> None:
    digest = _push(registry, repo_name)
    ref = Reference(registry.host, repo_name, None, digest)
    signer = new_signer()
    stmt = statement(CDX, ref.docker_reference, digest, _bom(ts))
    attach(client, ref, digest, envelope(signer, stmt), stmt, CDX, signer.public_key, False)
    res = verify_attestations(client, ref, [signer.public_key], CDX, parse_age("90d"))
    assert not res.ok
    assert ("in the future" in res.reason()) if ts.startswith("2099") else ("not RFC 3339" in res.reason())


def test_rfc3339_variants_kyverno_accepts_still_pass(registry: RegistryServer, client: RegistryClient,
                                                     repo_name: str) -> None:
    digest = _push(registry, repo_name)
    ref = Reference(registry.host, repo_name, None, digest)
    signer = new_signer()
    now = dt.datetime.now(dt.UTC)
    for ts in (now.strftime("%Y-%m-%dT%H:%M:%SZ"), now.strftime("%Y-%m-%dT%H:%M:%S.123456789Z"),
               now.astimezone(dt.timezone(dt.timedelta(hours=2))).strftime("%Y-%m-%dT%H:%M:%S+02:00"),
               (now + dt.timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")):  # within the clock skew
        stmt = statement(CDX, ref.docker_reference, digest, _bom(ts))
        attach(client, ref, digest, envelope(signer, stmt), stmt, CDX, signer.public_key, True)
        assert verify_attestations(client, ref, [signer.public_key], CDX, parse_age("90d")).ok, ts


def test_attest_refuses_to_sign_a_bom_with_a_bad_timestamp(registry: RegistryServer, repo_name: str,
                                                           tmp_path: Path) -> None:
    import subprocess

    digest = _push(registry, repo_name)
    priv, _, _ = write_keypair(tmp_path, "k")
    for ts, msg in (("2099-01-01T00:00:00Z", "in the future"), ("2026-05-01", "not RFC 3339")):
        bom = tmp_path / "bom.json"
        bom.write_text(json.dumps(_bom(ts)))
        r = subprocess.run([sys.executable, "-m", "vouch", "attest", "--key", str(priv), "--type", "cyclonedx",
                            "--predicate", str(bom), f"{registry.host}/{repo_name}@{digest}"],
                           capture_output=True, text=True, env=_env(), timeout=120, stdin=subprocess.DEVNULL)
        assert r.returncode == 2, r.stderr
        assert msg in r.stderr and "Traceback" not in r.stderr
    with RegistryClient() as c:
        assert read_attestations(c, Reference(registry.host, repo_name), digest)[1] == []


def test_release_does_not_take_a_future_sbom_as_current(registry: RegistryServer, repo_name: str,
                                                        tmp_path: Path) -> None:
    import subprocess

    digest = _push(registry, repo_name)
    priv, pub, signer = write_keypair(tmp_path, "k")
    ref = Reference(registry.host, repo_name, None, digest)
    stmt = statement(CDX, ref.docker_reference, digest, _bom("2099-01-01T00:00:00Z"))
    with RegistryClient() as c:
        attach(c, ref, digest, envelope(signer, stmt), stmt, CDX, signer.public_key, False)
    r = subprocess.run([sys.executable, "-m", "vouch", "-o", "json", "release", "--key", str(priv),
                        f"{registry.host}/{repo_name}:v1"], capture_output=True, text=True, env=_env(), timeout=300,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    [report] = json.loads(r.stdout)["images"] if isinstance(json.loads(r.stdout), dict) else json.loads(r.stdout)
    assert report["sbom"] == "attested"  # before: "current" — a BOM dated 2099 passed every age check
    g = subprocess.run([sys.executable, "-m", "vouch", "verify-release", "--key", str(pub), "--max-age", "90d",
                        f"{registry.host}/{repo_name}:v1"], capture_output=True, text=True, env=_env(), timeout=120,
                       stdin=subprocess.DEVNULL)
    assert g.returncode == 0, g.stderr


# ---- 12. expected failures never crash ------------------------------------------------------------------------------


@pytest.mark.parametrize("age", ["99999999999d", "1e400d", "36501d"])
def test_absurd_max_age_is_a_usage_error(tmp_path: Path, age: str) -> None:
    import subprocess

    _, pub, _ = write_keypair(tmp_path, "k")
    r = subprocess.run([sys.executable, "-m", "vouch", "verify-attestation", "--key", str(pub), "--type", "cyclonedx",
                        "--max-age", age, "127.0.0.1:1/x:v1"], capture_output=True, text=True, env=_env(),
                       timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("Error: ") and "Traceback" not in r.stderr


def test_dripping_headers_hit_the_deadline() -> None:
    """The status line and headers dripped a byte at a time: a per-read timeout never fires, the total
    deadline does (enforced at the socket by vouch.oci.transport)."""
    import socket

    stop = threading.Event()
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def serve() -> None:
        srv.settimeout(30)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.recv(65536)
                for ch in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 200:
                    if stop.is_set():
                        break
                    conn.sendall(bytes([ch]))
                    time.sleep(0.2)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with RegistryClient(RegistryOptions(deadline=2.0, timeout=5.0, retries=0)) as c:
            c._schemes[f"127.0.0.1:{port}"] = "http"
            # "total deadline", not the per-read timeout: the deadline cut the dripping server off
            with pytest.raises(RegistryError, match="total deadline of the request passed"):
                c.get_manifest(Reference(f"127.0.0.1:{port}", "akko/app", "v1"))
    finally:
        stop.set()
        srv.close()


def test_equivalent_layer_by_the_same_key_is_not_restored_as_a_duplicate(registry: RegistryServer,
                                                                         repo_name: str) -> None:
    """Two releases with one key: A writes, reads its layer back, then B's equivalent signature replaces
    it before A's settle read. A must not put its own layer back beside B's (one signature, not two)."""
    from vouch.signing.signer import KeySigner
    from vouch.store import layout

    digest = _push(registry, repo_name)
    shared = new_signer()
    twin = KeySigner(shared._key)  # the same key in another process
    target = Reference(registry.host, repo_name, None, digest)
    real_read = layout.read_tag
    calls = {"n": 0, "a_seen": 0, "fired": 0}

    def b_overwrites_before_settle(client: RegistryClient, r: Reference, t: str) -> layout.TagState:
        calls["n"] += 1
        if calls["a_seen"] and not calls["fired"]:  # A's settle read: B (which read the empty tag too) puts
            calls["fired"] = 1
            layout.read_tag = real_read
            try:
                layout.update_tag(client, r, t,  # B planned from the empty tag: its list is its layer alone
                                  lambda s: None if any(x.descriptor == b_layer for x in s.layers) else [b_layer],
                                  replacing=True, settle=0)
            finally:
                layout.read_tag = b_overwrites_before_settle  # type: ignore[assignment]
        state = real_read(client, r, t)
        if state.layers and not calls["fired"]:
            calls["a_seen"] = 1  # A's read-back saw A's own layer
        return state

    payload = simple_signing_payload(target.docker_reference, digest, None)
    with RegistryClient() as c:
        c.push_blob(Reference(registry.host, repo_name), payload)
        b_layer = Descriptor(mt.COSIGN_SIMPLESIGNING, sha256_digest(payload), len(payload),
                             {ANN_SIGNATURE: base64.b64encode(twin.sign(payload)).decode()})
        layout.read_tag = b_overwrites_before_settle  # type: ignore[assignment]
        try:
            sign_image(c, shared, target)
        finally:
            layout.read_tag = real_read
        assert calls["fired"]
        assert _sig_layers(registry, repo_name, digest) == 1
        assert verify_image(c, target, [shared.public_key]).ok


def test_durations_read_in_the_largest_fitting_unit() -> None:
    """`--max-age 1s` used to say "0.0 hours" (issue 18)."""
    from vouch.verify.bomfacts import _fmt

    assert [_fmt(dt.timedelta(seconds=s)) for s in (0.4, 1, 59, 60, 720, 3600, 19800, 86400, 12_787_200)] == [
        "0.4 s", "1 s", "59 s", "1 min", "12 min", "1.0 hours", "5.5 hours", "1.0 days", "148.0 days"]
