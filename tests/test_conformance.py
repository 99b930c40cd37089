"""The Sigstore client conformance suite's bundle-verify cases (shared/vectors/sigstore-conformance, 70 cases),
driven through the suite's CLI protocol: `vouch verify-bundle --bundle FILE (--key KEY | --certificate-identity ID
--certificate-oidc-issuer URL) [--trusted-root FILE] FILE_OR_DIGEST`, exit 0 meaning verified.

Every case must give the suite's verdict: the 21 that must verify (key and keyless, Rekor v1 and v2, TSA
timestamps, DSSE) are verified, and each of the 49 that must fail is refused with its own reason (REASONS)."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from tests.conftest import VECTORS

CASES = VECTORS / "sigstore-conformance" / "bundle-verify"
IDENTITY = ("https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/"
            "extremely-dangerous-oidc-beacon.yml@refs/heads/main")
ISSUER = "https://token.actions.githubusercontent.com"
ALL = sorted(p.name for p in CASES.iterdir() if p.is_dir())

KEY_CASES = {  # case -> (exit code, what stderr says)
    "managed-key-happy-path": (0, "Verified OK"),
    "managed-key-and-trusted-root": (0, "Verified OK"),
    "managed-key-no-key_fail": (1, "Error: the signature is made with a key, not a Fulcio certificate: verify it "
                                   "with --key"),
    "managed-key-wrong-key_fail": (2, "key.pub: a PUBLIC KEY block does not parse"),
}
NO_PROOF = "has no inclusion proof (a v0.2 or v0.3 bundle's log entries must carry one)"
NOT_CHAINED = "the signing certificate does not chain to a Fulcio root of the trusted root at"
BAD_TSA = "a signed timestamp does not verify with any timestamp authority of the trusted root"
MALFORMED_CHECKPOINT = "malformed checkpoint: it needs an origin, a tree size and a root hash"
# Every case that must fail, with the reason vouch gives: a case refused for another reason than its own is a
# defect the verdict alone would hide. (integrated-time-in-future: the vector's "future" time has since passed,
# so the certificate, valid for 10 minutes around the signing, is what is refused.)
REASONS = {
    "bundle-empty-certificate-chain_fail": "the x509CertificateChain holds no certificate",
    "bundle-from-wrong-instance_fail": "none of the bundle's transparency-log entries is from a log of the trusted",
    "bundle-invalid-base64-signature_fail": "messageSignature.signature is not base64",
    "bundle-malformed-json_fail": "the sigstore bundle is not valid JSON",
    "bundle-negative-log-index_fail": "tlogEntries[0].logIndex is not a non-negative integer",
    "bundle-unknown-version_fail": "unsupported sigstore bundle version",
    "bundle-with-root-cert_fail": "the bundle's certificate chain holds a root certificate",
    "checkpoint-bad-keyhint_fail": "the checkpoint has no signature from https://rekor.sigstore.dev",
    "checkpoint-wrong-roothash_fail": "the checkpoint does not commit to the inclusion proof's root hash",
    "dsse-invalid-sig_fail": "the DSSE envelope's signature does not verify",
    "dsse-mismatch-envelope_fail": "the log entry records another payload hash than the bundle's envelope",
    "dsse-mismatch-sig_fail": "the log entry records another signature than the bundle's envelope",
    "inclusion-proof-corrupted-hash_fail": "the inclusion proof does not lead to its root hash",
    "incorrect-public-key_fail": "the log entry's public key is not the signing certificate",
    "integrated-time-in-future_fail": NOT_CHAINED,
    "intoto-expired-certificate_fail": NOT_CHAINED,
    "intoto-log-entry-mismatch_fail": "the log entry's signature is not base64",
    "intoto-missing-inclusion-proof_fail": NO_PROOF,
    "intoto-set-outside-signing-cert-validity_fail": NOT_CHAINED,
    "intoto-tsa-timestamp-outside-cert-validity_fail": NOT_CHAINED,
    "invalid-checkpoint-signature_fail": "the checkpoint's signature does not verify with the key of",
    "invalid-ct-key_fail": "the signing certificate's SCT is not valid: an SCT is from a CT log the trusted root",
    "invalid-inclusion-proof_fail": "tlogEntries[0].inclusionProof has no checkpoint",
    "managed-key-no-key_fail": "the signature is made with a key, not a Fulcio certificate",
    "managed-key-wrong-key_fail": "key.pub: a PUBLIC KEY block does not parse",
    "message-digest-mismatch_fail": "is not the bundle's message digest",
    "rekor2-checkpoint-missing-log-signature_fail": "malformed checkpoint: the signature lines do not end",
    "rekor2-checkpoint-missing-origin_fail": MALFORMED_CHECKPOINT,
    "rekor2-checkpoint-missing-root-hash_fail": MALFORMED_CHECKPOINT,
    "rekor2-checkpoint-missing-size_fail": MALFORMED_CHECKPOINT,
    "rekor2-checkpoint-no-matching-signature_fail": "the checkpoint's signature does not verify with the key of",
    "rekor2-dsse-invalid-sig_fail": "the DSSE envelope's signature does not verify",
    "rekor2-dsse-mismatch-envelope_fail": "not the envelope's PAE",
    "rekor2-dsse-mismatch-sig_fail": "the log entry records another signature than the bundle's",
    "rekor2-no-inclusion-proof_fail": NO_PROOF,
    "rekor2-no-timestamp_fail": "no verified time of signing",
    "rekor2-timestamp-outside-trust-root-tsa-validity_fail": BAD_TSA,
    "rekor2-timestamp-outside-tsa-cert-validity_fail": BAD_TSA,
    "rekor2-timestamp-payload-mismatch_fail": BAD_TSA,
    # its TSA response's certificates are not DER-sorted, which the RFC 3161 parser refuses before any check
    "rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail": "a signed timestamp is not an RFC 3161 timestamp",
    "rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail": BAD_TSA,
    "rekor2-timestamp-with-incorrect-time_fail": NOT_CHAINED,
    "set-invalid-signature_fail": "the log entry's inclusion promise (SET) does not verify",
    "signature-mismatch_fail": "the bundle's message signature does not verify",
    "trust-root-tlog-missing-validity-start_fail": "no validity start; entries of that log are not trusted",
    "wrong-hashedrekord-artifact_fail": "the log entry records the digest sha256:d40ec3ee",
    "wrong-hashedrekord-cert-and-sig_fail": "the log entry records another signature than the bundle's",
    "wrong-hashedrekord-entry_fail": "the log entry records the digest sha256:9d92fa52",
    "wrong-material_fail": "is not the bundle's message digest",
}


def protocol_args(case: str, *, digest: bool = False) -> list[str]:
    """The command line the conformance suite gives a client for this case."""
    d = CASES / case
    args = ["verify-bundle", "--bundle", str(d / "bundle.sigstore.json")]
    if (d / "key.pub").exists():
        args += ["--key", str(d / "key.pub")]
    else:
        identity = (d / "identity").read_text().strip() if (d / "identity").exists() else IDENTITY
        issuer = (d / "issuer").read_text().strip() if (d / "issuer").exists() else ISSUER
        args += ["--certificate-identity", identity, "--certificate-oidc-issuer", issuer]
    if (d / "trusted_root.json").exists():
        args += ["--trusted-root", str(d / "trusted_root.json")]
    artifact = d / "artifact" if (d / "artifact").exists() else CASES / "a.txt"
    args.append("sha256:" + hashlib.sha256(artifact.read_bytes()).hexdigest() if digest else str(artifact))
    return args


def run_in_process(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[
        int, str]:
    """The real entry point (`vouch.cli.main.run`: error rendering, exit codes), without a process per case."""
    from vouch.cli.main import run

    monkeypatch.setattr(sys, "argv", ["vouch", *args])
    with pytest.raises(SystemExit) as exc:
        run()
    code = exc.value.code
    return code if isinstance(code, int) else 0, capsys.readouterr().err


def test_the_vectors_are_all_there() -> None:
    assert len(ALL) == 70 and set(KEY_CASES) == {c for c in ALL if c.startswith("managed-key")}


@pytest.mark.parametrize("case", sorted(KEY_CASES))
def test_managed_key_cases(case: str) -> None:
    """The suite's protocol, run as the suite runs a client: a process per case, file and digest forms."""
    code, said = KEY_CASES[case]
    for digest in (False, True):
        r = subprocess.run([sys.executable, "-m", "vouch", *protocol_args(case, digest=digest)], capture_output=True,
                           text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert r.returncode == code, (case, digest, r.stderr)
        assert said in r.stderr and "Traceback" not in r.stderr, r.stderr
        if code:
            assert r.stderr.strip().startswith("Error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_every_failing_case_has_its_reason() -> None:
    assert set(REASONS) == {c for c in ALL if c.endswith("_fail")}


@pytest.mark.parametrize("case", ALL)
def test_every_case_gives_the_suites_verdict(case: str, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """All 70 cases, in process (the real entry point): a case that must fail exits non-zero with one line
    naming its own reason; every other case is verified."""
    code, err = run_in_process(protocol_args(case), capsys, monkeypatch)
    assert "Traceback" not in err, (case, err)
    if case.endswith("_fail"):
        assert code != 0 and REASONS[case] in err, (case, err)
        assert err.strip().startswith("Error: ") and len(err.strip().splitlines()) == 1, (case, err)
    else:
        assert code == 0 and "Verified OK" in err, (case, err)


@pytest.mark.parametrize("case", ["happy-path-v0.3", "rekor2-happy-path", "happy-path-intoto-in-dsse-v3"])
def test_keyless_cases_refuse_another_identity_or_issuer(case: str, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    args = protocol_args(case)
    i = args.index("--certificate-identity")
    wrong_id = [*args[:i + 1], "https://example.com/other", *args[i + 2:]]
    code, err = run_in_process(wrong_id, capsys, monkeypatch)
    assert code == 1 and "is not the expected 'https://example.com/other'" in err, err
    j = args.index("--certificate-oidc-issuer")
    wrong_issuer = [*args[:j + 1], "https://accounts.example.com", *args[j + 2:]]
    code, err = run_in_process(wrong_issuer, capsys, monkeypatch)
    assert code == 1 and "OIDC issuer" in err and "https://accounts.example.com" in err, err
    k = args.index("--certificate-identity")
    regexp = [*args[:k], "--certificate-identity-regexp", "^https://github\\.com/sigstore-conformance/",
              *args[k + 2:]]
    code, err = run_in_process(regexp, capsys, monkeypatch)
    assert code == 0, err
