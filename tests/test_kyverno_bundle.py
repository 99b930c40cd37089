"""`vouch policy kyverno --layout legacy|bundle|both`, proven with the real Kyverno CLI (v1.19.0) against images
signed in each storage layout by real cosign 3.1.2 (and 2.6.4) and by `vouch release --layout`, in two
registries: the test bed's docker-registry 2.8 (no referrers API: the `sha256-<hex>` fallback index is
written) and the test-only OCI 1.1 registry with the referrers API (vouch.testbed.ociregistry).

What Kyverno 1.19 does, read in its source (pkg/image/verifiers/cpol/cosign/sigstore.go,
pkg/engine/internal/imageverifier.go, pkg/engine/handlers/mutation/mutate_image.go):
- `type: SigstoreBundle` lists the image's referrers with go-containerregistry's `remote.Referrers` (the
  referrers API, else the fallback tag), keeps descriptors whose `artifactType` starts with
  `application/vnd.dev.sigstore.bundle`, and verifies each bundle with sigstore-go. Static keys work
  (kyverno#16267, fixed in 1.19.0 by #16800); with `ignoreTlog` + `ignoreSCT` the key is the whole trusted
  material, no TUF root is fetched, so `kyverno apply` needs no flags and no network.
- Every verifyImages entry and every rule is evaluated on its own and a fail of any refuses the pod: two
  layouts in one policy are ANDed, so `--layout both` admits only images carrying both.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import jsonschema
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.support.images import small_image
from tests.support.keys import write_keypair
from tests.support.peers import peer, run_peer
from tests.support.registry import RegistryServer
from tests.test_helm_chart import CHART, render
from tests.test_kyverno_apply import admitted
from tests.test_kyverno_policy import crd_schema
from vouch.deploy.kyverno import RULE_NAMES, SIGN_PREDICATE_TYPE, admission_rule_problems, cluster_policy
from vouch.errors import InputError
from vouch.keys.cosign import encrypt_private_key, generate_private_key, public_key_pem
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient, RegistryOptions
from vouch.oci.reference import Reference
from vouch.testbed.ociregistry import start_oci_registry

BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
LEGACY = ["--new-bundle-format=false", "--use-signing-config=false", "--tlog-upload=false",
          "--allow-insecure-registry", "-y"]
BUNDLE = ["--new-bundle-format=true", "--use-signing-config=false", "--tlog-upload=false",
          "--allow-insecure-registry", "-y"]
COSIGN2_BUNDLE = ["--new-bundle-format=true", "--tlog-upload=false", "--allow-insecure-registry", "-y"]


def pem(key: object) -> bytes:
    return public_key_pem(key)  # type: ignore[arg-type]


# ---- rendering (no peers) ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["audit", "enforce"])
@pytest.mark.parametrize("layout", ["legacy", "bundle", "both"])
def test_each_layout_validates(layout: str, mode: str) -> None:
    keys = pem(generate_private_key()) + pem(generate_private_key())
    policy = cluster_policy(keys, ["r.example/app/*"], mode, layout=layout)
    jsonschema.Draft7Validator(crd_schema()).validate(policy)
    assert admission_rule_problems(policy) == []
    rules = policy["spec"]["rules"]
    kinds = ["legacy", "bundle"] if layout == "both" else [layout]
    assert [r["name"] for r in rules] == [RULE_NAMES[k] for k in kinds]  # one rule per layout: see module doc
    legacy_rule = cluster_policy(keys, ["r.example/app/*"], mode)["spec"]["rules"][0]
    for kind, rule in zip(kinds, rules, strict=True):
        assert len(rule["verifyImages"]) == 1
        vi = rule["verifyImages"][0]
        if kind == "bundle":
            assert vi.pop("type") == "SigstoreBundle"
            # the signature's own statement, required as an attestation (see the admission matrix below)
            assert vi["attestations"].pop() == {"type": SIGN_PREDICATE_TYPE, "attestors": vi["attestors"]}
        assert "type" not in vi  # legacy: Kyverno's default type, Cosign
        assert vi == legacy_rule["verifyImages"][0]  # the same key attestors and SBOM condition


def test_legacy_is_the_default_and_unchanged() -> None:
    keys = pem(generate_private_key())
    policy = cluster_policy(keys, ["r/*"], "enforce")
    assert policy == cluster_policy(keys, ["r/*"], "enforce", layout="legacy")
    assert [r["name"] for r in policy["spec"]["rules"]] == ["verify-signature-and-sbom"]
    assert policy["metadata"]["annotations"]["policies.kyverno.io/description"].endswith("by the release key(s).")


def test_curve_hashes_and_refused_keys() -> None:
    """cosign signs P-384 with SHA-384 and P-521 with SHA-512 (both layouts, cosign 2 and 3); Kyverno verifies
    SHA-256 unless told. Ed25519: cosign signs Ed25519ph, Kyverno 1.19 verifies pure Ed25519: refused."""
    keys = {"p256": generate_private_key(), "p384": ec.generate_private_key(ec.SECP384R1()),
            "p521": ec.generate_private_key(ec.SECP521R1()), "rsa": rsa.generate_private_key(65537, 3072)}
    policy = cluster_policy(b"".join(pem(k.public_key()) for k in keys.values()), ["r/*"], layout="both")
    for rule in policy["spec"]["rules"]:
        vi = rule["verifyImages"][0]
        for attestor in (vi["attestors"][0], vi["attestations"][0]["attestors"][0]):
            algs = [e["keys"].get("signatureAlgorithm") for e in attestor["entries"]]
            assert algs == [None, "sha384", "sha512", None]
    ed = pem(ed25519.Ed25519PrivateKey.generate().public_key())
    for layout in ("legacy", "bundle", "both"):
        with pytest.raises(InputError, match="Ed25519 key cannot be a Kyverno attestor"):
            cluster_policy(pem(generate_private_key()) + ed, ["r/*"], layout=layout)


def test_cli_layout_option(tmp_path: Path) -> None:
    pub = tmp_path / "cosign.pub"
    pub.write_bytes(pem(generate_private_key()))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vouch", "policy", "kyverno", "--key", str(pub), *args],
                              capture_output=True, text=True, timeout=60)

    r = run("--layout", "both", "--mode", "enforce")
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(r.stdout)
    jsonschema.Draft7Validator(crd_schema()).validate(doc)
    assert [vi.get("type") for rule in doc["spec"]["rules"] for vi in rule["verifyImages"]] == [None,
                                                                                                "SigstoreBundle"]
    r = run("--layout", "referrers")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == ("Error: invalid layout 'referrers': use legacy (.sig/.att tags), bundle (sigstore "
                                "bundle referrers) or both")
    ed = tmp_path / "ed.pub"
    ed.write_bytes(pem(ed25519.Ed25519PrivateKey.generate().public_key()))
    r = subprocess.run([sys.executable, "-m", "vouch", "policy", "kyverno", "--key", str(ed), "--layout", "bundle"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
    assert "Ed25519 key cannot be a Kyverno attestor" in r.stderr and "vouch generate-key-pair" in r.stderr


# ---- the chart renders the same policy for each layout ----------------------------------------------


@pytest.mark.parametrize("layout", ["legacy", "bundle", "both"])
def test_chart_renders_each_layout(tmp_path: Path, layout: str) -> None:
    keys = pem(generate_private_key()) + pem(ec.generate_private_key(ec.SECP384R1()).public_key()) + pem(
        ec.generate_private_key(ec.SECP521R1()).public_key()) + pem(rsa.generate_private_key(65537, 2048).public_key())
    (tmp_path / "cosign.pub").write_bytes(keys)
    doc = render(tmp_path, "--set-file", f"imagePolicy.publicKeys={tmp_path / 'cosign.pub'}",
                 "--set", f"imagePolicy.layout={layout}", "--set", "imagePolicy.enforce=true")
    jsonschema.Draft7Validator(crd_schema()).validate(doc)
    assert doc["spec"] == cluster_policy(keys, ["harbor.akko-ai.com/akko/*"], "enforce", layout=layout)["spec"]


def test_chart_refuses_what_the_cli_refuses(tmp_path: Path) -> None:
    helm = peer("helm")
    (tmp_path / "ed.pub").write_bytes(pem(ed25519.Ed25519PrivateKey.generate().public_key()))
    (tmp_path / "ok.pub").write_bytes(pem(generate_private_key()))

    def template(*sets: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(helm), "template", "akko-opa", str(CHART), *sets], capture_output=True, text=True,
                              timeout=120, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})

    r = template("--set-file", f"imagePolicy.publicKeys={tmp_path / 'ed.pub'}")
    assert r.returncode != 0 and "an Ed25519 key cannot be a Kyverno attestor" in r.stderr
    r = template("--set-file", f"imagePolicy.publicKeys={tmp_path / 'ok.pub'}", "--set", "imagePolicy.layout=oci")
    assert r.returncode != 0 and "imagePolicy.layout must be legacy, bundle or both" in r.stderr


# ---- kyverno apply against real cosign output, per layout and policy ----------------------------------


@dataclass
class Bed:
    """Images signed every way in one registry, and the three policies over them."""

    host: str
    referrers_api: bool
    images: dict[str, str]
    policies: dict[str, str]
    tags: Callable[[], list[str]]


def _bom(age_days: int) -> str:
    ts = (dt.datetime.now(dt.UTC) - dt.timedelta(days=age_days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
                       "metadata": {"timestamp": ts}, "components": []})


def vouch_in(work: Path, *args: str) -> str:
    """vouch's stdout; no Docker credentials of the user's (module-scoped: the autouse isolation is not on)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COSIGN_", "VOUCH_"))}
    env.update(COSIGN_PASSWORD="pw", DOCKER_CONFIG=str(work / "docker-config"))
    r = subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, env=env, timeout=300,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _make_bed(host: str, referrers_api: bool, work: Path) -> Bed:
    work.mkdir(parents=True, exist_ok=True)
    cosign3, cosign2 = peer("cosign3"), peer("cosign2")
    current, current_pub, _ = write_keypair(work, "current")
    previous, previous_pub, _ = write_keypair(work, "previous")
    other, _, _ = write_keypair(work, "other")
    p384_key = ec.generate_private_key(ec.SECP384R1())
    p384 = work / "p384.key"
    p384.write_bytes(encrypt_private_key(p384_key, b"pw"))
    (work / "fresh.json").write_text(_bom(1))
    (work / "stale.json").write_text(_bom(120))
    bundle_pub = work / "policy.pub"  # the rotation overlap plus a P-384 key (signatureAlgorithm: sha384)
    bundle_pub.write_bytes(current_pub.read_bytes() + previous_pub.read_bytes() + pem(p384_key.public_key()))
    env = {"COSIGN_PASSWORD": "pw"}
    client = RegistryClient(RegistryOptions(backoff=0.01))

    def cosign(binary: Path, flags: list[str], key: Path, image: str, sbom: str | None = "fresh.json",
               sign: bool = True) -> None:
        if sign:
            run_peer(binary, "sign", "--key", str(key), *flags, image, home=work, env=env)
        if sbom:
            run_peer(binary, "attest", "--key", str(key), *flags, "--type", "cyclonedx", "--predicate",
                     str(work / sbom), image, home=work, env=env)

    # label: the cosign runs that sign it, each (binary, flags, key, SBOM file or None, sign too)
    recipes: dict[str, list[tuple[Path, list[str], Path, str | None, bool]]] = {
        "unsigned": [],
        "legacy": [(cosign3, LEGACY, current, "fresh.json", True)],
        "bundle": [(cosign3, BUNDLE, current, "fresh.json", True)],
        "both": [(cosign3, LEGACY, current, "fresh.json", True), (cosign3, BUNDLE, current, "fresh.json", True)],
        "bundle, no SBOM": [(cosign3, BUNDLE, current, None, True)],
        "bundle, SBOM 120 days old": [(cosign3, BUNDLE, current, "stale.json", True)],
        "bundle, SBOM attestation only": [(cosign3, BUNDLE, current, "fresh.json", False)],
        "bundle, another key": [(cosign3, BUNDLE, other, "fresh.json", True)],
        "bundle, previous key": [(cosign3, BUNDLE, previous, "fresh.json", True)],
        "bundle, P-384 key": [(cosign3, BUNDLE, p384, "fresh.json", True)],
        "legacy, P-384 key": [(cosign3, LEGACY, p384, "fresh.json", True)],
        "cosign 2 bundle": [(cosign2, COSIGN2_BUNDLE, current, "fresh.json", True)],
        "vouch release --layout bundle": [],
        "vouch release --layout both": [],
    }
    images = {}
    for n, (label, recipe) in enumerate(recipes.items()):
        ref = Reference(host, "apps/web", f"case{n}")
        images[label] = f"{host}/apps/web@{push_image(client, ref, small_image(label))}"
        for binary, flags, key, sbom, sign in recipe:
            cosign(binary, flags, key, images[label], sbom, sign)
        if label.startswith("vouch release"):  # vouch's own writer: SBOM + signature in that layout
            vouch_in(work, "release", "--key", str(current), "--layout", label.rsplit(" ", 1)[1], images[label])
    client.close()
    policies = {layout: vouch_in(work, "policy", "kyverno", "--key", str(bundle_pub), "--images", f"{host}/apps/*",
                                 "--mode", "enforce", "--layout", layout)
                for layout in ("legacy", "bundle", "both")}

    def tags() -> list[str]:
        return httpx.get(f"http://{host}/v2/apps/web/tags/list", timeout=10).json()["tags"]  # type: ignore[no-any-return]

    return Bed(host, referrers_api, images, policies, tags)


