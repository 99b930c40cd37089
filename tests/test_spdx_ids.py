"""vouch.sbom.spdx_ids answers as cyclonedx.spdx does (it reads the same schema file without building
license-expression's index), for every identifier and for arbitrary text."""

from __future__ import annotations

import json

from cyclonedx.schema._res import SPDX_JSON
from cyclonedx.spdx import fixup_id as cdx_fixup_id
from cyclonedx.spdx import is_supported_id as cdx_is_supported_id
from hypothesis import given
from hypothesis import strategies as st

from vouch.sbom.spdx_ids import fixup_id, is_supported_id

with open(SPDX_JSON, encoding="utf-8") as f:
    IDS = json.load(f)["enum"]


def test_every_identifier_and_its_other_spellings_agree() -> None:
    assert len(IDS) > 500
    for value in IDS:
        for spelling in (value, value.lower(), value.upper(), value + " ", "-" + value):
            assert is_supported_id(spelling) == cdx_is_supported_id(spelling), spelling
            assert fixup_id(spelling) == cdx_fixup_id(spelling), spelling
    assert is_supported_id("MIT") and not is_supported_id("mit") and fixup_id("mit") == "MIT"
    assert fixup_id("GPL-2.") is None  # (the dpkg copyright parser's truncated token)


@given(st.text(max_size=40))
def test_any_text_agrees(value: str) -> None:
    assert is_supported_id(value) == cdx_is_supported_id(value)
    assert fixup_id(value) == cdx_fixup_id(value)
