"""Language catalogers on real artefacts built or fetched here: wheels installed by pip, a real
`npm install`, Go binaries compiled with modules from the proxy, a Rust binary built with
`cargo auditable` from crates.io, jars from Maven Central (also nested in a Spring-Boot-style fat
jar and a war), real Debian packages (a static busybox, a gem's gemspec). Truth comes from the
tools that made them: importlib.metadata, `npm ls`, `go version -m`, Cargo's pins, Central's GAVs."""

from __future__ import annotations

import importlib.metadata
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.testdata import (
    GO_BUILDS,
    MAVEN_JARS,
    PACKAGE_NOTE,
    deb_tree,
    elf_with_package_note,
    go_binaries,
    jdk_homes,
    maven_jars,
    npm_tree,
    pip_tree,
    rust_binary,
)
from vouch.oci.build import Image, Layer, TarEntry, write_layout
from vouch.oci.source import LayoutSource
from vouch.sbom.catalogers.python import normalize_name
from vouch.sbom.generate import generate_sbom
from vouch.sbom.model import Package


def _files_under(root: Path, prefix: str, skip: str = ".complete") -> dict[str, bytes]:
    out = {}
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink() and p.name != skip:
            out[f"{prefix}/{p.relative_to(root).as_posix()}"] = p.read_bytes()
    return out


def test_pip_installed_packages(tmp_path: Path) -> None:
    site = pip_tree()
    truth = {normalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions(path=[str(site)])}
    assert {"requests", "urllib3", "idna", "certifi", "charset-normalizer", "pyyaml", "attrs"} <= set(truth)
    files = _files_under(site, "usr/local/lib/python3.11/site-packages")
    files["etc/os-release"] = b'ID=debian\nVERSION_ID="12"\n'
    write_layout(tmp_path / "img", Image([Layer.from_files(files)]))
    result = generate_sbom(LayoutSource(tmp_path / "img", None), timestamp="2026-04-25T10:00:00Z")
    got = {normalize_name(p.name): p for p in result.packages if p.type == "pypi"}
    assert {k: p.version for k, p in got.items()} == truth  # every package once, right version
    assert got["requests"].purl == "pkg:pypi/requests@2.32.3"
    assert got["pyyaml"].purl == "pkg:pypi/pyyaml@6.0.2"
    assert "/usr/local/lib/python3.11/site-packages/requests/api.py" in got["requests"].files
    assert "urllib3" in got["requests"].depends
    assert got["attrs"].licenses == ["MIT"]
    purls = [p.purl for p in result.packages]
    assert len(purls) == len(set(purls))


def test_npm_installed_packages(tmp_path: Path) -> None:
    app = npm_tree()
    tree = json.loads(subprocess.run(["npm", "ls", "--all", "--json", "--prefix", str(app)], capture_output=True,
                                     text=True).stdout)
    truth: set[tuple[str, str]] = set()

    def walk(deps: dict[str, dict[str, object]]) -> None:
        for name, info in deps.items():
            if isinstance(info.get("version"), str):
                truth.add((name, str(info["version"])))
            walk(info.get("dependencies") or {})  # type: ignore[arg-type]

    walk(tree["dependencies"])
    assert len(truth) > 40 and ("express", "4.19.2") in truth and ("@types/node", "20.14.9") in truth
    files = {k: v for k, v in _files_under(app, "opt/akko/ui").items() if k.endswith("package.json")}
    write_layout(tmp_path / "img", Image([Layer.from_files(files)]))
    result = generate_sbom(LayoutSource(tmp_path / "img", None), timestamp="2026-04-25T10:00:00Z")
    libs = {(p.name, p.version) for p in result.packages if p.type == "npm" and p.component_type == "library"}
    assert libs == truth  # every installed package (nested and scoped too), no extras
    apps = [p for p in result.packages if p.component_type == "application"]
    assert [(p.name, p.version) for p in apps] == [("akko-ui", "2026.4.0")]
    express = next(p for p in result.packages if p.name == "express")
    assert express.purl == "pkg:npm/express@4.19.2" and express.licenses == ["MIT"]
    types_node = next(p for p in result.packages if p.name == "@types/node")
    assert types_node.purl == "pkg:npm/%40types/node@20.14.9"
    purls = [p.purl for p in result.packages]
    assert len(purls) == len(set(purls))


