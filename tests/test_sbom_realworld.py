"""Issue 16 §1: the language catalogers on artefacts in the shapes the wider ecosystem ships, each made
here with its real tool (maven-shade-plugin, the JDK's `jar`, Go 1.17.13 and this machine's Go
cross-compiling for Windows and macOS, `cargo auditable` for Windows and WebAssembly), plus
package-database records that dpkg itself refuses. Every case is compared with real syft
(`syft scan dir:` on the same files); where the two differ, the test asserts vouch's answer and
says which is right and why."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from tests.support import realworld
from tests.support.peers import peer
from tests.support.testdata import rust_binary
from vouch.oci.build import Image, Layer, TarEntry, write_layout
from vouch.oci.source import LayoutSource
from vouch.sbom.generate import SbomResult, generate_sbom

Files = dict[str, bytes | TarEntry]


def _exe(path: Path) -> TarEntry:
    return TarEntry(data=path.read_bytes(), mode=0o755)


def _vouch(tmp_path: Path, files: Files) -> SbomResult:
    write_layout(tmp_path / "img", Image([Layer.from_files(dict(files), compress=False)]))
    result = generate_sbom(LayoutSource(tmp_path / "img", None), timestamp="2026-04-25T10:00:00Z")
    purls = [p.purl for p in result.packages]
    assert len(purls) == len(set(purls)), "a component is listed twice"
    return result


def _syft(tmp_path: Path, files: Files) -> set[str]:
    """The purls real syft finds in the same files laid out as a directory (`syft scan dir:`)."""
    root = tmp_path / "rootfs"
    for rel, item in files.items():
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(item.data if isinstance(item, TarEntry) else item)
        if isinstance(item, TarEntry):
            dest.chmod(item.mode)
    out = tmp_path / "syft.json"
    r = subprocess.run([str(peer("syft")), "scan", f"dir:{root}", "-o", f"syft-json={out}", "-q"],
                       capture_output=True, text=True, timeout=600,
                       env={"HOME": str(tmp_path), "SYFT_CHECK_FOR_APP_UPDATE": "false", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-2000:]
    return {a["purl"] for a in json.loads(out.read_text())["artifacts"] if a.get("purl")}


def _purls(result: SbomResult, ptype: str) -> set[str]:
    return {p.purl for p in result.packages if p.type == ptype}


# ---- Java -----------------------------------------------------------------------------------------

def test_shaded_jar_with_relocated_pom_properties(tmp_path: Path) -> None:
    """maven-shade-plugin bundled commons-lang3 and slf4j-api and its relocation moved their Maven
    descriptors to com/example/akko/shaded/META-INF/maven/: the bundled artefacts are still there and
    still named by their pom.properties. vouch and syft agree."""
    jar = realworld.maven_shaded_jar()
    import zipfile

    with zipfile.ZipFile(jar) as zf:
        names = zf.namelist()
    assert not any(n.startswith("META-INF/maven/") for n in names)  # the shape under test, made by shade
    assert "com/example/akko/shaded/META-INF/maven/org.slf4j/slf4j-api/pom.properties" in names
    files: Files = {"opt/akko/lib/akko-shaded-1.0.0.jar": jar.read_bytes()}
    result = _vouch(tmp_path, files)
    want = {"pkg:maven/com.example.akko/akko-shaded@1.0.0", "pkg:maven/org.apache.commons/commons-lang3@3.14.0",
            "pkg:maven/org.slf4j/slf4j-api@2.0.12"}
    assert _purls(result, "maven") == want
    assert {p for p in _syft(tmp_path, files) if p.startswith("pkg:maven/")} == want
    lang3 = next(p for p in result.packages if p.name == "commons-lang3")
    assert lang3.properties["vouch:java:evidence"] == "pom.properties"
    assert [loc.path for loc in lang3.locations] == ["/opt/akko/lib/akko-shaded-1.0.0.jar"]


def test_archives_named_by_their_manifest(tmp_path: Path) -> None:
    """Archives whose file names say nothing, built with `jar`: the OSGi bundle test.jar, codec.jar that
    names itself with Implementation-*, the Jenkins plugin gradle.hpi (no pom.properties, as the Gradle
    JPI plugin writes it) carrying the real jackson-core jar in WEB-INF/lib."""
    jars = realworld.manifest_jars()
    files: Files = {"opt/osgi/bundles/test.jar": (jars / "test.jar").read_bytes(),
                    "opt/akko/lib/codec.jar": (jars / "codec.jar").read_bytes(),
                    "var/jenkins_home/plugins/gradle.hpi": (jars / "gradle.hpi").read_bytes()}
    result = _vouch(tmp_path, files)
    maven = _purls(result, "maven")
    assert maven == {
        # Bundle-SymbolicName is the bundle's identity; the group is its prefix, as the SpringSource
        # bundle repository published these (org.springframework:org.springframework.core)
        "pkg:maven/org.springframework/org.springframework.core@3.2.18.RELEASE",
        "pkg:maven/com.example.akko/akko-codec@4.1.7",  # Implementation-Title + Implementation-Vendor-Id
        "pkg:maven/org.jenkins-ci.plugins/gradle@2.11",  # Short-Name, Group-Id, Plugin-Version
        "pkg:maven/com.fasterxml.jackson.core/jackson-core@2.17.0",  # nested in the plugin
    }
    syft = {p for p in _syft(tmp_path, files) if p.startswith("pkg:maven/")}
    same = maven & syft
    assert same == {"pkg:maven/org.jenkins-ci.plugins/gradle@2.11",
                    "pkg:maven/com.fasterxml.jackson.core/jackson-core@2.17.0"}
    # Where syft differs, vouch is right: syft takes the artefact id from the file name whenever it has one,
    # so the bundle becomes "test" (in a group taken from the same manifest it ignored for the name) and the
    # codec "codec" — names the deployment gave the files, which no advisory or repository knows.
    assert syft - same == {"pkg:maven/org.springframework.core/test@3.2.18.RELEASE",
                           "pkg:maven/com.example.akko/codec@4.1.7"}
    bundle = next(p for p in result.packages if p.name == "org.springframework.core")
    assert bundle.properties["vouch:java:evidence"] == "manifest"


def test_versioned_file_name_still_wins_over_manifest_titles() -> None:
    """The sibling the manifest rule must not break: `artifact-version.jar` is the Maven repository's own
    layout, and beats a manifest title ("Apache Commons Lang" is not an artifact id)."""
    from vouch.sbom.catalogers.java import identify

    manifest = {"Implementation-Title": "Apache Commons Lang", "Bundle-SymbolicName": "org.apache.commons.lang3",
                "Implementation-Version": "3.14.0"}
    (pkg,) = identify("opt/lib/commons-lang3-3.14.0.jar", manifest, [])
    assert (pkg.group, pkg.artifact, pkg.version) == ("commons-lang3", "commons-lang3", "3.14.0")
    # the symbolic name gives the group when it ends with the file's artifact id
    (pkg,) = identify("opt/lib/jackson-databind-2.17.0.jar",
                      {"Bundle-SymbolicName": "com.fasterxml.jackson.core.jackson-databind",
                       "Bundle-Version": "2.17.0"}, [])
    assert (pkg.group, pkg.artifact) == ("com.fasterxml.jackson.core", "jackson-databind")
    # one descriptor in an archive renamed on deployment: it names the archive, not a second package
    (pkg,) = identify("app/app.jar", {}, [{"groupId": "com.example", "artifactId": "api", "version": "2.0",
                                           "_dir": "META-INF/maven/com.example/api"}])
    assert (pkg.artifact, pkg.main) == ("api", True)
    # an unfilled template is no package
    from vouch.sbom.catalogers.java import _template

    assert _template({"artifactId": "x", "version": "${project.version}"})


# ---- .NET -----------------------------------------------------------------------------------------

# A self-contained linux-x64 ASP.NET Core app's deps.json in the format the SDK writes (the host's
# deps.json schema: runtimeTarget, targets per framework and per RID, libraries by "Name/Version"), with
# what real apps carry: the runtime packs, a project reference, a meta-package whose dependency has the
# runtime assets, a compile-only reference (PreserveCompilationContext), a build-only package (Source Link).
def _dlls(*names: str, version: str = "8.0.0.0", file_version: str = "8.0.424.16909") -> dict[str, object]:
    return {n: {"assemblyVersion": version, "fileVersion": file_version} for n in names}


def _nupkg(key: str) -> dict[str, object]:
    """A `libraries` entry of type package. The sha512 here is of the key, not of the real .nupkg: nothing
    but the BOM's vouch:nuget:sha512 property reads it."""
    name, version = key.split("/")
    digest = base64.b64encode(hashlib.sha512(key.encode()).digest()).decode()
    return {"type": "package", "serviceable": True, "sha512": f"sha512-{digest}", "path": key.lower(),
            "hashPath": f"{name.lower()}.{version}.nupkg.sha512"}


