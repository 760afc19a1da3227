"""Loading an archive (JSON Lines, one article a line) into the event log."""

from __future__ import annotations

import gc
import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson

from ._blobs import file_sha256
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
    #: When this archive was loaded into this source before (then nothing is appended).
    loaded_before: datetime | None = None
    #: Lines a previous, interrupted load of this archive had recorded; skipped now.
    resumed_after_line: int = 0


def _item_from_line(record: dict, number: int, now: datetime) -> ParsedItem:
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
        line=number,
    )
    if record.get("source"):
        item.wire["outlet"] = str(record["source"])
    if not (item.title or item.summary or item.body):
        raise ValueError("line has no title, summary or body")
    return item


def _read_lines(
    path: Path,
    now: datetime,
    report: BackfillReport,
    on_bytes: Callable[[int], None] | None,
    on_raw: Callable[[bytes], object],
) -> Iterator[ParsedItem]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            on_raw(raw)
            if on_bytes:
                on_bytes(len(raw))
            if not raw.strip():
                continue
            report.lines += 1
            if number <= report.resumed_after_line:
                continue
            try:
                record = orjson.loads(raw)
                if not isinstance(record, dict):
                    raise ValueError("line is not a JSON object")
                yield _item_from_line(record, number, now)
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
    report = BackfillReport(new_run_id(), path)
    now = utcnow()
    archive_sha = file_sha256(path)
    raw_ref = {"archive_sha256": archive_sha, "archive_name": path.name}
    with EventStore(db_path, lock_timeout=lock_timeout) as store:
        report.loaded_before, report.resumed_after_line = _earlier_loads(store, source_id, archive_sha)
        if report.loaded_before is not None:
            return report
        with ThreadPoolExecutor(1) as background, _gc_paused():
            # Beside the main thread's parsing, deciding and inserting run two slow
            # writes that release the GIL: keeping the raw archive (zlib), then each
            # chunk's commit (DuckDB). The insert stays here: DuckDB's Arrow scan
            # takes the GIL, and beside the parser it ran 3x slower. A chunk is
            # decided once the one before it is committed, so its reads see every
            # earlier line.
            keeping = background.submit(blob_store_for(db_path).put_file, path, compresslevel=1)
            read_digest = hashlib.sha256()
            writing: Future[int] | None = None
            lines = _read_lines(path, now, report, on_bytes, read_digest.update)
            for chunk in _chunks(lines, CHUNK_LINES):
                report.events_appended += writing.result() if writing is not None else 0
                store.begin()
                try:
                    appended = _append_chunk(store, source_id, chunk, raw_ref, report, now)
                    if writing is None:  # nothing may point at a blob that was not kept
                        _check_unchanged(path, archive_sha, keeping.result())
                except BaseException:
                    store.rollback()
                    raise
                writing = background.submit(_commit, store, appended)
            report.events_appended += writing.result() if writing is not None else 0
            _check_unchanged(path, archive_sha, keeping.result())  # again for an archive of no lines
            _check_unchanged(path, archive_sha, read_digest.hexdigest())
        summary = {
            **raw_ref,
            "lines": report.lines,
            "resumed_after_line": report.resumed_after_line,
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


def _check_unchanged(path: Path, archive_sha: str, sha_seen: str) -> None:
    """The archive is read three times (hashed, kept, parsed): all must be the same bytes."""
    if sha_seen != archive_sha:
        raise NewsroomError(
            f"archive {path} changed while it was being loaded (something still writing it?); "
            "load it again once it is complete"
        )


def _earlier_loads(store: EventStore, source_id: str, archive_sha: str) -> tuple[datetime | None, int]:
    """When this archive was loaded into this source, or else the last line an
    interrupted load of it recorded (0 if none).

    Chunks commit in line order, so an interrupted load left every line up to the
    last one it recorded fully decided; resuming after it records exactly what an
    uninterrupted load would have. Loading an archive twice records nothing: its
    lines would otherwise be judged against newer versions and come back as revisions.
    """
    loaded = store.con.execute(
        "SELECT min(recorded_at) FROM raw.events WHERE stream_id = ? AND content_hash = ?",
        [f"archive:{source_id}", archive_sha],
    ).fetchall()[0][0]
    if loaded is not None:
        return loaded, 0
    last_line = store.con.execute(
        """
        SELECT max((payload ->> '$.raw.line')::BIGINT) FROM raw.events
        WHERE source_id = ? AND starts_with(event_type, 'article.')
          AND payload ->> '$.raw.archive_sha256' = ?
        """,
        [source_id, archive_sha],
    ).fetchall()[0][0]
    return None, last_line or 0


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during a load.

    A load allocates millions of small, acyclic objects (freed by reference
    counting), and each full collection walks all live ones: about a tenth of the
    run time. Nothing here makes cycles, so pausing loses no memory.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _chunks(items: Iterator[ParsedItem], size: int) -> Iterator[list[ParsedItem]]:
    chunk: list[ParsedItem] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _append_chunk(
    store: EventStore,
    source_id: str,
    items: list[ParsedItem],
    raw_ref: dict,
    report: BackfillReport,
    now: datetime,
) -> int:
    heads = store.heads(article_id(source_id, item.identity) for item in items)
    pending, counts = decide(source_id, items, heads, raw_ref)
    report.counts.update(counts)
    return store.append(pending, recorded_at=now, run_id=report.run_id)


def _commit(store: EventStore, appended: int) -> int:
    store.commit()
    return appended
