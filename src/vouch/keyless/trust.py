"""Keyless trust: a Sigstore trusted root (Fulcio CAs, Rekor logs, CT logs, TSAs) and who may have signed."""

from __future__ import annotations

from dataclasses import dataclass

from vouch.bundle.trustroot import TrustedRoot
from vouch.keyless.identity import IdentityPolicy


@dataclass(frozen=True)
class KeylessTrust:
    """What a keyless signature is verified against. ignore_sct / ignore_tlog: cosign's
    --insecure-ignore-sct / --insecure-ignore-tlog (then a signed timestamp must give the time)."""

    root: TrustedRoot
    policy: IdentityPolicy
    ignore_sct: bool = False
    ignore_tlog: bool = False

    def describe(self) -> str:
        return f"{self.policy.describe()} (trusted root: {self.root.source})"
