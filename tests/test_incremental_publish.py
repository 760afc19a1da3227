"""A snapshot brought up to date from the one before holds exactly what a snapshot
built in full holds: every mart, the search index (it ranks the same), the
explorer's mirror and its full-text index, the Parquet files."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from ingestion._extensions import load_extension
from ingestion._publish.search import search
from ingestion._publish.snapshot import MIRROR_NAME, _publish_lock, publish, published_dir, published_path
from ingestion.exceptions import PublishError

from .conftest import copy_data_dir
from .demo_data import PUBLISHED_BEFORE_LAST_ROUND

#: Search tables whose rows name documents by number, which differ between the two
#: ways of building; compared through (article_id, version) instead.
_NUMBERED = {
    "search_documents": "SELECT * EXCLUDE (doc_id, article_number) FROM main.search_documents",
    "search_postings": "SELECT d.article_id, d.version, p.* EXCLUDE (doc_id, article_number) "
    "FROM main.search_postings AS p JOIN main.search_documents AS d USING (doc_id)",
    "search_stats": "SELECT * EXCLUDE (unsorted_postings) FROM main.search_stats",
    # The two builds validated different events; what they publish is the same.
    "snapshots": "SELECT last_event_seq, tables, snapshot_format FROM meta.snapshots",
}
QUERIES = ("Zelensky", "ceasefire talks", "port strike", '"Geneva"', "Selenskyj")


@pytest.fixture(scope="module")
def two_builds(demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The demo's last round published as an update of the snapshot before it, then in
    full: the folders of the two snapshots, each with its DuckDB file beside."""
    db_path = copy_data_dir(demo_data_dir, tmp_path_factory.mktemp("incremental"))
    shutil.copytree(demo_data_dir.parent / PUBLISHED_BEFORE_LAST_ROUND, published_dir(db_path), symlinks=True)
    updated = publish(db_path)
    assert updated.changes is not None, "the snapshot before was not updated but rebuilt"
    assert updated.mirror_updated, "the mirror before was not updated but rebuilt"
    assert updated.changes["article_versions"][1] > 0 and updated.changes["articles"][0] > 0
    kept = tmp_path_factory.mktemp("updated")
    shutil.copytree((published_dir(db_path) / "current").resolve(), kept / "snapshot")
    shutil.copyfile(published_path(db_path), kept / "snapshot" / "newsroom.duckdb")
    full = publish(db_path, full=True)
    assert full.changes is None
    shutil.copyfile(published_path(db_path), (published_dir(db_path) / "current" / "newsroom.duckdb"))
    return kept / "snapshot", (published_dir(db_path) / "current").resolve()


def _rows(con: duckdb.DuckDBPyConnection, query: str) -> list[tuple]:
    return con.execute(f"SELECT * FROM ({query}) ORDER BY ALL").fetchall()


def test_every_table_of_the_updated_file_equals_the_full_build(two_builds: tuple[Path, Path]) -> None:
    updated, full = (duckdb.connect(str(folder / "newsroom.duckdb"), read_only=True) for folder in two_builds)
    tables = [
        row[0]
        for row in full.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY 1"
        ).fetchall()
    ]
    assert {"articles", "entity_mentions", "story_threads", "search_postings"} <= set(tables)
    for table in [*tables, "snapshots"]:
        query = _NUMBERED.get(table, f"SELECT * FROM main.{table}")
        assert _rows(updated, query) == _rows(full, query), table
    indexes = "SELECT index_name, sql FROM duckdb_indexes() ORDER BY ALL"
    assert updated.execute(indexes).fetchall() == full.execute(indexes).fetchall() != []
    for con in (updated, full):
        load_extension(con, "fts")
    for query in QUERIES:
        found = [search(con, query, limit=50)[0].fetchall() for con in (updated, full)]
        assert found[0] == found[1], query
    assert found[0], "the last query found nothing: the comparison proves little"


