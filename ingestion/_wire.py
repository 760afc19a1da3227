"""Pieces shared by the wire parsers (ninjs, dpa digitalwires, NewsML-G2).

Two things live here: assembling a :class:`ParsedItem` the same way for every wire
format (dates checked, pubstatus read, a document with nothing usable refused), and
a small vocabulary of JSON shapes used to write structural checks as plain data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingestion._dates import checked, parse_datetime
from ingestion._model import ParsedItem, ParseResult, Rejection
from ingestion.exceptions import ParseError

# "withheld" means the content must not be used until further notice, which for a
# newsroom is the same as withdrawn; the raw status is kept in wire["pubstatus"].
_WITHDRAWN = frozenset({"canceled", "cancelled", "withheld"})


class ItemRejected(Exception):
    """One item of a document cannot become an article; the message says why."""


def code_of(value: str | None) -> str:
    """The code part of a QCode or concept URI, lower-cased.

    ``stat:canceled``, ``http://cv.iptc.org/newscodes/pubstatusg2/canceled`` and
    ``canceled`` all give ``canceled``.
    """
    if not value:
        return ""
    text = value.strip().rstrip("/#")
    if "://" in text:
        text = re.split(r"[/#]", text)[-1]
    return text.rsplit(":", 1)[-1].lower()


def is_withdrawn(pubstatus: str | None) -> bool:
    return code_of(pubstatus) in _WITHDRAWN


def set_dates(item: ParsedItem, now: datetime, published: object, updated: object) -> None:
    """Fill published_at/updated_at from raw publisher values, dropping bad ones with an issue."""
    item.published_at = _when(published, now, item.issues, "published_at")
    item.updated_at = _when(updated, now, item.issues, "updated_at")


def _when(raw: object, now: datetime, issues: list[str], what: str) -> datetime | None:
    if raw is None or raw == "":
        return None
    parsed = parse_datetime(raw) if isinstance(raw, str) else None
    if parsed is None:
        issues.append(f"{what} {raw!r} is not a date-time; ignored")
        return None
    return checked(parsed, now, issues, what)


def without_title(body: str, title: str) -> str:
    """The body without a first line that only repeats the headline (an HTML <h1>)."""
    first, _, rest = body.partition("\n")
    return rest if title and first.strip() == title else body


def note_if_empty(item: ParsedItem) -> None:
    # Kept anyway: a kill notice or an update of metadata only is still an event.
    if not (item.title or item.summary or item.body):
        item.issues.append("item has no headline, summary or text")


def finish(
    label: str,
    items: list[ParsedItem],
    rejections: list[Rejection],
    *,
    source_id: str,
    url: str,
) -> ParseResult:
    """The result of a multi-item document, or a ParseError when no item is usable."""
    if items:
        return ParseResult(items=items, rejections=rejections)
    if not rejections:
        raise ParseError(f"{label}: the document holds no items", source_id=source_id, url=url)
    if len(rejections) == 1:
        reason = rejections[0].reason
        reason = reason if reason.startswith(label) else f"{label}: {reason}"
    else:
        first = rejections[0]
        reason = (
            f"{label}: none of the {len(rejections)} items is usable (item {first.index}: {first.reason})"
        )
    raise ParseError(reason, source_id=source_id, url=url)


# --- JSON shapes -----------------------------------------------------------------------
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


def first_text(values: Iterable[object]) -> str:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value
    return ""
