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

import hashlib
import io
import os
import posixpath
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from vouch import limits
from vouch.errors import InputError, VouchError
from vouch.sbom.model import FileDigest
from vouch.sbom.streams import open_layer_stream
from vouch.sbom.tarstream import BLK, CHR, DIR, FIFO, LNK, REG, SYM, TarFormatError, TarReader

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class Claimer(Protocol):
    """A cataloger that reads small files whole (package databases, manifests). It may declare
    `claim_hint = (prefixes, suffixes)`: every path it claims starts with one of the prefixes or ends with
    one of the suffixes. When all claimers declare one, a path matching none of them is not offered to any
    (one C-level test instead of a call per claimer for each of a layer's thousands of files)."""

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
    index: int  # 0-based, from the base (the BOM's layerIndex properties)
    digest: str
    diff_id: str
    media_type: str
    size: int
    count: int = 0  # layers in the image, when known: messages say "layer 1 of 3"

    @property
    def label(self) -> str:
        """How messages name the layer: counted from 1 at the base, "of N", and its digest."""
        of = f" of {self.count}" if self.count else ""
        return f"layer {self.index + 1}{of} ({self.digest[:19]})"


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
    # with ViewOptions.file_digests: path → content digests of every regular file (SPDX files need a SHA1)
    digests: dict[str, FileDigest] = field(default_factory=dict)
    # with ViewOptions.scope "all-layers": (layer that hid or replaced it, path, the parsed record it had)
    history: list[tuple[int, str, Parsed]] | None = None
    excluded: int = 0  # entries left out by ViewOptions.exclude
    _layer: int = 0  # the layer being added (what history records)
    _dir_entries: int = 0  # entries read by add_directory (bounded)
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

    def drop_parsed(self, path: str) -> None:
        """Forget a path's parsed record (a later layer hid or replaced the file); with all-layers scope it
        goes to the history, so that what later layers deleted is still cataloged (and marked)."""
        old = self.parsed.pop(path, None)
        if old is not None and self.history is not None and old.layer < self._layer:
            self.history.append((self._layer, path, old))

    def set_parsed(self, path: str, parsed: Parsed) -> None:
        self.drop_parsed(path)
        self.parsed[path] = parsed

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
                    self.drop_parsed(p)
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
    if name[:1] not in ("/", ".", "") and name[-1:] not in ("/", ".") and "//" not in name and "/." not in name:
        return name  # already normal (nearly every name in a layer): normpath would return it unchanged
    return posixpath.normpath("/" + name).lstrip("/")


@dataclass
class ViewOptions:
    max_layer_bytes: int = limits.SBOM_MAX_LAYER_BYTES
    max_ratio: float = limits.SBOM_MAX_RATIO  # above ratio_floor decompressed bytes, more expansion is a bomb
    ratio_floor: int = limits.SBOM_RATIO_FLOOR
    exclude: tuple[str, ...] = ()  # syft's --exclude globs: matching paths (and what is below them) are not read
    scope: str = "squashed"  # squashed | all-layers (what later layers deleted is cataloged too, and marked)
    file_digests: bool = False  # hash every regular file (SHA1 + SHA256), for SPDX's file entries


SCOPES = ("squashed", "all-layers")


def exclude_matcher(patterns: tuple[str, ...]) -> Callable[[str], bool] | None:
    """syft's --exclude: a glob over the root-relative path, written `./etc/**`, `/etc/**`, `**/*.pyc` or
    `*/tmp/*` (`*` and `?` within a segment, `**` any depth). A match excludes the path and everything
    below it (`./var/cache` excludes /var/cache/apt/pkgcache.bin)."""
    if not patterns:
        return None
    rxs = []
    for raw in patterns:
        pat = raw.strip()
        if pat.startswith("./"):
            pat = pat[2:]
        pat = pat.lstrip("/").rstrip("/")
        if not pat or pat in (".", "**"):
            raise InputError(f"--exclude {raw!r} would exclude everything; name paths such as ./var/cache/** or "
                             "**/*.pyc")
        out, i = "", 0
        while i < len(pat):
            if pat.startswith("**/", i):
                out += "(?:.*/)?"
                i += 3
            elif pat.startswith("**", i):
                out += ".*"
                i += 2
            elif pat[i] == "*":
                out += "[^/]*"
                i += 1
            elif pat[i] == "?":
                out += "[^/]"
                i += 1
            else:
                out += re.escape(pat[i])
                i += 1
        rxs.append(out)
    rx = re.compile("^(?:" + "|".join(rxs) + ")(?:/.*)?$", re.S)
    return lambda path: rx.match(path) is not None


