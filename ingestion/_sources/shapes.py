"""A small vocabulary of JSON shapes, used to write structural checks as plain data."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Each shape answers "what is wrong with this value?" with a readable sentence, or None.
# Only the first problem is reported: one clear reason is what a rejection needs.

_TYPE_NAMES = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "a boolean",
}


def _at(path: str) -> str:
    return f"property '{path}'"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class Shape:
    def problem(self, value: Any, path: str) -> str | None:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Scalar(Shape):
    kind: str
    enum: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    pattern: re.Pattern[str] | None = None
    pattern_label: str = ""
    nullable: bool = False

    def problem(self, value: Any, path: str) -> str | None:
        if value is None and self.nullable:
            return None
        if not _is_kind(value, self.kind):
            return f"{_at(path)} must be {_TYPE_NAMES[self.kind]}"
        if self.enum and value not in self.enum:
            allowed = ", ".join(repr(v) for v in self.enum)
            return f"{_at(path)} must be one of {allowed} (got {value!r})"
        if self.minimum is not None and value < self.minimum:
            return f"{_at(path)} must be at least {self.minimum:g} (got {value!r})"
        if self.maximum is not None and value > self.maximum:
            return f"{_at(path)} must be at most {self.maximum:g} (got {value!r})"
        if self.pattern is not None and not self.pattern.match(value):
            return f"{_at(path)} is not {self.pattern_label} (got {value!r})"
        return None


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "number":
        return isinstance(value, int | float)
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


@dataclass(frozen=True, slots=True)
class ArrayOf(Shape):
    item: Shape
    nullable: bool = False

    def problem(self, value: Any, path: str) -> str | None:
        if value is None and self.nullable:
            return None
        if not isinstance(value, list):
            return f"{_at(path)} must be an array"
        for index, element in enumerate(value):
            found = self.item.problem(element, f"{path}[{index}]")
            if found:
                return found
        return None


#: A rule over a whole object, e.g. "exactly one of a, b".
Rule = Callable[[Mapping[str, Any], str], "str | None"]


@dataclass(frozen=True, slots=True)
class Record(Shape):
    """A JSON object: known fields, fields named by pattern, and whether others are allowed."""

    fields: Mapping[str, Shape]
    patterns: tuple[tuple[re.Pattern[str], Shape], ...] = ()
    closed: bool = True
    required: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    nullable: bool = False

    def shape_for(self, key: str) -> Shape | None:
        shape = self.fields.get(key)
        if shape is not None:
            return shape
        for pattern, pattern_shape in self.patterns:
            if pattern.match(key):
                return pattern_shape
        return None

    def problem(self, value: Any, path: str) -> str | None:
        if value is None and self.nullable:
            return None
        if not isinstance(value, dict):
            return f"{_at(path)} must be an object"
        for key in self.required:
            if key not in value:
                return f"'{_join(path, key)}' is required"
        for key, element in value.items():
            shape = self.shape_for(key)
            if shape is None:
                if self.closed:
                    return f"unknown property '{_join(path, key)}'"
                continue
            found = shape.problem(element, _join(path, key))
            if found:
                return found
        for rule in self.rules:
            found = rule(value, path)
            if found:
                return found
        return None


@dataclass(frozen=True, slots=True)
class AnyOf(Shape):
    options: tuple[Shape, ...]

    def problem(self, value: Any, path: str) -> str | None:
        first = None
        for option in self.options:
            found = option.problem(value, path)
            if found is None:
                return None
            first = first or found
        return first


class Later(Shape):
    """A shape defined after its first use (recursive structures such as associations)."""

    __slots__ = ("target",)

    def __init__(self) -> None:
        self.target: Shape | None = None

    def problem(self, value: Any, path: str) -> str | None:
        assert self.target is not None, "Later shape used before it was bound"
        return self.target.problem(value, path)


def exactly_one(*keys: str) -> Rule:
    def rule(value: Mapping[str, Any], path: str) -> str | None:
        present = [key for key in keys if key in value]
        if len(present) == 1:
            return None
        names = ", ".join(f"'{key}'" for key in keys)
        where = f"'{path}'" if path else "the object"
        return f"{where} must have exactly one of {names}"

    return rule


def pattern_keys(*prefixes: str, shape: Shape) -> tuple[tuple[re.Pattern[str], Shape], ...]:
    """Extension-style property names such as ``body_html``: the prefix, then [A-Za-z0-9_].

    Like the JSON Schema patterns they mirror, only the start of the name is constrained.
    """
    return tuple((re.compile(rf"{re.escape(p)}[A-Za-z0-9_]"), shape) for p in prefixes)
