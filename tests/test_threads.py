"""Story threads: deterministic, incremental equals full, withdrawals leave, copies flagged."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from ingestion._derive.threads import assign_threads, state_path
from ingestion._log.backfill import backfill

from .conftest import shared_path

# event_seq differs between the two logs (one archive.loaded event per load), not the order.
ASSIGNMENTS = "SELECT * EXCLUDE (algorithm, event_seq) FROM enrich.thread_assignments ORDER BY event_seq"


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """3,000 real headlines of uci_dev in time order (as a desk would see them)."""
    rows = [
        json.loads(line)
        for line in shared_path("data", "threads", "uci_dev", "articles.jsonl").read_text().splitlines()
    ]
    rows.sort(key=lambda r: (r["published_at"], r["guid"]))
    path = tmp_path_factory.mktemp("threads") / "uci.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[:3000]))
    return path


def _assignments(db_path: Path) -> list[tuple]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(ASSIGNMENTS).fetchall()


@pytest.mark.shared
def test_incremental_runs_and_a_lost_state_give_the_full_run_result(archive: Path, tmp_path: Path) -> None:
    lines = archive.read_text().splitlines(keepends=True)
    full = tmp_path / "full" / "newsroom.duckdb"
    backfill(archive, "uci", full)
    assign_threads(full)

    incremental = tmp_path / "incremental" / "newsroom.duckdb"
    for number, chunk in enumerate((lines[:1000], lines[1000:1700], lines[1700:])):
        part = tmp_path / f"part{number}.jsonl"
        part.write_text("".join(chunk))
        backfill(part, "uci", incremental)
        if number == 1:
            state_path(incremental).unlink()  # the saved state is only a cache: replay
        report = assign_threads(incremental)
        assert report.articles == len(chunk)
    assert (number, report.replayed) == (2, 0)
    assert _assignments(incremental) == _assignments(full)
    with duckdb.connect(str(full), read_only=True) as con:
        threads, opened_by_self = con.execute(
            "SELECT count(DISTINCT thread_id), count(*) FILTER (WHERE action = 'open' AND thread_id = article_id) "
            "FROM enrich.thread_assignments"
        ).fetchall()[0]
    assert 1 < threads < 3000 and opened_by_self == threads


def test_republished_copies_are_flagged_and_withdrawals_leave(tmp_path: Path) -> None:
    story = {
        "title": "Port strike halts container traffic in Rotterdam",
        "summary": "Dock workers walked out over automation plans.",
        "published_at": "2026-03-10T06:00:00Z",
        "language": "en",
    }
    archive = tmp_path / "wire.jsonl"
    archive.write_text(
        "".join(
            json.dumps({**story, "guid": f"copy-{n}", "published_at": f"2026-03-10T0{6 + n}:00:00Z"}) + "\n"
            for n in range(3)
        )
    )
    db = tmp_path / "newsroom.duckdb"
    backfill(archive, "wires", db)
    assign_threads(db)
    rows = _assignments(db)
    assert [r[2] for r in rows] == ["open", "join", "join"]
    opener = rows[0][0]
    assert {r[3] for r in rows} == {opener}
    assert [r[5] for r in rows] == [None, opener, opener]

    # An item that arrives late with a date years back is handled as arriving now.
    late = tmp_path / "late.jsonl"
    late.write_text(json.dumps({**story, "guid": "late", "published_at": "2001-01-01T00:00:00Z"}) + "\n")
    backfill(late, "wires", db)
    assert assign_threads(db).articles == 1
    assert _assignments(db)[-1][3] == opener
