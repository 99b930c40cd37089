"""cosign's key format: ECDSA P-256, PKCS#8 DER inside a scrypt + NaCl secretbox JSON envelope, PEM-armoured.

Pure functions: no I/O here, so every one is tested against the shared vectors.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
import os
import re
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from vouch import trust
from vouch.errors import KeyError_
from vouch.trust import PublicKey

PEM_SIGSTORE = "ENCRYPTED SIGSTORE PRIVATE KEY"
PEM_COSIGN = "ENCRYPTED COSIGN PRIVATE KEY"
ACCEPTED_PRIVATE_LABELS = (PEM_SIGSTORE, PEM_COSIGN)
WRITE_N = 32768
ACCEPTED_N = (32768, 65536, 131072)
SALT_LEN = 32
NONCE_LEN = 24

# BEGIN/END lines. Blocks are paired in one linear pass: a regex spanning BEGIN ... END would rescan the
# rest of the file for every unmatched BEGIN (quadratic: minutes for a 500 KB file of BEGIN lines).
_PEM_MARKER_RE = re.compile(r"-----(BEGIN|END) ([A-Z0-9 ]{1,64})-----")


def pem_blocks(data: bytes | str) -> list[tuple[str, bytes]]:
    """All PEM blocks in data: (label, DER/body bytes). A BEGIN pairs with the next END of its label."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    markers = list(_PEM_MARKER_RE.finditer(text))
    ends: dict[str, list[int]] = {}  # label -> indexes in markers of its END lines, ascending
    for i, m in enumerate(markers):
        if m.group(1) == "END":
            ends.setdefault(m.group(2), []).append(i)
    out = []
    done = 0  # text before this offset belongs to a block already read
    for i, m in enumerate(markers):
        if m.group(1) != "BEGIN" or m.start() < done:
            continue
        label = m.group(2)
        candidates = ends.get(label, [])
        j = bisect.bisect_right(candidates, i)
        if j == len(candidates):
            continue
        end = markers[candidates[j]]
        body = "".join(text[m.end() : end.start()].split())
        try:
            out.append((label, base64.b64decode(body, validate=True)))
        except ValueError as exc:
            raise KeyError_(f"PEM block {label!r} is not valid base64") from exc
        done = end.end()
    return out


def pem_encode(label: str, body: bytes) -> bytes:
    b64 = base64.b64encode(body).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return (f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n").encode()


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=32, maxmem=2**28 + 2**26)


def encrypt_envelope(plaintext: bytes, password: bytes, *, salt: bytes | None = None,
                     nonce: bytes | None = None, n: int = WRITE_N) -> bytes:
    """The compact JSON envelope cosign writes, fields in Go struct order."""
    salt = salt if salt is not None else os.urandom(SALT_LEN)
    nonce = nonce if nonce is not None else os.urandom(NONCE_LEN)
    key = _scrypt(password, salt, n, 8, 1)
    import nacl.secret  # (here: verifying with a public key never needs it)

    ciphertext: bytes = nacl.secret.SecretBox(key).encrypt(plaintext, nonce).ciphertext
    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode()

    env = {
        "kdf": {"name": "scrypt", "params": {"N": n, "r": 8, "p": 1}, "salt": b64(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)},
        "ciphertext": b64(ciphertext),
    }
    return json.dumps(env, separators=(",", ":")).encode()


def _envelope_problem(env: Any) -> str | None:
    """What keeps env from having the shape of cosign's envelope, or None (values are checked after)."""
    if not isinstance(env, dict):
        return "not a JSON object"
    kdf, cipher = env.get("kdf"), env.get("cipher")
    if not isinstance(kdf, dict) or not isinstance(cipher, dict):
        return "kdf or cipher is missing or not an object"
    params = kdf.get("params")
    if not isinstance(params, dict):
        return "kdf.params is missing or not an object"
    for k in ("N", "r", "p"):
        # bool is an int in Python, not in JSON; a float (32768.0, 1e400) is not an integer parameter.
        if not isinstance(params.get(k), int) or isinstance(params[k], bool):
            return f"kdf.params.{k} is missing or not an integer"
    for where, obj, k in (("kdf", kdf, "name"), ("kdf", kdf, "salt"), ("cipher", cipher, "name"),
                          ("cipher", cipher, "nonce")):
        if not isinstance(obj.get(k), str):
            return f"{where}.{k} is missing or not a string"
    if not isinstance(env.get("ciphertext"), str):
        return "ciphertext is missing or not a string"
    return None


