"""`@record`: what `@dataclass` gives vouch's small value classes on the verify path, at a fraction of its cost.

Making a dataclass compiles four to six generated methods (`exec`), and 19 of them cost `vouch verify` about a
tenth of its start-up (measured: 13–16 ms of a 120 ms verify of one image). A record compiles one method, its
`__init__` (so constructing one is as fast as a dataclass's, with the same signature and annotations); its
`__repr__`, `__eq__`, `__hash__` and, frozen, `__setattr__`/`__delattr__` are shared functions with the
dataclass semantics: fields compared and hashed as a tuple, `compare=False` and `repr=False` fields left out,
a mutable record unhashable, a frozen one refusing assignment (FrozenInstanceError, an AttributeError).
Defaults, `field(default_factory=…)` and `__post_init__` work as in a dataclass. Not supported (and not used
by records): inheritance between records, `dataclasses.fields/replace/asdict`, order, slots, kw_only.
Type checkers see a dataclass (`typing.dataclass_transform`). tests/test_record.py compares them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload


class _Missing:
    def __repr__(self) -> str:
        return "<factory>"  # (a factory field's default in the signature, as dataclasses shows it)


_MISSING: Any = _Missing()
T = TypeVar("T", bound=type)


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen record (as dataclasses.FrozenInstanceError)."""


class _Field:
    __slots__ = ("compare", "default", "default_factory", "repr")

    def __init__(self, default: Any, default_factory: Callable[[], Any] | None, repr_: bool, compare: bool) -> None:
        self.default, self.default_factory, self.repr, self.compare = default, default_factory, repr_, compare


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] | None = None, repr: bool = True,
          compare: bool = True) -> Any:
    """A field with a default made per instance (default_factory), or left out of repr or of comparison."""
    if default is not _MISSING and default_factory is not None:
        raise ValueError("cannot specify both default and default_factory")
    return _Field(default, default_factory, repr, compare)


@overload
def record(cls: T, /) -> T: ...


@overload
def record(*, frozen: bool = False) -> Callable[[T], T]: ...


@dataclass_transform(field_specifiers=(field,))
def record(cls: T | None = None, /, *, frozen: bool = False) -> T | Callable[[T], T]:
    def wrap(c: T) -> T:
        return _make(c, frozen)

    return wrap if cls is None else wrap(cls)


def _is_classvar(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__origin__", annotation).__repr__()
    return text.startswith(("ClassVar", "typing.ClassVar"))


def _make(cls: T, frozen: bool) -> T:
    if any(getattr(base, "__record_fields__", None) is not None for base in cls.__mro__[1:]):
        raise TypeError(f"{cls.__name__}: records do not inherit from records")
    annotations = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 (inspect is what records spare)
    names: list[str] = []
    defaults: dict[str, Any] = {}
    factories: dict[str, Callable[[], Any]] = {}
    shown: list[str] = []
    compared: list[str] = []
    for name, annotation in annotations.items():
        if _is_classvar(annotation):
            continue
        names.append(name)
        value = cls.__dict__.get(name, _MISSING)
        show = compare = True
        if isinstance(value, _Field):
            show, compare = value.repr, value.compare
            if value.default_factory is not None:
                factories[name] = value.default_factory
            elif value.default is not _MISSING:
                defaults[name] = value.default
            if name in defaults:
                setattr(cls, name, defaults[name])
            else:
                delattr(cls, name)
        elif value is not _MISSING:
            defaults[name] = value
        if show:
            shown.append(name)
        if compare:
            compared.append(name)
    params, body, env = [], [], {"_MISSING": _MISSING, "_setattr": object.__setattr__}
    for name in names:
        if name in defaults:
            params.append(f"{name}=_d_{name}")
            env[f"_d_{name}"] = defaults[name]
            value_text = name
        elif name in factories:
            params.append(f"{name}=_MISSING")
            env[f"_f_{name}"] = factories[name]
            value_text = f"_f_{name}() if {name} is _MISSING else {name}"
        else:
            if params and params[-1].count("="):
                raise TypeError(f"{cls.__name__}: non-default field {name!r} follows a default one")
            params.append(name)
            value_text = name
        body.append(f"_setattr(self, {name!r}, {value_text})" if frozen else f"self.{name} = {value_text}")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    source = (f"def __make__({', '.join(env)}):\n"
              f" def __init__(self{''.join(', ' + p for p in params)}):\n"
              + "".join(f"  {line}\n" for line in body or ["pass"])
              + " return __init__\n")
    local: dict[str, Any] = {}
    module_globals = sys.modules[cls.__module__].__dict__ if cls.__module__ in sys.modules else {}
    exec(source, module_globals, local)  # (our own generated text, as dataclasses does)
    init = local["__make__"](**env)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__annotations__ = {name: annotations[name] for name in names} | {"return": None}
    shown_t, compared_t = tuple(shown), tuple(compared)

    def __repr__(self: Any) -> str:
        return f"{type(self).__qualname__}({', '.join(f'{n}={getattr(self, n)!r}' for n in shown_t)})"

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return tuple(getattr(self, n) for n in compared_t) == tuple(getattr(other, n) for n in compared_t)

    methods: dict[str, Any] = {"__init__": init, "__repr__": __repr__, "__eq__": __eq__}
    if frozen:
        def __setattr__(self: Any, name: str, value: Any) -> None:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")

        def __delattr__(self: Any, name: str) -> None:
            raise FrozenInstanceError(f"cannot delete field {name!r}")

        def __hash__(self: Any) -> int:
            return hash(tuple(getattr(self, n) for n in compared_t))

        methods |= {"__setattr__": __setattr__, "__delattr__": __delattr__}
        if "__hash__" not in cls.__dict__:
            methods["__hash__"] = __hash__
    elif "__hash__" not in cls.__dict__:
        methods["__hash__"] = None  # (as a dataclass with eq and not frozen: unhashable)
    for name, method in methods.items():
        if name in cls.__dict__:
            continue  # (the class's own method stays, as with a dataclass)
        if callable(method):
            method.__qualname__ = f"{cls.__qualname__}.{name}"
        setattr(cls, name, method)
    cls.__record_fields__ = tuple(names)  # type: ignore[attr-defined]
    cls.__match_args__ = tuple(names)  # type: ignore[attr-defined,misc]
    return cls
