"""Validation errors in plain words: which field (its dotted path in the body, query or
path), what was wrong, and what is accepted, read from the OpenAPI document the service
publishes (the words match what its docs page shows), never pydantic's internal names.

pydantic reports an invalid value of a union once per member, each under the member's
internal tag (``priority.constrained-int``, ``chain.0.TaskCall.task``). Here the tags are
dropped from the path; a union of objects keeps the member the value came closest to
(its errors go deepest, then fewest), and a union of plain values is described whole
("an integer from 0 to 9, or one of ...").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Schema = Mapping[str, Any]
#: Where a request carries its values, as FastAPI names them (the first part of ``loc``).
PLACES = ("body", "query", "path", "header", "cookie")
#: The longest rendering of a value the client sent.
SHOWN = 60


@dataclass(frozen=True)
class Operation:
    """What the OpenAPI document says one operation takes: its body's and its
    parameters' schemas, and the document (their ``$ref``s point into it)."""

    document: Schema
    body: Schema | None = None
    parameters: Mapping[tuple[str, str], Schema] = field(default_factory=dict)

    @classmethod
    def of(cls, document: Schema, template: str, method: str) -> Operation | None:
        """The operation at the document's ``template`` path for ``method``, if any."""
        operation = document.get("paths", {}).get(template, {}).get(method.lower())
        if not isinstance(operation, Mapping):
            return None
        content = operation.get("requestBody", {}).get("content", {})
        body = next((c.get("schema") for c in content.values()), None)
        parameters = {(p["in"], p["name"]): p.get("schema", {})
                      for p in operation.get("parameters", [])}  # fmt: skip
        return cls(document, body, parameters)

    def resolve(self, schema: Schema) -> Schema:
        for _ in range(20):  # a $ref to a $ref: bounded
            ref = schema.get("$ref")
            if not isinstance(ref, str) or not ref.startswith("#/"):
                return schema
            node: Any = self.document
            for part in ref[2:].split("/"):
                node = node.get(part, {}) if isinstance(node, Mapping) else {}
            schema = node
        return schema

    def root(self, place: str, name: Any) -> tuple[Schema | None, list[Any]]:
        """The schema where ``loc`` starts, and the parts of ``loc`` left to walk."""
        if place == "body":
            return self.body, []
        return self.parameters.get((place, str(name))), [name]


@dataclass
class Walked:
    """One pydantic error, placed: the field's path without union tags, its schema
    (None where the document has no such field), the unions passed on the way (for
    choosing among their members), and the object the field was found (or not) in."""

    error: Mapping[str, Any]
    place: str
    path: list[Any]
    schema: Schema | None
    unions: list[tuple[str, str]]
    parent: Schema | None = None
    #: The error is about the last part of ``path`` as a key of its object (``[key]``).
    key: bool = False


def _ref_name(schema: Schema) -> str:
    ref = schema.get("$ref", "")
    name = ref.rsplit("/", 1)[-1] if isinstance(ref, str) else ""
    return name.removesuffix("-Input").removesuffix("-Output")


def _walk(op: Operation | None, error: Mapping[str, Any]) -> Walked:
    loc = list(error.get("loc", ()))
    place = str(loc[0]) if loc and loc[0] in PLACES else ""
    rest = loc[1:] if place else loc
    walked = Walked(error, place, [], None, [])
    if op is not None and place:
        walked.schema, walked.path = op.root(place, rest[0] if rest else None)
        rest = rest[len(walked.path) :]
    union_at: tuple[int, Schema] | None = None  # the last union entered, and at what depth
    for part in rest:
        if part == "[key]":  # pydantic's mark for a key of a dict, not its value
            walked.key = True
            walked.schema = walked.parent.get("propertyNames") if walked.parent else None
            continue
        node = _value(op, walked.schema)
        members = _members(node)
        if node is not None and len(members) > 1 and isinstance(part, str):  # a member's tag
            walked.unions.append((".".join(map(str, walked.path)), part))
            member = next((m for m in members if _ref_name(m) == part), None)
            if member is not None:  # an object: go on inside it
                union_at, walked.schema = (len(walked.path), node), member
            continue  # a plain value: the union describes it
        walked.path.append(part)
        walked.parent, walked.schema = node, _child(node, part)
    if union_at is not None and union_at[0] == len(walked.path):
        walked.schema = union_at[1]  # the value is none of the union's objects: say all
    return walked


