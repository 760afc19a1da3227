"""The DAGs as the scheduler runs them: manual runs, rounds with nothing new, and
task logs an operator can trust (no error lines from successful runs)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest
import yaml

from ingestion._demo.airflow import airflow_environment, prepare_airflow, run_dag_test
from ingestion._demo.localserver import LocalServer, Route
from ingestion.exceptions import ConfigError
from ingestion.pipeline import whole_number_setting

from .feeds import item, rss
from .test_dags import error_lines


def _wire(version: int) -> bytes:
    return json.dumps(
        [
            {
                "uri": "urn:test:wire:ferry",
                "type": "text",
                "version": str(version),
                "pubStatus": "usable",
                "headlines": [{"value": f"Ferry timetable, edition {version}"}],
                "language": "en",
                "bodies": [{"role": "main", "contentType": "text/plain", "value": "Crossings resume."}],
                "firstCreated": "2026-03-10T08:00:00Z",
                "versionCreated": f"2026-03-10T0{7 + version}:00:00Z",
            }
        ]
    ).encode()


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    """One local Airflow for the module, two sources polled hourly, and a first
    ingest run: afterwards no source is due for an hour."""
    data_dir = tmp_path_factory.mktemp("hostile_airflow") / "data"
    data_dir.mkdir()
    config = data_dir / "feeds.yml"
    with LocalServer() as server:
        server.routes.update({"/rss": Route(rss([item(1), item(2)]), etag=True), "/wire": Route(_wire(1))})
        config.write_text(
            yaml.safe_dump(
                {
                    "sources": [
                        {
                            "id": "paper",
                            "url": server.url("/rss"),
                            "kind": "rss",
                            "poll_interval_minutes": 60,
                        },
                        {
                            "id": "wire",
                            "url": server.url("/wire"),
                            "kind": "ninjs",
                            "poll_interval_minutes": 60,
                        },
                    ]
                }
            )
        )
        env = airflow_environment(data_dir, data_dir / "newsroom.duckdb", config)
        prepare_airflow(env)
        _run_cleanly("newsroom_ingest", env)
        yield server, env, data_dir / "newsroom.duckdb"


def _run_cleanly(dag_id: str, env: dict[str, str]) -> None:
    """One `airflow dags test` run that succeeds and logs no error line."""
    result = run_dag_test(dag_id, env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert error_lines(output) == []


def _metadata(env: dict[str, str], sql: str, *params: object) -> list[tuple]:
    con = sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db")
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def _event_log_asset_events(env: dict[str, str]) -> int:
    return _metadata(
        env,
        "SELECT count(*) FROM asset_event JOIN asset ON asset.id = asset_event.asset_id "
        "WHERE asset.name = 'newsroom_event_log'",
    )[0][0]


def _last_ingest_run(env: dict[str, str]) -> str:
    return _metadata(env, "SELECT run_id FROM dag_run WHERE dag_id = 'newsroom_ingest' ORDER BY id DESC")[0][
        0
    ]


def _task_states(env: dict[str, str], run_id: str) -> dict[str, str]:
    rows = _metadata(
        env,
        "SELECT task_id, state FROM task_instance WHERE dag_id = 'newsroom_ingest' AND run_id = ?",
        run_id,
    )
    return dict(rows)


def _log_counts(db_path: Path) -> dict[str, int]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return dict(con.execute("SELECT event_type, count(*) FROM raw.events GROUP BY 1").fetchall())


def test_a_manual_run_fetches_every_source_although_none_is_due(airflow_home) -> None:
    server, env, db_path = airflow_home
    before = _log_counts(db_path)
    assets_before = _event_log_asset_events(env)
    server.routes.update(
        {
            "/rss": Route(rss([item(1, title="Headline one, corrected"), item(2)]), etag=True),
            "/wire": Route(_wire(2)),
        }
    )

    _run_cleanly("newsroom_ingest", env)

    after = _log_counts(db_path)
    assert after["feed.fetched"] - before["feed.fetched"] == 2  # both sources, an hour before they are due
    assert after["article.revised"] - before.get("article.revised", 0) == 2
    assert _event_log_asset_events(env) == assets_before + 1
    run_id = _last_ingest_run(env)
    assert _task_states(env, run_id)["update_event_log_asset"] == "success"


def test_a_round_with_no_new_articles_leaves_the_event_log_asset_alone(airflow_home) -> None:
    _, env, db_path = airflow_home
    before = _log_counts(db_path)
    assets_before = _event_log_asset_events(env)

    _run_cleanly("newsroom_ingest", env)  # the feeds are as the previous run left them

    after = _log_counts(db_path)
    assert after["feed.fetched"] - before["feed.fetched"] == 2
    assert {k: v for k, v in after.items() if k.startswith("article.")} == {
        k: v for k, v in before.items() if k.startswith("article.")
    }
    assert _event_log_asset_events(env) == assets_before  # so no transform is scheduled
    run_id = _last_ingest_run(env)
    states = _task_states(env, run_id)
    assert states["record_events"] == "success" and states["update_event_log_asset"] == "skipped"
    (summary,) = _metadata(
        env,
        "SELECT value FROM xcom WHERE dag_id = 'newsroom_ingest' AND run_id = ? "
        "AND task_id = 'record_events' AND key = 'return_value'",
        run_id,
    )
    assert json.loads(summary[0])["article_events"] == 0


#: `dag.test()` of newsroom_ingest with the fetch task of one host failing as a task
#: fails when its worker breaks (here its disk), before it sends a request; no retries.
_ONE_FETCH_TASK_FAILS = """
import sys
from airflow.dag_processing.dagbag import DagBag
from ingestion import pipeline