def _sbom(tmp_path: Path, *layers: dict[str, bytes | TarEntry]) -> list[Package]:
    # uncompressed layers: gzip of 100+ MB of binaries would dominate the test's time
    write_layout(tmp_path / "img", Image([Layer.from_files(dict(files), compress=False) for files in layers]))
    result = generate_sbom(LayoutSource(tmp_path / "img", None), timestamp="2026-04-25T10:00:00Z")
    purls = [p.purl for p in result.packages]
    assert len(purls) == len(set(purls)), "a component is listed twice"
    return result.packages


def _exe(data: bytes) -> TarEntry:
    return TarEntry(data=data, mode=0o755)


def _go_version_m(binary: Path) -> tuple[str, dict[str, str], str]:
    """What the Go toolchain itself reads from a binary: (go version, {module: version} with
    replacements applied, main module version)."""
    out = subprocess.run(["go", "version", "-m", str(binary)], capture_output=True, text=True, check=True).stdout
    go_version = out.splitlines()[0].split(": ", 1)[1].strip()
    deps: dict[str, str] = {}
    main = ""
    last = ""
    for line in out.splitlines()[1:]:
        parts = line.strip().split("\t")
        if parts[0] == "mod":
            main = parts[2]
        elif parts[0] == "dep":
            last = parts[1]
            deps[last] = parts[2]
        elif parts[0] == "=>":
            del deps[last]
            deps[parts[1]] = parts[2]
    return go_version, deps, main


def test_go_binaries_normal_stripped_and_ldflags(tmp_path: Path) -> None:
    bins = go_binaries()
    layer = {f"usr/local/bin/{name}": _exe((bins / name).read_bytes()) for name in GO_BUILDS}
    packages = _sbom(tmp_path, layer)
    golang = {(p.name, p.version) for p in packages if p.type == "golang"}
    truth: set[tuple[str, str]] = set()
    for name in GO_BUILDS:
        go_version, deps, main = _go_version_m(bins / name)
        truth |= set(deps.items()) | {("stdlib", go_version)}
        if main != "(devel)":
            truth.add(("example.com/akko/probe", main))
    truth.add(("example.com/akko/probe", "v1.4.2"))  # the (devel) build: its -X main.version
    assert golang == truth
    assert ("github.com/BurntSushi/toml", "v1.5.0") in golang  # the replacement, not v1.6.0
    assert ("github.com/BurntSushi/toml", "v1.6.0") not in golang
    mains = [p for p in packages if p.name == "example.com/akko/probe"]
    assert {p.component_type for p in mains} == {"application"}
    vcs = next(p for p in mains if p.version.startswith("v0.0.0-"))
    assert re.fullmatch(r"v0\.0\.0-20260425100000-[0-9a-f]{12}", vcs.version)
    # the normal and the stripped -trimpath build are the same module version: one component, two places
    assert {loc.path for loc in vcs.locations} == {"/usr/local/bin/probe", "/usr/local/bin/probe-stripped"}
    cobra = next(p for p in packages if p.name == "github.com/spf13/cobra")
    assert cobra.purl == "pkg:golang/github.com/spf13/cobra@v1.10.2"
    assert len(cobra.locations) == 3
    stdlib = next(p for p in packages if p.name == "stdlib")
    assert stdlib.purl == f"pkg:golang/stdlib@{stdlib.version.removeprefix('go')}"
    assert stdlib.cpes == [f"cpe:2.3:a:golang:go:{stdlib.version.removeprefix('go')}:*:*:*:*:*:*:*"]


def test_multi_location_bom_is_byte_identical_across_runs(tmp_path: Path) -> None:
    """A module found in three binaries has three occurrences; their order must not vary between runs."""
    bins = go_binaries()
    layer = {f"usr/local/bin/{name}": _exe((bins / name).read_bytes()) for name in GO_BUILDS}
    write_layout(tmp_path / "img", Image([Layer.from_files(layer, compress=False)]))
    runs = [generate_sbom(LayoutSource(tmp_path / "img", None), timestamp="2026-04-25T10:00:00Z").to_json(indent=2)
            for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]
    doc = json.loads(runs[0])
    cobra = next(c for c in doc["components"] if c["name"] == "github.com/spf13/cobra")
    assert [o["location"] for o in cobra["evidence"]["occurrences"]] == [
        "/usr/local/bin/probe", "/usr/local/bin/probe-ldflags", "/usr/local/bin/probe-stripped"]


