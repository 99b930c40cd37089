"""Sigstore bundles (v0.1 to v0.3), read and verified offline.

- `model`: the bundle's JSON parsed into typed dataclasses (malformed input refused with one line), and the
  v0.3 bundle cosign 3 writes around a DSSE envelope in key mode;
- `trustroot`: `trusted_root.json` (the Sigstore public-good one ships with the `sigstore` package);
- `tlog`: Rekor v1 transparency-log entries checked against the bundle and the trust root (body, SET,
  inclusion proof, checkpoint);
- `verify`: `verify_bundle`, the one entry point: key, signature, artifact or digest, log entries.
"""
