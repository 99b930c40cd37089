"""The two places signatures and attestations live, behind one interface: cosign's legacy tag layout
(`sha256-<hex>.sig` / `.att`) and the sigstore bundle layout (OCI 1.1 referrers, or the `sha256-<hex>`
fallback index). Commands choose layouts by name (`--layout legacy|bundle|both`, `--new-bundle-format`);
signing, attesting, verifying and the release go through `layouts(names)`, never through a layout's
modules directly.

Each layout: `sign` (idempotent: a valid signature by the same key or identity is enough), `attach`
(a signed statement; the same statement by the same signer is never written twice; `replace` drops the
signer's older ones of its type), `signatures` and `attestations` (every entry checked by the one
verification engine, with its reason).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from vouch.errors import InputError
from vouch.oci.client import Descriptor, RegistryClient
from vouch.oci.reference import Reference
from vouch.record import record
from vouch.signing.signer import KeySigner
from vouch.store.layout import ATT_SUFFIX, TagReading, read_payloads, target_repository
from vouch.trust import PublicKey
from vouch.verify.signatures import VerifyResult, check_bundle, legacy_checks

# The write side (store.attest), attestations (verify.attestations, the policies) and the bundle layout
# (store.bundles) are loaded by the methods that use them: a key-mode verify of legacy signatures never does.
if TYPE_CHECKING:  # (the keyless code is loaded by what signs or verifies keyless)
    from vouch.keyless.sign import KeylessSigner
    from vouch.keyless.trust import KeylessTrust
    from vouch.signing.sign import SignResult
    from vouch.verify.attestations import AttestationCheck
    from vouch.verify.policy import Policy
    from vouch.verify.signatures import Trust

NAMES = ("legacy", "bundle")


@record
class SignedStatement:
    """An in-toto statement and what each layout stores of its signature, made on demand (keyless: one
    signature, one log entry, for every layout that needs it; none when no layout does)."""

    statement: bytes
    predicate_type: str
    signer: PublicKey | KeylessTrust  # who we are: the key, or our identity under our trusted root
    envelope: Callable[[], bytes]  # the DSSE envelope, as a legacy `.att` layer holds it
    legacy_annotations: Callable[[], dict[str, str]]  # what else that layer carries (keyless: cert, chain, SET)
    bundle: Callable[[], bytes]  # the sigstore bundle, as a referrer holds it


def signed_statement(signer: KeySigner | KeylessSigner, statement: bytes, predicate_type: str) -> SignedStatement:
    from vouch.keyless.sign import KeylessSigner

    if isinstance(signer, KeylessSigner):
        made: list[bytes] = []

        def bundle() -> bytes:
            if not made:
                made.append(signer.sign_statement_bundle(statement))
            return made[0]

        return SignedStatement(statement, predicate_type, signer.trust, lambda: signer.legacy_envelope(bundle()),
                               lambda: signer.legacy(bundle()).annotations, bundle)
    from vouch.signing.attestation import envelope as key_envelope
    from vouch.store.bundles import dsse_bundle

    env: list[bytes] = []

    def envelope() -> bytes:
        if not env:
            env.append(key_envelope(signer, statement))
        return env[0]

    return SignedStatement(statement, predicate_type, signer.public_key, envelope, dict,
                           lambda: dsse_bundle(envelope(), signer.public_key))


@record
class Attached:
    attached: bool
    replaced: int
    where: str  # the tag, or the repository and how the referrer was stored


class Layout(Protocol):
    name: str

    def sign(self, client: RegistryClient, signer: KeySigner | KeylessSigner, image: Reference,
             subject: Descriptor, annotations: dict[str, str] | None) -> SignResult: ...

    def attach(self, client: RegistryClient, image: Reference, subject: Descriptor, signed: SignedStatement,
               replace: bool) -> Attached: ...

    def signatures(self, client: RegistryClient, image: Reference, digest: str, trust: Trust,
                   annotations: dict[str, str] | None, check_reference: bool, reading: TagReading,
                   result: VerifyResult) -> list[str]: ...

    def attestations(self, client: RegistryClient, image: Reference, digest: str, trust: Trust, policy: Policy,
                     predicate_type: str | None, now: dt.datetime, reading: TagReading) -> list[AttestationCheck]: ...


class LegacyLayout:
    """cosign's tag layout: what cosign 2, Kyverno's `type: Cosign` and Harbor read."""

    name = "legacy"

    def sign(self, client: RegistryClient, signer: KeySigner | KeylessSigner, image: Reference,
             subject: Descriptor, annotations: dict[str, str] | None) -> SignResult:
        from vouch.signing.sign import sign_digest  # (the write side: verify never loads it)

        return sign_digest(client, signer, image, subject.digest, annotations)

    def attach(self, client: RegistryClient, image: Reference, subject: Descriptor, signed: SignedStatement,
               replace: bool) -> Attached:
        from vouch.store.attest import attach

        r = attach(client, image, subject.digest, lambda: (signed.envelope(), signed.legacy_annotations()),
                   signed.statement, signed.predicate_type, signed.signer, replace)
        return Attached(r.attached, r.replaced, r.tag)

    def signatures(self, client: RegistryClient, image: Reference, digest: str, trust: Trust,
                   annotations: dict[str, str] | None, check_reference: bool, reading: TagReading,
                   result: VerifyResult) -> list[str]:
        return legacy_checks(client, target_repository(image), image, digest, trust, annotations, check_reference,
                             result, reading)

    def attestations(self, client: RegistryClient, image: Reference, digest: str, trust: Trust, policy: Policy,
                     predicate_type: str | None, now: dt.datetime, reading: TagReading) -> list[AttestationCheck]:
        from vouch.store.attest import read_attestations
        from vouch.verify.attestations import check_layer_attestation

        repo, layers = read_attestations(client, image, digest)
        return [check_layer_attestation(item, trust, policy, predicate_type, now)
                for item in read_payloads(client, repo, layers, ATT_SUFFIX, reading)]


class BundleLayout:
    """Sigstore bundles as referrers of the image: cosign 3's default, Kyverno's `type: SigstoreBundle`."""

    name = "bundle"

    def sign(self, client: RegistryClient, signer: KeySigner | KeylessSigner, image: Reference,
             subject: Descriptor, annotations: dict[str, str] | None) -> SignResult:
        from vouch.signing.sign import sign_digest_bundle

        return sign_digest_bundle(client, signer, image, subject, annotations)

    def attach(self, client: RegistryClient, image: Reference, subject: Descriptor, signed: SignedStatement,
               replace: bool) -> Attached:
        from vouch.store.attest import attach_bundle

        r = attach_bundle(client, image, subject, b"", signed.statement, signed.predicate_type, signed.signer,
                          replace, bundle=signed.bundle)
        return Attached(r.attached, r.replaced, r.tag)

    def signatures(self, client: RegistryClient, image: Reference, digest: str, trust: Trust,
                   annotations: dict[str, str] | None, check_reference: bool, reading: TagReading,
                   result: VerifyResult) -> list[str]:
        from vouch.store.bundles import SIGN_PREDICATE_TYPE, list_bundles, read_bundles

        repo = target_repository(image)
        listing = list_bundles(client, repo, digest)
        for item in read_bundles(client, repo, listing, reading):
            if item.predicate_type not in (None, SIGN_PREDICATE_TYPE):
                continue  # an attestation: not a signature (its statement is judged by verify-attestation)
            check = check_bundle(item, digest, trust, annotations, f"{image.name}@{digest}", listing.where)
            if check.ok or not check.reason.startswith("statement is of type"):
                result.checks.append(check)
        return []

    def attestations(self, client: RegistryClient, image: Reference, digest: str, trust: Trust, policy: Policy,
                     predicate_type: str | None, now: dt.datetime, reading: TagReading) -> list[AttestationCheck]:
        from vouch.store.bundles import SIGN_PREDICATE_TYPE, list_bundles, read_bundles
        from vouch.verify.attestations import check_bundle_attestation

        repo = target_repository(image)
        listing = list_bundles(client, repo, digest)
        out: list[AttestationCheck] = []
        for bundle in read_bundles(client, repo, listing, reading):
            if bundle.predicate_type == SIGN_PREDICATE_TYPE:
                continue
            check = check_bundle_attestation(bundle, trust, policy, predicate_type, now, listing.where)
            if check.predicate_type != SIGN_PREDICATE_TYPE:
                out.append(check)
        return out


_LAYOUTS: dict[str, Layout] = {"legacy": LegacyLayout(), "bundle": BundleLayout()}


def layouts(names: tuple[str, ...]) -> list[Layout]:
    """The layouts of these names, in order; InputError for another name."""
    unknown = [n for n in names if n not in _LAYOUTS]
    if unknown:
        raise InputError(f"unknown layout {unknown[0][:40]!r}: legacy or bundle")
    return [_LAYOUTS[n] for n in names]
