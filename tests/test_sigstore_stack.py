"""The private Sigstore stack (vouch.testbed.sigstore) proved with real clients: stock cosign 2.6.4
(legacy layout: Fulcio + Rekor v1, verified offline), cosign 3.1.2 (sigstore bundle: Rekor v2 + TSA,
--signing-config / --trusted-root) and sigstore-python's public API against Rekor v1 and v2.
Nothing here is mocked. A test that needs a peer fails when it is missing."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from cryptography import x509

from tests.support.images import small_image
from tests.support.peers import PEERS_DIR, run_peer
from tests.support.registry import RegistryServer
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.store.layout import SIG_SUFFIX, read_tag, tag_for
from vouch.testbed.oidc import OIDCIssuer, decode_unverified
from vouch.testbed.sigstore import (
    SigstoreStack,
    SigstoreStackError,
    check_network_isolation,
    rekor_v2_log_id,
    start_sigstore_stack,
)

pytestmark = pytest.mark.interop

# Fulcio's certificate extensions (OID 1.3.6.1.4.1.57264.1.N)
OID_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8"
OID_BUILD_SIGNER_URI = "1.3.6.1.4.1.57264.1.9"
OID_SOURCE_REPOSITORY_URI = "1.3.6.1.4.1.57264.1.12"
OID_SOURCE_REPOSITORY_REF = "1.3.6.1.4.1.57264.1.14"
OID_BUILD_TRIGGER = "1.3.6.1.4.1.57264.1.20"
OID_RUN_INVOCATION_URI = "1.3.6.1.4.1.57264.1.21"


def require_peer(name: str) -> Path:
    """Like tests.support.peers.peer, but a missing peer is a failure everywhere, not a skip."""
    found = shutil.which(name)
    path = Path(found) if found else PEERS_DIR / name
    if not path.exists():
        pytest.fail(f"peer {name} is not installed: run scripts/install-peers.sh")
    return path


def utf8_extension(cert: x509.Certificate, oid: str) -> str:
    """The value of one of Fulcio's DER UTF8String extensions."""
    raw = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value
    assert isinstance(raw, x509.UnrecognizedExtension)
    data = raw.value
    assert data[0] == 0x0C, "not a UTF8String"
    length, offset = data[1], 2
    if length & 0x80:
        n = length & 0x7F
        length, offset = int.from_bytes(data[2:2 + n], "big"), 2 + n
    return data[offset:offset + length].decode()


@pytest.fixture
def image(registry: RegistryServer, client: RegistryClient, repo_name: str) -> str:
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), small_image("keyless"))
    return f"{registry.host}/{repo_name}@{digest}"


# -- the stack itself ----------------------------------------------------------------------------
def test_stack_is_up_with_trust_files(sigstore_stack: SigstoreStack) -> None:
    from sigstore.models import ClientTrustConfig

    s = sigstore_stack
    assert all(server.alive() for name, server in s.servers.items() if name != "mariadb-install-db")
    for url in (s.fulcio_url, s.rekor_url, s.rekor_v2_url, s.ctlog_url, s.tsa_url, s.oidc_issuer):
        assert url.startswith("http://127.0.0.1:")
    for path in (s.fulcio_root_pem, s.fulcio_chain_pem, s.rekor_public_key_pem, s.ct_log_public_key_pem,
                 s.tsa_chain_pem, s.rekor_v2_public_key_pem):
        assert path.read_text().startswith("-----BEGIN ")
    root = json.loads(s.trusted_root.read_text())
    assert [t["publicKey"]["keyDetails"] for t in root["tlogs"]] == ["PKIX_ECDSA_P256_SHA_256", "PKIX_ED25519"]
    assert root["tlogs"][1]["baseUrl"] == s.rekor_v2_url
    assert len(root["certificateAuthorities"][0]["certChain"]["certificates"]) == 2
    assert root["timestampAuthorities"][0]["certChain"]["certificates"]
    # the Rekor v2 log ID is its checkpoint key hash over the origin
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    pub = load_pem_public_key(s.rekor_v2_public_key_pem.read_bytes())
    import base64
    assert base64.b64decode(root["tlogs"][1]["logId"]["keyId"]) == rekor_v2_log_id(s.rekor_v2_origin, pub)  # type: ignore[arg-type]
    for cfg_path, version in ((s.trust_config, 1), (s.trust_config_v2, 2)):
        cfg = ClientTrustConfig.from_json(cfg_path.read_text())
        assert [t.major_api_version for t in cfg.signing_config._tlogs] == [version]
    assert json.loads(s.signing_config_v2.read_text())["tsaUrls"][0]["url"] == s.tsa_url
    assert set(s.cosign_env()) == {"SIGSTORE_ROOT_FILE", "SIGSTORE_REKOR_PUBLIC_KEY",
                                   "SIGSTORE_CT_LOG_PUBLIC_KEY_FILE"}


