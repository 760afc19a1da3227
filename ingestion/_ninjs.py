"""ninjs (IPTC News in JSON 1.x, 2.x, 3.x) and dpa digitalwires JSON to ParsedItems.

A body may hold one ninjs object, a JSON list of them, or a wrapper object with the
list under ``items``/``entries`` (as the dpa API delivers). Every object is checked
against the structure of the ninjs generation its property names point to (1.x
lower-case singular names, 2.x lower-case lists, 3.x camelCase); the checks below are
written from the published specifications, latest release of each generation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ingestion._model import ParsedItem, ParseResult, Rejection
from ingestion._text import html_to_text, one_line, web_url
from ingestion._wire import (
    AnyOf,
    ArrayOf,
    ItemRejected,
    Later,
    Record,
    Scalar,
    Shape,
    code_of,
    exactly_one,
    finish,
    first_text,
    is_withdrawn,
    note_if_empty,
    pattern_keys,
    set_dates,
    without_title,
)
from ingestion.exceptions import ParseError

__all__ = ["parse_ninjs", "validate_ninjs"]

_LABEL = "ninjs"
#: Latest minor release of each generation; an undeclared document is checked against it.
_LATEST = {1: 6, 2: 2, 3: 1}
_WRAPPER_KEYS = ("items", "entries")

_S = Scalar("string")
_N = Scalar("number")
_I = Scalar("integer")
_PERCENT = Scalar("integer", minimum=0, maximum=100)
_PUBSTATUS = Scalar("string", enum=("usable", "withheld", "canceled"))
_MEDIA_TYPES = ("text", "audio", "video", "picture", "graphic", "composite")


def _strings(*names: str) -> dict[str, Shape]:
    return dict.fromkeys(names, _S)


def _since(minor: int, needed: int, fields: Mapping[str, Shape]) -> Mapping[str, Shape]:
    return fields if minor >= needed else {}


# --- shapes shared by several generations ----------------------------------------------


class _GeoJSON(Shape):
    """A GeoJSON object (RFC 7946): geometry, Feature or FeatureCollection."""

    _DEPTH: ClassVar[Mapping[str, int]] = {
        "Point": 0,
        "MultiPoint": 1,
        "LineString": 1,
        "MultiLineString": 2,
        "Polygon": 2,
        "MultiPolygon": 3,
    }

    def problem(self, value: Any, path: str) -> str | None:
        if not isinstance(value, dict):
            return f"property '{path}' must be a GeoJSON object"
        kind = value.get("type")
        if kind in self._DEPTH:
            if "coordinates" not in value:
                return f"'{path}.coordinates' is required for a GeoJSON {kind}"
            return self._coordinates(value["coordinates"], self._DEPTH[kind], f"{path}.coordinates")
        if kind == "GeometryCollection":
            parts = value.get("geometries")
            if not isinstance(parts, list):
                return f"property '{path}.geometries' must be an array"
            return _first(self.problem(p, f"{path}.geometries[{i}]") for i, p in enumerate(parts))
        if kind == "Feature":
            if "geometry" not in value:
                return f"'{path}.geometry' is required for a GeoJSON Feature"
            geometry = value["geometry"]
            return None if geometry is None else self.problem(geometry, f"{path}.geometry")
        if kind == "FeatureCollection":
            features = value.get("features")
            if not isinstance(features, list):
                return f"property '{path}.features' must be an array"
            return _first(self.problem(f, f"{path}.features[{i}]") for i, f in enumerate(features))
        return f"property '{path}' is not GeoJSON (its 'type' is {kind!r})"

    def _coordinates(self, value: Any, depth: int, path: str) -> str | None:
        if depth == 0:
            if (
                isinstance(value, list)
                and len(value) >= 2
                and all(_N.problem(v, path) is None for v in value)
            ):
                return None
            return f"property '{path}' must be a GeoJSON position (two or more numbers)"
        if not isinstance(value, list):
            return f"property '{path}' must be an array"
        return _first(self._coordinates(v, depth - 1, f"{path}[{i}]") for i, v in enumerate(value))


def _first(problems: Any) -> str | None:
    return next((p for p in problems if p), None)


_GEOJSON = _GeoJSON()
_STANDARD = Record(_strings("name", "version", "schema"))
_RIGHTS = Record(
    _strings("langid", "linkedrights", "encodedrights"),
    closed=False,
    rules=(exactly_one("linkedrights", "encodedrights"),),
)
_SOURCE_TYPE = Record(_strings("name", "uri", "literal"))
_CODED = Record(_strings("code", "scheme"))
# Only in the ninjs development drafts (1.x/2.x), accepted so draft-based feeds validate.
_ADVICES = ArrayOf(
    Record(
        {
            "role": Scalar("string", enum=("publish",)),
            "environments": ArrayOf(Record(_strings("code", "scheme"), closed=False)),
            "importance": _CODED,
            "lifetime": _CODED,
        }
    )
)


def _contact_info(postal_code: str) -> Shape:
    address = Record({"lines": ArrayOf(_S), **_strings("locality", "area", postal_code, "country")})
    return ArrayOf(
        Record(
            {**_strings("type", "role", "lang", "name", "value"), "address": address},
            rules=(exactly_one("value", "address"),),
        )
    )


# --- ninjs 1.x: lower-case singular names, body_*/description_*/headline_* variants ----


def _spec_1(minor: int, drafts: bool) -> Record:
    contacts = _since(minor, 5, {"contactinfo": _contact_info("postalcode")})

    def concepts(**extra: Shape) -> Shape:
        return ArrayOf(Record({**_strings("name", "rel", "scheme", "code"), **extra}))

    types = _MEDIA_TYPES + (("component",) if minor >= 2 else ())
    key = re.compile(r"[A-Za-z0-9_]" if minor >= 3 else r"[A-Za-z0-9]")
    rendition = Record(
        {
            **_strings("href", "mimetype", "title"),
            "height": _N,
            "width": _N,
            "sizeinbytes": _N,
            **_since(minor, 2, {"duration": _N, "format": _S}),
        }
    )
    news = Later()
    place = Record(
        {**_strings("name", "rel", "scheme", "code"), **contacts},
        patterns=pattern_keys("geometry_", shape=Record({}, closed=False)) if minor >= 1 else (),
    )
    symbol = Record({**_strings("ticker", "exchange"), **_since(minor, 5, _strings("symboltype", "symbol"))})
    fields: dict[str, Shape] = {
        **_strings(
            "uri",
            "mimetype",
            "profile",
            "version",
            "versioncreated",
            "embargoed",
            "copyrightholder",
            "copyrightnotice",
            "language",
            "byline",
            "headline",
            "located",
        ),
        "type": Scalar("string", enum=types),
        "representationtype": Scalar("string", enum=("complete", "incomplete")),
        "pubstatus": _PUBSTATUS,
        "person": concepts(**contacts),
        "organisation": concepts(symbols=ArrayOf(symbol), **contacts),
        "place": ArrayOf(place),
        "subject": concepts(
            **_since(minor, 5, {"creator": _S, "relevance": _PERCENT, "confidence": _PERCENT})
        ),
        "event": concepts(),
        "object": concepts(),
        "renditions": Record({}, patterns=((key, rendition),)),
        "associations": Record({}, patterns=((key, news),)),
        **_since(minor, 1, {"urgency": _N, "usageterms": _S}),
        **_since(
            minor,
            2,
            {
                **_strings("firstcreated", "ednote", "title", "slugline"),
                "infosource": concepts(**contacts),
                "charcount": _N,
                "wordcount": _N,
            },
        ),
        **_since(
            minor,
            3,
            {
                "altids": Record({}, closed=False),
                "trustindicator": ArrayOf(Record(_strings("scheme", "code", "title", "href"))),
                "$standard": _STANDARD,
                "genre": ArrayOf(Record(_strings("name", "scheme", "code"))),
            },
        ),
        **_since(minor, 4, {"contentcreated": _S, "expires": _S, "rightsinfo": _RIGHTS}),
        **_since(minor, 6, {"digitalsourcetype": _SOURCE_TYPE}),
        **({"advices": _ADVICES} if drafts else {}),
    }
    variants = ("description_", "body_", "headline_") if minor >= 3 else ("description_", "body_")
    record = Record(fields, patterns=pattern_keys(*variants, shape=_S), required=("uri",))
    news.target = record
    return record


# --- ninjs 2.x: lower-case names, lists of {role, contenttype, value} -------------------


def _spec_2(minor: int, drafts: bool) -> Record:
    contacts = _since(minor, 1, {"contactinfo": _contact_info("postalcode")})
    text = ArrayOf(Record(_strings("role", "contenttype", "value"), required=("value",)))

    def named(**extra: Shape) -> Shape:
        return ArrayOf(Record({**_strings("name", "rel", "uri", "literal"), **extra}))

    symbol = Record({**_strings("ticker", "exchange"), **_since(minor, 1, _strings("symboltype", "symbol"))})
    association = Later()
    fields: dict[str, Shape] = {
        **_strings(
            "uri",
            "profile",
            "version",
            "firstcreated",
            "versioncreated",
            "contentcreated",
            "embargoed",
            "copyrightholder",
            "copyrightnotice",
            "usageterms",
            "ednote",
            "language",
            "title",
            "by",
            "slugline",
            "located",
        ),
        "type": Scalar("string", enum=(*_MEDIA_TYPES, "component")),
        "representationtype": Scalar("string", enum=("full", "partial")),
        "pubstatus": _PUBSTATUS,
        "urgency": _N,
        "headlines": text,
        "descriptions": text,
        "bodies": ArrayOf(
            Record(
                {**_strings("role", "contenttype", "value"), "charcount": _N, "wordcount": _N},
                required=("value",),
            )
        ),
        "people": named(**contacts),
        "organisations": named(symbols=ArrayOf(symbol), **contacts),
        "places": named(geojson=_GEOJSON, **contacts),
        "subjects": named(**_since(minor, 1, {"creator": _S, "relevance": _PERCENT, "confidence": _PERCENT})),
        "events": named(),
        "objects": named(),
        "infosources": ArrayOf(Record({**_strings("name", "role", "uri", "literal"), **contacts})),
        "renditions": ArrayOf(
            Record(
                {
                    **_strings("name", "href", "contenttype", "title", "format"),
                    "height": _N,
                    "width": _N,
                    "sizeinbytes": _N,
                    "duration": _N,
                },
                required=("name",),
            )
        ),
        "associations": ArrayOf(association),
        "altids": ArrayOf(Record(_strings("role", "value"))),
        "trustindicators": ArrayOf(Record(_strings("role", "title", "href"))),
        "standard": _STANDARD,
        "genres": ArrayOf(Record(_strings("name", "uri", "literal"))),
        "rightsinfo": _RIGHTS,
        **_since(minor, 1, {"expires": _S}),
        **_since(minor, 2, {"digitalsourcetype": _SOURCE_TYPE}),
        **({"advices": _ADVICES, "expires": _S} if drafts else {}),
    }
    record = Record(fields, required=("uri",))
    if minor == 0:
        # 2.0 let an association be either anything with a name or a full ninjs object.
        association.target = AnyOf((Record({"name": _S}, closed=False, required=("name",)), record))
    else:
        association.target = Record({**fields, "name": _S}, required=("name", "uri"))
    return record


# --- ninjs 3.x: camelCase names, events and planning --------------------------------------

# YYYY, YYYY-MM, YYYY-MM-DD or a full date-time, with an optional zone.
_TRUNCATED_DATE = Scalar(
    "string",
    pattern=re.compile(
        r"-?[0-9]{4,}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])"
        r"(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
        r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?)?)?$"
    ),
    pattern_label="a date or date-time (YYYY[-MM[-DD[Thh:mm:ss[zone]]]])",
)


def _start_or_end(value: Mapping[str, Any], path: str) -> str | None:
    starts = exactly_one("startDate", "expectedStartDate")(value, path)
    ends = exactly_one("endDate", "expectedEndDate")(value, path)
    if starts and ends:
        return (
            f"'{path}' must have exactly one of 'startDate', 'expectedStartDate' "
            "or exactly one of 'endDate', 'expectedEndDate'"
        )
    return None


def _spec_3(minor: int, drafts: bool) -> Record:
    del drafts  # the 3.x drafts add nothing yet
    contacts = {"contactInfo": _contact_info("postalCode")}
    urgency = Scalar("integer", minimum=1, maximum=9)
    kinds = Scalar("string", enum=(*_MEDIA_TYPES, "component", "event", "planning"))
    text = ArrayOf(Record(_strings("role", "contentType", "value"), required=("value",)))

    def named(**extra: Shape) -> Shape:
        return ArrayOf(Record({**_strings("name", "rel", "uri", "literal"), **extra}))

    organisation = Record(
        {
            **_strings("name", "rel", "uri", "literal"),
            "symbols": ArrayOf(Record(_strings("exchange", "symbolType", "symbol"))),
            **contacts,
        }
    )
    rendition = Record(
        {
            **_strings(
                "name",
                "href",
                "contentType",
                "title",
                "format",
                "aspectRatio",
                "videoCodec",
                "transportProtocol",
                "bitrate",
            ),
            "width": _I,
            "height": _I,
            "sizeInBytes": _I,
            "duration": _N,
            "frameRate": _N,
            "poi": Record({"x": _I, "y": _I}),
            "scanType": Scalar("string", enum=("progressive", "interlaced")),
        },
        required=("name",),
    )
    dates = Record(
        {
            **_strings("startDate", "endDate", "expectedDuration"),
            "expectedStartDate": _TRUNCATED_DATE,
            "expectedEndDate": _TRUNCATED_DATE,
            "recurrence": Record(
                {
                    # The schema's own definition contradicts itself (an array that is a
                    # string); this is what it evidently means.
                    "recurrenceDates": ArrayOf(_TRUNCATED_DATE),
                    "recurrenceRules": ArrayOf(
                        Record(
                            {
                                "frequency": Scalar(
                                    "string",
                                    enum=(
                                        "secondly",
                                        "minutely",
                                        "hourly",
                                        "daily",
                                        "weekly",
                                        "monthly",
                                        "yearly",
                                    ),
                                ),
                                "interval": _I,
                                "until": _S,
                                "count": _I,
                            }
                        )
                    ),
                }
            ),
        },
        rules=(_start_or_end,),
    )
    coverage = Record(
        {
            **_strings("uri", "title", "edNote", "language"),
            "pubStatus": _PUBSTATUS,
            "type": kinds,
            "commissioned": Record(
                {**_strings("by", "on"), "references": ArrayOf(Record(_strings("name", "value")))}
            ),
            "dates": dates,
            "audiences": ArrayOf(Record({"audience": _S, "significance": _I})),
            "exclAudience": ArrayOf(_S),
            "urgency": urgency,
            "itemCount": Record({"rangeFrom": _I, "rangeTo": _I}),
            "wordCount": _I,
            "renditions": ArrayOf(rendition),
        }
    )
    association = Later()
    fields: dict[str, Shape] = {
        **_strings(
            "uri",
            "profile",
            "version",
            "firstCreated",
            "versionCreated",
            "contentCreated",
            "embargoedUntil",
            "copyrightHolder",
            "copyrightNotice",
            "usageTerms",
            "edNote",
            "language",
            "title",
            "by",
            "slugline",
            "located",
            "expires",
        ),
        "type": kinds,
        "representationType": Scalar("string", enum=("full", "partial")),
        "pubStatus": _PUBSTATUS,
        "urgency": urgency,
        "headlines": text,
        "descriptions": text,
        "bodies": ArrayOf(
            Record(
                {**_strings("role", "contentType", "value"), "charCount": _I, "wordCount": _I},
                required=("value",),
            )
        ),
        "people": named(**contacts),
        "organisations": ArrayOf(organisation),
        "places": named(geoJSON=_GEOJSON, **contacts),
        "subjects": named(creator=_S, relevance=_PERCENT, confidence=_PERCENT),
        "events": named(id=_S),
        "eventDetails": Record(
            {**_strings("eventStatus", "plannedCoverageStatus"), "dates": dates, "organiser": organisation}
        ),
        "plannedCoverage": ArrayOf(coverage),
        "objects": named(),
        "infoSources": ArrayOf(Record({**_strings("name", "role", "uri", "literal"), **contacts})),
        "renditions": ArrayOf(rendition),
        "associations": ArrayOf(association),
        "altIds": ArrayOf(Record(_strings("role", "value"))),
        "trustIndicators": ArrayOf(Record(_strings("role", "title", "href"))),
        "standard": _STANDARD,
        "genres": ArrayOf(Record(_strings("name", "uri", "literal"))),
        "rightsInfo": Record(
            _strings("langId", "linkedRights", "encodedRights"),
            rules=(exactly_one("linkedRights", "encodedRights"),),
        ),
        **_since(minor, 1, {"digitalSourceType": _SOURCE_TYPE}),
    }
    association.target = Record({**fields, "name": _S, "rel": _S}, required=("name", "uri"))
    return Record(fields, required=("uri",))


@cache
def _spec(generation: int, minor: int | None) -> Record:
    build = {1: _spec_1, 2: _spec_2, 3: _spec_3}[generation]
    return build(_LATEST[generation] if minor is None else minor, minor is None)


# --- validation --------------------------------------------------------------------------


def validate_ninjs(doc: object, version: str | None = None) -> str | None:
    """Why ``doc`` is not a valid ninjs object, or None when it is.

    ``version`` ("1.0" ... "3.1") checks against that release. Without it the
    generation is inferred from the property names and its latest release is used
    (plus the draft-only ``advices``), which is how documents are checked on parsing.
    """
    return _validate(doc, version)[1]


def _validate(doc: object, version: str | None = None) -> tuple[int, str | None]:
    if not isinstance(doc, dict):
        return 0, f"{_LABEL}: an item must be a JSON object, not {_json_type(doc)}"
    if "uri" not in doc:
        return 0, f"{_LABEL}: 'uri' is required"
    if version is not None:
        generation, minor = _release(version)
        problem = _spec(generation, minor).problem(doc, "")
        return generation, problem and f"{_LABEL} {version}: {problem}"
    extension = _declares_extension(doc)
    failures: list[tuple[int, str]] = []
    for generation in _likely_generations(doc):
        spec = _spec(generation, None)
        view = {k: v for k, v in doc.items() if spec.shape_for(k)} if extension else doc
        problem = spec.problem(view, "")
        if problem is None:
            return generation, None
        failures.append((generation, problem))
    # A wrong value under names a generation knows says more than a name it does not know.
    generation, problem = min(failures, key=lambda f: f[1].startswith("unknown property"))
    return generation, f"{_LABEL} {generation}.x: {problem}"


def _release(version: str) -> tuple[int, int]:
    match = re.fullmatch(r"([123])\.(\d+)", version)
    if not match or int(match[2]) > _LATEST[int(match[1])]:
        raise ValueError(f"unknown ninjs release {version!r} (expected 1.0-1.6, 2.0-2.2, 3.0-3.1)")
    return int(match[1]), int(match[2])


def _likely_generations(doc: Mapping[str, Any]) -> list[int]:
    """The generations that know the most of the document's property names, newest first."""
    unknown = {g: sum(1 for k in doc if _spec(g, None).shape_for(k) is None) for g in (3, 2, 1)}
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
    return finish(_LABEL, items, rejections, source_id=source_id, url=url)


