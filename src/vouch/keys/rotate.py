"""Key rotation in a Kubernetes Secret, as a use case: plan the new Secret and the NAME-previous backup,
apply them in the order that never loses a key, and re-sign a release with the new key while the
previous key's signatures and SBOMs stay (the overlap). The CLI only reads flags and prints."""

from __future__ import annotations

import base64
import binascii
import contextlib
import secrets as pysecrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from vouch.errors import InputError, NotFoundError, VouchError
from vouch.keys.cosign import encrypt_private_key, generate_private_key, load_public_keys, public_key_pem
from vouch.keys.k8s import KubeClient, secret_manifest
from vouch.trust import PublicKey


@dataclass
class Rotation:
    key: ec.EllipticCurvePrivateKey  # the new key
    previous: PublicKey  # the key it replaces (the current Secret's cosign.pub)
    new_secret: dict[str, Any]  # the Secret manifest with the new key (and cosign.previous.pub)
    backup: dict[str, Any]  # NAME-previous: the old Secret's data, kept


def plan_rotation(old: dict[str, bytes], namespace: str, secret: str, password: bytes | None) -> Rotation:
    """The new key and both manifests; password None: a random one, stored in the Secret."""
    if "cosign.pub" not in old:
        raise InputError(f"secret {namespace}/{secret} has no cosign.pub; nothing to rotate")
    previous = load_public_keys(old["cosign.pub"], f"secret {namespace}/{secret}")[0]
    password = password if password is not None else pysecrets.token_urlsafe(32).encode()
    key = generate_private_key()
    backup = secret_manifest(namespace, f"{secret}-previous", old.get("cosign.key", b""), old["cosign.pub"],
                             old.get("cosign.password", b""))
    new_secret = secret_manifest(namespace, secret, encrypt_private_key(key, password), public_key_pem(key),
                                 password, previous_public_pem=public_key_pem(previous))
    return Rotation(key, previous, new_secret, backup)


def apply_in_cluster(kube: KubeClient, namespace: str, secret: str, rotation: Rotation) -> None:
    """The previous key is made safe in NAME-previous before the live Secret is replaced."""
    with contextlib.suppress(NotFoundError):
        kube.delete_secret(namespace, f"{secret}-previous")  # only the last previous key is kept
    kube.create_secret(rotation.backup)
    kube.delete_secret(namespace, secret)
    try:
        kube.create_secret(rotation.new_secret)
    except VouchError as exc:
        raise type(exc)(f"{exc}; the previous key is safe in {namespace}/{secret}-previous: run the rotation "
                        "again") from exc


def secret_from_manifest(path: str) -> tuple[dict[str, bytes], str, str]:
    """The data, namespace and name of a Secret manifest (YAML, as `keys init` prints it)."""
    from vouch.yamlsafe import load_yaml, read_limited

    try:
        raw = read_limited(Path(path))
    except OSError as exc:
        raise InputError(f"cannot read Secret manifest {path}: {exc.strerror or exc}") from exc
    doc = load_yaml(raw, f"Secret manifest {path}")
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not (isinstance(doc, dict) and doc.get("kind") == "Secret" and isinstance(meta, dict)
            and isinstance(meta.get("name"), str) and isinstance(data, dict)):
        raise InputError(f"{path} is not a Secret manifest with metadata.name and data")
    try:
        decoded = {str(k): base64.b64decode(str(v), validate=True) for k, v in data.items()}
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"Secret manifest {path}: a data value is not base64") from exc
    return decoded, str(meta.get("namespace") or "default"), meta["name"]
