"""Shared CLI plumbing: global options, output, key loading, error rendering."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import typer
from cryptography.hazmat.primitives.asymmetric import ec

from vouch.errors import InputError
from vouch.keys.cosign import load_private_key, load_public_keys
from vouch.keys.files import read_key_file
from vouch.keys.password import read_password
from vouch.oci.client import RegistryClient, RegistryOptions
from vouch.oci.reference import Reference, parse_reference
from vouch.signing.signer import KeySigner

T = TypeVar("T")
R = TypeVar("R")


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


@dataclass
class State:
    output: OutputFormat = OutputFormat.text
    verbose: int = 0
    insecure: list[str] = field(default_factory=list)
    ca_file: str | None = None
    _client: RegistryClient | None = None

    def client(self) -> RegistryClient:
        if self._client is None:
            self._client = RegistryClient(RegistryOptions(insecure=frozenset(self.insecure), ca_file=self.ca_file))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    if not isinstance(obj, State):
        obj = State()
        ctx.find_root().obj = obj
    return obj


def setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="vouch: %(message)s", stream=sys.stderr)
    # httpx logs request URLs at INFO; keep them only at -vv (never headers, so no credentials).
    logging.getLogger("httpx").setLevel(logging.DEBUG if verbose > 1 else logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def emit(st: State, data: Any, text: str) -> None:
    if st.output == OutputFormat.json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    elif text:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def err(msg: str) -> None:
    sys.stderr.write(msg if msg.endswith("\n") else msg + "\n")


def ref_arg(text: str) -> Reference:
    return parse_reference(text)


def load_signer(key_ref: str) -> KeySigner:
    """A private key from a file, or from a Kubernetes Secret (`k8s://NAMESPACE/NAME`, as cosign)."""
    if key_ref.startswith("k8s://"):
        import os

        from vouch.keys.k8s import KubeClient, parse_ref

        ns, name = parse_ref(key_ref)
        data = KubeClient.from_kubeconfig().get_secret(ns, name)
        if "cosign.key" not in data:
            raise InputError(f"secret {ns}/{name} has no cosign.key")
        env = os.environ.get("COSIGN_PASSWORD")
        password = env.encode() if env is not None else data.get("cosign.password", b"")
        return KeySigner(load_private_key(data["cosign.key"], password))
    pem = read_key_file(key_ref)
    password = read_password(confirm=False)
    return KeySigner(load_private_key(pem, password))


def load_verifier_keys(key_refs: list[str]) -> list[ec.EllipticCurvePublicKey]:
    if not key_refs:
        raise InputError("give at least one --key (a public key PEM; a file may hold several)")
    keys: list[ec.EllipticCurvePublicKey] = []
    for ref in key_refs:
        if ref.startswith("k8s://"):
            from vouch.keys.k8s import KubeClient, parse_ref

            ns, name = parse_ref(ref)
            data = KubeClient.from_kubeconfig().get_secret(ns, name)
            if "cosign.pub" not in data:
                raise InputError(f"secret {ns}/{name} has no cosign.pub")
            keys.extend(load_public_keys(data["cosign.pub"], what=ref))
        else:
            keys.extend(load_public_keys(read_key_file(ref), what=ref))
    return keys


def parallel_map(fn: Callable[[T], R], items: list[T], concurrency: int) -> list[R]:
    """fn over items in a thread pool, results in input order; the first error is raised."""
    if len(items) <= 1 or concurrency <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
        return list(pool.map(fn, items))


def parse_annotations(values: list[str] | None) -> dict[str, str] | None:
    if not values:
        return None
    out: dict[str, str] = {}
    for v in values:
        k, sep, val = v.partition("=")
        if not sep or not k:
            raise InputError(f"annotation {v!r} is not key=value")
        out[k] = val
    return out
