"""cosign key format against the shared vectors, and the key commands."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import VECTORS
from vouch.errors import KeyError_
from vouch.keys.cosign import (
    PEM_SIGSTORE,
    decrypt_envelope,
    encrypt_envelope,
    encrypt_private_key,
    generate_private_key,
    load_private_key,
    load_public_keys,
    pem_blocks,
    public_key_pem,
)

ENVELOPES = VECTORS / "encrypted-envelopes"
KEYS = VECTORS / "cosign-keys"


@pytest.mark.parametrize(("name", "expected"), [
    ("decrypt", b"reallyimportant"),
    ("legacy", b'"cmVhbGx5aW1wb3J0YW50"'),
    ("standard", b'"cmVhbGx5aW1wb3J0YW50"'),
    ("owasp", b'"cmVhbGx5aW1wb3J0YW50"'),
])
def test_envelope_vectors(name: str, expected: bytes) -> None:
    assert decrypt_envelope((ENVELOPES / f"{name}.json").read_bytes(), b"supersecret") == expected


def test_envelope_wrong_passphrase() -> None:
    with pytest.raises(KeyError_, match="wrong password"):
        decrypt_envelope((ENVELOPES / "decrypt.json").read_bytes(), b"nope")


@pytest.mark.parametrize("mutation", ["kdf", "cipher", "N", "r", "ciphertext", "json"])
def test_envelope_refuses_unknown_or_tampered(mutation: str) -> None:
    env = json.loads((ENVELOPES / "decrypt.json").read_bytes())
    if mutation == "kdf":
        env["kdf"]["name"] = "pbkdf2"
    elif mutation == "cipher":
        env["cipher"]["name"] = "aes-gcm"
    elif mutation == "N":
        env["kdf"]["params"]["N"] = 1024
    elif mutation == "r":
        env["kdf"]["params"]["r"] = 1
    elif mutation == "ciphertext":
        ct = bytearray(__import__("base64").b64decode(env["ciphertext"]))
        ct[0] ^= 1
        env["ciphertext"] = __import__("base64").b64encode(bytes(ct)).decode()
    raw = b"{not json" if mutation == "json" else json.dumps(env).encode()
    with pytest.raises(KeyError_) as info:
        decrypt_envelope(raw, b"supersecret")
    assert "\n" not in str(info.value)


def test_envelope_layout_matches_cosign() -> None:
    raw = encrypt_envelope(b"x", b"pw", salt=b"s" * 32, nonce=b"n" * 24)
    text = raw.decode()
    assert text.startswith('{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"')
    assert '"cipher":{"name":"nacl/secretbox","nonce":"' in text and text.endswith('"}')
    assert " " not in text
    assert decrypt_envelope(raw, b"pw") == b"x"


@pytest.mark.parametrize("name", ["cosign-label-pkcs8-N32768.key", "sigstore-label-pkcs8-N32768.key"])
def test_vector_keys_load(name: str) -> None:
    key = load_private_key((KEYS / name).read_bytes(), b"hello")
    assert isinstance(key.curve, ec.SECP256R1)


def test_sec1_plaintext_rejected() -> None:
    with pytest.raises(KeyError_, match="not PKCS#8"):
        load_private_key((KEYS / "cosign-label-sec1-N65536.must-reject.key").read_bytes(), b"hello")


def test_wrong_password_on_vector() -> None:
    with pytest.raises(KeyError_, match="wrong password"):
        load_private_key((KEYS / "sigstore-label-pkcs8-N32768.key").read_bytes(), b"HELLO")


def test_generated_key_roundtrip_and_format() -> None:
    key = generate_private_key()
    pem = encrypt_private_key(key, b"")  # an empty password is legal
    blocks = pem_blocks(pem)
    assert [label for label, _ in blocks] == [PEM_SIGSTORE]
    body_lines = pem.decode().strip().splitlines()[1:-1]
    assert all(len(line) == 64 for line in body_lines[:-1])
    assert load_private_key(pem, b"").private_numbers() == key.private_numbers()


def test_public_key_bundle() -> None:
    a, b = generate_private_key(), generate_private_key()
    bundle = public_key_pem(a) + public_key_pem(b)
    keys = load_public_keys(bundle)
    assert [k.public_numbers() for k in keys] == [a.public_key().public_numbers(), b.public_key().public_numbers()]
    with pytest.raises(KeyError_, match="no PEM 'PUBLIC KEY'"):
        load_public_keys(b"nothing here")


def vouch(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
          stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, env=full_env, cwd=cwd,
                          input=stdin if stdin is not None else b"", timeout=120)


def test_cli_generate_key_pair(tmp_path: Path) -> None:
    r = vouch("generate-key-pair", env={"COSIGN_PASSWORD": "pw"}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    key = tmp_path / "cosign.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert b"ENCRYPTED SIGSTORE PRIVATE KEY" in key.read_bytes()
    assert b"PRIVATE KEY-----\n" not in key.read_bytes().replace(b"ENCRYPTED SIGSTORE PRIVATE KEY-----\n", b"")
    # refuses to overwrite
    r2 = vouch("generate-key-pair", env={"COSIGN_PASSWORD": "pw"}, cwd=tmp_path)
    assert r2.returncode == 2 and b"--force" in r2.stderr and b"Traceback" not in r2.stderr
    # public-key prints the same public key
    r3 = vouch("public-key", "--key", str(key), env={"COSIGN_PASSWORD": "pw"})
    assert r3.returncode == 0 and r3.stdout == (tmp_path / "cosign.pub").read_bytes()


def test_cli_password_from_stdin(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COSIGN_PASSWORD"}
    r = subprocess.run([sys.executable, "-m", "vouch", "generate-key-pair", "--output-key-prefix", "s"],
                       input=b"from-stdin\n", capture_output=True, env=env, cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    load_private_key((tmp_path / "s.key").read_bytes(), b"from-stdin")


def test_cli_wrong_password_is_one_line(tmp_path: Path) -> None:
    r = vouch("public-key", "--key", str(KEYS / "sigstore-label-pkcs8-N32768.key"), env={"COSIGN_PASSWORD": "x"})
    assert r.returncode == 2
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "wrong password" in lines[0]


def test_cli_missing_key_file() -> None:
    r = vouch("public-key", "--key", "/nonexistent/cosign.key", env={"COSIGN_PASSWORD": "x"})
    assert r.returncode == 2 and b"not found" in r.stderr and b"Traceback" not in r.stderr


@pytest.mark.parametrize("fmt", ["pkcs8", "sec1"])
def test_cli_import_key_pair(tmp_path: Path, fmt: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pf = serialization.PrivateFormat.PKCS8 if fmt == "pkcs8" else serialization.PrivateFormat.TraditionalOpenSSL
    plain = tmp_path / "plain.pem"
    plain.write_bytes(key.private_bytes(serialization.Encoding.PEM, pf, serialization.NoEncryption()))
    r = vouch("import-key-pair", "--key", str(plain), "--output-key-prefix", "imp", env={"COSIGN_PASSWORD": "pw"},
              cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE((tmp_path / "imp.key").stat().st_mode) == 0o600
    loaded = load_private_key((tmp_path / "imp.key").read_bytes(), b"pw")
    assert loaded.private_numbers() == key.private_numbers()


def test_cli_import_refuses_rsa(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    plain = tmp_path / "rsa.pem"
    plain.write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    r = vouch("import-key-pair", "--key", str(plain), env={"COSIGN_PASSWORD": "pw"}, cwd=tmp_path)
    assert r.returncode == 2 and b"P-256" in r.stderr
    assert not (tmp_path / "import-cosign.key").exists()
