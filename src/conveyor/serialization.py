"""The job envelope: what a job's arguments and result look like on the wire.

Only values that come back unchanged from JSON are accepted: ``None``, ``bool``, ``int``
(64-bit), finite ``float``, ``str``, ``list`` and ``tuple`` (read back as lists) and
``dict`` with ``str`` keys. Anything else fails at enqueue with the argument's path, so a
bad argument is caught in the caller's code and never in a worker.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from .errors import SerializationError

ENVELOPE_VERSION = 1
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_MAX_DEPTH = 64
_SCALARS = (str, bool, type(None))


def check_jsonable(value: Any, path: str) -> None:
    """Raise ``SerializationError`` naming ``path`` if ``value`` does not survive JSON."""
    _check(value, path, 0)


def _check(value: Any, path: str, depth: int) -> None:
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind is int or kind is float:
        _check_number(value, path)
    elif depth >= _MAX_DEPTH:
        raise SerializationError(f"{path} is nested deeper than {_MAX_DEPTH} levels")
    elif kind is list or kind is tuple:
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]", depth + 1)
    elif kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise SerializationError(
                    f"{path} has the key {key!r} of type {type(key).__name__}; JSON object keys must be str"
                )
            _check(item, f"{path}[{key!r}]", depth + 1)
    else:
        hint = _HINTS.get(
            kind.__name__,
            "convert it to JSON types (str, int, float, bool, None, list, dict) first",
        )
        raise SerializationError(
            f"{path} is a {kind.__module__}.{kind.__qualname__}, which does not survive JSON; {hint}",
            path=path,
            type=kind.__qualname__,
        )


def _check_number(value: float, path: str) -> None:
    if type(value) is int and not _INT_MIN <= value <= _INT_MAX:
        raise SerializationError(
            f"{path} is an integer too large for JSON (64 bits at most); pass it as a str"
        )
    if type(value) is float and not math.isfinite(value):
        raise SerializationError(
            f"{path} is {value!r}, which JSON cannot carry; pass None or a str"
        )


_HINTS = {
    "datetime": "pass value.isoformat() and parse it in the task",
    "date": "pass value.isoformat() and parse it in the task",
    "UUID": "pass str(value)",
    "Decimal": "pass str(value)",
    "bytes": "pass base64 text or a path to the data",
    "set": "pass sorted(value) as a list",
    "frozenset": "pass sorted(value) as a list",
}


def encode_payload(args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]) -> bytes:
    """Validate and encode a call's arguments as the versioned envelope. Empty args and
    kwargs are left out (every version reads a missing one as empty): a stored job's
    payload 13 to 23 bytes shorter, which on Redis takes a small job's hash down a
    size class (docs/redis.md, "Memory")."""
    for i, arg in enumerate(args):
        _check(arg, f"args[{i}]", 0)
    for name, arg in kwargs.items():
        if type(name) is not str:
            raise SerializationError(f"keyword argument name {name!r} must be a str")
        _check(arg, f"kwargs[{name!r}]", 0)
    envelope: dict[str, Any] = {"v": ENVELOPE_VERSION}
    if args:
        envelope["args"] = list(args)
    if kwargs:
        envelope["kwargs"] = kwargs
    return orjson.dumps(envelope)


def decode_payload(raw: bytes | str) -> tuple[list[Any], dict[str, Any]]:
    """Decode an envelope; raises ``ValueError`` with the reason for anything malformed."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"payload is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or "v" not in data:
        raise ValueError("payload is not a Conveyor envelope (no version field)")
    if data["v"] != ENVELOPE_VERSION:
        raise ValueError(
            f"payload envelope version {data['v']!r} is not supported (this worker reads {ENVELOPE_VERSION})"
        )
    args, kwargs = data.get("args", []), data.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise ValueError("payload args must be a list and kwargs an object")
    return args, kwargs


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def loads(raw: bytes | str | None) -> Any:
    return None if raw is None else orjson.loads(raw)
