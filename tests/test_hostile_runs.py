"""Runs that do not go as planned: recorded late, under a clock set back, stopped between
the log's commit and the files beside it, or retried."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

import ingestion._log.record as recording
import ingestion._log.store as store_module
from ingestion._derive.entities import extract_entities
from ingestion._log.feed_states import feed_states_path, read_feed_states
from ingestion._log.record import blob_store_for, record
from ingestion._log.verify import verify
from ingestion._model import FetchOutcome
from ingestion._sources.config import Source
from ingestion._sources.dates import utcnow
from ingestion._sources.plan import plan
from ingestion.exceptions import StoreError

from .feeds import item, rss

REPOSITORY = Path(__file__).resolve().parents[1]


def _fetched(db_path: Path, source_id: str, body: bytes, fetched_at: str) -> FetchOutcome:
    """What a fetch task hands the writer: the body in the blob store, a small outcome."""
    return FetchOutcome(
        source_id=source_id,
        url=f"http://127.0.0.1:9/{source_id}.xml",
        kind="rss",
        fetched_at=fetched_at,
        ok=True,
        status=200,
        body_sha256=blob_store_for(db_path).put(body),
        bytes=len(body),
        content_type="application/rss+xml",
        attempts=1,
    )


def _query(db_path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_fetch_recorded_after_a_newer_one_is_history_not_the_latest_version(db_path: Path) -> None:
    """A run's fetch of 10:00 recorded after another run's fetch of 10:15 (it waited for the
    writer, or a failed run was cleared and ran again): its items are stale, and the body
    of 10:15 stays the source's latest, so its next fetch changes nothing."""
    old = _fetched(db_path, "paper", rss([item(1, "Old headline")]), "2026-03-10T10:00:00")
    newer_body = rss([item(1, "Corrected headline")], build_date="Mon, 09 Mar 2026 10:15:00 GMT")
    new = _fetched(db_path, "paper", newer_body, "2026-03-10T10:15:00")
    record(db_path, [new], run_id="airflow:scheduled__2026-03-10T10:15:00+00:00")
    late = record(db_path, [old], run_id="airflow:scheduled__2026-03-10T10:00:00+00:00")
    assert late.totals()["stale"] == 1
    again = record(db_path, [_fetched(db_path, "paper", newer_body, "2026-03-10T10:30:00")], run_id="r3")
    assert again.events_appended == 1  # the fetch alone: its body is the latest
    rows = _query(
        db_path,
        "SELECT event_type, payload ->> '$.title' FROM raw.events "
        "WHERE starts_with(event_type, 'article.') ORDER BY event_seq",
    )
    assert rows == [("article.published", "Corrected headline")]
    [(older,)] = _query(
        db_path,
        "SELECT payload ->> '$.older_than_latest_body' FROM raw.events "
        "WHERE (payload ->> '$.fetched_at') = '2026-03-10T10:00:00'",
    )
    assert older == "true"
    assert verify(db_path).ok


