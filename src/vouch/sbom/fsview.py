"""The image's merged filesystem, built by streaming each layer once, bottom-up.

- whiteouts (`.wh.NAME`) and opaque directories (`.wh..wh..opq`) hide what lower layers had;
- every path remembers the layer that introduced it and the last layer that changed it;
- catalogers claim paths by pattern; a claimed file's bytes are handed to the cataloger's
  `reduce` at once and only the reduced (small) form is kept, so memory holds the path index and
  parsed records, never file contents or layers;
- binaries and archives go to file claimers instead: spooled (in memory up to SPOOL_MEMORY, beyond
  that an unlinked temporary file) for the one `reduce_file` call, then dropped;
- hostile tars: absolute paths and `..` are clamped to the root, links never leave it, hard links
  to missing targets and device files are recorded without content, duplicate entries keep the
  last, oversize claimed files are skipped with a warning, truncated or corrupt streams and
  decompression bombs stop with an error naming the layer.
"""

from __future__ import annotations

import io
import os
import posixpath
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from vouch import limits
from vouch.errors import InputError, VouchError
from vouch.sbom.streams import open_layer_stream
from vouch.sbom.tarstream import BLK, CHR, DIR, FIFO, LNK, REG, SYM, TarFormatError, TarReader

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class Claimer(Protocol):
    name: str
    max_file_bytes: int

    def claims(self, path: str) -> bool: ...

    def reduce(self, path: str, data: bytes) -> Any: ...


class FileClaimer(Protocol):
    """A cataloger that reads whole (possibly large) files with random access: binaries, archives.

    `wants` is a cheap test on the tar header (it runs for every regular file), `accepts` looks at
    the first HEAD bytes; an accepted file is spooled (in memory up to SPOOL_MEMORY bytes, on disk
    beyond) while the layer streams on, and `reduce_file` keeps only what it parsed from it.
    """

    name: str
    max_file_bytes: int

    def wants(self, path: str, mode: int, size: int) -> bool: ...

    def accepts(self, path: str, head: bytes) -> bool: ...

    def reduce_file(self, path: str, f: BinaryIO, size: int) -> Any: ...


HEAD = 64
SPOOL_MEMORY = 32 * 1024 * 1024
_SPOOL_CHUNK = 1024 * 1024


@dataclass(slots=True)
class Node:
    kind: str  # f file, d dir, l symlink, o other (device, fifo)
    first_layer: int
    last_layer: int
    size: int = 0
    link: str | None = None
    mode: int = 0


@dataclass
class LayerInfo:
    index: int
    digest: str
    diff_id: str
    media_type: str
    size: int


@dataclass
class Parsed:
    cataloger: str
    value: Any
    layer: int


