"""Checking that the event log is exactly what was appended."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ingestion._log.store import (
    CHAIN_HASH_SQL,
    DERIVED_EVENT_IDS_SQL,
    GENESIS_HASH,
    EventStore,
    read_anchor_file,
)
from ingestion._publish.sql import error_line
from ingestion.exceptions import StoreError


@dataclass(slots=True)
class VerifyReport:
    events: int = 0
    streams: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# Each check returns (event_seq, event_id, reason) of offending events, first first.
# IS DISTINCT FROM, not <>: whoever can write the file can drop NOT NULL, and a NULL
# hash compared with <> fails no check.
_CHECKS = {
    "payload_hash": """
        SELECT event_seq, event_id, 'payload does not match payload_hash (payload edited)'
        FROM raw.events WHERE payload_hash IS DISTINCT FROM sha256(payload::VARCHAR)""",
    "event_hash": f"""
        SELECT event_seq, event_id, 'event_hash does not match its fields (event edited)'
        FROM raw.events WHERE event_hash IS DISTINCT FROM {CHAIN_HASH_SQL}""",
    "chain": f"""
        SELECT event_seq, event_id, 'prev_hash does not link to the previous event '
               || '(event removed, inserted or reordered)'
        FROM (SELECT *, lag(event_hash, 1, '{GENESIS_HASH}') OVER (ORDER BY event_seq) AS expected
              FROM raw.events)
        WHERE prev_hash IS DISTINCT FROM expected""",
    "sequence": """
        SELECT event_seq, event_id, 'event_seq is not contiguous (expected ' || expected || ')'
        FROM (SELECT *, row_number() OVER (ORDER BY event_seq) AS expected FROM raw.events)
        WHERE event_seq IS DISTINCT FROM expected""",
    "stream_versions": """
        SELECT event_seq, event_id,
               'stream ' || stream_id || ' has version ' || stream_version || ' where '
               || expected || ' was expected'
        FROM (SELECT *, row_number() OVER (PARTITION BY stream_id ORDER BY stream_version)
                     AS expected FROM raw.events)
        WHERE stream_version IS DISTINCT FROM expected""",
    "event_ids": f"""
        SELECT event_seq, event_id, 'event_id is not the one derived from stream and version'
        FROM ({DERIVED_EVENT_IDS_SQL}) WHERE event_id IS DISTINCT FROM derived_id""",
    "unique_ids": """
        SELECT min(event_seq), event_id, 'event_id appears ' || count(*) || ' times'
        FROM raw.events GROUP BY event_id HAVING count(*) > 1""",
}


def verify(db_path: Path) -> VerifyReport:
    """Recompute every hash and sequence in SQL; name the first bad event per check.

    A file that cannot be read to the end (truncated, a damaged block) raises
    StoreError rather than reporting problems: problems name altered events, and
    what was not read was not verified.
    """
    try:
        with EventStore(db_path, read_only=True) as store:
            return _verify(store)
    except duckdb.Error as exc:
        raise StoreError(
            f"{db_path} could not be read, so it was not verified (damaged or truncated file? "
            f"restore it from a backup): {error_line(exc)}"
        ) from exc


def _verify(store: EventStore) -> VerifyReport:
    report = VerifyReport()
    con = store.con
    # The anchor is read before the log: a writer moves it only after its commit, so
    # even with writers at work (a lake has no file lock to keep them out) the log read
    # next holds the event it names. One transaction, so every check sees one state.
    anchor = _read_anchor(store, report)
    con.execute("BEGIN TRANSACTION")
    try:
        report.events, report.streams = con.execute(
            "SELECT count(*), count(DISTINCT stream_id) FROM raw.events"
        ).fetchall()[0]
        for name, sql in _CHECKS.items():
            rows = con.execute(f"SELECT * FROM ({sql}) ORDER BY 1 LIMIT 1").fetchall()
            if rows:
                first = rows[0]
                count = con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0]
                report.problems.append(
                    f"{name}: first bad event #{first[0]} ({first[1]}): {first[2]}"
                    + (f" [{count} events fail this check]" if count > 1 else "")
                )
        if anchor is not None:
            _check_anchor(store, anchor, report)
    finally:
        with suppress(duckdb.Error):  # after a failed read there is nothing to end
            con.execute("ROLLBACK")
    return report


def _read_anchor(store: EventStore, report: VerifyReport) -> tuple[int, str] | None:
    path = store.anchor_path
    if not path.exists():
        report.notes.append(f"no anchor file {path.name}: cannot check that no events were cut off the end")
        return None
    anchor = read_anchor_file(path)
    try:
        seq, event_hash = anchor["event_seq"], anchor["event_hash"]
    except (KeyError, TypeError):  # unreadable, not an object, a key missing
        seq = event_hash = None
    # What a writer wrote: a whole number and a hash (not 2.7, true or 1e999, which JSON allows)
    if type(seq) is not int or not 0 <= seq < 2**63 or not isinstance(event_hash, str):
        report.problems.append(f"anchor: {path.name} is not a valid anchor (edited or damaged)")
        return None
    return seq, event_hash


def _check_anchor(store: EventStore, anchor: tuple[int, str], report: VerifyReport) -> None:
    seq, event_hash = anchor
    rows = store.con.execute("SELECT event_hash FROM raw.events WHERE event_seq = ?", [seq]).fetchall()
    if not rows:
        report.problems.append(
            f"anchor: event #{seq} was appended but is no longer in the log (events removed from the end)"
        )
    elif rows[0][0] != event_hash:
        report.problems.append(f"anchor: event #{seq} differs from the one appended")
    [(after,)] = store.con.execute("SELECT count(*) FROM raw.events WHERE event_seq > ?", [seq]).fetchall()
    if after:
        # A writer moves the anchor just after its commit: one that stopped in between, or
        # rows added by hand (with a chain computed as ours), leave events past it.
        report.notes.append(
            f"{after:,} event{'s' if after > 1 else ''} after the anchor's event #{seq}: a writer stopped "
            "before moving it, or events added by other means; the next append moves it"
        )
