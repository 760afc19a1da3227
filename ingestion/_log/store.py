"""The event log: one append-only DuckDB table, ``raw.events``, with a hash chain
(and ``raw.appends``, a row per append, which keeps two writers from one head).

Nothing here updates or deletes. Versions are assigned inside the appending
transaction, so stream versions stay contiguous, and each event's hash covers
the previous event's hash, so any later edit breaks the chain (see ``verify``).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from ingestion._extensions import NO_DOWNLOADS
from ingestion._files import write_atomically
from ingestion._log.lake import WriterLock, attach_read_only, connect_lake, create_schema, is_lake
from ingestion.exceptions import StoreError, StoreLockedError

GENESIS_HASH = "0" * 64
#: The storage format of a new working database: DuckDB 1.3's, the oldest with zstd-compressed
#: columns (1.2) and strings compressed by dictionary and FSST together (a few percent smaller).
#: Only this package's DuckDB opens the working file (readers get the published snapshot,
#: written for older releases); an existing file keeps the format it was made in.
WORKING_STORAGE_VERSION = "v1.3.0"
#: Article events a step that reads them all (entities, threads) reads, works on and
#: records at a time (``EventStore.part_end``): after a long backfill, or when a new model
#: or rule reads the whole log again, a run holds one part in memory rather than the log,
#: and one stopped part way keeps the parts it recorded.
PART_EVENTS = 200_000
_EVENT_NAMESPACE = uuid.UUID("6f1c1f2e-3a51-5b7e-9d0a-6e65777372f0").bytes

EVENT_TYPES = (
    "article.published",
    "article.revised",
    "article.withdrawn",
    "feed.fetched",
    "feed.failed",
    "archive.loaded",
)

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS raw;
-- No index: event_seq, (stream_id, stream_version) and event_id are unique because the
-- one writer numbers events and each stream's versions on from the log inside its
-- transaction (`_next_versions`), event_id_for derives the id from them, and `verify`
-- checks all three; a second writer that read the same head is stopped by
-- raw.appends. Every checkpoint after an append wrote an index out again whole: at a
-- million events, 0.4-0.5 s for the sequence number's key (logs made before keep it)
-- and 84 MB of file in one backfill of 10,500 for the strings' index (gone before).
CREATE TABLE IF NOT EXISTS raw.events (
    event_seq       BIGINT    NOT NULL,
    event_id        VARCHAR   NOT NULL,
    event_type      VARCHAR   NOT NULL,
    stream_id       VARCHAR   NOT NULL,
    stream_version  INTEGER   NOT NULL,
    source_id       VARCHAR   NOT NULL,
    occurred_at     TIMESTAMP,
    recorded_at     TIMESTAMP NOT NULL,
    run_id          VARCHAR   NOT NULL,
    content_hash    VARCHAR,
    -- Most of the log's bytes: DuckDB keeps long text uncompressed unless told;
    -- zstd keeps payloads at an eighth (files made before WORKING_STORAGE_VERSION
    -- cannot hold zstd, and keep them as they were).
    payload         JSON      NOT NULL USING COMPRESSION zstd,
    payload_hash    VARCHAR   NOT NULL,
    prev_hash       VARCHAR   NOT NULL,
    event_hash      VARCHAR   NOT NULL
);
-- One row per append: its first sequence number is the key, so of two writers that read
-- the same head (connections of one process share the file, and a conflict shows at
-- commit) the second to commit is refused. A row an append, not an event: its index
-- stays small. (A lake keeps no keys: there a writer takes a lock first, `WriterLock`.)
CREATE TABLE IF NOT EXISTS raw.appends (
    first_event_seq BIGINT NOT NULL PRIMARY KEY,
    last_event_seq  BIGINT NOT NULL
);
-- Article events with their payload read by name: the one definition of where each
-- field sits in the payload (``events.item_payload`` writes it), read by dbt staging,
-- the enrichers and backfill. One JSON parse per event; unknown or mistyped values
-- read as NULL, never as an error. IF NOT EXISTS, like the table: opening a log
-- writes nothing to it (a change to the view needs CREATE OR REPLACE once).
CREATE VIEW IF NOT EXISTS raw.article_events AS
SELECT event_seq, event_id, event_type, stream_id, stream_version, source_id, occurred_at,
       recorded_at, run_id, content_hash,
       fields.identity, fields.guid, fields.url, fields.link, fields.title, fields.summary,
       fields.body, fields.byline, fields.language, fields.published_at, fields.updated_at,
       fields.wire, fields.raw AS raw_ref
FROM (
    SELECT *, json_transform(payload, '{
        "identity": "VARCHAR", "guid": "VARCHAR", "url": "VARCHAR", "link": "VARCHAR",
        "title": "VARCHAR", "summary": "VARCHAR", "body": "VARCHAR", "byline": "VARCHAR",
        "language": "VARCHAR", "published_at": "VARCHAR", "updated_at": "VARCHAR",
        "wire": {"version": "VARCHAR", "pubstatus": "VARCHAR", "outlet": "VARCHAR",
                 "signals": "JSON", "subjects": "JSON"},
        "raw": {"body_sha256": "VARCHAR", "archive_sha256": "VARCHAR", "line": "BIGINT"}
    }') AS fields
    FROM raw.events
    WHERE event_type IN ('article.published', 'article.revised', 'article.withdrawn')
);
"""

