"""One ingest run: plan fetches, fetch (in parallel), parse, then record.

Planning, fetching and parsing hold no database lock: planning reads the feed
states that the last ``record`` left beside the database, and bodies are parsed
before the writer lock is taken: by the fetch tasks (``parse_fetched``, which keeps
the results beside the raw bodies), else by ``record`` itself. ``record`` is the
single writer: it decides events against what the log holds and appends them in
one transaction.
"""

from __future__ import annotations

import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ingestion._log.blobs import BlobStore
from ingestion._log.events import (
    COUNT_KEYS,
    article_id,
    decide,
    follow_scheme_moves,
    follow_shared_guids,
    guid_streams,
    reread_heads,
    stream_ids_with_twins,
)
from ingestion._log.feed_states import (
    FeedState,
    current_states_file,
    fold_states,
    read_feed_states,
    states_of,
    write_feed_states,
)
from ingestion._log.store import EventStore, PendingEvent, StreamHead, dump_payload
from ingestion._model import FetchOutcome, ParsedItem, ParseResult, Rejection
from ingestion._sources.config import Source
from ingestion._sources.dates import parse_datetime, utcnow
from ingestion._sources.fetch import FetchLimits
from ingestion._sources.parse import MAX_ITEMS_PER_DOCUMENT, ParsedResults, parse_body
from ingestion._sources.parse_pool import ParsePool, parse_workers
from ingestion._sources.plan import fetch_all, plan
from ingestion.exceptions import BlobError, ParseError, SourceError

#: How many per-item rejections (and cut fields) a feed.fetched event lists in full.
MAX_LISTED_REJECTIONS = 50
#: How long ``record`` waits for the writer lock: a transform may hold it for minutes,
#: and what was fetched is only recorded once the lock is had.
RECORD_LOCK_TIMEOUT = 600.0


def blob_store_for(db_path: Path) -> BlobStore:
    """Raw bodies live beside the database: ``<data dir>/blobs``."""
    return BlobStore(Path(db_path).parent / "blobs")


def parsed_results_for(blobs: BlobStore) -> ParsedResults:
    """Parse results live with the raw bodies: ``<blobs>/parsed``."""
    return ParsedResults(blobs.root / "parsed")


def parse_fetched(outcomes: list[FetchOutcome], blobs: BlobStore, now: datetime | None = None) -> None:
    """Parse the bodies just fetched and keep the results beside them, so that
    ``record`` only reads them. A result that cannot be kept is parsed by ``record``."""
    now = now or utcnow()
    kept = parsed_results_for(blobs)
    for outcome in outcomes:
        if not outcome.ok or outcome.body_sha256 is None:
            continue
        try:
            body = blobs.get(outcome.body_sha256)
        except (OSError, EOFError, zlib.error):
            continue  # record reports the damaged body as this source's failure
        result = _parse(outcome, body, now)
        with suppress(OSError, TypeError, ValueError):
            kept.put(_kept_path(kept, outcome, outcome.body_sha256), result, now)


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
        "retry_after_until",
    )
    data = outcome.to_dict()
    return {key: data.get(key) for key in keys}


