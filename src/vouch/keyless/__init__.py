"""Keyless signing and verification: Fulcio certificates bound to an OIDC identity, transparency-log and
timestamp evidence, identity policies. Signing goes through the PyPI `sigstore` library; the checks are
ours where cosign's legacy layout needs what sigstore-python does not verify (a SET without an inclusion
proof)."""
