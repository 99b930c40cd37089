"""What every cataloger shares: path claims, the purl builder, evidence locations."""

from __future__ import annotations

import re
from typing import Protocol
from urllib.parse import quote

from packageurl import PackageURL

from vouch.sbom.fsview import ImageView
from vouch.sbom.model import Distro, Location, Package


class Cataloger(Protocol):
    """One ecosystem: how packages are assembled from what it kept of its files. It is also a
    `fsview.Claimer` (claims paths, `reduce`s small files) or a `fsview.FileClaimer` (reads whole
    binaries or archives)."""

    name: str
    max_file_bytes: int

    def catalog(self, view: ImageView, distro: Distro | None) -> list[Package]: ...


_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: str) -> str:
    """Lone surrogates (a name read from a non-UTF-8 path, or a JSON "\\udcff") as U+FFFD: a purl is UTF-8."""
    return value if value.isascii() else _SURROGATE.sub("\ufffd", value)


def purl(ptype: str, namespace: str | None, name: str, version: str | None,
         qualifiers: dict[str, str | None] | None = None, subpath: str | None = None) -> str:
    """The package URL. Names come from the image: one that packageurl's own normalisation would empty
    (" ", "/") is named by its percent-encoding instead, so that no name stops a cataloger (and the
    purl still parses back, as the BOM writer does)."""
    q = {k: _text(v) for k, v in (qualifiers or {}).items() if v}

    def build(the_name: str) -> str:
        return str(PackageURL(type=ptype, namespace=_text(namespace) if namespace else None, name=the_name,
                              version=_text(version) if version else None,
                              qualifiers=dict(sorted(q.items())) or None,
                              subpath=_text(subpath) if subpath else None))

    try:
        return build(_text(name))
    except (ValueError, TypeError):
        if not name:
            raise ValueError("a package without a name has no purl") from None
    return build(quote(_text(name), safe=""))  # " " is named "%20": a name packageurl parses back


def location(view: ImageView, path: str, layer: int | None = None) -> Location:
    if layer is None:
        node = view.nodes.get(path)
        layer = node.first_layer if node is not None else 0
    info = view.layers[layer] if 0 <= layer < len(view.layers) else None
    return Location("/" + path, info.diff_id if info else "", layer)


def owned_layer(view: ImageView, files: list[str]) -> int | None:
    """The layer that brought a package: the lowest first-layer among its files still present."""
    layers = [n.first_layer for f in files
              if (n := view.nodes.get(view.resolve(f.lstrip("/")))) is not None and n.kind == "f"]
    return min(layers) if layers else None


def compile_globs(*patterns: str) -> re.Pattern[str]:
    """fnmatch-like globs (`*` within a path segment, `**/` any depth) as one regex."""
    out = []
    for p in patterns:
        rx = re.escape(p).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*")
        out.append(f"(?:{rx})")
    return re.compile("^(?:" + "|".join(out) + ")$")
