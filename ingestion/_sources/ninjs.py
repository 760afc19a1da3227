"""ninjs (IPTC News in JSON 1.x, 2.x, 3.x) and dpa digitalwires JSON to ParsedItems.

A body may hold one ninjs object, a JSON list of them, or a wrapper object with the
list under ``items``/``entries`` (as the dpa API delivers). Every object is checked
against the structure of the ninjs generation its property names point to
(``ninjs_schema``) before it is mapped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from ingestion._model import ParsedItem, ParseResult, Rejection
from ingestion._sources.digitalwires import digitalwires_item, is_digitalwires
from ingestion._sources.ninjs_schema import LATEST, spec
from ingestion._sources.text import html_to_text, one_line, web_url
from ingestion._sources.wire import (
    code_of,
    finish,
    first_text,
    is_withdrawn,
    note_if_empty,
    set_dates,
    text_or_none,
    urgency,
    without_title,
)
from ingestion.exceptions import ItemRejected, ParseError

__all__ = ["parse_ninjs", "validate_ninjs"]

LABEL = "ninjs"
_WRAPPER_KEYS = ("items", "entries")


# --- structure --------------------------------------------------------------------------


def validate_ninjs(doc: object, version: str | None = None) -> str | None:
    """Why ``doc`` is not a valid ninjs object, or None when it is.

    ``version`` ("1.0" ... "3.1") checks against that release. Without it the
    generation is inferred from the property names and its latest release is used
    (plus the draft-only ``advices``), which is how documents are checked on parsing.
    """
    return _validate(doc, version)[1]


def _validate(doc: object, version: str | None = None) -> tuple[int, str | None]:
    if not isinstance(doc, dict):
        return 0, f"{LABEL}: an item must be a JSON object, not {_json_type(doc)}"
    if "uri" not in doc:
        return 0, f"{LABEL}: 'uri' is required"
    if version is not None:
        generation, minor = _release(version)
        problem = spec(generation, minor).problem(doc, "")
        return generation, problem and f"{LABEL} {version}: {problem}"
    extension = _declares_extension(doc)
    failures: list[tuple[int, str]] = []
    for generation in _likely_generations(doc):
        structure = spec(generation, None)
        view = {k: v for k, v in doc.items() if structure.shape_for(k)} if extension else doc
        problem = structure.problem(view, "")
        if problem is None:
            return generation, None
        failures.append((generation, problem))
    # A wrong value under names a generation knows says more than a name it does not know.
    generation, problem = min(failures, key=lambda f: f[1].startswith("unknown property"))
    return generation, f"{LABEL} {generation}.x: {problem}"


def _release(version: str) -> tuple[int, int]:
    match = re.fullmatch(r"([123])\.(\d+)", version)
    if not match or int(match[2]) > LATEST[int(match[1])]:
        raise ValueError(f"unknown ninjs release {version!r} (expected 1.0-1.6, 2.0-2.2, 3.0-3.1)")
    return int(match[1]), int(match[2])


def _likely_generations(doc: Mapping[str, Any]) -> list[int]:
    """The generations that know the most of the document's property names, newest first."""
    unknown = {g: sum(1 for k in doc if spec(g, None).shape_for(k) is None) for g in (3, 2, 1)}
    fewest = min(unknown.values())
    return [g for g in (3, 2, 1) if unknown[g] == fewest]


def _declares_extension(doc: Mapping[str, Any]) -> bool:
    """A document declaring a non-IPTC schema (a provider profile such as TT's ttninjs).

    ninjs allows no other properties, but its extension convention is exactly this:
    a provider schema that adds properties. Those are tolerated (and noted), the
    standard ones still checked.
    """
    standard = doc.get("standard", doc.get("$standard"))
    if not isinstance(standard, dict) or not isinstance(standard.get("schema"), str):
        return False
    host = urlsplit(standard["schema"]).hostname or ""
    return bool(host) and not (host == "iptc.org" or host.endswith(".iptc.org"))


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a boolean" if isinstance(value, bool) else "a number"


# --- parsing -----------------------------------------------------------------------------


def parse_ninjs(
    body: bytes,
    *,
    source_id: str,
    url: str,
    now: datetime,
    default_language: str | None = None,
) -> ParseResult:
    """One fetched ninjs (or dpa digitalwires) body to items; see the module docstring."""
    data = _load(body, source_id, url)
    entries, single = _entries(data, source_id, url)
    items: list[ParsedItem] = []
    rejections: list[Rejection] = []
    for index, entry in enumerate(entries):
        try:
            items.append(_item(entry, now, default_language))
        except ItemRejected as exc:
            if single:
                raise ParseError(str(exc), source_id=source_id, url=url) from exc
            rejections.append(Rejection(index, str(exc), _identity(entry)))
    return finish(LABEL, items, rejections, source_id=source_id, url=url)