def record(
    db_path: Path,
    outcomes: list[FetchOutcome],
    blobs: BlobStore | None = None,
    *,
    run_id: str | None = None,
    lock_timeout: float = RECORD_LOCK_TIMEOUT,
    parsed_by_source: dict[str, ParseResult] | None = None,
) -> IngestReport:
    """Parse fetched bodies, then append all resulting events in one transaction.

    Bodies are parsed before the writer lock is taken, each judged against the
    last body its source delivered; a body already parsed is not parsed again:
    by ``ingest``'s workers (``parsed_by_source``, the parse of each source's
    fetched body) or by ``parse_fetched`` (its kept result, by this parser
    version, within the hour). With a ``run_id`` that already has events (a
    retried scheduler task whose first attempt committed), a fetch it recorded is
    not appended again.
    """
    db_path = Path(db_path)
    blobs = blobs or blob_store_for(db_path)
    run_id = run_id or new_run_id()
    recorded_at = utcnow()
    summaries = [SourceSummary(outcome.source_id) for outcome in outcomes]
    assumed = read_feed_states(db_path, lock_timeout=lock_timeout)
    parsed_by_source = parsed_by_source or {}

    def parse(outcome: FetchOutcome, state: FeedState | None) -> ParseResult | SourceError | None:
        return _parse_outcome(outcome, blobs, recorded_at, state, parsed_by_source.get(outcome.source_id))

    parsed = [parse(o, assumed.get(o.source_id)) for o in outcomes]
    with EventStore(db_path, lock_timeout=lock_timeout) as store:
        with store.transaction():
            # A retried task brings the fetches its first attempt recorded: they are counted,
            # not appended again. A cleared run brings fresh fetches as well, which are
            # recorded under the run's next id (``run#2``): new history, not a repeat.
            recorded = store.fetches_of_run(run_id)
            todo = [p for p, o in enumerate(outcomes) if (o.source_id, o.fetched_at) not in recorded]
            if recorded:
                _already_recorded(store, recorded, outcomes, summaries)
                if not todo:
                    # The first attempt may have stopped between its commit and the files that
                    # planning reads (the anchor, the states): left so, planning would go on
                    # from the states before it (a server's Retry-After unheeded).
                    if store.move_anchor_to_last_event():
                        with suppress(OSError):
                            write_feed_states(db_path, states_of(store))
                    return IngestReport(run_id, summaries, 0)
                run_id = f"{run_id}#{len(set(recorded.values())) + 1}"
            # Under the lock the log cannot move: a states file that names its last event is its word.
            states = current_states_file(db_path, store.last_anchor())
            if states is None:
                states = states_of(store)
            before = store.last_event_seq()
            for position in todo:
                source = outcomes[position].source_id
                if _latest_body(states, source) != _latest_body(assumed, source):
                    # Another run recorded this source meanwhile: judge against what it left.
                    parsed[position] = parse(outcomes[position], states.get(source))
            heads = _heads(
                store,
                (
                    (outcomes[position].source_id, item)
                    for position in todo
                    if isinstance(result := parsed[position], ParseResult)
                    for item in result.items
                ),
            )
            latest_texts = _read_once(store.latest_texts)
            # What the items' guids and pages tell of their identities (``follow_shared_guids``):
            # nothing yet for a source never fetched.
            guids_and_pages = [
                stream_id
                for position in todo
                if outcomes[position].kind == "rss"
                and outcomes[position].source_id in states
                and isinstance(result := parsed[position], ParseResult)
                for stream_id in guid_streams(outcomes[position].source_id, result.items, heads)
            ]
            if guids_and_pages:
                for stream_id, head in store.heads(guids_and_pages).items():
                    heads.setdefault(stream_id, head)
            pending: list[PendingEvent] = []
            # When each source's latest body was fetched, as the run goes
            latest_bodies = {
                source: state.latest_body_fetched_at
                for source, state in states.items()
                if state.latest_body_fetched_at is not None
            }
            for position in todo:
                outcome, result, summary = outcomes[position], parsed[position], summaries[position]
                try:
                    decision = None
                    if isinstance(result, ParseResult):
                        state = states.get(outcome.source_id) or FeedState()
                        decision = _identify(store, outcome, result, state, heads, blobs, recorded_at)
                        if outcome.kind == "rss" and decision is None and state.identity_decision is None:
                            moved = follow_shared_guids(
                                outcome.source_id, result, heads, latest_texts, store.heads
                            )
                            _look_up_heads(store, outcome.source_id, moved, heads)
                        stream_ids = follow_scheme_moves(
                            outcome.source_id, result.items, heads, versions_in_order=False
                        )
                        reread_heads(result.items, stream_ids, heads, latest_texts)
                    older = _older_than_latest_body(outcome, latest_bodies, recorded_at)
                    events = _events_for_outcome(outcome, result, heads, summary, decision, older=older)
                    if not older and outcome.body_sha256 and (made := parse_datetime(outcome.fetched_at)):
                        latest_bodies[outcome.source_id] = made  # a later fetch of it in this run
                    for event in events:  # made here, so a payload that cannot be stored fails its source
                        event.payload_text = dump_payload(event.payload)
                except (TypeError, ValueError, UnicodeError) as exc:
                    # A value no parser should have let through (a number past 64 bits, a lone
                    # surrogate): this source's recorded failure, not the run's.
                    summary.counts.clear()
                    reason = f"an item cannot be recorded ({type(exc).__name__}: {exc})"
                    events = [_failed(outcome, summary, "ParseError", reason)]
                pending.extend(events)
            appended = store.append(pending, recorded_at=recorded_at, run_id=run_id)
        # Only a copy of what the log says: if it cannot be written, the old one no
        # longer names the log's last event and planning reads the log instead. The
        # states before plus those of the events just appended: reading every fetch
        # ever recorded would cost more with each run.
        with suppress(OSError):
            write_feed_states(db_path, fold_states(states, states_of(store, after_seq=before)))
    with suppress(OSError):  # housekeeping: a result left behind is only disk space
        parsed_results_for(blobs).prune(recorded_at)
    return IngestReport(run_id, summaries, appended)


