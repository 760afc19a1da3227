"""
### newsroom_transform

Runs whenever `newsroom_ingest` updated the event log (asset
`newsroom_event_log`): validates the new raw batch, builds the dbt models,
validates staging and marts with Great Expectations, and publishes a read-only
snapshot of the marts.

- **validate_raw**: the new events (hashes, ids, versions, volumes) before
  anything is derived from them; a failure stops the run here, so no model is
  built from a batch that did not pass.
- **plan_entity_partitions / extract_entity_partition / merge_entities**: named
  entities of new article versions, cached by text hash. The plan fixes the last
  event to read and splits the texts by hash into `NEWSROOM_ENTITY_PARTITIONS`
  partitions (default 2); one mapped task per partition reads the database
  read-only, runs the models (anywhere the database and its folder are shared) and
  writes its results as Parquet beside the database; the merge, the only writer,
  appends them all in one transaction (a missing partition fails it by name).
- **assign_threads**: each new article version joins a story thread or opens
  one (online, in log order; state kept beside the database).
- **dbt_build**: `dbt build` in-process (models and dbt tests) in one task.
  Rendering the project as one task per model (astronomer-cosmos) would pay
  dbt's start-up (~3 s here) per node for a build that takes ~4 s in total.
- **validate_staging / validate_marts**: one GX stage each after `dbt build`
  (whose own tests already block on keys, relationships and accepted values); a
  failed critical expectation fails the task (no retries) and publish never runs.
- **publish**: the validated marts as `published/newsroom.duckdb` (atomic
  replace) and Parquet; updates the `newsroom_published` asset.

All tasks that write DuckDB run in the one-slot pool `duckdb_writer`; the plan and
the partitions only read it, so they run beside each other.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, task

from ingestion.pipeline import EVENT_LOG_ASSET, PUBLISHED_ASSET, WRITER_POOL

EVENT_LOG = Asset(**EVENT_LOG_ASSET)
PUBLISHED = Asset(**PUBLISHED_ASSET)


@dag(
    dag_id="newsroom_transform",
    schedule=[EVENT_LOG],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["newsroom", "dbt", "validation"],
    doc_md=__doc__,
    # A backstop for a hang, above the longest backlog a run takes on (200,000 article
    # versions): every task but the partitions holds the writer's slot.
    default_args={"retries": 0, "execution_timeout": timedelta(hours=6)},
)
def newsroom_transform():
    @task(retries=1, retry_delay=timedelta(minutes=1))
    def plan_entity_partitions() -> list[dict]:
        from ingestion import pipeline

        return pipeline.plan_entity_partitions()

    @task(retries=2, retry_delay=timedelta(minutes=1))
    def extract_entity_partition(partition: dict) -> dict:
        from ingestion import pipeline

        return pipeline.extract_entity_partition(partition)

    @task(pool=WRITER_POOL, retries=1, retry_delay=timedelta(minutes=1))
    def merge_entities(partitions: list[dict]) -> dict:
        from ingestion import pipeline

        return pipeline.merge_entity_partitions(partitions)

    @task(pool=WRITER_POOL, retries=1, retry_delay=timedelta(minutes=1))
    def assign_threads() -> dict:
        from ingestion import pipeline

        return pipeline.assign_threads()

    @task(pool=WRITER_POOL, retries=1, retry_delay=timedelta(minutes=1))
    def dbt_build() -> dict:
        from ingestion import pipeline

        return pipeline.build_marts()

    @task(pool=WRITER_POOL)
    def validate(stage: str) -> dict:
        from ingestion import pipeline

        return pipeline.validate_stage(stage)

    @task(pool=WRITER_POOL, outlets=[PUBLISHED])
    def publish(stage_reports: list[dict]) -> dict:
        from ingestion import pipeline

        return pipeline.publish_snapshot(stage_reports)

    raw = validate.override(task_id="validate_raw")("raw")
    staging = validate.override(task_id="validate_staging")("staging")
    marts = validate.override(task_id="validate_marts")("marts")
    partitions = plan_entity_partitions()
    extracted = extract_entity_partition.expand(partition=partitions)
    raw >> partitions
    extracted >> merge_entities(partitions) >> assign_threads() >> dbt_build() >> staging >> marts
    publish([raw, staging, marts])


newsroom_transform()
