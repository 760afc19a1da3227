"""dpa digitalwires: dpa's own JSON (not ninjs), read by the ninjs source kind."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ingestion._model import ParsedItem
from ingestion._sources.shapes import AnyOf, ArrayOf, Record, Scalar
from ingestion._sources.text import html_to_text, one_line
from ingestion._sources.wire import (
    code_of,
    first_text,
    is_withdrawn,
    note_if_empty,
    set_dates,
    text_or_none,
    urgency,
    without_title,
)
from ingestion.exceptions import ItemRejected

_S = Scalar("string")
_I = Scalar("integer")
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


def is_digitalwires(doc: Mapping[str, Any]) -> bool:
    fmt = doc.get("format")
    return isinstance(fmt, str) and fmt.startswith("digitalwires")


def digitalwires_item(doc: dict[str, Any], now: datetime, default_language: str | None) -> ParsedItem:
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
        "signals": list(dict.fromkeys(s for s in signal_codes if isinstance(s, str) and s)),
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
        "urgency": urgency(doc.get("urgency")),
        "embargoed": text_or_none(doc.get("embargoed")),
    }
    note_if_empty(item)
    return item