def _heads(store: EventStore, arriving: Iterable[tuple[str, ParsedItem]]) -> dict[str, StreamHead]:
    """The heads of the streams these (source, item) pairs arrive for, with the wire version
    where the item brings one to compare it with (see ``EventStore.heads``)."""
    stream_ids: list[str] = []
    versioned: set[str] = set()
    for source_id, item in arriving:
        streams = stream_ids_with_twins(source_id, [item])  # the twin for follow_scheme_moves
        stream_ids.extend(streams)
        if item.wire.get("version") is not None:
            versioned.update(streams)
    return store.heads(stream_ids, wire_versions_of=versioned)


def _read_once(
    read: Callable[[list[int]], dict[int, tuple[str | None, ...]]],
) -> Callable[[list[int]], dict[int, tuple[str | None, ...]]]:
    """``read`` (``EventStore.latest_texts``) reading each version once: the identities
    and the hashes of a source's items ask for the same ones."""
    known: dict[int, tuple[str | None, ...]] = {}

    def latest_texts(event_seqs: list[int]) -> dict[int, tuple[str | None, ...]]:
        if missing := [event_seq for event_seq in event_seqs if event_seq not in known]:
            known.update(read(missing))
        return {event_seq: known[event_seq] for event_seq in event_seqs if event_seq in known}

    return latest_texts


def _already_recorded(
    store: EventStore,
    recorded: dict[tuple[str, str], str],
    outcomes: list[FetchOutcome],
    summaries: list[SourceSummary],
) -> None:
    """Counts of what an earlier attempt recorded for the fetches it recorded, so a
    retried task reports (and passes on) the same changes."""
    rows = store.con.execute(
        "SELECT run_id, source_id, event_type, count(*) FROM raw.events "
        "WHERE list_contains(?, run_id) AND starts_with(event_type, 'article.') GROUP BY ALL",
        [sorted(set(recorded.values()))],
    ).fetchall()
    counted = {(run, source, event_type): count for run, source, event_type, count in rows}
    for outcome, summary in zip(outcomes, summaries, strict=True):
        run = recorded.get((outcome.source_id, outcome.fetched_at))
        if run is None:
            continue
        summary.status = "already recorded"
        for event_type, key in COUNT_KEYS.items():
            summary.counts[key] = counted.get((run, outcome.source_id, event_type), 0)


def _latest_body(states: dict[str, FeedState], source_id: str) -> str | None:
    state = states.get(source_id)
    return state.latest_body if state else None


