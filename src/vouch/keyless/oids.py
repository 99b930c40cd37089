"""Fulcio's certificate extension OIDs as plain strings (no cryptography import: the CLI's help texts name the
CI extensions without loading the X.509 code)."""

from __future__ import annotations

FULCIO = "1.3.6.1.4.1.57264.1"
# Fulcio's CI extensions (docs/oid-info.md): flag suffix -> OID (all DER UTF8String values)
CI_EXTENSIONS: dict[str, str] = {
    "build-signer-uri": f"{FULCIO}.9",
    "build-signer-digest": f"{FULCIO}.10",
    "runner-environment": f"{FULCIO}.11",
    "source-repository-uri": f"{FULCIO}.12",
    "source-repository-digest": f"{FULCIO}.13",
    "source-repository-ref": f"{FULCIO}.14",
    "source-repository-identifier": f"{FULCIO}.15",
    "source-repository-owner-uri": f"{FULCIO}.16",
    "build-config-uri": f"{FULCIO}.18",
    "build-config-digest": f"{FULCIO}.19",
    "build-trigger": f"{FULCIO}.20",
    "run-invocation-uri": f"{FULCIO}.21",
}
