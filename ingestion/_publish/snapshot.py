"""Write-audit-publish: a validated, read-only copy of the marts for readers.

The pipeline writes the working database. ``publish`` validates it and only then
builds ``published/newsroom.duckdb`` as a new file and renames it over the old
one, so a reader sees the old snapshot or the new one, never a half-built one,
and a reader holding the old file open is never disturbed (nor does it block us).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ingestion._extensions import forbid_downloads
from ingestion._log.store import connect
from ingestion._quality.expectations import STAGES
from ingestion._quality.validate import ValidationReport, validate
from ingestion._sources.dates import utcnow
from ingestion.exceptions import PublishError, ValidationFailed

PUBLISHED_NAME = "newsroom.duckdb"


def published_dir(db_path: Path) -> Path:
    return Path(db_path).parent / "published"


def published_path(db_path: Path) -> Path:
    return published_dir(db_path) / PUBLISHED_NAME


def last_published_seq(db_path: Path) -> int:
    """The last event_seq the current snapshot was built from (0 when none)."""
    path = published_path(db_path)
    if not path.exists():
        return 0
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT max(last_event_seq) FROM meta.snapshots").fetchall()[0][0] or 0


@dataclass(slots=True)
class PublishReport:
    path: Path
    parquet_dir: Path
    last_event_seq: int
    tables: dict[str, int]
    validation: ValidationReport


def publish(db_path: Path, validation: ValidationReport | None = None) -> PublishReport:
    """Validate everything new since the last snapshot; if it passes, publish.

    ``validation`` is the report of a validation the caller just ran over every
    stage (the scheduler validates stage by stage, in tasks of their own).
    """
    db_path = Path(db_path)
    since = last_published_seq(db_path)
    report = validation or validate(db_path, since=since)
    if report.since != since or {s.stage for s in report.suites} != set(STAGES):
        raise PublishError("the validation given does not cover every stage since the last snapshot")
    if not report.success:
        raise ValidationFailed(report)
    out_dir = published_dir(db_path)
    token = uuid.uuid4().hex[:8]
    tmp_db = out_dir / f".{PUBLISHED_NAME}.{token}.tmp"
    # Each snapshot's Parquet files get a folder of their own; `parquet` is a link
    # switched to the new folder in one rename, so a dashboard reading several
    # files never mixes two snapshots.
    snapshot_parquet = out_dir / "snapshots" / f"{utcnow():%Y%m%dT%H%M%S%f}-{token}"
    source = connect(db_path, read_only=True)
    try:
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
    finally:
        source.close()
    last_seq, last_at = built_up_to[0] if built_up_to else (0, None)

    tables: dict[str, int] = {}
    snapshot_parquet.mkdir(parents=True)
    with duckdb.connect(str(tmp_db)) as out:
        forbid_downloads(out)
        out.execute(f"ATTACH '{db_path.resolve()}' AS work (READ_ONLY)")
        out.execute("CREATE SCHEMA marts")
        for mart in marts:
            out.execute(f"CREATE TABLE marts.{mart} AS SELECT * FROM work.marts.{mart}")
            tables[mart] = out.execute(f"SELECT count(*) FROM marts.{mart}").fetchall()[0][0]
            out.execute(
                f"COPY marts.{mart} TO '{snapshot_parquet / mart}.parquet' (FORMAT parquet, COMPRESSION zstd)"
            )
        out.execute("DETACH work")
        out.execute("CREATE SCHEMA meta")
        out.execute(
            """
            CREATE TABLE meta.snapshots (
                built_at TIMESTAMP, last_event_seq BIGINT, last_event_recorded_at TIMESTAMP,
                validation_success BOOLEAN, validated_since_seq BIGINT, validation JSON, tables JSON
            )
            """
        )
        out.execute(
            "INSERT INTO meta.snapshots VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                utcnow(),
                last_seq,
                last_at,
                report.success,
                since,
                json.dumps(
                    [
                        {
                            "suite": s.suite,
                            "stage": s.stage,
                            "success": s.success,
                            "rows": s.rows,
                            "warnings": [w.expectation for w in s.warnings],
                        }
                        for s in report.suites
                    ]
                ),
                json.dumps(tables),
            ],
        )
        out.execute("CHECKPOINT")
    os.replace(tmp_db, published_path(db_path))
    parquet_dir = _switch_parquet_link(out_dir, snapshot_parquet)
    return PublishReport(published_path(db_path), parquet_dir, last_seq or 0, tables, report)


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


def _switch_parquet_link(out_dir: Path, snapshot_parquet: Path) -> Path:
    """Point ``parquet`` at the new snapshot's folder.

    The folder before stays for readers still in the middle of it. Only folders
    older than both go (names sort by time), never one a publish running beside
    this one may still be writing.
    """
    link = out_dir / "parquet"
    if link.is_dir() and not link.is_symlink():  # a real folder, from before snapshots had folders
        shutil.rmtree(link)
    previous = os.readlink(link).rsplit("/", 1)[-1] if link.is_symlink() else snapshot_parquet.name
    tmp_link = out_dir / f".parquet.{snapshot_parquet.name}.tmp"
    tmp_link.symlink_to(snapshot_parquet.relative_to(out_dir), target_is_directory=True)
    os.replace(tmp_link, link)
    oldest_kept = min(previous, snapshot_parquet.name)
    for folder in snapshot_parquet.parent.iterdir():
        if folder.name < oldest_kept:
            shutil.rmtree(folder, ignore_errors=True)
    return link