@dataclass
class ImageView:
    layers: list[LayerInfo] = field(default_factory=list)
    nodes: dict[str, Node] = field(default_factory=dict)
    parsed: dict[str, Parsed] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    _children: dict[str, set[str]] = field(default_factory=dict)

    # ---- queries for catalogers ----------------------------------------------------------

    def exists(self, path: str) -> bool:
        return self.resolve(path) in self.nodes

    def is_dir(self, path: str) -> bool:
        """A directory, also one that only exists because paths below it do (tars may omit the entry)."""
        p = self.resolve(path)
        node = self.nodes.get(p)
        if node is not None:
            return node.kind == "d"
        stack = list(self._children.get(p, ()))
        while stack:  # any entry below it that still exists (whiteouts leave stale index entries)
            k = stack.pop()
            if k in self.nodes:
                return True
            stack.extend(self._children.get(k, ()))
        return False

    def resolve(self, path: str, max_hops: int = 40) -> str:
        """Follow symlinks (in any component) without ever leaving the root."""
        path = clean_path(path)
        for _ in range(max_hops):
            parts = path.split("/")
            changed = False
            for i in range(1, len(parts) + 1):
                prefix = "/".join(parts[:i])
                node = self.nodes.get(prefix)
                if node is not None and node.kind == "l" and node.link is not None:
                    target = node.link
                    base = target if target.startswith("/") else posixpath.join(posixpath.dirname(prefix), target)
                    path = clean_path("/".join([base, *parts[i:]]))
                    changed = True
                    break
            if not changed:
                return path
        return path

    def get(self, path: str) -> Parsed | None:
        """The parsed record of a claimed file, following symlinks."""
        return self.parsed.get(self.resolve(path)) or self.parsed.get(clean_path(path))

    def parsed_by(self, cataloger: str) -> Iterator[tuple[str, Parsed]]:
        for path, p in self.parsed.items():
            if p.cataloger == cataloger:
                yield path, p

    # ---- building --------------------------------------------------------------------------

    def _add(self, path: str, node: Node) -> None:
        old = self.nodes.get(path)
        if old is not None:
            node.first_layer = old.first_layer
            if old.kind == "d" and node.kind != "d":
                self._remove_tree(path, below_layer=None, keep_self=False)
        self.nodes[path] = node
        # Register the whole ancestor chain: tars need not carry entries for parent directories,
        # and a whiteout or opaque marker higher up must still reach this path.
        child = path
        while child:
            parent = posixpath.dirname(child)
            kids = self._children.setdefault(parent, set())
            if child in kids:
                break
            kids.add(child)
            child = parent

    def _remove_tree(self, path: str, below_layer: int | None, keep_self: bool) -> None:
        stack = [path]
        while stack:
            p = stack.pop()
            stack.extend(self._children.get(p, ()))
            if keep_self and p == path:
                continue
            node = self.nodes.get(p)
            if node is None:
                continue  # an implicit directory: its children were pushed above
            if below_layer is not None and node.last_layer >= below_layer:
                if node.first_layer < below_layer:
                    node.first_layer = below_layer  # recreated above the whiteout: new from here on
                continue
            del self.nodes[p]
            self.parsed.pop(p, None)


def clean_path(name: str) -> str:
    """A tar member name as a root-relative path: no leading /, no `..` escaping the root."""
    return posixpath.normpath("/" + name).lstrip("/")


@dataclass
class ViewOptions:
    max_layer_bytes: int = limits.SBOM_MAX_LAYER_BYTES
    max_ratio: float = limits.SBOM_MAX_RATIO  # above ratio_floor decompressed bytes, more expansion is a bomb
    ratio_floor: int = limits.SBOM_RATIO_FLOOR


def _reduce_file(view: ImageView, what: str, i: int, path: str, member_size: int, reader: TarReader,
                 wanting: list[FileClaimer]) -> None:
    head = reader.read_chunk(HEAD)
    for c in wanting:
        if not c.accepts(path, head):
            continue
        if member_size > c.max_file_bytes:
            view.warnings.append(f"{what}: {path} is {member_size} bytes, over the "
                                 f"{c.name} limit of {c.max_file_bytes}; skipped")
            return
        # small files in memory; large ones straight to an unlinked temporary file (raw writes, no rollover)
        spool: BinaryIO = (io.BytesIO() if member_size <= SPOOL_MEMORY
                           else tempfile.TemporaryFile(prefix="vouch-"))  # noqa: SIM115 - closed by the `with` below
        with spool:
            if isinstance(spool, io.BytesIO):
                spool.write(head)
                while chunk := reader.read_chunk(_SPOOL_CHUNK):
                    spool.write(chunk)
            else:
                fd = spool.fileno()
                chunk = head
                while chunk:
                    view_ = memoryview(chunk)
                    while view_:
                        view_ = view_[os.write(fd, view_):]
                    chunk = reader.read_chunk(_SPOOL_CHUNK)
            spool.seek(0)
            try:
                value = c.reduce_file(path, spool, member_size)
            except VouchError:
                raise
            except Exception as exc:  # a cataloger's parse error never stops the scan
                view.warnings.append(f"{what}: {c.name} could not parse {path}: {exc}")
                return
        if value is not None:
            view.parsed[path] = Parsed(c.name, value, i)
        return


