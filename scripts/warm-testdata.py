"""Fill the test-data caches that come from the package registries (PyPI, npm, the Go module proxy,
crates.io, Maven Central, Debian) before the suite runs in its loopback-only network namespace, where
nothing can be downloaded. Each helper builds once and is cached under ~/.cache/vouch-testdata."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import realworld, testdata
from tests.test_sbom_lang import SERVER_BINARIES

DEBS = ["busybox-static", "python3.11-minimal", "ruby-rack", "systemd", "python3-yaml", *SERVER_BINARIES]


def main() -> int:
    started = time.perf_counter()
    steps = [("pip tree", testdata.pip_tree), ("npm tree", testdata.npm_tree),
             ("Go binaries", testdata.go_binaries), ("Rust binary", testdata.rust_binary),
             ("Maven jars", testdata.maven_jars), ("rpm root", testdata.rpm_root),
             ("ELF with a package note", testdata.elf_with_package_note), ("mixed image", testdata.mixed_image)]
    steps += [(f"deb {p}", lambda p=p: testdata.deb_tree(p)) for p in dict.fromkeys(DEBS)]
    # the wheels scripts/build-zipapp.sh builds dist/vouch.pyz from, offline (tests/test_zipapp.py)
    steps.append(("zipapp wheelhouse", lambda: subprocess.run(
        ["bash", str(Path(__file__).resolve().parent / "build-zipapp.sh"), "--fetch"], check=True)))
    steps += [("Maven shaded jar", realworld.maven_shaded_jar), ("manifest-named jars", realworld.manifest_jars),
              ("Go 1.17 binaries", realworld.go117_binaries), ("Go Mach-O binary", realworld.go_darwin_binary),
              ("Go XCOFF binary", realworld.go_aix_binary), ("Rust PE binary", realworld.rust_windows_binary),
              ("Rust WebAssembly module", realworld.rust_wasm_binary)]
    for what, make in steps:
        make()
        print(f"warm-testdata: {what} ready", flush=True)
    print(f"warm-testdata: done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
