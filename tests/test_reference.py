import pytest

from vouch.errors import ReferenceError_
from vouch.oci.reference import parse_reference

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repo", "tag", "digest", "api", "docker_ref"),
    [
        ("alpine", "docker.io", "library/alpine", "latest", None, "registry-1.docker.io",
         "index.docker.io/library/alpine"),
        ("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None, "registry-1.docker.io",
         "index.docker.io/library/ubuntu"),
        ("index.docker.io/foo/bar", "docker.io", "foo/bar", "latest", None, "registry-1.docker.io",
         "index.docker.io/foo/bar"),
        ("localhost/app", "localhost", "app", "latest", None, "localhost", "localhost/app"),
        ("localhost:5000/a/b:t", "localhost:5000", "a/b", "t", None, "localhost:5000", "localhost:5000/a/b"),
        (f"127.0.0.1:5000/x@{D}", "127.0.0.1:5000", "x", None, D, "127.0.0.1:5000", "127.0.0.1:5000/x"),
        (f"harbor.akko-ai.com/akko/cockpit:2026.04@{D}", "harbor.akko-ai.com", "akko/cockpit", "2026.04", D,
         "harbor.akko-ai.com", "harbor.akko-ai.com/akko/cockpit"),
        ("Registry.Example.COM/team/app", "registry.example.com", "team/app", "latest", None,
         "registry.example.com", "registry.example.com/team/app"),
        ("foo/bar__baz-qux.x", "docker.io", "foo/bar__baz-qux.x", "latest", None, "registry-1.docker.io",
         "index.docker.io/foo/bar__baz-qux.x"),
    ],
)
def test_parse(text: str, registry: str, repo: str, tag: str | None, digest: str | None, api: str,
               docker_ref: str) -> None:
    r = parse_reference(text)
    assert (r.registry, r.repository, r.tag, r.digest) == (registry, repo, tag, digest)
    assert r.api_host == api
    assert r.docker_reference == docker_ref
    assert parse_reference(str(r)) == r


@pytest.mark.parametrize(
    "text",
    ["", "UPPER/app", "a::b", "https://host/x", "x@sha256:zz", "x@md5:abc", "host:5000/", "a/b:bad tag",
     "a/-b", "a//b", "x:" + "t" * 200],
)
def test_invalid(text: str) -> None:
    with pytest.raises(ReferenceError_) as info:
        parse_reference(text)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2
