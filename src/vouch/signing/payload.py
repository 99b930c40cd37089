"""The simple-signing payload cosign signs (Go json.Marshal byte order, no spaces)."""

from __future__ import annotations

import json
from typing import Any

from vouch.errors import VerificationError

SIGNATURE_TYPE = "cosign container image signature"


def simple_signing_payload(docker_reference: str, digest: str, annotations: dict[str, str] | None) -> bytes:
    """Bytes as cosign writes them: optional is null without annotations, else keys sorted."""
    optional: dict[str, str] | None = dict(sorted(annotations.items())) if annotations else None
    obj = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": optional,
    }
    return go_json(obj)


def go_json(obj: Any) -> bytes:
    """json.Marshal-compatible encoding for our payloads: compact, HTML characters escaped as Go does."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text.encode()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_json(data: bytes | str) -> Any:
    """json.loads as Go's encoding/json reads: UTF-8 only (json.loads would also take UTF-16/32 bytes, which
    callers then fail to print), NaN/Infinity refused; too-deep nesting is a ValueError too."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc


def _not_simple_signing(why: str) -> VerificationError:
    return VerificationError(f"signature payload is not a cosign simple-signing payload: {why}")


def parse_payload(payload: bytes) -> dict[str, Any]:
    """The payload as JSON, its shape checked: callers may index critical.identity/image/type and optional."""
    try:
        obj = loads_json(payload)
    except ValueError as exc:
        raise _not_simple_signing("it is not JSON") from exc
    if not isinstance(obj, dict):
        raise VerificationError("signature payload is not a JSON object")
    critical = obj.get("critical")
    if not isinstance(critical, dict):
        raise _not_simple_signing("critical is missing or not an object")
    identity = critical.get("identity")
    if not isinstance(identity, dict):
        raise _not_simple_signing("critical.identity is missing or not an object")
    if "docker-reference" in identity and not isinstance(identity["docker-reference"], str):
        raise _not_simple_signing("critical.identity.docker-reference is not a string")
    image = critical.get("image")
    if not isinstance(image, dict):
        raise _not_simple_signing("critical.image is missing or not an object")
    if not isinstance(image.get("docker-manifest-digest"), str):
        raise _not_simple_signing("critical.image.docker-manifest-digest is missing or not a string")
    if not isinstance(critical.get("type"), str):
        raise _not_simple_signing("critical.type is missing or not a string")
    if obj.get("optional") is not None and not isinstance(obj["optional"], dict):
        raise _not_simple_signing("optional is neither null nor an object")
    return obj
