"""The shortcuts the layer walk takes for every entry give the answers of the slow paths they skip:
a cataloger's `claim_hint` holds for every path it claims (so a path outside all hints is rightly offered to
none), and clean_path's fast return is what posixpath.normpath gives (Hypothesis, over paths built from
the names catalogers look for)."""

from __future__ import annotations

import posixpath
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vouch.sbom.distro import DistroFiles
from vouch.sbom.fsview import ViewOptions, _Claimers, clean_path
from vouch.sbom.generate import default_catalogers


def all_claimers() -> list[object]:
    return [DistroFiles(), *default_catalogers()]  # as generate_sbom hands them to the layer walk


SEGMENTS = ["var", "lib", "dpkg", "status", "status.d", "info", "x.md5sums", "x.conffiles", "usr", "share", "doc",
            "copyright", "rpm", "rpmdb.sqlite", "Packages", "Packages.db", "sysimage", "apk", "db", "installed",
            "etc", "os-release", "debian_version", "alpine-release", "app.deps.json", "release", "node_modules",
            "package.json", "composer", "installed.json", "site-packages", "a-1.0.dist-info", "METADATA", "RECORD",
            "b.egg-info", "PKG-INFO", "installed-files.txt", "specifications", "default", "rack-3.0.gemspec",
            "bin", "python3", ".", "..", "", ".wh.x", "a b", "é"]
paths = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=7).map("/".join)
CLAIMERS: list[Any] = [c for c in all_claimers() if not hasattr(c, "reduce_file")]


def test_every_path_claimer_declares_a_hint() -> None:
    cl = _Claimers.split(all_claimers(), ViewOptions())
    assert cl.prefixes is not None and all(hasattr(c, "claim_hint") for c in CLAIMERS)


@settings(max_examples=3000, deadline=None)
@given(paths)
def test_a_claimed_path_is_within_the_claimers_hint(path: str) -> None:
    cl = _Claimers.split(all_claimers(), ViewOptions())
    for c in CLAIMERS:
        if c.claims(path):
            prefixes, suffixes = c.claim_hint
            assert path.startswith(prefixes) or path.endswith(suffixes), (c.name, path)
            assert cl.may_claim(path)


def test_paths_each_cataloger_claims_pass_the_gate() -> None:
    cl = _Claimers.split(all_claimers(), ViewOptions())
    for path in ("var/lib/dpkg/status", "var/lib/dpkg/status.d/base", "usr/share/doc/bash/copyright",
                 "var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/Packages", "lib/apk/db/installed",
                 "etc/os-release", "app/x.deps.json", "opt/java/release", "app/node_modules/a/package.json",
                 "vendor/composer/installed.json", "usr/lib/python3/dist-packages/a-1.0.dist-info/METADATA",
                 "usr/lib/ruby/gems/3.1.0/specifications/rack-3.0.gemspec"):
        assert any(c.claims(path) for c in CLAIMERS), path
        assert cl.may_claim(path), path
    assert not cl.may_claim("usr/bin/python3") and not cl.may_claim("usr/lib/x86_64-linux-gnu/libc.so.6")


@settings(max_examples=5000, deadline=None)
@given(st.one_of(paths, st.text(alphabet="ab./ \\é", max_size=20)))
def test_clean_path_fast_return_is_what_normpath_gives(name: str) -> None:
    assert clean_path(name) == posixpath.normpath("/" + name).lstrip("/")
