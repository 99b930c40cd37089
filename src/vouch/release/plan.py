"""What a release is: the images (a manifest file or arguments) and the switches from the ADR."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from vouch.errors import InputError
from vouch.oci.reference import Reference, parse_reference
from vouch.yamlsafe import load_yaml, read_limited

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


@dataclass
class ReleaseImage:
    ref: Reference
    platform: str | None = None


SBOM_FORMATS = ("cyclonedx-json", "spdx-json")


@dataclass
class Release:
    name: str | None
    images: list[ReleaseImage]
    sbom_formats: tuple[str, ...] = ("cyclonedx-json",)


def sbom_formats(values: object, where: str) -> tuple[str, ...]:
    """`sbomFormats:` (or --sbom-format): CycloneDX always (the admission policy and the gate read it), SPDX
    beside it when asked."""
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise InputError(f"{where}: sbomFormats must be a list of format names: {', '.join(SBOM_FORMATS)}")
    aliases = {"cyclonedx": "cyclonedx-json", "cyclonedx-json": "cyclonedx-json", "spdx": "spdx-json",
               "spdxjson": "spdx-json", "spdx-json": "spdx-json"}
    unknown = [v for v in values if v.lower() not in aliases]
    if unknown:
        raise InputError(f"{where}: unknown SBOM format {unknown[0][:40]!r}; the release attaches "
                         f"{' and '.join(SBOM_FORMATS)}")
    chosen = {aliases[v.lower()] for v in values}
    if "cyclonedx-json" not in chosen:
        raise InputError(f"{where}: sbomFormats must include cyclonedx-json (the Kyverno policy and verify-release "
                         "read the CycloneDX attestation; spdx-json is attached beside it)")
    return tuple(f for f in SBOM_FORMATS if f in chosen)


def load_manifest(path: str) -> Release:
    """release.yaml:  release: 2026.04 / images: [REF, {ref: REF, platform: linux/amd64}, ...] /
    sbomFormats: [cyclonedx-json, spdx-json] (optional; CycloneDX alone by default)"""
    try:
        raw = read_limited(Path(path))
    except OSError as exc:
        raise InputError(f"cannot read release manifest {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # a path with a NUL byte
        raise InputError(f"cannot read release manifest {path!r}: {exc}") from exc
    data = load_yaml(raw, f"release manifest {path}")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not data["images"]:
        raise InputError(f"release manifest {path} needs a non-empty `images:` list")
    images = []
    for i, item in enumerate(data["images"]):
        if isinstance(item, str):
            images.append(ReleaseImage(parse_reference(item)))
        elif isinstance(item, dict) and isinstance(item.get("ref"), str):
            platform = item.get("platform")
            if platform is not None and not isinstance(platform, str):
                raise InputError(f"release manifest {path}: images[{i}].platform must be a string like "
                                 "linux/amd64")
            images.append(ReleaseImage(parse_reference(item["ref"]), platform))
        else:
            raise InputError(f"release manifest {path}: images[{i}] must be a reference or {{ref: ..., platform: ...}}")
    first: dict[str, int] = {}
    for i, img in enumerate(images):
        key = str(img.ref)
        if key in first:
            raise InputError(f"release manifest {path}: images[{i}] names {key} more than once (also "
                             f"images[{first[key]}]); one entry releases every platform of an index (a platform: "
                             "restricts it to one)")
        first[key] = i
    name = data.get("release")
    # A name or version: YAML reads 2026.04 as a float and 2026-04-01 as a date, both fine as text.
    if name is not None and not isinstance(name, str | int | float | dt.date):
        raise InputError(f"release manifest {path}: `release:` must be a name or version (a string), "
                         f"not a {type(name).__name__}")
    formats = sbom_formats(data["sbomFormats"], f"release manifest {path}") if "sbomFormats" in data \
        else ("cyclonedx-json",)
    return Release(str(name) if name is not None else None, images, formats)


def switch(flag: bool | None, names: tuple[str, ...], default: bool) -> bool:
    """A flag wins; else the first of the environment variables that is set (true/false); else default."""
    if flag is not None:
        return flag
    for name in names:
        raw = os.environ.get(name)
        if raw is None or raw.strip() == "":
            continue
        value = raw.strip().lower()
        if value in TRUE:
            return True
        if value in FALSE:
            return False
        raise InputError(f"{name}={raw!r} is neither true nor false")
    return default


SIGN_SWITCH = ("VOUCH_SIGN_IMAGES", "AKKO_SIGN_IMAGES")
KEYLESS_SWITCH = ("VOUCH_SIGN_KEYLESS", "AKKO_SIGN_KEYLESS")
