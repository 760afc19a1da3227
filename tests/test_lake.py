"""The working database in DuckLake: the catalog in a real PostgreSQL started here on
127.0.0.1, the data files in a folder. Writers in several processes at once, readers
meanwhile, a writer killed mid-run and run again; then the whole pipeline on the lake
against the same events in the DuckDB file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from datetime import datetime
from pathlib import Path

import duckdb
import psycopg
import pytest

from ingestion._demo.airflow import airflow_environment, prepare_airflow, run_airflow
from ingestion._demo.run import DEMO_DIR, demo_rounds
from ingestion._derive.transform import transform
from ingestion._log.lake import LAKE_ALIAS, read_lake
from ingestion._log.store import EventStore, PendingEvent, connect
from ingestion._log.verify import verify
from ingestion._publish.snapshot import publish, published_path
from ingestion.exceptions import ConfigError, StoreError

from .conftest import run_cli
from .services import PostgresServer, RedisServer, free_port
from .test_invariants_demo import derived_tables, differences

#: A backfill in its own process, committing every CHUNK lines (the default, 25,000,
#: would load these archives in one transaction: nothing to interrupt).
_BACKFILL = """
import sys
from pathlib import Path
import ingestion._log.backfill as backfill
backfill.CHUNK_LINES = 200
backfill.backfill(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), lock_timeout=120)
"""


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


def new_lake(postgres: PostgresServer, folder: Path, name: str) -> Path:
    """A new, empty lake: its own catalog database, its files under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    lake = folder / "newsroom.lake"
    lake.write_text(json.dumps({"catalog": postgres.create_database(name), "data_path": "lake-files"}))
    return lake


def archive(path: Path, source: str, lines: int) -> Path:
    with path.open("w") as out:
        for i in range(lines):
            out.write(json.dumps({"guid": f"{source}-{i}", "title": f"{source} headline {i}"}) + "\n")
    return path


def start_backfill(archive_path: Path, source: str, lake: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _BACKFILL, str(archive_path), source, str(lake)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def articles_by_source(lake: Path) -> dict[str, tuple[int, int]]:
    """Per source: article events and distinct articles."""
    with connect(lake, read_only=True) as con:
        rows = con.execute(
            "SELECT source_id, count(*), count(DISTINCT stream_id) FROM raw.events "
            "WHERE starts_with(event_type, 'article.') GROUP BY 1"
        ).fetchall()
    return {source: (events, streams) for source, events, streams in rows}


def test_two_writers_readers_meanwhile_and_a_writer_killed_mid_run(postgres, tmp_path: Path) -> None:
    lake = new_lake(postgres, tmp_path / "shared", "writers")
    archives = {name: archive(tmp_path / f"{name}.jsonl", name, 1_000) for name in ("left", "right")}
    readings: list[str] = []
    writing = threading.Event()
    writing.set()

    def read_while_writing() -> None:
        # Each reading is one complete snapshot: verifiable, never half a commit.
        deadline = time.monotonic() + 300
        while writing.is_set() and time.monotonic() < deadline:
            try:
                report = verify(lake)
            except StoreError as exc:  # the first writer may not have created the log yet
                readings.append(f"unreadable: {exc}")
            else:
                readings.append("ok" if report.ok else f"problems: {report.problems}")

    reader = threading.Thread(target=read_while_writing)
    writers = [start_backfill(path, name, lake) for name, path in archives.items()]
    reader.start()
    try:
        for writer in writers:
            _, stderr = writer.communicate(timeout=300)
            assert writer.returncode == 0, stderr[-2000:]

        # A third writer is killed between two of its commits, then run again.
        killed_path = archive(tmp_path / "killed.jsonl", "killed", 3_000)
        killed = start_backfill(killed_path, "killed", lake)
        deadline = time.monotonic() + 120
        while articles_by_source(lake).get("killed", (0, 0))[0] == 0:
            assert killed.poll() is None, "the writer finished before it could be killed"
            assert time.monotonic() < deadline, "the writer committed nothing in two minutes"
            time.sleep(0.05)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=60)
        stored_when_killed = articles_by_source(lake)["killed"][0]
        assert 0 < stored_when_killed < 3_000
        retried = start_backfill(killed_path, "killed", lake)
        _, stderr = retried.communicate(timeout=300)
        assert retried.returncode == 0, stderr[-2000:]
    finally:
        writing.clear()
        reader.join(timeout=330)

    assert articles_by_source(lake) == {
        name: (n, n) for name, n in (("left", 1_000), ("right", 1_000), ("killed", 3_000))
    }
    report = verify(lake)
    assert report.ok, report.problems
    assert readings.count("ok") >= 3, readings[:5]
    assert [r for r in readings if r != "ok" and not r.startswith("unreadable")] == []


