"""
### newsroom_ingest

Fetches the sources of `feeds.yml` (`$NEWSROOM_CONFIG`) and appends what
changed to the event log (`$NEWSROOM_DB`).

- **plan_fetches** reads each source's conditional-GET state (from the feed
  states file beside the log, without waiting for the writer) and groups the
  sources to fetch by host. A *scheduled* run fetches only the sources that are
  due (their `poll_interval_minutes` has passed since their last fetch); a
  *manual* run (Trigger in the UI, `airflow dags trigger newsroom_ingest`)
  fetches every source now, due or not. A backfill fetches what is due, as a
  scheduled run does: a feed holds only its present, whatever date a run is for.
- **fetch_host** (mapped, one per host; past 256 hosts, hosts share tasks, as
  Airflow maps at most `max_map_length` tasks) does the network work in parallel,
  stores the raw bodies and parses them, keeping each parse result beside its
  body in the blob store; it never opens DuckDB. Its XCom is the small fetch
  outcomes only: bodies and parse results pass by reference (the body's
  sha256). Retried with backoff.
- **record_events** is the single DuckDB writer (pool `duckdb_writer`, one
  slot): reads the kept parse results (parsing itself only a body whose result
  is missing, stale or from another parser version), decides and appends in
  one transaction, idempotent per run: a retry appends nothing twice, and a
  cleared run records its fresh fetches under the run's next id (`run#2`).
  It runs when some fetch tasks failed after their retries too: what the others
  fetched is recorded, and each source of a failed task is a `feed.failed`
  event (`FetchTaskFailed`), fetched again next round.
  Its XCom is the run's summary (new, revised, withdrawn, unchanged, failed...).
- **update_event_log_asset** updates the `newsroom_event_log` asset, which
  schedules `newsroom_transform`, only when the run appended article events
  (new, revised or withdrawn articles). Otherwise it is skipped, and no
  transform runs for a round in which every source was unchanged.

Failures of a source are recorded as `feed.failed` events, not task failures.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, TriggerRule, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from ingestion.pipeline import EVENT_LOG_ASSET, WRITER_POOL, whole_number_setting

EVENT_LOG = Asset(**EVENT_LOG_ASSET)


@dag(
    dag_id="newsroom_ingest",
    schedule=timedelta(minutes=whole_number_setting("NEWSROOM_INGEST_EVERY_MINUTES", 15, 1, 7 * 24 * 60)),
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
        # A backstop for a hang (every fetch has its own deadline): the rounds after wait
        # for this one (one run at a time), and record_events holds the writer's slot.
        "execution_timeout": timedelta(hours=2),
    },
)
def newsroom_ingest():
    # Not in the writer pool: planning reads the feed states the last record left
    # beside the log, so it runs while a transform holds the database.
    @task
    def plan_fetches() -> list[dict]:
        from ingestion import pipeline

        # Someone who triggers a run by hand wants the feeds read now, not at their next poll.
        manual = get_current_context()["dag_run"].run_type == "manual"
        return pipeline.plan_fetches(due_only=not manual)

    @task(retries=3)
    def fetch_host(group: dict) -> list[dict]:
        from ingestion import pipeline

        return pipeline.fetch_group(group)

    # Once every fetch task is done, failed or not: one host's failure must not keep
    # what the others fetched (and the failure itself) out of the log.
    @task(pool=WRITER_POOL, trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
    def record_events(fetched: Sequence[list[dict]], planned: list[dict]) -> dict:
        from ingestion import pipeline

        if not planned:
            raise AirflowSkipException("no source is due")
        # One slice asks for every mapped result at once (a failed task has none); iterating
        # would ask for one index past the end, which Airflow's client logs as an error.
        groups = fetched[:]
        context = get_current_context()
        return pipeline.record_fetches(
            [o for group in groups for o in group],
            run_id=f"airflow:{context['run_id']}",
            planned=planned,
            # The run's own time: neither a retry nor a clear changes it (its start does).
            run_at=context["dag_run"].run_after,
        )

    @task(outlets=[EVENT_LOG])
    def update_event_log_asset(summary: dict) -> None:
        # A skipped task emits no asset event, so newsroom_transform runs only for new articles.
        if not summary["article_events"]:
            raise AirflowSkipException("no new, revised or withdrawn articles in this run")

    planned = plan_fetches()
    update_event_log_asset(record_events(fetch_host.expand(group=planned), planned))


newsroom_ingest()
