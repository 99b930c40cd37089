"""Keyless signing through the PyPI `sigstore` library: a short-lived Fulcio certificate for the pipeline's
OIDC identity, each signature logged in the transparency log the signing config names (and timestamped by
its TSAs). What the library does not do is ours: cosign's legacy layer annotations (certificate, chain,
the Rekor v1 bundle with its SET), and the identity the certificate names (for idempotent re-runs).

Two calls into sigstore-python are not public API: `Signer._signing_cert()` (the certificate it was issued,
to know our identity before anything is logged) — there is no public accessor; it is read once.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from vouch.bundle.model import Bundle, parse_bundle
from vouch.bundle.trustroot import TrustedRoot, parse_trusted_root
from vouch.errors import InputError, RegistryError, VouchError
from vouch.keyless import certs
from vouch.keyless.annotations import ANN_BUNDLE as ANN_BUNDLE  # (re-exported)
from vouch.keyless.annotations import ANN_CERTIFICATE as ANN_CERTIFICATE
from vouch.keyless.annotations import ANN_CHAIN as ANN_CHAIN
from vouch.keyless.annotations import ANN_RFC3161 as ANN_RFC3161
from vouch.keyless.identity import CertificateIdentity, IdentityPolicy, identity_of
from vouch.keyless.trust import KeylessTrust
from vouch.signing.attestation import STATEMENT_V1 as STATEMENT_V1  # (re-exported: keyless signs v1)
from vouch.signing.payload import go_json

SIGNING_CONFIG_TYPE = "application/vnd.dev.sigstore.signingconfig.v0.2+json"
TRUST_CONFIG_TYPE = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"


def read_token(value: str | None) -> str:
    """The OIDC identity token: --identity-token (the token, or a file holding it: a projected Kubernetes
    service-account token), else SIGSTORE_ID_TOKEN, else the CI's ambient credential (GitHub Actions,
    GitLab, Buildkite, CircleCI, Google Cloud: sigstore's detect_credential)."""
    token = value or os.environ.get("SIGSTORE_ID_TOKEN") or ""
    if token and "." not in token and Path(token).is_file():
        try:
            token = Path(token).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the identity token file {value}: {exc}") from exc
    if not token:
        from sigstore.oidc import IdentityError, detect_credential

        try:
            token = detect_credential() or ""
        except IdentityError as exc:
            raise InputError(f"no identity token: the CI's ambient credential failed ({exc})") from exc
    if not token:
        raise InputError("keyless signing needs an OIDC identity token: --identity-token TOKEN_OR_FILE, "
                         "SIGSTORE_ID_TOKEN, or a CI that provides one (GitHub Actions, GitLab id_tokens)")
    return token.strip()


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc


def _service(url: str, version: int) -> dict[str, object]:
    return {"url": url, "majorApiVersion": version, "validFor": {"start": "1970-01-01T00:00:00Z"},
            "operator": "vouch"}


def trust_config_json(*, trust_config: str | None, signing_config: str | None, trusted_root: str | None,
                      fulcio_url: str | None, rekor_url: str | None, tsa_url: str | None = None,
                      rekor_version: int = 1) -> bytes | None:
    """A ClientTrustConfig for sigstore-python from cosign's flags, or None for the public-good instance.
    --trust-config FILE (sigstore-python's); --signing-config FILE with --trusted-root FILE (cosign 3's);
    --fulcio-url and --rekor-url with --trusted-root (cosign 2's)."""
    if trust_config:
        if signing_config or fulcio_url or rekor_url:
            raise InputError("--trust-config holds the signing config: leave out --signing-config, --fulcio-url and "
                             "--rekor-url")
        return _read(trust_config, "trust config")
    if signing_config and (fulcio_url or rekor_url):
        raise InputError("--signing-config and --fulcio-url/--rekor-url exclude each other (as in cosign)")
    if not (signing_config or fulcio_url or rekor_url):
        if trusted_root:
            raise InputError("--trusted-root alone does not say where to sign: add --signing-config FILE, or "
                             "--fulcio-url and --rekor-url")
        return None
    if not trusted_root:
        raise InputError("a private Sigstore instance needs its --trusted-root FILE (the Fulcio, Rekor and CT keys "
                         "to check what it answers)")
    root = json.loads(_read(trusted_root, "trusted root"))
    if signing_config:
        config = json.loads(_read(signing_config, "signing config"))
    else:
        if not (fulcio_url and rekor_url):
            raise InputError("give both --fulcio-url and --rekor-url (or --signing-config FILE)")
        config = {"mediaType": SIGNING_CONFIG_TYPE, "caUrls": [_service(fulcio_url, 1)], "oidcUrls": [],
                  "rekorTlogUrls": [_service(rekor_url, rekor_version)],
                  "tsaUrls": [_service(tsa_url, 1)] if tsa_url else [],
                  "rekorTlogConfig": {"selector": "ANY"}, "tsaConfig": {"selector": "ANY"}}
    return json.dumps({"mediaType": TRUST_CONFIG_TYPE, "trustedRoot": root, "signingConfig": config}).encode()


@dataclass(frozen=True)
class LegacyMaterial:
    """What cosign's legacy layer carries for a keyless signature (annotations of the `.sig`/`.att` layer)."""

    signature: bytes
    annotations: dict[str, str]


