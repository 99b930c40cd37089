"""Start-up: `vouch --version` answers without importing the CLI and its libraries, and `vouch verify`
imports only what verifying runs (no timed assertion: what is imported is checked, which is what the
start-up costs)."""

from __future__ import annotations

import subprocess
import sys
from enum import Enum
from pathlib import Path

import pytest

from tests.support.images import small_image
from tests.support.keys import write_keypair
from tests.support.registry import RegistryServer
from vouch import __version__
from vouch.cli import entry
from vouch.cli.common import OutputFormat
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.signing.sign import sign_image

PROBE = """
import sys
sys.argv = ["vouch", "--version"]
from vouch.cli import entry
try:
    entry.run()
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.startswith(("vouch.cli.main", "httpx", "typer", "cryptography")))
print("HEAVY", heavy)
"""


def test_version_imports_nothing_heavy() -> None:
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == f"vouch {__version__}"
    assert r.stdout.splitlines()[1] == "HEAVY []", r.stdout


def test_version_through_the_module_and_other_commands_still_parse() -> None:
    r = subprocess.run([sys.executable, "-m", "vouch", "--version"], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, f"vouch {__version__}\n")
    r = subprocess.run([sys.executable, "-m", "vouch", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "verify" in r.stdout


# ---- `vouch verify`: started without the rest of the CLI ------------------------------------------------

VERIFY_PROBE = """
import json, sys
sys.argv = ["vouch", *json.loads(sys.argv[1])]
from vouch.cli import entry
try:
    entry.run()
except SystemExit as exc:
    code = exc.code
print("EXIT", code)
print("MODULES", json.dumps(sorted(sys.modules)))
"""

# What `vouch verify --key …` never runs, so never imports: other commands' modules, the keyless signer's
# library, YAML, Pydantic (Typer's coercion of plain values is done without it), rich and pygments,
# httpx (the registry client speaks HTTP through the standard library: vouch.oci.transport), click, trio;
# with a key, nothing keyless (X.509, trusted roots, the bundle verifier, the bundle parser) and nothing
# that writes (the signer), nor the private-key cipher (nacl); and for a plain argument list, not Typer
# either (vouch.cli.verify_fast parses it; test_verify_fast checks it parses as Typer does).
NOT_FOR_VERIFY = ("vouch.cli.main", "vouch.sbom", "vouch.release", "vouch.query", "vouch.dtrack", "vouch.keys.k8s",
                  "vouch.testbed", "sigstore", "yaml", "pydantic", "pydantic_core", "rich", "pygments", "click",
                  "httpx", "httpcore", "h11", "anyio", "trio", "cryptography.x509", "vouch.keyless.certs",
                  "vouch.keyless.identity", "vouch.keyless.sign", "vouch.keyless.trust", "vouch.bundle.verify",
                  "vouch.bundle.trustroot",
                  "vouch.bundle.model", "nacl", "typer", "vouch.cli.common",
                  # nor, from the standard library, what vouch.oci.transport's own HTTP/1.1 replaced (http.client
                  # and the email parser), subprocess (credential helpers only), concurrent.futures (plain threads
                  # verify the images: cli.base.parallel_map) and logging (vouch.lazylog
                  # imports it for the first warning due). (ssl is imported: the client tries TLS first on a
                  # loopback registry too, as cosign's ggcr does; tempfile: this sandbox's certifi .pth)
                  "http", "email", "subprocess", "logging", "concurrent", "queue")


def _verify_in_subprocess(*args: str) -> tuple[int, list[str], subprocess.CompletedProcess[str]]:
    import json

    r = subprocess.run([sys.executable, "-c", VERIFY_PROBE, json.dumps(list(args))], capture_output=True,
                       text=True, timeout=120)
    lines = r.stdout.splitlines()
    code = int(next(line for line in lines if line.startswith("EXIT "))[5:])
    modules = json.loads(next(line for line in lines if line.startswith("MODULES "))[8:])
    return code, modules, r


def test_verify_imports_only_what_it_runs(registry: RegistryServer, tmp_path: Path, repo_name: str) -> None:
    client = RegistryClient()
    ref = Reference(registry.host, repo_name, "v1")
    image = f"{registry.host}/{repo_name}@{push_image(client, ref, small_image('startup'))}"
    _, pub, signer = write_keypair(tmp_path, "startup")
    sign_image(client, signer, Reference.parse(image))
    code, modules, r = _verify_in_subprocess("verify", "--key", str(pub), image)
    assert code == 0, r.stdout[-3000:] + r.stderr
    assert "vouch.verify.signatures" in modules and "vouch.oci.transport" in modules  # (it did verify)
    heavy = sorted(m for m in modules if m.split(".")[0] in NOT_FOR_VERIFY or m.startswith(NOT_FOR_VERIFY))
    assert heavy == [] and "vouch.signing.sign" not in modules  # (the signer's module; signing.signer verifies)
    # the same command through the whole CLI (as a shell's completion or `vouch --help` start it) agrees
    full = subprocess.run([sys.executable, "-c", "import sys; from vouch.cli.main import run; sys.argv = "
                           f"['vouch', 'verify', '--key', {str(pub)!r}, {image!r}]; run()"],
                          capture_output=True, text=True, timeout=120)
    fast = subprocess.run([sys.executable, "-m", "vouch", "verify", "--key", str(pub), image], capture_output=True,
                          text=True, timeout=120)
    assert (fast.returncode, fast.stdout, fast.stderr) == (full.returncode, full.stdout, full.stderr) == \
        (0, fast.stdout, fast.stderr) and fast.stdout.startswith("[{")


def test_a_key_signed_bundle_verifies_without_x509(registry: RegistryServer, tmp_path: Path, repo_name: str) -> None:
    """An image signed with a key in the bundle layout only (cosign 3's default): verify reads and checks
    the bundle, and loads no X.509 (certificates, SCTs and identities are for keyless bundles)."""
    client = RegistryClient()
    ref = Reference(registry.host, repo_name, "v1")
    image = f"{registry.host}/{repo_name}@{push_image(client, ref, small_image('startup-bundle'))}"
    _, pub, signer = write_keypair(tmp_path, "startup-bundle")
    sign_image(client, signer, Reference.parse(image), layouts=("bundle",))
    code, modules, r = _verify_in_subprocess("verify", "--key", str(pub), image)
    assert code == 0, r.stdout[-3000:] + r.stderr
    assert "vouch.bundle.verify" in modules  # (it did read the bundle layout)
    x509 = sorted(m for m in modules if m.startswith(("cryptography.x509", "vouch.keyless.certs",
                                                       "vouch.keyless.identity", "vouch.keyless.sign")))
    assert x509 == []


@pytest.mark.parametrize("args", [
    ["verify", "--help"],
    ["verify"],
    ["verify", "--key", "k.pub", "--concurrency", "0", "example.com/a:b"],
    ["-o", "xml", "verify", "--key", "k.pub", "example.com/a:b"],
    ["verify", "--key", "k.pub", "--offline=maybe", "example.com/a:b"],
    ["verify", "--key", "no-such-file.pub", "example.com/a:b"],
    ["verify", "--nope", "example.com/a:b"],
])
def test_verify_parses_and_fails_as_the_whole_cli_does(args: list[str], tmp_path: Path) -> None:
    """The one-command group `vouch verify` starts with gives the same help, the same usage errors and the
    same exit codes as the whole CLI."""
    fast = subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    full = subprocess.run([sys.executable, "-c", f"import sys; from vouch.cli.main import run; sys.argv = "
                           f"['vouch', *{args!r}]; run()"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert (fast.returncode, fast.stdout, fast.stderr) == (full.returncode, full.stdout, full.stderr)
    assert fast.returncode in (0, 2) and "Traceback" not in fast.stderr


@pytest.mark.parametrize(("argv", "name"), [
    (["verify", "--key", "k"], "verify"),
    (["-o", "json", "verify"], "verify"),
    (["--output=json", "-v", "--insecure-registry", "r:5000", "--ca-file=ca.pem", "verify"], "verify"),
    (["-vv", "verify-attestation"], "verify-attestation"),
    (["sign", "verify"], "sign"),
    (["-ojson", "verify"], None),  # anything unusual: the whole CLI parses it
    (["--version", "verify"], None),
    (["--help"], None),
    ([], None),
])
def test_command_name(argv: list[str], name: str | None) -> None:
    assert entry.command_name(argv) == name


def test_command_name_knows_every_global_option() -> None:
    """entry.py keeps its own list of the global options (importing it would cost the start-up it saves)."""
    import typer.main

    from vouch.cli.main import app

    group = typer.main.get_command(app)
    with_value = {o for p in group.params if not getattr(p, "is_flag", False) and not getattr(p, "count", False)
                  for o in p.opts}
    flags = {o for p in group.params if getattr(p, "count", False) for o in p.opts}
    assert with_value == set(entry._VALUE_OPTIONS)
    assert flags <= set(entry._FLAGS)


def test_httpx_import_leaves_optional_modules_importable() -> None:
    r = subprocess.run([sys.executable, "-c", "import sys; from vouch.cli import entry; entry.import_httpx(); "
                        "print(sorted(m for m, v in sys.modules.items() if v is None and m.split('.')[0] in "
                        "('trio', 'httpx')), 'httpx' in sys.modules, 'trio' in sys.modules)"],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["[]", "True", "False"], r.stdout + r.stderr


# ---- Typer's coercion of plain values, without Pydantic ------------------------------------------------

VALUES = {
    str: ["x", "", "ünïcode", "--key", " spaced "],
    int: ["4", "1", "64", "0", "65", "-3", "abc", " 5", "4.0", "٤", 7, True],
    bool: [True, False, "true", "no"],
    "enum": ["json", "text", "yaml", "JSON", "xml", "", OutputFormat.json],
}


def _outcome(runtime: object, value: object, param: object, ctx: object) -> tuple[str, object]:
    try:
        return "ok", runtime.coerce(value, param=param, ctx=ctx)  # type: ignore[attr-defined]
    except Exception as exc:  # the exception itself is compared
        return type(exc).__name__, str(exc)


def test_plain_coercion_gives_typers_results_and_errors() -> None:
    """Every parameter of `vouch verify` and of the global options: the Pydantic-free coercion returns what
    Typer's own would, and words every refusal as Typer does (it hands those values to Typer)."""
    coercion = pytest.importorskip("typer._coercion")
    import typer.main
    from typer import _click

    from vouch.cli.verify import fast_app

    group = typer.main.get_command(fast_app())
    command = group.commands["verify"]  # type: ignore[attr-defined]
    checked = 0
    for owner in (group, command):
        ctx = _click.Context(owner)
        for param in [*owner.params, owner.get_help_option(ctx)]:
            plain = param._runtime_param
            assert type(plain).__name__ == "PlainRuntimeParam", param.name
            typers = coercion.build_runtime_param(param.type_descriptor)
            desc = param.type_descriptor
            leaf = desc.annotation
            many = getattr(leaf, "__origin__", None) is list
            if many:
                leaf = leaf.__args__[0]
            values = VALUES["enum" if isinstance(leaf, type) and issubclass(leaf, Enum) else leaf]
            cases: list[object] = [None, *values]
            if many:
                cases = [None, (), tuple(v for v in values if isinstance(v, str)), ["a", "b"], ("x",)]
            for value in cases:
                assert _outcome(plain, value, param, ctx) == _outcome(typers, value, param, ctx), (param.name, value)
                checked += 1
    assert checked > 100


# ---- `vouch sbom`: started without Typer, and without httpx for a local source ---------------------------

NOT_FOR_LOCAL_SBOM = ("vouch.cli.main", "vouch.oci.client", "vouch.release", "vouch.query", "vouch.keys.k8s",
                      "httpx", "httpcore", "sigstore", "pydantic", "rich", "click", "license_expression",
                      # and, for a plain argument list, not Typer either (vouch.cli.sbom_fast; test_sbom_fast)
                      "typer", "vouch.cli.common", "vouch.store")


def test_sbom_of_a_layout_imports_no_http_client(registry: RegistryServer, tmp_path: Path, repo_name: str) -> None:
    client = RegistryClient()
    ref = Reference(registry.host, repo_name, "v1")
    image = f"{registry.host}/{repo_name}@{push_image(client, ref, small_image('startup-sbom'))}"
    layout = tmp_path / "layout"
    r = subprocess.run([sys.executable, "-m", "vouch", "copy", image, f"oci:{layout}:v1"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    args = ("sbom", f"oci:{layout}:v1", "--timestamp", "2026-01-01T00:00:00Z")
    code, modules, r = _verify_in_subprocess(*args)
    assert code == 0, r.stderr
    assert "vouch.sbom.generate" in modules  # (it did scan)
    heavy = sorted(m for m in modules if m.split(".")[0] in NOT_FOR_LOCAL_SBOM or m.startswith(NOT_FOR_LOCAL_SBOM))
    assert heavy == []
    # the same scan through the whole CLI gives the same document, and a registry source still works
    full = subprocess.run([sys.executable, "-c", "import sys; from vouch.cli.main import run; sys.argv = "
                           f"['vouch', *{list(args)!r}]; run()"], capture_output=True, text=True, timeout=120)
    fast = subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, timeout=120)
    assert full.returncode == fast.returncode == 0, full.stderr + fast.stderr
    strip = lambda text: [x for x in text.splitlines() if '"serialNumber"' not in x]  # noqa: E731 (random UUID)
    assert strip(full.stdout) == strip(fast.stdout) and '"bomFormat": "CycloneDX"' in fast.stdout
    code, modules, r = _verify_in_subprocess("sbom", image, "--timestamp", "2026-01-01T00:00:00Z")
    assert code == 0 and "vouch.oci.client" in modules and "vouch.cli.main" not in modules, r.stderr
    import json

    via_registry, via_layout = json.loads(r.stdout.split("\nEXIT ")[0]), json.loads(fast.stdout)
    assert via_registry["metadata"]["component"]["version"] == via_layout["metadata"]["component"]["version"]
    assert via_registry.get("components") == via_layout.get("components")


# ---- `vouch release`: a re-run loads neither the scanner, keyless code, httpx nor rich -----------------------

NOT_FOR_RERUN = ("vouch.cli.main", "vouch.sbom.generate", "vouch.sbom.catalogers", "vouch.keyless.sign",
                 "vouch.keyless.certs", "vouch.bundle.verify", "cryptography.x509", "httpx", "httpcore", "rich",
                 "pygments", "sigstore", "pydantic",
                 # a plain key-mode argument list runs without Typer (vouch.cli.release_fast; test_release_fast
                 # checks it parses as Typer does), on plain threads (vouch.parallel), over vouch's own HTTP
                 "typer", "click", "vouch.cli.common", "concurrent", "http", "email")


def test_release_rerun_imports_only_what_it_runs(registry: RegistryServer, tmp_path: Path, repo_name: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A pipeline re-runs `vouch release` on every build: when the image is signed and its SBOM current,
    nothing is scanned or signed, so neither the SBOM scanner, the keyless signer (X.509), httpx (only
    Dependency-Track and Kubernetes use it), rich (the report table is drawn without it) nor Typer is imported.
    The first run, which scans, loads the scanner (so the list above is not vacuous)."""
    import json

    client = RegistryClient()
    digest = push_image(client, Reference(registry.host, repo_name, "v1"), small_image("rerun"))
    image = f"{registry.host}/{repo_name}@{digest}"
    key, _, _ = write_keypair(tmp_path, "rerun")
    monkeypatch.setenv("COSIGN_PASSWORD", "pw")
    args = ("release", "--key", str(key), image)
    code, first, r = _verify_in_subprocess(*args)
    assert code == 0 and "vouch.sbom.generate" in first and "vouch.cli.main" not in first, r.stderr
    code, modules, r = _verify_in_subprocess("-o", "json", *args)
    assert code == 0, r.stderr
    doc = json.loads(r.stdout.split("\nEXIT ")[0])
    assert [(i["signature"], i["sbom"]) for i in doc["images"]] == [("already-signed", "current")]
    heavy = sorted(m for m in modules if m.split(".")[0] in NOT_FOR_RERUN or m.startswith(NOT_FOR_RERUN))
    assert heavy == [] and "vouch.cli.release" not in modules  # (the Typer command's module)
    assert "┃ image" in r.stderr and f"│ {image.split('@')[0]}" in r.stderr  # the table, image names in full


def test_lazy_logging_drops_info_without_logging_and_prints_warnings_as_before() -> None:
    """vouch.lazylog: at the default level an info message costs no import of logging; a warning imports
    it and prints as setup_logging(0) configured it ("vouch: …" on stderr); -v shows info messages."""
    code = ("import sys\nfrom vouch import lazylog\nfrom vouch.cli.base import setup_logging\n"
            "setup_logging(int(sys.argv[1]))\nlog = lazylog.get('vouch.store')\n"
            "log.info('an info %s', 'message')\nlog.debug('a debug line')\n"
            "print('logging imported' if 'logging' in sys.modules else 'no logging', flush=True)\n"
            "log.warning('a warning %d', 7)\nprint(log.isEnabledFor(20), lazylog.is_enabled(30))\n")
    quiet = subprocess.run([sys.executable, "-c", code, "0"], capture_output=True, text=True, timeout=60)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.splitlines() == ["no logging", "False True"]
    assert quiet.stderr == "vouch: a warning 7\n"
    loud = subprocess.run([sys.executable, "-c", code, "1"], capture_output=True, text=True, timeout=60)
    assert loud.stdout.splitlines() == ["logging imported", "True True"]
    assert loud.stderr == "vouch: an info message\nvouch: a warning 7\n"
