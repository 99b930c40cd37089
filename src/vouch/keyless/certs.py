"""The certificate half of keyless verification: the Fulcio chain at a verified time, the embedded SCT
against the trusted root's CT logs, the code-signing profile, and RFC 3161 signed timestamps.

The steps are sigstore-python's (`sigstore/verify/verifier.py`) and sigstore-go's: a path to a Fulcio
root of the trusted root, valid at each verified time (a SET's integrated time, a TSA's signed time); the
leaf's precertificate SCT signed by a CT log of the trusted root; digitalSignature key usage and the
codeSigning extended key usage.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.certificate_transparency import LogEntryType
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
)
from cryptography.x509.verification import (
    VerificationError as X509VerificationError,
)

from vouch import limits
from vouch.bundle.trustroot import CertificateAuthority, TrustedRoot
from vouch.errors import VerificationError

_PRECERT_SIGNING_EKU = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.4")


def load_der_certificate(der: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise VerificationError(f"{what} is not an X.509 certificate") from exc


def is_self_signed(cert: x509.Certificate) -> bool:
    """Issuer equals subject and the certificate's own key verifies it (a root)."""
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _when(t: dt.datetime | None) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t is not None else "open"


def _authorities_at(authorities: tuple[CertificateAuthority, ...], at: dt.datetime) -> list[CertificateAuthority]:
    return [a for a in authorities if a.certificates and a.valid_for.contains(at)]


def verify_chain(leaf: x509.Certificate, root: TrustedRoot, at: dt.datetime) -> list[x509.Certificate]:
    """The leaf's path to a Fulcio root of the trusted root (issuer first), valid at `at`; VerificationError
    with the reason otherwise. Intermediates come from the trusted root only, never from the signature."""
    cas = _authorities_at(root.certificate_authorities, at)
    if not cas:
        raise VerificationError(f"the trusted root ({root.source}) has no Fulcio certificate authority valid at "
                                f"{_when(at)}")
    problems: list[str] = []
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(x509.ExtendedKeyUsage, Criticality.NON_CRITICAL,
                                                                     None)
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(x509.ExtendedKeyUsage, Criticality.NON_CRITICAL,
                                                                     None)
    for ca in cas:
        certs = [load_der_certificate(c, f"a certificate of the trusted root ({root.source})")
                 for c in ca.certificates]
        verifier = (PolicyBuilder().store(Store([certs[-1]])).time(at.replace(tzinfo=None))
                    .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy).build_client_verifier())
        try:
            return list(verifier.verify(leaf, certs[:-1]).chain[1:])
        except (X509VerificationError, x509.UnsupportedGeneralNameType, ValueError) as exc:
            problems.append(str(exc)[:200])
    raise VerificationError(f"the signing certificate does not chain to a Fulcio root of the trusted root at "
                            f"{_when(at)} ({problems[0] if problems else 'no path'})")


def check_code_signing(leaf: x509.Certificate) -> None:
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise VerificationError("the signing certificate has no key usage or extended key usage (not a Fulcio "
                                "code-signing certificate)") from exc
    if not usage.digital_signature:
        raise VerificationError("the signing certificate's key usage does not allow digital signatures")
    if ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        raise VerificationError("the signing certificate is not for code signing (extended key usage)")


def _issuer_of(chain: list[x509.Certificate]) -> x509.Certificate:
    issuer = chain[0]
    try:
        eku = issuer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if _PRECERT_SIGNING_EKU in eku and len(chain) > 1:
            return chain[1]  # a precertificate signing certificate signs for its issuer (RFC 6962 §3.1)
    except x509.ExtensionNotFound:
        pass
    return issuer


