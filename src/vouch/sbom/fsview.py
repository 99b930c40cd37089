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


class _Dir:
    """A node of the path index, a tree of path components: the entry at this path if there is one,
    and the names below it. One of these per path (not per ancestor string, whose sum grows with the
    square of a path's depth), so that a deep path costs memory and time linear in its length.
    Invariant: a _Dir without an entry has children (emptied directories leave the index)."""

    __slots__ = ("kids", "node")

    def __init__(self) -> None:
        self.kids: dict[str, _Dir] | None = None
        self.node: Node | None = None


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


class IndexLimit(ValueError):
    """The path index outgrew a bound (add_layer turns it into an InputError naming the layer)."""


@dataclass
class ImageView:
    layers: list[LayerInfo] = field(default_factory=list)
    nodes: dict[str, Node] = field(default_factory=dict)
    parsed: dict[str, Parsed] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    _root: _Dir = field(default_factory=_Dir)
    _implicit_dirs: int = 0  # index nodes created for parents that had no entry (yet): bounded
    _resolve_steps: int = 0  # path components walked and symlinks followed by resolve(): bounded
    _resolve_warned: bool = False
    _last_parent_path: str = ""
    _last_parent: _Dir | None = None  # the index node of the previous entry's directory

    # ---- queries for catalogers ----------------------------------------------------------

    def exists(self, path: str) -> bool:
        return self.resolve(path) in self.nodes

    def is_dir(self, path: str) -> bool:
        """A directory, also one that only exists because paths below it do (tars may omit the entry)."""
        d = self._find(self.resolve(path))
        if d is None:
            return False
        if d.node is not None:
            return d.node.kind == "d"
        return bool(d.kids)  # an implicit directory is in the index only while something is below it

    def resolve(self, path: str, max_hops: int = limits.SBOM_MAX_SYMLINK_HOPS) -> str:
        """Follow symlinks (in any component) without ever leaving the root. Linear in the path's
        length per symlink followed; a symlink maze costs at most limits.SBOM_MAX_RESOLVE_STEPS for
        the whole image, after which paths are taken as written (and a warning says so)."""
        path = clean_path(path)
        for _ in range(max_hops):
            if len(path) > limits.SBOM_MAX_PATH_BYTES or self._resolve_steps > limits.SBOM_MAX_RESOLVE_STEPS:
                break  # no entry has a longer path; or the image's budget is spent
            parts = path.split("/") if path else []
            d: _Dir | None = self._root
            for i, part in enumerate(parts):
                kids = d.kids if d is not None else None
                d = kids.get(part) if kids else None
                if d is None:
                    self._resolve_steps += i + 1
                    return path  # nothing below: no further symlink on this path
                node = d.node
                if node is not None and node.kind == "l" and node.link is not None:
                    target = node.link
                    prefix = "/".join(parts[:i])
                    base = target if target.startswith("/") else posixpath.join(prefix, target)
                    path = clean_path("/".join([base, *parts[i + 1:]]))
                    self._resolve_steps += i + 1 + len(path) // 64
                    break
            else:
                self._resolve_steps += len(parts)
                return path
        if self._resolve_steps > limits.SBOM_MAX_RESOLVE_STEPS and not self._resolve_warned:
            self._resolve_warned = True
            self.warnings.append(f"symlink resolution stopped after {limits.SBOM_MAX_RESOLVE_STEPS} steps (a "
                                 "symlink maze?); later paths are taken as written")
        return path

    def get(self, path: str) -> Parsed | None:
        """The parsed record of a claimed file, following symlinks."""
        return self.parsed.get(self.resolve(path)) or self.parsed.get(clean_path(path))

    def parsed_by(self, cataloger: str) -> Iterator[tuple[str, Parsed]]:
        for path, p in self.parsed.items():
            if p.cataloger == cataloger:
                yield path, p

    # ---- building --------------------------------------------------------------------------

    def _find(self, path: str) -> _Dir | None:
        d = self._root
        if not path:
            return d
        for part in path.split("/"):
            kids = d.kids
            nxt = kids.get(part) if kids else None
            if nxt is None:
                return None
            d = nxt
        return d

    def _add(self, path: str, node: Node) -> None:
        old = self.nodes.get(path)
        if old is not None:
            node.first_layer = old.first_layer
            if old.kind == "d" and node.kind != "d":
                self._remove_tree(path, below_layer=None, keep_self=False)
        self.nodes[path] = node
        # Index the whole ancestor chain: tars need not carry entries for parent directories, and a
        # whiteout or opaque marker higher up must still reach this path.
        parent_path, _, name = path.rpartition("/")
        parent = self._last_parent if parent_path == self._last_parent_path else None
        if parent is None:  # not the directory of the previous entry (tars list a directory's files together)
            parent = self._root
            for part in parent_path.split("/") if parent_path else ():
                kids = parent.kids
                if kids is None:
                    kids = parent.kids = {}
                nxt = kids.get(part)
                if nxt is None:
                    nxt = kids[part] = _Dir()
                    self._implicit_dirs += 1
                parent = nxt
            if self._implicit_dirs > limits.SBOM_MAX_IMPLICIT_DIRS:
                raise IndexLimit(f"more than {limits.SBOM_MAX_IMPLICIT_DIRS} parent directories without an entry "
                                 "of their own")
            self._last_parent_path, self._last_parent = parent_path, parent
        kids = parent.kids
        if kids is None:
            kids = parent.kids = {}
        d = kids.get(name)
        if d is None:
            d = kids[name] = _Dir()
        d.node = node

    def _remove_tree(self, path: str, below_layer: int | None, keep_self: bool) -> None:
        """Remove `path` (unless keep_self) and everything below it that lower layers brought (all of
        it if below_layer is None). Children go before their parent, so that directories left empty
        leave the index, up to the root: each removed path is visited once, ever."""
        self._last_parent = None  # it may leave the index below
        chain = [self._root]
        parts = path.split("/") if path else []
        for part in parts:
            kids = chain[-1].kids
            nxt = kids.get(part) if kids else None
            if nxt is None:
                return  # nothing indexed there
            chain.append(nxt)
        top = chain[-1]
        # iterative post-order walk (deep trees must not hit the recursion limit)
        stack: list[tuple[str, _Dir, list[tuple[str, _Dir]]]] = [(path, top, list(top.kids.items()) if top.kids
                                                                  else [])]
        while stack:
            p, d, todo = stack[-1]
            if todo:
                name, kid = todo.pop()
                stack.append((f"{p}/{name}" if p else name, kid, list(kid.kids.items()) if kid.kids else []))
                continue
            stack.pop()
            node = d.node
            if node is not None and not (keep_self and d is top):
                if below_layer is not None and node.last_layer >= below_layer:
                    if node.first_layer < below_layer:
                        node.first_layer = below_layer  # recreated above the whiteout: new from here on
                else:
                    del self.nodes[p]
                    self.parsed.pop(p, None)
                    d.node = None
            if stack and d.node is None and not d.kids:
                parent = stack[-1][1]
                assert parent.kids is not None
                del parent.kids[p.rpartition("/")[2]]
        # the top and its ancestors, if now empty and without an entry, leave the index too
        for depth in range(len(chain) - 1, 0, -1):
            d = chain[depth]
            if d.node is not None or d.kids:
                break
            parent_kids = chain[depth - 1].kids
            assert parent_kids is not None
            del parent_kids[parts[depth - 1]]


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
    markers: dict[str, bool] = {}  # whiteout (True) or opaque-directory (False) marker paths: each once
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
                    markers.setdefault(parent, False)  # a repeated marker costs a dict lookup
                else:
                    markers[posixpath.join(parent, base[len(WHITEOUT):])] = True  # hides more than opaque
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
    except IndexLimit as exc:
        raise InputError(f"{what}: the image's path index is too large ({exc}); refusing it") from exc
    except (EOFError, OSError) as exc:
        raise InputError(f"{what}: truncated or corrupt ({exc})") from exc
    finally:
        producer.close()
    apply_whiteouts(view, markers, i)


def apply_whiteouts(view: ImageView, markers: dict[str, bool], layer: int) -> None:
    """Whiteouts (True) and opaque markers (False) of one layer hide what the lower layers had below
    them (entries of this layer stay). A marker below another one is already covered by it and is
    skipped, so nested markers cost one walk of the tree, not one each."""
    # "/" → "\0" in the sort key puts a path's descendants right after it (before "a-b" sorts "a/b")
    covering: str | None = None
    for path in sorted(markers, key=lambda p: p.replace("/", "\0")):
        if covering is not None and (covering == "" or path.startswith(covering + "/")):
            continue
        covering = path
        view._remove_tree(path, below_layer=layer, keep_self=not markers[path])