def _load(body: bytes, source_id: str, url: str) -> Any:
    if not body or not body.strip():
        raise ParseError(f"{LABEL}: empty document", source_id=source_id, url=url)
    try:
        # Decoded as JSON's rules say (a byte order mark, UTF-16 or 32); orjson refuses what
        # JSON has no place for, which json would let through (NaN, lone surrogates).
        return orjson.loads(body.decode(json.detect_encoding(body)))
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"{LABEL}: not JSON ({exc})", source_id=source_id, url=url) from exc


def _entries(data: Any, source_id: str, url: str) -> tuple[list[Any], bool]:
    """The objects to read, and whether the document was a single object."""
    if isinstance(data, list):
        if not data:
            raise ParseError(f"{LABEL}: the document is an empty list", source_id=source_id, url=url)
        return data, False
    if not isinstance(data, dict):
        raise ParseError(
            f"{LABEL}: the document is {_json_type(data)}, not an object or a list of objects",
            source_id=source_id,
            url=url,
        )
    if "uri" not in data and not is_digitalwires(data):
        for key in _WRAPPER_KEYS:
            wrapped = data.get(key)
            if isinstance(wrapped, list):
                if not wrapped:
                    raise ParseError(f"{LABEL}: '{key}' is an empty list", source_id=source_id, url=url)
                return wrapped, False
    return [data], True


def _item(entry: Any, now: datetime, default_language: str | None) -> ParsedItem:
    try:
        if isinstance(entry, dict) and is_digitalwires(entry):
            return digitalwires_item(entry, now, default_language)
        generation, problem = _validate(entry)
    except RecursionError:
        raise ItemRejected(f"{LABEL}: the item is nested too deeply") from None
    if problem:
        raise ItemRejected(problem)
    return _ninjs_item(entry, generation, now, default_language)