def test_the_pipeline_on_a_lake_builds_what_the_duckdb_file_builds(
    postgres, demo_data_dir: Path, tmp_path: Path
) -> None:
    """The demo's events copied into a lake in two steps (all but the last run, then the
    rest with `newsroom copy-log`), transformed after each: the lake's marts and
    enrichment tables equal those the demo built round by round in its DuckDB file; then
    validated and published."""
    demo_db = demo_data_dir / "newsroom.duckdb"
    lake = new_lake(postgres, tmp_path / "shared", "pipeline")
    with duckdb.connect(str(demo_db), read_only=True) as demo:
        (last_run_starts,) = demo.execute(
            "SELECT min(event_seq) FROM raw.events WHERE run_id = "
            "(SELECT arg_max(run_id, event_seq) FROM raw.events)"
        ).fetchone()
    with EventStore(lake) as store, store.transaction():
        store.con.execute(f"ATTACH '{demo_db}' AS demo (READ_ONLY)")
        store.con.execute(
            f"INSERT INTO {LAKE_ALIAS}.raw.events SELECT * FROM demo.raw.events "
            f"WHERE event_seq < {last_run_starts} ORDER BY event_seq"
        )
    assert transform(lake).success
    # The rest as an operator moves a log: `newsroom copy-log` takes what the lake lacks.
    result = run_cli("copy-log", "--db", str(demo_db), str(lake))
    assert result.returncode == 0, result.stderr
    assert "raw bodies" in result.stdout
    report = transform(lake)
    assert report.success, report.failures

    built_in_the_file = derived_tables(demo_db)
    assert differences(built_in_the_file, derived_tables(lake)) == []
    assert verify(lake).ok
    report = publish(lake)
    assert report.tables == {
        name.removeprefix("marts."): len(rows)
        for name, rows in built_in_the_file.items()
        if name.startswith("marts.")
    }
    with duckdb.connect(str(published_path(lake)), read_only=True) as published:
        assert published.execute("SELECT count(*) FROM articles").fetchall() == [
            (len(built_in_the_file["marts.articles"]),)
        ]


def test_a_lake_description_is_checked_and_a_missing_lake_is_one_line(postgres, tmp_path: Path) -> None:
    bad = tmp_path / "bad.lake"
    for text in (
        "catalog: [1, 2]\ndata_path: x\n",
        "just text",
        "catalog: x\n",
        "catalog: 'a\x01b'\ndata_path: x\n",
    ):
        bad.write_text(text)
        with pytest.raises(ConfigError, match=r"bad\.lake"):
            verify(bad)
    empty = new_lake(postgres, tmp_path / "empty", "never_written")
    result = run_cli("verify", "--db", str(empty))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"newsroom verify: error: the lake {empty} holds no event log yet; run `newsroom ingest` first"
    ]