NETCORE = "runtimepack.Microsoft.NETCore.App.Runtime.linux-x64/8.0.4"
ASPNET = "runtimepack.Microsoft.AspNetCore.App.Runtime.linux-x64/8.0.4"
DEPS = {
    "runtimeTarget": {"name": ".NETCoreApp,Version=v8.0/linux-x64", "signature": ""},
    "compilationOptions": {},
    "targets": {
        ".NETCoreApp,Version=v8.0": {},
        ".NETCoreApp,Version=v8.0/linux-x64": {
            "Akko.Api/1.0.0": {
                "dependencies": {"Akko.Core": "1.0.0", "Newtonsoft.Json": "13.0.3", "NETStandard.Library": "1.6.1",
                                 "Microsoft.SourceLink.GitHub": "8.0.0",
                                 "Microsoft.Extensions.Logging.Abstractions": "8.0.1"},
                "runtime": {"Akko.Api.dll": {}}},
            NETCORE: {"runtime": _dlls("System.Private.CoreLib.dll", "System.Text.Json.dll"),
                      "native": {"libSystem.Native.so": {"fileVersion": "0.0.0.0"},
                                 "libcoreclr.so": {"fileVersion": "0.0.0.0"}}},
            ASPNET: {"runtime": _dlls("Microsoft.AspNetCore.dll")},
            "Newtonsoft.Json/13.0.3": {
                "runtime": _dlls("lib/net6.0/Newtonsoft.Json.dll", version="13.0.0.0", file_version="13.0.3.27908")},
            "NETStandard.Library/1.6.1": {"dependencies": {"System.Buffers": "4.5.1"}},
            "System.Buffers/4.5.1": {
                "runtime": _dlls("lib/netstandard2.0/System.Buffers.dll", version="4.0.3.0",
                                 file_version="4.6.28619.1")},
            "Microsoft.SourceLink.GitHub/8.0.0": {"dependencies": {"Microsoft.Build.Tasks.Git": "8.0.0"}},
            "Microsoft.Build.Tasks.Git/8.0.0": {},
            "Microsoft.Extensions.Logging.Abstractions/8.0.1": {
                "compile": {"lib/net8.0/Microsoft.Extensions.Logging.Abstractions.dll": {}}, "compileOnly": True},
            "Microsoft.AspNetCore.Antiforgery.Reference/8.0.0.0": {
                "compile": {"Microsoft.AspNetCore.Antiforgery.dll": {}}, "compileOnly": True},
            "Akko.Core/1.0.0": {"runtime": _dlls("Akko.Core.dll", version="1.0.0.0", file_version="1.0.0.0")},
        },
    },
    "libraries": {
        "Akko.Api/1.0.0": {"type": "project", "serviceable": False, "sha512": ""},
        NETCORE: {"type": "runtimepack", "serviceable": False, "sha512": ""},
        ASPNET: {"type": "runtimepack", "serviceable": False, "sha512": ""},
        **{k: _nupkg(k) for k in ("Newtonsoft.Json/13.0.3", "NETStandard.Library/1.6.1", "System.Buffers/4.5.1",
                                  "Microsoft.SourceLink.GitHub/8.0.0", "Microsoft.Build.Tasks.Git/8.0.0",
                                  "Microsoft.Extensions.Logging.Abstractions/8.0.1")},
        "Microsoft.AspNetCore.Antiforgery.Reference/8.0.0.0": {"type": "referenceassembly", "serviceable": False,
                                                               "sha512": ""},
        "Akko.Core/1.0.0": {"type": "project", "serviceable": False, "sha512": ""},
    },
}


