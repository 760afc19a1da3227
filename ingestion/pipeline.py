"""The pipeline's steps as plain functions with JSON-safe inputs and outputs.

The Airflow DAGs call these (one task each) and nothing else from the package;
the CLI calls the same building blocks. Paths come from the environment:
``NEWSROOM_DB`` (the working database) and ``NEWSROOM_CONFIG`` (feeds.yml).
"""

from __future__ import annotations

import os
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ingestion._sources.config import Source, load_sources, resolve_db_path
from ingestion._sources.dates import utcnow
from ingestion.exceptions import ConfigError, StepFailed

#: The one-slot Airflow pool of every task that writes the DuckDB file.
WRITER_POOL = "duckdb_writer"
#: The Airflow assets the DAGs share (``Asset(**...)``): ingest updates the event
#: log, whose updates schedule the transform, which updates the published snapshot.
EVENT_LOG_ASSET = {"name": "newsroom_event_log", "uri": "newsroom://event-log"}
PUBLISHED_ASSET = {"name": "newsroom_published", "uri": "newsroom://published"}


def db_path() -> Path:
    return resolve_db_path(None).resolve()


def sources() -> list[Source]:
    return load_sources(os.environ.get("NEWSROOM_CONFIG", "feeds.yml"))


#: Most fetch tasks one run maps: Airflow refuses to map more than ``[core]
#: max_map_length`` (1,024 by default), and failed the whole run past it. Up to this many
#: hosts, a task fetches one; past it, hosts share tasks, in turn by name.
MAX_FETCH_GROUPS = 256


def plan_fetches(due_only: bool = True) -> list[dict[str, Any]]:
    """Requests grouped by host: one group per mapped fetch task, so a host is
    fetched by one task at a time, with its politeness delay between requests (a
    group of several hosts fetches them side by side, each in turn)."""
    from ingestion._log.feed_states import read_feed_states
    from ingestion._sources.plan import plan

    configured = {source.id: source for source in sources()}
    # Reads the states the last run left beside the log: no wait for the writer lock.
    planned = plan(read_feed_states(db_path()), configured.values(), due_only=due_only)
    for source_id, until in planned.deferred.items():
        print(f"{source_id}: deferred, the server asked us to wait until {until:%Y-%m-%d %H:%M} UTC")
    hosts = sorted({configured[request.source_id].host for request in planned.requests})
    group_of = {host: position % MAX_FETCH_GROUPS for position, host in enumerate(hosts)}
    groups: dict[int, dict[str, Any]] = defaultdict(lambda: {"hosts": [], "requests": [], "politeness": {}})
    for request in planned.requests:
        source = configured[request.source_id]
        group = groups[group_of[source.host]]
        if source.host not in group["hosts"]:
            group["hosts"].append(source.host)
        group["requests"].append(request.to_dict())
        group["politeness"][source.id] = source.politeness_delay_seconds
    return [groups[number] for number in sorted(groups)]


def fetch_group(group: dict[str, Any]) -> list[dict[str, Any]]:
    """Fetch one host's sources and parse what they sent (no database). Raw bodies
    and parse results go to the blob store; only the small outcomes are returned."""
    from ingestion._log.record import blob_store_for, parse_fetched
    from ingestion._model import FetchRequest
    from ingestion._sources.plan import fetch_all

    requests = [FetchRequest.from_dict(r) for r in group["requests"]]
    blobs = blob_store_for(db_path())
    outcomes = fetch_all(requests, blobs, politeness=group["politeness"])
    parse_fetched(outcomes, blobs)
    return [outcome.to_dict() for outcome in outcomes]


def record_fetches(
    outcomes: list[dict[str, Any]],
    run_id: str,
    planned: list[dict[str, Any]] | None = None,
    run_at: datetime | None = None,
) -> dict[str, Any]:
    """Decide and append everything fetched in one run (reading the results the
    fetch tasks kept; parsing only what they did not); idempotent per ``run_id``.

    A source of ``planned`` (the groups ``plan_fetches`` made) with no outcome, because
    its fetch task failed, is recorded as failed at ``run_at`` (the scheduler run's own
    time): the same for every attempt of the record and after a clear, so one failure is
    recorded once.

    ``article_events`` counts the run's new, revised and withdrawn articles: the
    DAG updates the event log asset (and so starts a transform) only when it is
    not zero."""
    from ingestion._log.record import record
    from ingestion._model import FetchOutcome, FetchRequest

    fetched = [FetchOutcome.from_dict(o) for o in outcomes]
    answered = {outcome.source_id for outcome in fetched}
    missing = [
        FetchRequest.from_dict(request)
        for group in planned or []
        for request in group["requests"]
        if request["source_id"] not in answered
    ]
    failed_at = (run_at.astimezone(UTC).replace(tzinfo=None) if run_at else utcnow()).isoformat()
    fetched += [
        FetchOutcome(
            source_id=request.source_id,
            url=request.url,
            kind=request.kind,
            fetched_at=failed_at,
            ok=False,
            language=request.language,
            error_class="FetchTaskFailed",
            error_message="its fetch task failed after its retries (see that task's log); fetched next round",
        )
        for request in missing
    ]
    report = record(db_path(), fetched, run_id=run_id)
    for summary in report.sources:
        print(summary.line())
    totals = report.totals()
    article_events = sum(totals[change] for change in ("new", "revised", "withdrawn"))
    return {
        "run_id": report.run_id,
        "events_appended": report.events_appended,
        "article_events": article_events,
        **{key: int(value) for key, value in totals.items()},
    }


