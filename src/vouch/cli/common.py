"""Shared CLI plumbing: global options, output, key loading, error rendering, and the habits of cosign
users (`--flag=false`, `-o json` after the subcommand, `--output-file`, `env://` and `https://` keys)."""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
import typer.models

from vouch import __version__

# What only some commands use is imported where it is used (the registry client, keys, the signer): a
# command pays at start-up only for what it runs (`vouch verify` is timed against cosign's Go binary).
# (re-exported: the commands import them from here)
from vouch.cli.base import OutputFormat as OutputFormat
from vouch.cli.base import State as State
from vouch.cli.base import emit as emit
from vouch.cli.base import ended as ended
from vouch.cli.base import err as err
from vouch.cli.base import load_signer as load_signer
from vouch.cli.base import load_verifier_keys as load_verifier_keys
from vouch.cli.base import parallel_map as parallel_map
from vouch.cli.base import parse_annotations as parse_annotations
from vouch.cli.base import read_key_ref as read_key_ref
from vouch.cli.base import ref_arg as ref_arg
from vouch.cli.base import setup_logging as setup_logging
from vouch.cli.base import text_table as text_table
from vouch.cli.base import write_layouts as write_layouts
from vouch.errors import EXIT_USAGE, VouchError
from vouch.keys.files import check_writable, write_new_file
from vouch.oci.reference import parse_reference


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    if not isinstance(obj, State):
        obj = State()
        ctx.find_root().obj = obj
    return obj


def _version(value: bool) -> None:
    if value:
        print(f"vouch {__version__}")
        raise typer.Exit(0)