def _load(body: bytes, source_id: str, url: str) -> Any:
    if not body or not body.strip():
        raise ParseError(f"{_LABEL}: empty document", source_id=source_id, url=url)
    try:
        return json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"{_LABEL}: not JSON ({exc})", source_id=source_id, url=url) from exc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _entries(data: Any, source_id: str, url: str) -> tuple[list[Any], bool]:
    """The objects to read, and whether the document was a single object."""
    if isinstance(data, list):
        if not data:
            raise ParseError(f"{_LABEL}: the document is an empty list", source_id=source_id, url=url)
        return data, False
    if not isinstance(data, dict):
        raise ParseError(
            f"{_LABEL}: the document is {_json_type(data)}, not an object or a list of objects",
            source_id=source_id,
            url=url,
        )
    if "uri" not in data and not _is_digitalwires(data):
        for key in _WRAPPER_KEYS:
            wrapped = data.get(key)
            if isinstance(wrapped, list):
                if not wrapped:
                    raise ParseError(f"{_LABEL}: '{key}' is an empty list", source_id=source_id, url=url)
                return wrapped, False
    return [data], True


def _item(entry: Any, now: datetime, default_language: str | None) -> ParsedItem:
    try:
        if isinstance(entry, dict) and _is_digitalwires(entry):
            return _digitalwires_item(entry, now, default_language)
        generation, problem = _validate(entry)
    except RecursionError:
        raise ItemRejected(f"{_LABEL}: the item is nested too deeply") from None
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
        raise ItemRejected(f"{_LABEL}: 'uri' is empty")
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
        "urgency": doc.get("urgency"),
        "embargoed": _get(doc, "embargoed", "embargoedUntil"),
    }
    extra = sorted(k for k in doc if _spec(generation, None).shape_for(k) is None)
    if extra:
        item.issues.append(f"provider extension properties kept out: {', '.join(extra)}")
    note_if_empty(item)
    return item


