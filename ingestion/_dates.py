"""Publisher timestamps: parsed to naive UTC, never invented."""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime, timedelta

from dateutil import parser as _dateutil_parser

_DEFAULT_A = datetime(2001, 1, 1)
_DEFAULT_B = datetime(2002, 2, 2)
#: A publisher time further ahead of our clock than this is treated as wrong.
FUTURE_TOLERANCE = timedelta(days=1)


def utcnow() -> datetime:
    """Now, as a naive UTC datetime (the form every timestamp is stored in)."""
    return datetime.now(UTC).replace(tzinfo=None)


def from_struct_time(value: time.struct_time | None) -> datetime | None:
    """feedparser's *_parsed fields are UTC struct_times."""
    if value is None:
        return None
    try:
        return datetime(1970, 1, 1) + timedelta(seconds=calendar.timegm(value))
    except (OverflowError, ValueError, TypeError):
        return None


def parse_datetime(value: str | None) -> datetime | None:
    """ISO 8601 / RFC 822-ish text to naive UTC; None when missing or unparseable.

    A time without a zone is taken as UTC (wire formats require a zone; when it is
    missing, UTC is the least surprising reading).
    """
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            # Parse twice with different defaults: if they disagree, the text lacked a
            # year, month or day and dateutil filled it in. We do not invent dates.
            parsed = _dateutil_parser.parse(text, default=_DEFAULT_A)
            if parsed != _dateutil_parser.parse(text, default=_DEFAULT_B):
                return None
        except (ValueError, OverflowError, TypeError):
            return None
    try:
        offset = parsed.utcoffset()  # raises for an offset of a day or more (dateutil allows them)
        if offset is not None:
            parsed = (parsed - offset).replace(tzinfo=None)
    except (OverflowError, ValueError):  # also 0001-01-01T00:00+01:00: no UTC reading
        return None
    return parsed


def checked(value: datetime | None, now: datetime, issues: list[str], what: str) -> datetime | None:
    """Drop a publisher time that lies in the future (recording why in ``issues``)."""
    if value is not None and value > now + FUTURE_TOLERANCE:
        issues.append(f"{what} {value.isoformat()} is in the future; ignored")
        return None
    if value is not None and value.year < 1990:
        issues.append(f"{what} {value.isoformat()} is implausibly old; ignored")
        return None
    return value


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