def _members(node: Schema | None) -> list[Schema]:
    """A union's members but null (none: not a union)."""
    options = (node.get("anyOf") or node.get("oneOf") or []) if node is not None else []
    return [o for o in options if isinstance(o, Mapping) and o.get("type") != "null"]


def _value(op: Operation | None, schema: Schema | None) -> Schema | None:
    """``schema`` resolved; an optional value's (``X | None``) the value's."""
    if op is None or schema is None:
        return None
    node = op.resolve(schema)
    members = _members(node)
    return op.resolve(members[0]) if len(members) == 1 else node


def _child(node: Schema | None, part: Any) -> Schema | None:
    if node is None:
        return None
    if isinstance(part, int) and isinstance(node.get("items"), Mapping):
        return node["items"]  # type: ignore[no-any-return]
    properties = node.get("properties", {})
    if isinstance(part, str) and part in properties:
        return properties[part]  # type: ignore[no-any-return]
    extra = node.get("additionalProperties")
    if isinstance(part, str) and isinstance(extra, Mapping):
        return extra
    return None


def _chosen(walked: list[Walked]) -> list[Walked]:
    """Errors of one member per union: the one the value came closest to (its errors go
    deepest, then it has the fewest); a union's members are compared level by level."""
    level = 0
    while True:
        by_union: dict[str, dict[str, list[Walked]]] = {}
        for w in walked:
            if len(w.unions) > level:
                where, tag = w.unions[level]
                by_union.setdefault(where, {}).setdefault(tag, []).append(w)
        if not by_union:
            return walked
        dropped: set[int] = set()
        for by_tag in by_union.values():
            best = max(by_tag.values(), key=lambda ws: (max(len(w.path) for w in ws), -len(ws)))
            dropped |= {id(w) for ws in by_tag.values() if ws is not best for w in ws}
        walked = [w for w in walked if id(w) not in dropped]
        level += 1


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _bounds(node: Schema) -> str:
    low, high = node.get("minimum"), node.get("maximum")
    if low is not None and high is not None:
        return f" from {_number(low)} to {_number(high)}"
    parts = []
    if low is not None:
        parts.append(f"at least {_number(low)}")
    if node.get("exclusiveMinimum") is not None:
        parts.append(f"over {_number(node['exclusiveMinimum'])}")
    if high is not None:
        parts.append(f"at most {_number(high)}")
    if node.get("exclusiveMaximum") is not None:
        parts.append(f"under {_number(node['exclusiveMaximum'])}")
    return f" of {' and '.join(parts)}" if parts else ""


def _count(low: Any, high: Any, noun: str) -> str:
    if low is not None and high is not None:
        return f" of {low} to {high} {noun}"
    if high is not None:
        return f" of up to {high} {noun}"
    if low:
        return f" of at least {low} {noun}"
    return ""


def _text(node: Schema) -> str:
    if node.get("format") == "date-time":
        return "an ISO 8601 time with a zone, e.g. 2026-12-01T09:00:00Z"
    if "pattern" in node:
        return f"text matching {node['pattern']}"
    return "text" + _count(node.get("minLength"), node.get("maxLength"), "characters")


def describe(op: Operation | None, schema: Schema | None, depth: int = 0) -> str | None:
    """What ``schema`` accepts, in words (None: anything, or not known)."""
    node = _value(op, schema)
    if node is None or depth > 3:
        return None
    members = _members(node)
    if members:
        said = list(dict.fromkeys(describe(op, m, depth + 1) for m in members))
        return None if None in said else ", or ".join(d for d in said if d)
    if isinstance(node.get("x-accepts"), str):  # a pattern's meaning, written beside it
        return str(node["x-accepts"])
    if "const" in node:
        return json.dumps(node["const"])
    if isinstance(node.get("enum"), list):
        return "one of " + ", ".join(json.dumps(v) for v in node["enum"])
    kind = node.get("type") or _kind(node)
    return _KINDS[kind](op, node, depth) if kind in _KINDS else None


def _kind(node: Schema) -> str | None:
    """The type a schema without ``type`` implies (a dict's ``propertyNames`` has none)."""
    if "properties" in node:
        return "object"
    return "string" if {"minLength", "maxLength", "pattern"} & node.keys() else None


def _array(op: Operation | None, node: Schema, depth: int) -> str:
    items = describe(op, node.get("items"), depth + 1) if depth == 0 else None
    counted = _count(node.get("minItems"), node.get("maxItems"), "items")
    return "a list" + counted + (f", each {items}" if items else "")


