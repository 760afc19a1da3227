"""The published snapshot as BI tools and journalists meet it: opened by old DuckDB
releases and through SQLAlchemy, names without a schema, UTC times, plain integers,
nested columns with a text companion, and full-text search over every version."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import sqlalchemy

from ingestion._publish.snapshot import publish, published_path

from .conftest import copy_data_dir, run_cli


@pytest.fixture(scope="module")
def published(demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo published once for this module: the working database's path."""
    db_path = copy_data_dir(demo_data_dir, tmp_path_factory.mktemp("published"))
    publish(db_path)
    return db_path


def marts(db_path: Path) -> dict[str, int]:
    with duckdb.connect(str(published_path(db_path)), read_only=True) as con:
        return marts_of(con)


def marts_of(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Every published mart and its rows, as the snapshot records them."""
    return json.loads(con.execute("SELECT tables FROM meta.snapshots").fetchall()[0][0])


def search(db_path: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli("search", *args, "--db", str(db_path))


def sql(db_path: Path, query: str, *args: str) -> subprocess.CompletedProcess:
    return run_cli("sql", query, "--db", str(db_path), *args)


# -- a file every reader opens ------------------------------------------------------------


def test_duckdb_1_1_opens_the_snapshot_and_reads_every_mart(published: Path) -> None:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on this machine")
    script = textwrap.dedent(
        """
        import json, sys, duckdb
        con = duckdb.connect(sys.argv[1], read_only=True)
        counts = {name: con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0] for name in sys.argv[2:]}
        prefixed = con.execute("SELECT count(*) FROM marts.articles").fetchall()[0][0]
        print(json.dumps({"version": duckdb.__version__, "counts": counts, "prefixed": prefixed}))
        """
    )
    expected = marts(published)
    result = subprocess.run(
        [uv, "run", "--no-project", "--with", "duckdb==1.1.3", "python", "-c", script,
         str(published_path(published)), *expected],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["version"] == "1.1.3"
    assert seen["counts"] == expected
    assert seen["prefixed"] == expected["articles"]


def test_sqlalchemy_as_superset_uses_it_lists_and_reads_the_marts_without_a_schema(published: Path) -> None:
    expected = marts(published)
    # The URI the README gives for Superset (duckdb-engine).
    engine = sqlalchemy.create_engine(f"duckdb:///{published_path(published)}?access_mode=read_only")
    try:
        names = set(sqlalchemy.inspect(engine).get_table_names()) | set(
            sqlalchemy.inspect(engine).get_view_names()
        )
        assert set(expected) <= names
        with engine.connect() as connection:
            rows = connection.execute(sqlalchemy.text("SELECT count(*) FROM articles")).scalar_one()
            assert rows == expected["articles"]
            with pytest.raises(sqlalchemy.exc.DBAPIError):
                connection.execute(sqlalchemy.text("DELETE FROM articles"))
    finally:
        engine.dispose()


def test_published_times_are_utc_counts_are_bigint_and_nested_columns_have_json_text(published: Path) -> None:
    with duckdb.connect(str(published_path(published)), read_only=True) as con:
        types = con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main'"
        ).fetchall()
        by_column = {(table, column): kind for table, column, kind in types}
        assert not [c for c in types if c[2] == "TIMESTAMP"], (
            "every published time is TIMESTAMP WITH TIME ZONE"
        )
        assert not [c for c in types if c[2] in ("HUGEINT", "UHUGEINT")]
        assert by_column[("articles", "published_at")] == "TIMESTAMP WITH TIME ZONE"
        assert by_column[("story_threads", "article_count")] == "BIGINT"
        for table, column, kind in types:
            if kind.endswith("]") or kind.startswith(("MAP(", "STRUCT(")):
                assert by_column[(table, column + "_json")] == "VARCHAR", (table, column)
        aliases, as_text = con.execute(
            "SELECT aliases, aliases_json FROM entities WHERE canonical_name = 'Volodymyr Zelensky'"
        ).fetchall()[0]
        assert json.loads(as_text) == aliases
        undocumented = con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() "
            "WHERE schema_name = 'main' AND table_name IN (SELECT unnest(?::VARCHAR[])) AND comment IS NULL",
            [list(marts_of(con))],
        ).fetchall()
        assert not undocumented, "every published column carries its dbt description"
    articles = pq.read_schema(
        next((published.parent / "published" / "parquet" / "articles").glob("*.parquet"))
    )
    assert articles.field("published_at").type.tz == "UTC"


def test_newsroom_sql_reads_unqualified_names_in_utc_and_ends_csv_lines_with_newline(published: Path) -> None:
    result = sql(
        published, "SELECT count(*) AS n, min(published_at) AS first FROM articles", "--format", "csv"
    )
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stdout
    header, row = result.stdout.splitlines()
    assert header == "n,first"
    count, first = row.split(",")
    assert int(count) == marts(published)["articles"] and first.endswith("+00:00")
    copy = published.parent.parent / "copy.duckdb"
    shutil.copy(published_path(published), copy)
    result = sql(published, "SELECT count(*) FROM articles", "--published", str(copy), "--format", "json")
    assert result.returncode == 0 and json.loads(result.stdout) == [
        {"count_star()": marts(published)["articles"]}
    ]


@pytest.mark.parametrize(
    "query",
    ["SELECT CAST(title AS INTEGER) FROM articles", "SELECT * FROM nowhere", "SELEC 1"],
)
def test_a_query_that_fails_is_one_clean_line(published: Path, query: str) -> None:
    result = sql(published, query)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


# -- search ------------------------------------------------------------------------------


def test_search_finds_every_version_and_the_german_spelling_through_the_entity(published: Path) -> None:
    result = search(published, "Zelensky", "--format", "json", "--limit", "100")
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert "Selenskyj" in result.stderr  # says which other names it searched
    languages = {hit["language"].split("-")[0] for hit in hits}
    assert languages == {"en", "de"}
    assert all("**" in hit["snippet"] for hit in hits if hit["title"].lower().startswith("zelensk"))
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)
    with duckdb.connect(str(published_path(published)), read_only=True) as con:
        said_it = con.execute(
            "SELECT count(DISTINCT article_id) FROM article_versions "
            "WHERE concat_ws(' ', title, summary, body) ILIKE '%zelensk%'"
        ).fetchall()[0][0]
    english = [hit for hit in hits if hit["language"].startswith("en")]
    assert len(english) == said_it

    exact = json.loads(search(published, "Zelensky", "--no-aliases", "--format", "json").stdout)
    assert {hit["language"].split("-")[0] for hit in exact} == {"en"}
    german = json.loads(search(published, "Zelensky", "--language", "de", "--format", "json").stdout)
    assert german and all(hit["language"] == "de" for hit in german)


def test_search_reaches_headlines_that_were_changed_since(published: Path) -> None:
    with duckdb.connect(str(published_path(published)), read_only=True) as con:
        article_id, old_title = con.execute(
            "SELECT article_id, previous_title FROM article_versions "
            "WHERE title_changed AND previous_title IS NOT NULL ORDER BY article_id LIMIT 1"
        ).fetchall()[0]
    hits = json.loads(search(published, f'"{old_title}"', "--format", "json", "--limit", "100").stdout)
    hit = next(hit for hit in hits if hit["article_id"] == article_id)
    assert hit["title"] != old_title and hit["versions_matched"] >= 1
    current = json.loads(
        search(published, f'"{old_title}"', "--current-only", "--format", "json", "--limit", "100").stdout
    )
    assert article_id not in {hit["article_id"] for hit in current}


def test_search_filters_by_entity_thread_source_and_time(published: Path) -> None:
    with duckdb.connect(str(published_path(published)), read_only=True) as con:
        thread_id, size = con.execute(
            "SELECT thread_id, article_count FROM story_threads ORDER BY article_count DESC, thread_id LIMIT 1"
        ).fetchall()[0]
    in_thread = json.loads(search(published, "talks", "--thread", thread_id, "--format", "json").stdout)
    assert 0 < len(in_thread) <= size
    by_entity = json.loads(search(published, "talks", "--entity", "Genf", "--format", "json").stdout)
    assert by_entity
    later = json.loads(
        search(
            published, "Geneva", "--since", "2026-03-11", "--source", "cpa-wire", "--format", "json"
        ).stdout
    )
    assert later and all(h["source_id"] == "cpa-wire" and h["published_at"] >= "2026-03-11" for h in later)


def test_search_articles_macro_works_from_sql(published: Path) -> None:
    result = sql(published, "SELECT DISTINCT article_id FROM search_articles('Guterres')", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) >= 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["the and of"], "only common words"),
        (['"Geneva talks'], "unclosed quote"),
        (["!!!"], "no words"),
        (["talks", "--entity", "Nobody Anyone"], "no entity named"),
        (["talks", "--thread", "no-such-thread"], "no story thread"),
        (["talks", "--since", "yesterday"], "not a date"),
    ],
)
def test_a_search_that_cannot_run_says_why_in_one_line(
    published: Path, args: list[str], message: str
) -> None:
    result = search(published, *args)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_snapshot_from_before_search_says_to_publish_again(tmp_path: Path) -> None:
    old = tmp_path / "old.duckdb"
    with duckdb.connect(str(old)) as con:
        con.execute("CREATE SCHEMA marts")
        con.execute("CREATE TABLE marts.articles AS SELECT 'a' AS article_id")
    result = run_cli("search", "talks", "--published", str(old), "--db", str(tmp_path / "newsroom.duckdb"))
    assert result.returncode != 0 and "no search index" in result.stderr and "Traceback" not in result.stderr
