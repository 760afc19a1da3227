"""Forty real consecutive captures of four publisher feeds, ingested in order."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from ingestion._log.record import ingest
from ingestion._log.verify import verify
from ingestion._sources.config import Source

from .conftest import shared_path

pytestmark = pytest.mark.shared

FEEDS = ["bbc", "cnn", "nytimes", "abscbnnews"]
ARTICLE_EVENTS = "SELECT count(*) FROM raw.events WHERE starts_with(event_type, 'article.')"


def _ingest_all(feed: str, db_path: Path) -> list[Path]:
    snapshots = sorted(shared_path("data", "feeds", "snapshots", "gesab001-headlines", feed).glob("*.xml"))
    assert len(snapshots) == 40
    for snapshot in snapshots:
        report = ingest([Source(feed, str(snapshot))], db_path)
        assert report.sources[0].status == "ok", report.sources[0].line()
    return snapshots


@pytest.mark.parametrize("feed", FEEDS)
def test_snapshot_sequence_yields_exactly_the_recorded_edits(feed: str, db_path: Path) -> None:
    snapshots = _ingest_all(feed, db_path)
    edits = json.loads((snapshots[0].parent / "EDITS.json").read_text())
    expected = Counter(edit["item"] for edit in edits)

    with duckdb.connect(str(db_path), read_only=True) as con:
        versions = con.execute(
            """
            SELECT payload ->> '$.identity', stream_version, event_type,
                   payload ->> '$.title', payload ->> '$.summary'
            FROM raw.events WHERE starts_with(event_type, 'article.')
            ORDER BY stream_id, stream_version
            """
        ).fetchall()
        published, identities = con.execute(
            "SELECT count(*), count(DISTINCT payload ->> '$.identity') FROM raw.events "
            "WHERE event_type = 'article.published'"
        ).fetchall()[0]
    assert published == identities, "an article was published twice"

    # EDITS.json counts title/summary edits; count ours the same way.
    ours: Counter[str] = Counter()
    previous: dict[str, tuple[str, str]] = {}
    for identity, _version, event_type, title, summary in versions:
        if event_type == "article.revised" and (title, summary) != previous[identity]:
            ours[identity] += 1
        previous[identity] = (title, summary)
    assert ours == expected
    revised = sum(1 for row in versions if row[2] == "article.revised")
    # Every recorded revision is a visible change; here they are all title/summary edits.
    assert revised == sum(expected.values())


def test_reingesting_the_latest_snapshot_adds_no_article_events(db_path: Path) -> None:
    # Only the latest body counts as unchanged: an older one served again is what
    # the feed says now (a headline reverted), judged item by item.
    snapshots = _ingest_all("bbc", db_path)
    with duckdb.connect(str(db_path), read_only=True) as con:
        before = con.execute(
            "SELECT count(*) FROM raw.events WHERE starts_with(event_type, 'article.')"
        ).fetchall()
    for _ in range(2):
        report = ingest([Source("bbc", str(snapshots[-1]))], db_path)
        assert report.sources[0].status == "body unchanged"
        assert report.totals()["new"] + report.totals()["revised"] == 0
    with duckdb.connect(str(db_path), read_only=True) as con:
        after = con.execute(
            "SELECT count(*) FROM raw.events WHERE starts_with(event_type, 'article.')"
        ).fetchall()
    assert after == before
    assert verify(db_path).ok
