"""What the log says about each source's fetches, kept beside the database.

``record`` writes ``<db>.feeds.json`` after every commit, anchored to the log's
last event; planning reads it without opening DuckDB, so it never waits for the
writer. A file whose anchor is not the log's current head is ignored.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ingestion._files import write_atomically
from ingestion._log.store import EventStore, anchor_path, read_anchor_file
from ingestion._sources.dates import parse_datetime

#: The fields that are times (ISO 8601 text in the states file).
_TIMES = ("last_fetched_at", "last_unconditional_at", "latest_body_fetched_at", "retry_after_until")


@dataclass(slots=True)
class FeedState:
    """What the log says about one source's fetches (see ``EventStore.feed_states``)."""

    last_fetched_at: datetime | None = None
    last_unconditional_at: datetime | None = None
    latest_body: str | None = None
    #: When the fetch that delivered ``latest_body`` was made (by the fetching machine's clock).
    latest_body_fetched_at: datetime | None = None
    etag: str | None = None
    last_modified: str | None = None
    retry_after_until: datetime | None = None
    #: ``{"mode": "link", "reason": ..., "carried": {url: identity}}`` once the
    #: source's guids proved unstable; None while guids identify its items.
    identity_decision: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeedState:
        state = cls(**{name: data.get(name) for name in cls.__slots__})
        for name in _TIMES:
            value = getattr(state, name)
            if isinstance(value, str):
                setattr(state, name, parse_datetime(value))
        return state

    def to_dict(self) -> dict[str, Any]:
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in asdict(self).items()
        }


_FIELDS = frozenset(FeedState.__slots__)


def feed_states_path(db_path: Path) -> Path:
    """The feed states as of the last ``record``, beside the database: planning
    reads them without opening DuckDB, so it never waits for the writer."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".feeds.json")


def read_feed_states(db_path: Path, *, lock_timeout: float = 30.0) -> dict[str, FeedState]:
    """The states file when it is current, else the log itself (taking the lock)."""
    db_path = Path(db_path)
    if not db_path.exists():
        return {}
    current = current_states_file(db_path)
    if current is not None:
        return current
    with EventStore(db_path, lock_timeout=lock_timeout) as store:
        return states_of(store)


#: ``current_states_file``'s default: the log's last event as the anchor file names it.
_ANCHOR_FILE: Any = object()


def current_states_file(db_path: Path, log_head: Any = _ANCHOR_FILE) -> dict[str, FeedState] | None:
    """The states file, if it names the log's last event (the anchor every append
    moves), so that nothing appended since, by any command, is missed; else None.
    ``log_head``: the last event as the log itself says (``EventStore.last_anchor``),
    for a writer holding the lock: an anchor a crash left behind the log is then no
    reason to trust a states file as old as it."""
    expected = read_anchor_file(anchor_path(db_path)) if log_head is _ANCHOR_FILE else log_head
    try:
        data = json.loads(feed_states_path(db_path).read_text(encoding="utf-8"))
        # A file written before a field was added holds none of it: the log says what it is
        if (
            data["anchor"] is not None
            and data["anchor"] == expected
            and all(set(state) >= _FIELDS for state in data["sources"].values())
        ):
            return {source: FeedState.from_dict(state) for source, state in data["sources"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        pass  # missing, stale or damaged: it is only a copy of what the log says
    return None


def states_of(store: EventStore, after_seq: int = 0) -> dict[str, FeedState]:
    """The feed states of the log's events after ``after_seq`` (all by default)."""
    return {source: FeedState.from_dict(state) for source, state in store.feed_states(after_seq).items()}


def fold_states(earlier: dict[str, FeedState], later: dict[str, FeedState]) -> dict[str, FeedState]:
    """The states of a log from those of its events up to some point (``earlier``) and
    of its events after it (``later``): what ``states_of`` gives for the whole log, at
    the cost of reading only the new events. The validators are the latest body's (with
    it, even None); every other field is the latest value given, so a later one wins
    unless it is None."""
    folded = dict(earlier)
    for source, new in later.items():
        old = folded.get(source)
        if old is None:
            folded[source] = new
            continue
        values = {}
        for name in FeedState.__slots__:
            before, after = getattr(old, name), getattr(new, name)
            if name in ("etag", "last_modified") and new.latest_body is not None:
                values[name] = after
            else:
                values[name] = before if after is None else after
        folded[source] = FeedState(**values)
    return folded


def write_feed_states(db_path: Path, states: dict[str, FeedState]) -> None:
    data = {
        "anchor": read_anchor_file(anchor_path(db_path)),
        "sources": {source: state.to_dict() for source, state in states.items()},
    }
    write_atomically(feed_states_path(db_path), json.dumps(data, ensure_ascii=False).encode("utf-8"))
