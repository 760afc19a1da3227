"""Pieces shared by the wire parsers (ninjs, dpa digitalwires, NewsML-G2).

Assembling a :class:`ParsedItem` the same way for every wire format: dates checked,
pubstatus read, a document with nothing usable refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from ingestion._model import ParsedItem, ParseResult, Rejection
from ingestion._sources.dates import checked, parse_datetime
from ingestion.exceptions import ParseError

# "withheld" means the content must not be used until further notice, which for a
# newsroom is the same as withdrawn; the raw status is kept in wire["pubstatus"].
_WITHDRAWN = frozenset({"canceled", "cancelled", "withheld"})


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


def urgency(value: object) -> int | None:
    """A wire's urgency as the standards define it, a whole number from 0 to 9; None for
    anything else (a 20-digit number would not even fit the log's JSON)."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]", value.strip()):
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9 else None


def text_or_none(value: object) -> str | None:
    """A value the standards give as text (an embargo's time), else None: not kept as
    whatever structure a document put there."""
    return value[:200] if isinstance(value, str) else None


def first_text(values: Iterable[object]) -> str:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value
    return ""
