"""Real test images built from real package databases, cached under ~/.cache/vouch-testdata.

`scripts/make-testdata.sh` makes the debootstrap tree; the images here are derived from it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from vouch.testbed.rootfs import LayoutWriter, copy_tree, diff_tree, tar_tree

DATA = Path(os.environ.get("VOUCH_TESTDATA_DIR", Path.home() / ".cache" / "vouch-testdata"))
MINBASE = DATA / "bookworm-minbase"
IMAGES = DATA / "images-v1"
REMOVED_PACKAGE = "tzdata"


def require_minbase() -> Path:
    if not (MINBASE / ".complete").exists():
        msg = f"{MINBASE} is missing: run scripts/make-testdata.sh"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return MINBASE


@dataclass
class DebianImage:
    layout: Path
    expected: dict[str, tuple[str, str, str]]  # package -> (version, arch, source)
    upper: Path


def dpkg_query(root: Path) -> dict[str, tuple[str, str, str]]:
    out = subprocess.run(["chroot", str(root), "dpkg-query", "-W", "-f",
                          "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\t${source:Package}\n"],
                         check=True, capture_output=True, text=True).stdout
    result = {}
    for line in out.splitlines():
        status, name, version, arch, source = line.split("\t")
        if status.startswith("ii"):
            result[name] = (version, arch, source)
    return result


def debian_minbase_image() -> Path:
    """The debootstrap tree as one layer (what trivy scans as a rootfs, as an image)."""
    base = require_minbase()
    out = IMAGES / "debian-minbase"
    if not (out / "index.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        work = IMAGES / "work-minbase"
        work.mkdir(parents=True, exist_ok=True)
        writer = LayoutWriter(out)
        tar_tree(base, work / "l1.tar", exclude=[".complete", "dev", "proc", "sys"])
        writer.add_layer_tar(work / "l1.tar")
        writer.finish("bookworm")
        shutil.rmtree(work)
    return out


def debian_layered() -> DebianImage:
    """3 layers: debootstrap minbase; `dpkg --purge tzdata` (whiteouts); an opaque dir and an app."""
    base = require_minbase()
    out = IMAGES / "debian-layered"
    upper = IMAGES / "debian-layered-upper"
    if not (out / "index.json").exists() or not upper.exists():
        shutil.rmtree(out, ignore_errors=True)
        work = IMAGES / "work"
        work.mkdir(parents=True, exist_ok=True)
        copy_tree(base, upper)
        subprocess.run(["chroot", str(upper), "dpkg", "--purge", REMOVED_PACKAGE], check=True, capture_output=True)
        writer = LayoutWriter(out)
        tar_tree(base, work / "l1.tar", exclude=[".complete", "dev", "proc", "sys"])
        writer.add_layer_tar(work / "l1.tar")
        diff_tree(base, upper, work / "l2.tar")
        writer.add_layer_tar(work / "l2.tar")
        with tarfile.open(work / "l3.tar", "w") as tf:
            for name, data in [("etc/apt/apt.conf.d/.wh..wh..opq", b""),
                               ("etc/apt/apt.conf.d/99vouch", b'APT::Install-Recommends "false";\n'),
                               ("opt/app/bin/app", b"#!/bin/sh\necho app\n")]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                import io

                tf.addfile(info, io.BytesIO(data))
        writer.add_layer_tar(work / "l3.tar")
        writer.finish("bookworm")
        shutil.rmtree(work)
    return DebianImage(out, dpkg_query(upper), upper)


RPM_SPECS = {
    "vouch-demo-lib": ("1.2.3", "4", None, "MIT", "x86_64", [], "/usr/lib64/libvouchdemo.so.1"),
    "vouch-demo-app": ("2.0", "1", 2, "GPL-2.0-or-later AND BSD-3-Clause", "x86_64", ["vouch-demo-lib"],
                       "/usr/bin/vouch-demo"),
    "vouch-demo-data": ("2026.04", "7", None, "CC0-1.0", "noarch", [], "/usr/share/vouch-demo/data.txt"),
    # 400 files: its header is larger than a 4 KiB page, so Berkeley DB stores it on overflow pages
    "vouch-demo-many": ("1.0", "1", None, "Apache-2.0", "noarch", [], "/usr/share/vouch-many/file-{i}.txt"),
}


@dataclass
class RpmRoot:
    root: Path  # a root with var/lib/rpm/rpmdb.sqlite made by real rpm
    bdb: Path  # a Berkeley DB hash Packages made by db5.3_load from the same headers
    expected: dict[str, tuple[str, str, str | None, str]]  # name -> (version-release, arch, epoch, sourcerpm)


def _spec(name: str, version: str, release: str, epoch: int | None, lic: str, arch: str, requires: list[str],
          path: str) -> str:
    lines = [f"Name: {name}", f"Version: {version}", f"Release: {release}", f"License: {lic}",
             f"Summary: vouch test package {name}", f"BuildArch: {arch}", "AutoReqProv: no"]
    if epoch is not None:
        lines.append(f"Epoch: {epoch}")
    lines += [f"Requires: {r}" for r in requires]
    paths = [path.format(i=i) for i in range(400)] if "{i}" in path else [path]
    lines += ["", "%description", f"{name} for vouch tests", "", "%install",
              f"mkdir -p %{{buildroot}}{Path(paths[0]).parent}"]
    lines += [f"echo {name} > %{{buildroot}}{p}" for p in paths]
    lines += ["", "%files", *paths, ""]
    return "\n".join(lines)


def rpm_root() -> RpmRoot:
    """Real rpms (rpmbuild) installed by real rpm into a root; plus a Berkeley DB copy of its headers."""
    for tool in ("rpmbuild", "rpm", "db5.3_load"):
        if shutil.which(tool) is None:
            msg = f"{tool} is missing: run scripts/make-testdata.sh"
            if os.environ.get("CI"):
                pytest.fail(msg)
            pytest.skip(msg)
    out = IMAGES / "rpm-v2"
    root, bdb = out / "root", out / "bdb" / "Packages"
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)
        top = out / "build"
        (top / "SPECS").mkdir(parents=True)
        for name, (v, r, e, lic, arch, req, path) in RPM_SPECS.items():
            spec = top / "SPECS" / f"{name}.spec"
            spec.write_text(_spec(name, v, r, e, lic, arch, req, path))
            subprocess.run(["rpmbuild", "-bb", "--define", f"_topdir {top}", "--define", "_build_id_links none",
                            str(spec)], check=True, capture_output=True)
        rpms = sorted(str(p) for p in (top / "RPMS").rglob("*.rpm"))
        (root / "etc").mkdir(parents=True)
        (root / "etc" / "os-release").write_text('NAME="Rocky Linux"\nVERSION="9.4 (Blue Onyx)"\nID="rocky"\n'
                                                 'ID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n')
        subprocess.run(["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "--initdb"], check=True,
                       capture_output=True)
        subprocess.run(["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "-i", "--nodeps", "--noscripts",
                        "--ignorearch", "--ignoreos", *rpms], check=True, capture_output=True)
        # Berkeley DB: the same header blobs, loaded into a real hash database by libdb's own tool
        import sqlite3

        conn = sqlite3.connect(root / "var" / "lib" / "rpm" / "rpmdb.sqlite")
        rows = conn.execute("SELECT hnum, blob FROM Packages").fetchall()
        conn.close()
        dump = ["VERSION=3", "format=bytevalue", "type=hash", "db_pagesize=4096", "HEADER=END"]
        for hnum, blob in rows:
            dump.append(" " + int(hnum).to_bytes(4, "little").hex())
            dump.append(" " + bytes(blob).hex())
        dump.append("DATA=END")
        bdb.parent.mkdir(parents=True)
        subprocess.run(["db5.3_load", "-f", "/dev/stdin", str(bdb)], input="\n".join(dump) + "\n", text=True,
                       check=True, capture_output=True)
        shutil.rmtree(top)
        (out / ".complete").touch()
    q = subprocess.run(["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "-qa", "--qf",
                        "%{NAME}\\t%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{EPOCH}\\t%{SOURCERPM}\\n"],
                       check=True, capture_output=True, text=True).stdout
    expected = {}
    for line in q.splitlines():
        n, vr, a, e, src = line.split("\t")
        expected[n] = (vr, a, None if e == "(none)" else e, src)
    return RpmRoot(root, bdb, expected)


def pip_tree() -> Path:
    """Real wheels from PyPI installed by pip into a site-packages tree (cached)."""
    out = IMAGES / "pip-site-packages"
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(out),
                            "requests==2.32.3", "PyYAML==6.0.2", "attrs==24.2.0"], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail(f"pip install for the test tree failed: {r.stderr[-1000:]}")
        (out / ".complete").touch()
    return out


def npm_tree() -> Path:
    """A real `npm install` of an application (cached): node_modules with nested and scoped packages."""
    out = IMAGES / "npm-app"
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        deps = {"express": "4.19.2", "@types/node": "20.14.9"}
        (out / "package.json").write_text(json.dumps({"name": "akko-ui", "version": "2026.4.0", "private": True,
                                                       "dependencies": deps}))
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(out)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail(f"npm install for the test tree failed: {r.stderr[-1000:]}")
        (out / ".complete").touch()
    return out


def _run(cmd: list[str], what: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if r.returncode != 0:
        pytest.fail(f"{what} failed: {r.stderr[-2000:]}")
    return r.stdout


GO_MOD = """module example.com/akko/probe

