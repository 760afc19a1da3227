"""The Parquet export: a file a month for the dated marts, and a publish that
writes only the files whose rows changed."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ingestion._explore.docs import model_docs
from ingestion._publish.parquet import write_mart_parquet
from ingestion._publish.update import MartChange


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE main.articles (article_id VARCHAR, published_at TIMESTAMPTZ, title VARCHAR)")
    con.execute(
        """
        INSERT INTO main.articles VALUES
            ('a1', '2026-01-05 10:00:00+00', 'January'),
            ('a2', '2026-02-10 10:00:00+00', 'February'),
            ('a3', NULL, 'No date'),
            -- 01:30 on 1 April in Kyiv is still March in UTC
            ('a4', '2026-04-01 01:30:00+03', 'End of March')
        """
    )
    return con


def _files(folder: Path) -> dict[str, int]:
    return {path.name: path.stat().st_ino for path in folder.iterdir()}


def _rows(con: duckdb.DuckDBPyConnection, folder: Path) -> list[tuple]:
    return con.execute(f"FROM '{folder}/*.parquet' ORDER BY article_id").fetchall()


def test_the_months_whose_rows_changed_are_written_and_the_others_linked(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    first = tmp_path / "one" / "articles"
    write_mart_parquet(con, "articles", first, tmp_path / "none", None)
    assert sorted(_files(first)) == [
        "2026-01.parquet",
        "2026-02.parquet",
        "2026-03.parquet",
        "undated.parquet",
    ]
    assert _rows(con, first) == con.execute("FROM main.articles ORDER BY article_id").fetchall()

    # The update a publish makes: a2 revised, a5 new in April; the rows out and in kept.
    con.execute("CREATE TEMP TABLE \"removed__articles\" AS FROM main.articles WHERE article_id = 'a2'")
    con.execute(
        """CREATE TEMP TABLE "added__articles" AS
           SELECT 'a2' AS article_id, TIMESTAMPTZ '2026-02-10 10:00:00+00' AS published_at, 'February, revised' AS title
           UNION ALL SELECT 'a5', TIMESTAMPTZ '2026-04-02 09:00:00+00', 'April'"""
    )
    con.execute("DELETE FROM main.articles WHERE article_id = 'a2'")
    con.execute('INSERT INTO main.articles FROM "added__articles"')
    second = tmp_path / "two" / "articles"
    write_mart_parquet(con, "articles", second, first, MartChange("articles", removed=1, added=2))

    before, after = _files(first), _files(second)
    assert sorted(after) == sorted([*before, "2026-04.parquet"])
    assert [name for name in before if after[name] == before[name]] == [
        name for name in before if name != "2026-02.parquet"
    ], "only February was written again"
    assert _rows(con, second) == con.execute("FROM main.articles ORDER BY article_id").fetchall()


def test_a_mart_without_a_month_column_and_an_empty_dated_mart_are_one_file(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    con.execute("CREATE TABLE main.sources AS SELECT 'wire' AS source_id")
    write_mart_parquet(con, "sources", tmp_path / "sources", tmp_path / "none", None)
    assert list(_files(tmp_path / "sources")) == ["all.parquet"]
    con.execute("DELETE FROM main.articles")
    write_mart_parquet(con, "articles", tmp_path / "articles", tmp_path / "none", None)
    assert list(_files(tmp_path / "articles")) == ["all.parquet"]
    assert _rows(con, tmp_path / "articles") == []


def test_every_month_column_is_a_documented_column_of_its_model() -> None:
    dated = {name: docs.published_by_month for name, docs in model_docs().items() if docs.published_by_month}
    assert dated == {
        "articles": "published_at",
        "article_versions": "valid_from",
        "thread_articles": "joined_at",
    }
    for name, column in dated.items():
        assert column in model_docs()[name].columns, name
