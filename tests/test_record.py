"""vouch.record against dataclasses: the same class written both ways behaves the same (construction,
defaults and factories, __post_init__, repr, equality, hashing, frozen assignment), for fixed cases and for
any values (Hypothesis)."""

from __future__ import annotations

import dataclasses
import inspect
import typing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vouch.record import FrozenInstanceError, field, record


def _pair(frozen: bool) -> tuple[type, type]:
    def body() -> dict[str, object]:
        return {"__annotations__": {"name": "str", "size": "int", "tags": "tuple[str, ...]", "note": "str | None",
                                    "cache": "dict[str, int]", "LIMIT": "typing.ClassVar[int]"},
                "LIMIT": 3}

    d_ns, r_ns = body(), body()
    d_ns.update(tags=dataclasses.field(default_factory=tuple), note=None,
                cache=dataclasses.field(default_factory=dict, repr=False, compare=False))
    r_ns.update(tags=field(default_factory=tuple), note=None, cache=field(default_factory=dict, repr=False,
                                                                          compare=False))
    d = dataclasses.dataclass(frozen=frozen)(type("Thing", (), {**d_ns, "__module__": __name__}))
    r = record(frozen=frozen)(type("Thing", (), {**r_ns, "__module__": __name__}))
    return d, r


@pytest.mark.parametrize("frozen", [False, True])
def test_a_record_behaves_as_the_same_dataclass(frozen: bool) -> None:
    d, r = _pair(frozen)
    for args, kwargs in [(("a", 1), {}), (("a", 1, ("x",)), {"note": "n"}), ((), {"name": "b", "size": 2})]:
        a, b = d(*args, **kwargs), r(*args, **kwargs)
        assert repr(a) == repr(b) and a.tags == b.tags and a.note == b.note and a.cache == b.cache == {}
        assert (a == d(*args, **kwargs)) and (b == r(*args, **kwargs)) and b != a  # (other class: not equal)
    assert r("a", 1).cache is not r("a", 1).cache  # a factory per instance
    assert r("a", 1) == r("a", 1, cache={"ignored": 1})  # compare=False
    assert r.LIMIT == 3 and "LIMIT" not in repr(r("a", 1))  # a ClassVar is no field
    with pytest.raises(TypeError):
        r()
    with pytest.raises(TypeError):
        r("a", 1, (), None, {}, "extra")
    with pytest.raises(TypeError):
        r("a", size=1, nope=2)
    assert str(inspect.signature(r)) == str(inspect.signature(d))
    assert typing.get_type_hints(r.__init__) == typing.get_type_hints(d.__init__)
    if frozen:
        x = r("a", 1)
        with pytest.raises(FrozenInstanceError):
            x.name = "b"  # type: ignore[misc]
        with pytest.raises(AttributeError):
            del x.size
        assert hash(x) == hash(r("a", 1, cache={"z": 2})) and {x: 1}[r("a", 1)] == 1
    else:
        with pytest.raises(TypeError):
            hash(r("a", 1))
        x = r("a", 1)
        x.name = "b"
        assert x.name == "b"


def test_post_init_and_a_class_of_its_own_methods() -> None:
    @record
    class Counted:
        n: int
        doubled: int = 0

        def __post_init__(self) -> None:
            self.doubled = 2 * self.n

        def __repr__(self) -> str:
            return "mine"

    assert Counted(4).doubled == 8 and repr(Counted(1)) == "mine"
    with pytest.raises(TypeError, match="non-default field"):
        record(type("Bad", (), {"__annotations__": {"a": "int", "b": "int"}, "a": 1, "__module__": __name__}))


@given(name=st.text(max_size=8), size=st.integers(), tags=st.lists(st.text(max_size=3), max_size=3).map(tuple),
       note=st.none() | st.text(max_size=5), other=st.integers())
def test_equality_and_hash_match_dataclasses_for_any_values(name: str, size: int, tags: tuple[str, ...],
                                                            note: str | None, other: int) -> None:
    d, r = _pair(True)
    a1, a2 = d(name, size, tags, note), d(name, other, tags, note)
    b1, b2 = r(name, size, tags, note), r(name, other, tags, note)
    assert (a1 == a2) == (b1 == b2) and repr(a1) == repr(b1) and repr(a2) == repr(b2)
    assert hash(b1) == hash(r(name, size, tuple(tags), note)) and (hash(a1) == hash(a2)) == (hash(b1) == hash(b2))
