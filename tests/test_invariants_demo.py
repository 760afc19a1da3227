"""The product's promises, on the bundled demo feeds so that every clone runs them:
incremental builds equal a full refresh, and everything derived, dropped and rebuilt
from the event log alone (a lost threading state included), gives identical tables."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ingestion._derive.threads import state_path
from ingestion._derive.transform import run_dbt, transform
from ingestion._log.store import connect

from .conftest import copy_data_dir

DERIVED_SCHEMAS = ["enrich", "staging", "intermediate", "marts"]
#: What a rebuild must reproduce: every mart, and the enrichment tables they are built from.
COMPARED_SCHEMAS = ("marts", "enrich")
#: How the work was split into runs, not what it produced: one row per extraction run.
RUN_BOOKKEEPING = {"enrich.batches"}


@pytest.fixture(scope="module")
def work_db(demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the demo, built round by round; the tests below rebuild it in place."""
    return copy_data_dir(demo_data_dir, tmp_path_factory.mktemp("invariants"))


@pytest.fixture(scope="module")
def built_round_by_round(work_db: Path) -> dict[str, list[tuple]]:
    """The derived tables as the incremental builds left them (taken before any rebuild)."""
    return derived_tables(work_db)


def derived_tables(db_path: Path) -> dict[str, list[tuple]]:
    with connect(db_path, read_only=True) as con:
        tables = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema IN ? AND table_type = 'BASE TABLE' ORDER BY 1",
            [list(COMPARED_SCHEMAS)],
        ).fetchall()
        return {
            name: con.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall()
            for (name,) in tables
            if name not in RUN_BOOKKEEPING
        }


def build(db_path: Path, **options: bool) -> None:
    report = transform(db_path, **options)
    assert report.success, report.failures


def _hashable(value: object) -> object:
    """A row (or value) with its MAP/STRUCT dicts and LIST lists as tuples, so it fits in a set."""
    if isinstance(value, dict):
        return tuple(sorted((key, _hashable(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_hashable(item) for item in value)
    return value


def differences(before: dict[str, list[tuple]], after: dict[str, list[tuple]]) -> list[str]:
    """Table by table, what a rebuild changed (readable when the test fails)."""
    problems = [f"{name}: missing after the rebuild" for name in before.keys() - after.keys()]
    problems += [f"{name}: new after the rebuild" for name in after.keys() - before.keys()]
    for name in sorted(before.keys() & after.keys()):
        if before[name] != after[name]:
            rows_before, rows_after = set(map(_hashable, before[name])), set(map(_hashable, after[name]))
            lost, gained = (
                sorted(rows_before - rows_after, key=repr),
                sorted(rows_after - rows_before, key=repr),
            )
            problems.append(
                f"{name}: {len(lost)} rows lost, {len(gained)} gained, e.g. {lost[:1]} {gained[:1]}"
            )
    return problems


def test_the_demo_exercises_revisions_withdrawals_entities_and_threads(
    built_round_by_round: dict[str, list[tuple]], work_db: Path
) -> None:
    # Equal empty tables would prove nothing.
    assert all(built_round_by_round[f"marts.{mart}"] for mart in ("articles", "entities", "story_threads"))
    with duckdb.connect(str(work_db), read_only=True) as con:
        revised, withdrawn = con.execute(
            "SELECT count(*) FILTER (WHERE version_count > 1), count(*) FILTER (WHERE status = 'withdrawn') "
            "FROM marts.articles"
        ).fetchall()[0]
        mismatched_counts = con.execute(
            """
            SELECT count(*) FROM marts.articles a
            FULL JOIN (SELECT stream_id, count(*) AS events FROM raw.events
                       WHERE starts_with(event_type, 'article.') GROUP BY 1) e ON e.stream_id = a.article_id
            WHERE a.version_count IS DISTINCT FROM e.events
            """
        ).fetchall()[0][0]
    assert revised > 0 and withdrawn > 0
    assert mismatched_counts == 0, "every article stream is one row with one version per event"


def test_incremental_runs_equal_a_full_refresh(
    built_round_by_round: dict[str, list[tuple]], work_db: Path
) -> None:
    build(work_db, full_refresh=True)
    assert differences(built_round_by_round, derived_tables(work_db)) == []


def test_replay_from_the_event_log_gives_identical_tables(
    built_round_by_round: dict[str, list[tuple]], work_db: Path
) -> None:
    with duckdb.connect(str(work_db)) as con:
        for schema in DERIVED_SCHEMAS:
            con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    state_path(work_db).unlink(missing_ok=True)
    build(work_db)
    assert differences(built_round_by_round, derived_tables(work_db)) == []


def test_the_dbt_unit_tests_pass(work_db: Path) -> None:
    """The builds above leave the unit tests out (they check SQL, not data): here they run."""
    report = run_dbt("test", work_db, "--select", "test_type:unit")
    assert report.success, report.failures
    assert report.counts[("unit_test", "pass")] >= 3
