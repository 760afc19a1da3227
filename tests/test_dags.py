"""The Airflow DAGs: they load, are configured as promised, and run end to end
with `airflow dags test` against feeds served on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import duckdb
import pytest
import yaml

from ingestion._demo.airflow import DAGS_FOLDER, airflow_environment, prepare_airflow, run_dag_test
from ingestion._demo.localserver import Route
from ingestion._publish.snapshot import last_published_seq, published_path

from .feeds import item, rss

DAG_IDS = {"newsroom_ingest", "newsroom_transform", "newsroom_maintenance"}
#: What Airflow shows as an error in a task log: its own `[error ]` lines, and
#: everything a task writes to stderr (logged at ERROR level).
ERROR_LINE = re.compile(r"\[error\s*\]|\bERROR\b|leaked semaphore", re.IGNORECASE)


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if ERROR_LINE.search(line)]


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    env = airflow_environment(tmp_path_factory.mktemp("dagbag"), Path("unused.duckdb"))
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        from airflow.dag_processing.dagbag import DagBag

        started = time.monotonic()
        bag = DagBag(dag_folder=str(DAGS_FOLDER))
        bag.parse_seconds = time.monotonic() - started
        yield bag
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_dags_load_without_import_errors_and_quickly(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == DAG_IDS
    assert dagbag.parse_seconds < 2.0


def test_dags_have_tags_docs_schedules_and_retries_where_intended(dagbag) -> None:
    for dag in dagbag.dags.values():
        assert "newsroom" in dag.tags and dag.doc_md
        assert dag.catchup is False and dag.max_active_runs == 1
        # No task can hold the writer's slot (or the next rounds) for good.
        assert all(task.execution_timeout for task in dag.tasks), dag.dag_id
    ingest = dagbag.dags["newsroom_ingest"]
    assert "seconds=900" in repr(ingest.timetable)  # every 15 minutes by default
    assert ingest.get_task("fetch_host").retries == 3
    assert ingest.get_task("record_events").pool == "duckdb_writer"
    assert ingest.get_task("plan_fetches").pool != "duckdb_writer"  # plans without the lock
    assert ingest.get_task("record_events").outlets == []  # the asset is updated only for new articles
    assert [a.name for a in ingest.get_task("update_event_log_asset").outlets] == ["newsroom_event_log"]
    transform = dagbag.dags["newsroom_transform"]
    assert "newsroom://event-log" in repr(transform.timetable)
    for task_id in ("validate_raw", "validate_staging", "validate_marts", "publish"):
        assert transform.get_task(task_id).retries == 0
        assert transform.get_task(task_id).pool == "duckdb_writer"
    assert "0 0 * * *" in repr(dagbag.dags["newsroom_maintenance"].timetable)


def test_the_raw_batch_is_validated_before_anything_is_built_from_it(dagbag) -> None:
    transform = dagbag.dags["newsroom_transform"]
    first_steps = transform.get_task("plan_entity_partitions").get_flat_relative_ids(upstream=True)
    assert first_steps == {"validate_raw"}
    built_after = transform.get_task("validate_staging").get_flat_relative_ids(upstream=True)
    entities = {"plan_entity_partitions", "extract_entity_partition", "merge_entities"}
    assert {"validate_raw", *entities, "assign_threads", "dbt_build"} <= built_after
    assert transform.get_task("extract_entity_partition").pool != "duckdb_writer"  # they only read
    assert transform.get_task("merge_entities").pool == "duckdb_writer"


def _wire(version: int, status: str) -> bytes:
    return json.dumps(
        [
            {
                "uri": "urn:test:wire:strike",
                "type": "text",
                "version": str(version),
                "pubStatus": status,
                "headlines": [{"value": "Port strike ends"}],
                "language": "en",
                "bodies": [{"role": "main", "contentType": "text/plain", "value": "Dockers return to work."}],
                "firstCreated": "2026-03-10T08:00:00Z",
                "versionCreated": f"2026-03-10T0{7 + version}:00:00Z",
            }
        ]
    ).encode()


@pytest.fixture(scope="module")
def airflow_run(tmp_path_factory):
    """A local Airflow with two sources on a 127.0.0.1 server."""
    from ingestion._demo.localserver import LocalServer

    data_dir = tmp_path_factory.mktemp("airflow") / "data"
    data_dir.mkdir()
    config = data_dir / "feeds.yml"
    with LocalServer() as server:
        config.write_text(
            yaml.safe_dump(
                {
                    "sources": [
                        {"id": "paper", "url": server.url("/rss"), "kind": "rss", "poll_interval_minutes": 0},
                        {
                            "id": "wire",
                            "url": server.url("/wire"),
                            "kind": "ninjs",
                            "poll_interval_minutes": 0,
                        },
                    ]
                }
            )
        )
        env = airflow_environment(data_dir, data_dir / "newsroom.duckdb", config)
        prepare_airflow(env)
        yield server, env, data_dir / "newsroom.duckdb"


def _run(dag_id: str, env: dict) -> None:
    """A successful run whose log has no error line (operators must not learn to ignore them)."""
    result = run_dag_test(dag_id, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert error_lines(result.stdout + result.stderr) == []


def _published(db_path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(published_path(db_path)), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_both_dags_publish_revisions_and_a_withdrawal_and_a_rerun_adds_nothing(airflow_run) -> None:
    server, env, db_path = airflow_run
    server.routes.update(
        {"/rss": Route(rss([item(1), item(2)]), etag=True), "/wire": Route(_wire(1, "usable"))}
    )
    _run("newsroom_ingest", env)
    _run("newsroom_transform", env)
    assert _published(db_path, "SELECT count(*) FROM marts.articles") == [(3,)]

    server.routes.update(
        {
            "/rss": Route(rss([item(1, title="Headline one, updated"), item(2)]), etag=True),
            "/wire": Route(_wire(2, "canceled")),
        }
    )
    _run("newsroom_ingest", env)
    _run("newsroom_transform", env)
    assert _published(db_path, "SELECT status, count(*) FROM marts.articles GROUP BY 1 ORDER BY 1") == [
        ("live", 2),
        ("withdrawn", 1),
    ]
    assert _published(
        db_path,
        "SELECT version, title FROM marts.article_versions WHERE guid = 'urn:test:1' ORDER BY version",
    ) == [(1, "Headline number 1"), (2, "Headline one, updated")]

    with duckdb.connect(str(db_path), read_only=True) as con:
        articles_before = con.execute(
            "SELECT count(*) FROM raw.events WHERE event_type LIKE 'article.%'"
        ).fetchall()
    _run("newsroom_ingest", env)
    _run("newsroom_transform", env)
    with duckdb.connect(str(db_path), read_only=True) as con:
        articles_after = con.execute(
            "SELECT count(*) FROM raw.events WHERE event_type LIKE 'article.%'"
        ).fetchall()
    assert articles_after == articles_before
    assert _published(db_path, "SELECT count(*) FROM marts.article_versions") == [(5,)]


def test_a_failed_validation_stops_publish_inside_the_dag(airflow_run) -> None:
    server, env, db_path = airflow_run
    server.routes.setdefault("/rss", Route(rss([item(1)])))
    server.routes.setdefault("/wire", Route(_wire(1, "usable")))
    _run("newsroom_ingest", env)
    _run("newsroom_transform", env)
    published_before = last_published_seq(db_path)
    with duckdb.connect(str(db_path)) as con:  # an event whose payload hash is not a hash
        con.execute(
            "INSERT INTO raw.events SELECT * REPLACE (event_seq + 1 AS event_seq, "
            "'tampered-' || event_id AS event_id, stream_version + 1 AS stream_version, "
            "'not-a-hash' AS payload_hash) FROM raw.events ORDER BY event_seq DESC LIMIT 1"
        )
    result = run_dag_test("newsroom_transform", env)
    assert result.returncode != 0
    assert "payload_hash" in result.stdout + result.stderr
    assert last_published_seq(db_path) == published_before


def test_telemetry_is_off_in_everything_we_run(tmp_path: Path) -> None:
    from ingestion._derive.transform import DBT_PROJECT
    from ingestion._quality.validate import GX_DIR

    env = airflow_environment(tmp_path, tmp_path / "x.duckdb")
    assert env["AIRFLOW__USAGE_DATA_COLLECTION__ENABLED"] == "False"
    assert env["SCARF_ANALYTICS"] == "false" and env["DO_NOT_TRACK"] == "1"
    assert env["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false" and env["GX_ANALYTICS_ENABLED"] == "false"
    assert (
        yaml.safe_load((DBT_PROJECT / "dbt_project.yml").read_text())["flags"]["send_anonymous_usage_stats"]
        is False
    )
    assert yaml.safe_load((GX_DIR / "great_expectations.yml").read_text())["analytics_enabled"] is False
