"""`vouch report`: a release signed by `vouch release` on the real registry (a two-platform index, an
unsigned image, one whose SBOM is 200 days old, one whose signed SBOM carries hostile licence and
component strings), the JSON form checked, and the HTML page loaded in a real headless Chromium
(Debian's `chromium`): its DOM checked for the image names, digests, signer, SBOM age and counts, no
script and no external resource; a screenshot is kept under the test's tmp dir (path printed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.support.keys import write_keypair
from tests.support.registry import RegistryServer
from tests.test_release import manifest_file, push_release, vouch
from vouch.keys.cosign import key_id, load_public_keys
from vouch.oci.client import RegistryClient, RegistryOptions
from vouch.report.html import render

NAMES = ["cockpit", "notebook", "scheduler"]
HOSTILE_LICENCE = '<script>alert("licence")</script>'
HOSTILE_TYPE = "<img src=//evil.example/x onerror=alert(1)>"


def chromium() -> str:
    """Debian's chromium (scripts/install-peers.sh installs it). In CI its absence is a failure."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (scripts/install-peers.sh installs Debian's chromium)")
        pytest.skip("chromium is not installed (scripts/install-peers.sh installs it)")
    return path


@pytest.fixture(scope="module")
def release(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("report")
    priv, pub, _ = write_keypair(tmp, "k")
    client = RegistryClient(RegistryOptions(backoff=0.01))
    repo = "report/" + tmp.name[-8:]
    refs = push_release(client, registry.host, repo, NAMES)
    r = vouch("release", "--key", str(priv), *refs)
    assert r.returncode == 0, r.stderr
    unsigned = push_release(client, registry.host, repo + "-unsigned", ["api-gateway"])[0]
    stale = push_release(client, registry.host, repo + "-stale", ["backup"])[0]
    r = vouch("sign", "--key", str(priv), stale)
    assert r.returncode == 0, r.stderr
    r = vouch("attest-sbom", "--key", str(priv), stale, env={"SOURCE_DATE_EPOCH": "1700000000"})
    assert r.returncode == 0, r.stderr
    # a signed SBOM whose strings are hostile: signed by the trusted key, still only text
    hostile = push_release(client, registry.host, repo + "-hostile", ["model-server"])[0]
    r = vouch("sign", "--key", str(priv), hostile)
    assert r.returncode == 0, r.stderr
    r = vouch("sbom", hostile)
    assert r.returncode == 0, r.stderr
    bom = json.loads(r.stdout)
    bom["components"][0]["licenses"] = [{"license": {"name": HOSTILE_LICENCE}}]
    bom["components"].append({"type": HOSTILE_TYPE, "name": "x"})
    pred = tmp / "hostile.cdx.json"
    pred.write_text(json.dumps(bom))
    r = vouch("attest", "--key", str(priv), "--type", "cyclonedx", "--predicate", str(pred), hostile)
    assert r.returncode == 0, r.stderr
    client.close()
    kid = key_id(load_public_keys(pub.read_bytes())[0])
    yield {"refs": refs, "unsigned": unsigned, "stale": stale, "hostile": hostile, "pub": pub, "tmp": tmp,
           "kid": kid, "manifest": manifest_file(tmp, [*refs, unsigned, stale, hostile])}


def _report(rel: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    return vouch("report", "--key", str(rel["pub"]), "--cache-dir", str(rel["tmp"] / "cache"), *args)


class _Dom(HTMLParser):
    """Tags, attributes and the text of elements with a class, from Chromium's --dump-dom."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.text_by_class: dict[str, list[str]] = {}
        self.all_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag not in ("meta", "br", "link", "img", "input"):
            self.stack.append(" ".join(str(a.get("class") or "").split()))

    def handle_endtag(self, tag: str) -> None:
        if self.stack and tag not in ("meta", "br", "link", "img", "input"):
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.all_text.append(data)
        for cls in self.stack[-1:]:
            for c in cls.split():
                self.text_by_class.setdefault(c, []).append(data)


def _dom(chrome: str, page: Path, tmp: Path) -> str:
    r = subprocess.run([chrome, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        f"--user-data-dir={tmp / 'chrome-profile'}", "--dump-dom", page.as_uri()],
                       capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_report_json(release: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    r = _report(release, "--manifest", str(release["manifest"]), "--json", str(out), "pkg:deb/debian/libssl3",
                "--range", "vers:deb/<3.0.16")
    assert r.returncode == 1, r.stderr  # the unsigned and the stale image are not complete
    data = json.loads(out.read_text())
    assert data["release"] == "2026.04" and data["maxAgeDays"] == 90
    by = {(x["image"].rsplit("/", 1)[-1], x["platform"]): x for x in data["images"]}
    assert set(by) == {("cockpit", "linux/amd64"), ("cockpit", "linux/arm64"), ("notebook", ""), ("scheduler", ""),
                       ("api-gateway", ""), ("backup", ""), ("model-server", "")}
    for name in ("cockpit", "notebook", "scheduler"):
        for x in (v for k, v in by.items() if k[0] == name):
            assert x["signature"] == {"verified": True, "signer": release["kid"], "layout": "legacy",
                                      "signatures": 1}, x["signature"]
            assert x["sbom"]["verified"] and x["sbom"]["signer"] == release["kid"]
            assert 0 <= x["sbom"]["ageDays"] < 1 and x["sbom"]["daysLeft"] > 89
            assert x["sbom"]["serialNumber"].startswith("urn:uuid:") and x["digest"].startswith("sha256:")
    nb = by[("notebook", "")]["packages"]
    assert nb["total"] == sum(nb["byEcosystem"].values()) and nb["byEcosystem"]["deb"] > 0
    assert nb["byEcosystem"].get("pypi", 0) > 0
    assert sum(li["components"] for li in nb["licences"]) >= nb["total"]
    assert [m["name"] for m in by[("notebook", "")]["matches"]] == ["libssl3"]
    assert by[("scheduler", "")]["packages"]["byEcosystem"].get("apk", 0) > 0
    assert by[("scheduler", "")]["matches"] == []
    ug = by[("api-gateway", "")]
    assert not ug["signature"]["verified"] and "no signatures" in ug["signature"]["reason"]
    assert not ug["sbom"]["verified"] and "packages" not in ug
    st = by[("backup", "")]
    assert st["signature"]["verified"] and not st["sbom"]["verified"] and "old" in st["sbom"]["reason"]
    assert data["summary"] == {"images": 6, "platformImages": 7, "signed": 6, "sbomVerified": 5, "complete": 5,
                               "registryFaults": False, "packages": data["summary"]["packages"], "matches": 3}
    # -o json prints the same data
    r2 = _report(release, "-o", "json", "--manifest", str(release["manifest"]))
    assert r2.returncode == 1
    assert [x["digest"] for x in json.loads(r2.stdout)["images"]] == [x["digest"] for x in data["images"]]
    assert "5 of 7 platform image(s) signed with a fresh verified SBOM" in r2.stderr


def test_report_html_in_chromium(release: dict[str, Any], tmp_path: Path) -> None:
    chrome = chromium()
    page, js = tmp_path / "report.html", tmp_path / "report.json"
    r = _report(release, "--manifest", str(release["manifest"]), "--html", str(page), "--json", str(js),
                "pkg:deb/debian/openssl", "--range", "vers:deb/<3.0.16")
    assert r.returncode == 1, r.stderr
    data = json.loads(js.read_text())
    raw = page.read_text()
    # self-contained: no src/href at all (so none to http: or //), no script element, the CSP forbids both
    parsed = _Dom()
    parsed.feed(raw)
    for tag, attrs in parsed.tags:
        assert not {"src", "href", "srcset", "action", "background"} & set(attrs), (tag, attrs)
        assert not any(v and ("http" in v.lower() or "//" in v) for v in attrs.values()), (tag, attrs)
    assert "<script" not in raw.lower()
    csp = [a.get("content") for t, a in parsed.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and str(csp[0]).startswith("default-src 'none'; style-src 'unsafe-inline'")
    assert HOSTILE_LICENCE not in raw and "&lt;script&gt;alert(&quot;licence&quot;)&lt;/script&gt;" in raw

    dom = _Dom()
    dom.feed(_dom(chrome, page, tmp_path))
    tags = [t for t, _ in dom.tags]
    assert "script" not in tags and "img" not in tags and "link" not in tags and "iframe" not in tags
    for tag, attrs in dom.tags:
        assert not {"src", "href", "srcset", "action", "background"} & set(attrs), (tag, attrs)
        assert not any(v and ("http" in v.lower() or "//" in v) for v in attrs.values()), (tag, attrs)
    text = "".join(dom.all_text)
    for x in data["images"]:
        assert x["image"] in dom.text_by_class["image"]
        assert x["digest"][:19] + "…" in dom.text_by_class["digest-short"]
        assert (x["digest"] in dom.text_by_class["digest"]) == ("packages" in x)  # the details of verified SBOMs
    assert dom.text_by_class["signer"].count(release["kid"]) == 6  # every signed platform image
    assert HOSTILE_LICENCE in dom.text_by_class["licence"]  # shown as text, not run
    assert any(HOSTILE_TYPE in t for t in dom.all_text)
    ages = [t for t in dom.text_by_class["age"]]
    assert len(ages) == 5 and all(re.fullmatch(r"0\.\d days old", a) for a in ages), ages
    assert "limit 90 days" in text and "not signed" in text and "not verified" in text
    counts = [int(c) for c in dom.text_by_class["count"] if c.strip().isdigit()]
    assert sorted(counts) == sorted(x["packages"]["total"] for x in data["images"] if "packages" in x)
    assert "2026.04" in text and "libssl3" in text and "source openssl" in text
    n = dom.text_by_class["n"]
    assert n[:5] == ["6", "7", "6/7", "5/7", str(data["summary"]["packages"])]

    out_dir = tmp_path / "test-output"
    out_dir.mkdir()
    shot = out_dir / "report.png"
    s = subprocess.run([chrome, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--hide-scrollbars", f"--user-data-dir={tmp_path / 'chrome-profile'}",
                        f"--screenshot={shot}", "--window-size=1400,2000", page.as_uri()],
                       capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert s.returncode == 0, s.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"\nscreenshot of the release report: {shot}")


def test_report_escapes_everything() -> None:
    """Rendering alone: a hostile value in every field the page shows ends up as text."""
    bad = '"><script>x()</script><a href="//e">'
    report = {"release": bad, "generated": bad, "generator": bad, "trust": bad, "maxAgeDays": 90,
              "query": [{"purl": bad, "ranges": [bad], "label": bad}],
              "summary": {"images": 1, "platformImages": 1, "signed": 1, "sbomVerified": 1, "packages": 1,
                          "matches": 1},
              "images": [{"image": bad, "ref": bad, "digest": bad, "platform": bad,
                          "signature": {"verified": True, "signer": bad, "layout": bad,
                                        "identity": {"subject": bad, "issuer": bad}},
                          "sbom": {"verified": True, "ageDays": 3.0, "maxAgeDays": 90.0, "daysLeft": 87.0,
                                   "serialNumber": bad, "timestamp": bad, "signer": bad},
                          "packages": {"total": 1, "byEcosystem": {bad: 1}, "licences": [{"licence": bad,
                                                                                           "components": 1}]},
                          "matches": [{"purl": bad, "version": bad, "via": bad, "where": [bad], "affected": True}]}]}
    page = render(report)
    parsed = _Dom()
    parsed.feed(page)
    assert {t for t, _ in parsed.tags} <= {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2",
                                           "h3", "div", "span", "main", "ul", "li", "code", "table", "tr", "th",
                                           "td", "section", "p", "b", "details", "summary", "footer"}
    assert all("href" not in a for _, a in parsed.tags) and "<script" not in page and "<a " not in page
    assert page.count("&lt;script&gt;") >= 15


def test_report_bad_input(release: dict[str, Any], tmp_path: Path) -> None:
    refs = release["refs"]
    cases = [(["--range", "vers:deb/<1"], "needs a package URL"),
             (["pkg:deb/debian/a", "pkg:deb/debian/b"], "give one package URL"),
             (["--html", str(tmp_path / "missing" / "r.html")], "does not exist"),
             (["--manifest", str(tmp_path / "nope.yaml")], "cannot read release manifest")]
    for args, message in cases:
        r = _report(release, *(refs[:1] if "--manifest" not in args else []), *args)
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], r.stderr
    r = vouch("report", refs[0])
    assert r.returncode == 2 and "give --key" in r.stderr
    # a registry that is not there: the report is still written, exit 3
    page = tmp_path / "r.html"
    r = _report(release, "127.0.0.1:1/none/img:1", "--html", str(page))
    assert r.returncode == 3, r.stderr
    assert "not signed" in page.read_text()
