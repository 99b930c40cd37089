"""Artefacts made here with the real tools of each ecosystem, in the shapes real images carry and
this project had not met before (issue 16): a maven-shade-plugin jar whose relocation moved the
bundled artefacts' pom.properties, OSGi bundles and a Jenkins plugin named only by their manifests
(`jar`), a Go program built by Go 1.17.13 for Windows and Linux (the build info's old pointer
layout), a Rust program built by `cargo auditable` for Windows (PE). Cached under
~/.cache/vouch-testdata; scripts/warm-testdata.py builds them before the suite runs offline."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.testdata import CARGO_TOML, IMAGES, RUST_BUILD, RUST_MAIN

M2 = IMAGES.parent / "m2"  # a local Maven repository of this project's own, not ~/.m2


def _run(cmd: list[str], what: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if r.returncode != 0:
        pytest.fail(f"{what} failed ({r.returncode}): {(r.stdout + r.stderr)[-3000:]}")
    return r.stdout


SHADE_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.example.akko</groupId>
  <artifactId>akko-shaded</artifactId>
  <version>1.0.0</version>
  <properties>
    <maven.compiler.release>17</maven.compiler.release>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
  </properties>
  <dependencies>
    <dependency><groupId>org.apache.commons</groupId><artifactId>commons-lang3</artifactId>
      <version>3.14.0</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId>
      <version>2.0.12</version></dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-compiler-plugin</artifactId>
        <version>3.13.0</version></plugin>
      <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-resources-plugin</artifactId>
        <version>3.3.1</version></plugin>
      <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-jar-plugin</artifactId>
        <version>3.4.1</version></plugin>
      <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-surefire-plugin</artifactId>
        <version>3.2.5</version><configuration><skip>true</skip></configuration></plugin>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId><artifactId>maven-shade-plugin</artifactId><version>3.5.3</version>
        <executions><execution><phase>package</phase><goals><goal>shade</goal></goals>
          <configuration>
            <relocations>
              <relocation><pattern>org.apache.commons.lang3</pattern>
                <shadedPattern>com.example.akko.shaded.lang3</shadedPattern></relocation>
              <relocation><pattern>org.slf4j</pattern>
                <shadedPattern>com.example.akko.shaded.slf4j</shadedPattern></relocation>
              <!-- the bundled artefacts' Maven descriptors moved with them, out of META-INF/maven -->
              <relocation><pattern>META-INF/maven</pattern>
                <shadedPattern>com/example/akko/shaded/META-INF/maven</shadedPattern></relocation>
            </relocations>
          </configuration></execution></executions>
      </plugin>
    </plugins>
  </build>
</project>
"""
SHADE_MAIN = """package com.example.akko;

public final class Main {
    public static void main(String[] args) {
        System.out.println(org.apache.commons.lang3.StringUtils.capitalize("akko")
                + org.slf4j.LoggerFactory.getLogger(Main.class).getName());
    }
}
"""


def maven_shaded_jar() -> Path:
    """`mvn package` with maven-shade-plugin: commons-lang3 and slf4j-api bundled and relocated, their
    pom.properties moved to com/example/akko/shaded/META-INF/maven/ with them (cached)."""
    out = IMAGES / "maven-shaded-v1"
    jar = out / "akko-shaded-1.0.0.jar"
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)
        src = out / "src"
        (src / "src/main/java/com/example/akko").mkdir(parents=True)
        (src / "pom.xml").write_text(SHADE_POM)
        (src / "src/main/java/com/example/akko/Main.java").write_text(SHADE_MAIN)
        _run(["mvn", "-B", "-q", f"-Dmaven.repo.local={M2}", "package"], "mvn package (shade)", src)
        shutil.copyfile(src / "target" / "akko-shaded-1.0.0.jar", jar)
        shutil.rmtree(src)
        (out / ".complete").touch()
    return jar


# An OSGi bundle as the SpringSource Enterprise Bundle Repository published Spring 3 (the symbolic
# name is the artefact's identity; no Maven descriptor inside), saved under a name that says nothing.
OSGI_MANIFEST = """Manifest-Version: 1.0
Bundle-ManifestVersion: 2
Bundle-SymbolicName: org.springframework.core;singleton:=true
Bundle-Version: 3.2.18.RELEASE
Bundle-Name: Spring Core
Bundle-Vendor: SpringSource
Export-Package: org.springframework.core;version="3.2.18.RELEASE"
"""
# A library that names itself only with the Implementation-* attributes (Ant- and Gradle-built jars).
IMPL_MANIFEST = """Manifest-Version: 1.0
Implementation-Title: akko-codec
Implementation-Version: 4.1.7
Implementation-Vendor: Akko Systems
Implementation-Vendor-Id: com.example.akko
"""
# A Jenkins plugin as the Gradle JPI plugin writes it: no pom.properties, the identity in the manifest.
HPI_MANIFEST = """Manifest-Version: 1.0
Group-Id: org.jenkins-ci.plugins
Short-Name: gradle
Extension-Name: gradle
Long-Name: Gradle Plugin
Plugin-Version: 2.11
Jenkins-Version: 2.303.3
Url: https://github.com/jenkinsci/gradle-plugin
"""


