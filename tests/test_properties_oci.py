"""Property tests (Hypothesis, fixed seed, bounded count) for what a registry sends: manifests, indexes,
descriptors, auth challenges. Arbitrary input gives a value or a VouchError, never another exception."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vouch.errors import VouchError
from vouch.oci import mediatypes as mt
from vouch.oci.auth import parse_challenge
from vouch.oci.client import Descriptor, Manifest

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True)

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
GOOD = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": "sha256:" + "ab" * 32, "size": 12, "annotations": {"a": "b"}}
descriptor_like = st.fixed_dictionaries(
    {}, optional={"mediaType": json_values | st.just(GOOD["mediaType"]),
                  "digest": json_values | st.just(GOOD["digest"]),
                  "size": json_values | st.just(12), "annotations": json_values | st.just({"a": "b"}),
                  "platform": json_values | st.just({"os": "linux"})})
manifest_like = st.fixed_dictionaries(
    {}, optional={"schemaVersion": json_values, "mediaType": json_values,
                  "config": descriptor_like | json_values, "layers": st.lists(descriptor_like | json_values, max_size=4)
                  | json_values, "manifests": st.lists(descriptor_like | json_values, max_size=4) | json_values})


def _all_parts(m: Manifest) -> None:
    for part in (m.layers, m.children, m.config):
        try:
            out = part()
        except VouchError:
            continue
        for d in out if isinstance(out, list) else [out]:
            assert isinstance(d.digest, str) and isinstance(d.size, int) and isinstance(d.annotations or {}, dict)
            d.to_json()


@SETTINGS
@given(manifest_like)
def test_manifest_parts_are_values_or_vouch_errors(obj: dict[str, Any]) -> None:
    _all_parts(Manifest(json.dumps(obj).encode(), mt.OCI_MANIFEST, "sha256:" + "0" * 64))


@SETTINGS
@given(st.binary(max_size=300))
def test_manifest_bytes_are_values_or_vouch_errors(raw: bytes) -> None:
    with contextlib.suppress(VouchError):
        _all_parts(Manifest(raw, mt.OCI_MANIFEST, "sha256:" + "0" * 64))


@SETTINGS
@given(json_values | descriptor_like)
def test_descriptor_from_json(obj: Any) -> None:
    try:
        d = Descriptor.from_json(obj)
    except VouchError:
        return
    assert Descriptor.from_json(d.to_json()) == d


def test_descriptor_refuses_path_like_digests() -> None:
    for bad in ("sha256:../../v2/other/blobs/x", "sha256:ab/cd", "../x", "sha256:", "sha256:ab cd"):
        try:
            Descriptor.from_json({**GOOD, "digest": bad})
        except VouchError:
            continue
        raise AssertionError(bad)


@SETTINGS
@given(st.text(max_size=200))
def test_parse_challenge_never_raises(header: str) -> None:
    c = parse_challenge(header)
    assert c is None or (isinstance(c.scheme, str) and all(isinstance(v, str) for v in c.params.values()))