@pytest.fixture(scope="module", params=["fallback", "referrers"])
def bed(request: pytest.FixtureRequest, registry: RegistryServer,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    """fallback: the test bed's docker-registry 2.8 (404 on /referrers/); referrers: the OCI 1.1 test registry."""
    for name in ("cosign2", "cosign3", "kyverno"):
        peer(name)
    work = tmp_path_factory.mktemp(f"bed-{request.param}")
    if request.param == "fallback":
        yield _make_bed(registry.host, False, work)
    else:
        oci = start_oci_registry()
        try:
            yield _make_bed(oci.host, True, work)
        finally:
            oci.stop()


# Observed with Kyverno 1.19.0 (True = admitted), per image and policy layout; the same in both registries.
EXPECTED: dict[str, dict[str, bool]] = {
    "unsigned": {"legacy": False, "bundle": False, "both": False},
    "legacy": {"legacy": True, "bundle": False, "both": False},
    "bundle": {"legacy": False, "bundle": True, "both": False},
    "both": {"legacy": True, "bundle": True, "both": True},
    "bundle, no SBOM": {"legacy": False, "bundle": False, "both": False},
    "bundle, SBOM 120 days old": {"legacy": False, "bundle": False, "both": False},
    # Kyverno's bundle signature check takes any verified bundle of the image, an attestation too (it filters
    # by predicate type only for attestations); the rendered rule also requires the cosign/sign/v1 statement,
    # so an SBOM attestation without a signature is refused (without that attestation entry it was admitted).
    "bundle, SBOM attestation only": {"legacy": False, "bundle": False, "both": False},
    "bundle, another key": {"legacy": False, "bundle": False, "both": False},
    "bundle, previous key": {"legacy": False, "bundle": True, "both": False},  # count: 1 over the keys
    "bundle, P-384 key": {"legacy": False, "bundle": True, "both": False},  # signatureAlgorithm: sha384
    "legacy, P-384 key": {"legacy": True, "bundle": False, "both": False},
    # cosign 2.6.4 --new-bundle-format: without the referrers API its fallback index hides the bundles from
    # Kyverno (see test_where_cosign_put_the_bundles); with it, its signature statement has no `predicate`,
    # which Kyverno's cosign/sign/v1 attestation check refuses ("predicate not found in any statement").
    "cosign 2 bundle": {"legacy": False, "bundle": False, "both": False},
    "vouch release --layout bundle": {"legacy": False, "bundle": True, "both": False},
    "vouch release --layout both": {"legacy": True, "bundle": True, "both": True},
}


@pytest.mark.interop
def test_admission_per_layout_and_policy(bed: Bed, tmp_path: Path) -> None:
    cells = [(image, layout) for image in bed.images for layout in bed.policies]

    def decide(n_cell: tuple[int, tuple[str, str]]) -> tuple[tuple[str, str], bool, str]:
        n, (image, layout) = n_cell
        work = tmp_path / f"cell{n}"
        work.mkdir()
        ok, out = admitted(work, bed.policies[layout], bed.images[image])
        return (image, layout), ok, out

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(decide, enumerate(cells)))
    seen = {cell: ok for cell, ok, _ in results}
    outputs = {cell: out for cell, _, out in results}
    want = {(image, layout): EXPECTED[image][layout] for image, layout in cells}
    wrong = {cell: seen[cell] for cell in cells if seen[cell] != want[cell]}
    assert wrong == {}, "\n\n".join(f"{cell}: admitted={ok}\n{outputs[cell][-1500:]}" for cell, ok in wrong.items())

    # why each refusal: Kyverno's own words
    assert "no signatures found" in outputs[("unsigned", "legacy")]
    assert "sigstore bundle verification failed: no matching signatures found" in outputs[("unsigned", "bundle")]
    assert "sigstore bundle verification failed" in outputs[("legacy", "bundle")]
    assert "no signatures found" in outputs[("bundle", "legacy")]
    assert "attestation checks failed" in outputs[("bundle, SBOM 120 days old", "bundle")]
    # the signature attestor passes on the SBOM bundle; the cosign/sign/v1 attestation finds no signature
    assert "image attestations verification failed" in outputs[("bundle, SBOM attestation only", "bundle")]
    cosign2 = outputs[("cosign 2 bundle", "bundle")]
    if bed.referrers_api:
        assert "predicate not found in any statement" in cosign2  # its bundles are seen, its statement is not enough
    else:
        assert "sigstore bundle verification failed: no matching signatures found" in cosign2  # not even seen
    # both: each layout is its own rule, and the image fails the one whose layout it lacks
    assert RULE_NAMES["bundle"] in outputs[("legacy", "both")] and RULE_NAMES["legacy"] in outputs[("bundle", "both")]