def _headline(doc: Mapping[str, Any], generation: int) -> str:
    if generation == 1:
        variants = sorted((k for k in doc if k.startswith("headline_")), key=lambda k: k != "headline_main")
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
    """The best ``body_*``/``description_*`` text: HTML forms first (captions drop out)."""
    keys = [k for k in doc if k.startswith(prefix) and isinstance(doc[k], str)]
    keys.sort(key=lambda k: 0 if k.endswith("html") else 1 if k.endswith("text") else 2)
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
    values = renditions.values() if isinstance(renditions, dict) else renditions or ()
    for rendition in values:
        kind = str(_get(rendition, "contenttype", "contentType", "mimetype") or "")
        href = rendition.get("href")
        if "html" in kind.lower() and _is_web_url(href):
            return href
    uri = doc.get("uri")
    return uri if _is_web_url(uri) else None


def _is_web_url(value: Any) -> bool:
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


# --- dpa digitalwires: dpa's own JSON, not ninjs -------------------------------------------

_NULLABLE_TEXT = Scalar("string", nullable=True)
_DIGITALWIRES = Record(
    {
        "urn": _S,
        "version": AnyOf((_I, _S)),
        **dict.fromkeys(
            (
                "version_created",
                "content_created",
                "signal",
                "language",
                "headline",
                "teaser",
                "byline",
                "dateline",
                "article_html",
                "type",
            ),
            _NULLABLE_TEXT,
        ),
        "pubstatus": Scalar("string", enum=("usable", "withheld", "canceled"), nullable=True),
        "urgency": Scalar("integer", nullable=True),
        "categories": ArrayOf(
            Record({"type": _S, "name": _NULLABLE_TEXT, "qcode": _NULLABLE_TEXT}, closed=False), nullable=True
        ),
        "descriptions": ArrayOf(
            Record({"role": _NULLABLE_TEXT, "description": _NULLABLE_TEXT}, closed=False), nullable=True
        ),
    },
    closed=False,
    required=("urn",),
)
_DPA_SUBJECT_TYPES = frozenset({"dpasubject", "subject", "geosubject", "keyword", "rubric", "person"})


