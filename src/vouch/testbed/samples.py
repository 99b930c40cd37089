"""Sample release images for the demo and the benchmarks, built in memory from real file trees.

They stand in for the ADR's 14 AKKO images: each has an os-release, a few layers, and some are
multi-arch indexes, so the pipeline meets every shape a real release has.
"""

from __future__ import annotations

import hashlib

from vouch.oci.build import Image, Index, Layer

RELEASE_IMAGES: list[tuple[str, str, bool]] = [
    # name, distro, multi-arch; the application layer's kind follows APP_KIND
    ("cockpit", "debian", True),
    ("api-gateway", "debian", False),
    ("auth", "distroless", False),
    ("scheduler", "alpine", False),
    ("worker", "debian", True),
    ("notebook", "debian", False),
    ("model-server", "rpm", False),
    ("ingest", "alpine", False),
    ("search", "debian", False),
    ("ui", "alpine", True),
    ("metrics", "distroless", False),
    ("backup", "debian", False),
    ("docs", "alpine", False),
    ("migrations", "rpm", False),
]
# Application layers of the language ecosystems, with their real metadata files (installed Python
# distribution, node_modules package, Go build info, a Maven jar). vouch catalogs OS packages today;
# these are what the language catalogers will find.
APP_KIND = {"notebook": "python", "worker": "python", "ui": "node", "docs": "node", "scheduler": "go",
            "metrics": "go", "model-server": "java", "search": "java"}

OS_RELEASE = {
    "debian": b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
              b'VERSION="12 (bookworm)"\nID=debian\n',
    "distroless": b'PRETTY_NAME="Distroless"\nNAME="Debian GNU/Linux"\nID="debian"\nVERSION_ID="12"\n',
    "alpine": b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n',
    "rpm": b'NAME="Rocky Linux"\nVERSION="9.4 (Blue Onyx)"\nID="rocky"\nVERSION_ID="9.4"\n',
}


# Small package databases in the real formats, with the metadata of real Debian 12 / Alpine 3.20
# packages (the demo needs no network; the SBOM tests use full databases made by real tools).
DPKG_STATUS = b"""Package: base-files
Essential: yes
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 341
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Version: 12.4+deb12u10
Description: Debian base system miscellaneous files

Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12986
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u10
Depends: libgcc-s1
Description: GNU C Library: Shared libraries

Package: libgcc-s1
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 140
Maintainer: Debian GCC Maintainers <debian-gcc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: gcc-12
Version: 12.2.0-14
Depends: gcc-12-base (= 12.2.0-14), libc6 (>= 2.35)
Description: GCC support library

Package: gcc-12-base
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 71
Maintainer: Debian GCC Maintainers <debian-gcc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: gcc-12
Version: 12.2.0-14
Description: GCC, the GNU Compiler Collection (base package)

Package: libssl3
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 6171
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.15-1~deb12u1
Depends: libc6 (>= 2.34)
Description: Secure Sockets Layer toolkit - shared libraries

Package: zlib1g
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 168
Maintainer: Mark Brown <broonie@debian.org>
Architecture: amd64
Multi-Arch: same
Source: zlib
Version: 1:1.2.13.dfsg-1
Provides: libz1
Depends: libc6 (>= 2.14)
Description: compression library - runtime
"""

APK_INSTALLED = b"""P:musl
V:1.2.5-r0
A:x86_64
L:MIT
o:musl
T:the musl c library (libc) implementation
p:so:libc.musl-x86_64.so.1=1

P:busybox
V:1.36.1-r29
A:x86_64
L:GPL-2.0-only
o:busybox
T:Size optimized toolbox of many common UNIX utilities
D:so:libc.musl-x86_64.so.1

P:libcrypto3
V:3.3.2-r0
A:x86_64
L:Apache-2.0
o:openssl
T:Crypto library from openssl
D:so:libc.musl-x86_64.so.1
p:so:libcrypto.so.3=3

P:zlib
V:1.3.1-r1
A:x86_64
L:Zlib
o:zlib
T:A compression/decompression Library
D:so:libc.musl-x86_64.so.1
"""


