"""Publisher timestamps: parsed to naive UTC, never invented.

A publisher's text is read strictly: an impossible field (30 February, month 13,
hour 25, a year past 9999, a zone offset past 14 hours, a zone name we do not know)
makes the text no date at all, never a rolled-over or guessed one.
"""

from __future__ import annotations

import calendar
import re
import time
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from dateutil import parser as _dateutil_parser

from ingestion.exceptions import DateRefused

_DEFAULT_A = datetime(2001, 1, 1)
_DEFAULT_B = datetime(2002, 2, 2)
#: A publisher time further ahead of our clock than this is treated as wrong.
FUTURE_TOLERANCE = timedelta(days=1)
#: No zone on Earth is further from UTC (Kiribati is +14:00, Baker Island -12:00).
_MAX_OFFSET = timedelta(hours=14)

#: Zone names with one meaning: RFC 822's (its US zones included) and central
#: European ones. Ambiguous names (IST, BST, AST, CST in China...) and the military
#: letters other than Z (RFC 822 got their signs wrong) are refused, not guessed.
_ZONE_HOURS = {
    "z": 0,
    "ut": 0,
    "utc": 0,
    "gmt": 0,
    "est": -5,
    "edt": -4,
    "cst": -6,
    "cdt": -5,
    "mst": -7,
    "mdt": -6,
    "pst": -8,
    "pdt": -7,
    "wet": 0,
    "west": 1,
    "cet": 1,
    "cest": 2,
    "met": 1,
    "mest": 2,
    "eet": 2,
    "eest": 3,
}
_MONTH_NAMES = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)

# "Mon, 09 Mar 2026 10:00:00 GMT": weekday optional (and not checked), seconds and zone optional.
_RFC822 = re.compile(
    r"(?:[a-z]+\.?\s*,?\s*)?(?P<day>\d{1,2})\s+(?P<month>[a-z]{3,9})\.?\s+(?P<year>\d{2}|\d{4,})"
    r"(?:\s+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?(?:\s*(?P<zone>\S+))?)?",
    re.I,
)
# W3C-DTF and the ISO 8601 forms feeds use: extended or basic, "T" or a space.
_ISO8601 = re.compile(
    r"(?P<year>\d{4}|\d{5,}(?=-))(?:(?P<dash>-?)(?P<month>\d{2})(?:(?P=dash)(?P<day>\d{2}))?)?"
    r"(?:[T\s](?P<hour>\d{2})(?::?(?P<minute>\d{2})(?::?(?P<second>\d{2})(?:[.,](?P<fraction>\d+))?)?)?"
    r"\s*(?P<zone>\S+)?)?",
    re.I,
)
_OFFSET = re.compile(r"(?:gmt|utc|ut)?(?P<sign>[+-])(?P<hours>\d{1,2})(?::?(?P<minutes>\d{2}))?", re.I)

_SIGNED_ZONE_NAME = re.compile(r"\b(?:gmt|utc?)\s*[+-]", re.I)


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


def read_datetime(text: str) -> datetime | None:
    """RFC 822 or ISO 8601 / W3C-DTF text to naive UTC, strictly.

    None when the text has neither shape; :class:`DateRefused` when it has one but
    a field is out of range or the zone is unknown. A time without a zone is UTC
    (the reading feeds and wires have always had).
    """
    text = " ".join(text.split())
    match = _ISO8601.fullmatch(text)
    if match:
        if not match["day"]:
            raise DateRefused("names no day")
        fraction = (match["fraction"] or "")[:6].ljust(6, "0")
        fields = (
            match["year"],
            match["month"],
            match["day"],
            match["hour"],
            match["minute"],
            match["second"],
        )
    else:
        match = _RFC822.fullmatch(text)
        if not match:
            return None
        month = _month_number(match["month"])
        if month is None:
            return None
        year = match["year"]
        if len(year) == 2:  # feedparser's rule, so stored times do not move: 90-99 -> 19xx
            year = str(int(year) + (2000 if int(year) < 90 else 1900))
        fraction = "0"
        fields = (year, str(month), match["day"], match["hour"], match["minute"], match["second"])
    if len(fields[0]) > 4:
        raise DateRefused(f"year {fields[0][:12]} is out of range")
    year, month, day, hour, minute, second = (int(value or 0) for value in fields)
    try:
        moment = datetime(year, month, day, hour, minute, second, int(fraction))
    except ValueError as exc:
        raise DateRefused(str(exc)) from None
    offset = _zone_offset(match["zone"])
    try:
        return moment - offset
    except OverflowError:
        raise DateRefused("has no UTC reading") from None


def _month_number(name: str) -> int | None:
    name = name.lower()
    for number, full in enumerate(_MONTH_NAMES, start=1):
        if full.startswith(name):
            return number
    return None