go 1.22

require (
\tgithub.com/BurntSushi/toml v1.6.0
\tgithub.com/google/uuid v1.6.0
\tgithub.com/spf13/cobra v1.10.2
)

replace github.com/BurntSushi/toml => github.com/BurntSushi/toml v1.5.0
"""
GO_MAIN = """package main

import (
\t"fmt"

\t"github.com/BurntSushi/toml"
\t"github.com/google/uuid"
\t"github.com/spf13/cobra"
)

var version = "dev"

func main() {
\tvar cfg map[string]any
\t_, _ = toml.Decode("a = 1", &cfg)
\trun := func(*cobra.Command, []string) { fmt.Println(uuid.NewString(), cfg, version) }
\tcmd := &cobra.Command{Use: "probe", Run: run}
\t_ = cmd.Execute()
}
"""
GO_BUILDS = {  # binary name → extra `go build` flags
    "probe": [],
    "probe-stripped": ["-trimpath", "-ldflags=-s -w"],
    "probe-ldflags": ["-buildvcs=false", "-ldflags=-s -w -X main.version=1.4.2"],  # (devel) + an -X version
}
GIT_DATE = "2026-04-25T10:00:00Z"


def go_binaries() -> Path:
    """A Go program compiled here with modules from the proxy (cached): a normal build with VCS stamping,
    one `-trimpath -ldflags='-s -w'`, one with the version set by `-X main.version`, and probe.exe, the
    same program cross-compiled for Windows (PE)."""
    out = IMAGES / "go-probe-v2"
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)
        src = out / "src"
        src.mkdir(parents=True)
        (src / "go.mod").write_text(GO_MOD)
        (src / "main.go").write_text(GO_MAIN)
        env = {"GOFLAGS": "-mod=mod", "GIT_AUTHOR_DATE": GIT_DATE, "GIT_COMMITTER_DATE": GIT_DATE,
               "GIT_AUTHOR_NAME": "akko", "GIT_AUTHOR_EMAIL": "ci@akko.invalid",
               "GIT_COMMITTER_NAME": "akko", "GIT_COMMITTER_EMAIL": "ci@akko.invalid"}
        _run(["go", "mod", "tidy"], "go mod tidy", src, env)
        _run(["git", "init", "-q"], "git init", src, env)
        _run(["git", "add", "-A"], "git add", src, env)
        _run(["git", "commit", "-q", "-m", "probe"], "git commit", src, env)
        for name, flags in GO_BUILDS.items():
            _run(["go", "build", *flags, "-o", str(out / name), "."], f"go build {name}", src, env)
        _run(["go", "build", "-o", str(out / "probe.exe"), "."], "go build (windows)", src,
             {**env, "GOOS": "windows", "GOARCH": "amd64"})
        (out / ".complete").touch()
    return out


CARGO_TOML = """[package]
name = "akko-probe"
version = "0.3.1"
edition = "2021"

