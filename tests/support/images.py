"""Small real images for tests: distinct content per call so tests never share digests by accident."""

from __future__ import annotations

import os

from vouch.oci.build import Image, Index, Layer


def small_image(label: str = "", layers: int = 2, arch: str = "amd64", size: int = 2048) -> Image:
    nonce = os.urandom(8).hex()
    return Image(
        [Layer.from_files({f"etc/layer{i}.txt": f"{label} {nonce} layer {i}\n".encode() + os.urandom(size)})
         for i in range(layers)],
        architecture=arch,
    )


def two_platform_index(label: str = "") -> Index:
    return Index([small_image(label, arch="amd64"), small_image(label, arch="arm64")])
