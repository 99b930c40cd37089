"""`vouch attest`: a signed in-toto statement attached to an image digest, in one or both layouts, by a key
or keyless. Checks what must never be signed (a BOM dated in the future, about another image) first;
keyless, signs only when some layout needs a new attestation (each signature is a log entry)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vouch.errors import InputError
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.signing.attestation import PREDICATE_TYPES, STATEMENT_V1, statement
from vouch.signing.signer import KeySigner, is_keyless
from vouch.verify.bomfacts import age_problem, bom_subject_problem, bom_time

if TYPE_CHECKING:
    from vouch.keyless.sign import KeylessSigner


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
    from vouch.layouts import layouts as by_name
    from vouch.layouts import signed_statement

    keyless = is_keyless(signer)
    stmt = statement(type_uri, ref.docker_reference, digest, predicate, STATEMENT_V1) if keyless \
        else statement(type_uri, ref.docker_reference, digest, predicate)
    signed = signed_statement(signer, stmt, type_uri)  # signs when the first layout needs it, once
    out: list[AttestResult] = []
    for layout in by_name(layouts):
        r = layout.attach(client, ref, subject, signed, replace)
        out.append(AttestResult(f"{ref.name}@{digest}", digest, type_uri, layout.name, r.attached, r.replaced,
                                r.where))
    return out
