"""
### newsroom_maintenance

Daily checks that nothing is quietly wrong:

- **verify_event_log**: recomputes the hash chain and sequences (`newsroom verify`);
  fails if any stored event was altered or removed.
- **source_freshness**: dbt source freshness on `raw.events` (warn after 1 h
  without events, error after 6 h).
- **report_failing_sources**: lists sources whose every fetch failed in the last
  24 hours, with the last reason (in the task log and its XCom).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from ingestion.pipeline import WRITER_POOL


@dag(
    dag_id="newsroom_maintenance",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["newsroom", "maintenance"],
    doc_md=__doc__,
    # A backstop for a hang: each task holds the writer's slot.
    default_args={"retries": 1, "retry_delay": timedelta(minutes=5), "execution_timeout": timedelta(hours=6)},
)
def newsroom_maintenance():
    @task(pool=WRITER_POOL)
    def verify_event_log() -> dict:
        from ingestion import pipeline

        return pipeline.verify_log()

    @task(pool=WRITER_POOL)
    def source_freshness() -> dict:
        from ingestion import pipeline

        return pipeline.check_source_freshness()

    @task(pool=WRITER_POOL)
    def report_failing_sources() -> list[dict]:
        from ingestion import pipeline

        return pipeline.sources_failing_all_day()

    verify_event_log() >> source_freshness() >> report_failing_sources()


newsroom_maintenance()
