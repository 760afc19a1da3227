"""
### newsroom_ingest

Fetches every due source of `feeds.yml` (`$NEWSROOM_CONFIG`) and appends what
changed to the event log (`$NEWSROOM_DB`).

- **plan_fetches** reads each source's conditional-GET state and groups the due
  sources by host.
- **fetch_host** (mapped, one per host) does the network work in parallel and
  stores raw bodies only; it never opens DuckDB. Retried with backoff.
- **record_events** is the single DuckDB writer (pool `duckdb_writer`, one
  slot): parses, decides and appends in one transaction, idempotent per run, and
  updates the `newsroom_event_log` asset, which schedules `newsroom_transform`.

Failures of a source are recorded as `feed.failed` events, not task failures.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, get_current_context, task

EVENT_LOG = Asset(name="newsroom_event_log", uri="newsroom://event-log")
WRITER_POOL = "duckdb_writer"


@dag(
    dag_id="newsroom_ingest",
    schedule=timedelta(minutes=int(os.environ.get("NEWSROOM_INGEST_EVERY_MINUTES", "15"))),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["newsroom", "ingest"],
    doc_md=__doc__,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=5),
    },
)
def newsroom_ingest():
    @task(pool=WRITER_POOL)
    def plan_fetches() -> list[dict]:
        from ingestion import pipeline

        return pipeline.plan_fetches(due_only=True)

    @task(retries=3)
    def fetch_host(group: dict) -> list[dict]:
        from ingestion import pipeline

        return pipeline.fetch_group(group)

    @task(pool=WRITER_POOL, outlets=[EVENT_LOG])
    def record_events(fetched: list[list[dict]]) -> dict:
        from ingestion import pipeline

        run_id = f"airflow:{get_current_context()['run_id']}"
        return pipeline.record_fetches([o for group in fetched for o in group], run_id=run_id)

    record_events(fetch_host.expand(group=plan_fetches()))


newsroom_ingest()
