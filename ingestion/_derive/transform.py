"""Running the dbt project (in-process, through dbtRunner) over the event log."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ingestion._files import write_atomically
from ingestion._log.lake import is_lake, read_lake
from ingestion._log.store import connect
from ingestion.exceptions import ConfigError, TransformError

#: The dbt project beside this package (the repository layout).
DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"


def build_record_path(db_path: Path) -> Path:
    """``<db>.build.json``: the last ``dbt build`` of the marts, its id and how it ended
    (``building``, ``built``, ``failed``, or ``selected``: a build of some models only).
    Validation notes the id it checked; publish publishes only marts whose build was
    whole, ended well and is the one validated."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".build.json")


def read_build_record(db_path: Path) -> dict[str, str] | None:
    """The last build's record, or None before any build made one (or if unreadable)."""
    try:
        record = json.loads(build_record_path(db_path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # RecursionError: nesting too deep to read
        return None
    return record if isinstance(record, dict) and {"id", "state"} <= record.keys() else None


def _write_build_record(db_path: Path, build_id: str, state: str) -> None:
    write_atomically(build_record_path(db_path), json.dumps({"id": build_id, "state": state}).encode())


@dataclass(slots=True)
class TransformReport:
    command: str
    success: bool
    #: (resource type, status) -> count, e.g. ("model", "success") -> 6
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def summary(self) -> str:
        parts = [f"{n} {kind} {status}" for (kind, status), n in sorted(self.counts.items())]
        parts.append(f"{self.elapsed_s:.1f} s")
        return f"dbt {self.command}: {'OK' if self.success else 'FAILED'} ({', '.join(parts)})"


def dbt_environment(db_path: Path, *, checked_since: int = 0, project_dir: Path = DBT_PROJECT) -> list[str]:
    """Point dbt at the database and keep every run offline and quiet; the arguments
    that choose the profile's target for it.

    ``checked_since`` (0: everything) is the event after which the history tests
    check rows. It goes to dbt as an environment variable, not a ``--vars`` value:
    dbt parses the whole project again whenever its vars change (2-3 s a build), but
    only the files that read an environment variable when that variable changes."""
    os.environ["NEWSROOM_DB"] = str(Path(db_path).resolve())
    os.environ["NEWSROOM_CHECKED_SINCE"] = str(checked_since)
    os.environ["NEWSROOM_ENTITY_RULES"] = entity_rules_id(project_dir)
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    if not is_lake(db_path):
        return []
    lake = read_lake(db_path)
    os.environ["NEWSROOM_LAKE_URI"] = f"ducklake:postgres:{lake.catalog}"
    os.environ["NEWSROOM_LAKE_DATA_PATH"] = f"{lake.data_path}/"
    return ["--target", "lake"]


def run_dbt(
    command: str, db_path: Path, *extra: str, project_dir: Path = DBT_PROJECT, checked_since: int = 0
) -> TransformReport:
    """Run one dbt command (build, run, test, source freshness, docs generate); tests
    check the rows of events after ``checked_since`` where they can (0: every row)."""
    from dbt.cli.main import dbtRunner

    target = dbt_environment(db_path, checked_since=checked_since, project_dir=project_dir)
    args = [
        *command.split(),
        *target,
        "--project-dir", str(project_dir),
        "--profiles-dir", str(project_dir),
        "--quiet",
        *extra,
    ]  # fmt: skip
    started = time.monotonic()
    try:
        result = dbtRunner().invoke(args)
    finally:
        _release_dbt()
    report = TransformReport(command, bool(result.success), elapsed_s=time.monotonic() - started)
    if result.exception is not None:
        raise TransformError(f"dbt {command} could not run: {result.exception}") from result.exception
    for node_result in getattr(result.result, "results", None) or []:
        node = node_result.node
        kind = getattr(node, "resource_type", "node")
        status = str(node_result.status)
        report.counts[(str(kind), status)] += 1
        if status in ("fail", "error", "runtime error"):
            message = (node_result.message or "").strip().splitlines()
            report.failures.append(f"{node.name}: {message[0] if message else status}")
    return report


def _release_dbt() -> None:
    """Give back what dbt keeps for the life of the process once a command is done.

    dbt-duckdb keeps its DuckDB connection open: close it so the file is free for
    the next writer (or a read-only reader) at once. dbt also keeps its adapter,
    and with it the manifest; both hold named semaphores (``spawn`` multiprocessing
    locks, registered with multiprocessing's resource tracker). They are only
    unlinked when those objects are collected or at a normal interpreter exit, and
    an Airflow task process ends with ``os._exit``: the tracker then warns about
    "leaked semaphore objects" on the task's stderr, which Airflow logs as an error.
    Dropping the adapter and collecting now unlinks them; the next command
    registers a fresh adapter (with the then current settings) anyway."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    from dbt.adapters.factory import reset_adapters

    with contextlib.suppress(Exception):  # no environment was created: nothing to close
        DuckDBConnectionManager.env().close()
    DuckDBConnectionManager.close_all_connections()
    reset_adapters()
    gc.collect()  # the manifest and the adapter reference each other in cycles


def transform(
    db_path: Path,
    *,
    full_refresh: bool = False,
    select: str | None = None,
    entities: bool = True,
    checked_since: int = 0,
) -> TransformReport:
    """Entity extraction and story threading of new article versions (unless the
    caller ran them), then `dbt build` (seeds, models, tests in dependency order).

    ``checked_since`` (the last event readers have seen published) limits the
    history tests to what changed after it; a full refresh checks everything."""
    if entities:
        from ingestion._derive.entities import extract_entities
        from ingestion._derive.threads import assign_threads
        from ingestion._progress import progress_line

        # A backlog (after a backfill) takes minutes: a progress line for each step on stderr.
        print(extract_entities(db_path, on_progress=progress_line("entities")).summary())
        print(assign_threads(db_path, on_progress=progress_line("threads")).summary())
    if not full_refresh and _entity_models_changed(db_path):
        print("entities: the entity models changed since the last build; rebuilding in full")
        full_refresh = True
    _drop_retired(db_path)
    if not full_refresh and (missing := _missing_watermarks(db_path)):
        print(f"transform: {missing} was built before it could be updated incrementally; rebuilding in full")
        full_refresh = True
    extra = ["--full-refresh"] if full_refresh else []
    if select:
        # Only the tests whose every model was built: a test relating a rebuilt model to one
        # left as it was (entity_mentions to entities) would fail on a difference of timing.
        extra += ["--select", with_ancestors(select), "--indirect-selection", "cautious"]
    # A build stopped or failed halfway leaves some marts rebuilt and others not: the
    # record says so until a build ends well (written before dbt touches anything).
    build_id = uuid.uuid4().hex
    _write_build_record(db_path, build_id, "building")
    # Unit tests check the SQL on fixed rows, not the data: the test suite runs them
    # (`dbt test --select test_type:unit`), the scheduler's every build need not.
    report = run_dbt(
        "build",
        db_path,
        *extra,
        "--exclude-resource-type",
        "unit_test",
        checked_since=0 if full_refresh else checked_since,
    )
    # A selection leaves the other marts as they were, not all of one build: not publishable.
    _write_build_record(
        db_path, build_id, "failed" if not report.success else "selected" if select else "built"
    )
    return report


def check_selection(select: str) -> None:
    """A ConfigError for a ``--select`` dbt would fail on with a traceback: a ``path:``
    or ``file:`` selector outside the project (dbt globs it and cannot)."""
    for part in select.replace(",", " ").split():
        method, _, value = part.lstrip("+@0123456789").partition(":")
        if method.split(".")[0] in ("path", "file") and value.startswith("/"):
            raise ConfigError(f"--select {part}: a path selector names a path inside the dbt project")


def with_ancestors(select: str) -> str:
    """A dbt selection with every model it depends on: an incremental model finds its
    new work by comparing with the models before it (a name's resolution, the articles'
    versions), so a mart built on inputs not brought up to date would skip that work
    for good. Each selector gets dbt's ``+`` unless it has one, or is an intersection
    (``a,b``: its parts' ancestors would be a different selection), which is left as
    written."""
    return " ".join(
        part if part.startswith(("+", "@")) or "," in part else f"+{part}" for part in select.split()
    )


#: Tables of models the project no longer has: dbt leaves them behind, so they
#: are dropped here (their space is reused by the next writes).
_RETIRED_MODELS = ("intermediate.int_article_events_unpacked",)
#: Columns incremental models no longer have: an incremental build refuses a table
#: whose columns differ from the model's (on_schema_change: fail), so they are
#: dropped here. The cleaned mentions' ``name`` was read by nothing (``linked_name``
#: is) and took 13 bytes an article.
_RETIRED_COLUMNS = (("intermediate.int_entity_mentions_cleaned", "name"),)


def _drop_retired(db_path: Path) -> None:
    with connect(Path(db_path)) as con:
        for table in _RETIRED_MODELS:
            con.execute(f"DROP TABLE IF EXISTS {table}")
        for table, column in _RETIRED_COLUMNS:
            con.execute(f"ALTER TABLE IF EXISTS {table} DROP COLUMN IF EXISTS {column}")


#: The column each incremental model finds its new work by; in a database built
#: before that model found it so (an upgrade) it is missing, and the run rebuilds in full.
_WATERMARKS = {
    "intermediate.int_entity_names_resolved": "resolved_at_seq",
    "marts.entities": "last_article_event_seq",
    "marts.entity_daily": "last_event_seq",
    "marts.entity_extraction_status": "event_seq",
    "marts.entity_pairs": "last_event_seq",
    "marts.story_threads": "last_event_seq",
    "marts.threads_daily": "last_event_seq",
}


def _missing_watermarks(db_path: Path) -> str | None:
    """The first built model without its watermark column, if any."""
    with connect(Path(db_path), read_only=True) as con:
        built = con.execute(
            "SELECT table_schema || '.' || table_name, list(column_name) FROM information_schema.columns "
            "WHERE table_schema IN ('intermediate', 'marts') GROUP BY ALL"
        ).fetchall()
    columns = dict(built)
    for table, watermark in _WATERMARKS.items():
        if table in columns and watermark not in columns[table]:
            return table
    return None


#: What cleans the entity mentions besides the extractor (int_entity_mentions_cleaned,
#: appended once per article event): its SQL, the macro and the seeds it reads.
_ENTITY_RULE_FILES = (
    "models/intermediate/int_entity_mentions_cleaned.sql",
    "macros/name_key.sql",
    "seeds/demonyms.csv",
    "seeds/name_head_words.csv",
    "seeds/common_words.csv",
)


def entity_rules_id(project_dir: Path = DBT_PROJECT) -> str:
    """A digest of ``_ENTITY_RULE_FILES``, which the cleaned mentions keep (``rules``)."""
    digest = hashlib.sha256()
    for name in _ENTITY_RULE_FILES:
        digest.update((project_dir / name).read_bytes())
    return digest.hexdigest()[:16]


def _entity_models_changed(db_path: Path, project_dir: Path = DBT_PROJECT) -> bool:
    """Whether the built mentions came from other models or were cleaned by other rules
    than the current ones (an upgrade, an edited seed): the incremental models would
    otherwise keep both."""
    import duckdb

    from ingestion._derive.ner import extractor_id

    with connect(Path(db_path), read_only=True) as con:
        try:
            other = con.execute(
                "SELECT 1 FROM intermediate.int_entity_mentions_cleaned "
                "WHERE extractor <> ? OR rules IS DISTINCT FROM ? LIMIT 1",
                [extractor_id(), entity_rules_id(project_dir)],
            ).fetchall()
        except duckdb.CatalogException:  # never built
            return False
        except duckdb.BinderException:  # built before the rules were kept
            return True
    return bool(other)
