"""Loading an archive (JSON Lines, one article a line) into the event log."""

from __future__ import annotations

import bisect
import hashlib
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import orjson

from ingestion._gc import gc_paused
from ingestion._log.blobs import BlobStore
from ingestion._log.events import (
    decide,
    follow_scheme_moves,
    item_content_hashes,
    reread_heads,
    stream_ids_with_twins,
)
from ingestion._log.feed_states import current_states_file, states_of, write_feed_states
from ingestion._log.record import blob_store_for, link_identities, link_identity, new_run_id
from ingestion._log.store import EventStore, PendingEvent, version_key, withdrew
from ingestion._model import ParsedItem, Rejection
from ingestion._sources.config import is_language_tag, is_source_id
from ingestion._sources.dates import checked, iso, parse_datetime, utcnow
from ingestion._sources.parse import cap_fields
from ingestion._sources.text import canonical_url, html_to_text, one_line, web_url
from ingestion.exceptions import ArchiveError

#: Lines decided and appended per transaction: bounds memory on large archives.
CHUNK_LINES = 25_000
MAX_LISTED_REJECTIONS = 50
#: The longest line read, in bytes: a feed's cap. A longer one is rejected unread.
MAX_LINE_BYTES = 20 * 2**20
#: The longest guid, url or outlet name kept, in characters; a line with a longer guid
#: or url is rejected (they name the article: cut, two could become one).
MAX_IDENTITY_CHARS = 8_192
#: A publisher's time longer than this is no date (and is not quoted whole in the issue).
MAX_DATE_CHARS = 100
#: How an archive that is not JSON Lines in UTF-8 starts: refused with a clear error
#: rather than read as lines of which none can be read.
_NOT_JSON_LINES = {b"\x1f\x8b": "gzip-compressed", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


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


def _identifier(record: dict, key: str) -> str | None:
    """A guid or url as text: a string, or a whole number (an export's numeric ids);
    anything else would name two articles the same (1.0 and 1) or one article two ways."""
    value = record.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"{key} is not text or a whole number")
    if len(value) > MAX_IDENTITY_CHARS:
        raise ValueError(f"{key} is longer than {MAX_IDENTITY_CHARS:,} characters")
    return value.strip() or None


def _item_from_line(record: dict, number: int, now: datetime) -> ParsedItem:
    guid = _identifier(record, "guid")
    link = _identifier(record, "url")
    url = web_url(link)
    # A link that is no web page is not published, but still identifies its line.
    identity = guid or url or canonical_url(link)
    if not identity:
        raise ValueError("line has neither guid nor url")
    issues: list[str] = []
    published_at, updated_at = (_date(record, key, now, issues) for key in ("published_at", "updated_at"))
    withdrawn = record.get("withdrawn")
    if withdrawn is not None and not isinstance(withdrawn, bool):
        issues.append(f"withdrawn {str(withdrawn)[:MAX_DATE_CHARS]!r} is not true or false; ignored")
        withdrawn = None
    language = record.get("language") or None
    if language is not None and not (isinstance(language, str) and is_language_tag(language)):
        issues.append(f"language {str(language)[:MAX_DATE_CHARS]!r} is not a language tag; ignored")
        language = None
    item = ParsedItem(
        identity=identity,
        guid=guid,
        link=link,
        url=url,
        title=one_line(_text(record, "title")),
        summary=html_to_text(_text(record, "summary")),
        body=html_to_text(_text(record, "body")),
        byline=one_line(_text(record, "byline") or _text(record, "author")),
        language=language,
        published_at=published_at,
        updated_at=updated_at,
        withdrawn=bool(withdrawn),
        issues=issues,
        line=number,
    )
    if record.get("source"):
        item.wire["outlet"] = str(record["source"])[:MAX_IDENTITY_CHARS]
    if not (item.title or item.summary or item.body or item.withdrawn):  # a kill notice may say nothing
        raise ValueError("line has no title, summary or body")
    cap_fields(item)
    return item


def _text(record: dict, key: str) -> str | None:
    """The line's text ``key``: None when missing or null. Anything but text rejects the
    line: an empty list, ``false`` or 0 read as no text would record the text deleted."""
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        kind = _JSON_TYPES.get(type(value), "of another type")
        raise ValueError(f"{key} is {kind}, not text")
    return value