def global_options(
    ctx: typer.Context,
    output: Annotated[OutputFormat, typer.Option("--output", "-o", metavar="text|json",
                                                 help="Output format (also accepted after the command).")]
    = OutputFormat.text,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging (-vv: HTTP).")] = 0,
    insecure_registry: Annotated[
        list[str] | None,
        typer.Option("--insecure-registry", metavar="HOST",
                     help="Allow plain HTTP to this registry host[:port] (repeatable). "
                     "Loopback registries may use plain HTTP without it."),
    ] = None,
    ca_file: Annotated[str | None, typer.Option("--ca-file", metavar="FILE",
                                                help="CA bundle to trust for registry TLS.")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """The options before the command (`vouch -o json -v verify …`): the callback of the `vouch` group, and of
    the one-command group `vouch verify` starts with (vouch.cli.verify.fast_app)."""
    setup_logging(verbose)
    ctx.obj = State(output=output, verbose=verbose, insecure=list(insecure_registry or []), ca_file=ca_file)


def one_command_app(register: Callable[[VouchTyper], None]) -> VouchTyper:
    """The `vouch` group with its global options and the one command `register` adds: what the entry point
    starts for a command timed against a Go binary (verify, sbom), without importing the rest of the CLI; it
    parses, helps and fails exactly as the full CLI does (the same functions)."""
    app = VouchTyper(name="vouch", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                     context_settings=CONTEXT_SETTINGS)
    app.callback()(global_options)
    register(app)
    return app


def run_app(app: typer.Typer) -> None:
    """Run app as the console command: expected failures print one line and exit with their code."""
    try:
        rc = app(standalone_mode=False, prog_name="vouch")
        sys.exit(rc if isinstance(rc, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err("Aborted.")
        sys.exit(130)
    except Exception as exc:  # usage errors from the parser
        show = getattr(exc, "show", None)
        if isinstance(exc, typer.exceptions.TyperException) and callable(show):
            show()
            sys.exit(EXIT_USAGE)
        sys.exit(ended(exc))
    except KeyboardInterrupt as exc:
        sys.exit(ended(exc))


# ---- cosign's command-line habits ------------------------------------------------------------------

# strconv.ParseBool, which cosign's flags use: `--tlog-upload=false`, `--offline=1`, `--yes=True`.
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def cosign_bool_args(params: list[Any], args: list[str]) -> list[str]:
    """args with cosign's `--flag=true|false` for a boolean flag rewritten as click spells it: `--flag`,
    `--no-flag`, or nothing (false for a flag that is off by default and has no negative form)."""
    flags: dict[str, tuple[Any, bool]] = {}
    for p in params:
        if getattr(p, "is_flag", False) and getattr(p, "is_bool_flag", False) and not getattr(p, "count", False):
            for o in p.opts:
                flags[o] = (p, True)
            for o in p.secondary_opts:
                flags[o] = (p, False)
    out: list[str] = []
    for i, a in enumerate(args):
        if a == "--":
            return out + args[i:]
        name, eq, value = a.partition("=")
        if not eq or not name.startswith("--") or name not in flags:
            out.append(a)
            continue
        p, positive = flags[name]
        if value not in _TRUE | _FALSE:
            raise typer.BadParameter(f"{name} takes true or false, not {value!r}")
        on = (value in _TRUE) == positive
        if on:
            out.append(p.opts[-1])
        elif p.secondary_opts:
            out.append(p.secondary_opts[-1])
        elif p.default:
            raise typer.BadParameter(f"{name} cannot be turned off")
    return out


_SLOW = object()


def _plain_value(leaf: Any, info: Any, value: Any, ctx: Any) -> Any:
    """value as Typer's coercion would make it, for a str, bool, int or Enum parameter given a value of the
    plain form; _SLOW for anything else (Typer then judges it, and words its error, itself)."""
    if leaf is str:
        return value if isinstance(value, str) else _SLOW
    if leaf is bool:
        return value if isinstance(value, bool) else _SLOW
    if leaf is int:
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            return _SLOW
        if (info.min is not None and value < info.min) or (info.max is not None and value > info.max):
            return _SLOW
        return value
    if isinstance(value, leaf):
        return value
    if isinstance(value, str) and info.case_sensitive and getattr(ctx, "token_normalize_func", None) is None:
        return next((m for m in leaf if str(m.value) == value), _SLOW)
    return _SLOW


@functools.cache
def _plain_param_class() -> type | None:
    """A Typer runtime parameter that coerces plain values without building a Pydantic TypeAdapter.

    Typer (0.2x with its own click) coerces every parameter through Pydantic, whose import and adapters cost
    more start-up than anything `vouch verify` does. The values vouch's options take (str, bool, int in a
    range, an Enum's value, lists of those) need none of it: they are passed as they are, and any other value
    goes to Typer's own coercion, so results and error messages are Typer's (tests/test_startup.py compares
    the two). With a Typer without this machinery (`typer._coercion`), nothing changes."""
    try:
        from typer._coercion import RuntimeParam, build_runtime_param
    except ImportError:  # pragma: no cover - another Typer generation: its own coercion throughout
        return None

    @dataclass(frozen=True)
    class PlainRuntimeParam(RuntimeParam):
        descriptor: Any = None
        leaf: Any = None
        many: bool = False

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            info = self.parameter_info
            if self.many and isinstance(value, (list, tuple)):
                items = [_plain_value(self.leaf, info, v, ctx) for v in value]
                if all(v is not _SLOW for v in items):
                    return items
            elif not self.many:
                out = _plain_value(self.leaf, info, value, ctx)
                if out is not _SLOW:
                    return out
            return build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)

    return PlainRuntimeParam


def plain_coercion(params: list[Any]) -> None:
    """Give each parameter of a plain type (see _plain_param_class) the coercion that needs no Pydantic."""
    cls = _plain_param_class()
    if cls is None:
        return
    for p in params:
        desc = getattr(p, "type_descriptor", None)
        if desc is None or getattr(p, "_runtime_param", _SLOW) is not None:
            continue
        info = desc.parameter_info
        if info.parser is not None or desc.file_annotation is not None or getattr(info, "clamp", False):
            continue
        leaf, many = desc.annotation, typing.get_origin(desc.annotation) is list
        if many:
            (leaf,) = typing.get_args(leaf)
        if leaf in (str, bool, int) or (isinstance(leaf, type) and issubclass(leaf, Enum)):
            p._runtime_param = cls(parameter_info=info, annotation=desc.annotation, descriptor=desc, leaf=leaf,
                                   many=many)


class VouchCommand(typer.core.TyperCommand):
    """A command that takes cosign's `--flag=false` and prints plain help (names in full at 80 columns)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plain_coercion(self.params)
        for p in self.params:
            # Newer Typer prints an argument's Python type (`<list[str]>`) beside its metavar: the metavar says it.
            if p.param_type_name == "argument" and p.metavar and hasattr(p, "display_type_rich"):
                setattr(p, "display_type_rich", lambda ctx: None)  # noqa: B010

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        plain_coercion([option] if option is not None else [])
        return option

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, cosign_bool_args(self.params, args))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        # click's own layout (not Typer's Rich table): flag names are never cut to fit a column at 80 columns.
        super(typer.core.TyperCommand, self).format_help(ctx, formatter)


class VouchGroup(typer.core.TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plain_coercion(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        plain_coercion([option] if option is not None else [])
        return option

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, cosign_bool_args(self.params, args))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        super(typer.core.TyperGroup, self).format_help(ctx, formatter)


CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class VouchTyper(typer.Typer):
    """typer.Typer whose commands are VouchCommands with the shared options (-o/--output, --output-file)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", VouchGroup)
        kwargs.setdefault("rich_markup_mode", None)
        kwargs.setdefault("context_settings", CONTEXT_SETTINGS)
        super().__init__(**kwargs)

    def command(  # type: ignore[override]
            self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        kwargs.setdefault("cls", VouchCommand)
        register = super().command(*args, **kwargs)

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            register(with_shared_options(func))
            return func

        return decorator


def _parameter_info(annotation: Any) -> tuple[Any, typer.models.ParameterInfo | None]:
    if typing.get_origin(annotation) is not Annotated:
        return annotation, None
    base, *meta = typing.get_args(annotation)
    return base, next((m for m in meta if isinstance(m, typer.models.ParameterInfo)), None)


def _option_names(info: typer.models.ParameterInfo) -> list[str]:
    # In Annotated[..., typer.Option("--key")] the first name sits in `default` until Typer moves it.
    names = [info.default, *(getattr(info, "param_decls", None) or ())]
    return [n for n in names if isinstance(n, str) and n.startswith("-")]


# Where the last word of the option's name does not say what its value looks like.
_METAVARS = {"--annotations": "KEY=VALUE", "--max-age": "AGE", "--refresh-after": "AGE", "--manifest": "FILE",
             "--report": "FILE", "--predicate": "FILE", "--outfile": "FILE", "--public-key-out": "FILE",
             "--resign": "MANIFEST", "--images": "PATTERN", "--output-key-prefix": "PREFIX"}


def _set_metavar(name: str, annotation: Any) -> None:
    """A readable metavar (KEY, N, text|json) where none is given, instead of the Python type."""
    base, info = _parameter_info(annotation)
    if info is None or info.metavar is not None:
        return
    args = [a for a in typing.get_args(base) if a is not type(None)]
    if typing.get_origin(base) in (typing.Union, types.UnionType) and len(args) == 1:
        base = args[0]
    many = typing.get_origin(base) is list
    if many:
        base = typing.get_args(base)[0]
    if base is bool:
        return
    if isinstance(info, typer.models.ArgumentInfo):
        label = name.strip("_").upper()
        info.metavar = label[:-1] if many and label.endswith("S") else label
    elif isinstance(base, type) and issubclass(base, Enum):
        info.metavar = "|".join(str(e.value) for e in base)
    elif base in (int, float):
        info.metavar = "N"
    else:
        longs = [n for n in _option_names(info) if n.startswith("--")] or ["--" + name.replace("_", "-")]
        info.metavar = _METAVARS.get(longs[0], longs[0].rsplit("-", 1)[-1].upper())


def _redirect_stdout(ctx: typer.Context, path: str) -> None:
    """cosign's --output-file: what the command prints on stdout goes to path (written whole at the end)."""
    target = Path(path)
    check_writable(target)
    buffer, original = io.StringIO(), sys.stdout
    sys.stdout = buffer

    def done() -> None:
        sys.stdout = original
        write_new_file(target, buffer.getvalue().encode(), 0o644, force=True)

    ctx.call_on_close(done)


OUTPUT_HELP = "Output format (also accepted before the command)."
OUTPUT_FILE_HELP = "Write what the command prints on stdout to this file (as cosign's --output-file)."


ALLOW_INSECURE_HELP = ("cosign's flag, accepted: allow plain HTTP to the registries of the images named here "
                       "(as --insecure-registry HOST). TLS certificates are still verified: use --ca-file.")


def with_shared_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """func with the options every command takes: -o/--output (cosign and kubectl users type it after the
    command) and --output-file (cosign's), unless it has its own; and readable metavars."""
    hints = typing.get_type_hints(func, include_extras=True)
    params = [p.replace(annotation=hints.get(p.name, p.annotation))
              for p in inspect.signature(func).parameters.values()]
    for p in params:
        _set_metavar(p.name, p.annotation)
    taken = {n for p in params if (info := _parameter_info(p.annotation)[1]) for n in _option_names(info)}
    ctx_name = next((p.name for p in params if p.annotation is typer.Context), None)
    extra: list[inspect.Parameter] = []
    own_ctx = ctx_name is None
    if ctx_name is None:
        ctx_name = "vouch_ctx_"
        extra.append(inspect.Parameter(ctx_name, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context))
    if "--output" not in taken and "-o" not in taken:
        extra.append(inspect.Parameter(
            "vouch_output_", inspect.Parameter.KEYWORD_ONLY, default=None,
            annotation=Annotated[OutputFormat | None, typer.Option("--output", "-o", help=OUTPUT_HELP,
                                                                   metavar="text|json|yaml", show_default=False)]))
    takes_images = any(p.name in ("image", "images") for p in params)
    if takes_images:
        for flag, name in (("--allow-insecure-registry", "vouch_allow_insecure_"),
                           ("--allow-http-registry", "vouch_allow_http_")):
            extra.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
                bool, typer.Option(flag, help=ALLOW_INSECURE_HELP, show_default=False)]))
    if "--output-file" not in taken:
        extra.append(inspect.Parameter(
            "vouch_output_file_", inspect.Parameter.KEYWORD_ONLY, default=None,
            annotation=Annotated[str | None, typer.Option("--output-file", help=OUTPUT_FILE_HELP, metavar="FILE")]))

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.pop(ctx_name) if own_ctx else kwargs[ctx_name]
        output = kwargs.pop("vouch_output_", None)
        output_file = kwargs.pop("vouch_output_file_", None)
        if kwargs.pop("vouch_allow_insecure_", False) | kwargs.pop("vouch_allow_http_", False):
            # cosign's flags, scoped as vouch scopes --insecure-registry: to the registries named here.
            named = kwargs.get("images") or kwargs.get("image") or []
            for text in [named] if isinstance(named, str) else named:
                with contextlib.suppress(VouchError):
                    state(ctx).insecure.append(parse_reference(text).registry)
        if output is not None:
            state(ctx).output = OutputFormat(output)
        if output_file:
            _redirect_stdout(ctx, output_file)
        return func(*args, **kwargs)

    all_params = params + extra
    wrapper.__signature__ = inspect.Signature(all_params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in all_params}
    return wrapper


NewBundleOpt = Annotated[bool, typer.Option(
    "--new-bundle-format", help="Write a sigstore bundle as an OCI 1.1 referrer of the image (cosign 3's default "
                                "format; the sha256-<hex> fallback index where the registry has no referrers "
                                "API) instead of cosign's tag layout.")]
LayoutOpt = Annotated[str | None, typer.Option(
    "--layout", metavar="legacy|bundle|both",
    help="Where to write: legacy (.sig/.att tags: cosign 2, Kyverno type Cosign, Harbor), bundle (referrers: "
         "cosign 3, Kyverno type SigstoreBundle) or both.")]
