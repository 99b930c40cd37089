"""The console entry point. Start-up is what a short command costs (cosign's is a Go binary's), so:

- `vouch --version` answers before the CLI and its libraries are imported;
- `vouch [global options] verify …` with a plain argument list runs without Typer (vouch.cli.verify_fast),
  and otherwise starts a group of that one command (`vouch.cli.verify.fast_app`: the same global options
  and the same command function), without importing every other command's modules; `vouch release …` the
  same way (vouch.cli.release_fast, then `vouch.cli.release.fast_app`: a pipeline re-runs it on every
  build) and `vouch sbom …` (vouch.cli.sbom_fast, then `vouch.cli.sbom.fast_app`, and without the
  registry client unless it reads a registry);
- the registry client speaks HTTP through the standard library (vouch.oci.transport); httpx is imported
  only by the commands that talk to Dependency-Track or the Kubernetes API, and then without the optional
  modules vouch never runs (vouch.lean_httpx).

Everything else goes to `vouch.cli.main.run`.
"""

from __future__ import annotations

import os
import sys

# The options `vouch` takes before the command (vouch.cli.common.global_options); kept here, not
# imported, so that finding the command's name costs nothing.
_VALUE_OPTIONS = frozenset({"-o", "--output", "--insecure-registry", "--ca-file"})
_FLAGS = frozenset({"-v", "-vv", "-vvv", "--verbose"})
COMPLETE_VAR = "_VOUCH_COMPLETE"  # as vouch.cli.main.COMPLETE_VAR


def command_name(argv: list[str]) -> str | None:
    """The command argv names after the global options, or None when anything else comes first (the full
    CLI then parses it, errors included)."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in _VALUE_OPTIONS:
            i += 2
        elif arg in _FLAGS or (arg.startswith("--") and arg.partition("=")[0] in _VALUE_OPTIONS):
            i += 1
        elif arg.startswith("-"):
            return None
        else:
            return arg
    return None


def import_httpx() -> None:
    """httpx, without the optional modules it would load and vouch never runs (vouch.lean_httpx)."""
    import vouch.lean_httpx  # noqa: F401


def run() -> None:
    argv = sys.argv[1:]
    if argv == ["--version"]:
        from vouch import __version__

        sys.stdout.write(f"vouch {__version__}\n")
        sys.exit(0)
    command = command_name(argv) if COMPLETE_VAR not in os.environ else None
    if command == "sbom":  # the HTTP client only if the source is a registry (State.client)
        from vouch.cli.sbom_fast import try_run as try_sbom

        try_sbom(argv)  # (exits, unless the arguments need the Typer command)
        from vouch.cli.sbom import run_fast as run_sbom

        run_sbom()
        return
    if command == "verify":
        from vouch.cli.verify_fast import try_run

        try_run(argv)  # (exits, unless the arguments need the Typer command: help, an error, rarer options)
        from vouch.cli.verify import run_fast

        run_fast()
        return
    if command == "release":
        from vouch.cli.release_fast import try_run as try_release

        try_release(argv)  # (exits, unless the arguments need the Typer command: help, keyless, rarer options)
        from vouch.cli.release import run_fast as run_release

        run_release()
        return
    from vouch.cli.main import run as main_run

    main_run()
