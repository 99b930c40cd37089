"""YAML from outside (release.yaml, kubeconfig), read so that a hostile file cannot take the host down.

PyYAML's safe_load expands aliases: a "billion laughs" document of a few hundred bytes builds a value
with billions of elements (minutes of CPU, gigabytes of memory). The files vouch reads never need
anchors or aliases, so they are refused outright; so are oversized, too deeply nested and non-UTF-8
documents. Every failure is an InputError with a one-line message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent, NodeEvent

from vouch import limits
from vouch.errors import InputError


class _Refused(Exception):
    def __init__(self, why: str, mark: Any) -> None:
        super().__init__(why)
        self.why = why
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """SafeLoader without anchors and aliases, and with a depth limit."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, AliasEvent) or (isinstance(event, NodeEvent) and event.anchor is not None):
            raise _Refused("aliases", event.start_mark)
        if isinstance(event, CollectionStartEvent):
            self._depth += 1
            if self._depth > limits.MAX_YAML_DEPTH:
                raise _Refused("depth", event.start_mark)
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
        return super().compose_node(parent, index)


def _where(mark: Any) -> str:
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


def _one_line(exc: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: the problem and where."""
    if isinstance(exc, yaml.MarkedYAMLError):
        problem = "; ".join(p for p in (exc.context, exc.problem) if p) or "syntax error"
        return " ".join(f"{problem}{_where(exc.problem_mark or exc.context_mark)}".split())
    return " ".join(str(exc).split())


def read_limited(path: Path, limit: int = limits.MAX_YAML_BYTES) -> bytes:
    """At most limit + 1 bytes of path (so an oversized file, or /dev/zero, is seen without reading it all).
    Raises OSError as open/read do; the caller words the message."""
    with path.open("rb") as f:
        return f.read(limit + 1)


def load_yaml(data: str | bytes, what: str) -> Any:
    """One YAML document from outside, as plain Python values; `what` names it in messages
    ("release manifest release.yaml")."""
    if len(data) > limits.MAX_YAML_BYTES:
        raise InputError(f"{what} is larger than {limits.MAX_YAML_BYTES} bytes; refusing to read it "
                         "(real ones are kilobytes)")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{what} is not UTF-8 text (byte {exc.start} is not valid UTF-8)") from exc
    else:
        text = data
    try:
        loader = _Loader(text)  # the reader refuses non-printable characters here already
    except yaml.YAMLError as exc:
        raise InputError(f"{what} is not valid YAML: {_one_line(exc)}") from exc
    try:
        return loader.get_single_data()
    except _Refused as exc:
        if exc.why == "aliases":
            raise InputError(f"{what} uses YAML aliases (&anchor/*alias){_where(exc.mark)}, which vouch does "
                             "not read; write the values out") from None
        raise InputError(f"{what} is nested more than {limits.MAX_YAML_DEPTH} levels deep{_where(exc.mark)}; "
                         "refusing to read it") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{what} is not valid YAML: {_one_line(exc)}") from exc
    except (ValueError, OverflowError, RecursionError) as exc:
        # PyYAML's constructors raise these for scalars that resolve to a type but do not convert:
        # a date like 2026-13-45, an integer of more than 4300 digits.
        raise InputError(f"{what} is not valid YAML: a value does not convert ({' '.join(str(exc).split())})") \
            from exc
    finally:
        loader.dispose()
