"""An updated mirror declares a key or a foreign key exactly when a mirror written anew
would: the update checks what the mirror before declared on the changed rows alone
(and lets SQLite refuse a key value twice), so a change that breaks it must still be caught."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import duckdb
import pytest

from ingestion._explore.mirror import _cheapest_lookup, _mirrored_column, _Table, update_mirror, write_mirror
from ingestion._publish.update import update_mart

COLUMNS = {"sources": ("source_id",), "articles": ("article_id", "source_id")}
BEFORE = {
    "sources": [("wire",), ("paper",)],
    "articles": [("a1", "wire"), ("a2", "paper")],
}
#: Each case's marts after the change, and whether the keys and references the mirror
#: declares (articles keyed by article_id, its source_id referring to sources) still hold.
AFTER = {
    "a new article of a known source": (
        {"sources": BEFORE["sources"], "articles": [*BEFORE["articles"], ("a3", "wire")]},
        True,
    ),
    "a new article of a source without its row": (
        {"sources": BEFORE["sources"], "articles": [*BEFORE["articles"], ("a3", "nowhere")]},
        False,
    ),
    "a source gone whose article stays": ({"sources": [("wire",)], "articles": BEFORE["articles"]}, False),
    "a source gone with its article": ({"sources": [("wire",)], "articles": [("a1", "wire")]}, True),
    "an article moved to the other source": (
        {"sources": BEFORE["sources"], "articles": [("a1", "paper"), ("a2", "paper")]},
        True,
    ),
    "an article moved, another gone and a third new": (
        {"sources": BEFORE["sources"], "articles": [("a1", "paper"), ("a3", "wire")]},
        True,
    ),
    "a new article with an id already taken": (
        {"sources": BEFORE["sources"], "articles": [*BEFORE["articles"], ("a1", "paper")]},
        False,
    ),
    "a new article without an id": (
        {"sources": BEFORE["sources"], "articles": [*BEFORE["articles"], (None, "wire")]},
        False,
    ),
}


def _write_marts(
    con: duckdb.DuckDBPyConnection, marts: dict[str, list[tuple[str, ...]]], schema: str
) -> None:
    """The two marts as tables in ``schema`` (the working database's layout)."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for mart, rows in marts.items():
        con.execute(f"CREATE TABLE {schema}.{mart} ({', '.join(f'{c} VARCHAR' for c in COLUMNS[mart])})")
        con.executemany(f"INSERT INTO {schema}.{mart} VALUES ({', '.join('?' for _ in rows[0])})", rows)


def _snapshot(path: Path, marts: dict[str, list[tuple[str, ...]]]) -> None:
    """A snapshot's layout: the marts as tables in main, read through views in marts."""
    with duckdb.connect(str(path)) as con:
        _write_marts(con, marts, "main")
        con.execute("CREATE SCHEMA marts")
        for mart in marts:
            con.execute(f"CREATE VIEW marts.{mart} AS SELECT * FROM main.{mart}")


def _declared(mirror: Path) -> list[str]:
    """The mirror's tables as declared: columns, primary keys, foreign keys."""
    with sqlite3.connect(f"file:{mirror}?mode=ro", uri=True) as con:
        return [
            row[0]
            for row in con.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY name"
            )
        ]


def _rows(mirror: Path, table: str) -> list[tuple]:
    with sqlite3.connect(f"file:{mirror}?mode=ro", uri=True) as con:
        return sorted(con.execute(f"SELECT * FROM {table}").fetchall())


def _update(tmp_path: Path, damage: str = "") -> bool:
    """The snapshot ``before.duckdb`` brought up to the marts of ``work.duckdb`` as publish
    does it, its mirror ``before.sqlite`` (after the SQL ``damage``) with it."""
    _snapshot(tmp_path / "updated.duckdb", BEFORE)
    with duckdb.connect(str(tmp_path / "updated.duckdb")) as out:
        out.execute(f"ATTACH '{tmp_path / 'work.duckdb'}' AS work (READ_ONLY)")
        changes = {
            mart: update_mart(out, mart, "*", [f'"{column}"' for column in COLUMNS[mart]]) for mart in BEFORE
        }
        out.execute("DETACH work")  # as publish does: the mirror reads the snapshot alone
        shutil.copyfile(tmp_path / "before.sqlite", tmp_path / "building.sqlite")
        if damage:
            with sqlite3.connect(tmp_path / "building.sqlite") as con:
                con.executescript(damage)
        updated = update_mirror(out, tmp_path / "building.sqlite", tmp_path / "updated.sqlite", changes)
    assert not (tmp_path / "building.sqlite").exists()  # renamed into place, or removed
    return updated