def _identity(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return None
    value = first_text(entry.get(key) for key in ("uri", "guid", "id", "urn"))
    return value.strip() or None


def _get(doc: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = doc.get(name)
        if value is not None:
            return value
    return None


def _ninjs_item(
    doc: dict[str, Any], generation: int, now: datetime, default_language: str | None
) -> ParsedItem:
    identity = _identity(doc)
    if not identity:
        raise ItemRejected(f"{LABEL}: 'uri' is empty")
    pubstatus = _get(doc, "pubstatus", "pubStatus")
    link = _link(doc)
    title = _headline(doc, generation)
    item = ParsedItem(
        identity=identity,
        guid=identity,
        link=link,
        url=web_url(link),
        title=title,
        summary=_description(doc, generation),
        body=without_title(_body(doc, generation), title),
        byline=one_line(_get(doc, "byline", "by")),
        language=doc.get("language") or default_language,
        withdrawn=is_withdrawn(pubstatus),
    )
    set_dates(
        item, now, _get(doc, "firstcreated", "firstCreated"), _get(doc, "versioncreated", "versionCreated")
    )
    item.wire = {
        "format": "ninjs",
        "ninjs_version": str(generation),
        "version": doc.get("version"),
        "pubstatus": pubstatus,
        "signals": _signals(doc.get("signals")),
        "subjects": _subjects(doc.get("subject") if generation == 1 else doc.get("subjects")),
        "located": _located(doc, generation),
        "type": doc.get("type"),
        "urgency": urgency(doc.get("urgency")),
        "embargoed": text_or_none(_get(doc, "embargoed", "embargoedUntil")),
    }
    if doc.get("representationtype") in ("partial", "incomplete"):  # 2.x/3.x, 1.x
        # not every property is here: what it leaves out is not deleted (``events.decide``)
        item.wire["representation"] = "partial"
    extra = sorted(k for k in doc if spec(generation, None).shape_for(k) is None)
    if extra:
        item.issues.append(f"provider extension properties kept out: {', '.join(extra)}")
    note_if_empty(item)
    return item


def _headline(doc: Mapping[str, Any], generation: int) -> str:
    if generation == 1:
        # by name, never by the order of the keys (see ``_variant``)
        variants = sorted(
            (k for k in doc if k.startswith("headline_")), key=lambda k: (k != "headline_main", k)
        )
        text = first_text([doc.get("headline"), *(doc[k] for k in variants)])
    else:
        text = _pick(doc.get("headlines"), _MAIN_ROLES)
    return one_line(text or doc.get("title"))


# Preferred roles, best first; parts with other roles come after these.
_MAIN_ROLES = ("main", "", "headline")
_SUMMARY_ROLES = ("summary", "abstract", "lead", "teaser", "", "text", "description", "caption")
_NOT_SUMMARY = frozenset({"writer", "creditline", "credit", "byline", "copyright"})


def _pick(parts: Any, roles: tuple[str, ...], skip: frozenset[str] = frozenset()) -> str:
    """The value of the part whose role ranks best (2.x/3.x headlines, descriptions)."""
    if not isinstance(parts, list):
        return ""
    best: tuple[int, str] | None = None
    for part in parts:
        value = part.get("value")
        role = code_of(part.get("role"))
        if not isinstance(value, str) or not value.strip() or role in skip:
            continue
        rank = roles.index(role) if role in roles else len(roles)
        if best is None or rank < best[0]:
            best = (rank, value)
    return best[1] if best else ""


def _description(doc: Mapping[str, Any], generation: int) -> str:
    if generation == 1:
        return html_to_text(_variant(doc, "description_"))
    return html_to_text(_pick(doc.get("descriptions"), _SUMMARY_ROLES, _NOT_SUMMARY))


def _variant(doc: Mapping[str, Any], prefix: str) -> str:
    """The best ``body_*``/``description_*`` text: HTML forms first (captions drop out),
    then by name: never by the order of the keys, which a wire may change between
    versions of one item (that would read as a revision)."""
    keys = [k for k in doc if k.startswith(prefix) and isinstance(doc[k], str)]
    keys.sort(key=lambda k: (0 if k.endswith("html") else 1 if k.endswith("text") else 2, k))
    return first_text(doc[k] for k in keys)


def _body(doc: Mapping[str, Any], generation: int) -> str:
    if generation == 1:
        return html_to_text(_variant(doc, "body_"))
    bodies = doc.get("bodies")
    if not isinstance(bodies, list):
        return ""

    def rank(part: Mapping[str, Any]) -> int:
        kind = str(_get(part, "contenttype", "contentType") or "").lower()
        role = code_of(part.get("role"))
        if "html" in kind or "html" in role:
            return 0
        return 1 if kind.startswith("text/plain") or role == "text" else 2

    usable = [p for p in bodies if isinstance(p.get("value"), str) and p["value"].strip()]
    return html_to_text(min(usable, key=rank)["value"]) if usable else ""


def _subjects(values: Any) -> list[dict[str, str]]:
    if not isinstance(values, list):
        return []
    subjects = []
    for value in values:
        if not isinstance(value, dict):
            continue
        subject = {
            "code": _get(value, "code", "literal", "qcode"),
            "uri": value.get("uri"),
            "scheme": value.get("scheme"),
            "name": value.get("name"),
            "rel": value.get("rel"),
        }
        subject = {k: v for k, v in subject.items() if isinstance(v, str) and v}
        if subject:
            subjects.append(subject)
    return subjects


def _located(doc: Mapping[str, Any], generation: int) -> str | None:
    located = doc.get("located")
    if isinstance(located, str) and located.strip():
        return one_line(located)
    places = doc.get("place") if generation == 1 else doc.get("places")
    for place in places if isinstance(places, list) else ():
        if code_of(place.get("rel")) in ("located", "dateline") and place.get("name"):
            return one_line(place["name"])
    return None


def _signals(values: Any) -> list[str]:
    """Signals (update, correction...); ninjs has no such property, provider profiles do."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        return []
    signals = []
    for value in values:
        if isinstance(value, dict):
            value = _get(value, "qcode", "code", "uri", "literal", "name")
        if isinstance(value, str) and value and value not in signals:
            signals.append(value)
    return signals


def _link(doc: Mapping[str, Any]) -> str | None:
    """A web page for the item: a canonical link (provider profiles carry ``links``),
    an HTML rendition, else the uri when it is a web URL."""
    links = doc.get("links")
    for link in links if isinstance(links, list) else ():
        if (
            isinstance(link, dict)
            and code_of(link.get("rel")) == "canonical"
            and _is_web_url(link.get("href"))
        ):
            return link["href"]
    renditions = doc.get("renditions")
    if isinstance(renditions, dict):
        # 1.x names its renditions: taken by name (an AMP page last), never by the order of
        # the keys (see ``_variant``)
        values = [renditions[k] for k in sorted(renditions, key=lambda k: ("amp" in k.lower(), k))]
    else:
        values = renditions or ()
    for rendition in values:
        kind = str(_get(rendition, "contenttype", "contentType", "mimetype") or "")
        href = rendition.get("href")
        if "html" in kind.lower() and _is_web_url(href):
            return href
    uri = doc.get("uri")
    return uri if _is_web_url(uri) else None


def _is_web_url(value: Any) -> bool:
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))