def _zone_offset(zone: str | None) -> timedelta:
    if zone is None:
        return timedelta(0)
    offset = _OFFSET.fullmatch(zone)
    if offset:
        hours, minutes = int(offset["hours"]), int(offset["minutes"] or 0)
        if minutes >= 60:
            raise DateRefused(f"zone offset {zone} is not a time offset")
        value = timedelta(hours=hours, minutes=minutes)
        if value > _MAX_OFFSET:
            raise DateRefused(f"zone offset {zone} is beyond ±14:00")
        return -value if offset["sign"] == "-" else value
    hours = _ZONE_HOURS.get(zone.lower())
    if hours is None:
        raise DateRefused(f"time zone {zone!r} is unknown or ambiguous")
    return timedelta(hours=hours)


def names_day(text: str, value: datetime) -> bool:
    """Whether ``text`` names the day of ``value`` (a UTC reading of it by another
    parser): day, month and year all appear in it, allowing a day either side for
    the zone. A rolled-over reading (30 February read as 1 March) does not."""
    numbers = {int(run) for run in re.findall(r"\d+", text) if len(run) <= 4}
    words = {word[:3].lower() for word in re.findall(r"[^\W\d_]{3,}", text)}
    for shift in (-1, 0, 1):
        day = value + timedelta(days=shift)
        if (
            day.day in numbers
            and (day.year in numbers or day.year % 100 in numbers)
            and (day.month in numbers or _MONTH_NAMES[day.month - 1][:3] in words)
        ):
            return True
    return False


def _dateutil_zone(name: str | None, offset: int | None) -> tzinfo | None:
    """dateutil's zone hook: known names and offsets within ±14:00, anything else refused."""
    if name is not None and name.lower() not in _ZONE_HOURS:
        raise DateRefused(f"time zone {name!r} is unknown or ambiguous")
    if offset is None:
        return None if name is None else timezone(timedelta(hours=_ZONE_HOURS[name.lower()]))
    if abs(offset) > _MAX_OFFSET.total_seconds():
        raise DateRefused("zone offset is beyond ±14:00")
    return timezone(timedelta(seconds=offset))


_YEAR_FIRST = re.compile(r"\d{4}\D")
_PLAIN_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:[0-5]\d)?")


def parse_datetime(value: str | None) -> datetime | None:
    """A publisher's date-time text to naive UTC; None when missing, unreadable or impossible.

    RFC 822 and ISO 8601 are read strictly (:func:`read_datetime`); other shapes
    (archives hold all sorts) go through dateutil, which must find every field
    itself and may not guess a zone.
    """
    if not value or not isinstance(value, str):
        return None
    if _PLAIN_ISO.fullmatch(value):
        # The shape archives and wires nearly always use: the standard library reads
        # it as strictly as read_datetime, several times faster.
        try:
            moment = datetime.fromisoformat(value)
            offset = moment.utcoffset()
            if offset is None:
                return moment
            return (moment - offset).replace(tzinfo=None) if abs(offset) <= _MAX_OFFSET else None
        except (ValueError, OverflowError):  # a field out of range, or no UTC reading
            return None
    try:
        strict = read_datetime(value)
        return strict if strict is not None else loose_reading(value)
    except DateRefused:
        return None


def loose_reading(value: str) -> datetime | None:
    """dateutil's reading of a date-time text the strict reader does not know, as naive
    UTC, held to our rules: every field found in the text (none filled in), one order of
    day and month, a known zone. None when dateutil cannot read the text; DateRefused
    when it reads it only in a way we do not accept."""
    text = value.strip()
    if _SIGNED_ZONE_NAME.search(text):  # dateutil reads "UTC+3" the POSIX way, as UTC-3
        raise DateRefused("a zone name with an offset reads two ways")
    try:
        parsed = _dateutil_parser.parse(text, default=_DEFAULT_A, tzinfos=_dateutil_zone)
    except DateRefused:
        raise
    except (ValueError, OverflowError, TypeError):
        return None
    # Parsed again with other defaults: if they disagree, the text lacked a year, month
    # or day and dateutil filled it in. We do not invent dates. And with the day first:
    # "09.03.2026" is March to a German wire and September to dateutil. (A text that
    # starts with its year reads year, month, day everywhere.)
    if _reading(text, default=_DEFAULT_B) != parsed:
        raise DateRefused("it lacks a year, month or day")
    if not _YEAR_FIRST.match(text) and _reading(text, default=_DEFAULT_A, dayfirst=True) != parsed:
        raise DateRefused("its day and month read two ways")
    offset = parsed.utcoffset()
    if offset is not None:
        try:
            parsed = (parsed - offset).replace(tzinfo=None)
        except OverflowError as exc:
            raise DateRefused("it has no UTC reading") from exc
    return parsed


def _reading(text: str, **options: Any) -> datetime | None:
    try:
        return _dateutil_parser.parse(text, tzinfos=_dateutil_zone, **options)
    except (ValueError, OverflowError, TypeError):
        return None


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