def verify_sct(leaf: x509.Certificate, chain: list[x509.Certificate], root: TrustedRoot) -> None:
    """The leaf's embedded SCT verifies with a CT log key of the trusted root (RFC 6962 §3.2)."""
    try:
        scts = list(leaf.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value)
    except x509.ExtensionNotFound as exc:
        raise VerificationError("the signing certificate has no embedded SCT (not logged in a CT log); "
                                "--insecure-ignore-sct passes over it") from exc
    if not scts or len(scts) > limits.BUNDLE_MAX_TLOG_ENTRIES:
        raise VerificationError(f"the signing certificate carries {len(scts)} SCTs")
    if not chain:
        raise VerificationError("the SCT cannot be checked without the certificate's issuer")
    issuer_key = _issuer_of(chain).public_key()
    issuer_hash = hashlib.sha256(issuer_key.public_bytes(serialization.Encoding.DER,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo)).digest()
    tbs = leaf.tbs_precertificate_bytes
    problems: list[str] = []
    for sct in scts:
        if sct.entry_type != LogEntryType.PRE_CERTIFICATE:
            problems.append("an SCT is not for a precertificate")
            continue
        log = next((c for c in root.ctlogs if c.log_id == sct.log_id), None)
        if log is None:
            problems.append(f"an SCT is from a CT log the trusted root does not name (log id {sct.log_id.hex()[:16]}…)")
            continue
        signed = (struct.pack(">BBQH", sct.version.value, 0, int(sct.timestamp.replace(tzinfo=dt.UTC).timestamp()
                                                                    * 1000), 1)
                  + issuer_hash + len(tbs).to_bytes(3, "big") + tbs
                  + len(sct.extension_bytes).to_bytes(2, "big") + sct.extension_bytes)
        key = log.public_key()
        algorithm = sct.signature_hash_algorithm
        if not isinstance(algorithm, hashes.SHA256):
            problems.append("an SCT uses another hash than SHA-256")
            continue
        try:
            if isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(sct.signature, signed, ec.ECDSA(hashes.SHA256()))
            elif isinstance(key, rsa.RSAPublicKey):
                from cryptography.hazmat.primitives.asymmetric import padding
                key.verify(sct.signature, signed, padding.PKCS1v15(), hashes.SHA256())
            else:
                problems.append("a CT log key of the trusted root is neither ECDSA nor RSA")
                continue
        except InvalidSignature:
            problems.append(f"the SCT does not verify with the key of CT log {log.base_url}")
            continue
        return
    raise VerificationError(f"the signing certificate's SCT is not valid: {problems[0]}")


def verify_timestamps(stamps: tuple[bytes, ...], signature: bytes, root: TrustedRoot) -> list[dt.datetime]:
    """The times of the RFC 3161 timestamps over the signature that a TSA of the trusted root signed; a
    timestamp no trusted TSA verifies is an error (it was meant as evidence)."""
    if not stamps:
        return []
    from rfc3161_client import VerifierBuilder, decode_timestamp_response
    from rfc3161_client.errors import VerificationError as TsaError

    if len(stamps) > limits.BUNDLE_MAX_TIMESTAMPS or len(set(stamps)) != len(stamps):
        raise VerificationError("the signature carries too many or duplicate signed timestamps")
    times: list[dt.datetime] = []
    for raw in stamps:
        try:
            response = decode_timestamp_response(raw)
        except ValueError as exc:
            raise VerificationError("a signed timestamp is not an RFC 3161 timestamp response") from exc
        verified: dt.datetime | None = None
        for tsa in root.timestamp_authorities:
            if len(tsa.certificates) < 2:
                continue
            certs = [load_der_certificate(c, "a TSA certificate of the trusted root") for c in tsa.certificates]
            builder = VerifierBuilder().tsa_certificate(certs[0]).add_root_certificate(certs[-1])
            for c in certs[1:-1]:
                builder = builder.add_intermediate_certificate(c)
            try:
                builder.build().verify_message(response, signature)
            except TsaError:
                continue
            gen = response.tst_info.gen_time
            gen = gen if gen.tzinfo else gen.replace(tzinfo=dt.UTC)
            if tsa.valid_for.contains(gen):
                verified = gen
                break
        if verified is None:
            raise VerificationError(f"a signed timestamp does not verify with any timestamp authority of the "
                                    f"trusted root ({root.source})")
        times.append(verified)
    return times
