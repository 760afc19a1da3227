"""Plain data passed between fetching, parsing and storing."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class ParsedItem:
    """One article as a source presents it, text already cleaned.

    ``identity`` is what makes two items the same article within a source:
    the wire guid/uri, else the feed guid, else the canonical URL.
    """

    identity: str
    guid: str | None = None
    link: str | None = None
    url: str | None = None
    title: str = ""
    summary: str = ""
    body: str = ""
    byline: str = ""
    language: str | None = None
    published_at: datetime | None = None
    updated_at: datetime | None = None
    withdrawn: bool = False
    #: Wire metadata (version, pubstatus, signals, subjects, located, dateline...).
    wire: dict[str, Any] = field(default_factory=dict)
    #: Problems with this item that did not stop it (e.g. a future date dropped).
    issues: list[str] = field(default_factory=list)
    #: The archive line it came from (backfill only), kept in the payload's raw reference.
    line: int | None = None
    #: Title, summary and body as parser version 7 read them, when it read them otherwise
    #: (a "<" in plain text taken for a tag, a body that repeats the summary kept):
    #: versions it recorded are matched by either reading (``item_content_hashes``).
    earlier_reading: tuple[str, str, str] | None = None


@dataclass(slots=True)
class Rejection:
    """An item of a feed that could not become an article, and why."""

    index: int
    reason: str
    identity: str | None = None


_ITEM_TIMES = ("published_at", "updated_at")


@dataclass(slots=True)
class ParseResult:
    """The items of one document; ``to_dict``/``from_dict`` carry it between
    processes as JSON-safe data (times as ISO 8601 text)."""

    items: list[ParsedItem] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    #: A recoverable problem with the whole document (e.g. feedparser's bozo flag).
    warning: str | None = None
    feed_title: str | None = None
    #: Items past the per-document cap, counted but not read.
    items_cut: int = 0
    #: Item identity -> the fields cut to their cap (see ``_sources.parse.FIELD_CAPS``).
    fields_cut: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for item in data["items"]:
            for key in _ITEM_TIMES:
                if item[key] is not None:
                    item[key] = item[key].isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParseResult:
        items = []
        for fields in data["items"]:
            times = {key: datetime.fromisoformat(fields[key]) if fields[key] else None for key in _ITEM_TIMES}
            items.append(ParsedItem(**{**fields, **times}))
        return cls(
            items=items,
            rejections=[Rejection(**rejection) for rejection in data["rejections"]],
            warning=data["warning"],
            feed_title=data["feed_title"],
            items_cut=data["items_cut"],
            fields_cut=data["fields_cut"],
        )


@dataclass(slots=True)
class FetchRequest:
    """What to fetch for one source, with the conditional-GET validators to send."""

    source_id: str
    url: str
    kind: str
    etag: str | None = None
    last_modified: str | None = None
    language: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FetchRequest:
        return cls(**data)


@dataclass(slots=True)
class FetchOutcome:
    """What happened when one source was fetched. Small and JSON-safe (an XCom)."""

    source_id: str
    url: str
    kind: str
    fetched_at: str  # ISO 8601, UTC
    ok: bool
    final_url: str | None = None
    status: int | None = None
    not_modified: bool = False
    conditional: bool = False
    body_sha256: str | None = None
    bytes: int = 0
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    elapsed_ms: int | None = None
    attempts: int = 0
    permanent_redirect: str | None = None
    error_class: str | None = None
    error_message: str | None = None
    language: str | None = None
    #: When a failed fetch's server (HTTP 429 or 503 with Retry-After) asked us to come
    #: back: ISO 8601, UTC, capped a week ahead. None when it did not ask.
    retry_after_until: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FetchOutcome:
        return cls(**data)