def _object(op: Operation | None, node: Schema, depth: int) -> str:
    names = list(node.get("properties", {}))
    if names:
        return "an object with the fields " + ", ".join(names)
    return "an object" + _count(None, node.get("maxProperties"), "entries")


_KINDS: dict[str, Callable[[Operation | None, Schema, int], str]] = {
    "integer": lambda op, node, depth: "an integer" + _bounds(node),
    "number": lambda op, node, depth: "a number" + _bounds(node),
    "boolean": lambda op, node, depth: "true or false",
    "string": lambda op, node, depth: _text(node),
    "array": _array,
    "object": _object,
}


def _shown(value: Any) -> str:
    """What the client sent, briefly: a scalar as JSON, a list or object by its kind."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    try:
        text = json.dumps(value)  # ASCII: a lone surrogate is escaped, not a failure
    except (TypeError, ValueError):
        return "a value of another kind"
    return _cut(text)


def _dotted(path: Sequence[Any]) -> str:
    """A field's path, each part cut to ``SHOWN`` characters (a key can be long)."""
    return ".".join(_cut(str(part)) for part in path)


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


def _named(walked: Walked) -> list[Any]:
    """The path as a person reads it: a repeated query parameter or header is named alone
    (``state``, not ``state.0``: its values carry no index in the request)."""
    if walked.place in ("query", "header", "cookie"):
        return [part for part in walked.path if not isinstance(part, int)]
    return walked.path


def _name(walked: Walked) -> str:
    path = _named(walked)
    if walked.key:
        return f"the key {_shown(str(path[-1]))} in {_dotted(path[:-1]) or 'the body'}"
    return _dotted(path) if path else "the body"


def _safe(text: str) -> str:
    """``text`` as UTF-8 can carry it (a lone surrogate from a JSON escape, spelled out)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _problem(op: Operation | None, group: list[Walked]) -> dict[str, Any]:
    first = group[0]
    error, name = first.error, _name(first)
    path = _named(first)
    location = _dotted([first.place, *path] if first.place else path)
    problem: dict[str, Any] = {"location": location or "request",
                               "field": _dotted(path) or None}  # fmt: skip
    kinds = {w.error.get("type") for w in group}
    accepted = describe(op, first.schema)
    if "json_invalid" in kinds:
        loc = tuple(error.get("loc", ()))
        where = f" at character {loc[1]}" if len(loc) > 1 else ""
        reason = (error.get("ctx") or {}).get("error", "")
        problem.update(location="body", field=None,
                       message=f"the body is not valid JSON{where}" + (f" ({reason})" if reason else ""))  # fmt: skip
        return problem
    if "string_unicode" in kinds:  # the parser met an escaped lone surrogate (\\ud800)
        message, accepted = (
            f"{name} holds text that is not valid Unicode (a lone \\ud800-\\udfff escape)",
            None,
        )
    elif "missing" in kinds:
        message = f"{name} is required" + (f": {accepted}" if accepted else "")
    elif "extra_forbidden" in kinds:
        fields = list((first.parent or {}).get("properties", {}))
        message = f"{name} is not a field here" + (
            f"; the fields are {', '.join(fields)}" if fields else ""
        )
        accepted = None
    elif accepted:
        message = f"{name} must be {accepted} (got {_shown(error.get('input'))})"
    else:
        message = _fallback(name, error)
    problem["message"] = message
    if accepted:
        problem["accepted"] = accepted
    return {k: _safe(v) if isinstance(v, str) else v for k, v in problem.items()}


def _fallback(name: str, error: Mapping[str, Any]) -> str:
    """pydantic's message with the field's name for its "Input" (no schema to read)."""
    text = str(error.get("msg", "is not valid"))
    if text.startswith("Value error, "):
        return f"{name}: {text.removeprefix('Value error, ')}"
    if text.startswith("Input "):
        return f"{name} {text.removeprefix('Input ')}"
    return f"{name}: {text}"


def problems(errors: Sequence[Mapping[str, Any]], op: Operation | None) -> list[dict[str, Any]]:
    """One problem per field, in the order pydantic found them."""
    groups: dict[tuple[str, str], list[Walked]] = {}
    for walked in _chosen([_walk(op, e) for e in errors]):
        key = (walked.place, ".".join(map(str, walked.path)))
        groups.setdefault(key, []).append(walked)
    return [_problem(op, group) for group in groups.values()]
