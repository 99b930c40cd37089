"""Loggers that cost nothing until a message is due.

`logging` costs a few milliseconds of start-up, and a command that logs nothing (a verify that passes, at
the default level) never needs it. `get(name)` returns a logger whose messages go to the real logger of
that name as soon as `logging` has been imported by anyone (setup_logging at -v, a library, pytest). Until
then nothing can have set a level below WARNING, so a debug or info message is dropped unformatted, and a
warning imports logging, configures it as `setup_logging(0)` would and is emitted.
"""

from __future__ import annotations

import sys
from typing import Any

WARNING = 30
FORMAT = "vouch: %(message)s"


def configure(verbose: int) -> None:
    """The levels of -v (INFO) and -vv (DEBUG, with request lines); the default is WARNING."""
    import logging

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format=FORMAT, stream=sys.stderr)
    # Request lines (method, URL, status; never headers, so no credentials) only at -vv: the registry
    # client's (vouch.http) and httpx's (Dependency-Track, Kubernetes), which logs them at INFO.
    logging.getLogger("vouch.http").setLevel(logging.DEBUG if verbose > 1 else logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.DEBUG if verbose > 1 else logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


class Logger:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def _real(self, level: int) -> Any:
        if "logging" not in sys.modules:
            if level < WARNING:
                return None
            configure(0)
        # (an import statement, not sys.modules: it waits while another thread is still importing logging)
        import logging

        return logging.getLogger(self.name)

    def isEnabledFor(self, level: int) -> bool:
        real = self._real(level) if level >= WARNING or "logging" in sys.modules else None
        return bool(real is not None and real.isEnabledFor(level))

    def log(self, level: int, msg: str, *args: Any) -> None:
        real = self._real(level)
        if real is not None:
            real.log(level, msg, *args, stacklevel=3)

    def debug(self, msg: str, *args: Any) -> None:
        self.log(10, msg, *args)

    def info(self, msg: str, *args: Any) -> None:
        self.log(20, msg, *args)

    def warning(self, msg: str, *args: Any) -> None:
        self.log(30, msg, *args)

    def error(self, msg: str, *args: Any) -> None:
        self.log(40, msg, *args)


def get(name: str) -> Logger:
    return Logger(name)


def is_enabled(level: int) -> bool:
    """Whether the root logger would emit a message at level."""
    return Logger("").isEnabledFor(level) if "logging" in sys.modules or level >= WARNING else False
