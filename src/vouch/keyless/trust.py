"""Keyless trust: a Sigstore trusted root (Fulcio CAs, Rekor logs, CT logs, TSAs) and who may have signed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vouch.record import record
from vouch.trust import PublicKey

if TYPE_CHECKING:  # (types only: `vouch verify --key` tells trusts apart without loading X.509 code)
    from vouch.bundle.trustroot import TrustedRoot
    from vouch.keyless.identity import IdentityPolicy


@record(frozen=True)
class KeylessTrust:
    """What a keyless signature is verified against. ignore_sct / ignore_tlog: cosign's
    --insecure-ignore-sct / --insecure-ignore-tlog (then a signed timestamp must give the time)."""

    root: TrustedRoot
    policy: IdentityPolicy
    ignore_sct: bool = False
    ignore_tlog: bool = False

    def describe(self) -> str:
        return f"{self.policy.describe()} (trusted root: {self.root.source})"


@record(frozen=True)
class EitherTrust:
    """A mixed release, or a rotation from keys to keyless: a signature counts when it verifies with one
    of the keys (key-signed material) or meets the keyless trust (certificate material)."""

    keys: tuple[PublicKey, ...]
    keyless: KeylessTrust


def pick(trust: list[PublicKey] | KeylessTrust | EitherTrust, certificate: bool) -> list[PublicKey] | KeylessTrust:
    """The trust that applies to material signed with a certificate (keyless) or with a key."""
    if isinstance(trust, EitherTrust):
        return trust.keyless if certificate else list(trust.keys)
    return trust
