"""One fetched body → items, whatever the source kind, within the per-document caps."""

from __future__ import annotations

import re
from datetime import datetime

from ingestion._log.events import cap_fields
from ingestion._model import ParseResult
from ingestion._sources.newsml import parse_newsml
from ingestion._sources.ninjs import parse_ninjs
from ingestion._sources.rss import parse_rss
from ingestion.exceptions import ParseError

#: Items read from one document; the rest are counted in the fetch's payload.
MAX_ITEMS_PER_DOCUMENT = 5_000
_ITEM_START = re.compile(rb"<(?:[A-Za-z][\w.-]*:)?(?:item|entry)[\s>/]")


def parse_body(
    kind: str,
    body: bytes,
    *,
    source_id: str,
    url: str,
    now: datetime,
    content_type: str | None = None,
    language: str | None = None,
) -> ParseResult:
    """Items of one document: at most :data:`MAX_ITEMS_PER_DOCUMENT`, each field
    within its cap; what was cut is counted in the result."""
    items_cut = 0
    if kind == "rss":
        # Cut the bytes before parsing: feedparser holds every item in memory.
        body, items_cut = _cut_items(body)
        result = parse_rss(
            body, source_id=source_id, url=url, now=now, content_type=content_type, default_language=language
        )
    elif kind == "ninjs":
        result = parse_ninjs(body, source_id=source_id, url=url, now=now, default_language=language)
    elif kind == "newsml":
        result = parse_newsml(body, source_id=source_id, url=url, now=now, default_language=language)
    else:
        raise ParseError(f"unknown source kind {kind!r}", source_id=source_id, url=url)
    if len(result.items) > MAX_ITEMS_PER_DOCUMENT:
        items_cut += len(result.items) - MAX_ITEMS_PER_DOCUMENT
        del result.items[MAX_ITEMS_PER_DOCUMENT:]
    result.items_cut += items_cut
    for item in result.items:
        if cut := cap_fields(item):
            result.fields_cut[item.identity] = cut
    return result


def _cut_items(body: bytes) -> tuple[bytes, int]:
    """The document up to its item number :data:`MAX_ITEMS_PER_DOCUMENT` + 1, and
    how many items were cut off."""
    if body.count(b"item") + body.count(b"entry") <= MAX_ITEMS_PER_DOCUMENT:
        return body, 0
    starts = _ITEM_START.finditer(body)
    for position, match in enumerate(starts):
        if position == MAX_ITEMS_PER_DOCUMENT:
            return body[: match.start()], 1 + sum(1 for _ in starts)
    return body, 0