def test_tokens_carry_ci_claims(sigstore_stack: SigstoreStack) -> None:
    claims = decode_unverified(sigstore_stack.token(claims={"project_path": "team/app", "ref": "v1.2.0",
                                                            "ref_type": "tag"}))
    assert claims["iss"] == sigstore_stack.oidc_issuer
    assert claims["aud"] == "sigstore"
    assert claims["sub"] == "project_path:team/app:ref_type:tag:ref:v1.2.0"
    assert claims["ci_config_ref_uri"] == "gitlab.example/team/app//.gitlab-ci.yml@refs/tags/v1.2.0"
    assert decode_unverified(sigstore_stack.token(subject="someone"))["sub"] == "someone"
    k8s = decode_unverified(sigstore_stack.token(profile="kubernetes", claims={"namespace": "ci"}))
    assert k8s["kubernetes.io"]["namespace"] == "ci"
    assert k8s["sub"] == "system:serviceaccount:ci:signer"


def test_network_isolation_check() -> None:
    with pytest.raises(SigstoreStackError, match=r"unshare --net.*interfaces here: eth0, lo"):
        check_network_isolation({}, ["lo", "eth0"])
    check_network_isolation({"VOUCH_SIGSTORE_ANY_NETWORK": "1"}, ["lo", "eth0"])
    check_network_isolation({}, ["lo"])


def test_failed_start_names_the_server_and_cleans_up(sigstore_stack: SigstoreStack, tmp_path: Path) -> None:
    """A second stack beside the session's: the TSA cannot have its fixed metrics port 2112."""
    assert sigstore_stack.servers["timestamp-server"].alive()
    with pytest.raises(SigstoreStackError) as e:
        start_sigstore_stack(tmp_path, timeout=20)
    message = str(e.value)
    assert message.startswith("timestamp-server exited with status"), message
    assert "2112" in message  # the tail of its log says why
    assert list(tmp_path.iterdir()) == []  # its directory is gone
    assert sigstore_stack.servers["timestamp-server"].alive()


def test_oidc_issuer_serves_discovery_and_jwks() -> None:
    import urllib.request

    with OIDCIssuer() as issuer:
        iss = issuer.issuer_url("github")
        with urllib.request.urlopen(f"{iss}/.well-known/openid-configuration", timeout=5) as r:
            doc = json.load(r)
        assert doc["issuer"] == iss
        with urllib.request.urlopen(doc["jwks_uri"], timeout=5) as r:
            jwks = json.load(r)
        assert jwks["keys"][0]["kid"] == issuer.kid
        assert decode_unverified(issuer.token("github"))["job_workflow_ref"].startswith("platform/images/")


# -- cosign 2: legacy layout, Fulcio + Rekor v1, verified offline --------------------------------
def test_cosign2_keyless_legacy_offline(sigstore_stack: SigstoreStack, image: str, client: RegistryClient,
                                        tmp_path: Path) -> None:
    s = sigstore_stack
    cosign = require_peer("cosign2")
    env = s.cosign_env()
    run_peer(cosign, "sign", "--yes", "--allow-http-registry=true", "--fulcio-url", s.fulcio_url,
             "--rekor-url", s.rekor_url, "--identity-token", s.token(), image, home=tmp_path, env=env)
    ref = Reference.parse(image)
    assert ref.digest
    [layer] = read_tag(client, Reference(ref.registry, ref.repository), tag_for(ref.digest, SIG_SUFFIX)).layers
    annotations = layer.annotations or {}
    bundle = json.loads(annotations["dev.sigstore.cosign/bundle"])
    assert bundle["SignedEntryTimestamp"] and bundle["Payload"]["logIndex"] >= 0
    cert = x509.load_pem_x509_certificate(annotations["dev.sigstore.cosign/certificate"].encode())
    assert utf8_extension(cert, OID_ISSUER_V2) == s.oidc_issuer
    assert utf8_extension(cert, OID_SOURCE_REPOSITORY_URI) == "https://gitlab.example/platform/images"
    assert utf8_extension(cert, OID_SOURCE_REPOSITORY_REF) == "refs/heads/main"
    # offline: no Rekor (a dead URL), no TUF; the SET and the embedded SCT are the evidence
    verify = ["verify", "--offline=true", "--allow-http-registry=true", "--rekor-url", "http://127.0.0.1:9",
              "--certificate-oidc-issuer", s.oidc_issuer]
    r = run_peer(cosign, *verify, "--certificate-identity", s.identity(), image, home=tmp_path, env=env)
    [payload] = json.loads(r.stdout)
    assert payload["critical"]["image"]["docker-manifest-digest"] == ref.digest
    bad = run_peer(cosign, *verify, "--certificate-identity", "https://gitlab.example/other", image,
                   home=tmp_path, env=env, check=False)
    assert bad.returncode != 0
    assert "none of the expected identities matched" in bad.stderr
    # cosign 3 reads the same legacy signature with the trusted root alone (it holds the Rekor v1 key)
    run_peer(require_peer("cosign3"), "verify", "--new-bundle-format=false", "--allow-http-registry=true",
             "--trusted-root", str(s.trusted_root), "--certificate-identity", s.identity(),
             "--certificate-oidc-issuer", s.oidc_issuer, image, home=tmp_path)