def _jar_tool(out: Path, name: str, manifest: str, files: dict[str, bytes]) -> Path:
    stage = out / f"stage-{name}"
    shutil.rmtree(stage, ignore_errors=True)
    for rel, data in files.items():
        (stage / rel).parent.mkdir(parents=True, exist_ok=True)
        (stage / rel).write_bytes(data)
    (out / f"{name}.mf").write_text(manifest)
    _run(["jar", "--create", "--file", str(out / name), "--manifest", str(out / f"{name}.mf"), "-C", str(stage), "."],
         f"jar --create {name}", out)
    shutil.rmtree(stage)
    (out / f"{name}.mf").unlink()
    return out / name


def manifest_jars() -> Path:
    """Built with the JDK's `jar` (cached): test.jar (the OSGi bundle), codec.jar (Implementation-*),
    and gradle.hpi (a Jenkins plugin with the real jackson-core jar from Maven Central in WEB-INF/lib)."""
    from tests.support.testdata import maven_jars

    out = IMAGES / "manifest-jars-v2"
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        core = maven_jars() / "jackson-core-2.17.0.jar"
        _jar_tool(out, "test.jar", OSGI_MANIFEST, {"org/springframework/core/SpringVersion.class": b"\xca\xfe\xba\xbe"})
        _jar_tool(out, "codec.jar", IMPL_MANIFEST, {"com/example/akko/codec/Codec.class": b"\xca\xfe\xba\xbe"})
        _jar_tool(out, "gradle.hpi", HPI_MANIFEST, {"WEB-INF/lib/jackson-core-2.17.0.jar": core.read_bytes(),
                                                    "index.jelly": b"<div>Gradle</div>"})
        (out / ".complete").touch()
    return out


GO117_MOD = """module example.com/akko/legacy

go 1.17

require github.com/google/uuid v1.3.0
"""
GO117_MAIN = """package main

import (
\t"fmt"

\t"github.com/google/uuid"
)

func main() { fmt.Println(uuid.NewString()) }
"""
GO117 = "golang.org/toolchain@v0.0.1-go1.17.13.linux-amd64"


def go117_toolchain() -> Path:
    """Go 1.17.13 from the Go module proxy (the toolchain module `go` itself switches with), copied out of
    the module cache with its programs made executable again (module zips keep no modes), as `go` does
    when it switches; cached. 1.17 is the last release whose linker writes the build info as pointers."""
    root = IMAGES.parent / "go1.17.13"
    if not (root / ".complete").exists():
        cache = Path(_run(["go", "env", "GOMODCACHE"], "go env", Path.cwd()).strip()) / GO117
        if not (cache / "bin" / "go").exists():
            _run(["go", "mod", "download", GO117], "go mod download (Go 1.17.13 toolchain)", Path.cwd(),
                 {"GOFLAGS": "-mod=mod"})
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(cache, root)
        for p in [*root.joinpath("bin").iterdir(), *root.joinpath("pkg", "tool").glob("*/*")]:
            p.chmod(0o755)
        for p in root.rglob("*"):  # writable, so that a later rmtree can remove it
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | 0o200)
        (root / ".complete").touch()
    return root


def go117_binaries() -> Path:
    """legacy (linux/amd64) and legacy.exe (windows/amd64), built by Go 1.17.13 (cached)."""
    out = IMAGES / "go117-v1"
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)
        goroot = go117_toolchain()
        go = str(goroot / "bin" / "go")
        src = out / "src"
        src.mkdir(parents=True)
        (src / "go.mod").write_text(GO117_MOD)
        (src / "main.go").write_text(GO117_MAIN)
        # the toolchain module's files are read-only and its go.mod marks it a module; GOROOT says where it is
        env = {"GOROOT": str(goroot), "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", "GO111MODULE": "on",
               "PATH": f"{goroot / 'bin'}:{os.environ.get('PATH', '')}"}
        _run([go, "mod", "tidy"], "go1.17 mod tidy", src, env)
        _run([go, "build", "-o", str(out / "legacy"), "."], "go1.17 build", src, env)
        _run([go, "build", "-o", str(out / "legacy.exe"), "."], "go1.17 build (windows)", src,
             {**env, "GOOS": "windows", "GOARCH": "amd64"})
        _run([go, "build", "-o", str(out / "legacy-darwin"), "."], "go1.17 build (darwin)", src,
             {**env, "GOOS": "darwin", "GOARCH": "amd64"})
        (out / ".complete").touch()
    return out


