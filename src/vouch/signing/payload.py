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


def parse_payload(payload: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(payload)
        critical = obj["critical"]
        _ = critical["image"]["docker-manifest-digest"]
        _ = critical["type"]
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError("signature payload is not a cosign simple-signing payload") from exc
    if not isinstance(obj, dict):
        raise VerificationError("signature payload is not a JSON object")
    return obj
