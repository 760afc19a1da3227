"""The event log: append-only, hash-chained, one writer at a time."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from ingestion._log.record import ingest
from ingestion._log.store import EventStore, PendingEvent, anchor_path
from ingestion._log.verify import verify
from ingestion._sources.config import Source
from ingestion._sources.dates import utcnow
from ingestion.exceptions import StoreError, StoreLockedError

from .conftest import run_cli
from .feeds import item, rss


@pytest.fixture
def filled_db(tmp_path: Path, db_path: Path) -> Path:
    feed = tmp_path / "feed.xml"
    for round_titles in (["A", "B"], ["A2", "B", "C"], ["A3", "B", "C"]):
        feed.write_bytes(rss([item(n, title) for n, title in enumerate(round_titles)]))
        ingest([Source("local", str(feed))], db_path)
    return db_path


def test_versions_are_contiguous_and_ids_unique(filled_db: Path) -> None:
    with duckdb.connect(str(filled_db), read_only=True) as con:
        rows = con.execute(
            "SELECT payload ->> '$.title', stream_version, event_type FROM raw.events "
            "WHERE starts_with(event_type, 'article.') ORDER BY stream_id, stream_version"
        ).fetchall()
    titles = {(t, v, e) for t, v, e in rows}
    assert ("A", 1, "article.published") in titles
    assert ("A2", 2, "article.revised") in titles
    assert ("A3", 3, "article.revised") in titles
    assert verify(filled_db).ok


@pytest.mark.parametrize(
    ("tamper", "check"),
    [
        (
            "UPDATE raw.events SET payload = replace(payload::VARCHAR, 'A2', 'A9')::JSON "
            "WHERE payload ->> '$.title' = 'A2'",
            "payload_hash",
        ),
        (
            "UPDATE raw.events SET recorded_at = recorded_at + INTERVAL 1 HOUR WHERE event_seq = 3",
            "event_hash",
        ),
        ("DELETE FROM raw.events WHERE event_seq = 2", "chain"),
        (
            "UPDATE raw.events SET event_id = (SELECT event_id FROM raw.events WHERE event_seq = 1) "
            "WHERE event_seq = 2",
            "unique_ids",
        ),
        ("DELETE FROM raw.events WHERE event_seq = (SELECT max(event_seq) FROM raw.events)", "anchor"),
        # No index refuses a stream's version twice (the one writer numbers them): verify finds it.
        ("UPDATE raw.events SET stream_version = 1 WHERE payload ->> '$.title' = 'A2'", "stream_versions"),
        # Whoever can write the file can drop NOT NULL: a NULL hash must fail its check.
        (
            "ALTER TABLE raw.events ALTER payload_hash DROP NOT NULL; "
            "ALTER TABLE raw.events ALTER event_hash DROP NOT NULL; "
            "UPDATE raw.events SET payload = replace(payload::VARCHAR, 'A2', 'A9')::JSON, "
            "payload_hash = NULL, event_hash = NULL WHERE payload ->> '$.title' = 'A2'",
            "payload_hash",
        ),
    ],
)
def test_verify_names_the_first_altered_event(filled_db: Path, tamper: str, check: str) -> None:
    with duckdb.connect(str(filled_db)) as con:
        con.execute(tamper)
    report = verify(filled_db)
    assert not report.ok
    assert any(problem.startswith(check) for problem in report.problems), report.problems
    result = run_cli("verify", "--db", str(filled_db))
    assert result.returncode == 1
    assert f"FAIL {check}" in result.stdout and "event #" in result.stdout


def test_a_second_writer_gets_a_clear_error(filled_db: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(filled_db)!r})
            print("locked", flush=True)
            sys.stdin.readline()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreLockedError, match="in use by another process"):
            EventStore(filled_db, lock_timeout=0.5)
    finally:
        holder.communicate("\n", timeout=30)
    with EventStore(filled_db, lock_timeout=5):
        pass


def test_each_append_is_noted_and_the_log_keeps_no_index(filled_db: Path) -> None:
    # An index on the log is written out whole at every checkpoint after an append.
    with duckdb.connect(str(filled_db), read_only=True) as con:
        assert con.execute(
            "SELECT count(*) FROM duckdb_constraints() WHERE schema_name = 'raw' AND table_name = 'events' "
            "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
        ).fetchall() == [(0,)]
        appends = con.execute("SELECT first_event_seq, last_event_seq FROM raw.appends ORDER BY 1").fetchall()
        [(events,)] = con.execute("SELECT count(*) FROM raw.events").fetchall()
    assert len(appends) == 3  # one a run
    assert [first for first, _ in appends] == [1, *(last + 1 for _, last in appends[:-1])]
    assert appends[-1][1] == events


def test_events_past_the_anchor_are_noted(filled_db: Path) -> None:
    """A writer that stopped between its commit and moving the anchor (or rows added by
    other means) leaves events past it: not proof of tampering, but said."""
    anchor = anchor_path(filled_db)
    before = anchor.read_text()
    with EventStore(filled_db) as store, store.transaction():
        store.append(
            [PendingEvent("feed.fetched", "feed:x", "x", {})], recorded_at=utcnow(), run_id="stopped"
        )
    anchor.write_text(before)  # as if it had stopped before moving the anchor
    report = verify(filled_db)
    assert report.ok
    assert any(note.startswith("1 event after the anchor") for note in report.notes), report.notes


def test_a_log_made_with_the_key_keeps_it_and_notes_its_next_appends(db_path: Path) -> None:
    now = utcnow()

    def fetched(run: str) -> list[PendingEvent]:
        return [PendingEvent("feed.fetched", "feed:a", "a", {"run": run})]

    with EventStore(db_path) as store, store.transaction():
        store.append(fetched("r1"), recorded_at=now, run_id="r1")
    with duckdb.connect(str(db_path)) as con:  # as logs were made before raw.appends
        con.execute("DROP TABLE raw.appends")
        con.execute("ALTER TABLE raw.events ADD PRIMARY KEY (event_seq)")
    for run in ("r2", "r3"):
        with EventStore(db_path) as store, store.transaction():
            store.append(fetched(run), recorded_at=now, run_id=run)
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert con.execute("SELECT * FROM raw.appends ORDER BY 1").fetchall() == [(2, 2), (3, 3)]
        assert con.execute(
            "SELECT constraint_column_names FROM duckdb_constraints() "
            "WHERE table_name = 'events' AND constraint_type = 'PRIMARY KEY'"
        ).fetchall() == [(["event_seq"],)]
    assert verify(db_path).ok


def test_two_writers_in_one_process_get_a_clear_error(db_path: Path) -> None:
    # DuckDB's file lock keeps other processes out; connections of one process share
    # the database, and a conflict only shows at commit.
    now = utcnow()

    def fetched(source: str) -> list[PendingEvent]:
        return [PendingEvent("feed.fetched", f"feed:{source}", source, {"source": source})]

    with EventStore(db_path) as first, EventStore(db_path) as second:
        with first.transaction():
            first.append(fetched("a"), recorded_at=now, run_id="r1")
        with pytest.raises(StoreError, match="another writer"), first.transaction():
            first.append(fetched("a"), recorded_at=now, run_id="r2")
            with second.transaction():  # commits first: event #2 is its
                second.append(fetched("b"), recorded_at=now, run_id="r3")
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert con.execute("SELECT run_id FROM raw.events ORDER BY event_seq").fetchall() == [
            ("r1",),
            ("r3",),
        ]
    assert verify(db_path).ok


def test_a_copied_log_is_the_same_log_and_only_a_prefix_is_topped_up(filled_db: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy" / "newsroom.duckdb"
    with EventStore(copy) as store:
        assert store.copy_events_from(filled_db) > 0
    with EventStore(copy) as store:
        assert store.copy_events_from(filled_db) == 0
    assert verify(copy).ok
    with duckdb.connect(str(filled_db), read_only=True) as a, duckdb.connect(str(copy), read_only=True) as b:
        sql = "SELECT * FROM raw.events ORDER BY event_seq"
        assert a.execute(sql).fetchall() == b.execute(sql).fetchall()

    other = tmp_path / "other" / "newsroom.duckdb"
    with EventStore(other) as store, store.transaction():
        store.append(
            [PendingEvent("feed.failed", "feed:x", "x", {"error": "unreachable"})],
            recorded_at=utcnow(),
            run_id="another-log",
        )
    with EventStore(other) as store, pytest.raises(StoreError, match="not a copy"):
        store.copy_events_from(filled_db)


def _payload_storage(db_path: Path) -> set[str]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        rows = con.execute(
            "SELECT DISTINCT compression FROM pragma_storage_info('raw.events') "
            "WHERE column_name = 'payload' AND compression <> 'Constant'"
        ).fetchall()
    return {row[0] for row in rows}


def _append_pages(db_path: Path, pages: int) -> None:
    text = "A long paragraph of wire copy about the harbour strike. " * 40
    with EventStore(db_path) as store, store.transaction():
        store.append(
            [
                PendingEvent("feed.fetched", f"feed:s{n}", f"s{n}", {"body": f"{n} {text}"})
                for n in range(pages)
            ],
            recorded_at=utcnow(),
            run_id="r1",
        )


def test_a_new_log_keeps_its_payloads_compressed(db_path: Path) -> None:
    _append_pages(db_path, 3_000)
    assert _payload_storage(db_path) == {"ZSTD"}
    assert verify(db_path).ok


def test_a_log_made_in_the_older_format_keeps_working(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    duckdb.connect(str(db_path), config={"storage_compatibility_version": "v1.0.0"}).close()
    _append_pages(db_path, 3_000)
    _append_pages(db_path, 10)
    assert "ZSTD" not in _payload_storage(db_path)  # that format cannot hold it
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.events").fetchall() == [(3_010,)]
    assert verify(db_path).ok


def test_a_wire_version_older_than_the_logged_one_records_nothing(tmp_path: Path, db_path: Path) -> None:
    # The logged version is read from the payloads of the stream's events, and only for
    # items that bring a version of their own (heads' wire_versions_of).
    feed = tmp_path / "wire.json"
    source = Source("wire", str(feed), kind="ninjs")

    def deliver(version: str, headline: str) -> dict[str, int]:
        doc = {"uri": "urn:wire:1", "version": version, "pubstatus": "usable", "headline": headline}
        feed.write_text(json.dumps(doc))
        return ingest([source], db_path).totals()

    assert deliver("3", "Talks begin")["new"] == 1
    assert deliver("2", "Talks to begin")["stale"] == 1  # an older version arriving late
    assert deliver("4", "Talks begin in Geneva")["revised"] == 1
    with duckdb.connect(str(db_path), read_only=True) as con:
        titles = con.execute(
            "SELECT payload ->> '$.title' FROM raw.events "
            "WHERE starts_with(event_type, 'article.') ORDER BY event_seq"
        ).fetchall()
    assert titles == [("Talks begin",), ("Talks begin in Geneva",)]


def _wire_history(db_path: Path) -> list[tuple]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(
            "SELECT event_type, payload ->> '$.title' FROM raw.events "
            "WHERE starts_with(event_type, 'article.') ORDER BY event_seq"
        ).fetchall()


def test_a_version_without_a_number_leaves_the_version_logged_before(tmp_path: Path, db_path: Path) -> None:
    """v3, then a kill that carries no version (ninjs makes it optional), then v2 late: v2 is
    older than v3, which the log holds; it does not bring the article back with older text."""
    feed = tmp_path / "wire.json"
    source = Source("wire", str(feed), kind="ninjs")

    def deliver(version: str | None, status: str, headline: str) -> dict[str, int]:
        doc = {"uri": "urn:wire:3", "pubstatus": status, "headline": headline}
        feed.write_text(json.dumps(doc if version is None else {**doc, "version": version}))
        return ingest([source], db_path).totals()

    assert deliver("3", "usable", "Talks begin in Geneva")["new"] == 1
    assert deliver(None, "canceled", "Talks begin in Geneva")["withdrawn"] == 1
    assert deliver("2", "usable", "Talks begin")["stale"] == 1
    assert [event_type for event_type, _ in _wire_history(db_path)] == [
        "article.published",
        "article.withdrawn",
    ]


@pytest.mark.parametrize(
    ("versions", "recorded"),
    [
        (["1.9", "1.10"], ["1.9", "1.10"]),  # dotted: 1.10 comes after 1.9
        (["1", "1e999999999", "2"], ["1", "1e999999999", "2"]),  # orders nothing, silences nothing
        (["2", "1_000", "3"], ["2", "1_000", "3"]),
    ],
)
def test_a_version_that_orders_by_its_parts_or_not_at_all(
    tmp_path: Path, db_path: Path, versions: list[str], recorded: list[str]
) -> None:
    feed = tmp_path / "wire.json"
    source = Source("wire", str(feed), kind="ninjs")
    for number, version in enumerate(versions):
        doc = {"uri": "urn:wire:4", "version": version, "pubstatus": "usable", "headline": f"Quake, {number}"}
        feed.write_text(json.dumps(doc))
        ingest([source], db_path)
    with duckdb.connect(str(db_path), read_only=True) as con:
        logged = con.execute(
            "SELECT payload ->> '$.wire.version' FROM raw.events WHERE starts_with(event_type, 'article.') "
            "ORDER BY event_seq"
        ).fetchall()
    assert [version for (version,) in logged] == recorded


@pytest.mark.parametrize("written", [3.0, "3.0", " 3"])
def test_a_version_is_a_number_however_it_is_written(tmp_path: Path, db_path: Path, written: object) -> None:
    """dpa digitalwires' ``"version": 3.0`` (its structure allows a number) is version 3, so
    version 2 arriving after it is older."""
    feed = tmp_path / "wire.json"
    source = Source("wire", str(feed), kind="ninjs")

    def deliver(version: object, headline: str) -> dict[str, int]:
        doc = {
            "format": "digitalwires",
            "urn": "urn:newsml:dpa.com:1",
            "version": version,
            "headline": headline,
        }
        feed.write_text(json.dumps(doc))
        return ingest([source], db_path).totals()

    assert deliver(written, "Talks begin in Geneva")["new"] == 1
    assert deliver(2, "Talks begin")["stale"] == 1
    assert deliver(4, "Talks end")["revised"] == 1
    assert [title for _, title in _wire_history(db_path)] == ["Talks begin in Geneva", "Talks end"]


def test_an_older_canceled_version_withdraws_nothing(tmp_path: Path, db_path: Path) -> None:
    """v1 usable, v2 canceled, v3 usable: v2 served again, or listed after v3 in one
    document, is history already told, not a withdrawal of v3."""
    feed = tmp_path / "wire.json"
    source = Source("wire", str(feed), kind="ninjs")

    def version(number: int, status: str) -> dict[str, str]:
        return {
            "uri": "urn:wire:2",
            "version": str(number),
            "pubstatus": status,
            "headline": f"Talks, {number}",
        }

    def deliver(*versions: dict[str, str]) -> dict[str, int]:
        feed.write_text(json.dumps(list(versions)))
        return ingest([source], db_path).totals()

    assert deliver(version(1, "usable"))["new"] == 1
    assert deliver(version(2, "canceled"))["withdrawn"] == 1
    assert deliver(version(3, "usable"))["revised"] == 1
    assert deliver(version(2, "canceled"))["stale"] == 1
    assert (
        deliver(version(3, "usable"), version(2, "canceled"), version(1, "usable")).get("withdrawn", 0) == 0
    )
    assert deliver(version(3, "canceled"))["withdrawn"] == 1  # a kill may keep the version it cancels
    with duckdb.connect(str(db_path), read_only=True) as con:
        types = con.execute(
            "SELECT event_type FROM raw.events WHERE starts_with(event_type, 'article.') ORDER BY event_seq"
        ).fetchall()
    assert types == [
        ("article.published",),
        ("article.withdrawn",),
        ("article.revised",),
        ("article.withdrawn",),
    ]


def test_a_partial_representation_deletes_nothing_and_keeps_no_version_out(
    tmp_path: Path, db_path: Path
) -> None:
    """ninjs ``representationtype: partial`` (1.x: ``incomplete``) says not every property is
    there: what it leaves out is not deleted, and the whole representation of its version,
    arriving after it, is still read."""
    feed = tmp_path / "wire.json"
    source = Source("wire", str(feed), kind="ninjs")
    body = [{"value": "<p>Delegates met in Geneva.</p>", "contenttype": "text/html"}]

    def deliver(uri: str, version: str, representation: str, **extra: object) -> dict[str, int]:
        doc = {"uri": uri, "version": version, "representationtype": representation, **extra}
        feed.write_text(json.dumps({"headlines": [{"value": "Talks begin"}], **doc}))
        return ingest([source], db_path).totals()

    assert deliver("urn:a", "1", "full", bodies=body)["new"] == 1
    assert deliver("urn:a", "2", "partial")["partial"] == 1  # no body: a listing, not a deletion
    assert deliver("urn:a", "2", "full", bodies=body)["unchanged"] == 1
    assert deliver("urn:b", "1", "partial")["new"] == 1  # all the log has of it
    assert deliver("urn:b", "1", "full", bodies=body)["revised"] == 1  # its body, at last
    assert deliver("urn:b", "2", "partial", pubstatus="canceled")["withdrawn"] == 1
    with duckdb.connect(str(db_path), read_only=True) as con:
        history = con.execute(
            "SELECT payload ->> '$.identity', event_type, payload ->> '$.body' FROM raw.events "
            "WHERE starts_with(event_type, 'article.') ORDER BY event_seq"
        ).fetchall()
    text = "Delegates met in Geneva."
    assert history[:3] == [
        ("urn:a", "article.published", text),
        ("urn:b", "article.published", ""),
        ("urn:b", "article.revised", text),
    ]
    assert history[3][:2] == ("urn:b", "article.withdrawn")
