"""The structure of a ninjs object, per generation (1.x lower-case singular names,
2.x lower-case lists, 3.x camelCase), written from the published specifications,
latest release of each generation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any, ClassVar

from ingestion._sources.shapes import AnyOf, ArrayOf, Later, Record, Scalar, Shape, exactly_one, pattern_keys

__all__ = ["LATEST", "spec"]

#: Latest minor release of each generation; an undeclared document is checked against it.
LATEST = {1: 6, 2: 2, 3: 1}

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
        if not isinstance(kind, str):
            return f"property '{path}.type' must be a string naming a GeoJSON type"
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
def spec(generation: int, minor: int | None) -> Record:
    build = {1: _spec_1, 2: _spec_2, 3: _spec_3}[generation]
    return build(LATEST[generation] if minor is None else minor, minor is None)