def test_dotnet_deps_json_runtime_packs_and_compile_only(tmp_path: Path) -> None:
    files: Files = {"app/Akko.Api.deps.json": json.dumps(DEPS, indent=2).encode()}
    result = _vouch(tmp_path, files)
    nuget = {p.purl: p for p in result.packages if p.type == "nuget"}
    assert set(nuget) == {
        "pkg:nuget/Akko.Api@1.0.0", "pkg:nuget/Akko.Core@1.0.0", "pkg:nuget/Newtonsoft.Json@13.0.3",
        "pkg:nuget/NETStandard.Library@1.6.1", "pkg:nuget/System.Buffers@4.5.1",  # a meta-package and what it brings
        # the bundled runtime, under the NuGet ids the runtime packs are published and advised as
        "pkg:nuget/Microsoft.NETCore.App.Runtime.linux-x64@8.0.4",
        "pkg:nuget/Microsoft.AspNetCore.App.Runtime.linux-x64@8.0.4",
    }  # not: Source Link and its task (build-only), the compile-only Logging.Abstractions, the reference assembly
    runtime = nuget["pkg:nuget/Microsoft.NETCore.App.Runtime.linux-x64@8.0.4"]
    assert runtime.cpes == ["cpe:2.3:a:microsoft:.net:8.0.4:*:*:*:*:*:*:*"]
    assert runtime.properties["vouch:nuget:library-type"] == "runtimepack"
    assert nuget["pkg:nuget/Microsoft.AspNetCore.App.Runtime.linux-x64@8.0.4"].cpes == [
        "cpe:2.3:a:microsoft:asp.net_core:8.0.4:*:*:*:*:*:*:*"]
    assert nuget["pkg:nuget/Akko.Api@1.0.0"].component_type == "application"

    syft = {p for p in _syft(tmp_path, files) if p.startswith("pkg:nuget/")}
    same = set(nuget) & syft
    assert same == set(nuget) - {"pkg:nuget/Akko.Core@1.0.0",
                                 "pkg:nuget/Microsoft.NETCore.App.Runtime.linux-x64@8.0.4",
                                 "pkg:nuget/Microsoft.AspNetCore.App.Runtime.linux-x64@8.0.4"}
    # Where syft differs:
    # - it keeps the SDK's label `runtimepack.` in the runtime packs' names; no NuGet package has that id, the
    #   packs are published (and named in advisories) as Microsoft.NETCore.App.Runtime.<rid>: vouch's purl matches;
    # - it leaves out project references other than the app (Akko.Core): they are code the app runs, shipped
    #   beside it, so vouch lists them;
    # - it lists Microsoft.Extensions.Logging.Abstractions, which the targets mark compileOnly (a compile
    #   asset only): the published app does not carry or load it, so vouch leaves it out.
    assert syft - same == {"pkg:nuget/runtimepack.Microsoft.NETCore.App.Runtime.linux-x64@8.0.4",
                           "pkg:nuget/runtimepack.Microsoft.AspNetCore.App.Runtime.linux-x64@8.0.4",
                           "pkg:nuget/Microsoft.Extensions.Logging.Abstractions@8.0.1"}


