"""`vouch query`: version orderings against the real tools (dpkg, rpm, packaging), vers ranges, OSV
advisories, matching; then over a real signed release on the real registry (multi-arch, unsigned and
stale SBOMs reported), and the SBOM cache (a re-query reads no attestation blob)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.version import Version as PepVersion

from tests.support.faultproxy import FaultProxy
from tests.support.keys import write_keypair
from tests.support.registry import RegistryServer
from tests.test_release import manifest_file, push_release, vouch
from vouch.errors import InputError
from vouch.oci.client import RegistryClient, RegistryOptions
from vouch.query.match import match_bom, osv_queries, parse_query
from vouch.query.vers import compare, parse_range

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# ---- orderings against the real tools ----------------------------------------------------------------

_alnum = st.text(alphabet="0123456789abcz", min_size=1, max_size=4)
_part = st.lists(st.one_of(_alnum, st.sampled_from(["~", "~rc1", "+deb12u1", ".dfsg", "~~"])), min_size=1,
                 max_size=4).map("".join)
_upstream = st.builds(lambda d, rest: d + rest, st.text(alphabet="0123456789", min_size=1, max_size=3),
                      _part.map(lambda s: s.replace("-", "")))
deb_versions = st.builds(
    lambda epoch, up, rev: (f"{epoch}:" if epoch is not None else "") + up + (f"-{rev}" if rev else ""),
    st.one_of(st.none(), st.integers(0, 3)), _upstream, st.one_of(st.none(), _part))


def _dpkg_cmp(a: str, b: str) -> int:
    def rel(op: str) -> bool:
        return subprocess.run(["dpkg", "--compare-versions", a, op, b], check=False).returncode == 0
    return -1 if rel("lt") else 0 if rel("eq") else 1


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is the reference for Debian's ordering")
@SETTINGS
@given(deb_versions, deb_versions)
def test_deb_ordering_is_dpkgs(a: str, b: str) -> None:
    assert compare("deb", a, b) == _dpkg_cmp(a, b), (a, b)


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is the reference for Debian's ordering")
@pytest.mark.parametrize(("a", "b"), [("1:1.2.13.dfsg-1", "1.3.1-1"), ("3.0.15-1~deb12u1", "3.0.15-1"),
                                      ("3.0.13-1~deb12u1", "3.0.13"), ("1.0~rc1", "1.0"),
                                      ("2.36-9+deb12u10", "2.36-9+deb12u9")])
def test_deb_vectors(a: str, b: str) -> None:
    assert compare("deb", a, b) == _dpkg_cmp(a, b)


rpm_versions = st.builds(
    lambda epoch, v, r: (f"{epoch}:" if epoch is not None else "") + v + (f"-{r}" if r else ""),
    st.one_of(st.none(), st.integers(0, 2)),
    st.lists(st.one_of(st.text(alphabet="0123456789", min_size=1, max_size=3), st.sampled_from(["a", "rc1", "el9",
                                                                                                "~rc1", "^post"])),
             min_size=1, max_size=4).map(".".join).map(lambda s: s.replace(".~", "~").replace(".^", "^")),
    st.one_of(st.none(), st.sampled_from(["1", "2", "1.el9", "27.el9", "1.el9_4", "10"])))


def _rpm_cmp(a: str, b: str) -> int:
    out = subprocess.run(["rpm", "--eval", f'%{{lua: print(rpm.vercmp("{a}", "{b}"))}}'], capture_output=True,
                         text=True, check=True).stdout.strip()
    return int(out)


@pytest.mark.skipif(shutil.which("rpm") is None, reason="rpm (scripts/make-testdata.sh installs it) is the reference")
@SETTINGS
@given(rpm_versions, rpm_versions)
def test_rpm_ordering_is_rpms(a: str, b: str) -> None:
    assert compare("rpm", a, b) == _rpm_cmp(a, b), (a, b)


pep440 = st.builds(lambda rel, pre, post, dev: rel + pre + post + dev,
                   st.lists(st.integers(0, 20).map(str), min_size=1, max_size=4).map(".".join),
                   st.sampled_from(["", "a1", "b2", "rc1", "rc10"]), st.sampled_from(["", ".post1", ".post2"]),
                   st.sampled_from(["", ".dev0", ".dev3"]))


@SETTINGS
@given(pep440, pep440)
def test_pypi_ordering_is_pep440(a: str, b: str) -> None:
    va, vb = PepVersion(a), PepVersion(b)
    assert compare("pypi", a, b) == (va > vb) - (va < vb), (a, b)


@pytest.mark.parametrize(("scheme", "a", "b", "want"), [
    ("apk", "1.2.5-r0", "1.2.5-r1", -1), ("apk", "3.3.10-r0", "3.3.2-r0", 1), ("apk", "1.0_rc1-r0", "1.0-r0", -1),
    ("npm", "1.0.0-beta.2", "1.0.0", -1), ("npm", "1.10.0", "1.9.9", 1),
    ("maven", "2.17.1", "2.17.10", -1), ("maven", "1.0-alpha", "1.0", -1), ("maven", "1.0.0", "1", 0),
    ("golang", "v1.10.0", "v1.9.0", 1), ("golang", "v1.2.3", "1.2.3", 0),
])
def test_other_orderings(scheme: str, a: str, b: str, want: int) -> None:
    assert compare(scheme, a, b) == want


def test_ranges() -> None:
    r = parse_range("vers:deb/<3.0.13")
    assert r.contains("3.0.11-1~deb12u2") and not r.contains("3.0.15-1~deb12u1")
    assert parse_range("<1.3", "pypi").text == "vers:pypi/<1.3"
    two = parse_range("vers:pypi/>=1.0|<2.0|>=3.0|<3.5")
    assert [two.contains(v) for v in ("0.9", "1.5", "2.5", "3.1", "3.6")] == [False, True, False, True, False]
    assert parse_range("vers:deb/>=1:1.0|<1:2.0").contains("1:1.2.13.dfsg-1")
    for bad, purl_type in [("vers:deb/<3", "rpm"), ("vers:nosuch/<1", None), ("<1", None), ("vers:deb/", None),
                           ("vers:pypi/>=x!y", None)]:
        with pytest.raises(InputError):
            parse_range(bad, purl_type)


# ---- matching and OSV --------------------------------------------------------------------------------

def _comp(purl: str, version: str, **extra: Any) -> dict[str, Any]:
    return {"purl": purl, "version": version, "name": purl.split("/")[-1].split("@")[0], **extra}


BOM = {"components": [
    _comp("pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl", "3.0.11-1~deb12u2",
          properties=[{"name": "vouch:location:0:path", "value": "/var/lib/dpkg/status"},
                      {"name": "vouch:location:0:layerIndex", "value": "0"}]),
    _comp("pkg:deb/ubuntu/libssl3@3.0.2-0ubuntu1?arch=amd64&distro=ubuntu-22.04&upstream=openssl", "3.0.2-0ubuntu1"),
    _comp("pkg:pypi/requests@2.31.0", "2.31.0",
          evidence={"occurrences": [{"location": "/usr/lib/python3/requests-2.31.0.dist-info/METADATA"}]}),
    _comp("pkg:apk/alpine/libcrypto3@3.3.2-r0?arch=x86_64&distro=alpine-3.20.3&upstream=openssl", "3.3.2-r0"),
    _comp("pkg:rpm/rocky/openssl-libs@1:3.0.7-27.el9?arch=x86_64&distro=rocky-9.4"
          "&upstream=openssl-3.0.7-27.el9.src.rpm", "1:3.0.7-27.el9"),
    _comp("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", "2.14.1"),
    _comp("pkg:golang/golang.org/x/net@v0.17.0", "v0.17.0"),
    {"name": "debian", "version": "12", "type": "operating-system"},
]}


def _found(purl: str, ranges: list[str] | None = None, by_source: bool = True) -> list[str]:
    return [m.purl.split("?")[0] for m in match_bom([parse_query(purl, ranges, by_source)], BOM) if m.affected]


def test_matching() -> None:
    assert _found("pkg:deb/debian/libssl3") == ["pkg:deb/debian/libssl3@3.0.11-1~deb12u2"]
    assert len(_found("pkg:deb/libssl3")) == 2  # no namespace: any distro
    assert _found("pkg:deb/debian/libssl3?arch=arm64") == []
    assert _found("pkg:deb/debian/libssl3?arch=amd64", ["<3.0.13"]) == ["pkg:deb/debian/libssl3@3.0.11-1~deb12u2"]
    assert _found("pkg:deb/debian/libssl3", ["vers:deb/<3.0.11"]) == []
    assert _found("pkg:deb/debian/libssl3@3.0.11-1~deb12u2") != []
    assert _found("pkg:deb/debian/openssl") == ["pkg:deb/debian/libssl3@3.0.11-1~deb12u2"]  # by source
    assert _found("pkg:deb/debian/openssl", by_source=False) == []
    assert _found("pkg:rpm/rocky/openssl", ["vers:rpm/<1:3.0.7-28.el9"]) != []
    assert _found("pkg:pypi/Requests", ["vers:pypi/>=2.0|<2.32.0"]) == ["pkg:pypi/requests@2.31.0"]
    m = match_bom([parse_query("pkg:deb/debian/libssl3")], BOM)[0]
    assert m.where == ["/var/lib/dpkg/status (layer 0)"]
    assert match_bom([parse_query("pkg:pypi/requests")], BOM)[0].where[0].endswith("METADATA")
    for bad in ("libssl3", "pkg:", "pkg:deb/debian/libssl3#sub"):
        with pytest.raises(InputError):
            parse_query(bad)


OSV = {
    "id": "TEST-2024-0001", "summary": "openssl everywhere, log4j, requests",
    "affected": [
        {"package": {"ecosystem": "Debian:12", "name": "openssl"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}]}]},
        {"package": {"ecosystem": "Debian:11", "name": "openssl"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.1w-0+deb11u1"}]}]},
        {"package": {"ecosystem": "Alpine:v3.20", "name": "openssl"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.3.2-r1"}]}]},
        {"package": {"ecosystem": "Maven", "name": "org.apache.logging.log4j:log4j-core",
                     "purl": "pkg:maven/org.apache.logging.log4j/log4j-core"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.0-beta9"}, {"fixed": "2.15.0"},
                                                      {"introduced": "2.16.0"}, {"last_affected": "2.16.5"}]}]},
        {"package": {"ecosystem": "PyPI", "name": "requests"}, "versions": ["2.31.0"],
         "ranges": [{"type": "GIT", "repo": "https://example.invalid/r.git", "events": [{"introduced": "abc"}]}]},
        {"package": {"ecosystem": "Go", "name": "golang.org/x/net"},
         "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.17.0"}]}]},
        {"package": {"ecosystem": "Hackage", "name": "aeson"}},
    ]}


def test_osv_advisory() -> None:
    queries, notes = osv_queries(json.dumps(OSV).encode())
    assert [(q.type, q.namespace, q.name, q.distro) for q in queries][:3] == [
        ("deb", "debian", "openssl", "debian-12"), ("deb", "debian", "openssl", "debian-11"),
        ("apk", "alpine", "openssl", "alpine-3.20")]
    assert [str(r) for r in queries[3].ranges] == ["vers:maven/>=2.0-beta9|<2.15.0", "vers:maven/>=2.16.0|<=2.16.5"]
    assert any("GIT" in n for n in notes) and any("Hackage" in n for n in notes)
    found = sorted(m.purl.split("@")[0] for m in match_bom(queries, BOM) if m.affected)
    # Debian 12's libssl3 by its source; Alpine's libcrypto3 too; the Debian 11 range is not for debian-12;
    # the Ubuntu package is not Debian's; golang x/net v0.17.0 is the fixed version.
    assert found == ["pkg:apk/alpine/libcrypto3", "pkg:deb/debian/libssl3",
                     "pkg:maven/org.apache.logging.log4j/log4j-core", "pkg:pypi/requests"]
    for bad in (b"[]", b"{", b'{"affected": [{"package": {"ecosystem": "Hackage", "name": "x"}}]}'):
        with pytest.raises(InputError):
            osv_queries(bad)


# ---- against the real registry ----------------------------------------------------------------------

NAMES = ["cockpit", "notebook", "scheduler", "model-server"]


@pytest.fixture(scope="module")
def signed_release(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Four images signed with `vouch release --key` (cockpit is a two-platform index), an unsigned one and
    one whose SBOM is 200 days old."""
    tmp = tmp_path_factory.mktemp("query")
    priv, pub, _ = write_keypair(tmp, "k")
    client = RegistryClient(RegistryOptions(backoff=0.01))
    repo = "query/" + tmp.name[-8:]
    refs = push_release(client, registry.host, repo, NAMES)
    r = vouch("release", "--key", str(priv), *refs)
    assert r.returncode == 0, r.stderr
    unsigned = push_release(client, registry.host, repo + "-unsigned", ["api-gateway"])[0]
    stale = push_release(client, registry.host, repo + "-stale", ["backup"])[0]
    r = vouch("attest-sbom", "--key", str(priv), stale, env={"SOURCE_DATE_EPOCH": "1700000000"})
    assert r.returncode == 0, r.stderr
    client.close()
    yield {"refs": refs, "unsigned": unsigned, "stale": stale, "pub": pub, "priv": priv, "tmp": tmp,
           "manifest": manifest_file(tmp, [*refs, unsigned, stale])}


