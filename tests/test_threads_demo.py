"""What a journalist reads of the demo's story threads: a representative label in the
thread's language, who broke each story (the earliest publisher time, not the
article that opened the thread), and the languages it covers."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest


@pytest.fixture(scope="module")
def threads(demo_data_dir: Path) -> dict[str, dict]:
    with duckdb.connect(str(demo_data_dir / "newsroom.duckdb"), read_only=True) as con:
        rows = con.execute(
            """
            SELECT t.thread_id, t.label, t.first_source_id, t.first_published_at, t.languages,
                   t.article_count, list(a.title) AS titles,
                   min(coalesce(a.published_at, a.first_seen_at)) AS earliest
            FROM marts.story_threads t
            JOIN marts.thread_articles ta USING (thread_id)
            JOIN marts.articles a USING (article_id)
            WHERE ta.is_member
            GROUP BY ALL
            """
        ).fetchall()
    names = ("thread_id", "label", "first_source_id", "first_published_at", "languages", "size", "titles")
    return {row[0]: dict(zip(names, row, strict=False)) | {"earliest": row[-1]} for row in rows}


def geneva(threads: dict[str, dict]) -> dict:
    [thread] = [
        t for t in threads.values() if t["size"] > 3 and any("Zelensky" in title for title in t["titles"])
    ]
    return thread


def test_the_story_was_broken_by_the_earliest_publisher(threads: dict[str, dict]) -> None:
    thread = geneva(threads)
    # cpa-wire published at 06:58; harbour-times opened the thread, at 08:30.
    assert thread["first_source_id"] == "cpa-wire"
    assert thread["first_published_at"].strftime("%H:%M") == "06:58"
    for each in threads.values():
        assert each["first_published_at"] == each["earliest"]


def test_a_label_is_a_members_headline_in_the_threads_main_language(threads: dict[str, dict]) -> None:
    for thread in threads.values():
        assert thread["label"] in thread["titles"]
        assert thread["languages"] == sorted(set(thread["languages"]))
    assert "en" in geneva(threads)["languages"]
    assert "Selenskyj" not in geneva(threads)["label"]
