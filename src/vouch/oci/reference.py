"""Image references, parsed and normalised the way Docker and containerd do."""

from __future__ import annotations

import re

from vouch.errors import ReferenceError_
from vouch.record import record

DEFAULT_REGISTRY = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
# go-containerregistry (and so cosign's docker-reference) names Docker Hub "index.docker.io".
DOCKER_HUB_GGCR_NAME = "index.docker.io"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
# Every pattern is used with fullmatch: `$` would also match before a trailing newline, so that
# "host/repo\n:tag" would parse. Character classes are spelled out (no `\w`, which is Unicode-wide).
_PATH_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN_RE = re.compile(
    r"(?:localhost|(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*"
    r"|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
)
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128}")
# Control characters (C0, DEL, C1): never part of a reference, and a newline in one could forge log lines.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Longest reference quoted back in a message: the name is at most 255 characters, tag and digest ~200.
_SHOW_MAX = 300


def _show(text: str) -> str:
    """text quoted for a message, cut short if an attacker made it huge."""
    return repr(text) if len(text) <= _SHOW_MAX else repr(text[:_SHOW_MAX]) + f"... ({len(text)} characters)"


def is_digest(value: str) -> bool:
    return bool(_DIGEST_RE.fullmatch(value))


@record(frozen=True)
class Reference:
    """A parsed reference: registry (normalised), repository path, tag and/or digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @staticmethod
    def parse(text: str) -> Reference:
        return parse_reference(text)

    @property
    def api_host(self) -> str:
        """The host:port the registry API answers on."""
        return DOCKER_HUB_API_HOST if self.registry == DEFAULT_REGISTRY else self.registry

    @property
    def name(self) -> str:
        """REGISTRY/REPO as Docker prints it (docker.io/library/alpine)."""
        return f"{self.registry}/{self.repository}"

    @property
    def docker_reference(self) -> str:
        """REGISTRY/REPO as cosign writes it in `docker-reference` (index.docker.io for Docker Hub)."""
        reg = DOCKER_HUB_GGCR_NAME if self.registry == DEFAULT_REGISTRY else self.registry
        return f"{reg}/{self.repository}"

    @property
    def identifier(self) -> str:
        """What to ask the registry for: the digest if known, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, None, digest)

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.registry, self.repository, tag, None)

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_reference(text: str) -> Reference:
    """Parse REF the way `docker pull` does; raise ReferenceError_ with a one-line reason."""
    original = text
    if _CONTROL_RE.search(text):
        raise ReferenceError_(f"invalid image reference {_show(original)}: it contains a control character "
                              "(newline, tab, ...); write the reference on one line")
    text = text.strip()
    if not text:
        raise ReferenceError_("empty image reference: give one like registry.example.com/team/app:1.0")
    if "://" in text:
        raise ReferenceError_(f"invalid image reference {_show(original)}: drop the URL scheme (write host/repo:tag)")
    digest: str | None = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST_RE.fullmatch(digest):
            raise ReferenceError_(
                f"invalid image reference {_show(original)}: digest {_show(digest)} is not sha256:<64 hex digits>"
            )
    tag: str | None = None
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise ReferenceError_(f"invalid image reference {_show(original)}: bad tag {_show(tag)}")
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry, path = first, rest
        if not _DOMAIN_RE.fullmatch(registry):
            raise ReferenceError_(f"invalid image reference {_show(original)}: bad registry host {_show(registry)}")
        registry = registry.lower()
    else:
        registry, path = DEFAULT_REGISTRY, text
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"library/{path}"
    if not path or not _PATH_RE.fullmatch(path):
        hint = " (repository names must be lowercase)" if path != path.lower() else ""
        raise ReferenceError_(f"invalid image reference {_show(original)}: bad repository {_show(path)}{hint}")
    if len(registry) + 1 + len(path) > 255:
        raise ReferenceError_(f"invalid image reference {_show(original)}: name longer than 255 characters")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(registry, path, tag, digest)