def add_layer(view: ImageView, layer: LayerInfo, chunks: Iterator[bytes], claimers: list[Any],
              options: ViewOptions | None = None, on_progress: Callable[[int], None] | None = None) -> None:
    """Stream one layer (the next one up) into the view. Claimers are path claimers (small files,
    `reduce` gets the bytes) or file claimers (`reduce_file` gets a seekable spooled copy)."""
    options = options or ViewOptions()
    path_claimers: list[Claimer] = [c for c in claimers if not hasattr(c, "reduce_file")]
    file_claimers: list[FileClaimer] = [c for c in claimers if hasattr(c, "reduce_file")]
    what = f"layer {layer.index + 1} ({layer.digest[:19]})"
    i = layer.index
    whiteouts: list[str] = []
    opaques: list[str] = []
    producer, stream = open_layer_stream(chunks, what, options.max_layer_bytes, options.max_ratio,
                                         options.ratio_floor)
    consumed = 0
    try:
        reader = TarReader(stream)
        for member in reader:
            name = member.name
            path = clean_path(name)
            if not path:
                continue
            if ".." in name.split("/"):
                view.warnings.append(f"{what}: entry {name!r} has '..' components; clamped to /{path}")
            base = posixpath.basename(path)
            if base.startswith(WHITEOUT):
                parent = posixpath.dirname(path)
                if base == OPAQUE:
                    opaques.append(parent)
                else:
                    whiteouts.append(posixpath.join(parent, base[len(WHITEOUT):]))
                continue
            t = member.type
            if t == DIR:
                view._add(path, Node("d", i, i, 0, None, member.mode))
            elif t == SYM:
                view._add(path, Node("l", i, i, 0, member.linkname, member.mode))
            elif t == LNK:
                target = clean_path(member.linkname)
                tnode = view.nodes.get(target)
                if tnode is None:
                    view.warnings.append(f"{what}: hard link {path!r} points to missing {member.linkname!r}")
                    view._add(path, Node("f", i, i, 0, None, member.mode))
                    continue
                view._add(path, Node(tnode.kind, i, i, tnode.size, tnode.link, member.mode))
                if target in view.parsed:
                    view.parsed[path] = view.parsed[target]
                else:
                    view.parsed.pop(path, None)
            elif t == REG:
                view._add(path, Node("f", i, i, member.size, None, member.mode))
                view.parsed.pop(path, None)
                claimed = False
                for c in path_claimers:
                    if not c.claims(path):
                        continue
                    claimed = True
                    if member.size > c.max_file_bytes:
                        view.warnings.append(f"{what}: {path} is {member.size} bytes, over the "
                                             f"{c.name} limit of {c.max_file_bytes}; skipped")
                        break
                    data = reader.read_data(c.max_file_bytes)
                    try:
                        view.parsed[path] = Parsed(c.name, c.reduce(path, data), i)
                    except VouchError:
                        raise
                    except Exception as exc:  # a cataloger's parse error never stops the scan
                        view.warnings.append(f"{what}: {c.name} could not parse {path}: {exc}")
                    break
                if not claimed and file_claimers and member.size >= HEAD:
                    wanting = [c for c in file_claimers if c.wants(path, member.mode, member.size)]
                    if wanting:
                        _reduce_file(view, what, i, path, member.size, reader, wanting)
            elif t in (CHR, BLK, FIFO):
                view._add(path, Node("o", i, i, 0, None, member.mode))
            else:  # sparse files, volume labels, unknown types: present, content not read
                view._add(path, Node("f", i, i, member.size, None, member.mode))
            if on_progress is not None:
                consumed += member.size
                on_progress(consumed)
        producer.finish()  # the rest of the blob is read, so its digest is checked
    except TarFormatError as exc:
        raise InputError(f"{what}: not a readable tar stream ({exc})") from exc
    except (EOFError, OSError) as exc:
        raise InputError(f"{what}: truncated or corrupt ({exc})") from exc
    finally:
        producer.close()
    # Whiteouts hide what the lower layers had (entries of this layer stay).
    for path in whiteouts:
        view._remove_tree(path, below_layer=i, keep_self=False)
    for path in opaques:
        view._remove_tree(path, below_layer=i, keep_self=True)