@pytest.mark.interop
def test_where_cosign_put_the_bundles(bed: Bed) -> None:
    """docker-registry 2.8: the `sha256-<hex>` fallback index. cosign 3.1.2 (go-containerregistry >= 0.21.6,
    google/go-containerregistry#2269) types its members with the bundle's artifactType, which Kyverno keeps;
    cosign 2.6.4 (go-containerregistry 0.20.7) types them `application/vnd.oci.empty.v1+json`, which Kyverno
    1.19 filters out (kyverno#16664, fix proposed in #16754). With the referrers API the registry builds the
    list from each manifest's own artifactType, and no fallback tag is written."""
    tags = bed.tags()
    for label, want in (("bundle", BUNDLE_TYPE), ("cosign 2 bundle", EMPTY_TYPE)):
        digest = bed.images[label].split("@")[1]
        fallback = digest.replace(":", "-")
        if bed.referrers_api:
            assert fallback not in tags
            listing = httpx.get(f"http://{bed.host}/v2/apps/web/referrers/{digest}", timeout=10).json()
            assert {m["artifactType"] for m in listing["manifests"]} == {BUNDLE_TYPE}
        else:
            assert httpx.get(f"http://{bed.host}/v2/apps/web/referrers/{digest}", timeout=10).status_code == 404
            index = httpx.get(f"http://{bed.host}/v2/apps/web/manifests/{fallback}", timeout=10,
                              headers={"Accept": "application/vnd.oci.image.index.v1+json"}).json()
            assert len(index["manifests"]) == 2  # the signature and the SBOM attestation
            assert {m["artifactType"] for m in index["manifests"]} == {want}
        assert f"{fallback}.sig" not in tags and f"{fallback}.att" not in tags  # no legacy tags for bundles

