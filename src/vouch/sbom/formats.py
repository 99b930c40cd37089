"""The SBOM encoders, by the names syft's `-o` takes: one neutral model (sbom/model.py, what the catalogers
produce), one module per wire format (cdx.py, spdx.py), the attestation predicate type each is attached as."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vouch.errors import InputError
from vouch.sbom.cdx import build_bom
from vouch.sbom.model import Distro, FileDigest, ImageSubject, Package
from vouch.sbom.spdx import build_spdx

Json = dict[str, Any]
Build = Callable[[ImageSubject, Distro | None, list[Package], dt.datetime, bool, dict[str, FileDigest] | None], Json]


@dataclass(frozen=True)
class Encoder:
    name: str  # syft's format name
    predicate_type: str  # the in-toto predicate type it is attested as (cosign's --type URI)
    cosign_type: str  # cosign's --type short name
    media_type: str
    build: Build
    needs_file_digests: bool = False  # with files, the scan must hash every file (SPDX requires a SHA1)

    def encode(self, subject: ImageSubject, distro: Distro | None, packages: list[Package], timestamp: dt.datetime,
               files_detail: bool = False, file_digests: dict[str, FileDigest] | None = None,
               indent: int | None = None) -> str:
        return json.dumps(self.build(subject, distro, packages, timestamp, files_detail, file_digests), indent=indent)


def _cdx(subject: ImageSubject, distro: Distro | None, packages: list[Package], timestamp: dt.datetime,
         files_detail: bool, file_digests: dict[str, FileDigest] | None) -> Json:
    return build_bom(subject, distro, packages, timestamp, files_detail)


def _spdx(subject: ImageSubject, distro: Distro | None, packages: list[Package], timestamp: dt.datetime,
          files_detail: bool, file_digests: dict[str, FileDigest] | None) -> Json:
    return build_spdx(subject, distro, packages, timestamp, files_detail, file_digests)


CYCLONEDX_JSON = Encoder("cyclonedx-json", "https://cyclonedx.org/bom", "cyclonedx", "application/vnd.cyclonedx+json",
                         _cdx)
SPDX_JSON = Encoder("spdx-json", "https://spdx.dev/Document", "spdxjson", "application/spdx+json", _spdx,
                    needs_file_digests=True)
ENCODERS = {e.name: e for e in (CYCLONEDX_JSON, SPDX_JSON)}
# other spellings people type: cosign's --type names, the short forms
ALIASES = {"cyclonedx": "cyclonedx-json", "cdx": "cyclonedx-json", "cdx-json": "cyclonedx-json",
           "spdx": "spdx-json", "spdxjson": "spdx-json"}
DEFAULT = CYCLONEDX_JSON.name


def encoder(name: str) -> Encoder:
    """The encoder for a --format value; an unknown one is refused with the list of known ones."""
    key = name.strip().lower()
    found = ENCODERS.get(ALIASES.get(key, key))
    if found is None:
        raise InputError(f"unknown SBOM format {name!r}: use one of {', '.join(ENCODERS)}")
    return found


def encoder_for_predicate(predicate: Any) -> Encoder | None:
    """Which format a parsed SBOM document is in (by its own marker fields), or None."""
    if not isinstance(predicate, dict):
        return None
    if predicate.get("bomFormat") == "CycloneDX":
        return CYCLONEDX_JSON
    if isinstance(predicate.get("spdxVersion"), str):
        return SPDX_JSON
    return None