@pytest.mark.parametrize("case", list(AFTER))
def test_an_updated_mirror_keeps_a_key_or_reference_only_while_it_holds(tmp_path: Path, case: str) -> None:
    after, holds = AFTER[case]
    _snapshot(tmp_path / "before.duckdb", BEFORE)
    write_mirror(tmp_path / "before.duckdb", tmp_path / "before.sqlite")
    declared_before = _declared(tmp_path / "before.sqlite")
    assert "PRIMARY KEY" in declared_before[0] and "FOREIGN KEY" in declared_before[0]  # articles

    with duckdb.connect(str(tmp_path / "work.duckdb")) as work:
        _write_marts(work, after, "marts")
    _snapshot(tmp_path / "full.duckdb", after)
    write_mirror(tmp_path / "full.duckdb", tmp_path / "full.sqlite")

    updated = _update(tmp_path)

    # A mirror that declares other keys or references than the one before is not an
    # update: publish writes it anew. An update that kept a broken one would return True.
    assert (_declared(tmp_path / "full.sqlite") == declared_before) == holds
    assert updated == holds
    if holds:
        assert _declared(tmp_path / "updated.sqlite") == declared_before
        for mart in BEFORE:  # a row rewritten in place, deleted or inserted: the same rows
            assert _rows(tmp_path / "updated.sqlite", mart) == _rows(tmp_path / "full.sqlite", mart)


def test_a_mirror_without_the_row_a_change_updates_is_not_updated(tmp_path: Path) -> None:
    """The row a1 (moved to another source) is missing from the mirror before, and as
    many rows are there as should be: the update finds no row to rewrite and gives up,
    so publish writes the mirror anew."""
    _snapshot(tmp_path / "before.duckdb", BEFORE)
    write_mirror(tmp_path / "before.duckdb", tmp_path / "before.sqlite")
    with duckdb.connect(str(tmp_path / "work.duckdb")) as work:
        _write_marts(work, AFTER["an article moved to the other source"][0], "marts")
    damage = "DELETE FROM articles WHERE article_id = 'a1'; INSERT INTO articles VALUES ('a9', 'wire');"
    assert not _update(tmp_path, damage)
    assert not (tmp_path / "updated.sqlite").exists()


def test_removed_rows_are_looked_up_through_the_column_that_reads_fewest_rows_for_them() -> None:
    # 300 articles of 4 mentions each; one busy entity is named by 900 of the 1,200.
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE mentions AS SELECT 'a' || (i % 300) AS article_id, "
        "CASE WHEN i < 900 THEN 'busy' ELSE 'e' || i END AS entity_id, i AS position FROM range(1200) AS t(i)"
    )
    table = _Table(
        "entity_mentions",
        "mentions",
        [_mirrored_column("article_id", "VARCHAR"), _mirrored_column("entity_id", "VARCHAR")],
        references={"article_id": ("articles", "article_id"), "entity_id": ("entities", "entity_id")},
    )
    # 300 of the busy entity's mentions relinked, one of each article: fewer rows hold their
    # entity (900) than their articles (all 1,200), but each of the 300 would read the 900.
    removed = "(SELECT article_id, entity_id FROM mentions WHERE position < 300)"
    assert _cheapest_lookup(con, table, removed) == ("article_id",)
    # Mentions of few articles, each naming another entity: through the entity.
    removed = "(SELECT article_id, entity_id FROM mentions WHERE position >= 900 AND position < 903)"
    assert _cheapest_lookup(con, table, removed) == ("entity_id",)