# -- cosign 3: sigstore bundle, Rekor v2 + TSA -----------------------------------------------------
def test_cosign3_keyless_bundle_rekor_v2(sigstore_stack: SigstoreStack, image: str, tmp_path: Path) -> None:
    s = sigstore_stack
    cosign = require_peer("cosign3")
    token = s.token(profile="github")
    run_peer(cosign, "sign", "--yes", "--allow-http-registry=true", "--signing-config", str(s.signing_config_v2),
             "--trusted-root", str(s.trusted_root), "--identity-token", token, image, home=tmp_path)
    verify = ["verify", "--allow-http-registry=true", "--trusted-root", str(s.trusted_root),
              "--certificate-oidc-issuer", s.issuer_url("github")]
    r = run_peer(cosign, *verify, "--certificate-identity", s.identity(profile="github"), image, home=tmp_path)
    [payload] = json.loads(r.stdout)
    assert payload["critical"]["image"]["docker-manifest-digest"] == image.split("@")[1]
    bad = run_peer(cosign, *verify, "--certificate-identity", s.identity(), image, home=tmp_path, check=False)
    assert bad.returncode != 0


# -- sigstore-python: public API against Rekor v1 and v2 -----------------------------------------
@pytest.mark.parametrize("rekor", ["v1", "v2"])
def test_sigstore_python_sign_verify(sigstore_stack: SigstoreStack, rekor: str) -> None:
    from sigstore.errors import VerificationError
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext
    from sigstore.verify import Verifier
    from sigstore.verify.policy import Identity

    s = sigstore_stack
    path = s.trust_config if rekor == "v1" else s.trust_config_v2
    cfg = ClientTrustConfig.from_json(path.read_text())
    claims = {"project_path": "team/app", "ref": "v2.0.0", "ref_type": "tag", "pipeline_source": "web"}
    artifact = f"artifact for rekor {rekor} {os.urandom(8).hex()}".encode()
    with SigningContext.from_trust_config(cfg).signer(IdentityToken(s.token(claims=claims))) as signer:
        bundle = signer.sign_artifact(artifact)
    cert = bundle.signing_certificate
    san = s.identity(claims)
    assert san == "https://gitlab.example/team/app//.gitlab-ci.yml@refs/tags/v2.0.0"
    assert utf8_extension(cert, OID_BUILD_SIGNER_URI) == san
    assert utf8_extension(cert, OID_SOURCE_REPOSITORY_REF) == "refs/tags/v2.0.0"
    assert utf8_extension(cert, OID_BUILD_TRIGGER) == "web"
    assert utf8_extension(cert, OID_RUN_INVOCATION_URI) == "https://gitlab.example/team/app/-/jobs/5001"
    doc = json.loads(bundle.to_json())
    [entry] = doc["verificationMaterial"]["tlogEntries"]
    if rekor == "v1":
        assert entry["inclusionPromise"]["signedEntryTimestamp"]
    else:
        assert "inclusionPromise" not in entry
        assert doc["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
    verifier = Verifier(trusted_root=cfg.trusted_root)
    verifier.verify_artifact(artifact, bundle, Identity(identity=san, issuer=s.oidc_issuer))
    with pytest.raises(VerificationError):
        verifier.verify_artifact(artifact + b"!", bundle, Identity(identity=san, issuer=s.oidc_issuer))
    with pytest.raises(VerificationError):
        verifier.verify_artifact(artifact, bundle, Identity(identity=san, issuer=s.issuer_url("github")))


def test_sigstore_python_kubernetes_identity(sigstore_stack: SigstoreStack) -> None:
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext
    from sigstore.verify import Verifier
    from sigstore.verify.policy import Identity

    s = sigstore_stack
    cfg = ClientTrustConfig.from_json(s.trust_config.read_text())
    token = s.token(profile="kubernetes", claims={"namespace": "release", "serviceaccount": "vouch"})
    with SigningContext.from_trust_config(cfg).signer(IdentityToken(token)) as signer:
        bundle = signer.sign_artifact(b"k8s")
    san = "https://kubernetes.io/namespaces/release/serviceaccounts/vouch"
    assert s.identity({"namespace": "release", "serviceaccount": "vouch"}, profile="kubernetes") == san
    Verifier(trusted_root=cfg.trusted_root).verify_artifact(
        b"k8s", bundle, Identity(identity=san, issuer=s.issuer_url("kubernetes")))