def test_a_clock_set_back_does_not_keep_sources_from_being_due(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clock ran two days ahead during one run, then was corrected. Times recorded never
    go back, so a source's last fetch is the fetching clock's time of its latest fetch: an
    hour after its last real fetch, a 15-minute source is due."""
    real_now = utcnow()
    ahead = real_now + timedelta(days=2)
    monkeypatch.setattr(recording, "utcnow", lambda: ahead)
    record(db_path, [_fetched(db_path, "paper", rss([item(1)]), ahead.isoformat())], run_id="r1")
    source = Source("paper", "http://127.0.0.1:9/paper.xml", poll_interval_minutes=15)
    # the clock corrected: a last fetch ahead of now keeps nothing from being due
    assert plan(read_feed_states(db_path), [source], due_only=True, now=real_now).requests
    monkeypatch.setattr(recording, "utcnow", lambda: real_now)
    corrected = record(
        db_path, [_fetched(db_path, "paper", rss([item(1), item(2)]), real_now.isoformat())], run_id="r2"
    )
    assert corrected.totals()["new"] == 1  # not judged older than the fetch made ahead
    planned = plan(read_feed_states(db_path), [source], due_only=True, now=real_now + timedelta(hours=1))
    assert [request.source_id for request in planned.requests] == ["paper"]
    assert not plan(read_feed_states(db_path), [source], due_only=True, now=real_now).requests


@pytest.mark.parametrize("seq", ["1e999", "2.7", "true", "-1", str(2**64)])
def test_a_damaged_head_file_is_a_problem_verify_names(db_path: Path, seq: str) -> None:
    record(db_path, [_fetched(db_path, "paper", rss([item(1)]), "2026-03-10T10:00:00")], run_id="r1")
    db_path.with_name(db_path.name + ".head.json").write_text(f'{{"event_seq": {seq}, "event_hash": "x"}}')
    report = verify(db_path)
    assert not report.ok and "not a valid anchor" in report.problems[0]


def test_an_entity_run_in_parts_reports_every_part_s_mentions(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = ["Angela Merkel", "Olaf Scholz", "Emmanuel Macron", "Joe Biden"]
    items = [
        item(
            n, f"{people[n % 4]} visits Berlin {n}", description=f"{people[n % 4]} met {people[(n + 1) % 4]}."
        )
        for n in range(1, 13)
    ]
    record(db_path, [_fetched(db_path, "paper", rss(items), "2026-03-10T10:00:00")], run_id="r1")
    monkeypatch.setattr(store_module, "PART_EVENTS", 4)
    report = extract_entities(db_path, n_process=1)
    [(stored,)] = _query(db_path, "SELECT count(*) FROM enrich.mentions")
    assert stored > 0 and report.mentions == stored


def test_a_retry_after_a_stop_between_commit_and_files_brings_planning_up_to_date(db_path: Path) -> None:
    """The writer commits a 429 with Retry-After and is stopped before it moves the anchor
    and the states file; the scheduler retries it. The retry appends nothing and moves
    both, so planning heeds the Retry-After instead of the states from before."""
    record(db_path, [_fetched(db_path, "paper", rss([item(1)]), "2026-03-10T10:00:00")], run_id="r1")
    refused = FetchOutcome(
        source_id="paper",
        url="http://127.0.0.1:9/paper.xml",
        kind="rss",
        fetched_at="2026-03-10T10:15:00",
        ok=False,
        status=429,
        error_class="HTTPError",
        error_message="HTTP 429",
        retry_after_until=(utcnow() + timedelta(hours=6)).isoformat(),
    )
    stopped_after_commit = (
        "import json, os\n"
        "import ingestion._log.store as store\n"
        "from ingestion._model import FetchOutcome\n"
        "from ingestion._log.record import record\n"
        "store.write_atomically = lambda *a, **k: os._exit(9)\n"
        f"outcome = FetchOutcome.from_dict(json.loads({json.dumps(json.dumps(refused.to_dict()))}))\n"
        f"record({str(db_path)!r}, [outcome], run_id='airflow:scheduled__2')\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")])),
    }
    stopped = subprocess.run(
        [sys.executable, "-c", stopped_after_commit], timeout=120, env=env, cwd=REPOSITORY
    )
    assert stopped.returncode == 9
    assert _query(db_path, "SELECT count(*) FROM raw.events WHERE event_type = 'feed.failed'") == [(1,)]
    source = Source("paper", "http://127.0.0.1:9/paper.xml")
    assert "paper" not in plan(read_feed_states(db_path), [source]).deferred  # the states before the stop

    assert record(db_path, [refused], run_id="airflow:scheduled__2").events_appended == 0
    assert "paper" in plan(read_feed_states(db_path), [source]).deferred
    assert verify(db_path).ok and not verify(db_path).notes


def test_an_anchor_that_cannot_be_written_after_the_commit_says_the_events_were_stored(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as full:
        full.setattr(store_module, "write_atomically", disk_full)
        with pytest.raises(StoreError, match="the events were stored") as failed:
            record(db_path, [_fetched(db_path, "paper", rss([item(1)]), "2026-03-10T10:00:00")], run_id="r1")
    assert "No space left on device" in str(failed.value)
    assert _query(db_path, "SELECT count(*) FROM raw.events WHERE event_type = 'article.published'") == [(1,)]
    assert record(db_path, [], run_id="r1").events_appended == 0  # the retry: nothing twice...
    assert verify(db_path).ok and not verify(db_path).notes  # ...and the anchor moved


def test_a_fetch_recorded_late_still_records_the_articles_new_to_the_log(db_path: Path) -> None:
    """The 10:00 fetch, recorded after the 10:15 one, lists a story the later fetch no longer
    does: that story is recorded; the one both list keeps the newer text."""
    record(db_path, [_fetched(db_path, "paper", rss([item(2, "Newer")]), "2026-03-10T10:15:00")], run_id="b")
    late = record(
        db_path,
        [_fetched(db_path, "paper", rss([item(1), item(2, "Older")]), "2026-03-10T10:00:00")],
        run_id="a",
    )
    assert (late.totals()["new"], late.totals()["stale"]) == (1, 1)
    rows = _query(
        db_path,
        "SELECT event_type, payload ->> '$.title' FROM raw.events "
        "WHERE starts_with(event_type, 'article.') ORDER BY event_seq",
    )
    assert rows == [("article.published", "Newer"), ("article.published", "Headline number 1")]


def test_two_fetches_of_a_source_in_one_run_are_judged_by_when_they_were_made(db_path: Path) -> None:
    newer = _fetched(db_path, "paper", rss([item(1, "Corrected")]), "2026-03-10T10:15:00")
    older = _fetched(db_path, "paper", rss([item(1, "Old")]), "2026-03-10T10:00:00")
    assert record(db_path, [newer, older], run_id="r1").totals()["stale"] == 1
    titles = _query(
        db_path, "SELECT payload ->> '$.title' FROM raw.events WHERE starts_with(event_type, 'article.')"
    )
    assert titles == [("Corrected",)]


def test_a_states_file_from_before_the_latest_body_s_time_is_read_from_the_log(db_path: Path) -> None:
    record(
        db_path, [_fetched(db_path, "paper", rss([item(1, "Corrected")]), "2026-03-10T10:15:00")], run_id="b"
    )
    path = feed_states_path(db_path)
    data = json.loads(path.read_text())
    for state in data["sources"].values():
        del state["latest_body_fetched_at"]  # as the version before wrote it
    path.write_text(json.dumps(data))
    late = record(
        db_path, [_fetched(db_path, "paper", rss([item(1, "Old")]), "2026-03-10T10:00:00")], run_id="a"
    )
    assert late.totals()["stale"] == 1


def test_fetches_minutes_apart_on_machines_whose_clocks_differ_are_both_recorded(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One fetching machine's clock runs 3 minutes ahead: a fetch the other made 1 minute
    later, stamped 1 minute earlier, is within the margin and recorded as a revision."""
    monkeypatch.setattr(recording, "utcnow", lambda: datetime(2026, 3, 10, 10, 1))
    record(
        db_path,
        [_fetched(db_path, "paper", rss([item(1, "Talks resume")]), "2026-03-10T10:03:00")],
        run_id="m1",
    )
    monkeypatch.setattr(recording, "utcnow", lambda: datetime(2026, 3, 10, 10, 4))
    second = record(
        db_path,
        [_fetched(db_path, "paper", rss([item(1, "Talks collapse")]), "2026-03-10T10:02:00")],
        run_id="m2",
    )
    assert second.totals()["revised"] == 1


@pytest.mark.parametrize("damage", ["nested", "folder"])
def test_an_anchor_file_no_reader_can_read_is_a_problem_not_a_crash(db_path: Path, damage: str) -> None:
    record(db_path, [_fetched(db_path, "paper", rss([item(1)]), "2026-03-10T10:00:00")], run_id="r1")
    anchor = db_path.with_name(db_path.name + ".head.json")
    if damage == "folder":
        anchor.unlink()
        anchor.mkdir()
    else:
        anchor.write_text("[" * 100_000)  # JSON nested past Python's stack
    report = verify(db_path)
    assert not report.ok and "not a valid anchor" in report.problems[0]
    if damage == "nested":  # the next run records, and moves the anchor
        later = record(
            db_path, [_fetched(db_path, "paper", rss([item(2)]), "2026-03-10T10:15:00")], run_id="r2"
        )
        assert later.totals()["new"] == 1 and verify(db_path).ok
