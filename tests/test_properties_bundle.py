"""Property tests (Hypothesis, fixed seed) for sigstore bundles read from referrers: arbitrary bundle
documents — a real vouch bundle with one part replaced — give the DSSE envelope or a VerificationError,
and a signature check gives a verdict with a reason, never another exception or a false accept."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.support.keys import new_signer
from tests.test_properties import SETTINGS, json_values, replaced
from vouch.errors import VouchError
from vouch.oci.client import Descriptor
from vouch.signing.attestation import envelope
from vouch.signing.sign import sign_statement
from vouch.store.bundles import BundleRead, bundle_envelope, dsse_bundle
from vouch.verify.signatures import check_bundle

DIGEST = "sha256:" + "ab" * 32
SIGNER = new_signer()
REAL = json.loads(dsse_bundle(envelope(SIGNER, sign_statement(DIGEST, None)), SIGNER.public_key))
MANIFEST = Descriptor("application/vnd.oci.image.manifest.v1+json", "sha256:" + "cd" * 32, 100)


def test_the_real_bundle_verifies() -> None:
    """The generator's starting point is accepted, so the refusals below are the mutations' doing."""
    check = check_bundle(BundleRead(MANIFEST, json.dumps(REAL).encode()), DIGEST, [SIGNER.public_key], None,
                         "r@" + DIGEST, "test")
    assert check.ok, check.reason


@SETTINGS
@given(replaced(REAL) | json_values)
def test_mutated_bundles_never_crash_nor_pass_edited(doc: Any) -> None:
    raw = json.dumps(doc).encode()
    with contextlib.suppress(VouchError):
        bundle_envelope(raw)
    check = check_bundle(BundleRead(MANIFEST, raw), DIGEST, [SIGNER.public_key], None, "r@" + DIGEST, "test")
    if check.ok:  # only a bundle whose signed content is the real one may pass
        assert json.loads(raw)["dsseEnvelope"]["payload"] == REAL["dsseEnvelope"]["payload"]
    else:
        assert check.reason


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_are_refused_with_a_reason(raw: bytes) -> None:
    check = check_bundle(BundleRead(MANIFEST, raw), DIGEST, [SIGNER.public_key], None, "r@" + DIGEST, "test")
    assert not check.ok and check.reason
