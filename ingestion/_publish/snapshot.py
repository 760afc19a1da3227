"""Write-audit-publish: a validated, read-only copy of the marts for readers.

The pipeline writes the working database. ``publish`` validates it and only then
builds ``published/newsroom.duckdb`` as a new file and renames it over the old
one, so a reader sees the old snapshot or the new one, never a half-built one,
and a reader holding the old file open is never disturbed (nor does it block us).

The new file starts as a copy of the previous one, brought up to date with the
rows that changed (``update``); the search index and the explorer's mirror take
the same change, and a mart that did not change keeps its Parquet file. Copying
a file costs little next to rebuilding what is in it, so a publish costs what
changed plus the copies (the mirror's made in a thread while the marts are
compared). A snapshot made by another version (``SNAPSHOT_FORMAT``), or none at
all, is built in full, as is one asked for with ``full``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from ingestion._derive.transform import read_build_record
from ingestion._explore.docs import model_docs
from ingestion._explore.mirror import update_mirror, write_mirror
from ingestion._extensions import NO_DOWNLOADS
from ingestion._log.lake import attach_read_only
from ingestion._log.store import connect
from ingestion._publish.changes import write_change_feeds
from ingestion._publish.parquet import write_mart_parquet
from ingestion._publish.search import build_search_index, update_search_index
from ingestion._publish.update import MartChange, SnapshotOutOfStep, update_mart
from ingestion._quality.expectations import STAGES
from ingestion._quality.validate import ValidationReport, validate
from ingestion._sources.dates import utcnow
from ingestion.exceptions import PublishError, ValidationFailed

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

PUBLISHED_NAME = "newsroom.duckdb"
MIRROR_NAME = "newsroom.sqlite"
FEEDS_NAME = "feeds"
#: The oldest DuckDB release that must open the published file.
STORAGE_VERSION = "v1.1.0"
#: What a snapshot holds beside the marts (tables, columns, indexes). A snapshot of
#: another format is built anew, not brought up to date; bump it when that changes.
SNAPSHOT_FORMAT = 3
#: How long a publish waits for another one into the same folder to finish.
PUBLISH_LOCK_TIMEOUT = 600.0


def published_dir(db_path: Path) -> Path:
    return Path(db_path).parent / "published"


def published_path(db_path: Path) -> Path:
    return published_dir(db_path) / PUBLISHED_NAME


def last_published_seq(db_path: Path) -> int:
    """The last event_seq the current snapshot was built from (0 when none, or when it
    cannot be read: then everything is validated again)."""
    path = published_path(db_path)
    if not path.exists():
        return 0
    try:
        with duckdb.connect(str(path), read_only=True, config=NO_DOWNLOADS) as con:
            return con.execute("SELECT max(last_event_seq) FROM meta.snapshots").fetchall()[0][0] or 0
    except duckdb.Error:
        return 0


@dataclass(slots=True)
class PublishReport:
    path: Path
    parquet_dir: Path
    last_event_seq: int
    tables: dict[str, int]
    validation: ValidationReport
    #: Per mart, the rows taken out and put in when the snapshot before was brought up
    #: to date; None when the snapshot was built in full.
    changes: dict[str, tuple[int, int]] | None = None
    #: Whether the explorer's mirror was the previous one with the changes applied.
    mirror_updated: bool = False

    def how(self) -> str:
        """How the snapshot was made, in a line for logs and the command's output."""
        if self.changes is None:
            return "built in full"
        removed, added = (sum(counts[i] for counts in self.changes.values()) for i in (0, 1))
        return f"updated the snapshot before: {removed:,} rows taken out, {added:,} put in"


def publish(
    db_path: Path, validation: ValidationReport | None = None, *, full: bool = False
) -> PublishReport:
    """Validate everything new since the last snapshot; if it passes, publish.

    ``validation`` is the report of a validation the caller just ran over every
    stage (the scheduler validates stage by stage, in tasks of their own). The new
    snapshot is the previous one brought up to date (see ``update``) unless ``full``
    is asked for or the previous one cannot be (none yet, made by another version).
    """
    db_path = Path(db_path)
    if not db_path.is_file():  # before the lock, whose folder a mistyped path would leave behind
        raise PublishError(f"no database at {db_path}; run `newsroom ingest` first")
    with _publish_lock(published_dir(db_path)):
        return _publish(db_path, validation, full=full)