def _is_digitalwires(doc: Mapping[str, Any]) -> bool:
    fmt = doc.get("format")
    return isinstance(fmt, str) and fmt.startswith("digitalwires")


def _digitalwires_item(doc: dict[str, Any], now: datetime, default_language: str | None) -> ParsedItem:
    problem = _DIGITALWIRES.problem(doc, "")
    if problem or not doc["urn"].strip():
        raise ItemRejected(f"dpa digitalwires: {problem or 'urn is empty'}")
    categories = [c for c in doc.get("categories") or () if isinstance(c, dict)]
    pubstatus = doc.get("pubstatus")
    summary = doc.get("teaser") or first_text(d.get("description") for d in doc.get("descriptions") or ())
    title = one_line(doc.get("headline"))
    item = ParsedItem(
        identity=doc["urn"],
        guid=doc["urn"],
        title=title,
        summary=html_to_text(summary),
        body=without_title(html_to_text(doc.get("article_html")), title),
        byline=one_line(doc.get("byline")),
        language=doc.get("language") or default_language,
        withdrawn=is_withdrawn(pubstatus),
    )
    version = doc.get("version")
    # digitalwires has no first-created time; for version 1 the version time is that.
    first = doc.get("version_created") if str(version) == "1" else None
    set_dates(item, now, first, doc.get("version_created"))
    signal_codes = [doc.get("signal")] + [
        c.get("qcode") for c in categories if code_of(c.get("type")) == "signal"
    ]
    item.wire = {
        "format": "dpa-digitalwires",
        "digitalwires_format": doc.get("format"),
        "version": None if version is None else str(version),
        "pubstatus": pubstatus,
        "signals": _signals([s for s in signal_codes if s]),
        "subjects": [
            {
                k: v
                for k, v in (("code", c.get("qcode")), ("name", c.get("name")), ("type", c.get("type")))
                if v
            }
            for c in categories
            if code_of(c.get("type")) in _DPA_SUBJECT_TYPES
        ],
        "located": next(
            (
                one_line(c["name"])
                for c in categories
                if code_of(c.get("type")) == "located" and c.get("name")
            ),
            None,
        ),
        "dateline": one_line(doc.get("dateline")) or None,
        "type": doc.get("type"),
        "urgency": doc.get("urgency"),
        "embargoed": doc.get("embargoed"),
    }
    note_if_empty(item)
    return item
