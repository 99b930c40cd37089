"""`trusted_root.json` (protobuf-specs `dev.sigstore.trustroot.v1.TrustedRoot`): whom a bundle's evidence
must come from.

Transparency logs are used now (their keys verify log entries); certificate authorities, CT logs and
timestamp authorities are parsed and kept for keyless verification. `production_trusted_root()` is the
Sigstore public-good root the `sigstore` package ships (what cosign and sigstore-python use offline).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from vouch import limits
from vouch.bundle.model import b64decode, load_json
from vouch.errors import InputError
from vouch.record import record
from vouch.trust import PublicKey, load_public_key_der

TRUSTED_ROOT_TYPES = frozenset({
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    "application/vnd.dev.sigstore.trustedroot.v0.1+json",
    "application/vnd.dev.sigstore.trustedroot.v0.2+json",
})
PRODUCTION = "Sigstore public-good trusted root"


@record(frozen=True)
class ValidFor:
    start: dt.datetime | None  # None: the root names no start (a log key without one is never trusted)
    end: dt.datetime | None  # None: open-ended

    def contains(self, when: dt.datetime) -> bool:
        """start <= when <= end (the end is inclusive, as sigstore-go and sigstore-python read it)."""
        if self.start is None or when < self.start:
            return False
        return self.end is None or when <= self.end


@record(frozen=True)
class LogKey:
    """A transparency log (Rekor) or CT log: its key, the id entries name it by, and when the key is valid."""

    base_url: str
    hash_algorithm: str
    public_key_der: bytes
    key_details: str
    valid_for: ValidFor
    log_id: bytes

    def public_key(self) -> PublicKey:
        return load_public_key_der(self.public_key_der, f"the trusted root's key for {self.base_url}")


@record(frozen=True)
class CertificateAuthority:
    """A Fulcio CA or a timestamp authority: its chain (DER, leaf or intermediate first) and validity."""

    subject: dict[str, str]
    uri: str
    certificates: tuple[bytes, ...]
    valid_for: ValidFor


@record(frozen=True)
class TrustedRoot:
    media_type: str
    tlogs: tuple[LogKey, ...]
    certificate_authorities: tuple[CertificateAuthority, ...]
    ctlogs: tuple[LogKey, ...]
    timestamp_authorities: tuple[CertificateAuthority, ...]
    source: str  # for messages: the file it came from, or PRODUCTION

    def tlog(self, log_id: bytes) -> LogKey | None:
        return next((t for t in self.tlogs if t.log_id == log_id), None)


class _Bad(Exception):
    pass


def _obj(v: Any, where: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _Bad(f"{where} is missing or not an object")
    return v


def _str(v: Any, where: str, required: bool = True) -> str:
    if v is None and not required:
        return ""
    if not isinstance(v, str):
        raise _Bad(f"{where} is missing or not a string")
    return v


def _bytes(v: Any, where: str) -> bytes:
    try:
        out = b64decode(_str(v, where))
    except ValueError as exc:
        raise _Bad(f"{where} is not base64") from exc
    if not out:
        raise _Bad(f"{where} is empty")
    return out


def _time(v: Any, where: str) -> dt.datetime | None:
    if v is None:
        return None
    try:
        t = dt.datetime.fromisoformat(_str(v, where))
    except ValueError as exc:
        raise _Bad(f"{where} is not an RFC 3339 time") from exc
    if t.tzinfo is None:
        raise _Bad(f"{where} has no time zone")
    return t


def _valid_for(v: Any, where: str) -> ValidFor:
    if v is None:
        return ValidFor(None, None)
    o = _obj(v, where)
    return ValidFor(_time(o.get("start"), f"{where}.start"), _time(o.get("end"), f"{where}.end"))


def _list(v: Any, where: str) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise _Bad(f"{where} is not a list")
    return v


def _log(v: Any, where: str) -> LogKey:
    o = _obj(v, where)
    key = _obj(o.get("publicKey"), f"{where}.publicKey")
    log_id = _obj(o.get("logId"), f"{where}.logId")
    return LogKey(_str(o.get("baseUrl"), f"{where}.baseUrl", required=False),
                  _str(o.get("hashAlgorithm"), f"{where}.hashAlgorithm", required=False),
                  _bytes(key.get("rawBytes"), f"{where}.publicKey.rawBytes"),
                  _str(key.get("keyDetails"), f"{where}.publicKey.keyDetails", required=False),
                  _valid_for(key.get("validFor"), f"{where}.publicKey.validFor"),
                  _bytes(log_id.get("keyId"), f"{where}.logId.keyId"))


def _authority(v: Any, where: str) -> CertificateAuthority:
    o = _obj(v, where)
    subject = o.get("subject")
    subject = {str(k): str(x) for k, x in subject.items()} if isinstance(subject, dict) else {}
    chain = _obj(o.get("certChain"), f"{where}.certChain")
    certs = tuple(_bytes(_obj(c, f"{where}.certChain.certificates[{i}]").get("rawBytes"),
                         f"{where}.certChain.certificates[{i}].rawBytes")
                  for i, c in enumerate(_list(chain.get("certificates"), f"{where}.certChain.certificates")))
    return CertificateAuthority(subject, _str(o.get("uri"), f"{where}.uri", required=False), certs,
                                _valid_for(o.get("validFor"), f"{where}.validFor"))


def parse_trusted_root(raw: bytes, source: str) -> TrustedRoot:
    """A trusted root from its JSON; InputError naming source and the field otherwise."""
    if len(raw) > limits.MAX_TRUSTED_ROOT_BYTES:
        raise InputError(f"trusted root {source} is {len(raw)} bytes, over the {limits.MAX_TRUSTED_ROOT_BYTES}-byte "
                         "limit; refusing it")
    try:
        obj = load_json(raw)
    except ValueError as exc:
        raise InputError(f"trusted root {source} is not valid JSON") from exc
    try:
        top = _obj(obj, "the document")
        media_type = _str(top.get("mediaType"), "mediaType")
        if media_type not in TRUSTED_ROOT_TYPES:
            raise _Bad(f"mediaType {media_type[:80]!r} is not a sigstore trusted root's")
        root = TrustedRoot(
            media_type,
            tuple(_log(t, f"tlogs[{i}]") for i, t in enumerate(_list(top.get("tlogs"), "tlogs"))),
            tuple(_authority(c, f"certificateAuthorities[{i}]")
                  for i, c in enumerate(_list(top.get("certificateAuthorities"), "certificateAuthorities"))),
            tuple(_log(t, f"ctlogs[{i}]") for i, t in enumerate(_list(top.get("ctlogs"), "ctlogs"))),
            tuple(_authority(c, f"timestampAuthorities[{i}]")
                  for i, c in enumerate(_list(top.get("timestampAuthorities"), "timestampAuthorities"))),
            source)
    except _Bad as exc:
        raise InputError(f"trusted root {source}: {exc}") from exc
    return root


def load_trusted_root(path: str | Path) -> TrustedRoot:
    p = Path(path)
    try:
        with p.open("rb") as f:
            raw = f.read(limits.MAX_TRUSTED_ROOT_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read the trusted root {p}: {exc.strerror or exc}") from exc
    return parse_trusted_root(raw, str(p))


def production_trusted_root() -> TrustedRoot:
    """The public-good root as the installed `sigstore` package ships it (offline; refreshed with the package)."""
    from importlib import resources

    try:
        ref = resources.files("sigstore") / "_store" / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev" / "trusted_root.json"
        raw = ref.read_bytes()
    except (ModuleNotFoundError, OSError) as exc:
        raise InputError("the Sigstore public-good trusted root is not available (it ships with the Python package "
                         "sigstore); pass --trusted-root FILE") from exc
    return parse_trusted_root(raw, PRODUCTION)
