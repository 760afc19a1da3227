"""One ingest run: plan fetches, fetch (in parallel, no DuckDB), then record.

``record`` is the single writer: it parses the stored bodies, decides events
against what the log already holds and appends them in one transaction.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ._blobs import BlobStore
from ._config import Source
from ._dates import utcnow
from ._events import article_id, decide
from ._fetch import FetchLimits, fetch, make_client
from ._model import FetchOutcome, FetchRequest, ParseResult
from ._newsml import parse_newsml
from ._ninjs import parse_ninjs
from ._rss import parse_rss
from ._store import EventStore, PendingEvent, StreamHead
from .exceptions import ParseError

#: Every n-th fetch of a source is sent without ETag/Last-Modified, because some
#: servers answer 304 (or repeat an ETag) although the feed changed.
UNCONDITIONAL_EVERY = 10
#: How many per-item rejections a feed.fetched event lists in full.
MAX_LISTED_REJECTIONS = 50


def blob_store_for(db_path: Path) -> BlobStore:
    """Raw bodies live beside the database: ``<data dir>/blobs``."""
    return BlobStore(Path(db_path).parent / "blobs")


@dataclass(slots=True)
class SourceSummary:
    source_id: str
    counts: Counter[str] = field(default_factory=Counter)
    status: str = "ok"
    message: str = ""

    def line(self) -> str:
        c = self.counts
        text = (
            f"{self.source_id:<24} new {c['new']:>5}  revised {c['revised']:>4}  "
            f"withdrawn {c['withdrawn']:>3}  unchanged {c['unchanged'] + c['stale']:>5}  "
            f"failed {c['failed']:>2}"
        )
        if c["rejected"]:
            text += f"  rejected items {c['rejected']}"
        return f"{text}  [{self.status}{': ' + self.message if self.message else ''}]"


@dataclass(slots=True)
class IngestReport:
    run_id: str
    sources: list[SourceSummary]
    events_appended: int

    def totals(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for summary in self.sources:
            total.update(summary.counts)
        return total


def new_run_id() -> str:
    return f"run-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def plan(
    store: EventStore, sources: Iterable[Source], *, due_only: bool = False, now: datetime | None = None
) -> list[FetchRequest]:
    """What to fetch now, with conditional-GET validators from the last good fetch."""
    now = now or utcnow()
    states = store.feed_states()
    requests = []
    for source in sources:
        state = states.get(source.id, {})
        last = state.get("last_fetched_at")
        if due_only and last and now - last < timedelta(minutes=source.poll_interval_minutes):
            continue
        conditional = (state.get("fetches", 0) + 1) % UNCONDITIONAL_EVERY != 0
        requests.append(
            FetchRequest(
                source_id=source.id,
                url=source.url,
                kind=source.kind,
                language=source.language,
                etag=state.get("etag") if conditional else None,
                last_modified=state.get("last_modified") if conditional else None,
            )
        )
    return requests


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


def parse_body(
    kind: str,
    body: bytes,
    *,
    source_id: str,
    url: str,
    now: datetime,
    content_type: str | None = None,
    language: str | None = None,
) -> ParseResult:
    if kind == "rss":
        return parse_rss(
            body, source_id=source_id, url=url, now=now, content_type=content_type, default_language=language
        )
    if kind == "ninjs":
        return parse_ninjs(body, source_id=source_id, url=url, now=now, default_language=language)
    if kind == "newsml":
        return parse_newsml(body, source_id=source_id, url=url, now=now, default_language=language)
    raise ParseError(f"unknown source kind {kind!r}", source_id=source_id, url=url)


def _fetch_payload(outcome: FetchOutcome) -> dict[str, Any]:
    keys = (
        "url",
        "final_url",
        "status",
        "bytes",
        "content_type",
        "etag",
        "last_modified",
        "elapsed_ms",
        "attempts",
        "conditional",
        "not_modified",
        "permanent_redirect",
        "body_sha256",
        "fetched_at",
    )
    data = outcome.to_dict()
    return {key: data[key] for key in keys}


def record(
    store: EventStore, outcomes: list[FetchOutcome], blobs: BlobStore, *, run_id: str | None = None
) -> IngestReport:
    """Parse fetched bodies and append all resulting events in one transaction.

    With a ``run_id`` that already has events (a retried scheduler task whose
    first attempt committed), nothing is appended again.
    """
    run_id = run_id or new_run_id()
    recorded_at = utcnow()
    summaries = [SourceSummary(outcome.source_id) for outcome in outcomes]
    with store.transaction():
        if store.has_run(run_id):
            for summary in summaries:
                summary.status = "already recorded"
            return IngestReport(run_id, summaries, 0)
        seen_bodies = store.bodies_seen(
            (o.source_id, o.body_sha256) for o in outcomes if o.ok and o.body_sha256
        )
        parsed = [_parse_outcome(outcome, blobs, recorded_at, seen_bodies) for outcome in outcomes]
        heads = store.heads(
            article_id(outcome.source_id, item.identity)
            for outcome, result in zip(outcomes, parsed, strict=True)
            if isinstance(result, ParseResult)
            for item in result.items
        )
        pending: list[PendingEvent] = []
        for outcome, result, summary in zip(outcomes, parsed, summaries, strict=True):
            pending.extend(_events_for_outcome(outcome, result, heads, summary))
        appended = store.append(pending, recorded_at=recorded_at, run_id=run_id)
    return IngestReport(run_id, summaries, appended)


def _parse_outcome(
    outcome: FetchOutcome, blobs: BlobStore, now: datetime, seen_bodies: set[tuple[str, str]]
) -> ParseResult | ParseError | None:
    """The parse result, the parse error, or None when there is nothing new to parse."""
    if not outcome.ok or outcome.body_sha256 is None:
        return None
    if (outcome.source_id, outcome.body_sha256) in seen_bodies:
        return None
    try:
        return parse_body(
            outcome.kind,
            blobs.get(outcome.body_sha256),
            source_id=outcome.source_id,
            url=outcome.url,
            now=now,
            content_type=outcome.content_type,
            language=outcome.language,
        )
    except ParseError as exc:
        return exc


def _failed(outcome: FetchOutcome, summary: SourceSummary, error_class: str, message: str) -> PendingEvent:
    summary.status, summary.message = "failed", f"{error_class}: {message}"
    summary.counts["failed"] += 1
    payload = {**_fetch_payload(outcome), "error_class": error_class, "error_message": message}
    return PendingEvent("feed.failed", f"feed:{outcome.source_id}", outcome.source_id, payload)


def _events_for_outcome(
    outcome: FetchOutcome,
    result: ParseResult | ParseError | None,
    heads: dict[str, StreamHead],
    summary: SourceSummary,
) -> list[PendingEvent]:
    feed_stream = f"feed:{outcome.source_id}"
    if not outcome.ok:
        return [
            _failed(
                outcome, summary, outcome.error_class or "FetchError", outcome.error_message or "fetch failed"
            )
        ]
    if isinstance(result, ParseError):
        # The body is kept (body_sha256), so a better parser can read it later.
        return [_failed(outcome, summary, "ParseError", result.message)]
    payload = _fetch_payload(outcome)
    if result is None:
        summary.status = "not modified" if outcome.not_modified else "body unchanged"
        payload.update(items_seen=0, unchanged_body=not outcome.not_modified)
        return [
            PendingEvent(
                "feed.fetched", feed_stream, outcome.source_id, payload, content_hash=outcome.body_sha256
            )
        ]
    raw_ref = {"body_sha256": outcome.body_sha256, "fetched_at": outcome.fetched_at}
    article_events, counts = decide(outcome.source_id, result.items, heads, raw_ref)
    summary.counts.update(counts)
    summary.counts["rejected"] += len(result.rejections)
    if result.warning:
        summary.message = result.warning[:120]
    payload.update(
        items_seen=len(result.items) + len(result.rejections),
        new=counts["new"],
        revised=counts["revised"],
        withdrawn=counts["withdrawn"],
        unchanged=counts["unchanged"],
        stale=counts["stale"],
        rejected=len(result.rejections),
        rejections=[
            {"index": r.index, "reason": r.reason, "identity": r.identity}
            for r in result.rejections[:MAX_LISTED_REJECTIONS]
        ],
        parse_warning=result.warning,
        feed_title=result.feed_title,
    )
    fetched = PendingEvent(
        "feed.fetched", feed_stream, outcome.source_id, payload, content_hash=outcome.body_sha256
    )
    return [fetched, *article_events]


def ingest(
    sources: list[Source],
    db_path: Path,
    *,
    limits: FetchLimits | None = None,
    due_only: bool = False,
    lock_timeout: float = 30.0,
    on_fetched: Callable[[FetchOutcome], None] | None = None,
) -> IngestReport:
    """Fetch every source once and record what changed. Failures are recorded, not raised."""
    blobs = blob_store_for(db_path)
    with EventStore(db_path, lock_timeout=lock_timeout) as store:
        requests = plan(store, sources, due_only=due_only)
    # No database lock is held while the network is in use.
    outcomes = fetch_all(
        requests,
        blobs,
        limits=limits,
        politeness={s.id: s.politeness_delay_seconds for s in sources},
        on_done=on_fetched,
    )
    with EventStore(db_path, lock_timeout=lock_timeout) as store:
        return record(store, outcomes, blobs)