def _parse_outcome(
    outcome: FetchOutcome,
    blobs: BlobStore,
    now: datetime,
    state: FeedState | None,
    already_parsed: ParseResult | None,
) -> ParseResult | SourceError | None:
    """The parse result, why there is none, or None when there is nothing new to
    parse: no body, or the very body the source delivered last time."""
    if not outcome.ok or outcome.body_sha256 is None:
        return None
    if state is not None and outcome.body_sha256 == state.latest_body:
        return None
    return already_parsed or _parsed(outcome, outcome.body_sha256, blobs, now)


def _kept_path(kept: ParsedResults, outcome: FetchOutcome, body_sha256: str) -> Path:
    return kept.path_for(body_sha256, outcome.kind, outcome.content_type, outcome.language)


def _parsed(
    outcome: FetchOutcome, body_sha256: str, blobs: BlobStore, now: datetime
) -> ParseResult | SourceError:
    """The items of a body the source delivered: its kept result, else parsed now."""
    where = {"source_id": outcome.source_id, "url": outcome.url}
    kept = parsed_results_for(blobs)
    found = kept.get(_kept_path(kept, outcome, body_sha256), now, **where)
    if found is not None:
        return found
    try:
        body = blobs.get(body_sha256)
    except (OSError, EOFError, zlib.error) as exc:
        return BlobError(f"raw body {body_sha256} cannot be read back: {exc}", **where)
    return _parse(outcome, body, now)


def _parse(outcome: FetchOutcome, body: bytes, now: datetime) -> ParseResult | ParseError:
    try:
        return parse_body(
            outcome.kind,
            body,
            source_id=outcome.source_id,
            url=outcome.url,
            now=now,
            content_type=outcome.content_type,
            language=outcome.language,
        )
    except ParseError as exc:
        return exc
    except Exception as exc:
        # A parser tripping over hostile input fails this source only, with the reason.
        return ParseError(
            f"unreadable document ({type(exc).__name__}: {exc})", source_id=outcome.source_id, url=outcome.url
        )


def _identify(
    store: EventStore,
    outcome: FetchOutcome,
    result: ParseResult,
    state: FeedState,
    heads: dict[str, StreamHead],
    blobs: BlobStore,
    now: datetime,
) -> dict[str, Any] | None:
    """Identify a source's items by link once its guids proved unstable.

    Returns the decision when it is taken in this fetch (recorded in its payload).
    """
    decision = state.identity_decision
    taken_now = None
    if decision is None:
        decision = taken_now = _unstable_guids(outcome, result, state, heads, blobs, now)
        if decision is None:
            return None
    carried: dict[str, str] = decision.get("carried") or {}
    # A link several items share (a live blog, a section page) identifies none of them.
    unique_links = _links_once(result.items)
    seen: dict[str, int] = {}
    kept: list[ParsedItem] = []
    for index, item in enumerate(result.items):
        if item.url in unique_links:
            item.identity = link_identity(item.url, carried)
        if item.identity in seen:
            reason = f"duplicate identity in feed (first at item {seen[item.identity]})"
            result.rejections.append(Rejection(index, reason, item.identity))
            continue
        seen[item.identity] = index
        kept.append(item)
    result.items = kept
    _look_up_heads(store, outcome.source_id, kept, heads)
    return taken_now


def link_identity(url: str, carried: dict[str, str]) -> str:
    """The identity of an item with this web page's ``url`` of a source identified by link:
    the one its article had when the decision was taken (``carried``), else the link itself."""
    return carried.get(url, url)


def link_identities(states: dict[str, FeedState], source_id: str) -> dict[str, str] | None:
    """The ``carried`` identities of a source identified by link (see ``_identify``), None
    for a source identified by guid."""
    decision = states[source_id].identity_decision if source_id in states else None
    return None if decision is None else decision.get("carried") or {}


def _look_up_heads(
    store: EventStore, source_id: str, items: list[ParsedItem], heads: dict[str, StreamHead]
) -> None:
    """Add to ``heads`` those of the streams of ``items`` newly identified (a head already
    there may be ahead of the log: another fetch's in the same batch)."""
    for stream_id, head in _heads(store, ((source_id, item) for item in items)).items():
        heads.setdefault(stream_id, head)