[dependencies]
itoa = "=1.0.11"
semver = "=1.0.23"
smallvec = "=1.13.2"

[build-dependencies]
autocfg = "=1.3.0"

[profile.release]
strip = true
"""
RUST_MAIN = """fn main() {
    let mut buf = itoa::Buffer::new();
    let v = semver::Version::parse("1.2.3").unwrap();
    let s: smallvec::SmallVec<[u8; 4]> = smallvec::smallvec![1, 2, 3];
    println!("{} {} {}", buf.format(42), v, s.len());
}
"""
RUST_BUILD = """fn main() {
    let ac = autocfg::new();
    ac.emit_has_path("std::vec::Vec");
}
"""


def rust_binary() -> Path:
    """A stripped Rust binary built with `cargo auditable` from crates.io (cached)."""
    out = IMAGES / "rust-probe-v1"
    tool = Path(os.environ.get("VOUCH_PEERS_DIR", Path.home() / ".cache" / "vouch-peers")) / "cargo" / "bin"
    if not (out / ".complete").exists():
        if not (tool / "cargo-auditable").exists():
            pytest.fail(f"cargo-auditable is not installed in {tool}: run scripts/install-peers.sh")
        shutil.rmtree(out, ignore_errors=True)
        src = out / "src"
        (src / "src").mkdir(parents=True)
        (src / "Cargo.toml").write_text(CARGO_TOML)
        (src / "src" / "main.rs").write_text(RUST_MAIN)
        (src / "build.rs").write_text(RUST_BUILD)
        _run(["cargo", "auditable", "build", "--release", "--quiet"], "cargo auditable build", src,
             {"PATH": f"{tool}:{os.environ.get('PATH', '')}"})
        shutil.copy2(src / "target" / "release" / "akko-probe", out / "akko-probe")
        shutil.rmtree(src / "target")
        (out / ".complete").touch()
    return out


MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
MAVEN_JARS = [  # group, artifact, version: real jars, fetched once and checked against Central's SHA-1
    ("org.apache.commons", "commons-lang3", "3.14.0"),
    ("com.google.guava", "guava", "33.0.0-jre"),
    ("com.google.guava", "failureaccess", "1.0.2"),
    ("com.fasterxml.jackson.core", "jackson-databind", "2.17.0"),
    ("com.fasterxml.jackson.core", "jackson-core", "2.17.0"),
    ("com.fasterxml.jackson.core", "jackson-annotations", "2.17.0"),
    ("org.slf4j", "slf4j-api", "2.0.12"),
    ("org.springframework", "spring-core", "6.1.5"),
    ("org.springframework", "spring-jcl", "6.1.5"),
]


def maven_jars() -> Path:
    """Real jars from Maven Central (cached), each verified against the SHA-1 Central publishes."""
    import hashlib
    import urllib.request

    out = IMAGES / "maven-jars-v1"
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        for group, artifact, version in MAVEN_JARS:
            url = f"{MAVEN_CENTRAL}/{group.replace('.', '/')}/{artifact}/{version}/{artifact}-{version}.jar"
            try:
                with urllib.request.urlopen(url, timeout=120) as r:
                    data = r.read()
                with urllib.request.urlopen(url + ".sha1", timeout=60) as r:
                    want = r.read().decode().split()[0]
            except OSError as exc:
                pytest.fail(f"downloading {url} failed: {exc}")
            if hashlib.sha1(data).hexdigest() != want:  # Central publishes SHA-1
                pytest.fail(f"{url}: SHA-1 does not match Maven Central's")
            (out / f"{artifact}-{version}.jar").write_bytes(data)
        (out / ".complete").touch()
    return out


def deb_tree(package: str) -> Path:
    """A real Debian package (apt-get download), unpacked with dpkg-deb (cached): root/ holds its files,
    control/ its control files (control, md5sums, ...), version its version."""
    out = IMAGES / f"deb2-{package}"
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)
        dl = out.with_name(out.name + ".dl")
        shutil.rmtree(dl, ignore_errors=True)
        dl.mkdir(parents=True)
        r = subprocess.run(["apt-get", "download", "-q", package], cwd=dl, capture_output=True, text=True)
        if r.returncode != 0:  # a fresh machine may have no package lists yet
            _run(["apt-get", "update", "-qq"], "apt-get update", dl)
            _run(["apt-get", "download", "-q", package], f"apt-get download {package}", dl)
        debs = list(dl.glob("*.deb"))
        if len(debs) != 1:
            pytest.fail(f"apt-get download {package} gave {debs}")
        (out / "root").mkdir(parents=True)
        _run(["dpkg-deb", "-x", str(debs[0]), str(out / "root")], "dpkg-deb -x", dl)
        _run(["dpkg-deb", "-e", str(debs[0]), str(out / "control")], "dpkg-deb -e", dl)
        version = _run(["dpkg-deb", "-f", str(debs[0]), "Version"], "dpkg-deb -f", dl).strip()
        (out / "version").write_text(version)
        shutil.rmtree(dl)
        (out / ".complete").touch()
    return out


def _stage(root: Path, files: dict[str, Path | bytes], mode: int = 0o644) -> None:
    for rel, src in files.items():
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(src, Path):
            shutil.copyfile(src, dest)
        else:
            dest.write_bytes(src)
        dest.chmod(mode)


def _tree_files(root: Path, prefix: str) -> dict[str, Path | bytes]:
    return {f"{prefix}/{p.relative_to(root).as_posix()}": p for p in root.rglob("*")
            if p.is_file() and not p.is_symlink() and p.name != ".complete"}


def fat_jar(jars: Path) -> bytes:
    """A Spring-Boot-style executable jar: the app's own pom.properties, BOOT-INF/lib/*.jar stored."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nMain-Class: org.springframework.boot.loader."
                                            "launch.JarLauncher\r\nStart-Class: com.example.akko.Api\r\n\r\n")
        zf.writestr("META-INF/maven/com.example.akko/akko-api/pom.properties",
                    "artifactId=akko-api\ngroupId=com.example.akko\nversion=2026.4.0\n")
        for jar in sorted(jars.glob("*.jar")):
            zf.write(jar, f"BOOT-INF/lib/{jar.name}")
    return buf.getvalue()


