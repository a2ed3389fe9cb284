"""What a job's arguments must fit, checked at enqueue: the task's parameters (how many,
which names) and, where a parameter is annotated with a plain scalar type, the kind of
value (docs/api.md, "Arguments").

Only ``int``, ``float``, ``str``, ``bool`` and unions of them with ``None``
(``float | None``, ``Optional[int]``) are checked; any other annotation, and a parameter
without one, accepts anything, as before. The rule is Python's own, widened where JSON
or habit blurs the kinds, so that no call that fits its annotations as Python and JSON
read them is refused:

- ``float`` takes an ``int`` (JSON has one kind of number) and a ``bool`` (an ``int``);
- ``int`` takes a ``bool`` (Python's ``True`` is ``1``) and a whole ``float`` (``3.0``,
  which JSON encoders of some languages send for ``3``);
- ``bool`` takes ``True``, ``False``, ``0`` and ``1``;
- ``None`` fits only a union with ``None`` or a parameter whose default is ``None``.

So ``"fast"`` for ``seconds: float`` is refused, with the argument's name; ``2`` for it
is not.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ConfigurationError, InvalidArguments

__all__ = ["Parameters", "parameters"]

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_SCALARS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _fits_int(value: Any) -> bool:
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _fits_float(value: Any) -> bool:
    return isinstance(value, int | float)


def _fits_bool(value: Any) -> bool:
    return isinstance(value, bool) or (type(value) is int and value in (0, 1))


def _fits_str(value: Any) -> bool:
    return isinstance(value, str)


_FITS: dict[type, Callable[[Any], bool]] = {
    int: _fits_int, float: _fits_float, bool: _fits_bool, str: _fits_str,
}  # fmt: skip
#: The types of value each kind takes whatever the value: one set lookup for nearly
#: every call, the checks above only for the rest (a whole float, 0 or 1, a subclass).
_EXACT: dict[type, set[type]] = {int: {int, bool}, float: {int, float, bool}, bool: {bool},
                                 str: {str}}  # fmt: skip


class Kind:
    """The values an annotated scalar parameter accepts, and how an error says them."""

    __slots__ = ("annotation", "checks", "exact", "said")

    def __init__(self, kinds: list[type], nullable: bool) -> None:
        self.checks = tuple(_FITS[k] for k in kinds)
        exact = {t for k in kinds for t in _EXACT[k]}
        self.exact = frozenset(exact | {type(None)} if nullable else exact)
        said = [_SCALARS[k] for k in kinds] + (["null"] if nullable else [])
        self.said = ", ".join(said[:-1]) + (" or " if len(said) > 1 else "") + said[-1]
        self.annotation = " | ".join(k.__name__ for k in kinds)

    def fits(self, value: Any) -> bool:
        if type(value) in self.exact:
            return True
        if value is None:
            return False
        return any(check(value) for check in self.checks)


def _kind(annotation: Any, default: Any) -> Kind | None:
    """The ``Kind`` of an annotation that is a scalar or a union of scalars and ``None``;
    None for anything else (not checked)."""
    if isinstance(annotation, type) and annotation in _FITS:
        return Kind([annotation], default is None)
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return None
    members = typing.get_args(annotation)
    kinds = [m for m in members if m is not type(None)]
    if not kinds or any(not (isinstance(m, type) and m in _FITS) for m in kinds):
        return None
    return Kind(kinds, len(kinds) < len(members) or default is None)


class Parameters:
    """A task's parameters as a job's arguments fill them (a ``bind=True`` task's first
    one, the context the worker passes, left out), and the annotated scalar ones."""

    def __init__(self, name: str, signature: inspect.Signature, kinds: Mapping[str, Kind]) -> None:
        self.name, self.signature = name, signature
        #: Per parameter name, its ``Kind``; positional parameters by position too.
        self.kinds = dict(kinds)
        positional = [p.name for p in signature.parameters.values() if p.kind in _POSITIONAL]
        self.by_position = [
            (i, self.kinds[n], n) for i, n in enumerate(positional) if n in self.kinds
        ]

    def __str__(self) -> str:
        return str(self.signature)

    def bind(self, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]) -> None:
        """Refuse a call the function cannot take (count, names), naming the argument."""
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            named = re.search(r"'(\w+)'", str(exc))
            field = f"kwargs.{named.group(1)}" if named else "args"
            raise InvalidArguments(
                f"task {self.name!r} takes {self.signature}; {exc} (nothing was queued)",
                field=field,
            ) from None

    def check_kinds(
        self, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any], skip: int = 0
    ) -> None:
        """Refuse a value of the wrong kind for an annotated scalar parameter (but the
        first ``skip`` positional ones)."""
        # the set lookup inline: most values are of an exact type their kind takes
        for i, kind, name in self.by_position:
            if (
                i < len(args)
                and type(args[i]) not in kind.exact
                and i >= skip
                and not kind.fits(args[i])
            ):
                self._refuse(f"args.{i}", name, kind, args[i])
        for name, value in kwargs.items():
            named = self.kinds.get(name)
            if named is not None and type(value) not in named.exact and not named.fits(value):
                self._refuse(f"kwargs.{name}", name, named, value)

    def _refuse(self, field: str, name: str, kind: Kind, value: Any) -> None:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise InvalidArguments(
            f"task {self.name!r}: argument {name!r} ({kind.annotation}) takes {kind.said}, "
            f"not {type(value).__name__} {shown} (nothing was queued)",
            field=field,
        )


def parameters(fn: Callable[..., Any], name: str, bind: bool) -> Parameters | None:
    """``fn``'s parameters as a job's arguments fill them. None when the function has no
    readable signature (some C functions): its calls are not checked. Annotations that
    cannot be resolved (a name only imported under ``TYPE_CHECKING``) check no kinds."""
    try:
        found = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    # without annotations, which binding ignores, so an error shows "(a, b=1)"
    params = [p.replace(annotation=p.empty) for p in found.parameters.values()]
    if bind and (not params or params[0].kind is not inspect.Parameter.VAR_POSITIONAL):
        if not params or params[0].kind not in _POSITIONAL:
            raise ConfigurationError(
                f"task {name}: bind=True passes a TaskContext as the first argument; "
                "give the function a first parameter for it (e.g. self)"
            )
        params = params[1:]
    return Parameters(name, inspect.Signature(params), _kinds(fn, params))


def _kinds(fn: Callable[..., Any], params: list[inspect.Parameter]) -> dict[str, Kind]:
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # an unresolvable forward reference: check arity only
        return {}
    named = (p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
    found = {p.name: _kind(hints.get(p.name), p.default) for p in named}
    return {n: k for n, k in found.items() if k is not None}