class KeylessSigner:
    """Signs as the identity of an OIDC token. One Fulcio certificate per signer (sigstore-python caches it),
    so a release signs all its images under one certificate."""

    def __init__(self, token: str, trust_config: bytes | None) -> None:
        from sigstore.models import ClientTrustConfig
        from sigstore.oidc import IdentityError, IdentityToken
        from sigstore.sign import Signer, SigningContext

        try:
            config = ClientTrustConfig.from_json(trust_config.decode()) if trust_config is not None \
                else ClientTrustConfig.production()
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"the trust config is not a sigstore ClientTrustConfig: {str(exc)[:200]}") from exc
        except Exception as exc:  # TUF and network errors of the public-good instance
            raise RegistryError(f"cannot fetch the Sigstore public-good trust root (TUF): {str(exc)[:200]}; offline, "
                                "pass --trusted-root and --signing-config (or --fulcio-url and --rekor-url)") from exc
        try:
            identity_token = IdentityToken(token)
        except IdentityError as exc:
            raise InputError(f"the identity token is not usable: {exc}") from exc
        root_json = json.loads(trust_config)["trustedRoot"] if trust_config is not None else None
        self.trusted_root: TrustedRoot = (parse_trusted_root(json.dumps(root_json).encode(), "the trust config")
                                          if root_json is not None else _production_root())
        try:
            ctx = SigningContext.from_trust_config(config)
            self._signer = Signer(identity_token, ctx, cache=True)
            cert: x509.Certificate = self._signer._signing_cert()
        except VouchError:
            raise
        except Exception as exc:  # sigstore raises many kinds for a refused token or a dead Fulcio
            raise RegistryError(f"Fulcio did not issue a signing certificate: {str(exc)[:300]}") from exc
        self.certificate = cert
        self.identity: CertificateIdentity = identity_of(cert)
        self.chain = certs.verify_chain(cert, self.trusted_root, cert.not_valid_before_utc)

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def trust(self) -> KeylessTrust:
        """Our own identity under our trusted root: what an existing signature must meet to count as ours."""
        return KeylessTrust(self.trusted_root, IdentityPolicy.exactly(self.identity))

    def sign_blob_bundle(self, payload: bytes) -> bytes:
        """A sigstore bundle (JSON) of a message signature over payload, logged."""
        raw: bytes = self._call("signing and logging", lambda: self._signer.sign_artifact(payload).to_json().encode())
        return raw

    def sign_statement_bundle(self, statement: bytes) -> bytes:
        """A sigstore bundle (JSON) of a DSSE envelope over an in-toto v1 statement, logged."""
        from sigstore import dsse
        from sigstore.errors import Error

        try:
            stmt = dsse.Statement(statement)
        except Error as exc:
            raise InputError(f"sigstore-python refuses the statement: {str(exc)[:200]}") from exc
        raw: bytes = self._call("signing and logging", lambda: self._signer.sign_dsse(stmt).to_json().encode())
        return raw

    def _call(self, what: str, fn: object) -> bytes:
        if dt.datetime.now(dt.UTC) >= self.certificate.not_valid_after_utc:
            raise RegistryError("the Fulcio certificate expired during the run (it is valid for 10 minutes): run "
                                "again with a fresh identity token; what was signed stays, a re-run skips it")
        try:
            out = fn()  # type: ignore[operator]
        except VouchError:
            raise
        except Exception as exc:  # a refused or failed log upload, a dead TSA
            raise RegistryError(f"{what} failed: {str(exc)[:300]}") from exc
        assert isinstance(out, bytes)
        return out

    @staticmethod
    def legacy_envelope(bundle_json: bytes) -> bytes:
        """The DSSE envelope of a signed bundle as a legacy `.att` layer holds it: the bytes whose SHA-256 the
        Rekor v1 dsse entry records as envelopeHash (RFC 8785: sorted keys, no whitespace), which cosign
        checks against the layer."""
        envelope = json.loads(bundle_json)["dsseEnvelope"]
        return json.dumps(envelope, separators=(",", ":"), sort_keys=True, ensure_ascii=True).encode()

    def legacy(self, bundle_json: bytes) -> LegacyMaterial:
        """cosign's legacy annotations for a signed bundle: the certificate, the chain, the Rekor v1 bundle."""
        return legacy_material(parse_bundle(bundle_json), self.chain)


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def legacy_material(bundle: Bundle, chain: list[x509.Certificate]) -> LegacyMaterial:
    """The layer annotations cosign 2 writes for a keyless signature (pkg/oci/static, pkg/cosign/bundle)."""
    if not bundle.material.certificates:
        raise InputError("the bundle has no signing certificate")
    leaf = certs.load_der_certificate(bundle.material.certificates[0], "the signing certificate")
    entries = [e for e in bundle.material.tlog_entries if e.inclusion_promise is not None and e.integrated_time]
    if not entries:
        raise InputError("the legacy layout needs a Rekor v1 log entry (a signed entry timestamp): the signing config "
                         "names a Rekor v2 log; sign with --layout bundle, or with a Rekor v1 signing config")
    e = entries[0]
    assert e.inclusion_promise is not None
    rekor_bundle = {"SignedEntryTimestamp": base64.b64encode(e.inclusion_promise).decode(),
                    "Payload": {"body": base64.b64encode(e.canonicalized_body).decode(),
                                "integratedTime": e.integrated_time, "logIndex": e.log_index,
                                "logID": e.log_id.hex()}}
    annotations = {ANN_CERTIFICATE: _pem(leaf), ANN_CHAIN: "".join(_pem(c) for c in chain),
                   ANN_BUNDLE: go_json(rekor_bundle).decode()}
    if bundle.material.signed_timestamps:
        annotations[ANN_RFC3161] = go_json(
            {"SignedRFC3161Timestamp": base64.b64encode(bundle.material.signed_timestamps[0]).decode()}).decode()
    return LegacyMaterial(bundle.signature, annotations)


def _production_root() -> TrustedRoot:
    from vouch.bundle.trustroot import production_trusted_root

    return production_trusted_root()