class _Data(Protocol):
    """Reads the current entry's content: a tar member (TarReader) or a file of a directory."""

    def read_data(self, limit: int) -> bytes: ...

    def read_chunk(self, n: int) -> bytes: ...


class _Hashing:
    """A reader that hashes what passes through it; `finish` reads (and hashes) the rest."""

    def __init__(self, inner: _Data):
        self.inner = inner
        self.sha1 = hashlib.sha1(usedforsecurity=False)
        self.sha256 = hashlib.sha256()

    def _seen(self, data: bytes) -> bytes:
        self.sha1.update(data)
        self.sha256.update(data)
        return data

    def read_data(self, limit: int) -> bytes:
        return self._seen(self.inner.read_data(limit))

    def read_chunk(self, n: int) -> bytes:
        return self._seen(self.inner.read_chunk(n))

    def finish(self, layer_diff_id: str) -> FileDigest:
        while self.read_chunk(_SPOOL_CHUNK):
            pass
        return FileDigest(self.sha1.hexdigest(), self.sha256.hexdigest(), layer_diff_id)


def _reduce_file(view: ImageView, what: str, i: int, path: str, member_size: int, reader: _Data,
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
            view.set_parsed(path, Parsed(c.name, value, i))
        return


@dataclass
class _Claimers:
    paths: list[Claimer]
    files: list[FileClaimer]
    excluded: Callable[[str], bool] | None
    hashing: bool
    prefixes: tuple[str, ...] | None = None  # (None: some claimer declared no claim_hint; every path is offered)
    suffixes: tuple[str, ...] = ()

    @classmethod
    def split(cls, claimers: list[Any], options: ViewOptions) -> _Claimers:
        paths = [c for c in claimers if not hasattr(c, "reduce_file")]
        out = cls(paths, [c for c in claimers if hasattr(c, "reduce_file")], exclude_matcher(options.exclude),
                  options.file_digests)
        hints: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
            h for h in (getattr(c, "claim_hint", None) for c in paths) if h is not None]
        if len(hints) == len(paths):
            out.prefixes = tuple(p for h in hints for p in h[0])
            out.suffixes = tuple(s for h in hints for s in h[1])
        return out

    def may_claim(self, path: str) -> bool:
        return self.prefixes is None or path.startswith(self.prefixes) or path.endswith(self.suffixes)


def _add_entry(view: ImageView, layer: LayerInfo, what: str, path: str, kind: str, size: int, mode: int,
               link: str | None, data: _Data, cl: _Claimers) -> None:
    """One entry of a layer (or directory) into the view: kind f (regular file), d, l (symlink), h (hard
    link to `link`), o (device or fifo), u (present, content not read)."""
    i = layer.index
    if kind == "d":
        view._add(path, Node("d", i, i, 0, None, mode))
    elif kind == "l":
        view._add(path, Node("l", i, i, 0, link, mode))
    elif kind == "h":
        target = clean_path(link or "")
        tnode = view.nodes.get(target)
        if tnode is None:
            view.warnings.append(f"{what}: hard link {path!r} points to missing {link!r}")
            view._add(path, Node("f", i, i, 0, None, mode))
            return
        view._add(path, Node(tnode.kind, i, i, tnode.size, tnode.link, mode))
        if target in view.parsed:
            view.set_parsed(path, view.parsed[target])
        else:
            view.drop_parsed(path)
        if cl.hashing and target in view.digests:
            view.digests[path] = view.digests[target]
        return
    elif kind == "f":
        view._add(path, Node("f", i, i, size, None, mode))
        view.drop_parsed(path)
        reader: _Data = _Hashing(data) if cl.hashing else data
        claimed = False
        for c in cl.paths if cl.may_claim(path) else ():
            if not c.claims(path):
                continue
            claimed = True
            if size > c.max_file_bytes:
                view.warnings.append(f"{what}: {path} is {size} bytes, over the "
                                     f"{c.name} limit of {c.max_file_bytes}; skipped")
                break
            content = reader.read_data(c.max_file_bytes)
            try:
                view.set_parsed(path, Parsed(c.name, c.reduce(path, content), i))
            except VouchError:
                raise
            except Exception as exc:  # a cataloger's parse error never stops the scan
                view.warnings.append(f"{what}: {c.name} could not parse {path}: {exc}")
            break
        if not claimed and cl.files and size >= HEAD:
            wanting = [c for c in cl.files if c.wants(path, mode, size)]
            if wanting:
                _reduce_file(view, what, i, path, size, reader, wanting)
        if isinstance(reader, _Hashing):
            view.digests[path] = reader.finish(layer.diff_id)
        return
    elif kind == "o":
        view._add(path, Node("o", i, i, 0, None, mode))
    else:  # sparse files, volume labels, unknown types: present, content not read
        view._add(path, Node("f", i, i, size, None, mode))
    if cl.hashing:
        view.digests.pop(path, None)