# ---- Python ---------------------------------------------------------------------------------------

def test_python_metadata_values_trimmed(tmp_path: Path) -> None:
    """Header values with spaces around them, as hand-written and old setuptools PKG-INFO files have."""
    site = "usr/lib/python3/dist-packages"
    files: Files = {
        f"{site}/simple-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: simple \nVersion: 1.0 \n"
                                                 b"License-Expression:  MIT \nSummary: a  \n\n",
        f"{site}/simple-1.0.dist-info/RECORD": b"simple/__init__.py,,\n",
        f"{site}/simple/__init__.py": b"",
        f"{site}/Legacy_Thing.egg-info/PKG-INFO": b"Metadata-Version: 1.1\nName:\tLegacy_Thing\t\nVersion: 0.9\t\n"
                                                  b"License: BSD \n",
    }
    result = _vouch(tmp_path, files)
    pypi = {p.purl: p for p in result.packages if p.type == "pypi"}
    assert set(pypi) == {"pkg:pypi/simple@1.0", "pkg:pypi/legacy-thing@0.9"}
    assert (pypi["pkg:pypi/simple@1.0"].name, pypi["pkg:pypi/simple@1.0"].licenses) == ("simple", ["MIT"])
    assert {p for p in _syft(tmp_path, files) if p.startswith("pkg:pypi/")} == set(pypi)  # syft trims too


