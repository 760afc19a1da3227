"""dbt over real snapshot sequences: versions, intervals, replay, incremental = full."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ingestion._derive.transform import transform, with_ancestors
from ingestion._log.record import ingest
from ingestion._sources.config import Source

from .conftest import shared_path

pytestmark = pytest.mark.shared

MARTS = ["articles", "article_versions", "articles_daily", "sources"]
DERIVED_SCHEMAS = ["staging", "intermediate", "marts"]


def snapshot_files(feed: str) -> list[Path]:
    return sorted(shared_path("data", "feeds", "snapshots", "gesab001-headlines", feed).glob("*.xml"))


def table_contents(db_path: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return {mart: con.execute(f"SELECT * FROM marts.{mart} ORDER BY ALL").fetchall() for mart in MARTS}


def build(db_path: Path, **options) -> None:
    report = transform(db_path, **options)
    assert report.success, report.failures


@pytest.fixture(scope="module")
def incremental_db(tmp_path_factory) -> Path:
    """Two feeds ingested snapshot by snapshot, with an incremental build after every ten."""
    db_path = tmp_path_factory.mktemp("transform") / "newsroom.duckdb"
    feeds = {feed: snapshot_files(feed) for feed in ("bbc", "nytimes")}
    for batch in range(4):
        for feed, files in feeds.items():
            for snapshot in files[batch * 10 : (batch + 1) * 10]:
                ingest([Source(feed, str(snapshot))], db_path)
        build(db_path)
    return db_path


def test_version_counts_match_the_events(incremental_db: Path) -> None:
    with duckdb.connect(str(incremental_db), read_only=True) as con:
        mismatches = con.execute(
            """
            SELECT a.article_id, a.version_count, e.events
            FROM marts.articles a
            JOIN (SELECT stream_id, count(*) AS events FROM raw.events
                  WHERE starts_with(event_type, 'article.') GROUP BY 1) e ON e.stream_id = a.article_id
            WHERE a.version_count <> e.events
            """
        ).fetchall()
        counts = con.execute(
            "SELECT (SELECT count(*) FROM marts.articles), "
            "(SELECT count(DISTINCT stream_id) FROM raw.events WHERE starts_with(event_type, 'article.'))"
        ).fetchall()[0]
    assert not mismatches
    assert counts[0] == counts[1] == 1135 + 666


def test_an_article_edited_twice_has_three_contiguous_versions(incremental_db: Path) -> None:
    with duckdb.connect(str(incremental_db), read_only=True) as con:
        article_id = con.execute(
            "SELECT article_id FROM marts.articles WHERE version_count = 3 ORDER BY article_id LIMIT 1"
        ).fetchall()[0][0]
        versions = con.execute(
            "SELECT version, valid_from, valid_to, is_current FROM marts.article_versions "
            "WHERE article_id = ? ORDER BY version",
            [article_id],
        ).fetchall()
        gaps = con.execute(
            """
            SELECT count(*) FROM (
                SELECT valid_to, lead(valid_from) OVER (PARTITION BY article_id ORDER BY version) AS next_from
                FROM marts.article_versions)
            WHERE valid_to IS DISTINCT FROM next_from
            """
        ).fetchall()[0][0]
    assert [v[0] for v in versions] == [1, 2, 3]
    assert versions[0][2] == versions[1][1] and versions[1][2] == versions[2][1]
    assert versions[2][2] is None and versions[2][3]
    assert gaps == 0, "every valid_to must equal the next version's valid_from"


def test_incremental_runs_equal_a_full_refresh(incremental_db: Path) -> None:
    incremental = table_contents(incremental_db)
    build(incremental_db, full_refresh=True)
    assert table_contents(incremental_db) == incremental


def test_replay_from_events_gives_identical_tables(incremental_db: Path) -> None:
    before = table_contents(incremental_db)
    with duckdb.connect(str(incremental_db)) as con:
        for schema in DERIVED_SCHEMAS:
            con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    build(incremental_db)
    assert table_contents(incremental_db) == before


def test_a_selection_is_built_with_the_models_it_depends_on() -> None:
    assert with_ancestors("entities") == "+entities"
    assert with_ancestors("marts  story_threads+") == "+marts +story_threads+"
    # already with its ancestors, or an intersection, whose parts' ancestors would select more
    assert with_ancestors("+entities @articles tag:daily,marts") == "+entities @articles tag:daily,marts"