def mixed_image(big: bool = False) -> Path:
    """Debian minbase + a layer per ecosystem, all real artefacts (cached as an OCI layout):
    pip site-packages, an npm app, Go binaries (the probe builds and cosign 3.1.2 with its ~250 modules),
    a cargo-auditable Rust binary, Maven Central jars plain and in a fat jar, busybox/python/node binaries,
    a gemspec, a JDK's release file, a binary with a package note. `big=True` (the benchmark) adds every
    peer Go binary (≥ 1 GB in all)."""
    from tests.support.peers import peer

    out = IMAGES / ("mixed-big-v2" if big else "mixed-v2")
    if (out / "index.json").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    base = require_minbase()
    bins, rust, jars = go_binaries(), rust_binary(), maven_jars()
    busybox, python, rack = deb_tree("busybox-static"), deb_tree("python3.11-minimal"), deb_tree("ruby-rack")
    spec = next((rack / "root").rglob("rack-*.gemspec"))
    executables: dict[str, Path | bytes] = {f"usr/local/bin/{n}": bins / n for n in GO_BUILDS}
    executables["usr/local/bin/akko-probe"] = rust / "akko-probe"
    executables["usr/local/bin/cosign"] = peer("cosign3")
    executables["bin/busybox"] = busybox / "root" / "bin" / "busybox"
    executables["usr/local/bin/python3.11"] = python / "root" / "usr" / "bin" / "python3.11"
    executables["usr/local/bin/node"] = Path("/usr/bin/node").resolve()
    executables["usr/bin/akko-hello"] = elf_with_package_note()
    jdk = jdk_homes()[-1]
    for tool in ("java", "javac"):
        executables[f"opt/java/openjdk/bin/{tool}"] = jdk / "bin" / tool
    if big:
        for name in ("cosign2", "helm", "kyverno", "syft"):
            executables[f"opt/tools/bin/{name}"] = peer(name)
    layers: list[tuple[dict[str, Path | bytes], int]] = [
        (_tree_files(pip_tree(), "usr/local/lib/python3.11/site-packages"), 0o644),
        (_tree_files(npm_tree(), "opt/akko/ui"), 0o644),
        (executables, 0o755),
        ({**{f"opt/akko/lib/{j.name}": j for j in jars.glob("*.jar")}, "opt/akko/api/app.jar": fat_jar(jars),
          f"usr/share/rubygems-integration/all/specifications/{spec.name}": spec,
          "opt/java/openjdk/release": jdk / "release"}, 0o644),
    ]
    work = IMAGES / f"work-{out.name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    writer = LayoutWriter(out)
    tar_tree(base, work / "base.tar", exclude=[".complete", "dev", "proc", "sys"])
    writer.add_layer_tar(work / "base.tar")
    for i, (files, mode) in enumerate(layers):
        stage = work / f"s{i}"
        _stage(stage, files, mode)
        tar_tree(stage, work / f"l{i}.tar")
        writer.add_layer_tar(work / f"l{i}.tar")
        shutil.rmtree(stage)
        (work / f"l{i}.tar").unlink()
    writer.finish("mixed")
    shutil.rmtree(work)
    return out


