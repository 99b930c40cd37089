"""The CLI's plumbing that needs no command-line parser: what a command's result is printed as, the state
of one invocation (its registry client), key loading (files, `env://`, `https://`, `k8s://`), and how an
expected failure ends the process. vouch.cli.common builds the Typer side on it; `vouch verify` runs on it
alone when its arguments are the plain ones (vouch.cli.verify_fast: no Typer to import).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import typing
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

from vouch import lazylog, limits
from vouch.errors import InputError, RegistryError, VouchError
from vouch.keys.files import read_key_file
from vouch.oci.reference import Reference, parse_reference
from vouch.parallel import parallel_map as parallel_map
from vouch.record import field, record

if typing.TYPE_CHECKING:
    from vouch.keyless.trust import KeylessTrust
    from vouch.oci.client import RegistryClient
    from vouch.signing.signer import KeySigner
    from vouch.trust import PublicKey

T = TypeVar("T")
R = TypeVar("R")


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    yaml = "yaml"  # kubectl's habit; the same data as json


@record
class State:
    output: OutputFormat = OutputFormat.text
    verbose: int = 0
    insecure: list[str] = field(default_factory=list)
    ca_file: str | None = None
    _client: RegistryClient | None = None

    def __post_init__(self) -> None:
        # The environment the library honours, read here at the edge, once per command. (Unset, and the
        # signature store not loaded yet, it has nothing to reset: a scan never loads it.)
        value = os.environ.get("COSIGN_REPOSITORY")
        if value or "vouch.store.layout" in sys.modules:
            from vouch.store.layout import set_signature_repository

            set_signature_repository(value)

    def client(self) -> RegistryClient:
        if self._client is None:
            from vouch.oci.client import RegistryClient, RegistryOptions

            self._client = RegistryClient(RegistryOptions(insecure=frozenset(self.insecure), ca_file=self.ca_file))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def setup_logging(verbose: int) -> None:
    """-v and -vv; at the default level logging is not even imported until a warning is due (vouch.lazylog)."""
    if verbose or "logging" in sys.modules:
        lazylog.configure(verbose)


def emit(st: State, data: Any, text: str) -> None:
    if st.output == OutputFormat.json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    elif st.output == OutputFormat.yaml:
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
    elif text:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def err(msg: str) -> None:
    sys.stderr.write(msg if msg.endswith("\n") else msg + "\n")


def ref_arg(text: str) -> Reference:
    return parse_reference(text)


MAX_KEY_URL_BYTES = limits.MAX_KEY_URL_BYTES
KEY_URL_SECONDS = limits.KEY_URL_SECONDS
KEY_URL_REDIRECTS = limits.KEY_URL_REDIRECTS


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _key_url_problem(url: str, previous: str | None) -> str | None:
    parts = urlsplit(url)
    if not parts.hostname:
        return f"{_shown(url)} names no host"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and _loopback(parts.hostname):
        if previous is not None and urlsplit(previous).scheme == "https":
            return f"it redirects from https down to plain http ({_shown(url)})"
        return None
    if previous is not None:
        return f"it redirects to {_shown(url)}, which is not https"
    return "public keys are fetched over https only (plain http only from a loopback address)"


def _shown(url: str) -> str:
    """url without the user:password a key URL may carry (never printed)."""
    try:
        parts = urlsplit(url)
        if "@" not in parts.netloc:
            return url
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    except ValueError:
        return "(malformed)"


def _without_userinfo(current: str, first: str) -> tuple[str, dict[str, str]]:
    """current without the user:password the key URL carried, and those as Basic auth — only for the host
    the key URL named (a redirect elsewhere gets no credentials)."""
    import base64
    from urllib.parse import unquote

    parts, named = urlsplit(current), urlsplit(first)
    if "@" not in parts.netloc:
        return current, {}
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    if parts.hostname != named.hostname or parts.port != named.port or parts.username is None:
        return bare, {}
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    return bare, {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def fetch_key_url(url: str) -> bytes:
    """The body of url (a public key PEM): TLS verified, bounded in size and time, redirects only to https."""
    from vouch.oci import transport

    shown = _shown(url)
    current, previous = url, None
    until = time.monotonic() + KEY_URL_SECONDS
    http = transport.Pool(transport.verifying_context, timeout=KEY_URL_SECONDS)
    try:
        for _ in range(KEY_URL_REDIRECTS + 1):
            try:
                problem = _key_url_problem(current, previous)
            except ValueError:
                problem = "not a valid URL" if previous is None else "it redirects to a malformed URL"
            if problem:
                raise InputError(f"cannot fetch the public key {shown}: {problem}")
            try:
                with transport.deadline(until):
                    resp = http.send("GET", *_without_userinfo(current, url))
                    try:
                        location = resp.headers.get("Location")
                        if resp.status_code in (301, 302, 303, 307, 308) and location:
                            previous, current = current, urljoin(current, location)
                            continue
                        if resp.status_code != 200:
                            error = InputError if 400 <= resp.status_code < 500 else RegistryError
                            raise error(f"cannot fetch the public key {shown}: the server answered HTTP "
                                        f"{resp.status_code}")
                        body = bytearray()
                        for chunk in resp.iter_bytes():
                            body += chunk
                            if len(body) > MAX_KEY_URL_BYTES:
                                raise InputError(f"the public key at {shown} is larger than {MAX_KEY_URL_BYTES} "
                                                 "bytes; refusing it")
                        return bytes(body)
                    finally:
                        resp.close()
            except transport.InvalidURL as exc:
                raise InputError(f"cannot fetch the public key {shown}: not a valid URL") from exc
            except transport.TransportError as exc:
                why = " ".join(str(exc).split()).replace(url, shown) or type(exc).__name__
                raise RegistryError(f"cannot fetch the public key {shown}: {why}") from exc
    finally:
        http.close()
    raise InputError(f"cannot fetch the public key {shown}: more than {KEY_URL_REDIRECTS} redirects")


def read_key_ref(ref: str, *, public: bool) -> bytes:
    """A key's PEM from `env://VARIABLE` (as cosign), from `https://…` (public keys only), else from a file."""
    if ref.startswith("env://"):
        name = ref[len("env://"):]
        if not name:
            raise InputError("--key env:// names no variable; write env://VARIABLE")
        value = os.environ.get(name, "")
        if not value.strip():
            raise InputError(f"--key {ref}: the environment variable {name} is not set or empty")
        return value.encode()
    if ref.startswith(("https://", "http://")):
        if not public:
            raise InputError(f"--key {ref}: a private key is never fetched from a URL; use a file, env://VARIABLE "
                             "or k8s://NAMESPACE/NAME")
        return fetch_key_url(ref)
    return read_key_file(ref)