def _publish(db_path: Path, validation: ValidationReport | None, *, full: bool) -> PublishReport:
    """``publish``, the folder's lock held."""
    _sweep_debris(published_dir(db_path))
    since = last_published_seq(db_path)
    # Open from before validation to the end of the build: no other process can write a
    # DuckDB file meanwhile (a writer needs it to itself), so what is published is what
    # passed. (A lake locks nothing: the build record is checked again before the switch.)
    source = connect(db_path, read_only=True)
    try:
        report = validation or validate(db_path, since=since)
        if report.since != since or {s.stage for s in report.suites} != set(STAGES):
            raise PublishError("the validation given does not cover every stage since the last snapshot")
        if not report.success:
            raise ValidationFailed(report)
        _check_build(db_path, report)
        marts = [
            row[0]
            for row in source.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' "
                "ORDER BY table_name"
            ).fetchall()
        ]
        if "article_versions" not in marts:
            raise PublishError("no marts to publish; run `newsroom transform` first")
        built_up_to = source.execute(
            f"SELECT event_seq, recorded_at FROM raw.events WHERE event_seq = {_built_up_to_sql(source)}"
        ).fetchall()
        last_seq, last_at = built_up_to[0] if built_up_to else (0, None)
        [(log_last,)] = source.execute("SELECT coalesce(max(event_seq), 0) FROM raw.events").fetchall()
        if report.up_to is not None and log_last > report.up_to:
            # Events recorded after the raw stage read the log (an ingest between the
            # scheduler's raw validation and its build): checked here, since the build may
            # have taken them in, fetches and all, whatever position the snapshot claims
            # (the least every step reflects: steps that ran before the ingest lack them).
            late = validate(db_path, stages=("raw",), since=report.up_to, build_docs=False)
            if not late.success:
                raise ValidationFailed(late)
        snapshot = _Snapshot(db_path, marts, last_seq, last_at, report, since)
        if not full and published_path(db_path).exists() and _in_step(published_dir(db_path)):
            try:
                return snapshot.build(update=True)
            except (SnapshotOutOfStep, duckdb.Error):
                pass  # another version's, damaged, or rows the update cannot tell apart: build in full
        return snapshot.build(update=False)
    finally:
        source.close()


def _check_build(db_path: Path, report: ValidationReport) -> None:
    """A PublishError unless the marts are those of a build that ended well and is the
    one the report validated."""
    build = read_build_record(db_path)
    if build is None:
        return  # marts built before builds were recorded: nothing to compare
    if build["state"] == "selected":
        raise PublishError(
            "the last dbt build was of a selection (--select), so the other marts may not match it; "
            "run `newsroom transform` without --select, then publish"
        )
    if build["state"] != "built":
        raise PublishError(
            f"the last dbt build {'failed' if build['state'] == 'failed' else 'did not finish'}, so the "
            "marts may be half-built; run `newsroom transform` until it passes, then publish"
        )
    if report.build_id != build["id"]:
        raise PublishError("the marts were built again after they were validated; validate and publish again")