_TAR_KINDS = {DIR: "d", SYM: "l", LNK: "h", REG: "f", CHR: "o", BLK: "o", FIFO: "o"}


def add_layer(view: ImageView, layer: LayerInfo, chunks: Iterator[bytes], claimers: list[Any],
              options: ViewOptions | None = None, on_progress: Callable[[int], None] | None = None) -> None:
    """Stream one layer (the next one up) into the view. Claimers are path claimers (small files,
    `reduce` gets the bytes) or file claimers (`reduce_file` gets a seekable spooled copy)."""
    options = options or ViewOptions()
    cl = _Claimers.split(claimers, options)
    what = layer.label
    view._layer = layer.index
    if options.scope == "all-layers" and view.history is None:
        view.history = []
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
            if ".." in name and ".." in name.split("/"):
                view.warnings.append(f"{what}: entry {name!r} has '..' components; clamped to /{path}")
            if WHITEOUT in path and (base := path[path.rfind("/") + 1:]).startswith(WHITEOUT):
                parent = posixpath.dirname(path)
                if base == OPAQUE:
                    markers.setdefault(parent, False)  # a repeated marker costs a dict lookup
                else:
                    markers[posixpath.join(parent, base[len(WHITEOUT):])] = True  # hides more than opaque
                continue
            if cl.excluded is not None and cl.excluded(path):
                view.excluded += 1
                continue
            _add_entry(view, layer, what, path, _TAR_KINDS.get(member.type, "u"), member.size, member.mode,
                       member.linkname, reader, cl)
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
    apply_whiteouts(view, markers, layer.index)


class _FileData:
    """A directory's regular file as an entry's content, opened (without following a symlink) only when
    someone reads it, and at most the size lstat gave (a file that grows while it is read is cut there,
    one that shrinks ends early, one that is no longer a regular file reads as empty)."""

    def __init__(self, dfd: int, name: str, size: int, on_error: Callable[[str], None]):
        self.dfd, self.name, self.left, self.on_error = dfd, name, size, on_error
        self.f: BinaryIO | None = None

    def _open(self) -> BinaryIO | None:
        if self.f is None and self.left > 0:
            try:
                fd = os.open(self.name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0),
                             dir_fd=self.dfd)
            except OSError as exc:  # gone, replaced by a symlink since the listing, or unreadable
                self.on_error(f"cannot open it ({exc.strerror or exc}); listed, not read")
                self.left = 0
                return None
            self.f = os.fdopen(fd, "rb")
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                self.on_error("no longer a regular file; not read")
                self.left = 0
        return self.f

    def close(self) -> None:
        if self.f is not None:
            self.f.close()

    def read_data(self, limit: int) -> bytes:
        if self.left > limit:
            raise TarFormatError("entry larger than the limit")
        return self.read_chunk(self.left)

    def read_chunk(self, n: int) -> bytes:
        n = min(n, self.left)
        f = self._open() if n > 0 else None
        if f is None or self.left <= 0:
            return b""
        try:
            data = f.read(min(n, self.left))
        except OSError as exc:
            self.on_error(f"read failed ({exc.strerror or exc})")
            data = b""
        self.left = 0 if not data else self.left - len(data)
        return data


class _NoData:
    def read_data(self, limit: int) -> bytes:
        return b""

    def read_chunk(self, n: int) -> bytes:
        return b""