real_fetch_group = pipeline.fetch_group

def fetch_group(group):
    if "ghost.invalid" in group["hosts"]:
        raise OSError(28, "No space left on device")
    return real_fetch_group(group)

pipeline.fetch_group = fetch_group
dag = DagBag(dag_folder=sys.argv[1]).get_dag("newsroom_ingest")
dag.get_task("fetch_host").partial_kwargs["retries"] = 0
run = dag.test()
print("RUN", run.state, run.run_id)
"""


def test_a_failed_fetch_task_keeps_neither_the_other_hosts_fetches_nor_itself_out_of_the_log(
    airflow_home, tmp_path: Path
) -> None:
    from ingestion._demo.airflow import DAGS_FOLDER

    server, env, db_path = airflow_home
    config = tmp_path / "feeds.yml"
    sources = [
        {"id": "paper", "url": server.url("/rss"), "kind": "rss"},
        {"id": "ghost", "url": "http://ghost.invalid/feed", "kind": "rss"},
    ]
    config.write_text(yaml.safe_dump({"sources": sources}))
    server.routes["/rss"] = Route(rss([item(1), item(2), item(3)]), etag=True)
    before = _log_counts(db_path)

    result = subprocess.run(
        [sys.executable, "-c", _ONE_FETCH_TASK_FAILS, str(DAGS_FOLDER)],
        env={**os.environ, **env, "NEWSROOM_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).parents[1],
    )

    assert "RUN " in result.stdout, (result.stdout + result.stderr)[-3000:]
    run_id = result.stdout.split("RUN ", 1)[1].split()[1]
    states = _task_states(env, run_id)
    assert states["record_events"] == "success", states
    after = _log_counts(db_path)
    assert after.get("article.published", 0) - before.get("article.published", 0) == 1  # item 3
    with duckdb.connect(str(db_path), read_only=True) as con:
        failed = con.execute(
            "SELECT source_id, payload ->> 'error_class', run_id FROM raw.events "
            "WHERE event_type = 'feed.failed' AND source_id = 'ghost'"
        ).fetchall()
    assert failed == [("ghost", "FetchTaskFailed", f"airflow:{run_id}")]


def test_dbt_leaves_no_semaphores_behind_in_a_task_process_that_ends_with_os_exit(tmp_path: Path) -> None:
    """Airflow's task process ends with os._exit (no finalizers): dbt's locks must be
    gone by then, or multiprocessing's resource tracker warns on the task's stderr."""
    script = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        from ingestion._derive.transform import run_dbt

        report = run_dbt("parse", Path({str(tmp_path / "x.duckdb")!r}), "--target-path", {str(tmp_path)!r})
        print(report.summary())
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0 if report.success else 1)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[1],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "leaked semaphore" not in result.stderr, result.stderr


@pytest.mark.parametrize("value", ["0", "-5", "abc", "\u00b2", "99999999999"])
def test_a_schedule_setting_out_of_range_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("NEWSROOM_INGEST_EVERY_MINUTES", value)
    with pytest.raises(ConfigError, match="NEWSROOM_INGEST_EVERY_MINUTES must be a whole number"):
        whole_number_setting("NEWSROOM_INGEST_EVERY_MINUTES", 15, 1, 7 * 24 * 60)


def test_a_sources_file_of_more_hosts_than_airflow_maps_tasks_is_fetched_in_shared_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow maps at most [core] max_map_length tasks (1,024): a group for each of 1,025
    hosts failed the plan, and every run with it, fetching nothing and recording no failure.
    Past MAX_FETCH_GROUPS hosts, hosts share tasks; every source is fetched once, and a
    host's sources stay in one task (one after another, with their pauses)."""
    from airflow.configuration import conf

    from ingestion import pipeline

    sources = [{"id": f"s{n}", "url": f"http://127.0.{n // 250}.{n % 250 + 2}:9/feed"} for n in range(1025)]
    sources.append({"id": "s1-again", "url": "http://127.0.0.3:9/other"})  # a second source of a host
    config = tmp_path / "feeds.yml"
    config.write_text(yaml.safe_dump({"sources": sources}))
    monkeypatch.setenv("NEWSROOM_CONFIG", str(config))
    monkeypatch.setenv("NEWSROOM_DB", str(tmp_path / "newsroom.duckdb"))
    groups = pipeline.plan_fetches()
    assert len(groups) == pipeline.MAX_FETCH_GROUPS <= conf.getint("core", "max_map_length")
    fetched = sorted(request["source_id"] for group in groups for request in group["requests"])
    assert fetched == sorted(source["id"] for source in sources)
    [shared] = [group for group in groups if "127.0.0.3" in group["hosts"]]
    assert {"s1", "s1-again"} <= {request["source_id"] for request in shared["requests"]}