def load_signer(key_ref: str) -> KeySigner:
    """A private key from a file, `env://VARIABLE`, or a Kubernetes Secret (`k8s://NAMESPACE/NAME`), as cosign."""
    from vouch.keys.cosign import load_private_key
    from vouch.keys.password import open_private_key
    from vouch.signing.signer import KeySigner

    if key_ref.startswith("k8s://"):
        from vouch.keys.k8s import KubeClient, parse_ref

        ns, name = parse_ref(key_ref)
        data = KubeClient.from_kubeconfig().get_secret(ns, name)
        if "cosign.key" not in data:
            raise InputError(f"secret {ns}/{name} has no cosign.key")
        env = os.environ.get("COSIGN_PASSWORD")
        password = env.encode() if env is not None else data.get("cosign.password", b"")
        return KeySigner(load_private_key(data["cosign.key"], password))
    return KeySigner(open_private_key(read_key_ref(key_ref, public=False)))


def load_verifier_keys(key_refs: list[str]) -> list[PublicKey]:
    from vouch.keys.cosign import load_public_keys

    if not key_refs:
        raise InputError("give at least one --key (a public key PEM; a file may hold several)")
    keys: list[PublicKey] = []
    for ref in key_refs:
        if ref.startswith("k8s://"):
            from vouch.keys.k8s import PREVIOUS_PUB, KubeClient, parse_ref

            ns, name = parse_ref(ref)
            data = KubeClient.from_kubeconfig().get_secret(ns, name)
            if "cosign.pub" not in data:
                raise InputError(f"secret {ns}/{name} has no cosign.pub")
            keys.extend(load_public_keys(data["cosign.pub"], what=ref))
            if PREVIOUS_PUB in data:  # a rotation's overlap: the previous key still verifies
                keys.extend(load_public_keys(data[PREVIOUS_PUB], what=f"{ref} ({PREVIOUS_PUB})"))
        else:
            keys.extend(load_public_keys(read_key_ref(ref, public=True), what=ref))
    return keys


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


def ended(exc: BaseException) -> int:
    """How an expected failure ends a command: its one line on stderr, and the exit code to leave with."""
    if isinstance(exc, VouchError):
        err(f"Error: {exc}")
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        err("Interrupted.")
        return 130
    err(f"vouch: internal error: {type(exc).__name__}: {exc}. This is a bug; run with -v for details.")
    if lazylog.is_enabled(20):
        import traceback

        traceback.print_exc()
    return 70