def add_directory(view: ImageView, root: str, layer: LayerInfo, claimers: list[Any],
                  options: ViewOptions | None = None, max_entries: int = limits.SBOM_MAX_IMPLICIT_DIRS) -> str:
    """An unpacked root filesystem (what `buildah mount` shows) as the view's one layer. Nothing is ever
    followed out of `root`: symlinks are recorded, not followed (resolve() keeps their targets inside the
    image root, as for a layer), files are opened with O_NOFOLLOW and read only when a cataloger claims
    them (within its size limit), devices and fifos are never opened. Returns the digest of the listing
    (path, kind, size, mode, link target of every entry): the directory's identity in the BOM."""
    options = options or ViewOptions()
    cl = _Claimers.split(claimers, options)
    what = f"dir:{root}"
    view._layer = layer.index
    listing = hashlib.sha256()
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    try:
        top = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise InputError(f"{what}: not a readable directory ({exc.strerror or exc})") from exc
    stack = [""]
    try:
        while stack:
            rel = stack.pop()
            try:
                dfd = _open_dir(top, rel, nofollow)
            except OSError as exc:  # gone, or a directory swapped for a symlink while the walk ran
                view.warnings.append(f"{what}: cannot open the directory /{rel}: {exc.strerror or exc}; skipped")
                continue
            try:
                _scan_dir(view, layer, what, rel, dfd, cl, listing, stack, max_entries)
            finally:
                os.close(dfd)
    except TarFormatError as exc:
        raise InputError(f"{what}: {exc}") from exc
    except IndexLimit as exc:
        raise InputError(f"{what}: the path index is too large ({exc}); refusing it") from exc
    finally:
        os.close(top)
    return "sha256:" + listing.hexdigest()


def _open_dir(top: int, rel: str, nofollow: int) -> int:
    """The directory at rel below top, each component opened without following a symlink."""
    fd = os.dup(top)
    for part in rel.split("/") if rel else ():
        try:
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=fd)
        finally:
            os.close(fd)
        fd = nxt
    return fd


def _scan_dir(view: ImageView, layer: LayerInfo, what: str, rel: str, dfd: int, cl: _Claimers,
              listing: Any, stack: list[str], max_entries: int) -> None:
    try:
        with os.scandir(dfd) as it:
            names = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        view.warnings.append(f"{what}: cannot list /{rel}: {exc.strerror or exc}; skipped")
        return
    subdirs = []
    entries = view._dir_entries
    for e in names:
        path = f"{rel}/{e.name}" if rel else e.name
        if len(path) > limits.SBOM_MAX_PATH_BYTES:
            view.warnings.append(f"{what}: a path longer than {limits.SBOM_MAX_PATH_BYTES} bytes under /{rel}; "
                                 "skipped")
            continue
        if cl.excluded is not None and cl.excluded(path):
            view.excluded += 1
            continue
        entries += 1
        view._dir_entries = entries
        if entries > max_entries:
            raise InputError(f"{what}: more than {max_entries} entries; refusing it")
        try:
            st = e.stat(follow_symlinks=False)
        except OSError as exc:
            view.warnings.append(f"{what}: cannot stat /{path}: {exc.strerror or exc}; skipped")
            continue
        mode = stat.S_IMODE(st.st_mode)
        link = None
        if stat.S_ISDIR(st.st_mode):
            kind, size = "d", 0
            subdirs.append(path)
        elif stat.S_ISLNK(st.st_mode):
            kind, size = "l", 0
            try:
                link = os.readlink(e.name, dir_fd=dfd)
            except OSError as exc:
                view.warnings.append(f"{what}: cannot read the symlink /{path}: {exc.strerror or exc}")
                link = ""
        elif stat.S_ISREG(st.st_mode):
            kind, size = "f", st.st_size
        else:
            kind, size = "o", 0
        listing.update(f"{path}\0{kind}\0{size}\0{mode:o}\0{link or ''}\n".encode("utf-8", "surrogateescape"))
        name = path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")  # as a tar name would read
        if kind != "f":
            _add_entry(view, layer, what, name, kind, size, mode, link, _NoData(), cl)
            continue
        def warn(msg: str, p: str = path) -> None:
            view.warnings.append(f"{what}: /{p}: {msg}")

        data = _FileData(dfd, e.name, size, warn)
        try:
            _add_entry(view, layer, what, name, "f", size, mode, None, data, cl)
        finally:
            data.close()
    stack.extend(reversed(subdirs))


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
