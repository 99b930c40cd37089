"""The console entry point: `vouch --version` answers before the CLI and its libraries are imported
(cosign's start-up is a Go binary's; ours should not cost a second for a version string). Everything else
goes to `vouch.cli.main.run`."""

from __future__ import annotations

import sys


def run() -> None:
    if sys.argv[1:] == ["--version"]:
        from vouch import __version__

        sys.stdout.write(f"vouch {__version__}\n")
        sys.exit(0)
    from vouch.cli.main import run as main_run

    main_run()
