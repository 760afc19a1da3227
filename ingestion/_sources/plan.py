"""Which sources to fetch now, and fetching them in parallel (no database)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from ingestion._log.blobs import BlobStore
from ingestion._log.feed_states import FeedState
from ingestion._model import FetchOutcome, FetchRequest
from ingestion._sources.config import Source
from ingestion._sources.dates import utcnow
from ingestion._sources.fetch import FetchLimits, fetch, make_client

#: Some servers answer 304 (or repeat an ETag) although the feed changed, so a
#: source is fetched without ETag/Last-Modified when its last such fetch is this old.
UNCONDITIONAL_AFTER = timedelta(hours=1)


@dataclass(slots=True)
class Plan:
    requests: list[FetchRequest]
    #: Sources not fetched now because their server asked us to come back later.
    deferred: dict[str, datetime]


def is_due(last_fetched_at: datetime | None, poll_interval_minutes: float, now: datetime) -> bool:
    """A source is due once its poll interval has passed, give or take the few
    seconds or minutes between a run's planning and its recording: a run every
    15 minutes must find a 15-minute source due every time."""
    if last_fetched_at is None or last_fetched_at > now:  # ahead of now: the clock was set back since
        return True
    interval = timedelta(minutes=poll_interval_minutes)
    slack = max(timedelta(minutes=1), interval / 10)
    return now - last_fetched_at >= interval - slack


def plan(
    states: dict[str, FeedState],
    sources: Iterable[Source],
    *,
    due_only: bool = False,
    now: datetime | None = None,
) -> Plan:
    """What to fetch now, with conditional-GET validators from the last body."""
    now = now or utcnow()
    result = Plan([], {})
    for source in sources:
        state = states.get(source.id) or FeedState()
        if state.retry_after_until and state.retry_after_until > now:
            result.deferred[source.id] = state.retry_after_until
            continue
        if due_only and not is_due(state.last_fetched_at, source.poll_interval_minutes, now):
            continue
        conditional = (
            state.last_unconditional_at is not None
            and timedelta(0) <= now - state.last_unconditional_at < UNCONDITIONAL_AFTER
        )
        result.requests.append(
            FetchRequest(
                source_id=source.id,
                url=source.url,
                kind=source.kind,
                language=source.language,
                etag=state.etag if conditional else None,
                last_modified=state.last_modified if conditional else None,
            )
        )
    return result


def fetch_all(
    requests: list[FetchRequest],
    blobs: BlobStore,
    *,
    limits: FetchLimits | None = None,
    politeness: dict[str, float] | None = None,
    max_workers: int = 8,
    on_done: Callable[[FetchOutcome], None] | None = None,
) -> list[FetchOutcome]:
    """Fetch in parallel across hosts, one after another (with a pause) within a host."""
    limits = limits or FetchLimits()
    politeness = politeness or {}
    by_host: dict[str, list[FetchRequest]] = defaultdict(list)
    for request in requests:
        by_host[Source(request.source_id, request.url).host].append(request)
    results: dict[str, FetchOutcome] = {}
    lock = threading.Lock()
    client = make_client(limits)

    def run_host(host_requests: list[FetchRequest]) -> None:
        for position, request in enumerate(host_requests):
            if position:
                time.sleep(politeness.get(request.source_id, 0.0))
            outcome = fetch(request, blobs, client=client, limits=limits)
            with lock:
                results[request.source_id] = outcome
            if on_done:
                on_done(outcome)

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(by_host) or 1))) as pool:
            for future in [pool.submit(run_host, group) for group in by_host.values()]:
                future.result()
    finally:
        client.close()
    return [results[request.source_id] for request in requests]