_ARROW_SCHEMA = pa.schema(
    [
        ("event_seq", pa.int64()),
        ("event_id", pa.string()),
        ("event_type", pa.string()),
        ("stream_id", pa.string()),
        ("stream_version", pa.int32()),
        ("source_id", pa.string()),
        ("occurred_at", pa.timestamp("us")),
        ("recorded_at", pa.timestamp("us")),
        ("run_id", pa.string()),
        ("content_hash", pa.string()),
        ("payload", pa.string()),
        ("payload_hash", pa.string()),
        ("prev_hash", pa.string()),
        ("event_hash", pa.string()),
    ]
)
_EPOCH = datetime(1970, 1, 1)
#: The columns of the row tuples ``append`` builds: all but the constant recorded_at.
_ROW_COLUMNS = tuple(name for name in _ARROW_SCHEMA.names if name != "recorded_at")


@dataclass(slots=True)
class PendingEvent:
    """An event decided on but not yet stored: no version, sequence or hashes yet."""

    event_type: str
    stream_id: str
    source_id: str
    payload: dict[str, Any]
    occurred_at: datetime | None = None
    content_hash: str | None = None
    #: The payload as stored (``dump_payload``), when the caller made it already.
    payload_text: str | None = None


#: A wire version that orders: whole numbers, dotted or not ("3", "3.0", "1.10").
_WIRE_VERSION = re.compile(r"[0-9]{1,18}(?:\.[0-9]{1,18})*")