def _package_db(distro: str) -> dict[str, bytes]:
    if distro == "debian":
        return {"var/lib/dpkg/status": DPKG_STATUS}
    if distro == "distroless":
        out = {}
        for block in DPKG_STATUS.decode().split("\n\n"):
            name = block.split("\n", 1)[0].removeprefix("Package: ").strip()
            if name in ("base-files", "libc6", "libssl3", "zlib1g"):
                out[f"var/lib/dpkg/status.d/{name}"] = (block.strip() + "\n").encode()
        return out
    if distro == "alpine":
        return {"lib/apk/db/installed": APK_INSTALLED, "etc/alpine-release": b"3.20.3\n"}
    if distro == "rpm":
        return {"var/lib/rpm/rpmdb.sqlite": sample_rpmdb()}
    return {}


def sample_rpmdb() -> bytes:
    """The rpm database of the rpm-based samples: made by real rpmbuild + rpm (scripts/make-sample-rpmdb.sh)."""
    import gzip
    from importlib.resources import files

    return gzip.decompress(files("vouch.testbed").joinpath("data/rpmdb.sqlite.gz").read_bytes())


def _app_files(name: str, kind: str | None) -> dict[str, bytes]:
    if kind == "python":
        meta = (b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache 2.0\n"
                b"Requires-Dist: urllib3 (<3,>=1.21.1)\n")
        return {"usr/local/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA": meta,
                "usr/local/lib/python3.11/site-packages/requests/__init__.py": b"__version__ = '2.31.0'\n"}
    if kind == "node":
        pkg = b'{"name": "express", "version": "4.19.2", "license": "MIT"}\n'
        return {f"opt/akko/{name}/node_modules/express/package.json": pkg,
                f"opt/akko/{name}/package.json": f'{{"name": "{name}", "version": "2026.4.0"}}\n'.encode()}
    if kind == "go":
        info = (f"\xff Go buildinf:go1.22.5\npath\tgithub.com/akko/{name}\nmod\tgithub.com/akko/{name}\t(devel)\t\n"
                "dep\tgolang.org/x/sys\tv0.21.0\th1:\n").encode("latin-1")
        return {f"usr/local/bin/{name}-go": b"\x7fELF" + info}
    if kind == "java":
        import io
        import zipfile

        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nImplementation-Version: 2.17.1\n")
            z.writestr("META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties",
                       "groupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.17.1\n")
        return {f"opt/akko/{name}/lib/log4j-core-2.17.1.jar": buf.getvalue()}
    return {}


def _filler(seed: str, size: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}/{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def sample_image(name: str, distro: str, arch: str = "amd64", release: str = "2026.04") -> Image:
    """One sample image: a base layer (os-release, a package database, a library) and an app layer."""
    base = Layer.from_files({
        **_package_db(distro),
        "etc/os-release": OS_RELEASE[distro],
        "etc/hostname": b"akko\n",
        "usr/lib/libdemo.so.1": _filler(f"{distro}-lib-{arch}", 64 * 1024),
    })
    app = Layer.from_files({
        **_app_files(name, APP_KIND.get(name)),
        f"opt/akko/{name}/VERSION": f"{release}\n".encode(),
        f"opt/akko/{name}/bin/{name}": _filler(f"{name}-{release}-{arch}", 128 * 1024),
    })
    return Image([base, app], architecture=arch,
                 config_extra={"config": {"Labels": {"org.opencontainers.image.version": release}}})


def sample_release(release: str = "2026.04") -> dict[str, Image | Index]:
    out: dict[str, Image | Index] = {}
    for name, distro, multi in RELEASE_IMAGES:
        if multi:
            out[name] = Index([sample_image(name, distro, a, release) for a in ("amd64", "arm64")])
        else:
            out[name] = sample_image(name, distro, "amd64", release)
    return out