def _links_once(items: list[ParsedItem]) -> set[str]:
    """The links that exactly one of ``items`` has."""
    counts = Counter(item.url for item in items if item.url)
    return {link for link, count in counts.items() if count == 1}


def _shared_guids(items: list[ParsedItem]) -> set[str]:
    """The guids that more than one of ``items`` has."""
    counts = Counter(item.guid for item in items if item.guid)
    return {guid for guid, count in counts.items() if count > 1}


def _unstable_guids(
    outcome: FetchOutcome,
    result: ParseResult,
    state: FeedState,
    heads: dict[str, StreamHead],
    blobs: BlobStore,
    now: datetime,
) -> dict[str, Any] | None:
    """The decision to identify by link, when most links this body shares with the
    source's previous body came with a different guid; else None.

    Looked at only when at least half of the body's guids are new to the log, so
    a stable feed never pays for parsing its previous body.
    """
    # A guid several items share (``follow_shared_guids``) shows nothing of guids moving.
    shared = _shared_guids(result.items)
    with_guid = [item for item in result.items if item.guid and item.url and item.guid not in shared]
    if len(with_guid) < 2 or not state.latest_body:
        return None
    new = [item for item in with_guid if article_id(outcome.source_id, item.identity) not in heads]
    if len(new) * 2 < len(with_guid):
        return None
    previous = _parsed(outcome, state.latest_body, blobs, now)
    if isinstance(previous, SourceError):  # an unreadable previous body only means no decision
        return None
    # Only links that stand for one item in both bodies can show a guid moving.
    links_before = _links_once(previous.items)
    shared_before = _shared_guids(previous.items)
    before = {
        item.url: item.identity
        for item in previous.items
        if item.guid and item.guid not in shared_before and item.url in links_before
    }
    links_now = _links_once(with_guid)
    shared = [item for item in with_guid if item.url in before and item.url in links_now]
    moved = [item for item in shared if before[item.url] != item.identity]
    if len(moved) < 2 or len(moved) * 5 < len(shared) * 4:
        return None
    return {
        "mode": "link",
        "reason": f"{len(moved)} of {len(shared)} links also in the previous body came with a new guid; "
        "items are identified by link from now on",
        "decided_at": now.isoformat(),
        "carried": before,
    }


def _failed(outcome: FetchOutcome, summary: SourceSummary, error_class: str, message: str) -> PendingEvent:
    summary.status, summary.message = "failed", f"{error_class}: {message}"
    summary.counts["failed"] += 1
    payload = {**_fetch_payload(outcome), "error_class": error_class, "error_message": message}
    return PendingEvent("feed.failed", f"feed:{outcome.source_id}", outcome.source_id, payload)


#: How much earlier than the fetch that delivered its source's latest body a fetch must be
#: made to be judged older: fetch tasks run on machines whose clocks may differ by a little.
OLDER_FETCH_MARGIN = timedelta(minutes=5)


def _older_than_latest_body(outcome: FetchOutcome, latest: dict[str, datetime], now: datetime) -> bool:
    """Whether the fetch was made well before the one that delivered its source's latest body
    (``latest``: by source): recorded late (it waited for the writer behind a newer run, or
    a failed run of long ago was cleared and run again), it is history, not the articles'
    latest word. A latest body dated after ``now`` (the clock was set back since) says nothing."""
    made, newest = parse_datetime(outcome.fetched_at), latest.get(outcome.source_id)
    if not outcome.body_sha256 or made is None or newest is None:
        return False
    return newest <= now and made < newest - OLDER_FETCH_MARGIN