#: How a JSON value's type is named in a rejection.
_JSON_TYPES = {bool: "true or false", int: "a number", float: "a number", list: "a list", dict: "an object"}


def _date(record: dict, key: str, now: datetime, issues: list[str]) -> datetime | None:
    """The line's date ``key``, or None with a note in ``issues`` when it is no date."""
    value = record.get(key)
    readable = isinstance(value, str) and len(value) <= MAX_DATE_CHARS
    noted = len(issues)
    when = checked(parse_datetime(value) if readable else None, now, issues, key)
    if value and when is None and len(issues) == noted:
        issues.append(f"{key} {str(value)[:MAX_DATE_CHARS]!r} is not a date; ignored")
    return when


def _lines(handle: BinaryIO) -> Iterator[tuple[int, bytes | None, int]]:
    """(line number, the line or None when it is over ``MAX_LINE_BYTES``, its size)."""
    number = 0
    while line := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
            yield number, line, len(line)
            continue
        size = len(line)
        while (rest := handle.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
            size += len(rest)  # read past, never held whole
        yield number, None, size + len(rest)


def _read_lines(
    path: Path,
    now: datetime,
    report: BackfillReport,
    on_bytes: Callable[[int], None] | None,
) -> Iterator[ParsedItem]:
    with path.open("rb") as handle:
        for number, raw, size in _lines(handle):
            if on_bytes:
                on_bytes(size)
            if raw is not None and number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # a byte order mark some exporters write
            if raw is not None and not raw.strip():
                continue
            report.lines += 1
            try:
                if raw is None:
                    raise ValueError(f"line is longer than {MAX_LINE_BYTES // 2**20} MB")
                record = orjson.loads(raw)
                if not isinstance(record, dict):
                    raise ValueError("line is not a JSON object")
                yield _item_from_line(record, number, now)
            except (ValueError, TypeError) as exc:  # bad JSON (a ValueError) or a field of the wrong type
                report.counts["rejected"] += 1
                if len(report.rejections) < MAX_LISTED_REJECTIONS:
                    report.rejections.append(Rejection(number, f"line {number}: {exc}"))


@contextmanager
def _private_copy(path: Path, folder: Path) -> Iterator[tuple[Path, str]]:
    """A copy of the archive that nothing else writes, in ``folder``, removed after, with
    its sha256 (hashed as it is copied): it is kept and read, so the kept archive holds
    every line the log points at even if the original is still being written."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / f".archive-{uuid.uuid4().hex}.tmp"
    try:
        digest = hashlib.sha256()
        with path.open("rb") as original, copy.open("xb") as target:
            if kind := _NOT_JSON_LINES.get(original.read(2)):
                raise ArchiveError(f"archive {path} is {kind}; give it as JSON Lines in UTF-8")
            original.seek(0)
            while chunk := original.read(2**20):
                digest.update(chunk)
                target.write(chunk)
        yield copy, digest.hexdigest()
    finally:
        copy.unlink(missing_ok=True)


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
        raise ArchiveError(f"archive {path} not found")
    if not is_source_id(source_id):
        raise ArchiveError(f"source id {source_id!r} must be 1-64 lower-case letters, digits, '_', '.', '-'")
    blobs = blob_store_for(db_path)
    with _private_copy(path, blobs.root) as (copy, archive_sha):
        return _load(copy, archive_sha, path, source_id, db_path, blobs, lock_timeout, on_bytes)


def _load(
    copy: Path,
    archive_sha: str,
    path: Path,
    source_id: str,
    db_path: Path,
    blobs: BlobStore,
    lock_timeout: float,
    on_bytes: Callable[[int], None] | None,
) -> BackfillReport:
    """``backfill`` of the archive at ``path``, read from its private ``copy``."""
    report = BackfillReport(new_run_id(), path)
    now = utcnow()
    raw_ref = {"archive_sha256": archive_sha, "archive_name": path.name}
    with EventStore(db_path, lock_timeout=lock_timeout) as store:
        report.loaded_before, report.resumed_after_line = _earlier_loads(store, source_id, archive_sha)
        if report.loaded_before is not None:
            return report
        # Written again beside the log once the load is recorded: its events change no feed's
        # state, and planning would read them from the log, waiting for the writer's lock.
        states = current_states_file(db_path, store.last_anchor())
        if states is None:
            states = states_of(store)
        with store.bulk_load(), ThreadPoolExecutor(1) as background, gc_paused():
            # Beside the main thread's parsing, deciding and inserting run two slow
            # writes that release the GIL: keeping the raw archive (zlib), then each
            # chunk's commit (DuckDB). The insert stays here: DuckDB's Arrow scan
            # takes the GIL, and beside the parser it ran 3x slower. A chunk is
            # decided once the one before it is committed, so its reads see every
            # earlier line.
            keeping = background.submit(blobs.put_file, copy, compresslevel=1)
            writing: Future[int] | None = None
            recorded: dict[str, _Recorded | None] = {}
            lines = _read_lines(copy, now, report, on_bytes)
            carried = link_identities(states, source_id)
            if carried is not None:
                lines = _identified_by_link(lines, carried)
            for chunk in _chunks(lines, CHUNK_LINES):
                report.events_appended += writing.result() if writing is not None else 0
                store.begin()
                try:
                    appended = _append_chunk(store, source_id, chunk, raw_ref, report, now, recorded)
                    if writing is None:  # nothing may point at a blob that was not kept
                        _check_kept(path, archive_sha, keeping.result())
                except BaseException:
                    store.rollback()
                    raise
                writing = background.submit(_commit, store, appended)
            report.events_appended += writing.result() if writing is not None else 0
            _check_kept(path, archive_sha, keeping.result())  # again for an archive of no lines
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
        with suppress(OSError):  # only a copy of what the log says
            write_feed_states(db_path, states)
    return report


def _check_kept(path: Path, archive_sha: str, kept_sha: str) -> None:
    """The private copy was hashed, then kept: both must be the same bytes."""
    if kept_sha != archive_sha:
        raise ArchiveError(f"the copy of archive {path} changed while it was being loaded; load it again")


def _earlier_loads(store: EventStore, source_id: str, archive_sha: str) -> tuple[datetime | None, int]:
    """When this archive was loaded into this source, or else the last line an
    interrupted load of it recorded (0 if none).

    Chunks commit in line order, so an interrupted load left every line up to the
    last one it recorded fully decided; run again, those lines find their versions
    in the log and are skipped (see ``_append_chunk``), which records exactly what
    an uninterrupted load would have. Loading an archive twice records nothing.
    """
    loaded = store.con.execute(
        "SELECT min(recorded_at) FROM raw.events WHERE stream_id = ? AND content_hash = ?",
        [f"archive:{source_id}", archive_sha],
    ).fetchall()[0][0]
    if loaded is not None:
        return loaded, 0
    # Only a load that stopped before its summary left lines behind: a run with articles of
    # this source but neither a summary nor a fetch (as a feed's run has). Finding those runs
    # reads a few small columns; the lines' payloads are then read for them alone, not for
    # every article the source ever had.
    unfinished = [
        row[0]
        for row in store.con.execute(
            """
            SELECT run_id FROM raw.events WHERE source_id = $source AND starts_with(event_type, 'article.')
            EXCEPT
            SELECT run_id FROM raw.events
            WHERE source_id = $source
              AND (stream_id = 'archive:' || $source OR starts_with(event_type, 'feed.'))
            """,
            {"source": source_id},
        ).fetchall()
    ]
    if not unfinished:
        return None, 0
    last_line = store.con.execute(
        """
        SELECT max(raw_ref.line) FROM raw.article_events
        WHERE source_id = ? AND list_contains(?, run_id) AND raw_ref.archive_sha256 = ?
        """,
        [source_id, unfinished, archive_sha],
    ).fetchall()[0][0]
    return None, last_line or 0


def _identified_by_link(items: Iterator[ParsedItem], carried: dict[str, str]) -> Iterator[ParsedItem]:
    """The lines of a source whose items are identified by link (its guids changed on
    every fetch), identified as its feed's items are: read by guid, an article the log
    holds under its link would be recorded again. Every line with a web page's link is:
    lines of one link are versions of one article here, as lines of one guid are."""
    for item in items:
        if item.url:
            item.identity = link_identity(item.url, carried)
        yield item


def _chunks(items: Iterator[ParsedItem], size: int) -> Iterator[list[ParsedItem]]:
    chunk: list[ParsedItem] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass(slots=True)
class _Recorded:
    """What the log held for a stream when this load first met it (each version's
    ``version_key``, and when an archive's version was made: ``EventStore.content_histories``),
    and how far the archive's lines have walked through it."""

    keys: list[str]
    made: list[datetime | None]
    position: int = 0
    #: Each key's places in ``keys``, in order: made when first asked (``find``).
    places: dict[str, list[int]] | None = None

    def find(self, item: ParsedItem) -> int | None:
        """The first version from the one matched last that ``item`` is (by either of its
        hashes, see ``content_hashes``), None if none: a line may repeat the version matched
        last (the log never holds one version twice in a row, so a repeat is no new version).
        In time logarithmic in the history: an archive may hold thousands of versions."""
        if self.places is None:
            self.places = {}
            for place, key in enumerate(self.keys):
                self.places.setdefault(key, []).append(place)
        start = max(self.position - 1, 0)
        if item.withdrawn and self.position and withdrew(self.keys[start]):
            return start  # a withdrawal of a withdrawn article repeats it, whatever it says (``decide``)
        found = None
        for chash in item_content_hashes(item):
            places = self.places.get(version_key(chash, item.withdrawn), ())
            at = bisect.bisect_left(places, start)
            if at < len(places) and (found is None or places[at] < found):
                found = places[at]
        return found

    def made_before_last_match(self, item: ParsedItem) -> bool:
        """Whether ``item`` was made before the version matched last: when this archive was
        first loaded it was stale there (``decide``), and recorded nothing."""
        made = self.made[self.position - 1] if self.position else None
        return made is not None and item.updated_at is not None and item.updated_at < made


def _append_chunk(
    store: EventStore,
    source_id: str,
    items: list[ParsedItem],
    raw_ref: dict,
    report: BackfillReport,
    now: datetime,
    recorded: dict[str, _Recorded | None],
) -> int:
    """Decide and append one chunk of lines.

    An archive may repeat what the log already holds: a grown copy of an archive
    loaded before, the rest of an interrupted load, an export of versions a feed
    recorded. A line is skipped while its content is, in order, one of the versions
    the log held for that stream when this load first met it (the one the line
    before matched, or a later one); from its first line
    that is not, a stream's lines are judged against its latest version as usual.
    So the log's history is never replayed as flip-flopping revisions, and a real
    return to an earlier text (A, B, A) after it is still a revision.
    """
    wanted = stream_ids_with_twins(source_id, items)
    heads = store.heads(wanted, made_at_of=set(wanted) if any(item.updated_at for item in items) else ())
    stream_ids = follow_scheme_moves(source_id, items, heads, versions_in_order=True)
    first_met = {stream_id for stream_id in stream_ids if stream_id in heads and stream_id not in recorded}
    histories = store.content_histories(first_met)
    fresh: list[ParsedItem] = []
    fresh_ids: list[str] = []
    for item, stream_id in zip(items, stream_ids, strict=True):
        if stream_id not in recorded:
            history = histories.get(stream_id)
            recorded[stream_id] = _Recorded(*history) if history else None
        seen = recorded[stream_id]
        if seen is not None:
            matched = seen.find(item)
            if matched is not None and matched >= seen.position and seen.made_before_last_match(item):
                # Stale when first loaded (made before the version it followed): its text may
                # come back later in the history, which it must not jump to.
                report.counts["stale"] += 1
                continue
            if matched is not None:
                seen.position = matched + 1
                report.counts["unchanged"] += 1
                if seen.made[matched] is None:
                    # A version recorded without the time it was made (by a feed, or from an
                    # undated line): the line says when, as ``decide`` takes it from a line
                    # that repeats it, so a line made before it after it is stale.
                    seen.made[matched] = item.updated_at
                    head = heads.get(stream_id)
                    if matched == len(seen.keys) - 1 and head is not None and head.made_at is None:
                        head.made_at = item.updated_at
                continue
            if seen.made_before_last_match(item):
                report.counts["stale"] += 1
                continue
            recorded[stream_id] = None
        fresh.append(item)
        fresh_ids.append(stream_id)
    reread_heads(fresh, fresh_ids, heads, store.latest_texts)
    pending, counts = decide(source_id, fresh, heads, raw_ref, dated_versions=True)
    report.counts.update(counts)
    return store.append(pending, recorded_at=now, run_id=report.run_id)


def _commit(store: EventStore, appended: int) -> int:
    store.commit()
    return appended