def test_go_windows_binary(tmp_path: Path) -> None:
    """A PE executable as a Windows image carries it (not executable by mode; named .exe)."""
    exe = go_binaries() / "probe.exe"
    packages = _sbom(tmp_path, {"Files/Program Files/akko/probe.exe": exe.read_bytes()})
    go_version, deps, main = _go_version_m(exe)
    assert "github.com/inconshreveable/mousetrap" in deps  # cobra's Windows-only dependency
    want = set(deps.items()) | {("stdlib", go_version), ("example.com/akko/probe", main)}
    assert {(p.name, p.version) for p in packages if p.type == "golang"} == want


def test_go_pseudo_version_from_vcs_settings() -> None:
    """Go before 1.24 left a VCS build's main module at (devel); the version is derived as `go` would."""
    from vouch.sbom.catalogers.golang import BuildInfo, main_version, parse_modinfo

    info = BuildInfo("go1.22.5")
    parse_modinfo(info, "path\texample.com/x/v3/cmd/x\nmod\texample.com/x/v3\t(devel)\t\n"
                        "build\tvcs.revision=0123456789abcdef0123\nbuild\tvcs.time=2024-03-01T12:30:45Z\n")
    assert main_version(info) == "v3.0.0-20240301123045-0123456789ab"
    info = BuildInfo("go1.22.5")
    parse_modinfo(info, 'mod\texample.com/y\t(devel)\t\nbuild\t-ldflags="-X example.com/y/internal.Version=2.7.1"\n')
    assert main_version(info) == "v2.7.1"


def test_rust_cargo_auditable_binary(tmp_path: Path) -> None:
    binary = rust_binary() / "akko-probe"
    packages = _sbom(tmp_path, {"usr/local/bin/akko-probe": _exe(binary.read_bytes())})
    cargo = {(p.name, p.version, p.component_type) for p in packages if p.type == "cargo"}
    assert cargo == {("akko-probe", "0.3.1", "application"), ("itoa", "1.0.11", "library"),
                     ("semver", "1.0.23", "library"), ("smallvec", "1.13.2", "library")}  # autocfg: build-only
    assert next(p for p in packages if p.name == "semver").purl == "pkg:cargo/semver@1.0.23"


