"""The Sigstore client conformance suite's bundle-verify cases (shared/vectors/sigstore-conformance, 70 cases),
driven through the suite's CLI protocol: `vouch verify-bundle --bundle FILE (--key KEY | --certificate-identity ID
--certificate-oidc-issuer URL) [--trusted-root FILE] FILE_OR_DIGEST`, exit 0 meaning verified.

The key cases (`managed-key*`) must give the suite's verdict, each refusal for its own reason. Every case must
never be accepted when it must fail; certificate cases are refused as not yet supported, or earlier as malformed,
and the test names which, so that it cannot keep passing by accident once keyless verification lands."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from tests.conftest import VECTORS
from vouch.bundle.verify import CERTIFICATE_BUNDLES

CASES = VECTORS / "sigstore-conformance" / "bundle-verify"
IDENTITY = ("https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/"
            "extremely-dangerous-oidc-beacon.yml@refs/heads/main")
ISSUER = "https://token.actions.githubusercontent.com"
ALL = sorted(p.name for p in CASES.iterdir() if p.is_dir())

KEY_CASES = {  # case -> (exit code, what stderr says)
    "managed-key-happy-path": (0, "Verified OK"),
    "managed-key-and-trusted-root": (0, "Verified OK"),
    "managed-key-no-key_fail": (1, "Error: the bundle is signed with a key, not a certificate: verify it with --key"),
    "managed-key-wrong-key_fail": (2, "key.pub: a PUBLIC KEY block does not parse"),
}
# Certificate cases refused before their certificate is looked at: the bundle is malformed.
NO_PROOF = "has no inclusion proof (a v0.2 or v0.3 bundle's log entries must carry one)"
MALFORMED = {
    "bundle-empty-certificate-chain_fail": "the x509CertificateChain holds no certificate",
    "bundle-invalid-base64-signature_fail": "messageSignature.signature is not base64",
    "bundle-malformed-json_fail": "the sigstore bundle is not valid JSON",
    "bundle-negative-log-index_fail": "tlogEntries[0].logIndex is not a non-negative integer",
    "bundle-unknown-version_fail": "unsupported sigstore bundle version",
    "intoto-missing-inclusion-proof_fail": NO_PROOF,
    "invalid-inclusion-proof_fail": "tlogEntries[0].inclusionProof has no checkpoint",
    "rekor2-no-inclusion-proof_fail": NO_PROOF,
}
NOT_YET = f"Error: keyless verification (--certificate-identity): {CERTIFICATE_BUNDLES}"


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


@pytest.mark.parametrize("case", ALL)
def test_no_case_that_must_fail_is_accepted(case: str, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    code, err = run_in_process(protocol_args(case), capsys, monkeypatch)
    if case.endswith("_fail"):
        assert code != 0, (case, err)
    if case in KEY_CASES:
        assert (code, KEY_CASES[case][1] in err) == (KEY_CASES[case][0], True), (case, err)
    elif case in MALFORMED:
        assert code == 1 and MALFORMED[case] in err, (case, err)
    else:  # a certificate bundle: refused as not supported yet, whatever its verdict will be
        assert code == 1 and err.strip() == NOT_YET, (case, err)
