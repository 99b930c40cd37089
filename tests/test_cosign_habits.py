"""cosign users' habits (issue 18): a script written for cosign runs with `cosign` replaced by `vouch`.

Against the real registry, the CLI run as a subprocess; where it is cheap the very same command line is
run through the real cosign 2 too, to show it is cosign's spelling and not only vouch's.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.images import small_image, two_platform_index
from tests.support.keys import write_keypair
from tests.support.peers import peer, run_peer
from tests.support.registry import RegistryServer
from tests.test_dtrack import API_KEY, FakeDT
from vouch.keys.cosign import load_public_keys
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.store.layout import SIG_SUFFIX, read_tag, tag_for

COSIGN_HTTP = "--allow-http-registry=true"  # cosign's flag for a plain-HTTP registry (vouch allows loopback)
NO_PASSWORD = "no COSIGN_PASSWORD and no TTY to prompt on; set COSIGN_PASSWORD"
TLOG_REFUSED = "vouch does not upload to a transparency log in key mode yet"


def vouch(*args: str, env: dict[str, str] | None = None, stdin: bytes = b"", cwd: Path | None = None,
          password: str | None = "pw") -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("COSIGN_")}
    if password is not None:
        full["COSIGN_PASSWORD"] = password
    full.update(env or {})
    r = subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, env=full, cwd=cwd, input=stdin,
                       timeout=180)
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(), r.stderr.decode())


def ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}"
    return r


def usage_error(r: subprocess.CompletedProcess[str], text: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert text in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str]:
    priv, pub, _ = write_keypair(tmp_path, "k")
    return {"key": str(priv), "pub": str(pub), "COSIGN_PRIVATE_KEY": priv.read_text(),
            "COSIGN_PUBLIC_KEY": pub.read_text()}


def _image(registry: RegistryServer, client: RegistryClient, repo: str, tag: str = "v1") -> str:
    digest = push_image(client, Reference(registry.host, repo, tag), small_image("habits"))
    return f"{registry.host}/{repo}@{digest}"


def _sig_layers(client: RegistryClient, image: str) -> int:
    ref = Reference.parse(image)
    assert ref.digest
    return len(read_tag(client, Reference(ref.registry, ref.repository), tag_for(ref.digest, SIG_SUFFIX)).layers)


# ---- --yes, --tlog-upload=false, env:// keys: one command line for cosign and vouch -------------------------

SIGN = ["sign", "--key", "env://COSIGN_PRIVATE_KEY", "--tlog-upload=false", "-y"]
VERIFY = ["verify", "--key", "env://COSIGN_PUBLIC_KEY", "--insecure-ignore-tlog=true", "--offline=true"]


def test_cosign_sign_line_runs_with_vouch(registry: RegistryServer, client: RegistryClient, repo_name: str,
                                          keys: dict[str, str], tmp_path: Path) -> None:
    env = {"COSIGN_PRIVATE_KEY": keys["COSIGN_PRIVATE_KEY"], "COSIGN_PUBLIC_KEY": keys["COSIGN_PUBLIC_KEY"]}
    by_vouch = _image(registry, client, repo_name, "a")
    ok(vouch(*SIGN, by_vouch, env=env))
    assert _sig_layers(client, by_vouch) == 1
    [payload] = json.loads(ok(vouch(*VERIFY, by_vouch, env=env)).stdout)
    assert payload["critical"]["image"]["docker-manifest-digest"] == by_vouch.split("@")[1]
    # --yes spelled out, and cosign's bool spelling on every boolean flag
    ok(vouch("sign", "--key", "env://COSIGN_PRIVATE_KEY", "--tlog-upload=false", "--yes", "--recursive=false",
             by_vouch, env=env))
    ok(vouch(*VERIFY, "--check-reference=false", by_vouch, env=env))

    cosign = peer("cosign2")
    by_cosign = _image(registry, client, repo_name, "b")
    run_peer(cosign, *SIGN, COSIGN_HTTP, by_cosign, home=tmp_path, env={**env, "COSIGN_PASSWORD": "pw"})
    # each tool verifies the other's signature with the same line
    [payload] = json.loads(ok(vouch(*VERIFY, by_cosign, env=env)).stdout)
    assert payload["critical"]["image"]["docker-manifest-digest"] == by_cosign.split("@")[1]
    run_peer(cosign, *VERIFY, COSIGN_HTTP, by_vouch, home=tmp_path, env=env)


def test_explicit_tlog_upload_true_is_refused(registry: RegistryServer, client: RegistryClient, repo_name: str,
                                              keys: dict[str, str], tmp_path: Path) -> None:
    image = _image(registry, client, repo_name)
    predicate = tmp_path / "p.json"
    predicate.write_text('{"a": 1}')
    for spelling in ("--tlog-upload=true", "--tlog-upload", "--tlog-upload=1"):
        usage_error(vouch("sign", "--key", keys["key"], spelling, image), TLOG_REFUSED)
        usage_error(vouch("attest", "--key", keys["key"], "--predicate", str(predicate), spelling, image),
                    TLOG_REFUSED)
        usage_error(vouch("attest-sbom", "--key", keys["key"], spelling, image), TLOG_REFUSED)
    assert _sig_layers(client, image) == 0
    # false is accepted on all three (attest and attest-sbom take -y too, as cosign's)
    ok(vouch("attest", "--key", keys["key"], "--predicate", str(predicate), "--tlog-upload=false", "-y", image))
    r = vouch("sign", "--key", keys["key"], "--tlog-upload=maybe", image)
    assert r.returncode == 2 and "--tlog-upload takes true or false" in r.stderr
    # --offline=false means nothing to vouch (it never leaves the registry) but parses, as --no-offline
    ok(vouch("verify-attestation", "--key", keys["pub"], "--offline=false", "--insecure-ignore-tlog=false", image))


def test_env_keys(registry: RegistryServer, client: RegistryClient, repo_name: str, keys: dict[str, str]) -> None:
    image = _image(registry, client, repo_name)
    usage_error(vouch("sign", "--key", "env://COSIGN_PRIVATE_KEY", image),
                "the environment variable COSIGN_PRIVATE_KEY is not set or empty")
    usage_error(vouch("sign", "--key", "env://COSIGN_PRIVATE_KEY", image, env={"COSIGN_PRIVATE_KEY": ""}),
                "is not set or empty")
    usage_error(vouch("verify", "--key", "env://", image), "names no variable")
    usage_error(vouch("verify", "--key", "env://NOPE", image), "the environment variable NOPE is not set or empty")
    env = {"PRIV": keys["COSIGN_PRIVATE_KEY"], "PUB": keys["COSIGN_PUBLIC_KEY"]}
    assert ok(vouch("public-key", "--key", "env://PRIV", env=env)).stdout == keys["COSIGN_PUBLIC_KEY"]
    ok(vouch("attest-sbom", "--key", "env://PRIV", image, env=env))
    ok(vouch("verify-attestation", "--key", "env://PUB", "--type", "cyclonedx", image, env=env))
    ok(vouch("release", "--key", "env://PRIV", image, env=env))
    ok(vouch("verify-release", "--key", "env://PUB", image, env=env))
    policy = ok(vouch("policy", "kyverno", "--key", "env://PUB", env=env)).stdout
    assert "BEGIN PUBLIC KEY" in policy


# ---- --key https://…/cosign.pub ------------------------------------------------------------------------------


class KeyServer:
    """A loopback HTTP server: /cosign.pub, a redirect to plain http elsewhere, an oversized key, a 404."""

    def __init__(self, pem: bytes) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/cosign.pub":
                    body, code, headers = pem, 200, {}
                elif self.path == "/moved":
                    body, code, headers = b"", 302, {"Location": "/cosign.pub"}
                elif self.path == "/elsewhere":
                    body, code, headers = b"", 302, {"Location": "http://example.com/cosign.pub"}
                elif self.path == "/loop":
                    body, code, headers = b"", 302, {"Location": "/loop"}
                elif self.path == "/huge":
                    body, code, headers = pem + b"#" * (1024 * 1024 + 1), 200, {}
                else:
                    body, code, headers = b"not here", 404, {}
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


@pytest.fixture
def key_server(keys: dict[str, str]) -> Iterator[KeyServer]:
    s = KeyServer(keys["COSIGN_PUBLIC_KEY"].encode())
    yield s
    s.server.shutdown()


def test_public_key_from_url(registry: RegistryServer, client: RegistryClient, repo_name: str,
                             keys: dict[str, str], key_server: KeyServer, tmp_path: Path) -> None:
    image = _image(registry, client, repo_name)
    ok(vouch("sign", "--key", keys["key"], image))
    for path in ("/cosign.pub", "/moved"):
        [payload] = json.loads(ok(vouch("verify", "--key", key_server.url(path), image)).stdout)
        assert payload["critical"]["image"]["docker-manifest-digest"] == image.split("@")[1]
    # cosign takes the same URL for a public key
    run_peer(peer("cosign2"), "verify", "--key", key_server.url("/cosign.pub"), "--insecure-ignore-tlog=true",
             COSIGN_HTTP, image, home=tmp_path)
    assert "BEGIN PUBLIC KEY" in ok(vouch("policy", "kyverno", "--key", key_server.url("/cosign.pub"))).stdout

    usage_error(vouch("verify", "--key", key_server.url("/elsewhere"), image), "which is not https")
    usage_error(vouch("verify", "--key", key_server.url("/huge"), image), "is larger than 1048576 bytes")
    usage_error(vouch("verify", "--key", key_server.url("/gone"), image), "the server answered HTTP 404")
    r = vouch("verify", "--key", key_server.url("/gone").replace("//", "//user:s3cret@"), image)
    assert r.returncode == 2 and "HTTP 404" in r.stderr and "s3cret" not in r.stderr  # credentials never printed
    usage_error(vouch("verify", "--key", key_server.url("/loop"), image), "more than 5 redirects")
    usage_error(vouch("verify", "--key", "http://example.com/cosign.pub", image), "fetched over https only")
    usage_error(vouch("sign", "--key", key_server.url("/cosign.pub"), image),
                "a private key is never fetched from a URL")
    # https to a server that does not speak TLS: a network failure, exit 3, one line
    r = vouch("verify", "--key", key_server.url("/cosign.pub").replace("http://", "https://"), image)
    assert r.returncode == 3 and "cannot fetch the public key" in r.stderr and "Traceback" not in r.stderr


# ---- --output-signature, --output-payload, --output-certificate (cosign sign's) -------------------------------


def _check_signature(sig_file: Path, payload_file: Path, pub: str) -> None:
    [key] = load_public_keys(Path(pub).read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(base64.b64decode(sig_file.read_text(), validate=True), payload_file.read_bytes(),
               ec.ECDSA(hashes.SHA256()))


def test_sign_output_files_like_cosign(registry: RegistryServer, client: RegistryClient, repo_name: str,
                                       keys: dict[str, str], tmp_path: Path) -> None:
    image = _image(registry, client, repo_name)
    out = tmp_path / "vouch"
    out.mkdir()
    args = ["--output-signature", str(out / "sig"), "--output-payload", str(out / "payload"),
            "--output-certificate", str(out / "cert")]
    ok(vouch("sign", "--key", keys["key"], *args, image))
    _check_signature(out / "sig", out / "payload", keys["pub"])
    # the signature written is the one stored in the registry
    ref = Reference.parse(image)
    assert ref.digest
    [layer] = read_tag(client, Reference(ref.registry, ref.repository), tag_for(ref.digest, SIG_SUFFIX)).layers
    assert layer.annotations["dev.cosignproject.cosign/signature"] == (out / "sig").read_text()
    # re-signing is a no-op, and still writes the stored signature
    (out / "sig").unlink()
    assert "Already signed" in ok(vouch("sign", "--key", keys["key"], *args, image)).stderr
    assert layer.annotations["dev.cosignproject.cosign/signature"] == (out / "sig").read_text()

    # cosign 2, same flags, same key, another image of the same repository: same kinds of file
    cosign_out = tmp_path / "cosign"
    cosign_out.mkdir()
    other = _image(registry, client, repo_name, "other")
    run_peer(peer("cosign2"), "sign", "--key", keys["key"], "--tlog-upload=false", "-y", COSIGN_HTTP,
             *[a.replace(str(out), str(cosign_out)) for a in args], other, home=tmp_path,
             env={"COSIGN_PASSWORD": "pw"})
    _check_signature(cosign_out / "sig", cosign_out / "payload", keys["pub"])
    assert (cosign_out / "cert").read_bytes() == (out / "cert").read_bytes() == Path(keys["pub"]).read_bytes()
    assert (cosign_out / "payload").read_bytes() == (out / "payload").read_bytes().replace(
        image.split("@")[1].encode(), other.split("@")[1].encode())
    assert (out / "sig").read_text().strip() == (out / "sig").read_text()  # no newline, as cosign's


def test_sign_output_signature_bundle_format_rerun(registry: RegistryServer, client: RegistryClient,
                                                   repo_name: str, keys: dict[str, str], tmp_path: Path) -> None:
    """--new-bundle-format: the bundle's DSSE signature is written, and a no-op re-run writes the one already
    there (it wrote an empty file before)."""
    image = _image(registry, client, repo_name, "bundle-out")
    sig = tmp_path / "sig"
    ok(vouch("sign", "--key", keys["key"], "--new-bundle-format", "--output-signature", str(sig), image))
    first = sig.read_text()
    assert first and base64.b64decode(first, validate=True)
    sig.unlink()
    again = ok(vouch("sign", "--key", keys["key"], "--new-bundle-format", "--output-signature", str(sig), image))
    assert "Already signed" in again.stderr
    assert sig.read_text() == first


def test_sign_output_signature_recursive(registry: RegistryServer, client: RegistryClient, repo_name: str,
                                         keys: dict[str, str], tmp_path: Path) -> None:
    index = two_platform_index("habits")
    push_image(client, Reference(registry.host, repo_name, "multi"), index)
    ok(vouch("sign", "-r", "--key", keys["key"], "--output-signature", str(tmp_path / "sig"),
             "--output-payload", str(tmp_path / "payload"), f"{registry.host}/{repo_name}@{index.digest}"))
    for d in [index.digest] + [i.digest for i in index.images]:
        suffix = "-" + d.replace(":", "-")
        _check_signature(tmp_path / f"sig{suffix}", tmp_path / f"payload{suffix}", keys["pub"])
    assert not (tmp_path / "sig").exists()
    # an output in a directory that does not exist is refused before anything is signed
    image = _image(registry, client, repo_name)
    usage_error(vouch("sign", "--key", keys["key"], "--output-signature", str(tmp_path / "no" / "sig"), image),
                "does not exist; create it first")
    assert _sig_layers(client, image) == 0


# ---- -o/--output after the command, --output-file ------------------------------------------------------------


def test_output_format_before_or_after_the_command(registry: RegistryServer, client: RegistryClient,
                                                   repo_name: str, keys: dict[str, str], tmp_path: Path) -> None:
    image = _image(registry, client, repo_name)
    ok(vouch("sign", "--key", keys["key"], image))
    runs = [vouch("-o", "json", "verify", "--key", keys["pub"], image),
            vouch("verify", "-o", "json", "--key", keys["pub"], image),
            vouch("verify", "--key", keys["pub"], image, "--output=json"),
            vouch("--output", "text", "verify", "--key", keys["pub"], image, "-o", "json")]  # the later one wins
    outs = [json.loads(ok(r).stdout) for r in runs]
    assert all(o == outs[0] for o in outs)
    assert outs[0][0]["verified"] is True and outs[0][0]["image"].endswith(image.split("@")[1])
    # text: cosign's JSON array of payloads, also after the command
    text = json.loads(ok(vouch("-o", "json", "verify", "-o", "text", "--key", keys["pub"], image)).stdout)
    assert text[0]["critical"]["image"]["docker-manifest-digest"] == image.split("@")[1]
    # another command, another order
    assert "digest" in json.loads(ok(vouch("digest", image, "-o", "json")).stdout)
    usage = vouch("verify", "-o", "xml", "--key", keys["pub"], image)
    assert usage.returncode == 2 and "xml" in usage.stderr


def test_output_file_like_cosign(registry: RegistryServer, client: RegistryClient, repo_name: str,
                                 keys: dict[str, str], tmp_path: Path) -> None:
    image = _image(registry, client, repo_name)
    ok(vouch("sign", "--key", keys["key"], image))
    r = ok(vouch("verify", "--key", keys["pub"], "--output-file", str(tmp_path / "vouch.json"), image))
    assert r.stdout == "" and "Verification for" in r.stderr
    run_peer(peer("cosign2"), "verify", "--key", keys["pub"], "--insecure-ignore-tlog=true", COSIGN_HTTP,
             "--output-file", str(tmp_path / "cosign.json"), image, home=tmp_path)
    assert json.loads((tmp_path / "vouch.json").read_text()) == json.loads((tmp_path / "cosign.json").read_text())
    # a failed verification still writes what it printed (here: the JSON report), and exits 1
    other = _image(registry, client, repo_name, "unsigned")
    r = vouch("verify", "-o", "json", "--key", keys["pub"], "--output-file", str(tmp_path / "fail.json"), other)
    assert r.returncode == 1 and json.loads((tmp_path / "fail.json").read_text())[0]["verified"] is False
    usage_error(vouch("verify", "--key", keys["pub"], "--output-file", str(tmp_path / "no" / "x.json"), image),
                "does not exist; create it first")


# ---- help at 80 columns, shell completion ----------------------------------------------------------------------


def _command_paths() -> list[tuple[list[str], object]]:
    from vouch.cli.main import app

    def walk(cmd: object, prefix: list[str]) -> list[tuple[list[str], object]]:
        out = [(prefix, cmd)]
        for name, sub in getattr(cmd, "commands", {}).items():
            out += walk(sub, [*prefix, name])
        return out

    return walk(typer.main.get_command(app), [])


def test_help_at_80_columns_shows_every_flag_in_full() -> None:
    env = {**os.environ, "COLUMNS": "80"}
    paths = _command_paths()
    assert len(paths) > 20
    for path, cmd in paths:
        r = subprocess.run([sys.executable, "-m", "vouch", *path, "--help"], capture_output=True, text=True,
                           env=env, timeout=60)
        assert r.returncode == 0, (path, r.stderr)
        assert max(len(line) for line in r.stdout.splitlines()) <= 80, (path, r.stdout)
        words = set(r.stdout.replace(",", " ").replace("/", " ").split())
        for param in getattr(cmd, "params", []):
            if param.param_type_name == "option" and not param.hidden:
                for name in [*param.opts, *param.secondary_opts]:
                    assert name in words, (path, name, r.stdout)
        for noise in ("…", "<int", "<bool>", "<str>", "<list[", "<text|json>"):
            assert noise not in r.stdout, (path, noise, r.stdout)


def test_completion_scripts() -> None:
    bash = ok(vouch("completion", "bash")).stdout
    assert "_VOUCH_COMPLETE" in bash and "complete " in bash
    assert subprocess.run(["bash", "-n"], input=bash, text=True, capture_output=True).returncode == 0
    # the script's protocol works: what bash would ask for `vouch verify-a<TAB>`, and for `vouch sign --tl<TAB>`
    r = ok(vouch(env={"_VOUCH_COMPLETE": "complete_bash", "COMP_WORDS": "vouch verify-a", "COMP_CWORD": "1"}))
    assert r.stdout.split() == ["verify-attestation"]
    r = ok(vouch(env={"_VOUCH_COMPLETE": "complete_bash", "COMP_WORDS": "vouch sign --tl", "COMP_CWORD": "2"}))
    assert "--tlog-upload" in r.stdout.split()
    for shell in ("zsh", "fish"):
        script = ok(vouch("completion", shell)).stdout
        assert "_VOUCH_COMPLETE" in script
        if shutil.which(shell):
            assert subprocess.run([shell, "-n"], input=script, text=True, capture_output=True).returncode == 0
    assert vouch("completion", "tcsh").returncode == 2


# ---- messages: no password to be had; dtrack upload of an image -------------------------------------------------


def test_no_password_and_no_tty(registry: RegistryServer, client: RegistryClient, repo_name: str,
                                keys: dict[str, str], tmp_path: Path) -> None:
    image = _image(registry, client, repo_name)
    usage_error(vouch("sign", "--key", keys["key"], image, password=None), NO_PASSWORD)
    usage_error(vouch("public-key", "--key", keys["key"], password=None), NO_PASSWORD)
    assert _sig_layers(client, image) == 0
    # a password on stdin is read, as cosign does
    ok(vouch("sign", "--key", keys["key"], image, password=None, stdin=b"pw\n"))
    # a key without a password opens with nothing on stdin, as with cosign
    bare, _, _ = write_keypair(tmp_path, "bare", b"")
    ok(vouch("public-key", "--key", str(bare), password=None))
    # a new key is never encrypted with "nothing"
    usage_error(vouch("generate-key-pair", "--output-key-prefix", "new", cwd=tmp_path, password=None), NO_PASSWORD)
    assert not (tmp_path / "new.key").exists()
    # the wrong password is still said as such
    r = vouch("public-key", "--key", keys["key"], password="nope")
    assert r.returncode == 2 and "wrong password" in r.stderr


def test_dtrack_upload_of_an_image_says_which_sbom(registry: RegistryServer, client: RegistryClient,
                                                   repo_name: str, keys: dict[str, str]) -> None:
    image = _image(registry, client, repo_name)
    dt = FakeDT()
    try:
        args = ["dtrack", "upload", image, "--url", dt.url, "--project", "existing", "--version", "1.0"]
        r = ok(vouch(*args, env={"DTRACK_API_KEY": API_KEY}))
        assert "No CycloneDX SBOM is attested on" in r.stderr and "generated one now" in r.stderr
        ok(vouch("attest-sbom", "--key", keys["key"], image))
        r = ok(vouch(*args, env={"DTRACK_API_KEY": API_KEY}))
        assert "Uploading the CycloneDX SBOM attested on" in r.stderr and "generated" not in r.stderr
        assert len(dt.uploads) == 2
    finally:
        dt.server.shutdown()


def test_allow_http_registry_flags_scope_to_the_named_registries() -> None:
    """cosign's --allow-insecure-registry / --allow-http-registry (after the command) make the named
    images' registries plain-HTTP-capable, as --insecure-registry HOST does, and no other registry."""
    from typer.testing import CliRunner

    from vouch.cli.common import VouchTyper, state

    seen: list[list[str]] = []
    app = VouchTyper()

    @app.command()
    def probe(ctx: typer.Context, images: list[str]) -> None:
        seen.append(list(state(ctx).insecure))

    @app.callback()
    def main(ctx: typer.Context) -> None:
        from vouch.cli.common import State

        ctx.obj = State()

    runner = CliRunner()
    for flag in ("--allow-insecure-registry", "--allow-http-registry=true"):
        r = runner.invoke(app, ["probe", flag, "reg.example:5000/a@sha256:" + "ab" * 32, "other.example/b:1"])
        assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["probe", "reg.example:5000/a:1"])
    assert r.exit_code == 0, r.output
    assert seen == [["reg.example:5000", "other.example"]] * 2 + [[]]