def test_a_writer_that_lost_its_lock_session_stores_nothing(postgres, tmp_path: Path) -> None:
    lake = new_lake(postgres, tmp_path, "lost_lock")
    event = PendingEvent("article.published", "stream-1", "wire", {"identity": "1", "title": "Headline"})
    with EventStore(lake) as store:
        # The lock's session ends, as when the server restarts or an administrator ends it.
        with psycopg.connect(json.loads(lake.read_text())["catalog"], autocommit=True) as admin:
            ended = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                "WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
            ).fetchone()[0]
        assert ended == 1
        with pytest.raises(StoreError, match="lost the writer lock"), store.transaction():
            store.append([event], recorded_at=datetime(2026, 3, 10, 12), run_id="lost-lock")
    with connect(lake, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.events").fetchall() == [(0,)]
    with EventStore(lake) as store, store.transaction():  # a new writer takes the lock and goes on
        store.append([event], recorded_at=datetime(2026, 3, 10, 12), run_id="again")
    assert verify(lake).ok


def test_airflow_with_celery_workers_and_postgresql_runs_the_dags_on_the_lake(
    postgres, tmp_path: Path
) -> None:
    """The deployment as a whole: Airflow's scheduler, DAG processor and API server with
    PostgreSQL metadata, the CeleryExecutor with a Redis broker and two workers, run
    ingest and then transform (triggered by the log's asset) on the lake while a reader
    verifies it; the tasks run on both Celery workers, and the published snapshot has
    the demo's articles."""
    data_dir = tmp_path / "shared"
    lake = new_lake(postgres, data_dir, "airflow_lake")
    feeds = data_dir / "feeds"
    shutil.copytree(demo_rounds()[0], feeds)
    config = data_dir / "feeds.yml"
    config.write_text((DEMO_DIR / "feeds.yml").read_text().replace("{base}", str(feeds)))
    postgres.create_database("airflow")
    metadata = f"postgresql+psycopg://newsroom@127.0.0.1:{postgres.port}/airflow"
    port = free_port()
    with RedisServer() as redis:
        env = {
            **airflow_environment(data_dir, lake, config),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata,
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": redis.url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{metadata}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": "a-secret-for-this-test-only",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        }
        prepare_airflow(env)
        components = {
            "scheduler": ["scheduler"],
            "dag-processor": ["dag-processor"],
            "api-server": ["api-server"],
            **{
                f"worker-{n}": [
                    "celery",
                    "worker",
                    "--concurrency",
                    "1",
                    "--celery-hostname",
                    f"worker{n}@%h",
                ]
                for n in (1, 2)
            },
        }
        logs = {name: tmp_path / f"{name}.log" for name in components}
        outputs = {name: log.open("w") for name, log in logs.items()}
        # Both workers run on this machine: each gives its tasks its own host name.
        worker_names = {
            f"worker-{n}": {
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.services.worker_hostname",
                "NEWSROOM_TEST_WORKER": f"worker{n}",
            }
            for n in (1, 2)
        }
        processes = {
            name: subprocess.Popen(
                [sys.executable, "-m", "airflow", *args],
                env={**os.environ, **env, **worker_names.get(name, {})},
                stdout=outputs[name],
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            for name, args in components.items()
        }
        readings: list[str] = []

        def failure() -> str:
            return "\n".join(f"--- {name}\n{_tail(log)}" for name, log in logs.items())

        try:
            deadline = time.monotonic() + 600
            while "newsroom_transform" not in _dag_ids(postgres):
                assert time.monotonic() < deadline, failure()
                assert all(process.poll() is None for process in processes.values()), failure()
                time.sleep(1)
            for dag_id in ("newsroom_transform", "newsroom_ingest"):  # unpausing ingest starts a run
                result = run_airflow(["dags", "unpause", dag_id], env)
                assert result.returncode == 0, result.stderr[-2000:]
            while "success" not in _run_states(postgres, "newsroom_transform"):
                assert time.monotonic() < deadline, failure()
                states = _run_states(postgres, "newsroom_ingest") + _run_states(
                    postgres, "newsroom_transform"
                )
                assert "failed" not in states, failure()
                with suppress(StoreError):  # the log may not exist yet
                    report = verify(lake)
                    readings.append("ok" if report.ok else f"problems: {report.problems}")
                time.sleep(1)
        finally:
            for process in processes.values():
                os.killpg(process.pid, signal.SIGTERM)
            for process in processes.values():
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=60)
            for output in outputs.values():
                output.close()

    # Every task went through Celery: each task instance carries its Celery task id.
    with psycopg.connect(postgres.conninfo("airflow")) as con:
        rows = con.execute(
            "SELECT task_id, state, external_executor_id, hostname FROM task_instance"
        ).fetchall()
    assert {state for _, state, _, _ in rows} <= {"success", "skipped"}, rows
    ran = [(task, celery_id) for task, state, celery_id, _ in rows if state == "success"]
    assert "extract_entity_partition" in {task for task, _ in ran}, rows
    assert all(celery_id for _, celery_id in ran), rows
    # ...and the work spread over both workers (each reports its own name as the task's host).
    assert {host for _, state, _, host in rows if state == "success"} == {"worker1", "worker2"}, rows
    assert verify(lake).ok
    assert readings and set(readings) == {"ok"}, readings[:5]
    with duckdb.connect(str(published_path(lake)), read_only=True) as published:
        assert published.execute("SELECT count(*) FROM articles").fetchall() == [(45,)]


def _run_states(postgres: PostgresServer, dag_id: str) -> list[str]:
    with psycopg.connect(postgres.conninfo("airflow")) as con:
        rows = con.execute("SELECT state FROM dag_run WHERE dag_id = %s", [dag_id]).fetchall()
    return [state for (state,) in rows]


def _dag_ids(postgres: PostgresServer) -> set[str]:
    with psycopg.connect(postgres.conninfo("airflow")) as con:
        return {dag_id for (dag_id,) in con.execute("SELECT dag_id FROM dag").fetchall()}


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


def test_a_lake_description_nested_or_looping_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for text in (
        "catalog: " + "[" * 4000 + "]" * 4000 + "\ndata_path: x\n",
        "catalog: c\ndata_path: loop/sub\n",
    ):
        description = tmp_path / "odd.lake"
        description.write_text(text)
        with pytest.raises(ConfigError, match=r"odd\.lake"):
            read_lake(description)


def test_a_lake_folder_may_start_at_home(tmp_path: Path) -> None:
    description = tmp_path / "home.lake"
    description.write_text("catalog: dbname=x host=127.0.0.1\ndata_path: ~/newsroom-lake\n")
    assert read_lake(description).data_path == Path.home() / "newsroom-lake"
