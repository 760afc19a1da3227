from __future__ import annotations

import json
from pathlib import Path

import duckdb

from ingestion._backfill import backfill
from ingestion._verify import verify


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_backfill_appends_once_and_records_bad_lines(tmp_path: Path, db_path: Path) -> None:
    archive = _write(
        tmp_path / "archive.jsonl",
        [
            {"guid": "g1", "title": "First", "published_at": "2014-03-10T08:00:00Z", "source": "Wire A"},
            {"url": "HTTP://Example.org/b?utm_source=x", "title": "Second", "body": "<p>Body &amp; more</p>"},
            {"title": "no identity"},
            "not json at all",
            {"guid": "g5", "title": "Later", "published_at": "yesterday-ish"},
        ],
    )
    report = backfill(archive, "archive", db_path)
    assert report.lines == 5
    assert report.counts["new"] == 3 and report.counts["rejected"] == 2
    assert {r.index for r in report.rejections} == {3, 4}

    again = backfill(archive, "archive", db_path)
    assert again.counts["new"] == 0 and again.counts["unchanged"] == 3

    with duckdb.connect(str(db_path), read_only=True) as con:
        rows = dict(
            con.execute(
                "SELECT payload ->> '$.identity', payload FROM raw.events "
                "WHERE event_type = 'article.published'"
            ).fetchall()
        )
        loads = con.execute("SELECT count(*) FROM raw.events WHERE event_type = 'archive.loaded'").fetchall()
    second = json.loads(rows["http://example.org/b"])
    assert second["body"] == "Body & more"
    assert json.loads(rows["g1"])["wire"]["outlet"] == "Wire A"
    assert json.loads(rows["g5"])["published_at"] is None
    assert loads == [(2,)]
    assert verify(db_path).ok


def test_a_changed_line_is_a_revision(tmp_path: Path, db_path: Path) -> None:
    backfill(_write(tmp_path / "a.jsonl", [{"guid": "g1", "title": "Old"}]), "s", db_path)
    report = backfill(_write(tmp_path / "b.jsonl", [{"guid": "g1", "title": "New"}]), "s", db_path)
    assert report.counts["revised"] == 1


def test_a_field_of_the_wrong_type_is_a_rejected_line_not_a_crash(tmp_path: Path, db_path: Path) -> None:
    archive = _write(tmp_path / "typed.jsonl", [{"guid": "g1", "title": 5}, {"guid": "g2", "title": "Fine"}])
    report = backfill(archive, "archive", db_path)
    assert report.counts["new"] == 1 and report.counts["rejected"] == 1
    assert report.rejections[0].index == 1
