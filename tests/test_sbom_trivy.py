"""vouch vs the real trivy (v0.74.0, `trivy image --input LAYOUT`, offline: tests/support/trivy.py) on the same
OCI layouts: Debian minbase, and the mixed image of real artefacts (Debian, pip, npm, Go, Rust, Maven jars and a
fat jar, classified binaries, a gem). Every package trivy reports, vouch reports: the same purl identity, or one
that differs only in one of trivy's spellings below, each asserted precisely.

Where the two write a package differently (both name the same package; which is right, and why):
- Go module paths: trivy lowercases them (pkg:golang/github.com/burntsushi/toml), as the purl spec's golang
  definition says (a definition that, by its own note, predates Go modules). vouch keeps the module path as Go
  spells it (github.com/BurntSushi/toml), as syft and the Go vulnerability database do: module paths are
  case-sensitive, and only that spelling resolves at the Go module proxy.
- Go versions: trivy drops the `v` of a main module's version (probe@1.4.2) and adds one to the toolchain's
  (stdlib@v1.26.8); vouch writes what the build info records, a module version with its `v` (v1.4.2) and the Go
  release without (stdlib@1.26.8), as syft does. A main module built outside version control has the version
  `(devel)` in its build info: trivy drops it (pkg:golang/github.com/kyverno/kyverno, in the benchmark's
  mixed image), vouch writes it, as syft does (`go version -m` shows it).
- Debian epochs: trivy moves the epoch into an `epoch=1` qualifier; vouch keeps the full Debian version
  (1:2.38.1-5+deb12u3) as the version, as syft does and as dpkg compares versions.
- Debian `distro` qualifier: trivy writes the point release from /etc/debian_version (debian-12.15), vouch the
  os-release VERSION_ID (debian-12), as syft does. Qualifiers are not the identity; asserted anyway.
What vouch finds and trivy does not (not asserted here: recall is the question): binaries identified by content
(busybox, node, python), the JVM of a release file, jars nested in the fat jar without a pom.properties (trivy
needs its Java DB, a download, to name them), and an ELF package note.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from packageurl import PackageURL

from tests.support.peers import peer, run_peer
from tests.support.testdata import debian_minbase_image, mixed_image
from tests.support.trivy import image_args, java_db
from vouch.oci.source import LayoutSource
from vouch.sbom.generate import generate_sbom

Key = tuple[str, str, str]  # purl type, namespace/name, version


def _key(p: PackageURL) -> Key:
    return p.type, (f"{p.namespace}/" if p.namespace else "") + p.name, p.version or ""


def trivy_components(layout: Path, tmp: Path) -> list[PackageURL]:
    cache, out = tmp / "trivy-cache", tmp / "trivy.cdx.json"
    java_db(cache)
    run_peer(peer("trivy-real"), *image_args(layout, cache, out), home=tmp, timeout=900)
    found: list[PackageURL] = []

    def walk(components: list[dict[str, object]]) -> None:
        for c in components:
            if isinstance(c.get("purl"), str):
                found.append(PackageURL.from_string(str(c["purl"])))
            walk(c.get("components") or [])  # type: ignore[arg-type]

    walk(json.loads(out.read_text()).get("components") or [])
    return found


def match(theirs: list[PackageURL], ours: list[PackageURL]) -> tuple[Counter[str], list[str]]:
    """How each of trivy's packages maps onto one of vouch's: (counts per kind of difference, unmatched)."""
    exact = {_key(p): p for p in ours}
    go_folded = {(n.lower(), v.removeprefix("v")): p for (t, n, v), p in exact.items() if t == "golang"}
    kinds: Counter[str] = Counter()
    missing = []
    for p in theirs:
        t, name, version = _key(p)
        if p.type == "deb" and p.qualifiers.get("epoch"):
            version = f"{p.qualifiers['epoch']}:{version}"
            kinds["deb epoch qualifier"] += 1
        mine = exact.get((t, name, version))
        if mine is None and t == "golang" and not version:  # a main module built outside version control
            mine = go_folded.get((name, "(devel)"))
            if mine is not None:
                kinds["go (devel) dropped"] += 1
                continue
        if mine is None and t == "golang":
            mine = go_folded.get((name, version.removeprefix("v")))
            if mine is not None:
                m_name = _key(mine)[1]
                assert m_name.lower() == name  # trivy's name is vouch's, lowercased: nothing else differs
                if m_name != name:
                    kinds["go path lowercased"] += 1
                if (mine.version or "") != version:
                    assert (mine.version or "").removeprefix("v") == version.removeprefix("v")
                    kinds["go version v"] += 1
        if mine is None:
            missing.append(p.to_string())
            continue
        if t == "deb":
            ours_distro, their_distro = mine.qualifiers.get("distro", ""), p.qualifiers.get("distro", "")
            assert their_distro == ours_distro or their_distro.startswith(ours_distro + "."), (p, mine)
            if their_distro != ours_distro:
                kinds["deb distro point release"] += 1
    return kinds, missing


def test_recall_vs_trivy_image_debian(tmp_path: Path) -> None:
    layout = debian_minbase_image()
    theirs = trivy_components(layout, tmp_path)
    assert len(theirs) >= 80 and {p.type for p in theirs} == {"deb"}  # it really scanned the dpkg database
    ours = [PackageURL.from_string(p.purl) for p in generate_sbom(LayoutSource(layout, None)).packages]
    kinds, missing = match(theirs, ours)
    assert missing == []
    assert kinds["deb epoch qualifier"] >= 5 and kinds["deb distro point release"] == len(theirs)


def test_recall_vs_trivy_image_mixed(tmp_path: Path) -> None:
    layout = mixed_image()
    theirs = trivy_components(layout, tmp_path)
    types = Counter(p.type for p in theirs)
    assert {"deb", "golang", "npm", "pypi", "maven", "cargo", "gem"} <= set(types) and types["golang"] > 200
    ours = [PackageURL.from_string(p.purl) for p in generate_sbom(LayoutSource(layout, None)).packages]
    kinds, missing = match(theirs, ours)
    assert missing == []
    # the explained differences are really there (and only those: anything else is in `missing`)
    assert kinds["go path lowercased"] >= 10 and kinds["go version v"] >= 2 and kinds["deb epoch qualifier"] >= 5
    assert len(ours) > len({_key(p) for p in theirs})
