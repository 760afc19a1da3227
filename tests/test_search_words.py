"""How search reads words: letters of any script, folded alike in the index (SQL) and in
the query (Python), so that what a journalist types finds what the text says."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from ingestion._extensions import load_extension
from ingestion._publish.search import (
    _SEPARATORS,
    _words_sql,
    build_search_index,
    fold,
    index_rule,
    search,
    update_search_index,
)
from ingestion._publish.sql import open_published


def _snapshot(path: Path, articles: list[tuple[str, str, str, str]]) -> Path:
    """A small snapshot with a search index: ``articles`` are (article_id, title, body,
    language), one current version each."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        load_extension(con, "fts")
        con.execute("CREATE SCHEMA marts")  # what tells a snapshot (``open_published``)
        con.execute("CREATE TABLE marts.articles AS SELECT 1 AS n")
        con.execute("CREATE TABLE main.sources AS SELECT 'wire' AS source_id")
        con.execute(
            "CREATE TABLE main.article_versions (article_id VARCHAR, version INTEGER, is_current BOOLEAN, "
            "is_withdrawal BOOLEAN, source_id VARCHAR, language VARCHAR, published_at TIMESTAMPTZ, "
            "valid_from TIMESTAMPTZ, title VARCHAR, summary VARCHAR, body VARCHAR)"
        )
        con.execute(
            "CREATE TABLE main.articles (article_id VARCHAR, status VARCHAR, first_seen_at TIMESTAMPTZ, "
            "title VARCHAR)"
        )
        for article_id, title, body, language in articles:
            con.execute(
                "INSERT INTO main.article_versions VALUES (?, 1, true, false, 'wire', ?, "
                "TIMESTAMPTZ '2026-03-10 10:00:00+00', TIMESTAMPTZ '2026-03-10 10:00:00+00', ?, NULL, ?)",
                [article_id, language, title, body],
            )
            con.execute(
                "INSERT INTO main.articles VALUES (?, 'live', TIMESTAMPTZ '2026-03-10 10:00:00+00', ?)",
                [article_id, title],
            )
        con.execute(
            "CREATE TABLE main.entities (entity_id VARCHAR, canonical_name VARCHAR, aliases VARCHAR[])"
        )
        build_search_index(con)
    return path


def _found(path: Path, query: str) -> list[str]:
    con = open_published(path)
    try:
        relation, _ = search(con, query, limit=100)
        return [row[0] for row in relation.fetchall()]
    finally:
        con.close()


ARTICLES = [
    ("uk", "Зеленський зустрівся з Гутеррешем у Женеві", "Обмін полоненими.", "uk"),  # noqa: RUF001
    ("el", "Ο Ζελένσκι στη Γενεύη", "Συνομιλίες για ανταλλαγή αιχμαλώτων.", "el"),  # noqa: RUF001
    ("pl", "Wałęsa visits Łódź", "Lech Wałęsa spoke in Łódź on Monday.", "en"),
    ("de", "Sperrung der Hauptstraße", "Die Hauptstraße bleibt gesperrt.", "de"),
    ("dk", "Museum opens in København", "Søren Kierkegaard museum opened.", "en"),
    ("lig", "Budget row", "The ﬁscal plan stands, the oﬃcial said in ＧＥＮＥＶＡ.", "en"),  # noqa: RUF001
    ("en", "Talks in Geneva", "Prisoner\nexchange discussed.", "en"),
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Зеленський", ["uk"]),
        ("ЗЕЛЕНСЬКИЙ", ["uk"]),
        ("Ζελένσκι", ["el"]),
        ("Ζελενσκι", ["el"]),
        ("Walesa", ["pl"]),
        ("Lodz", ["pl"]),
        ("Hauptstrasse", ["de"]),
        ("Hauptstraße", ["de"]),
        ("Kobenhavn", ["dk"]),
        ("fiscal", ["lig"]),
        ("ﬁscal", ["lig"]),
        ('"ﬁscal plan"', ["lig"]),
        ('"fiscal plan"', ["lig"]),
        ("official", ["lig"]),
        ('"Prisoner exchange"', ["en"]),  # across the line break of its text
    ],
)
def test_words_of_any_script_and_letters_a_reader_takes_for_others_are_found(
    tmp_path: Path, query: str, expected: list[str]
) -> None:
    snapshot = _snapshot(tmp_path / "published" / "newsroom.duckdb", ARTICLES)
    assert _found(snapshot, query) == expected


def test_the_index_and_the_query_read_the_same_words() -> None:
    """Every character Python's Unicode tables know, inside a word and alone, upper and lower:
    the SQL that indexes texts and the Python that reads searches split and fold alike."""
    import unicodedata

    texts = [
        f"ab{chr(c)}cd {chr(c).upper()}x"
        for c in range(32, 0x30000)
        if not 0xD800 <= c < 0xE000 and unicodedata.category(chr(c)) != "Cn"
    ]
    with duckdb.connect() as con:
        con.register("texts", pa.table({"t": texts}))
        indexed = [row[0] for row in con.execute(f"SELECT {_words_sql('t')} FROM texts").fetchall()]
    differing = [
        text
        for text, words in zip(texts, indexed, strict=True)
        if words != [w for w in _SEPARATORS.split(fold(text)) if w]
    ]
    assert differing == []


def test_an_index_that_reads_words_otherwise_is_built_again(tmp_path: Path) -> None:
    """A snapshot indexed by an older version (no ``search_rule``) is indexed anew when the
    next publish brings it up to date, not added to: its postings would mix two ways of
    reading words."""
    snapshot = _snapshot(tmp_path / "published" / "newsroom.duckdb", ARTICLES)
    with duckdb.connect(str(snapshot)) as con:
        con.execute("DROP TABLE main.search_rule")
        con.execute("DELETE FROM main.search_postings WHERE term <> 'talk'")
        update_search_index(con, "SELECT 'en' AS article_id")
        assert con.execute("SELECT rule FROM main.search_rule").fetchall() == [(index_rule(),)]
    assert _found(snapshot, "Зеленський") == ["uk"]