def keyless_trust(identity: str | None, identity_regexp: str | None, issuer: str | None, issuer_regexp: str | None,
                  trusted_root: str | None, ignore_sct: bool = False, ignore_tlog: bool = False,
                  extensions: list[str] | None = None) -> KeylessTrust:
    """The keyless identity policy (--certificate-identity …) under the trusted root (--trusted-root, else
    Sigstore's public-good root)."""
    from vouch.keyless.oids import CI_EXTENSIONS

    ext: dict[str, str] = {}
    for item in extensions or []:
        name, sep, value = item.partition("=")
        if not sep or name not in CI_EXTENSIONS:
            raise InputError(f"--certificate-extension {item[:80]!r}: write NAME=VALUE with NAME one of "
                             + ", ".join(CI_EXTENSIONS))
        ext[name] = value
    from vouch.bundle.trustroot import load_trusted_root, production_trusted_root
    from vouch.keyless.identity import identity_policy
    from vouch.keyless.trust import KeylessTrust

    policy = identity_policy(identity, identity_regexp, issuer, issuer_regexp, ext)
    root = load_trusted_root(trusted_root) if trusted_root else production_trusted_root()
    return KeylessTrust(root, policy, ignore_sct=ignore_sct, ignore_tlog=ignore_tlog)


def write_layouts(new_bundle_format: bool, layout: str | None) -> tuple[str, ...]:
    """The layouts a write command targets, from cosign's --new-bundle-format or vouch's --layout."""
    if layout is None:
        return ("bundle",) if new_bundle_format else ("legacy",)
    choices = {"legacy": ("legacy",), "bundle": ("bundle",), "both": ("legacy", "bundle")}
    if layout not in choices:
        raise InputError(f"--layout {layout!r}: write legacy, bundle or both")
    if new_bundle_format and layout == "legacy":
        raise InputError("--new-bundle-format contradicts --layout legacy; give one of them")
    return choices[layout]


def text_table(title: str, columns: list[str], rows: list[list[str]]) -> str:
    """A table drawn as rich draws one (a heavy head, a light body), each column as wide as its widest cell
    (nothing cut short), the title centred above; without importing rich (a re-run's report costs ~1 ms)."""
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]

    def rule(left: str, mid: str, right: str, fill: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + right

    def row(cells: list[str], bar: str) -> str:
        return bar + bar.join(f" {c.ljust(w)} " for c, w in zip(cells, widths, strict=True)) + bar

    top = rule("┏", "┳", "┓", "━")
    lines = [title.center(len(top)).rstrip(), top, row(columns, "┃"), rule("┡", "╇", "┩", "━")]
    lines += [row(r, "│") for r in rows] + [rule("└", "┴", "┘", "─")]
    return "\n".join(lines) + "\n"


# ---- plain argument lists (vouch.cli.verify_fast, release_fast, sbom_fast) ---------------------------------

_GLOBAL_VALUES = {"-o": "output", "--output": "output", "--insecure-registry": "insecure_registry",
                  "--ca-file": "ca_file"}
_VERBOSE = {"-v": 1, "-vv": 2, "-vvv": 3, "--verbose": 1}


class PlainArgs:
    """What a plain argument list says: the global options, the command's own values (params) and images."""

    def __init__(self, defaults: dict[str, Any]) -> None:
        self.output: str | None = None  # the global -o
        self.verbose = 0
        self.insecure_registry: list[str] = []
        self.ca_file: str | None = None
        self.command_output: str | None = None  # -o after the command
        self.allow_insecure = False
        self.params: dict[str, Any] = dict(defaults)
        self.images: list[str] = []


def parse_globals(argv: list[str], command: str, out: PlainArgs) -> int | None:
    """vouch's global options up to `command`, in the forms click accepts, into out: the index after the
    command, or None when anything else comes first (the Typer command then parses the list)."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, inline = arg.partition("=")
        if arg in _VERBOSE:
            out.verbose += _VERBOSE[arg]
            i += 1
        elif name in _GLOBAL_VALUES and (eq or i + 1 < len(argv)):
            value = inline if eq else argv[i + 1]
            if not eq and value.startswith("-"):
                return None
            if _GLOBAL_VALUES[name] == "insecure_registry":
                out.insecure_registry.append(value)
            else:
                setattr(out, _GLOBAL_VALUES[name], value)
            i += 1 if eq else 2
        elif arg == command:
            return i + 1
        else:
            return None
    return None


def plain_outputs_valid(out: PlainArgs) -> bool:
    outputs = {f.value for f in OutputFormat}
    return all(o is None or o in outputs for o in (out.output, out.command_output))


def plain_state(out: PlainArgs, images: list[str]) -> State:
    """The State a command runs with, from a plain argument list: verbosity, output format (global, or -o after
    the command), the registries allowed plain HTTP (--insecure-registry, and cosign's --allow-http-registry for
    the registries of the images named), the CA."""
    setup_logging(out.verbose)
    st = State(output=OutputFormat(out.output or "text"), verbose=out.verbose, insecure=list(out.insecure_registry),
               ca_file=out.ca_file)
    if out.allow_insecure:  # cosign's flags, scoped to the registries named here (as common does)
        for text in images:
            with contextlib.suppress(VouchError):
                st.insecure.append(parse_reference(text).registry)
    if out.command_output is not None:
        st.output = OutputFormat(out.command_output)
    return st