def unpacked(layout: Path) -> Path:
    """An image's root filesystem on disk, for `trivy rootfs` (cached; the layers here carry no whiteouts)."""
    root = layout.with_name(layout.name + "-root")
    if not (root / ".complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        index = json.loads((layout / "index.json").read_text())
        blobs = layout / "blobs" / "sha256"
        manifest = json.loads((blobs / index["manifests"][0]["digest"].split(":")[1]).read_bytes())
        for layer in manifest["layers"]:
            with tarfile.open(blobs / layer["digest"].split(":")[1]) as tf:
                tf.extractall(root, filter="tar")
        (root / ".complete").touch()
    return root


PACKAGE_NOTE = ('{"type":"rpm","name":"akko-hello","version":"1.2.3-1.fc40","architecture":"x86_64",'
                '"osCpe":"cpe:/o:fedoraproject:fedora:40"}')


def elf_with_package_note() -> Path:
    """A C program linked by the real GNU ld with `--package-metadata` (systemd's package note, as Fedora
    stamps into every binary), cached."""
    out = IMAGES / "elf-note-v1"
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        (out / "hello.c").write_text("int main(void) { return 0; }\n")
        _run(["gcc", "-O2", "-o", "hello", "hello.c", "-Xlinker", f"--package-metadata={PACKAGE_NOTE}"],
             "gcc --package-metadata", out)
        (out / ".complete").touch()
    return out / "hello"


def jdk_homes() -> list[Path]:
    """The JDKs installed on this machine (the Debian OpenJDK and the Temurin build beside it)."""
    homes = sorted(p.parent for p in Path("/usr/lib/jvm").glob("*/release") if not p.parent.is_symlink())
    if not homes:
        pytest.fail("no JDK under /usr/lib/jvm: this machine kind ships OpenJDK and Temurin")
    return homes