@dataclass(slots=True)
class _Snapshot:
    """One publish: what it publishes and how it builds the files."""

    db_path: Path
    marts: list[str]
    last_seq: int
    last_at: datetime | None
    validation: ValidationReport
    validated_since: int

    def build(self, *, update: bool) -> PublishReport:
        out_dir = published_dir(self.db_path)
        token = uuid.uuid4().hex[:8]
        tmp_db = out_dir / f".{PUBLISHED_NAME}.{token}.tmp"
        # Everything published beside the database (Parquet, the explorer's mirror, the
        # change feeds) goes into a folder of its own per snapshot; `current` is a link
        # switched to the new folder in one rename, so a reader of several files never
        # mixes two snapshots.
        built_at = utcnow()
        snapshot_dir = out_dir / "snapshots" / f"{built_at:%Y%m%dT%H%M%S%f}-{token}"
        previous_dir = (out_dir / "current").resolve()
        previous_mirror = previous_dir / MIRROR_NAME
        tables: dict[str, int] = {}
        changes: dict[str, MartChange] | None = None
        mirror_copy: Future[Path] | None = None
        # Copying the previous mirror (3.6 GB at a million articles) is the kernel's work and
        # the disk's, not Python's: it goes on in a thread while DuckDB compares the marts and
        # writes Parquet. (Started before the published file's copy instead, it gained nothing.)
        copier = ThreadPoolExecutor(1, thread_name_prefix="mirror-copy")
        try:
            (snapshot_dir / "parquet").mkdir(parents=True)
            if update:
                shutil.copyfile(published_path(self.db_path), tmp_db)
                if previous_mirror.is_file():
                    building = snapshot_dir / f".{MIRROR_NAME}.tmp"
                    mirror_copy = copier.submit(shutil.copyfile, previous_mirror, building)
            # Readers as old as DuckDB 1.1 (and the drivers BI tools bundle) open this file.
            with duckdb.connect(
                str(tmp_db), config={**NO_DOWNLOADS, "storage_compatibility_version": STORAGE_VERSION}
            ) as out:
                # Naive timestamps in the marts are UTC; published ones say so.
                out.execute("SET TimeZone = 'UTC'")
                attach_read_only(out, self.db_path, "work")
                if update:
                    changes = _update_marts(out, self.marts)
                else:
                    out.execute("CREATE SCHEMA marts")
                    for mart in self.marts:
                        copy_mart(out, mart)
                for mart in self.marts:
                    tables[mart] = out.execute(f"SELECT count(*) FROM main.{mart}").fetchall()[0][0]
                    write_mart_parquet(
                        out,
                        mart,
                        snapshot_dir / "parquet" / mart,
                        previous_dir / "parquet" / mart,
                        None if changes is None else changes[mart],
                    )
                out.execute("DETACH work")
                if changes is None:
                    build_search_index(out)
                else:
                    update_search_index(
                        out,
                        " UNION ".join(
                            f"SELECT article_id FROM {table}"
                            for change in (changes["articles"], changes["article_versions"])
                            for table in (change.removed_table, change.added_table)
                        ),
                    )
                write_change_feeds(out, snapshot_dir / FEEDS_NAME, updated=built_at)
                self._record(out, built_at, tables, snapshot_dir.name)
                out.execute("CHECKPOINT")
                mirrored = (
                    changes is not None
                    and mirror_copy is not None
                    and update_mirror(out, mirror_copy.result(), snapshot_dir / MIRROR_NAME, changes)
                )
            if not mirrored:
                write_mirror(tmp_db, snapshot_dir / MIRROR_NAME)
            # A lake has no file lock to keep a transform out meanwhile: one that began shows
            # in the build record (written before it touches a mart). Checked before the switch.
            _check_build(self.db_path, self.validation)
        except BaseException:
            # Nothing was switched in: readers still see the snapshot before. Leave no debris
            # (once the copy, if one is going on, has stopped writing into the folder).
            copier.shutdown(cancel_futures=True)
            for debris in (tmp_db, tmp_db.with_name(tmp_db.name + ".wal")):
                debris.unlink(missing_ok=True)
            shutil.rmtree(snapshot_dir, ignore_errors=True)
            raise
        finally:
            copier.shutdown()
        os.replace(tmp_db, published_path(self.db_path))
        _switch_current(out_dir, snapshot_dir)
        return PublishReport(
            published_path(self.db_path),
            out_dir / "parquet",
            self.last_seq or 0,
            tables,
            self.validation,
            None if changes is None else {m: (c.removed, c.added) for m, c in changes.items()},
            mirrored,
        )

    def _record(
        self, out: duckdb.DuckDBPyConnection, built_at: datetime, tables: dict[str, int], snapshot_folder: str
    ) -> None:
        """The snapshot's own row in ``meta.snapshots``: when, up to which event, validated
        how, and the name of its folder of Parquet, mirror and feeds."""
        out.execute("CREATE SCHEMA IF NOT EXISTS meta")
        out.execute(
            """
            CREATE OR REPLACE TABLE meta.snapshots (
                built_at TIMESTAMPTZ, last_event_seq BIGINT, last_event_recorded_at TIMESTAMPTZ,
                validation_success BOOLEAN, validated_since_seq BIGINT, validation JSON, tables JSON,
                snapshot_format INTEGER, snapshot_folder VARCHAR
            )
            """
        )
        out.execute(
            "INSERT INTO meta.snapshots VALUES (?::TIMESTAMP, ?, ?::TIMESTAMP, ?, ?, ?, ?, ?, ?)",
            [
                built_at,
                self.last_seq,
                self.last_at,
                self.validation.success,
                self.validated_since,
                json.dumps(
                    [
                        {
                            "suite": s.suite,
                            "stage": s.stage,
                            "success": s.success,
                            "rows": s.rows,
                            "warnings": [w.expectation for w in s.warnings],
                        }
                        for s in self.validation.suites
                    ]
                ),
                json.dumps(tables),
                SNAPSHOT_FORMAT,
                snapshot_folder,
            ],
        )


