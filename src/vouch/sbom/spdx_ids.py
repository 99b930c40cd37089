"""SPDX licence identifiers: the list CycloneDX's schema accepts as `license.id`.

The same list `cyclonedx.spdx.is_supported_id` checks (the schema file cyclonedx-python-lib ships), read once
on first use: importing cyclonedx.spdx also builds license-expression's whole licence index (~12 ms of every
`vouch sbom`), which only SPDX output needs (vouch.sbom.spdx validates expressions with it).
"""

from __future__ import annotations

import functools
import json


@functools.cache
def _ids() -> frozenset[str]:
    from cyclonedx.schema._res import SPDX_JSON

    with open(SPDX_JSON, encoding="utf-8") as f:
        ids = frozenset(json.load(f).get("enum", []))
    if not ids:
        raise RuntimeError(f"no SPDX licence identifiers in {SPDX_JSON}")
    return ids


def is_supported_id(value: str) -> bool:
    """Whether value is an SPDX licence identifier (exact spelling), as cyclonedx.spdx.is_supported_id."""
    return value in _ids()


@functools.cache
def _lower() -> dict[str, str]:
    return {i.lower(): i for i in _ids()}


def fixup_id(value: str) -> str | None:
    """The identifier value spells in another case (`mit` → `MIT`), or None; as cyclonedx.spdx.fixup_id."""
    return _lower().get(value.lower())