# ---- dpkg / apk -----------------------------------------------------------------------------------

BAD_DEB_VERSIONS = {"bad-char": "1:5.#", "bad-epoch": "a:1.0", "no-upstream": "1:", "bad-revision": "1.0-a_b",
                    "no-digit": "abc"}


def _paragraph(name: str, version: str | None) -> str:
    v = f"Version: {version}\n" if version is not None else ""
    return (f"Package: {name}\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\n{v}"
            "Maintainer: Akko <ci@akko.invalid>\nDescription: test\n\n")


def test_dpkg_refuses_what_dpkg_refuses(tmp_path: Path) -> None:
    status = _paragraph("good", "1:2.3-4+deb12u1") + _paragraph("noversion", None) + "".join(
        _paragraph(n, v) for n, v in BAD_DEB_VERSIONS.items())
    files: Files = {"var/lib/dpkg/status": status.encode(), "etc/os-release": b'ID=debian\nVERSION_ID="12"\n'}
    result = _vouch(tmp_path, files)
    assert _purls(result, "deb") == {"pkg:deb/debian/good@1:2.3-4%2Bdeb12u1?arch=amd64&distro=debian-12"}
    warned = [w for w in result.warnings if w.startswith("dpkg:")]
    assert len(warned) == 1 + len(BAD_DEB_VERSIONS)
    # the reasons are dpkg's own: real dpkg-deb refuses each version with the same words
    for name, version in BAD_DEB_VERSIONS.items():
        pkg = tmp_path / f"deb-{name}"
        (pkg / "DEBIAN").mkdir(parents=True)
        (pkg / "DEBIAN" / "control").write_text(_paragraph(name, version).replace("Status: install ok installed\n",
                                                                                  ""))
        r = subprocess.run(["dpkg-deb", "--build", str(pkg), str(tmp_path / f"{name}.deb")], capture_output=True,
                           text=True)
        assert r.returncode != 0
        reason = r.stderr.strip().rsplit(": ", 1)[-1]
        assert any(f"package {name!r}" in w and reason in w for w in warned), (name, reason, warned)
    # and real dpkg-query refuses a database whose installed package has no version at all
    admin = tmp_path / "admin"
    (admin / "updates").mkdir(parents=True)
    (admin / "status").write_text(_paragraph("noversion", None))
    r = subprocess.run(["dpkg-query", f"--admindir={admin}", "-W"], capture_output=True, text=True)
    assert r.returncode != 0 and "missing 'Version' field" in r.stderr
    assert any("'noversion'" in w and "missing 'Version' field" in w for w in warned)
    # syft lists every one of them; a component whose version no comparison can order matches no advisory
    # correctly, and dpkg itself would not install it, so vouch refuses them (and says so) instead
    syft = {p for p in _syft(tmp_path, files) if p.startswith("pkg:deb/")}
    assert {p.split("@")[0] for p in syft} >= {f"pkg:deb/debian/{n}" for n in BAD_DEB_VERSIONS}