def go_darwin_binary() -> Path:
    """The Go probe of tests.support.testdata cross-compiled for macOS (Mach-O) by this machine's Go."""
    from tests.support.testdata import GO_MAIN, GO_MOD

    out = IMAGES / "go-darwin-v1"
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)
        src = out / "src"
        src.mkdir(parents=True)
        (src / "go.mod").write_text(GO_MOD)
        (src / "main.go").write_text(GO_MAIN)
        env = {"GOFLAGS": "-mod=mod", "GOOS": "darwin", "GOARCH": "arm64"}
        _run(["go", "mod", "tidy"], "go mod tidy", src, {"GOFLAGS": "-mod=mod"})
        _run(["go", "build", "-buildvcs=false", "-o", str(out / "probe-darwin"), "."], "go build (darwin)", src, env)
        (out / ".complete").touch()
    return out / "probe-darwin"


WINDOWS_TARGET = "x86_64-pc-windows-gnu"


def rust_windows_binary() -> Path:
    """The Rust probe of tests.support.testdata built by `cargo auditable` for x86_64-pc-windows-gnu (a PE
    linked by Debian's MinGW-w64), cached. Needs the target's standard library (`rustup target add`)
    and x86_64-w64-mingw32-gcc (scripts/make-testdata.sh installs both)."""
    out = IMAGES / "rust-probe-windows-v1"
    tool = Path(os.environ.get("VOUCH_PEERS_DIR", Path.home() / ".cache" / "vouch-peers")) / "cargo" / "bin"
    if not (out / ".complete").exists():
        installed = subprocess.run(["rustup", "target", "list", "--installed"], capture_output=True, text=True).stdout
        if WINDOWS_TARGET not in installed.split() or shutil.which("x86_64-w64-mingw32-gcc") is None:
            pytest.fail(f"the Rust target {WINDOWS_TARGET} or MinGW-w64 is missing: run scripts/make-testdata.sh")
        if not (tool / "cargo-auditable").exists():
            pytest.fail(f"cargo-auditable is not installed in {tool}: run scripts/install-peers.sh")
        shutil.rmtree(out, ignore_errors=True)
        src = out / "src"
        (src / "src").mkdir(parents=True)
        (src / "Cargo.toml").write_text(CARGO_TOML)
        (src / "src" / "main.rs").write_text(RUST_MAIN)
        (src / "build.rs").write_text(RUST_BUILD)
        _run(["cargo", "auditable", "build", "--release", "--quiet", "--target", WINDOWS_TARGET],
             "cargo auditable build (windows)", src, {"PATH": f"{tool}:{os.environ.get('PATH', '')}"})
        shutil.copy2(src / "target" / WINDOWS_TARGET / "release" / "akko-probe.exe", out / "akko-probe.exe")
        shutil.rmtree(src / "target")
        (out / ".complete").touch()
    return out / "akko-probe.exe"


WASM_TARGET = "wasm32-unknown-unknown"


def rust_wasm_binary() -> Path:
    """The same Rust probe built by `cargo auditable` for WebAssembly (the data in a custom section), cached."""
    out = IMAGES / "rust-probe-wasm-v1"
    tool = Path(os.environ.get("VOUCH_PEERS_DIR", Path.home() / ".cache" / "vouch-peers")) / "cargo" / "bin"
    if not (out / ".complete").exists():
        installed = subprocess.run(["rustup", "target", "list", "--installed"], capture_output=True, text=True).stdout
        if WASM_TARGET not in installed.split():
            pytest.fail(f"the Rust target {WASM_TARGET} is missing: run scripts/make-testdata.sh")
        shutil.rmtree(out, ignore_errors=True)
        src = out / "src"
        (src / "src").mkdir(parents=True)
        (src / "Cargo.toml").write_text(CARGO_TOML)
        (src / "src" / "main.rs").write_text(RUST_MAIN)
        (src / "build.rs").write_text(RUST_BUILD)
        _run(["cargo", "auditable", "build", "--release", "--quiet", "--target", WASM_TARGET],
             "cargo auditable build (wasm)", src, {"PATH": f"{tool}:{os.environ.get('PATH', '')}"})
        shutil.copy2(src / "target" / WASM_TARGET / "release" / "akko-probe.wasm", out / "akko-probe.wasm")
        shutil.rmtree(src / "target")
        (out / ".complete").touch()
    return out / "akko-probe.wasm"


def go_aix_binary() -> Path:
    """The Go probe cross-compiled for AIX (an XCOFF executable), cached: a format vouch does not read."""
    from tests.support.testdata import GO_MAIN, GO_MOD

    out = IMAGES / "go-aix-v1"
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)
        src = out / "src"
        src.mkdir(parents=True)
        (src / "go.mod").write_text(GO_MOD)
        (src / "main.go").write_text(GO_MAIN)
        _run(["go", "mod", "tidy"], "go mod tidy", src, {"GOFLAGS": "-mod=mod"})
        _run(["go", "build", "-buildvcs=false", "-o", str(out / "probe-aix"), "."], "go build (aix)", src,
             {"GOFLAGS": "-mod=mod", "GOOS": "aix", "GOARCH": "ppc64"})
        (out / ".complete").touch()
    return out / "probe-aix"