def test_the_updated_mirror_equals_the_full_build(two_builds: tuple[Path, Path], tmp_path: Path) -> None:
    updated, full = (
        sqlite3.connect(f"file:{folder / MIRROR_NAME}?mode=ro", uri=True) for folder in two_builds
    )
    schema = "SELECT type, name, sql FROM sqlite_master ORDER BY name"
    assert updated.execute(schema).fetchall() == full.execute(schema).fetchall()
    names = [row[0] for row in full.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for name in names:
        if name.startswith(("article_versions_fts", "sqlite_")):
            continue
        query = f'SELECT * FROM "{name}" ORDER BY ' + ", ".join(
            f'"{row[1]}"' for row in full.execute(f'PRAGMA table_info("{name}")')
        )
        if name == "snapshots":
            query = query.replace("SELECT *", "SELECT last_event_seq, tables")
        assert updated.execute(query).fetchall() == full.execute(query).fetchall(), name
    for word in ("zelensky", "geneva", "selenskyj", "strike"):
        matched = (
            "SELECT v.article_id, v.version FROM article_versions_fts AS f "
            "JOIN article_versions AS v ON v.rowid = f.rowid WHERE article_versions_fts MATCH ? ORDER BY 1, 2"
        )
        assert updated.execute(matched, [word]).fetchall() == full.execute(matched, [word]).fetchall(), word
    # The full-text index agrees with its table, row for row (it raises otherwise).
    writable = shutil.copyfile(two_builds[0] / MIRROR_NAME, tmp_path / MIRROR_NAME)
    writable.chmod(0o644)
    with sqlite3.connect(writable) as copy:
        copy.execute("INSERT INTO article_versions_fts(article_versions_fts) VALUES ('integrity-check')")


def test_the_updated_parquet_equals_the_full_build(two_builds: tuple[Path, Path]) -> None:
    updated, full = two_builds
    files = sorted(str(path.relative_to(full / "parquet")) for path in (full / "parquet").rglob("*.parquet"))
    assert files == sorted(
        str(path.relative_to(updated / "parquet")) for path in (updated / "parquet").rglob("*.parquet")
    )
    assert "articles/all.parquet" not in files and "sources/all.parquet" in files
    for name in files:
        tables = [pq.read_table(folder / "parquet" / name) for folder in two_builds]
        assert tables[0].schema == tables[1].schema, name
        rows = [sorted(table.to_pylist(), key=repr) for table in tables]
        assert rows[0] == rows[1], name


def test_nothing_new_changes_nothing_and_rewrites_no_parquet(demo_data_dir: Path, tmp_path: Path) -> None:
    db_path = copy_data_dir(demo_data_dir, tmp_path)
    first = publish(db_path)
    assert first.changes is None  # nothing published before: built in full
    before = _parquet_inodes(first.parquet_dir)
    again = publish(db_path)
    assert again.changes is not None and not any(
        removed or added for removed, added in again.changes.values()
    )
    after = _parquet_inodes(again.parquet_dir)
    assert after == before and len(before) >= 12  # the same files, linked into the new snapshot's folder
    assert again.tables == first.tables


def _parquet_inodes(folder: Path) -> dict[str, int]:
    """The Parquet files of a snapshot's folder, named relative to it: their inodes."""
    folder = folder.resolve()
    return {str(path.relative_to(folder)): path.stat().st_ino for path in folder.rglob("*.parquet")}


@pytest.mark.parametrize("damage", ["older format", "not a database"])
def test_a_snapshot_that_cannot_be_updated_is_built_in_full(
    demo_data_dir: Path, tmp_path: Path, damage: str
) -> None:
    db_path = copy_data_dir(demo_data_dir, tmp_path)
    publish(db_path)
    mirror = (published_dir(db_path) / "current" / MIRROR_NAME).resolve()
    if damage == "older format":
        with duckdb.connect(str(published_path(db_path))) as con:
            con.execute("UPDATE meta.snapshots SET snapshot_format = snapshot_format - 1")
    else:
        published_path(db_path).write_bytes(b"\0garbage" * 1000)
        mirror.chmod(0o644)
        mirror.write_bytes(b"\0garbage" * 1000)
    report = publish(db_path)
    assert report.changes is None and not report.mirror_updated
    with duckdb.connect(str(published_path(db_path)), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM articles").fetchall()[0][0] == report.tables["articles"]
    # The update given up left nothing behind, the mirror's copy made beside it included.
    assert not list(published_dir(db_path).rglob(".*"))


def test_a_damaged_mirror_alone_is_written_anew(demo_data_dir: Path, tmp_path: Path) -> None:
    db_path = copy_data_dir(demo_data_dir, tmp_path)
    publish(db_path)
    mirror = (published_dir(db_path) / "current" / MIRROR_NAME).resolve()
    mirror.chmod(0o644)
    mirror.write_bytes(b"\0garbage" * 1000)
    report = publish(db_path)
    assert report.changes is not None and not report.mirror_updated
    with sqlite3.connect(f"file:{published_dir(db_path) / MIRROR_NAME}?mode=ro", uri=True) as con:
        assert con.execute("SELECT count(*) FROM articles").fetchone()[0] == report.tables["articles"]
    assert not list(published_dir(db_path).rglob(".*"))  # the copy it could not use is gone


def test_a_publish_killed_between_its_two_switches_is_followed_by_a_full_one(
    demo_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_path = copy_data_dir(demo_data_dir, tmp_path)
    publish(db_path)
    with duckdb.connect(str(db_path)) as con:
        article = con.execute("SELECT article_id FROM marts.articles ORDER BY article_id LIMIT 1").fetchall()[
            0
        ][0]
        con.execute("UPDATE marts.articles SET title = 'A title changed' WHERE article_id = ?", [article])

    def killed(*_: object) -> None:
        raise KeyboardInterrupt  # as if killed after the file was renamed, before `current` moved

    with monkeypatch.context() as patched:
        patched.setattr("ingestion._publish.snapshot._switch_current", killed)
        with pytest.raises(KeyboardInterrupt):
            publish(db_path)
    (published_dir(db_path) / ".newsroom.duckdb.deadbeef.tmp").write_bytes(b"left by a killed publish")
    report = publish(db_path)
    assert report.changes is None  # file and folder were apart: built in full
    with duckdb.connect() as con:
        titles = con.execute(
            f"SELECT title FROM read_parquet('{published_dir(db_path) / 'parquet' / 'articles'}/*.parquet') "
            "WHERE article_id = ?",
            [article],
        ).fetchall()
    assert titles == [("A title changed",)]
    assert not list(published_dir(db_path).glob(".*"))  # what the killed ones left is gone


def test_a_second_publish_waits_for_the_first(
    demo_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_path = copy_data_dir(demo_data_dir, tmp_path)
    monkeypatch.setattr("ingestion._publish.snapshot.PUBLISH_LOCK_TIMEOUT", 0.5)
    with (
        _publish_lock(published_dir(db_path), timeout=60),
        pytest.raises(PublishError, match="another publish"),
    ):
        publish(db_path)
