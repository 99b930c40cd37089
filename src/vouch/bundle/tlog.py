"""A bundle's Rekor v1 transparency-log entries, checked offline against the bundle and the trust root.

For each entry from a log the trust root names (others are passed over, as sigstore-go does):
- the canonicalized body records this bundle: a hashedrekord 0.0.1 entry the artifact's digest, the
  signature and the signer's key (PEM, base64); a dsse 0.0.1 or intoto 0.0.2 entry the envelope's
  payload hash, signature(s) and key;
- the inclusion promise (SET) is the log key's signature over the RFC 8785 canonical JSON of
  {body, integratedTime, logID (hex), logIndex}, the key valid at the integrated time;
- the inclusion proof (RFC 6962 audit path) leads from the body's leaf hash to rootHash, and the checkpoint
  (a signed note, key hint = the log id's first 4 bytes) is signed by the log and commits to that rootHash
  and treeSize;
- the integrated time is not in the future.
At least one entry must pass. Rekor v2 entries (hashedrekord 0.0.2, no integrated time: the time comes from
a signed timestamp) are checked the same way: body, inclusion proof, checkpoint (Ed25519 key hint = the
log id's first 4 bytes, the log id being SHA-256 over origin, newline, 0x01 and the key).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from typing import Any

from cryptography.hazmat.primitives import serialization

from vouch import limits
from vouch.bundle.model import DIGEST_SIZES, Bundle, HashOutput, InclusionProof, TlogEntry, b64decode, load_json
from vouch.bundle.trustroot import LogKey, TrustedRoot
from vouch.errors import KeyError_, VerificationError
from vouch.keys.cosign import pem_blocks
from vouch.record import record
from vouch.trust import PublicKey, signature_verifies, spki_der

SUPPORTED = {("hashedrekord", "0.0.1"), ("hashedrekord", "0.0.2"), ("dsse", "0.0.1"), ("intoto", "0.0.2")}


@record(frozen=True)
class TlogResult:
    verified: int  # entries that passed
    integrated_time: int | None  # the earliest integrated time a verified SET vouches for
    notes: tuple[str, ...]  # entries passed over, and why


# ---- RFC 6962 / RFC 9162 Merkle inclusion ------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: tuple[bytes, ...]) -> bytes:
    """The root hash an audit path leads to (RFC 9162 §2.1.3.2); VerificationError for a path of the wrong length."""
    if index >= size:
        raise VerificationError(f"the inclusion proof's log index {index} is not below its tree size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != 32:
            raise VerificationError("the inclusion proof holds a hash that is not 32 bytes")
        if sn == 0:
            raise VerificationError("the inclusion proof has more hashes than its tree size allows")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError("the inclusion proof has fewer hashes than its tree size needs")
    return r


# ---- checkpoints (signed notes) -------------------------------------------------------------------------------


@record(frozen=True)
class Checkpoint:
    note: bytes  # the signed text: origin, size, root hash, extension lines, each ending in a newline
    origin: str
    size: int
    root_hash: bytes
    signatures: tuple[tuple[str, bytes], ...]  # (name, key hint (4 bytes) + signature)


def parse_checkpoint(text: str) -> Checkpoint:
    """A signed checkpoint (c2sp.org/tlog-checkpoint in a c2sp.org/signed-note); VerificationError otherwise."""
    head, sep, tail = text.partition("\n\n")
    if not sep:
        raise VerificationError("malformed checkpoint: no blank line between the note and its signatures")
    lines = head.split("\n")
    if len(lines) < 3 or not lines[0]:
        raise VerificationError("malformed checkpoint: it needs an origin, a tree size and a root hash")
    if not re.fullmatch(r"[0-9]{1,20}", lines[1]):
        raise VerificationError("malformed checkpoint: the tree size is not a number")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except ValueError as exc:
        raise VerificationError("malformed checkpoint: the root hash is not base64") from exc
    if not tail.endswith("\n"):
        raise VerificationError("malformed checkpoint: the signature lines do not end with a newline")
    sigs = []
    for line in tail[:-1].split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "\u2014" or not parts[1]:
            raise VerificationError("malformed checkpoint: a signature line is not '\u2014 NAME SIGNATURE'")
        try:
            sig = base64.b64decode(parts[2], validate=True)
        except ValueError as exc:
            raise VerificationError("malformed checkpoint: a signature is not base64") from exc
        if len(sig) < 5:
            raise VerificationError("malformed checkpoint: a signature is too short to hold a key hint")
        sigs.append((parts[1], sig))
    return Checkpoint((head + "\n").encode(), lines[0], int(lines[1]), root, tuple(sigs))


def verify_checkpoint(checkpoint: Checkpoint, log: LogKey, key: PublicKey) -> None:
    """The checkpoint is signed by the log: the first signature with the log's key hint (Rekor v1: the log id's
    first 4 bytes) verifies over the note. Other signatures (witnesses' cosignatures) are not needed."""
    hint = log.log_id[:4]
    for _name, sig in checkpoint.signatures:
        if sig[:4] == hint:
            if not signature_verifies(key, sig[4:], checkpoint.note):
                raise VerificationError(f"the checkpoint's signature does not verify with the key of {log.base_url}")
            return
    raise VerificationError(f"the checkpoint has no signature from {log.base_url} (no signature carries its key "
                            f"hint {hint.hex()})")


def check_inclusion(entry: TlogEntry, proof: InclusionProof, log: LogKey, key: PublicKey) -> None:
    root = root_from_inclusion_proof(proof.log_index, proof.tree_size, leaf_hash(entry.canonicalized_body),
                                     proof.hashes)
    if root != proof.root_hash:
        raise VerificationError("the inclusion proof does not lead to its root hash (the entry is not in that tree)")
    checkpoint = parse_checkpoint(proof.checkpoint)
    verify_checkpoint(checkpoint, log, key)
    if checkpoint.root_hash != proof.root_hash or checkpoint.size != proof.tree_size:
        raise VerificationError("the checkpoint does not commit to the inclusion proof's root hash and tree size")


# ---- the signed entry timestamp ---------------------------------------------------------------------------------


def set_payload(entry: TlogEntry) -> bytes:
    """What the SET signs: RFC 8785 canonical JSON of {body, integratedTime, logID, logIndex}. Its values are
    ASCII strings (base64, hex) and integers, for which RFC 8785 is sorted keys without whitespace."""
    obj = {"body": base64.b64encode(entry.canonicalized_body).decode(), "integratedTime": entry.integrated_time,
           "logID": entry.log_id.hex(), "logIndex": entry.log_index}
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _when(t: dt.datetime | None) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t is not None else "open"


def check_set(entry: TlogEntry, log: LogKey, key: PublicKey) -> None:
    assert entry.inclusion_promise is not None
    if log.valid_for.start is None:
        raise VerificationError(f"the trusted root gives the key of {log.base_url} no validity start; an inclusion "
                                "promise from it is not trusted")
    at = dt.datetime.fromtimestamp(entry.integrated_time, dt.UTC)
    if not log.valid_for.contains(at):
        raise VerificationError(f"the log entry was integrated at {_when(at)}, outside the validity of the key of "
                                f"{log.base_url} ({_when(log.valid_for.start)} to {_when(log.valid_for.end)})")
    if not signature_verifies(key, entry.inclusion_promise, set_payload(entry)):
        raise VerificationError(f"the log entry's inclusion promise (SET) does not verify with the key of "
                                f"{log.base_url}")


# ---- the entry body against the bundle ---------------------------------------------------------------------------


class _Body:
    """Typed access to the entry body's JSON; every problem is a mismatch with the bundle."""

    def __init__(self, obj: Any, path: str) -> None:
        self.obj, self.path = obj, path

    def at(self, *keys: str | int) -> Any:
        v = self.obj
        for k in keys:
            if isinstance(k, int):
                v = v[k] if isinstance(v, list) and len(v) > k else None
            else:
                v = v.get(k) if isinstance(v, dict) else None
        return v

    def text(self, *keys: str | int) -> str:
        v = self.at(*keys)
        if not isinstance(v, str):
            where = ".".join(str(k) for k in keys)
            raise VerificationError(f"the log entry's body has no {where} string ({self.path})")
        return v

    def b64(self, *keys: str | int) -> bytes:
        try:
            return b64decode(self.text(*keys))
        except ValueError as exc:
            where = ".".join(str(k) for k in keys)
            raise VerificationError(f"the log entry's {where} is not base64 ({self.path})") from exc


def _same_key(pem: bytes, signer: PublicKey, what: str, certificate: bytes | None = None) -> None:
    """The key, or for a keyless signature the certificate (DER given), the log recorded is the one that
    verified the bundle."""
    try:
        blocks = pem_blocks(pem)
    except KeyError_ as exc:
        raise VerificationError(f"the log entry's {what} is not PEM") from exc
    if certificate is not None:
        if len(blocks) != 1 or blocks[0][0] != "CERTIFICATE" or blocks[0][1] != certificate:
            raise VerificationError(f"the log entry's {what} is not the signing certificate")
        return
    if len(blocks) != 1 or blocks[0][0] != "PUBLIC KEY":
        label = blocks[0][0] if blocks else "no PEM block"
        raise VerificationError(f"the log entry's {what} is not the bundle's public key (it holds {label})")
    try:
        recorded = serialization.load_der_public_key(blocks[0][1])
    except ValueError as exc:
        raise VerificationError(f"the log entry's {what} does not parse as a public key") from exc
    if recorded.public_bytes(serialization.Encoding.DER,
                             serialization.PublicFormat.SubjectPublicKeyInfo) != spki_der(signer):
        raise VerificationError(f"the log entry's {what} is another key than the one that verified the bundle")


def _hex_digest(body: _Body, *keys: str) -> HashOutput:
    algorithm = body.text(*keys, "algorithm")
    value = body.text(*keys, "value")
    if algorithm not in DIGEST_SIZES:
        raise VerificationError(f"the log entry's digest algorithm {algorithm[:20]!r} is not supported")
    try:
        digest = bytes.fromhex(value)
    except ValueError as exc:
        raise VerificationError("the log entry's digest is not hex") from exc
    return HashOutput(algorithm, digest)


def check_body(entry: TlogEntry, bundle: Bundle, signer: PublicKey, artifact: HashOutput | None,
               certificate: bytes | None = None) -> None:
    """The entry's canonicalized body records this bundle (CVE-2022-36056: never a log entry of another one)."""
    try:
        obj = load_json(entry.canonicalized_body)
    except ValueError as exc:
        raise VerificationError("the log entry's body is not JSON") from exc
    body = _Body(obj, f"{entry.kind} {entry.version}")
    if body.at("kind") != entry.kind or body.at("apiVersion") != entry.version:
        kind, version = str(body.at("kind"))[:20], str(body.at("apiVersion"))[:10]
        raise VerificationError(f"the log entry's body is a {kind} {version} entry, but its kindVersion says "
                                f"{entry.kind} {entry.version}")
    if (entry.kind, entry.version) == ("hashedrekord", "0.0.2"):
        _check_rekor_v2_body(body, bundle, signer, artifact, certificate)
        return
    if entry.kind == "hashedrekord":
        if bundle.message_signature is None:
            raise VerificationError("the log entry is a hashedrekord, but the bundle holds a DSSE envelope (Rekor v1 "
                                    "logs those as dsse or intoto entries)")
        if artifact is None:
            raise VerificationError("cannot check the hashedrekord log entry without the artifact or its digest")
        recorded = _hex_digest(body, "spec", "data", "hash")
        if recorded != artifact:
            raise VerificationError(f"the log entry records the digest {recorded.text()[:80]}, not the artifact's "
                                    f"{artifact.text()}")
        if body.b64("spec", "signature", "content") != bundle.message_signature.signature:
            raise VerificationError("the log entry records another signature than the bundle's")
        _same_key(body.b64("spec", "signature", "publicKey", "content"), signer, "public key", certificate)
        return
    env = bundle.dsse_envelope
    if env is None:
        raise VerificationError(f"the log entry is a {entry.kind} entry, but the bundle holds a message signature")
    payload_hash = HashOutput("sha256", hashlib.sha256(env.payload).digest())
    if entry.kind == "dsse":
        recorded = _hex_digest(body, "spec", "payloadHash")
        sigs = body.at("spec", "signatures")
        sig_key, key_key = "signature", "verifier"
        base: tuple[str, ...] = ("spec", "signatures")
    else:  # intoto 0.0.2: the envelope's signatures and keys are base64 twice over
        recorded = _hex_digest(body, "spec", "content", "payloadHash")
        if body.at("spec", "content", "envelope", "payloadType") not in (None, env.payload_type):
            raise VerificationError("the log entry records another payload type than the bundle's envelope")
        sigs = body.at("spec", "content", "envelope", "signatures")
        sig_key, key_key = "sig", "publicKey"
        base = ("spec", "content", "envelope", "signatures")
    if recorded != payload_hash:
        raise VerificationError("the log entry records another payload hash than the bundle's envelope")
    if not isinstance(sigs, list) or len(sigs) != len(env.signatures):
        raise VerificationError("the log entry records another number of signatures than the bundle's envelope")
    for i, s in enumerate(env.signatures):
        recorded_sig = body.b64(*base, i, sig_key)
        if entry.kind == "intoto":
            try:
                recorded_sig = b64decode(recorded_sig.decode("ascii"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise VerificationError("the log entry's signature is not base64") from exc
        if recorded_sig != s.sig:
            raise VerificationError("the log entry records another signature than the bundle's envelope")
        _same_key(body.b64(*base, i, key_key), signer, "verifier key", certificate)


_V2_ALGORITHMS = {"SHA2_256": "sha256", "SHA2_384": "sha384", "SHA2_512": "sha512"}


def _check_rekor_v2_body(body: _Body, bundle: Bundle, signer: PublicKey, artifact: HashOutput | None,
                         certificate: bytes | None) -> None:
    """A Rekor v2 hashedrekord 0.0.2 entry (rekor-tiles): the artifact's digest, or for a DSSE envelope the
    digest of its PAE; the signature; the verifier: the signing certificate or the public key, as raw DER."""
    spec = ("spec", "hashedRekordV002")
    name = body.text(*spec, "data", "algorithm")
    algorithm = _V2_ALGORITHMS.get(name)
    if algorithm is None:
        raise VerificationError(f"the log entry's digest algorithm {name[:20]!r} is not supported")
    recorded = HashOutput(algorithm, body.b64(*spec, "data", "digest"))
    env = bundle.dsse_envelope
    if bundle.message_signature is not None:
        if artifact is None:
            raise VerificationError("cannot check the hashedrekord log entry without the artifact or its digest")
        want = artifact
        if artifact.algorithm != algorithm:
            raise VerificationError(f"the log entry records a {algorithm} digest, the artifact's is "
                                    f"{artifact.algorithm}")
    else:
        assert env is not None
        if len(env.signatures) != 1:
            raise VerificationError("a Rekor v2 entry records a DSSE envelope with exactly one signature")
        want = HashOutput(algorithm, hashlib.new(algorithm, env.pae()).digest())
    if recorded != want:
        what = "the artifact's" if env is None else "the envelope's PAE"
        raise VerificationError(f"the log entry records the digest {recorded.text()[:80]}, not {what} {want.text()}")
    if body.b64(*spec, "signature", "content") != bundle.signature:
        raise VerificationError("the log entry records another signature than the bundle's")
    verifier = (*spec, "signature", "verifier")
    if certificate is not None:
        if body.at(*verifier, "x509Certificate") is None or body.b64(*verifier, "x509Certificate", "rawBytes") \
                != certificate:
            raise VerificationError("the log entry's verifier is not the signing certificate")
    elif body.at(*verifier, "publicKey") is None or body.b64(*verifier, "publicKey", "rawBytes") != spki_der(signer):
        raise VerificationError("the log entry's verifier is another key than the one that verified the bundle")


# ---- all entries ----------------------------------------------------------------------------------------------------


def verify_entries(bundle: Bundle, signer: PublicKey, root: TrustedRoot, artifact: HashOutput | None,
                   now: dt.datetime | None = None, certificate: bytes | None = None) -> TlogResult:
    """Check every entry from a log of the trust root; VerificationError with the first failure, or when
    no entry is from such a log. artifact: the artifact's digest (message signatures), else None;
    certificate: the signing certificate (DER) of a keyless signature, which the entries must record."""
    now = now or dt.datetime.now(dt.UTC)
    entries = bundle.material.tlog_entries
    if not entries:
        raise VerificationError("the bundle has no transparency-log entry (a bundle signed with --tlog-upload=false "
                                "verifies with --insecure-ignore-tlog)")
    seen: set[tuple[bytes, int]] = set()
    verified, times, notes = 0, [], []
    for entry in entries:
        if (entry.log_id, entry.log_index) in seen:
            raise VerificationError("the bundle lists one transparency-log entry twice")
        seen.add((entry.log_id, entry.log_index))
        log = root.tlog(entry.log_id)
        if log is None:
            notes.append(f"log entry {entry.log_index} is from a log the trusted root does not name "
                         f"(log id {entry.log_id.hex()[:16]}…); passed over")
            continue
        if (entry.kind, entry.version) not in SUPPORTED:
            raise VerificationError(f"unsupported transparency-log entry type {entry.kind[:30]} {entry.version[:10]} "
                                    "(vouch checks hashedrekord 0.0.1 and 0.0.2, dsse 0.0.1 and intoto 0.0.2)")
        if log.valid_for.start is None:
            raise VerificationError(f"the trusted root gives the key of {log.base_url} no validity start; entries "
                                    "of that log are not trusted")
        try:
            key = log.public_key()
        except KeyError_ as exc:
            raise VerificationError(f"trusted root {root.source}: {exc}") from exc
        check_body(entry, bundle, signer, artifact, certificate)
        if entry.integrated_time > now.timestamp() + limits.MAX_CLOCK_SKEW_SECONDS:
            at = dt.datetime.fromtimestamp(min(entry.integrated_time, 2**37), dt.UTC)
            raise VerificationError(f"the log entry's integrated time {_when(at)} is in the future")
        if entry.inclusion_promise is not None:
            check_set(entry, log, key)
            times.append(entry.integrated_time)
        if entry.inclusion_proof is not None:
            check_inclusion(entry, entry.inclusion_proof, log, key)
        verified += 1
    if not verified:
        raise VerificationError(f"none of the bundle's transparency-log entries is from a log of the trusted root "
                                f"({root.source})")
    return TlogResult(verified, min(times) if times else None, tuple(notes))