def _update_marts(out: duckdb.DuckDBPyConnection, marts: list[str]) -> dict[str, MartChange]:
    """The snapshot ``out`` (a copy of the previous one) brought up to the working marts."""
    formats = out.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'meta' AND table_name = 'snapshots' AND column_name = 'snapshot_format'"
    ).fetchall()
    if not formats or out.execute("SELECT max(snapshot_format) FROM meta.snapshots").fetchall()[0][0] != (
        SNAPSHOT_FORMAT
    ):
        raise SnapshotOutOfStep("the snapshot before was made by another version")
    published = {
        row[0]
        for row in out.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND NOT starts_with(table_name, 'search_')"
        ).fetchall()
    }
    if published != set(marts):
        raise SnapshotOutOfStep("the marts are not the ones the snapshot before holds")
    changes = {}
    for mart in marts:
        columns = _work_columns(out, mart)
        select_list, data_columns = _published_columns(columns)
        expected = out.execute(f"DESCRIBE SELECT {select_list} FROM work.marts.{mart}").fetchall()
        if [row[:2] for row in expected] != [
            row[:2] for row in out.execute(f"DESCRIBE main.{mart}").fetchall()
        ]:
            raise SnapshotOutOfStep(f"{mart} has other columns than in the snapshot before")
        changes[mart] = update_mart(out, mart, select_list, data_columns)
        _describe(out, mart, columns)  # docs may have changed with the version
    return changes


def copy_mart(out: duckdb.DuckDBPyConnection, mart: str) -> None:
    """Mart ``mart`` of the working database (attached as ``work``) into the snapshot
    ``out`` as readers get it: ``main.<mart>`` with its docs, and a ``marts.<mart>`` view."""
    columns = _work_columns(out, mart)
    out.execute(f"CREATE TABLE main.{mart} AS SELECT {_published_columns(columns)[0]} FROM work.marts.{mart}")
    _describe(out, mart, columns)
    # The working database's names keep working: a query written there runs here.
    out.execute(f"CREATE VIEW marts.{mart} AS SELECT * FROM main.{mart}")


def _work_columns(out: duckdb.DuckDBPyConnection, mart: str) -> list[tuple[str, str]]:
    """The columns of the working database's mart (attached as ``work``): names and types."""
    return out.execute(
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = 'work' AND schema_name = 'marts' AND table_name = ? "
        "ORDER BY column_index",
        [mart],
    ).fetchall()


def _describe(out: duckdb.DuckDBPyConnection, mart: str, columns: list[tuple[str, str]]) -> None:
    """The dbt docs of ``mart`` as table and column comments, which BI tools show."""
    docs = model_docs().get(mart)
    if docs is None:
        return
    comments = [(f"TABLE main.{mart}", docs.description)]
    published = {row[0] for row in out.execute(f"DESCRIBE main.{mart}").fetchall()}
    for name, _ in columns:
        text = docs.columns.get(name, "")
        comments.append((f'COLUMN main.{mart}."{name}"', text))
        if f"{name}_json" in published:
            comments.append((f'COLUMN main.{mart}."{name}_json"', f"{name} as JSON text. {text}".strip()))
    for target, text in comments:
        if text:
            out.execute(f"COMMENT ON {target} IS '{text.replace(chr(39), chr(39) * 2)}'")


def _published_columns(columns: list[tuple[str, str]]) -> tuple[str, list[str]]:
    """The select list that turns a mart's columns into what readers get: timestamps
    marked UTC, 64-bit integers for sums, and a JSON text companion (``<name>_json``)
    beside every list, map or struct for tools that cannot read nested types; and the
    columns that carry the data (every one but the companions), quoted."""
    expressions, data_columns = [], []
    for name, data_type in columns:
        quoted = '"' + name.replace('"', '""') + '"'
        data_columns.append(quoted)
        if data_type == "TIMESTAMP":
            expressions.append(f"CAST({quoted} AS TIMESTAMPTZ) AS {quoted}")
        elif data_type in ("HUGEINT", "UHUGEINT"):
            expressions.append(f"CAST({quoted} AS BIGINT) AS {quoted}")
        elif data_type.endswith("]") or data_type.startswith(("MAP(", "STRUCT(")):
            companion = '"' + (name + "_json").replace('"', '""') + '"'
            expressions += [quoted, f"CAST(to_json({quoted}) AS VARCHAR) AS {companion}"]
        else:
            expressions.append(quoted)
    return ", ".join(expressions), data_columns