def test_apk_refuses_missing_and_invalid_versions(tmp_path: Path) -> None:
    """apk-tools' own grammar (no apk binary exists on this Debian machine, so the rule is checked against the
    grammar's documented cases and Alpine's real version shapes, not a run of apk)."""
    from vouch.sbom.catalogers.apk import version_valid

    for good in ("1.36.1-r28", "3.0.13-r0", "2.12.1_git20230101-r0", "1.0_rc1_p2-r1", "1.2a3.4", "1.0~abc123-r1"):
        assert version_valid(good), good
    for bad in ("", "1:5.#", "1.2ab", "0.9.8zh", "1.0-r", "v1.0", "1.0_foo", "1.0-1"):  # one letter only
        assert not version_valid(bad), bad
    db = ("P:good\nV:1.36.1-r28\nA:x86_64\nL:GPL-2.0-only\n\n"
          "P:noversion\nA:x86_64\n\n"
          "P:badversion\nV:1:5.#\nA:x86_64\n\n")
    files: Files = {"lib/apk/db/installed": db.encode(), "etc/os-release": b"ID=alpine\nVERSION_ID=3.20.3\n"}
    result = _vouch(tmp_path, files)
    assert _purls(result, "apk") == {"pkg:apk/alpine/good@1.36.1-r28?arch=x86_64&distro=alpine-3.20.3"}
    assert sorted(w for w in result.warnings if w.startswith("apk:")) == [
        "apk: /lib/apk/db/installed: package 'badversion' has invalid version '1:5.#'; not listed",
        "apk: /lib/apk/db/installed: package 'noversion' has no version (V:); not listed"]
    # syft lists badversion; vouch refuses it (and says so) for the reason given above for dpkg
    syft = {p for p in _syft(tmp_path, files) if p.startswith("pkg:apk/")}
    assert any(p.startswith("pkg:apk/alpine/badversion@") for p in syft)


# ---- Go and Rust in every executable format --------------------------------------------------------

def _go_version_m(binary: Path) -> set[tuple[str, str]]:
    """(module, version) pairs that `go version -m` reads from any format, stdlib included."""
    out = subprocess.run(["go", "version", "-m", str(binary)], capture_output=True, text=True, check=True).stdout
    pairs = {("stdlib", out.splitlines()[0].split(": ", 1)[1].strip())}
    last: tuple[str, str] | None = None
    for line in out.splitlines()[1:]:
        parts = line.strip().split("\t")
        if parts[0] in ("mod", "dep"):
            last = (parts[1], parts[2])
            pairs.add(last)
        elif parts[0] == "=>" and last is not None:  # the replacement is what was built
            pairs.discard(last)
            pairs.add((parts[1], parts[2]))
    return pairs