def extract_entities() -> dict[str, Any]:
    """NER on article versions recorded since the last run (texts seen before are skipped)."""
    from ingestion._derive.entities import extract_entities as extract
    from ingestion._progress import progress_line

    report = extract(db_path(), on_progress=progress_line("entities"))
    print(report.summary())
    return {"summary": report.summary(), "texts_new": report.texts_new, "mentions": report.mentions}


def whole_number_setting(name: str, default: int, low: int, high: int) -> int:
    """The environment variable ``name`` as a whole number from ``low`` to ``high``
    (``default`` when unset), or a ConfigError that names it."""
    setting = os.environ.get(name, str(default)).strip()
    if not (setting.isascii() and setting.isdigit() and len(setting) <= 9 and low <= int(setting) <= high):
        raise ConfigError(f"{name} must be a whole number from {low:,} to {high:,}, not {setting!r}")
    return int(setting)


def plan_entity_partitions() -> list[dict[str, int]]:
    """The partitions of NER on article versions recorded so far, one mapped task each:
    ``NEWSROOM_ENTITY_PARTITIONS`` of them (default 2), all reading up to the same event."""
    from ingestion._derive.entities import plan_partitions

    parts = whole_number_setting("NEWSROOM_ENTITY_PARTITIONS", 2, 1, 256)
    through = plan_partitions(db_path())
    return [{"part": part, "parts": parts, "through": through} for part in range(parts)]


def extract_entity_partition(partition: dict[str, int]) -> dict[str, Any]:
    """NER on one partition, the database only read; its results go to shared storage."""
    from ingestion._derive.entities import extract_partition
    from ingestion._progress import progress_line

    report = extract_partition(
        db_path(),
        partition["part"],
        partition["parts"],
        through=partition["through"],
        on_progress=progress_line(f"entities, partition {partition['part']}"),
    )
    print(f"partition {partition['part']} of {partition['parts']}: {report.summary()}")
    return {"summary": report.summary(), "texts_new": report.texts_new, "mentions": report.mentions}


def merge_entity_partitions(partitions: list[dict[str, int]]) -> dict[str, Any]:
    """Append every partition's results to enrich.* in one transaction (the single writer)."""
    from ingestion._derive.entities import merge_partitions

    report = merge_partitions(db_path(), partitions[0]["parts"], partitions[0]["through"])
    print(report.summary())
    return {"summary": report.summary(), "texts_new": report.texts_new, "mentions": report.mentions}


def assign_threads() -> dict[str, Any]:
    """Story threads for article versions recorded since the last run."""
    from ingestion._derive.threads import assign_threads as assign
    from ingestion._progress import progress_line

    report = assign(db_path(), on_progress=progress_line("threads"))
    print(report.summary())
    return {"summary": report.summary(), "articles": report.articles, "opened": report.opened}


def build_marts() -> dict[str, Any]:
    from ingestion._derive.transform import transform
    from ingestion._publish.snapshot import last_published_seq

    report = transform(db_path(), entities=False, checked_since=last_published_seq(db_path()))
    print(report.summary())
    if not report.success:
        raise StepFailed("dbt build failed: " + "; ".join(report.failures))
    return {"summary": report.summary()}


def validate_stage(stage: str) -> dict[str, Any]:
    """Validate one stage against everything new since the last snapshot; raise on failure."""
    from ingestion._publish.snapshot import last_published_seq
    from ingestion._quality.validate import validate

    report = validate(
        db_path(), stages=(stage,), since=last_published_seq(db_path()), build_docs=stage == "marts"
    )
    for line in report.lines():
        print(line)
    if not report.success:
        names = ", ".join(f"{o.suite}: {o.expectation}" for o in report.failures())
        raise StepFailed(f"{stage} validation failed: {names}")
    return report.to_dict()


def publish_snapshot(stage_reports: list[dict[str, Any]]) -> dict[str, Any]:
    from ingestion._publish.snapshot import publish
    from ingestion._quality.validate import ValidationReport

    report = publish(db_path(), validation=ValidationReport.merged(stage_reports))
    print(f"published {report.path} up to event #{report.last_event_seq}; {report.how()}")
    return {"path": str(report.path), "last_event_seq": report.last_event_seq, "tables": report.tables}


def verify_log() -> dict[str, Any]:
    from ingestion._log.verify import verify

    report = verify(db_path())
    if not report.ok:
        raise StepFailed("event log verification failed: " + "; ".join(report.problems))
    return {"events": report.events, "streams": report.streams, "notes": report.notes}


def check_source_freshness() -> dict[str, Any]:
    from ingestion._derive.transform import run_dbt

    report = run_dbt("source freshness", db_path())
    print(report.summary())
    if not report.success:
        raise StepFailed("the event log is stale: " + "; ".join(report.failures))
    return {"summary": report.summary()}


def sources_failing_all_day(hours: int = 24) -> list[dict[str, Any]]:
    """Sources fetched in the last ``hours`` whose every fetch failed, with the last reason."""
    from ingestion._log.store import EventStore

    with EventStore(db_path(), read_only=True) as store:
        rows = store.con.execute(
            """
            SELECT source_id, count(*) AS fetches,
                   arg_max(payload ->> '$.error_class' || ': ' || (payload ->> '$.error_message'),
                           event_seq) AS last_reason
            FROM raw.events
            WHERE starts_with(stream_id, 'feed:') AND recorded_at >= ?
            GROUP BY source_id
            HAVING count(*) FILTER (WHERE event_type = 'feed.fetched') = 0
            ORDER BY source_id
            """,
            [utcnow() - timedelta(hours=hours)],
        ).fetchall()
    failing = [{"source_id": s, "fetches": n, "last_reason": r} for s, n, r in rows]
    for item in failing:
        print(f"FAILING ALL DAY {item['source_id']}: {item['fetches']} fetches, last: {item['last_reason']}")
    return failing
