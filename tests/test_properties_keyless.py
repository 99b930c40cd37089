"""Property tests (Hypothesis, fixed seed, bounded) for what a registry hands the keyless verifier: a legacy
layer's annotations (certificate, Rekor bundle, timestamp) and the DER strings of Fulcio's extensions.
Arbitrary input gives a value or a VerificationError, never another exception."""

from __future__ import annotations

import contextlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from vouch.errors import VerificationError
from vouch.keyless import legacy
from vouch.keyless.identity import _der_utf8
from vouch.keyless.sign import ANN_BUNDLE, ANN_CERTIFICATE, ANN_RFC3161

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=40),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                          max_size=4), max_leaves=20)
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
bundle_like = st.fixed_dictionaries({}, optional={
    "SignedEntryTimestamp": json_values | st.just("AAAA"),
    "Payload": st.fixed_dictionaries({}, optional={
        "body": json_values | st.just("eyJraW5kIjoiaGFzaGVkcmVrb3JkIiwiYXBpVmVyc2lvbiI6IjAuMC4xIn0="),
        "integratedTime": json_values | st.integers(min_value=-5, max_value=2**40),
        "logIndex": json_values | st.integers(min_value=-5, max_value=2**40),
        "logID": json_values | st.just("ab" * 32)}) | json_values})
annotations = st.fixed_dictionaries({ANN_CERTIFICATE: st.text(max_size=200) | st.just(PEM)}, optional={
    ANN_BUNDLE: st.text(max_size=200) | bundle_like.map(json.dumps),
    ANN_RFC3161: st.text(max_size=100) | json_values.map(json.dumps)})


@SETTINGS
@given(annotations, st.binary(max_size=80), st.binary(max_size=200))
def test_legacy_layer_annotations_give_a_bundle_or_a_verification_error(ann: dict[str, str], sig: bytes,
                                                                        payload: bytes) -> None:
    with contextlib.suppress(VerificationError):
        bundle = legacy.signature_bundle(ann, sig, payload)
        assert bundle.version == "0.1" and len(bundle.material.certificates) == 1


@SETTINGS
@given(st.binary(max_size=300))
def test_der_utf8_never_raises(raw: bytes) -> None:
    text = _der_utf8(raw)
    assert text is None or isinstance(text, str)
