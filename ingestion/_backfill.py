"""Loading an archive (JSON Lines, one article a line) into the event log."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson

from ._dates import checked, iso, parse_datetime, utcnow
from ._events import article_id, decide
from ._ingest import blob_store_for, new_run_id
from ._model import ParsedItem, Rejection
from ._store import EventStore, PendingEvent
from ._text import canonical_url, html_to_text, one_line
from .exceptions import NewsroomError

#: Lines decided and appended per transaction: bounds memory on large archives.
CHUNK_LINES = 25_000
MAX_LISTED_REJECTIONS = 50


@dataclass(slots=True)
class BackfillReport:
    run_id: str
    path: Path
    lines: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    rejections: list[Rejection] = field(default_factory=list)
    events_appended: int = 0


def _item_from_line(record: dict, now: datetime) -> ParsedItem:
    guid = record.get("guid")
    guid = str(guid).strip() if guid not in (None, "") else None
    link = record.get("url")
    link = str(link).strip() if link else None
    url = canonical_url(link)
    identity = guid or url
    if not identity:
        raise ValueError("line has neither guid nor url")
    issues: list[str] = []
    published = record.get("published_at")
    published_at = checked(
        parse_datetime(published) if isinstance(published, str) else None, now, issues, "published_at"
    )
    if published and published_at is None and not issues:
        issues.append(f"published_at {published!r} is not a date; ignored")
    item = ParsedItem(
        identity=identity,
        guid=guid,
        link=link,
        url=url,
        title=one_line(record.get("title")),
        summary=html_to_text(record.get("summary")),
        body=html_to_text(record.get("body")),
        byline=one_line(record.get("byline") or record.get("author")),
        language=record.get("language") or None,
        published_at=published_at,
        issues=issues,
    )
    if record.get("source"):
        item.wire["outlet"] = str(record["source"])
    if not (item.title or item.summary or item.body):
        raise ValueError("line has no title, summary or body")
    return item


def _read_lines(
    path: Path, now: datetime, report: BackfillReport, on_bytes: Callable[[int], None] | None
) -> Iterator[ParsedItem]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if on_bytes:
                on_bytes(len(raw))
            if not raw.strip():
                continue
            report.lines += 1
            try:
                record = orjson.loads(raw)
                if not isinstance(record, dict):
                    raise ValueError("line is not a JSON object")
                yield _item_from_line(record, now)
            except (ValueError, TypeError) as exc:  # bad JSON (a ValueError) or a field of the wrong type
                report.counts["rejected"] += 1
                if len(report.rejections) < MAX_LISTED_REJECTIONS:
                    report.rejections.append(Rejection(number, f"line {number}: {exc}"))


def backfill(
    path: str | Path,
    source_id: str,
    db_path: Path,
    *,
    lock_timeout: float = 30.0,
    on_bytes: Callable[[int], None] | None = None,
) -> BackfillReport:
    """Append one article per archive line; lines already in the log add nothing."""
    path = Path(path)
    if not path.is_file():
        raise NewsroomError(f"archive {path} not found")
    data = path.read_bytes()
    archive_sha = hashlib.sha256(data).hexdigest()
    blob_store_for(db_path).put(data, compresslevel=1)
    del data
    report = BackfillReport(new_run_id(), path)
    now = utcnow()
    raw_ref = {"archive_sha256": archive_sha, "archive_name": path.name}
    with EventStore(db_path, lock_timeout=lock_timeout) as store:
        chunk: list[ParsedItem] = []
        for item in _read_lines(path, now, report, on_bytes):
            chunk.append(item)
            if len(chunk) >= CHUNK_LINES:
                report.events_appended += _append_chunk(store, source_id, chunk, raw_ref, report, now)
                chunk = []
        report.events_appended += _append_chunk(store, source_id, chunk, raw_ref, report, now)
        summary = {
            "archive_sha256": archive_sha,
            "archive_name": path.name,
            "lines": report.lines,
            **{key: report.counts[key] for key in ("new", "revised", "unchanged", "stale", "rejected")},
            "rejections": [{"line": r.index, "reason": r.reason} for r in report.rejections],
            "loaded_at": iso(now),
        }
        with store.transaction():
            report.events_appended += store.append(
                [
                    PendingEvent(
                        "archive.loaded", f"archive:{source_id}", source_id, summary, content_hash=archive_sha
                    )
                ],
                recorded_at=now,
                run_id=report.run_id,
            )
    return report


def _append_chunk(
    store: EventStore,
    source_id: str,
    items: list[ParsedItem],
    raw_ref: dict,
    report: BackfillReport,
    now: datetime,
) -> int:
    if not items:
        return 0
    with store.transaction():
        heads = store.heads(article_id(source_id, item.identity) for item in items)
        pending, counts = decide(source_id, items, heads, raw_ref)
        report.counts.update(counts)
        return store.append(pending, recorded_at=now, run_id=report.run_id)
