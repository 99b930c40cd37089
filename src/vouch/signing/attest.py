"""`vouch attest`: a signed in-toto statement attached to an image digest, in one or both layouts, by a key
or keyless. Checks what must never be signed (a BOM dated in the future, about another image) first;
keyless, signs only when some layout needs a new attestation (each signature is a log entry)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from vouch.errors import InputError
from vouch.keyless.sign import STATEMENT_V1, KeylessSigner
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.signing.attestation import PREDICATE_TYPES, envelope, statement
from vouch.signing.signer import KeySigner
from vouch.store.attest import attach, attach_bundle
from vouch.verify.bomfacts import age_problem, bom_subject_problem, bom_time


@dataclass
class AttestResult:
    image: str
    digest: str
    predicate_type: str
    layout: str
    attached: bool
    replaced: int
    tag: str

    def to_json(self) -> dict[str, object]:
        return {"image": self.image, "digest": self.digest, "predicateType": self.predicate_type,
                "layout": self.layout, "status": "attested" if self.attached else "already-attested",
                "replaced": self.replaced, "tag": self.tag}


def check_signable(predicate: Any, type_uri: str, digest: str, allow_other_subject: bool) -> None:
    """Never sign a BOM that verifiers must refuse: a malformed or future metadata.timestamp, or (unless
    asked) one that names another image as its subject."""
    if type_uri != PREDICATE_TYPES["cyclonedx"]:
        return
    ts, problem = bom_time(predicate)
    if problem:
        raise InputError(f"{problem}; refusing to sign it")
    if ts is not None and (future := age_problem(ts, dt.datetime.now(dt.UTC), None)):
        raise InputError(f"{future} (not signing a BOM dated in the future)")
    if not allow_other_subject:
        other = bom_subject_problem(predicate, digest)
        if other:
            raise InputError(f"{other}; refusing to attest it (pass --allow-other-subject if that is really meant)")


def attest_image(client: RegistryClient, signer: KeySigner | KeylessSigner, ref: Reference, predicate: Any,
                 type_uri: str, replace: bool, allow_other_subject: bool = False,
                 layouts: tuple[str, ...] = ("legacy",)) -> list[AttestResult]:
    subject = client.resolve(ref)
    digest = subject.digest
    check_signable(predicate, type_uri, digest, allow_other_subject)
    out: list[AttestResult] = []
    if isinstance(signer, KeylessSigner):
        stmt = statement(type_uri, ref.docker_reference, digest, predicate, STATEMENT_V1)
        signed: list[bytes] = []

        def bundle() -> bytes:  # one signature (one log entry) for every layout that needs it
            if not signed:
                signed.append(signer.sign_statement_bundle(stmt))
            return signed[0]

        def legacy_layer() -> tuple[bytes, dict[str, str]]:
            b = bundle()
            return signer.legacy_envelope(b), signer.legacy(b).annotations

        for layout in layouts:
            if layout == "bundle":
                r = attach_bundle(client, ref, subject, b"", stmt, type_uri, signer.trust, replace, bundle=bundle)
            else:
                r = attach(client, ref, digest, legacy_layer, stmt, type_uri, signer.trust, replace)
            out.append(AttestResult(f"{ref.name}@{digest}", digest, type_uri, layout, r.attached, r.replaced, r.tag))
        return out
    stmt = statement(type_uri, ref.docker_reference, digest, predicate)
    env = envelope(signer, stmt)
    for layout in layouts:
        if layout == "bundle":
            r = attach_bundle(client, ref, subject, env, stmt, type_uri, signer.public_key, replace)
        else:
            r = attach(client, ref, digest, env, stmt, type_uri, signer.public_key, replace)
        out.append(AttestResult(f"{ref.name}@{digest}", digest, type_uri, layout, r.attached, r.replaced, r.tag))
    return out
