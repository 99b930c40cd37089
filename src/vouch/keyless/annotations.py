"""The annotations cosign puts on a keyless signature layer (legacy `.sig` layout), without the keyless code:
`vouch verify --key` tells a keyless layer from a key-signed one by them and loads nothing else."""

from __future__ import annotations

ANN_CERTIFICATE = "dev.sigstore.cosign/certificate"
ANN_CHAIN = "dev.sigstore.cosign/chain"
ANN_BUNDLE = "dev.sigstore.cosign/bundle"
ANN_RFC3161 = "dev.sigstore.cosign/rfc3161timestamp"


def is_keyless(annotations: dict[str, str]) -> bool:
    return ANN_CERTIFICATE in annotations