def _query(rel: dict[str, Any], *args: str, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    return vouch("query", "--key", str(rel["pub"]), "--cache-dir", str(cache or rel["tmp"] / "cache"), *args)


def test_query_finds_a_package_across_a_release(signed_release: dict[str, Any]) -> None:
    man = str(signed_release["manifest"])
    r = _query(signed_release, "-o", "json", "--manifest", man, "pkg:deb/debian/libssl3", "--range", "vers:deb/<3.0.16")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    hits = [(i["image"].rsplit("/", 1)[-1], i["platform"], m["version"]) for i in out["images"] for m in i["matches"]]
    # cockpit's two platform images and notebook; not alpine's scheduler nor the rpm model-server
    assert sorted(hits) == [("cockpit", "linux/amd64", "3.0.15-1~deb12u1"),
                            ("cockpit", "linux/arm64", "3.0.15-1~deb12u1"), ("notebook", "", "3.0.15-1~deb12u1")]
    assert out["matched"] == 3 and out["notSearched"] == 2
    refused = {i["ref"]: i["sbom"]["reason"] for i in out["images"] if not i["sbom"]["verified"]}
    assert set(refused) == {signed_release["unsigned"], signed_release["stale"]}
    assert "no attestation" in refused[signed_release["unsigned"]]
    assert "old" in refused[signed_release["stale"]] or "90d" in refused[signed_release["stale"]], refused
    m = next(m for i in out["images"] for m in i["matches"])
    assert m["where"] == ["/var/lib/dpkg/status (layer 0)"] and m["via"] == "name"
    assert all(i["sbom"]["ageSeconds"] < 3600 for i in out["images"] if i["sbom"]["verified"])

    # text: a table with the image, platform, purl, version, where, freshness; the unsearched ones listed
    r = _query(signed_release, "--manifest", man, "pkg:deb/debian/openssl", "--range", "<3.0.16")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["IMAGE", "DIGEST", "PLATFORM"]
    assert sum("libssl3" in ln and "(source openssl)" in ln and "fresh" in ln for ln in lines) == 3
    assert sum("NOT SEARCHED" in ln for ln in lines) == 2
    assert "3 match(es) in 3 of 5 searched image(s); 2 not searched" in r.stderr

    # nothing older than 3.0.13 here: exit 1, as grep
    r = _query(signed_release, "--manifest", man, "pkg:deb/debian/libssl3", "--range", "vers:deb/<3.0.13")
    assert r.returncode == 1, r.stderr
    assert "0 match(es)" in r.stderr


def test_query_other_ecosystems_and_osv(signed_release: dict[str, Any], tmp_path: Path) -> None:
    refs = signed_release["refs"]
    r = _query(signed_release, "-o", "json", *refs, "pkg:maven/org.apache.logging.log4j/log4j-core",
               "--range", "vers:maven/>=2.0|<2.17.2")
    assert r.returncode == 0, r.stderr
    assert [i["image"].rsplit("/", 1)[-1] for i in json.loads(r.stdout)["images"] if i["matches"]] == ["model-server"]
    osv = tmp_path / "osv.json"
    osv.write_text(json.dumps({"id": "TEST-OPENSSL", "affected": [
        {"package": {"ecosystem": "Alpine:v3.20", "name": "openssl"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.3.2-r1"}]}]},
        {"package": {"ecosystem": "Debian:12", "name": "openssl"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.14-1~deb12u1"}]}]},
        {"package": {"ecosystem": "PyPI", "name": "requests"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.0"}, {"fixed": "2.32.0"}]}]}]}))
    r = _query(signed_release, "-o", "json", *refs, "--osv", str(osv))
    assert r.returncode == 0, r.stderr
    hits = sorted((i["image"].rsplit("/", 1)[-1], m["name"]) for i in json.loads(r.stdout)["images"]
                  for m in i["matches"])
    assert hits == [("notebook", "requests"), ("scheduler", "libcrypto3")]


def test_query_bad_input_and_trust(signed_release: dict[str, Any], registry: RegistryServer, tmp_path: Path) -> None:
    refs = signed_release["refs"]
    for args in (["libssl3"], ["pkg:deb/debian/libssl3", "--range", "vers:rpm/<1"], ["pkg:deb/debian/libssl3",
                 "--range", "vers:deb/"], [], ["pkg:deb/debian/x", "--osv", str(tmp_path / "missing.json")]):
        r = _query(signed_release, *refs[:1], *args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith("Error:"), r.stderr
    # another key: nothing verifies, every image reported, exit 1
    _, other, _ = write_keypair(tmp_path, "other")
    r = vouch("query", "--key", str(other), "--no-cache", *refs, "pkg:deb/debian/libssl3")
    assert r.returncode == 1 and r.stdout.count("NOT SEARCHED") == 5, r.stdout  # cockpit: two platforms
    # a registry that is not there: exit 3
    r = _query(signed_release, "127.0.0.1:1/none/img:1", "pkg:deb/debian/libssl3")
    assert r.returncode == 3, r.stderr


def test_requery_reads_no_sbom_from_the_registry(signed_release: dict[str, Any], proxy: FaultProxy,
                                                 registry: RegistryServer, tmp_path: Path) -> None:
    refs = [r.replace(registry.host, proxy.host) for r in signed_release["refs"]]
    cache = tmp_path / "cache"
    r = _query(signed_release, *refs, "pkg:deb/debian/libssl3", cache=cache)
    assert r.returncode == 0, r.stderr
    first = proxy.count("GET", r"/blobs/")
    assert first > 0 and list((cache / "sha256").iterdir())
    r2 = _query(signed_release, *refs, "pkg:deb/debian/libssl3", cache=cache)
    assert r2.returncode == 0, r2.stderr
    assert proxy.count("GET", r"/blobs/") == first, "the re-query read a blob from the registry"
    assert r2.stdout == r.stdout and "0 read from the registry" in r2.stderr
    # a tampered cache entry is not used: its digest no longer matches, it is read again
    victim = sorted((cache / "sha256").iterdir())[0]
    victim.write_bytes(b'{"payloadType": "x", "payload": "", "signatures": []}')
    r3 = _query(signed_release, *refs, "pkg:deb/debian/libssl3", cache=cache)
    assert r3.returncode == 0 and r3.stdout == r.stdout, r3.stderr
    assert proxy.count("GET", r"/blobs/") == first + 1
    # and a cache is never needed: --no-cache reads everything again
    r4 = vouch("query", "--key", str(signed_release["pub"]), "--no-cache", *refs, "pkg:deb/debian/libssl3")
    assert r4.returncode == 0 and proxy.count("GET", r"/blobs/") == 2 * first + 1

