"""`vouch sbom` without Typer: the command's work (`run_sbom_cmd`, which the Typer command in vouch.cli.sbom
calls too) and a parser for plain argument lists (`try_run`), as vouch.cli.verify_fast does for verify: syft and
trivy are Go binaries, and Typer's import and parser cost a tenth of a small image's scan. Anything this parser
does not take on (help, `--`, an unknown option, a value that looks like an option, a malformed number) goes to
the Typer command. test_sbom_fast checks that both parsers give the command the same values.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from vouch.cli.base import PlainArgs, State, ended, err, parse_globals, plain_outputs_valid, plain_state
from vouch.errors import InputError


def run_sbom_cmd(st: State, image: str, platform: str | None, output_file: str | None, format_: str | None,
                 output: str | None, timestamp: str | None, files: bool, scope: str, exclude: list[str] | None,
                 max_layer_bytes: int) -> None:
    """vouch sbom's work."""
    from vouch.keys.files import write_new_file
    from vouch.oci.source import open_source
    from vouch.sbom.formats import DEFAULT, encoder
    from vouch.sbom.fsview import ViewOptions
    from vouch.sbom.generate import generate_sbom

    fmt = format_
    if output and output not in ("text", "json", "yaml"):  # -o json/text: the global flag's values, as before
        out_fmt, sep, out_file = output.partition("=")
        if format_ and encoder(format_).name != encoder(out_fmt).name:
            raise InputError(f"--format {format_} and -o {output} disagree: give one")
        if sep and output_file and output_file != out_file:
            raise InputError(f"-o {output} and --output-file {output_file} disagree: give one")
        fmt = out_fmt
        output_file = out_file or output_file
    enc = encoder(fmt or DEFAULT)
    options = ViewOptions(max_layer_bytes=max_layer_bytes, exclude=tuple(exclude or ()), scope=scope,
                          file_digests=files and enc.needs_file_digests)
    src = open_source(image, st.client)
    progress = (lambda m: err(f"  {m}")) if st.verbose else None
    result = generate_sbom(src, platform, timestamp, options=options, progress=progress)
    for w in result.warnings:
        err(f"warning: {w}")
    text = result.to_json(indent=2, files_detail=files, format=enc.name)
    if output_file:
        write_new_file(Path(output_file), text.encode() + b"\n", 0o644, force=True)
    else:
        sys.stdout.write(text + "\n")
    summary = result.summary()
    err(summary[0] + (f" -> {output_file}" if output_file else "") + f" ({enc.name})")
    err(summary[1])


# ---- the parser for plain argument lists ---------------------------------------------------------------

_VALUES = {"--platform": "platform", "--output-file": "output_file", "--format": "format_", "--output": "output",
           "-o": "output", "--timestamp": "timestamp", "--scope": "scope", "--exclude": "exclude",
           "--max-layer-bytes": "max_layer_bytes"}
_FLAGS = {"--files": ("files", True), "--no-files": ("files", False),
          "--allow-insecure-registry": ("allow_insecure", True), "--allow-http-registry": ("allow_insecure", True)}

DEFAULTS: dict[str, Any] = {
    "image": None, "platform": None, "output_file": None, "format_": None, "output": None, "timestamp": None,
    "files": False, "scope": "squashed", "exclude": None, "max_layer_bytes": 64 * 1024**3,
}


def parse(argv: list[str]) -> PlainArgs | None:
    """argv (after the program name) as `vouch [global options] sbom …` gives it, or None for anything this
    parser does not take on (the Typer command then parses it)."""
    out = PlainArgs(DEFAULTS)
    start = parse_globals(argv, "sbom", out)
    if start is None:
        return None
    i = start
    images: list[str] = []
    excludes: list[str] = []
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-":
            images.append(arg)
            i += 1
            continue
        name, eq, inline = arg.partition("=")
        if name in _VALUES:
            if not eq and (i + 1 >= len(argv) or argv[i + 1].startswith("-")):
                return None
            value = inline if eq else argv[i + 1]
            param = _VALUES[name]
            if param == "exclude":
                excludes.append(value)
            else:
                out.params[param] = value
            i += 1 if eq else 2
        elif arg in _FLAGS:
            param, on = _FLAGS[arg]
            if param == "allow_insecure":
                out.allow_insecure = True
            else:
                out.params[param] = on
            i += 1
        else:
            return None
    if len(images) != 1:
        return None
    out.params["image"] = images[0]
    out.params["exclude"] = excludes or None
    try:
        out.params["max_layer_bytes"] = int(out.params["max_layer_bytes"])
    except (TypeError, ValueError):
        return None
    return out if plain_outputs_valid(out) else None


def try_run(argv: list[str]) -> None:
    """Run `vouch sbom` from argv and exit, if argv is plain (see parse); return otherwise."""
    parsed = parse(argv)
    if parsed is None:
        return
    try:
        st = plain_state(parsed, [parsed.params["image"]])
        run_sbom_cmd(st, **parsed.params)
    except (Exception, KeyboardInterrupt) as exc:
        sys.exit(ended(exc))
    sys.exit(0)