def wire_version_key(value: object) -> tuple[int, ...] | None:
    """A wire version as it orders: "3", " 3", "3.0" and 3.0 are (3,), "1.10" comes after
    "1.9"; None for one that orders nothing (absent, empty, "v3", "1e9", "-1")."""
    found = _WIRE_VERSION.fullmatch(str(value).strip())
    if found is None:
        return None
    parts = [int(part) for part in found.group().split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def higher_wire_version(kept: tuple[int, ...] | None, value: object) -> tuple[int, ...] | None:
    """The higher of a stream's version so far and one more (``wire_version_key``'s reading
    of ``value``; one that orders nothing leaves it as it was)."""
    new = wire_version_key(value)
    return kept if new is None or (kept is not None and kept >= new) else new


@dataclass(slots=True)
class StreamHead:
    """What the log already knows about one article stream."""

    version: int
    event_type: str
    content_hash: str | None
    occurred_at: datetime | None
    #: The highest wire version among its versions (``wire_version_key``): a version
    #: without one, or one judged a repeat, leaves it as it was.
    wire_version: tuple[int, ...] | None
    #: When its latest version was made (its ``updated_at``), where versions are ordered by
    #: it: one an archive recorded (``ARCHIVE_MADE_AT_SQL``), read for ``backfill``. None
    #: elsewhere: a feed's times are not trusted.
    made_at: datetime | None = None
    #: The ``event_seq`` of its latest version; None once a version is decided that is
    #: not yet in the log.
    event_seq: int | None = None
    #: The page and guid of a version decided in this batch (None for one read from the log).
    url: str | None = None
    guid: str | None = None

    @property
    def withdrawn(self) -> bool:
        return self.event_type == "article.withdrawn"


def epoch_us(value: datetime | None) -> str:
    """Microseconds since 1970 as text, '' for None: DuckDB's ``epoch_us`` in :data:`CHAIN_HASH_SQL`."""
    if value is None:
        return ""
    delta = value - _EPOCH
    return str((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


def chain_text(
    prev_hash: str,
    event_seq: int,
    event_id: str,
    event_type: str,
    stream_id: str,
    stream_version: int,
    source_id: str,
    occurred_us: str,
    recorded_us: str,
    run_id: str,
    content_hash: str | None,
    payload_hash: str,
) -> str:
    """What an event's hash is the SHA-256 of; times as :func:`epoch_us` text.

    ``verify`` recomputes the same string in SQL (:data:`CHAIN_HASH_SQL`); keep them in step.
    """
    return (
        f"{prev_hash}|{event_seq}|{event_id}|{event_type}|{stream_id}|{stream_version}|{source_id}|"
        f"{occurred_us}|{recorded_us}|{run_id}|{content_hash or ''}|{payload_hash}"
    )


#: The hash of :func:`chain_text`, over the stored columns.
CHAIN_HASH_SQL = """sha256(concat_ws('|', prev_hash, event_seq::VARCHAR, event_id, event_type,
    stream_id, stream_version::VARCHAR, source_id, coalesce(epoch_us(occurred_at)::VARCHAR, ''),
    epoch_us(recorded_at)::VARCHAR, run_id, coalesce(content_hash, ''), payload_hash))"""


def event_id_for(stream_id: str, stream_version: int) -> str:
    """Deterministic: the same stream position always gets the same id (a UUIDv5)."""
    h = hashlib.sha1(_EVENT_NAMESPACE + f"{stream_id}#{stream_version}".encode()).hexdigest()
    # Version nibble 5; variant bits 10 in the next group's first nibble (RFC 4122).
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT_NIBBLE[h[16]]}{h[17:20]}-{h[20:32]}"


_VARIANT_NIBBLE = dict(zip("0123456789abcdef", "89ab89ab89ab89ab", strict=True))


#: Each stored event's id next to the one :func:`event_id_for` derives, for ``verify``.
DERIVED_EVENT_IDS_SQL = f"""
    SELECT event_seq, event_id,
           substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-5' || substr(h, 14, 3) || '-'
           || translate(substr(h, 17, 1), '0123456789abcdef', '89ab89ab89ab89ab')
           || substr(h, 18, 3) || '-' || substr(h, 21, 12) AS derived_id
    FROM (SELECT event_seq, event_id,
                 sha1(unhex('{_EVENT_NAMESPACE.hex()}')
                      || encode(stream_id || '#' || stream_version::VARCHAR)) AS h
          FROM raw.events)"""


def dump_payload(payload: dict[str, Any]) -> str:
    """Compact JSON; key order is the order payloads are built in (deterministic)."""
    return orjson.dumps(payload, default=str).decode()


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[None]:
    """``table`` visible to SQL as ``name`` for the duration of the block."""
    con.register(name, table)
    try:
        yield
    finally:
        # After a failed statement the transaction is aborted and unregistering fails
        # too; that must not replace the error that got us here.
        with suppress(duckdb.Error):
            con.unregister(name)


def _open_failure(path: Path, exc: duckdb.Error) -> str:
    """Why DuckDB refused to open ``path``, on one line; for a file written by a newer
    DuckDB (which this one cannot read), which version wrote it and how to bring it over."""
    message = " ".join(str(exc).split())
    if "newer version of DuckDB" not in message:
        return message
    # The file header names the library version that wrote it, e.g. "v2.0.1".
    with path.open("rb") as handle:
        written_by = re.search(rb"\x00v(\d+\.\d+\.\d+)\x00", handle.read(4096))
    writer = f"DuckDB {written_by[1].decode()}" if written_by else "a newer DuckDB"
    return (
        f"it was written by {writer}, and newsroom runs on DuckDB {duckdb.__version__}, which cannot "
        f"read it. Export it with {writer} (EXPORT DATABASE 'dir' (FORMAT parquet)) and import that "
        "into a new file with `IMPORT DATABASE 'dir'` under DuckDB " + duckdb.__version__
    )


def _check_is_duckdb(path: Path) -> None:
    """A StoreError for a file that is there but no DuckDB database (its header has no
    ``DUCK`` at byte 8): DuckDB would open a SQLite file (the explorer's mirror) through
    an extension, or write its own header over whatever else the file holds."""
    try:
        with path.open("rb") as handle:
            header = handle.read(16)
    except OSError:
        return  # none yet, or unreadable: DuckDB says why
    if header and header[8:12] != b"DUCK":
        kind = "a SQLite database" if header.startswith(b"SQLite format 3") else "no DuckDB database"
        raise StoreError(f"cannot open {path}: it is {kind}; give --db a newsroom database (newsroom.duckdb)")


def connect(path: Path, *, read_only: bool = False, lock_timeout: float = 30.0) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file, waiting up to ``lock_timeout`` s for another writer to finish;
    or the lake a ``.lake`` file describes (see ``lake``: its writers lock in :class:`EventStore`)."""
    if is_lake(path):
        if read_only and not path.exists():
            raise StoreError(f"no lake description at {path}")
        return connect_lake(path, read_only=read_only)
    deadline = time.monotonic() + lock_timeout
    delay = 0.1
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.exists():
        raise StoreError(f"no database at {path}; run `newsroom ingest` first")
    _check_is_duckdb(path)
    while True:
        try:
            # The format only matters to a file this call creates (never read-only).
            config = {"storage_compatibility_version": WORKING_STORAGE_VERSION} if not read_only else {}
            con = duckdb.connect(str(path), read_only=read_only, config={**NO_DOWNLOADS, **config})
        except duckdb.Error as exc:
            # Anything but a lock: not a DuckDB file, truncated, damaged. One line, never a retry.
            # ("lock" alone would also match a damaged "block" and wait for nobody.)
            if not isinstance(exc, duckdb.IOException) or "could not set lock" not in str(exc).lower():
                raise StoreError(f"cannot open {path}: {_open_failure(path, exc)}") from exc
            if time.monotonic() >= deadline:
                raise StoreLockedError(
                    f"{path} is in use by another process (waited {lock_timeout:.0f} s). "
                    f"Only one writer at a time; retry when it has finished. DuckDB said: {exc}"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        else:
            return con


def anchor_path(db_path: Path) -> Path:
    """``<db>.head.json``: see :attr:`EventStore.anchor_path`."""
    return db_path.with_name(db_path.name + ".head.json")


def read_anchor_file(path: Path) -> Any:
    """What the anchor file holds (None if it cannot be read)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # RecursionError: "[[[[..." nested past Python's stack
        return None


#: When an event's version was made, for one an archive recorded: its ``updated_at``. A
#: feed's times are not trusted to order versions (a clock hours ahead would make an
#: archive's later versions look older), so NULL for any other.
ARCHIVE_MADE_AT_SQL = """
    if((e.payload -> '$.raw.archive_sha256') IS NOT NULL,
       TRY_CAST(e.payload ->> '$.updated_at' AS TIMESTAMP), NULL)
"""


def version_key(content_hash: str, withdrawn: bool) -> str:
    """A version as ``EventStore.content_histories`` lists it: its text's hash, and whether
    it withdrew the article (the same text, withdrawn, is another version)."""
    return f"{content_hash}/withdrawn" if withdrawn else content_hash


def withdrew(key: str) -> bool:
    """Whether the version ``version_key`` named withdrew the article."""
    return key.endswith("/withdrawn")


class EventStore:
    """The event log in one DuckDB file. Use as a context manager."""

    def __init__(self, path: str | Path, *, read_only: bool = False, lock_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._appended_head: tuple[int, str] | None = None
        # A lake has no file lock: its writer takes the catalog's lock before its first
        # transaction, so that transaction sees every earlier writer's commits.
        self._writer_lock = (
            WriterLock(self.path, timeout=lock_timeout) if is_lake(self.path) and not read_only else None
        )
        try:
            self.con = connect(self.path, read_only=read_only, lock_timeout=lock_timeout)
        except BaseException:
            self._release_writer_lock()
            raise
        if not read_only:
            self._check_is_a_log()
            create_schema(self.con, SCHEMA_SQL)
        elif not self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema='raw' AND table_name='events'"
        ).fetchall()[0][0]:
            self.close()
            raise StoreError(f"{self.path} has no raw.events table; run `newsroom ingest` first")

    def _check_is_a_log(self) -> None:
        """A StoreError for a database that holds tables but no event log (someone's own, or
        the published snapshot, also named newsroom.duckdb): the log is never made in it."""
        has_log, tables = self.con.execute(
            "SELECT count(*) FILTER (table_schema = 'raw' AND table_name = 'events'), count(*) "
            "FROM information_schema.tables WHERE table_catalog = current_database()"
        ).fetchall()[0]
        if tables and not has_log:
            self.close()
            raise StoreError(
                f"{self.path} is a database without an event log (no raw.events): newsroom keeps its "
                "log in a database of its own; give --db a new file or a newsroom database"
            )

    def close(self) -> None:
        self.con.close()
        self._release_writer_lock()

    def _release_writer_lock(self) -> None:
        if self._writer_lock is not None:
            self._writer_lock.release()
            self._writer_lock = None

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def anchor_path(self) -> Path:
        """Where the last committed (event_seq, event_hash) is written after each append.

        The chain proves no stored event was edited; the anchor proves none was cut
        off the end.
        """
        return anchor_path(self.path)

    @contextmanager
    def bulk_load(self) -> Iterator[EventStore]:
        """Many commits in a row (a backfill): checkpoint every 256 MB of log, not 16.

        A checkpoint rewrites the table's last row group (up to 122,880 rows) whole
        while it fills; at DuckDB's default a backfill of 100,000 articles rewrote it
        every few thousand lines and left half its file as freed blocks."""
        if is_lake(self.path):
            yield self
            return
        self.con.execute("SET checkpoint_threshold = '256MB'")
        try:
            yield self
        finally:
            with suppress(duckdb.Error):  # refused in a failed transaction; the store closes next
                self.con.execute("RESET checkpoint_threshold")

    @contextmanager
    def transaction(self) -> Iterator[EventStore]:
        self.begin()
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def begin(self) -> None:
        """Start a transaction; prefer :meth:`transaction` unless the commit must be
        handed to another thread (see ``backfill``)."""
        self._appended_head = None
        self.con.execute("BEGIN TRANSACTION")

    def rollback(self) -> None:
        self._appended_head = None
        self.con.execute("ROLLBACK")

    def commit(self) -> None:
        """Commit, then move the anchor to the new last event.

        DuckDB releases the GIL while committing, so a caller may run this in a
        thread and do Python work meanwhile, as long as nothing else touches the
        connection until it returns.
        """
        try:
            if self._writer_lock is not None:
                self._writer_lock.confirm()
            self.con.execute("COMMIT")
        except BaseException as exc:
            self._appended_head = None
            with suppress(duckdb.Error):  # DuckDB may already have ended the failed transaction
                self.con.execute("ROLLBACK")
            if isinstance(exc, duckdb.Error):
                raise StoreError(
                    f"commit to {self.path} failed, nothing of it was stored (another writer "
                    f"appending at the same time?): {exc}"
                ) from exc
            raise
        if self._appended_head is not None:
            seq, event_hash = self._appended_head
            self._appended_head = None
            try:
                write_atomically(
                    self.anchor_path, json.dumps({"event_seq": seq, "event_hash": event_hash}).encode()
                )
            except OSError as exc:
                raise StoreError(
                    f"the events were stored in {self.path}, but its anchor {self.anchor_path.name} "
                    f"could not be written ({exc.strerror or exc}): `newsroom verify` notes it until "
                    "the next run that records moves it"
                ) from exc

    def move_anchor_to_last_event(self) -> bool:
        """For a writer holding the lock: point the anchor at the log's last event if a
        writer stopped between its commit and moving it (as the next append would); whether
        it had to."""
        last = self.last_anchor()
        if last is None or read_anchor_file(self.anchor_path) == last:
            return False
        write_atomically(self.anchor_path, json.dumps(last).encode())
        return True

    # -- reads -------------------------------------------------------------------------

    def heads(
        self,
        stream_ids: Iterable[str],
        *,
        wire_versions_of: Collection[str] = (),
        made_at_of: Collection[str] = (),
    ) -> dict[str, StreamHead]:
        """Latest state of each given stream (those never seen are absent). Its wire version
        and when its latest version was made (``StreamHead.made_at``) sit in its payload and
        are read only for the streams in ``wire_versions_of`` (its highest, from every event
        of the stream) and ``made_at_of`` (its latest version's), those an
        item arrives for that brings one to compare it with: no other decision compares
        them, and reading the payloads of the streams' events costs more than all the rest."""
        wanted = pa.table({"stream_id": pa.array(sorted(set(stream_ids)), pa.string())})
        if not wanted.num_rows:
            return {}
        with registered(self.con, "_wanted_streams", wanted):
            rows = self.con.execute(
                f"""
                SELECT e.stream_id,
                       max(e.stream_version),
                       arg_max(e.event_type, e.stream_version),
                       arg_max(e.content_hash, e.stream_version),
                       max(e.occurred_at),
                       arg_max(e.event_seq, e.stream_version),
                       {"list(e.event_seq)" if wire_versions_of else "NULL"}
                FROM raw.events AS e
                SEMI JOIN _wanted_streams AS w ON e.stream_id = w.stream_id
                GROUP BY e.stream_id
                """
            ).fetchall()
        # A stream's wire version is the highest of all its versions' (the latest may have none),
        # its made_at its latest version's.
        read = [seq for row in rows if row[0] in wire_versions_of for seq in row[6]]
        read += [row[5] for row in rows if row[0] in made_at_of]
        wire_versions: dict[str, tuple[int, ...]] = {}
        made_at_by_seq: dict[int, datetime | None] = {}
        if read:
            with registered(self.con, "_read_events", pa.table({"event_seq": pa.array(read, pa.int64())})):
                for stream_id, event_seq, version, made_at in self.con.execute(
                    f"""
                    SELECT e.stream_id, e.event_seq,
                           -- a partial representation's version does not keep the whole one out
                           CASE WHEN (e.payload ->> '$.wire.representation') IS DISTINCT FROM 'partial'
                                THEN e.payload ->> '$.wire.version' END,
                           {ARCHIVE_MADE_AT_SQL}
                    FROM raw.events AS e SEMI JOIN _read_events AS r ON e.event_seq = r.event_seq
                    """
                ).fetchall():
                    made_at_by_seq[event_seq] = made_at
                    if (highest := higher_wire_version(wire_versions.get(stream_id), version)) is not None:
                        wire_versions[stream_id] = highest
        heads = {}
        for stream_id, *head, latest_seq, _ in rows:
            heads[stream_id] = StreamHead(
                *head,
                wire_versions.get(stream_id) if stream_id in wire_versions_of else None,
                made_at_by_seq.get(latest_seq) if stream_id in made_at_of else None,
                latest_seq,
            )
        return heads

    def content_histories(
        self, stream_ids: Iterable[str]
    ) -> dict[str, tuple[list[str], list[datetime | None]]]:
        """Each given stream's versions in order: as ``version_key`` writes them, and when
        each was made if an archive recorded it (``ARCHIVE_MADE_AT_SQL``); streams never
        seen are absent."""
        wanted = pa.table({"stream_id": pa.array(sorted(set(stream_ids)), pa.string())})
        if not wanted.num_rows:
            return {}
        with registered(self.con, "_history_streams", wanted):
            rows = self.con.execute(
                f"""
                SELECT e.stream_id,
                       list(e.content_hash || if(e.event_type = 'article.withdrawn', '/withdrawn', '')
                            ORDER BY e.stream_version),
                       list({ARCHIVE_MADE_AT_SQL} ORDER BY e.stream_version)
                FROM raw.events AS e
                SEMI JOIN _history_streams AS w ON e.stream_id = w.stream_id
                GROUP BY e.stream_id
                """
            ).fetchall()
        return {stream_id: (keys, made) for stream_id, keys, made in rows}

    def latest_texts(self, event_seqs: Iterable[int]) -> dict[int, tuple[str | None, ...]]:
        """The title, summary, body, byline, url and guid of the given article events (by
        ``event_seq``, as ``StreamHead.event_seq`` names a stream's latest)."""
        wanted = pa.table({"event_seq": pa.array(sorted(set(event_seqs)), pa.int64())})
        if not wanted.num_rows:
            return {}
        with registered(self.con, "_text_events", wanted):
            rows = self.con.execute(
                """
                SELECT e.event_seq, e.title, e.summary, e.body, e.byline, e.url, e.guid
                FROM raw.article_events AS e SEMI JOIN _text_events AS w ON e.event_seq = w.event_seq
                """
            ).fetchall()
        return {event_seq: tuple(fields) for event_seq, *fields in rows}

    def fetches_of_run(self, run_id: str) -> dict[tuple[str, str], str]:
        """The fetches recorded by run ``run_id`` or its re-runs (``run_id#2``, ...): the
        id each was recorded under, by (source id, ``fetched_at``). Every fetch outcome
        is one ``feed.fetched`` or ``feed.failed`` event."""
        rows = self.con.execute(
            "SELECT source_id, payload ->> 'fetched_at', run_id FROM raw.events "
            "WHERE (run_id = $run OR starts_with(run_id, $run || '#')) "
            "AND event_type IN ('feed.fetched', 'feed.failed')",
            {"run": run_id},
        ).fetchall()
        return {(source_id, fetched_at): run for source_id, fetched_at, run in rows}

    def last_anchor(self) -> dict[str, Any] | None:
        """What the anchor holds once every commit moved it: the log's last event (None
        when empty)."""
        last = self._last_event()
        return {"event_seq": last[0], "event_hash": last[1]} if last else None

    def last_event_seq(self) -> int:
        """The sequence number of the log's last event (0 when empty)."""
        return self.con.execute("SELECT coalesce(max(event_seq), 0) FROM raw.events").fetchall()[0][0]

    def part_end(self, after: int) -> int | None:
        """Where a step that works through the article events after event #``after`` in
        parts (``PART_EVENTS`` at a time) ends its next one: the event_seq of the last
        article event in it, None when there is none."""
        return self.con.execute(
            "SELECT max(event_seq) FROM (SELECT event_seq FROM raw.article_events "
            "WHERE event_seq > ? ORDER BY event_seq LIMIT ?)",
            [after, PART_EVENTS],
        ).fetchall()[0][0]

    def feed_states(self, after_seq: int = 0) -> dict[str, dict[str, Any]]:
        """Per source, what planning and recording need from its fetches after event
        ``after_seq`` (all of them by default); ``feed_states.fold_states`` adds the
        states of later events to earlier ones.

        The times are when its latest fetch (and latest unconditional one) was made, by the
        fetching machine's clock: ``recorded_at`` never goes back, so after a clock set back
        it would keep a source from being due until the clock caught up.
        ``latest_body`` is the hash of the last body it delivered (a 304 delivers
        none), ``latest_body_fetched_at`` when that body was fetched; ``etag`` and
        ``last_modified`` came with that body (NULL if it came without: an older body's
        would let a 304 hide a change). ``retry_after_until``
        is what the latest fetch's server asked for; ``identity_decision`` the
        latest decision on how the source's items are identified (see ``record``).
        Those are the latest value given (NULLs are passed over).
        """
        # `->>` in parentheses: DuckDB 1.x binds it more loosely than AND and NOT.
        rows = self.con.execute(
            """
            SELECT source_id,
                   arg_max(payload ->> '$.fetched_at', stream_version),
                   arg_max(payload ->> '$.fetched_at', stream_version)
                       FILTER (WHERE event_type = 'feed.fetched' AND (payload ->> '$.conditional') = 'false'),
                   arg_max(content_hash, stream_version) FILTER (WHERE content_hash IS NOT NULL),
                   arg_max(payload ->> '$.fetched_at', stream_version)
                       FILTER (WHERE content_hash IS NOT NULL),
                   arg_max_null(payload ->> '$.etag', stream_version) FILTER (WHERE content_hash IS NOT NULL),
                   arg_max_null(payload ->> '$.last_modified', stream_version)
                       FILTER (WHERE content_hash IS NOT NULL),
                   arg_max(payload ->> '$.retry_after_until', stream_version),
                   arg_max(payload ->> '$.identity_decision', stream_version)
                       FILTER (WHERE payload ->> '$.identity_decision' IS NOT NULL)
            FROM raw.events
            WHERE starts_with(stream_id, 'feed:') AND event_seq > ?
            GROUP BY source_id
            """,
            [after_seq],
        ).fetchall()
        keys = (
            "last_fetched_at",
            "last_unconditional_at",
            "latest_body",
            "latest_body_fetched_at",
            "etag",
            "last_modified",
            "retry_after_until",
            "identity_decision",
        )
        states = {row[0]: dict(zip(keys, row[1:], strict=True)) for row in rows}
        for state in states.values():
            if state["identity_decision"]:
                state["identity_decision"] = orjson.loads(state["identity_decision"])
        return states

    # -- the one write ---------------------------------------------------------------

    def append(self, pending: list[PendingEvent], *, recorded_at: datetime, run_id: str) -> int:
        """Append events in order, assigning versions, sequence numbers and hashes.

        Call inside a transaction together with the reads that decided the events,
        so nothing can slip in between. Returns the number appended.
        """
        if not pending:
            return 0
        if self.read_only:
            raise StoreError("the store was opened read-only")
        seq, prev_hash, last_recorded = self._last_event() or (0, GENESIS_HASH, None)
        # Never before the event ahead of it: a writer that took its time before the lock
        # was free (or a clock set back) must not record a time the log had passed.
        if last_recorded is not None and recorded_at < last_recorded:
            recorded_at = last_recorded
        versions = self._next_versions({event.stream_id for event in pending})
        recorded_us = epoch_us(recorded_at)
        sha256 = hashlib.sha256
        rows = []
        for event in pending:
            seq += 1
            stream_id = event.stream_id
            version = versions.get(stream_id, 1)
            versions[stream_id] = version + 1
            event_id = event_id_for(stream_id, version)
            payload_text = event.payload_text or dump_payload(event.payload)
            payload_hash = sha256(payload_text.encode()).hexdigest()
            event_hash = sha256(chain_text(
                prev_hash, seq, event_id, event.event_type, stream_id, version, event.source_id,
                epoch_us(event.occurred_at), recorded_us, run_id, event.content_hash, payload_hash,
            ).encode()).hexdigest()  # fmt: skip
            rows.append((
                seq, event_id, event.event_type, stream_id, version, event.source_id,
                event.occurred_at, run_id, event.content_hash, payload_text, payload_hash, prev_hash,
                event_hash,
            ))  # fmt: skip
            prev_hash = event_hash
        columns = dict(zip(_ROW_COLUMNS, map(list, zip(*rows, strict=True)), strict=True))
        # The one constant column is built as such, not converted row by row.
        columns["recorded_at"] = pa.repeat(pa.scalar(recorded_at, pa.timestamp("us")), len(rows))
        batch = pa.table({name: columns[name] for name in _ARROW_SCHEMA.names}, schema=_ARROW_SCHEMA)
        with registered(self.con, "_new_events", batch):
            try:
                self.con.execute("INSERT INTO raw.events SELECT * FROM _new_events")
                self._record_append(seq - len(rows) + 1, seq)
            except duckdb.ConstraintException as exc:
                raise StoreError(
                    f"append rejected by a uniqueness constraint (concurrent writer?): {exc}"
                ) from exc
        self._appended_head = (seq, prev_hash)
        return len(pending)

    def copy_events_from(self, source: Path) -> int:
        """Append the events of the log at ``source`` (a DuckDB file or a lake) that this
        log lacks, as they are: same sequence numbers, times and hashes, so both verify
        and everything derived from them comes out the same. This log must hold nothing
        or the source's first events; anything else is refused. Returns the number copied."""
        if self.read_only:
            raise StoreError("the store was opened read-only")
        attach_read_only(self.con, Path(source), "copied_log")
        try:
            with self.transaction():
                last = self._last_event()
                if last and self.con.execute(
                    "SELECT count(*) FROM copied_log.raw.events WHERE event_seq = ? AND event_hash = ?",
                    list(last[:2]),
                ).fetchall() != [(1,)]:
                    raise StoreError(
                        f"{self.path} is not a copy of the first events of {source}: its event "
                        f"#{last[0]} is not the same there; copy into a new, empty log"
                    )
                after = last[0] if last else 0
                self.con.execute(
                    "INSERT INTO raw.events SELECT * FROM copied_log.raw.events "
                    "WHERE event_seq > ? ORDER BY event_seq",
                    [after],
                )
                head = self._last_event()
                if head and head[0] > after:
                    self._record_append(after + 1, head[0])
                    self._appended_head = head[:2]
        finally:
            self.con.execute("DETACH copied_log")
        return head[0] - after if head else 0

    def _record_append(self, first_seq: int, last_seq: int) -> None:
        """Note in ``raw.appends`` the events this transaction appends (see ``SCHEMA_SQL``)."""
        self.con.execute("INSERT INTO raw.appends VALUES (?, ?)", [first_seq, last_seq])

    def _last_event(self) -> tuple[int, str, datetime] | None:
        """(event_seq, event_hash, recorded_at) of the log's last event."""
        rows = self.con.execute(
            "SELECT event_seq, event_hash, recorded_at FROM raw.events ORDER BY event_seq DESC LIMIT 1"
        ).fetchall()
        return rows[0] if rows else None

    def _next_versions(self, stream_ids: set[str]) -> dict[str, int]:
        wanted = pa.table({"stream_id": pa.array(sorted(stream_ids), pa.string())})
        with registered(self.con, "_version_streams", wanted):
            rows = self.con.execute(
                "SELECT e.stream_id, max(e.stream_version) FROM raw.events e "
                "SEMI JOIN _version_streams w ON e.stream_id = w.stream_id GROUP BY e.stream_id"
            ).fetchall()
        return {stream_id: version + 1 for stream_id, version in rows}