def _events_for_outcome(
    outcome: FetchOutcome,
    result: ParseResult | SourceError | None,
    heads: dict[str, StreamHead],
    summary: SourceSummary,
    identity_decision: dict[str, Any] | None = None,
    *,
    older: bool = False,
) -> list[PendingEvent]:
    """The fetch's event and its items' events. A fetch ``older`` than the one that delivered
    its source's latest body is recorded without its body as the latest (``content_hash``),
    and of its items only articles new to the log are recorded: the others are counted
    stale, what it says of them was said before what the log holds."""
    feed_stream = f"feed:{outcome.source_id}"
    if not outcome.ok:
        return [
            _failed(
                outcome, summary, outcome.error_class or "FetchError", outcome.error_message or "fetch failed"
            )
        ]
    if isinstance(result, SourceError):
        # The body is kept (body_sha256), so a better parser can read it later.
        return [_failed(outcome, summary, type(result).__name__, result.message)]
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
    items = result.items
    if older:
        payload["older_than_latest_body"] = True
        items = [item for item in items if article_id(outcome.source_id, item.identity) not in heads]
    article_events, counts = decide(outcome.source_id, items, heads, raw_ref)
    counts["stale"] += len(result.items) - len(items)
    summary.counts.update(counts)
    summary.counts["rejected"] += len(result.rejections)
    notes = [result.warning] if result.warning else []
    if result.items_cut:
        notes.append(f"{result.items_cut:,} items past the first {MAX_ITEMS_PER_DOCUMENT:,} not read")
    if identity_decision:
        notes.append("guids change on every fetch: identified by link from now on")
    if notes:
        summary.message = "; ".join(note[:120] for note in notes)
    payload.update(
        items_seen=len(result.items) + len(result.rejections) + result.items_cut,
        new=counts["new"],
        revised=counts["revised"],
        withdrawn=counts["withdrawn"],
        unchanged=counts["unchanged"],
        stale=counts["stale"],
        partial=counts["partial"],
        rejected=len(result.rejections),
        rejections=[
            {"index": r.index, "reason": r.reason, "identity": r.identity}
            for r in result.rejections[:MAX_LISTED_REJECTIONS]
        ],
        items_cut=result.items_cut,
        fields_cut=[
            {"identity": identity, "fields": fields}
            for identity, fields in list(result.fields_cut.items())[:MAX_LISTED_REJECTIONS]
        ],
        parse_warning=result.warning,
        feed_title=result.feed_title,
    )
    if identity_decision:
        payload["identity_decision"] = identity_decision
    body = None if older else outcome.body_sha256
    fetched = PendingEvent("feed.fetched", feed_stream, outcome.source_id, payload, content_hash=body)
    return [fetched, *article_events]


def ingest(
    sources: list[Source],
    db_path: Path,
    *,
    limits: FetchLimits | None = None,
    due_only: bool = False,
    lock_timeout: float = RECORD_LOCK_TIMEOUT,
    on_fetched: Callable[[FetchOutcome], None] | None = None,
) -> IngestReport:
    """Fetch every source once and record what changed. Failures are recorded, not raised.

    No database lock is held while planning, fetching or parsing; bodies are
    parsed in worker processes as they arrive when there are many (see ``ParsePool``).
    """
    blobs = blob_store_for(db_path)
    states = read_feed_states(db_path, lock_timeout=lock_timeout)
    planned = plan(states, sources, due_only=due_only)
    last_bodies = {source_id: state.latest_body for source_id, state in states.items()}
    with ParsePool(blobs, skip=last_bodies, workers=parse_workers()) as parsing:

        def fetched(outcome: FetchOutcome) -> None:
            parsing.fetched(outcome)
            if on_fetched:
                on_fetched(outcome)

        outcomes = fetch_all(
            planned.requests,
            blobs,
            limits=limits,
            politeness={s.id: s.politeness_delay_seconds for s in sources},
            on_done=fetched,
        )
        parsed = parsing.results()
    report = record(db_path, outcomes, blobs, lock_timeout=lock_timeout, parsed_by_source=parsed)
    for source_id, until in planned.deferred.items():
        report.sources.append(
            SourceSummary(
                source_id, status="deferred", message=f"the server asked us to wait until {until} UTC"
            )
        )
    return report