def test_go_build_info_in_pe_and_macho_before_and_after_go_1_18(tmp_path: Path) -> None:
    legacy = realworld.go117_binaries()
    darwin = realworld.go_darwin_binary()
    files: Files = {"bin/legacy": _exe(legacy / "legacy"), "Files/legacy.exe": _exe(legacy / "legacy.exe"),
                    "opt/mac/legacy": _exe(legacy / "legacy-darwin"), "opt/mac/probe": _exe(darwin)}
    result = _vouch(tmp_path, files)
    assert not [w for w in result.warnings if "not read" in w]
    by_file: dict[str, set[tuple[str, str]]] = {}
    for p in result.packages:
        for loc in p.locations:
            by_file.setdefault(loc.path, set()).add((p.name, p.version))
    for rel, path in (("bin/legacy", legacy / "legacy"), ("Files/legacy.exe", legacy / "legacy.exe"),
                      ("opt/mac/legacy", legacy / "legacy-darwin"), ("opt/mac/probe", darwin)):
        assert by_file["/" + rel] == _go_version_m(path), rel
    assert ("stdlib", "go1.17.13") in by_file["/Files/legacy.exe"]  # the pre-1.18 layout, in a PE file
    syft = {p for p in _syft(tmp_path, files) if p.startswith("pkg:golang/")}
    ours = _purls(result, "golang")
    # syft writes a (devel) main module without a version; otherwise the same purls
    assert {p.split("@")[0] if "%28devel%29" in p else p for p in ours} == syft


def test_cargo_auditable_in_pe_and_wasm(tmp_path: Path) -> None:
    exe, wasm = realworld.rust_windows_binary(), realworld.rust_wasm_binary()
    files: Files = {"Files/akko-probe.exe": exe.read_bytes(), "srv/akko-probe.wasm": wasm.read_bytes()}
    result = _vouch(tmp_path, files)
    crates = {(p.name, p.version, p.component_type, tuple(sorted(loc.path for loc in p.locations)))
              for p in result.packages if p.type == "cargo"}
    where = ("/Files/akko-probe.exe", "/srv/akko-probe.wasm")
    assert crates == {("akko-probe", "0.3.1", "application", where), ("itoa", "1.0.11", "library", where),
                      ("semver", "1.0.23", "library", where), ("smallvec", "1.13.2", "library", where)}
    # the Linux build of the same program lists the same crates: the format changes nothing
    linux = _vouch(tmp_path / "linux", {"bin/akko-probe": _exe(rust_binary() / "akko-probe")})
    assert _purls(linux, "cargo") == _purls(result, "cargo")
    syft = {p for p in _syft(tmp_path, files) if p.startswith("pkg:cargo/")}
    assert syft == _purls(result, "cargo")


def test_unread_executable_format_is_named(tmp_path: Path) -> None:
    """Go also builds for AIX (XCOFF). vouch does not read that format; it says so for the file, rather
    than passing over it silently. syft does not read it either, and says nothing: vouch's warning is the
    better answer until a reader exists (Go's own debug/buildinfo has one; no container runs AIX)."""
    aix = realworld.go_aix_binary()
    files: Files = {"usr/local/bin/probe": _exe(aix)}
    result = _vouch(tmp_path, files)
    assert _purls(result, "golang") == set()
    assert result.warnings == ["/usr/local/bin/probe: an XCOFF (AIX) executable; Go build info in that format is "
                               "not read"]
    assert not any(p.startswith("pkg:golang/") for p in _syft(tmp_path, files))


@pytest.mark.parametrize("name", ["wasm", "macho"])
def test_truncated_formats_are_one_line_warnings(tmp_path: Path, name: str) -> None:
    """A hostile or cut-off Mach-O or WebAssembly file: a warning naming the file, never a traceback."""
    src = realworld.go_darwin_binary() if name == "macho" else realworld.rust_wasm_binary()
    data = src.read_bytes()
    cut = bytearray(data[:4096] if name == "macho" else data[:64])
    if name == "wasm":
        cut[8:14] = b"\x00\xff\xff\xff\xff\x0f"  # a custom section claiming 4 GiB
    result = _vouch(tmp_path, {"bin/x": TarEntry(data=bytes(cut), mode=0o755)})
    assert result.packages == [] or all(p.type != "golang" for p in result.packages)
    assert len([w for w in result.warnings if "could not parse bin/x" in w]) == 1, result.warnings