def _jar(entries: dict[str, bytes], stored: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _without_pom(jar: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(jar)) as zf:
        return _jar({i.filename: zf.read(i) for i in zf.infolist() if not i.filename.startswith("META-INF/maven/")})


def test_java_jars_fat_jar_and_war(tmp_path: Path) -> None:
    jars = maven_jars()
    real = {f"{a}-{v}.jar": (jars / f"{a}-{v}.jar").read_bytes() for _, a, v in MAVEN_JARS}
    truth = {f"pkg:maven/{g}/{a}@{v}" for g, a, v in MAVEN_JARS}
    boot_libs = ["guava-33.0.0-jre.jar", "failureaccess-1.0.2.jar", "jackson-databind-2.17.0.jar",
                 "jackson-core-2.17.0.jar", "jackson-annotations-2.17.0.jar", "spring-core-6.1.5.jar",
                 "spring-jcl-6.1.5.jar"]
    fat = _jar({
        "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\r\nMain-Class: org.springframework.boot.loader.launch."
                                b"JarLauncher\r\nStart-Class: com.example.akko.Api\r\n\r\n",
        "META-INF/maven/com.example.akko/akko-api/pom.properties":
            b"artifactId=akko-api\ngroupId=com.example.akko\nversion=2026.4.0\n",
        "BOOT-INF/classes/com/example/akko/Api.class": b"\xca\xfe\xba\xbe",
        **{f"BOOT-INF/lib/{n}": real[n] for n in boot_libs},
    }, stored=True)  # Spring Boot stores nested jars uncompressed
    war = _jar({"WEB-INF/lib/commons-lang3-3.14.0.jar": real["commons-lang3-3.14.0.jar"],
                "WEB-INF/web.xml": b"<web-app/>"})
    layer: dict[str, bytes | TarEntry] = {
        "opt/akko/api/app.jar": fat,
        "opt/akko/legacy/ROOT.war": war,
        "opt/akko/tools/lib/commons-lang3-3.14.0.jar": real["commons-lang3-3.14.0.jar"],  # also in the war
        "opt/akko/tools/lib/slf4j-api-2.0.12.jar": _without_pom(real["slf4j-api-2.0.12.jar"]),
    }
    packages = _sbom(tmp_path, layer)
    maven = {p.purl: p for p in packages if p.type == "maven"}
    # the pom-less slf4j jar: name and version from its manifest; its group is not written anywhere in it, so
    # the purl uses the name as the group (syft's convention) rather than a guess
    truth = truth - {"pkg:maven/org.slf4j/slf4j-api@2.0.12"} | {"pkg:maven/slf4j-api/slf4j-api@2.0.12"}
    assert set(maven) == truth | {"pkg:maven/com.example.akko/akko-api@2026.4.0"}  # ROOT.war has no identity
    lang3 = maven["pkg:maven/org.apache.commons/commons-lang3@3.14.0"]
    assert {loc.path for loc in lang3.locations} == {"/opt/akko/legacy/ROOT.war",
                                                     "/opt/akko/tools/lib/commons-lang3-3.14.0.jar"}
    guava = maven["pkg:maven/com.google.guava/guava@33.0.0-jre"]
    assert guava.properties["vouch:java:nested-path"] == "/opt/akko/api/app.jar:BOOT-INF/lib/guava-33.0.0-jre.jar"
    assert maven["pkg:maven/slf4j-api/slf4j-api@2.0.12"].properties["vouch:java:evidence"] == "manifest"
    # licences: the pom.xml's <licenses> (jackson), else the manifest's Bundle-License URL (slf4j: MIT)
    assert maven["pkg:maven/com.fasterxml.jackson.core/jackson-core@2.17.0"].licenses == ["Apache-2.0"]
    assert maven["pkg:maven/slf4j-api/slf4j-api@2.0.12"].licenses == ["MIT"]
    assert maven["pkg:maven/org.springframework/spring-core@6.1.5"].licenses == []  # it declares none
    assert maven["pkg:maven/org.springframework/spring-core@6.1.5"].properties["vouch:java:evidence"] == "manifest"


def test_classified_binaries_and_os_ownership(tmp_path: Path) -> None:
    busybox = deb_tree("busybox-static")
    bb_version = (busybox / "version").read_text().split(":", 1)[-1].split("-", 1)[0]  # 1:1.35.0-4+deb12u1 → 1.35.0
    node = Path("/usr/bin/node").resolve()
    node_version = subprocess.run([str(node), "--version"], capture_output=True, text=True, check=True).stdout
    python = deb_tree("python3.11-minimal")
    py_version = (python / "version").read_text().split("-", 1)[0]  # 3.11.2-6+deb12u6 → 3.11.2
    layer: dict[str, bytes | TarEntry] = {
        "bin/busybox": _exe((busybox / "root" / "bin" / "busybox").read_bytes()),
        "usr/local/bin/node": _exe(node.read_bytes()),
        # the same node binary owned by a Debian package: that package, not a second node
        "usr/bin/node": _exe(node.read_bytes()),
        "var/lib/dpkg/status": b"Package: nodejs\nStatus: install ok installed\nArchitecture: amd64\n"
                               b"Version: 20.20.2-1nodesource1\nDescription: runtime\n\n",
        "var/lib/dpkg/info/nodejs.md5sums": b"0123456789abcdef0123456789abcdef  usr/bin/node\n",
        "etc/os-release": b'ID=debian\nVERSION_ID="12"\n',
    }
    layer["usr/local/bin/python3.11"] = _exe((python / "root" / "usr" / "bin" / "python3.11").read_bytes())
    # this machine's CPython is built from source with --enable-shared, as the official python images are:
    # its libpython keeps the version only as the tail of a longer string
    libpython = next(Path(sys.base_prefix).glob("lib/libpython3*.so.1.0"), None)
    if libpython is None:
        pytest.fail(f"no shared libpython under {sys.base_prefix}/lib on this machine")
    layer[f"opt/py/lib/{libpython.name}"] = libpython.read_bytes()
    source_built = ".".join(str(x) for x in sys.version_info[:3])
    packages = _sbom(tmp_path, layer)
    binaries = {p.purl: p for p in packages if p.type == "binary"}
    assert f"pkg:generic/busybox@{bb_version}" in binaries
    node_pkg = binaries[f"pkg:generic/node@{node_version.strip().removeprefix('v')}"]
    assert [loc.path for loc in node_pkg.locations] == ["/usr/local/bin/node"]  # /usr/bin/node is the deb's
    assert "cpe:2.3:a:nodejs:node.js:" + node_version.strip().removeprefix("v") + ":*:*:*:*:*:*:*" in node_pkg.cpes
    assert any(p.type == "deb" and p.name == "nodejs" for p in packages)
    assert binaries[f"pkg:generic/python@{py_version}"].cpes[0] == (
        f"cpe:2.3:a:python_software_foundation:python:{py_version}:*:*:*:*:*:*:*")
    assert [loc.path for loc in binaries[f"pkg:generic/python@{source_built}"].locations] == [
        f"/opt/py/lib/{libpython.name}"]
    assert len(binaries) == 4  # busybox, node, Debian's python, the source-built python: nothing else


def test_ruby_php_dotnet_manifests(tmp_path: Path) -> None:
    rack = deb_tree("ruby-rack")
    spec = next((rack / "root").rglob("rack-*.gemspec"))
    installed = json.dumps({"packages": [
        {"name": "symfony/console", "version": "v6.4.4", "version_normalized": "6.4.4.0", "license": ["MIT"],
         "require": {"php": ">=8.1", "symfony/string": "^6.4"}},
        {"name": "symfony/string", "version": "v6.4.4", "license": ["MIT"]},
        {"name": "phpunit/phpunit", "version": "10.5.11", "license": ["BSD-3-Clause"]},
    ], "dev": True, "dev-package-names": ["phpunit/phpunit"]}).encode()
    deps = json.dumps({
        "runtimeTarget": {"name": ".NETCoreApp,Version=v8.0"},
        # as the SDK writes them: each library with the runtime assets the app loads (one with none is not loaded)
        "targets": {".NETCoreApp,Version=v8.0": {
            "Akko.Api/1.0.0": {"dependencies": {"Newtonsoft.Json": "13.0.3"}, "runtime": {"Akko.Api.dll": {}}},
            "Newtonsoft.Json/13.0.3": {"runtime": {"lib/net6.0/Newtonsoft.Json.dll": {
                "assemblyVersion": "13.0.0.0", "fileVersion": "13.0.3.27908"}}}}},
        "libraries": {"Akko.Api/1.0.0": {"type": "project", "serviceable": False, "sha512": ""},
                      "Newtonsoft.Json/13.0.3": {"type": "package", "serviceable": True,
                                                 "sha512": "sha512-HrC5BXdl00IP9zeV+0Z848QWPAoCr9P3bDEZguI+gkLcBKAOxix"
                                                           "/tLEAAHC+UvDNPv4a2d18lOReHMOagPa+zQ==",
                                                 "path": "newtonsoft.json/13.0.3"}}}).encode()
    packages = _sbom(tmp_path, {
        "usr/share/rubygems-integration/all/specifications/" + spec.name: spec.read_bytes(),
        "srv/www/vendor/composer/installed.json": installed,
        "app/Akko.Api.deps.json": deps,
    })
    gem = next(p for p in packages if p.type == "gem")
    want = spec.name.removeprefix("rack-").removesuffix(".gemspec")
    assert (gem.name, gem.version, gem.purl) == ("rack", want, f"pkg:gem/rack@{want}")
    assert gem.licenses == ["MIT"]
    composer = {p.purl: p for p in packages if p.type == "composer"}
    assert set(composer) == {"pkg:composer/symfony/console@v6.4.4", "pkg:composer/symfony/string@v6.4.4",
                             "pkg:composer/phpunit/phpunit@10.5.11"}
    assert composer["pkg:composer/phpunit/phpunit@10.5.11"].properties["vouch:composer:dev"] == "true"
    nuget = {(p.purl, p.component_type) for p in packages if p.type == "nuget"}
    assert nuget == {("pkg:nuget/Akko.Api@1.0.0", "application"), ("pkg:nuget/Newtonsoft.Json@13.0.3", "library")}


def test_jvm_release_files(tmp_path: Path) -> None:
    """The JDKs on this machine (Debian's OpenJDK, Eclipse Temurin): their `release` files name them; the
    version must be the one the runtime itself reports."""
    layer: dict[str, bytes | TarEntry] = {}
    want = {}
    for home in jdk_homes():
        dest = f"opt/java/{home.name}"
        layer[f"{dest}/release"] = (home / "release").read_bytes()
        for tool in ("java", "javac"):
            if (home / "bin" / tool).exists():
                layer[f"{dest}/bin/{tool}"] = _exe((home / "bin" / tool).read_bytes())
        shown = subprocess.run([str(home / "bin" / "java"), "-version"], capture_output=True, text=True).stderr
        runtime = re.search(r"Runtime Environment [^(]*\(build ([^)]+)\)", shown)
        assert runtime, shown
        want[f"/{dest}/release"] = runtime.group(1)
    packages = _sbom(tmp_path, layer)
    jvms = {p.locations[0].path: p for p in packages if p.cataloger == "java-jvm-release"}
    assert {k: p.version for k, p in jvms.items()} == want
    for p in jvms.values():
        assert p.purl.startswith(f"pkg:generic/oracle/openjdk@{p.version.replace('+', '%2B')}")


def test_elf_package_note(tmp_path: Path) -> None:
    """A binary linked with `ld --package-metadata` names its distribution package; where a package
    database owns that file, the database's package is listed instead."""
    binary = elf_with_package_note().read_bytes()
    note = json.loads(PACKAGE_NOTE)
    packages = _sbom(tmp_path, {
        "usr/bin/akko-hello": _exe(binary),
        "usr/bin/owned-hello": _exe(binary),
        "var/lib/dpkg/status": b"Package: owned\nStatus: install ok installed\nArchitecture: amd64\n"
                               b"Version: 1.0\nDescription: x\n\n",
        "var/lib/dpkg/info/owned.md5sums": b"0123456789abcdef0123456789abcdef  usr/bin/owned-hello\n",
        "etc/os-release": b'ID=debian\nVERSION_ID="12"\n',
    })
    notes = [p for p in packages if p.cataloger == "elf-package-note"]
    assert [(p.name, p.version, p.arch) for p in notes] == [(note["name"], note["version"], "x86_64")]
    assert notes[0].purl == "pkg:rpm/fedora/akko-hello@1.2.3-1.fc40?distro=fedora-40"
    assert [loc.path for loc in notes[0].locations] == ["/usr/bin/akko-hello"]


def test_debian_package_note(tmp_path: Path) -> None:
    """Debian stamps package notes into systemd's binaries ({"type":"deb","os":"Debian",...}): a
    systemctl copied out of its package still names it."""
    tree = deb_tree("systemd")
    version = (tree / "version").read_text().strip()
    packages = _sbom(tmp_path, {"usr/local/bin/systemctl": _exe((tree / "root" / "bin" / "systemctl").read_bytes())})
    notes = [(p.purl, p.arch) for p in packages if p.cataloger == "elf-package-note"]
    assert notes == [(f"pkg:deb/debian/systemd@{version.replace('+', '%2B')}?distro=debian", "amd64")]


def test_classifier_names_reach_the_binary_reader() -> None:
    """Shared libraries are not executable: their names alone make the binary cataloger read them."""
    from vouch.sbom.catalogers.binary import BinaryCataloger

    c = BinaryCataloger()
    for name in ("python3.11", "libpython3.11.so.1.0", "node", "libnode.so.115", "busybox", "openssl",
                 "libssl.so.3", "libcrypto.so.3", "httpd", "apache2", "nginx", "haproxy", "memcached", "php", "php8.2",
                 "php-fpm8.2", "libphp.so", "ruby", "libruby-3.1.so.3.1.2", "perl", "perl5.36.0", "postgres"):
        assert c.wants(f"usr/lib/{name}", 0o644, 4096), name
    assert not c.wants("usr/lib/libz.so.1", 0o644, 4096)
    assert c.wants("usr/bin/anything", 0o755, 4096)


SERVER_BINARIES = {  # Debian package → (its binary, the classifier's package name)
    "apache2-bin": ("usr/sbin/apache2", "httpd"),
    "haproxy": ("usr/sbin/haproxy", "haproxy"),
    "nginx": ("usr/sbin/nginx", "nginx"),
    "memcached": ("usr/bin/memcached", "memcached"),
    "php8.2-cli": ("usr/bin/php8.2", "php"),
    "libruby3.1": ("usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1.2", "ruby"),
    "perl-base": ("usr/bin/perl", "perl"),
    "postgresql-15": ("usr/lib/postgresql/15/bin/postgres", "postgresql"),
}


def test_server_and_runtime_classifiers(tmp_path: Path) -> None:
    """Real binaries (Debian's builds, apt-get download) placed where the official images put their
    source builds, with no package database: each is recognised with its upstream version."""
    layer: dict[str, bytes | TarEntry] = {}
    want = {}
    for package, (binary, name) in SERVER_BINARIES.items():
        tree = deb_tree(package)
        debian = (tree / "version").read_text().split(":", 1)[-1]
        upstream = debian.split("+really", 1)[-1].split("-", 1)[0].split("+", 1)[0]  # 3.1.7+really3.1.2-0 → 3.1.2
        layer[f"usr/local/{package}/{binary.rsplit('/', 1)[-1]}"] = _exe((tree / "root" / binary).read_bytes())
        want[name] = upstream
    packages = _sbom(tmp_path, layer)
    found = {p.name: p for p in packages if p.cataloger == "binary-classifier"}
    assert set(found) == set(want)
    for name, upstream in want.items():
        assert found[name].version == upstream or found[name].version.startswith(upstream + "p"), (name, upstream)
        assert found[name].purl == f"pkg:generic/{name}@{found[name].version}"
    assert found["ruby"].cpes == [f"cpe:2.3:a:ruby-lang:ruby:{want['ruby']}:*:*:*:*:*:*:*"]


def test_language_package_installed_by_the_os(tmp_path: Path) -> None:
    """Debian's python3-yaml (its real files, control and md5sums, as dpkg would have installed them)
    brings PyYAML's dist-info: both are listed, and the pypi component names the deb that installed it."""
    tree = deb_tree("python3-yaml")
    control = (tree / "control" / "control").read_text().rstrip("\n")
    layer: dict[str, bytes | TarEntry] = {
        f"{p.relative_to(tree / 'root').as_posix()}": p.read_bytes()
        for p in (tree / "root").rglob("*") if p.is_file() and not p.is_symlink()
    }
    layer["var/lib/dpkg/status"] = (control + "\nStatus: install ok installed\n\n").encode()
    layer["var/lib/dpkg/info/python3-yaml.md5sums"] = (tree / "control" / "md5sums").read_bytes()
    layer["etc/os-release"] = b'ID=debian\nVERSION_ID="12"\n'
    packages = _sbom(tmp_path, layer)
    deb = next(p for p in packages if p.type == "deb")
    pypi = next(p for p in packages if p.type == "pypi")
    assert (deb.name, pypi.name.lower(), pypi.version) == ("python3-yaml", "pyyaml", "6.0")
    assert pypi.properties["vouch:package:installed-by"] == deb.purl
    # the same files without a dpkg database: nobody installed them
    site = "usr/local/lib/python3.11/site-packages/"
    alone = _sbom(tmp_path / "pip", {site + k.split("dist-packages/", 1)[1]: v for k, v in layer.items()
                                     if "dist-packages/" in k})
    assert "vouch:package:installed-by" not in next(p for p in alone if p.type == "pypi").properties
