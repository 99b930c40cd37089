"""Who a Fulcio certificate names, and the identity policy a keyless signature must meet (cosign's
`--certificate-identity[-regexp]`, `--certificate-oidc-issuer[-regexp]` and the CI extensions).

Matching follows cosign (`pkg/cosign/verify.go` CheckCertificatePolicy): the identity is compared with every
subject alternative name (email, URI, Fulcio's username other-name); a regexp matches anywhere in the value
(Go's `regexp.MatchString`), as cosign's does; the issuer is the Fulcio issuer extension (the DER-encoded
v2 one, 1.3.6.1.4.1.57264.1.8, else the legacy raw 1.3.6.1.4.1.57264.1.1).
"""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from vouch.errors import InputError
from vouch.keyless.oids import CI_EXTENSIONS as CI_EXTENSIONS  # (re-exported)
from vouch.keyless.oids import FULCIO
from vouch.record import field, record

OID_ISSUER_V1 = x509.ObjectIdentifier(f"{FULCIO}.1")
OID_ISSUER_V2 = x509.ObjectIdentifier(f"{FULCIO}.8")
OID_USERNAME_SAN = x509.ObjectIdentifier(f"{FULCIO}.7")
def _der_utf8(raw: bytes) -> str | None:
    """The text of a DER UTF8String (tag 12), short or long length form; None when it is not one."""
    if len(raw) < 2 or raw[0] != 0x0C:
        return None
    n, i = raw[1], 2
    if n & 0x80:
        width = n & 0x7F
        if width == 0 or width > 4 or len(raw) < 2 + width:
            return None
        n, i = int.from_bytes(raw[2:2 + width], "big"), 2 + width
    if len(raw) != i + n:
        return None
    try:
        return raw[i:].decode("utf-8")
    except UnicodeDecodeError:
        return None


def _extension(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes | None:
    try:
        ext = cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None
    value = ext.value
    return value.value if isinstance(value, x509.UnrecognizedExtension) else None


@record(frozen=True)
class CertificateIdentity:
    """What a signing certificate says of its signer."""

    subjects: tuple[str, ...]  # the SAN values: emails, URIs, Fulcio usernames
    issuer: str  # the OIDC issuer ("" when the certificate names none)
    extensions: dict[str, str] = field(default_factory=dict)  # CI extension name (CI_EXTENSIONS) -> value
    issuer_v1: str = ""  # the legacy raw issuer extension (1.3.6.1.4.1.57264.1.1), which cosign prints too

    @property
    def subject(self) -> str:
        return self.subjects[0] if self.subjects else ""

    def to_json(self) -> dict[str, object]:
        return {"subject": self.subject, "issuer": self.issuer, **({"extensions": self.extensions}
                                                                   if self.extensions else {})}


def identity_of(cert: x509.Certificate) -> CertificateIdentity:
    subjects: list[str] = []
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        san = None
    if isinstance(san, x509.SubjectAlternativeName):
        for name in san:
            if isinstance(name, x509.RFC822Name | x509.UniformResourceIdentifier | x509.DNSName):
                subjects.append(name.value)
            elif isinstance(name, x509.OtherName) and name.type_id == OID_USERNAME_SAN:
                text = _der_utf8(name.value)
                if text is not None:
                    subjects.append(text)
    issuer, issuer_v1 = "", ""
    v2 = _extension(cert, OID_ISSUER_V2)
    if v2 is not None:
        issuer = _der_utf8(v2) or ""
    v1 = _extension(cert, OID_ISSUER_V1)
    if v1 is not None:
        try:
            issuer_v1 = v1.decode("utf-8")
        except UnicodeDecodeError:
            issuer_v1 = ""
    issuer = issuer or issuer_v1
    extensions: dict[str, str] = {}
    for name, oid in CI_EXTENSIONS.items():
        raw = _extension(cert, x509.ObjectIdentifier(oid))
        text = _der_utf8(raw) if raw is not None else None
        if text is not None:
            extensions[name] = text
    return CertificateIdentity(tuple(subjects), issuer, extensions, issuer_v1)


def _compile(pattern: str, flag: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InputError(f"{flag} {pattern[:80]!r} is not a valid regular expression: {exc}") from exc


@record(frozen=True)
class IdentityPolicy:
    """Who may have signed: an exact identity or a pattern, an exact issuer or a pattern, and exact values
    of CI extensions. Build it with `identity_policy`, which refuses a policy that names no identity."""

    identity: str | None = None
    identity_regexp: re.Pattern[str] | None = None
    issuer: str | None = None
    issuer_regexp: re.Pattern[str] | None = None
    extensions: tuple[tuple[str, str], ...] = ()

    def check(self, who: CertificateIdentity) -> str | None:
        """None when the certificate's identity meets the policy, else the reason it does not."""
        if self.identity is not None and self.identity not in who.subjects:
            return (f"the certificate's identity {who.subject[:200]!r} is not the expected {self.identity[:200]!r}")
        if self.identity_regexp is not None and not any(self.identity_regexp.search(s) for s in who.subjects):
            return (f"the certificate's identity {who.subject[:200]!r} does not match "
                    f"{self.identity_regexp.pattern[:200]!r}")
        if self.issuer is not None and who.issuer != self.issuer:
            return f"the certificate's OIDC issuer {who.issuer[:200]!r} is not the expected {self.issuer[:200]!r}"
        if self.issuer_regexp is not None and not self.issuer_regexp.search(who.issuer):
            return (f"the certificate's OIDC issuer {who.issuer[:200]!r} does not match "
                    f"{self.issuer_regexp.pattern[:200]!r}")
        for name, want in self.extensions:
            got = who.extensions.get(name)
            if got != want:
                return (f"the certificate's {name} is {got[:200]!r}, not the expected {want[:200]!r}"
                        if got is not None else f"the certificate has no {name} (expected {want[:200]!r})")
        return None

    def describe(self) -> str:
        who = self.identity or (f"/{self.identity_regexp.pattern}/" if self.identity_regexp else "any identity")
        by = self.issuer or (f"/{self.issuer_regexp.pattern}/" if self.issuer_regexp else "any issuer")
        return f"{who} from {by}"

    @staticmethod
    def exactly(who: CertificateIdentity) -> IdentityPolicy:
        """The policy that accepts only this identity from this issuer (the idempotence rule)."""
        return IdentityPolicy(identity=who.subject, issuer=who.issuer)


def identity_policy(identity: str | None, identity_regexp: str | None, issuer: str | None,
                    issuer_regexp: str | None, extensions: dict[str, str] | None = None) -> IdentityPolicy:
    """cosign's rule: keyless verification needs an identity (or its regexp) and an issuer (or its regexp)."""
    if identity and identity_regexp:
        raise InputError("give --certificate-identity or --certificate-identity-regexp, not both")
    if issuer and issuer_regexp:
        raise InputError("give --certificate-oidc-issuer or --certificate-oidc-issuer-regexp, not both")
    if not (identity or identity_regexp) or not (issuer or issuer_regexp):
        raise InputError("keyless verification needs --certificate-identity (or --certificate-identity-regexp) and "
                         "--certificate-oidc-issuer (or --certificate-oidc-issuer-regexp)")
    return IdentityPolicy(
        identity or None, _compile(identity_regexp, "--certificate-identity-regexp") if identity_regexp else None,
        issuer or None, _compile(issuer_regexp, "--certificate-oidc-issuer-regexp") if issuer_regexp else None,
        tuple(sorted((extensions or {}).items())))