def decrypt_envelope(envelope: bytes, password: bytes) -> bytes:
    """Decrypt a go-securesystemslib/cosign envelope. Refuses unknown KDFs, ciphers and parameters."""
    try:
        env: Any = json.loads(envelope)
    except (ValueError, RecursionError) as exc:
        raise KeyError_("the encrypted key envelope is malformed (not cosign's JSON format)") from exc
    problem = _envelope_problem(env)
    if problem:
        raise KeyError_(f"the encrypted key envelope is malformed (not cosign's JSON format): {problem}")
    kdf, cipher = env["kdf"], env["cipher"]
    n, r, p = (kdf["params"][k] for k in ("N", "r", "p"))
    kdf_name, cipher_name = kdf["name"], cipher["name"]
    try:
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(cipher["nonce"], validate=True)
        ciphertext = base64.b64decode(env["ciphertext"], validate=True)
    except ValueError as exc:
        raise KeyError_("the encrypted key envelope is malformed (not cosign's JSON format): "
                        "salt, nonce or ciphertext is not base64") from exc
    if kdf_name != "scrypt":
        raise KeyError_(f"unsupported key derivation {kdf_name[:64]!r}: cosign keys use scrypt")
    if cipher_name != "nacl/secretbox":
        raise KeyError_(f"unsupported cipher {cipher_name[:64]!r}: cosign keys use nacl/secretbox")
    if n not in ACCEPTED_N or r != 8 or p != 1:
        shown_n, shown_r, shown_p = (str(x) if len(str(x)) <= 20 else "(huge)" for x in (n, r, p))
        raise KeyError_(f"unsupported scrypt parameters N={shown_n} r={shown_r} p={shown_p}: accepted are N in "
                        f"{', '.join(map(str, ACCEPTED_N))} with r=8 p=1")
    if len(nonce) != NONCE_LEN:
        raise KeyError_("the encrypted key envelope has a nonce of the wrong length")
    key = _scrypt(password, salt, n, r, p)
    import nacl.exceptions
    import nacl.secret

    try:
        return bytes(nacl.secret.SecretBox(key).decrypt(ciphertext, nonce))
    except nacl.exceptions.CryptoError as exc:
        raise KeyError_("wrong password for the private key, or the key file was tampered with") from exc


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def encrypt_private_key(key: ec.EllipticCurvePrivateKey, password: bytes) -> bytes:
    """PEM `ENCRYPTED SIGSTORE PRIVATE KEY` as cosign >= 2.0.1 writes it."""
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return pem_encode(PEM_SIGSTORE, encrypt_envelope(der, password))


def _check_p256(key: object, what: str) -> None:
    if not isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) or not isinstance(
        key.curve, ec.SECP256R1
    ):
        raise KeyError_(f"{what} is not an ECDSA P-256 key; cosign keys are ECDSA P-256")


def _der_header(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content length) of the DER element at pos."""
    if pos + 2 > len(data):
        raise ValueError("truncated")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        return tag, pos, first
    n = first & 0x7F
    if n == 0 or n > 4 or pos + n > len(data):
        raise ValueError("bad length")
    return tag, pos + n, int.from_bytes(data[pos : pos + n], "big")


def is_pkcs8_der(der: bytes) -> bool:
    """PKCS#8 PrivateKeyInfo: SEQUENCE { INTEGER version, SEQUENCE algorithm, OCTET STRING key }.
    SEC1 ECPrivateKey has an OCTET STRING where PKCS#8 has the algorithm SEQUENCE."""
    try:
        tag, start, _ = _der_header(der, 0)
        if tag != 0x30:
            return False
        tag, start2, length = _der_header(der, start)
        if tag != 0x02:
            return False
        tag, _, _ = _der_header(der, start2 + length)
        return tag == 0x30
    except ValueError:
        return False


def load_private_key(pem: bytes, password: bytes) -> ec.EllipticCurvePrivateKey:
    """Load a cosign private key (either PEM label). Plaintext must be PKCS#8, as cosign requires."""
    blocks = [(label, body) for label, body in pem_blocks(pem) if label in ACCEPTED_PRIVATE_LABELS]
    if not blocks:
        labels = [label for label, _ in pem_blocks(pem)]
        found = f" (found {', '.join(labels)})" if labels else ""
        raise KeyError_(f"not a cosign private key: expected a PEM block '{PEM_SIGSTORE}'{found}; "
                        "use `vouch import-key-pair` for a plain PEM key")
    plaintext = decrypt_envelope(blocks[0][1], password)
    if not is_pkcs8_der(plaintext):
        raise KeyError_("the decrypted private key is not PKCS#8 (it looks like SEC1 or another encoding, "
                        "which cosign refuses); re-import it with `vouch import-key-pair`")
    try:
        key = serialization.load_der_private_key(plaintext, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyError_("the decrypted private key is not PKCS#8 (cosign refuses SEC1 and other encodings); "
                        "re-import it with `vouch import-key-pair`") from exc
    _check_p256(key, "the private key")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def import_plain_private_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    """An unencrypted EC P-256 key, PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`)."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError as exc:
        raise KeyError_("the key to import is encrypted; decrypt it first (openssl pkcs8 -topk8 -nocrypt)") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyError_("cannot read the key to import: expected an unencrypted PEM EC key "
                        "(PRIVATE KEY or EC PRIVATE KEY)") from exc
    _check_p256(key, "the key to import")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def public_key_pem(key: ec.EllipticCurvePrivateKey | PublicKey) -> bytes:
    return trust.public_key_pem(key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key)


def load_public_keys(pem: bytes, what: str = "public key file") -> list[PublicKey]:
    """Every `PUBLIC KEY` in a PEM bundle (rotation overlap: old and new keys in one file), of any type
    cosign verifies with (ECDSA P-256/384/521, RSA, Ed25519)."""
    keys = [trust.load_public_key_der(der, what) for label, der in pem_blocks(pem) if label == "PUBLIC KEY"]
    if not keys:
        raise KeyError_(f"{what}: no PEM 'PUBLIC KEY' block found")
    return keys


key_id = trust.key_id
