"""httpx as vouch uses it (Dependency-Track, the Kubernetes API): imported without the optional modules
vouch never runs — httpx's own command line, which pulls in click, rich and pygments, and trio, which
httpcore loads only to serve async code running under trio. A None in sys.modules makes their import
fail, which httpx and httpcore handle as "not installed"; the entries are removed afterwards, so that
other code may still import them. (The registry client does not use httpx: vouch.oci.transport.)

    from vouch.lean_httpx import httpx
"""

from __future__ import annotations

import sys

_UNUSED_OPTIONAL = ("trio", "httpx._main")


def _load() -> None:
    hidden = [m for m in _UNUSED_OPTIONAL if m not in sys.modules]
    for m in hidden:
        sys.modules[m] = None  # type: ignore[assignment]
    try:
        import httpcore  # noqa: F401  (httpx imports it only when a client is made)
        import httpx  # noqa: F401
    finally:
        for m in hidden:
            if m in sys.modules and sys.modules[m] is None:
                del sys.modules[m]


_load()

import httpx as httpx  # noqa: E402  (loaded above)