def _built_up_to_sql(con: duckdb.DuckDBPyConnection) -> str:
    """The last article event that every derived table reflects.

    The snapshot claims that position, not the log's newest event: an ingest
    between two steps of a run (entities, threads, dbt build, publish) appends
    events some tables lack, and the next validation must still cover them.
    Claiming too little only validates a few events twice.
    """
    # An empty table reflects nothing: 0, not NULL, which least() would skip.
    positions = ["coalesce((SELECT max(event_seq) FROM marts.article_versions), 0)"]
    enrich = {
        row[0]
        for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'enrich'"
        ).fetchall()
    }
    if "batches" in enrich:
        positions.append("coalesce((SELECT max(last_event_seq) FROM enrich.batches), 0)")
    if "thread_assignments" in enrich:
        positions.append("coalesce((SELECT max(event_seq) FROM enrich.thread_assignments), 0)")
    return f"least({', '.join(positions)})"


@contextmanager
def _publish_lock(out_dir: Path, timeout: float | None = None) -> Iterator[None]:
    """One publish at a time into ``out_dir``: two at once would each start from the
    snapshot before, and one's clean-up could remove the folder the other is building.
    An exclusive lock on ``publish.lock`` in it, which the system releases if the
    process dies. (Where there are no such locks, Windows, publishes are not guarded.)"""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "publish.lock", "a") as handle:
        if fcntl is not None:
            timeout = PUBLISH_LOCK_TIMEOUT if timeout is None else timeout
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise PublishError(
                            f"another publish into {out_dir} has been running for more than {timeout:g} s"
                        ) from None
                    time.sleep(0.2)
        yield  # released as the file closes


def _sweep_debris(out_dir: Path) -> None:
    """Remove what a publish killed part way left in ``out_dir`` (its half-built file, the
    links it was about to switch in, its snapshot's folder): no publish is running beside
    this one. A folder newer than ``current``'s (names sort by time) was never switched in,
    so no reader is in it; kept, each would hold a copy of the mirror until two publishes
    had gone through."""
    for leftover in out_dir.glob(".*.tmp*"):
        if leftover.is_symlink() or leftover.is_file():
            leftover.unlink(missing_ok=True)
    current = out_dir / "current"
    in_use = os.readlink(current).rsplit("/", 1)[-1] if current.is_symlink() else ""
    snapshots = out_dir / "snapshots"
    for folder in snapshots.iterdir() if snapshots.is_dir() else ():
        if folder.name > in_use:
            shutil.rmtree(folder, ignore_errors=True)


def _in_step(out_dir: Path) -> bool:
    """Whether the published file and ``current`` are of one snapshot. A publish killed
    between switching the one and the other leaves them apart: the next is built in
    full, or Parquet and the mirror would go on missing what that one changed."""
    try:
        with duckdb.connect(str(out_dir / PUBLISHED_NAME), read_only=True, config=NO_DOWNLOADS) as con:
            folders = con.execute("SELECT max(snapshot_folder) FROM meta.snapshots").fetchall()
    except duckdb.Error:
        return False  # another format (no folder recorded) or damaged: built in full anyway
    return bool(folders and folders[0][0]) and folders[0][0] == (out_dir / "current").resolve().name


def _switch_current(out_dir: Path, snapshot_dir: Path) -> None:
    """Point ``current`` at the new snapshot's folder.

    ``parquet``, ``feeds`` and the explorer's mirror are fixed links into
    ``current``. The folder before stays for readers still in the middle of it.
    Only folders older than both go (names sort by time), never one a publish
    running beside this one may still be writing.
    """
    current = out_dir / "current"
    previous = os.readlink(current).rsplit("/", 1)[-1] if current.is_symlink() else snapshot_dir.name
    tmp_link = out_dir / f".current.{snapshot_dir.name}.tmp"
    tmp_link.symlink_to(snapshot_dir.relative_to(out_dir), target_is_directory=True)
    os.replace(tmp_link, current)
    for name in ("parquet", FEEDS_NAME, MIRROR_NAME):
        link = out_dir / name
        if link.is_symlink() and os.readlink(link) == f"current/{name}":
            continue
        if link.is_dir() and not link.is_symlink():  # a real folder, from before snapshots had folders
            shutil.rmtree(link)
        tmp_link = out_dir / f".{name}.{snapshot_dir.name}.tmp"
        tmp_link.symlink_to(f"current/{name}")
        os.replace(tmp_link, link)
    oldest_kept = min(previous, snapshot_dir.name)
    for folder in snapshot_dir.parent.iterdir():
        if folder.name < oldest_kept:
            shutil.rmtree(folder, ignore_errors=True)
