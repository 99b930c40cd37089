"""Sample release images for the demo and the benchmarks, built in memory from real file trees.

They stand in for the ADR's 14 AKKO images: each has an os-release, a few layers, and some are
multi-arch indexes, so the pipeline meets every shape a real release has.
"""

from __future__ import annotations

import hashlib

from vouch.oci.build import Image, Index, Layer

RELEASE_IMAGES: list[tuple[str, str, bool]] = [
    # name, distro, multi-arch
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

OS_RELEASE = {
    "debian": b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
              b'VERSION="12 (bookworm)"\nID=debian\n',
    "distroless": b'PRETTY_NAME="Distroless"\nNAME="Debian GNU/Linux"\nID="debian"\nVERSION_ID="12"\n',
    "alpine": b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n',
    "rpm": b'NAME="Rocky Linux"\nVERSION="9.4 (Blue Onyx)"\nID="rocky"\nVERSION_ID="9.4"\n',
}


def _filler(seed: str, size: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}/{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def sample_image(name: str, distro: str, arch: str = "amd64", release: str = "2026.04") -> Image:
    base = Layer.from_files({
        "etc/os-release": OS_RELEASE[distro],
        "etc/hostname": b"akko\n",
        "usr/lib/libdemo.so.1": _filler(f"{distro}-lib-{arch}", 64 * 1024),
    })
    app = Layer.from_files({
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
