"""The read-only guard of ``newsroom sql``: whatever a reader types, the snapshot, the
files beside it and the machine's other files stay as they were, and nothing is read
from outside the snapshot. Refusals are one line and exit status 2."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
from pathlib import Path

import duckdb
import pytest

from ingestion._publish.sql import GRACE_SECONDS, QueryLimits, run_bounded, run_sql
from ingestion.exceptions import QueryError

from .conftest import run_cli

SECRET = "not-for-readers-7f3a"


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its digest: any write shows up as a difference."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A published snapshot, another database and a private file beside it."""
    root = tmp_path_factory.mktemp("guard")
    published = root / "data" / "published"
    published.mkdir(parents=True)
    with duckdb.connect(str(published / "newsroom.duckdb")) as con:
        con.execute("CREATE SCHEMA marts")
        con.execute(
            "CREATE TABLE marts.articles AS SELECT range AS n, 'Headline ' || range AS title FROM range(5)"
        )
        con.execute("CREATE SCHEMA meta")
        con.execute("CREATE TABLE meta.snapshots AS SELECT 1 AS last_event_seq")
    with duckdb.connect(str(root / "other.duckdb")) as con:
        con.execute("CREATE TABLE private AS SELECT ? AS secret", [SECRET])
    (root / "secret.csv").write_text(f"secret\n{SECRET}\n")
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT '{SECRET}' AS secret) TO '{root / 'secret.parquet'}' (FORMAT parquet)")
    return root


def snapshot(root: Path) -> Path:
    return root / "data" / "published" / "newsroom.duckdb"


REFUSED = {
    # writes
    "insert": "INSERT INTO marts.articles VALUES (99, 'injected')",
    "update": "UPDATE marts.articles SET title = 'changed'",
    "delete": "DELETE FROM marts.articles",
    "create table": "CREATE TABLE marts.copy AS SELECT * FROM marts.articles",
    "create temp table": "CREATE TEMP TABLE scratch AS SELECT 1",
    "create view": "CREATE VIEW marts.v AS SELECT 1",
    "create macro": "CREATE MACRO leak() AS 1",
    "drop": "DROP TABLE marts.articles",
    "alter": "ALTER TABLE marts.articles RENAME TO gone",
    "write in a cte": "WITH x AS (SELECT 1) INSERT INTO marts.articles SELECT 1, 'x' FROM x",
    "second statement": "SELECT 1; DROP TABLE marts.articles",
    "checkpoint": "CHECKPOINT",
    "vacuum": "VACUUM",
    # other databases
    "attach": "ATTACH '{root}/other.duckdb' AS other",
    "attach new": "ATTACH '{root}/created.duckdb' AS created",
    "detach": "DETACH newsroom",
    "use": "USE memory",
    # files through COPY and EXPORT
    "copy to": "COPY marts.articles TO '{root}/out.csv'",
    "copy query to": "COPY (SELECT * FROM marts.articles) TO '{root}/out.parquet' (FORMAT parquet)",
    "copy from": "COPY marts.articles FROM '{root}/secret.csv'",
    "export": "EXPORT DATABASE '{root}/exported'",
    "import": "IMPORT DATABASE '{root}/exported'",
    "explain analyze copy": "EXPLAIN ANALYZE COPY (SELECT 1) TO '{root}/explained.csv'",
    "explain analyze create": "EXPLAIN ANALYZE CREATE TEMP TABLE t AS SELECT 42 AS x",
    "explain analyze set": "EXPLAIN ANALYZE SET memory_limit = '100GB'",
    "two selects": "SELECT 1; SELECT 2",
    # table functions that change the connection (logging to a file would abort the process)
    "enable_logging": "SELECT * FROM enable_logging(storage='file', storage_path='{root}/logs', level='trace')",
    "quoted enable_profiling": 'SELECT * FROM "enable_profiling"()',
    "force_checkpoint": "SELECT * FROM force_checkpoint()",
    # files through table functions (these are SELECTs: the database itself must refuse)
    "read_csv": "SELECT * FROM read_csv('{root}/secret.csv')",
    "read_csv_auto": "SELECT * FROM read_csv_auto('{root}/secret.csv')",
    "read_text": "SELECT content FROM read_text('{root}/secret.csv')",
    "read_blob": "SELECT content FROM read_blob('{root}/secret.csv')",
    "read_parquet": "SELECT * FROM read_parquet('{root}/secret.parquet')",
    "parquet_metadata": "SELECT * FROM parquet_metadata('{root}/secret.parquet')",
    "read_json": "SELECT * FROM read_json('{root}/secret.csv')",
    "a file as a table": "SELECT * FROM '{root}/secret.csv'",
    "glob": "SELECT * FROM glob('{root}/*')",
    "sniff_csv": "SELECT * FROM sniff_csv('{root}/secret.csv')",
    "system file": "SELECT content FROM read_text('/etc/hostname')",
    # settings
    "set memory": "SET memory_limit = '100GB'",
    "set external access": "SET enable_external_access = true",
    "set lock": "SET lock_configuration = false",
    "reset": "RESET memory_limit",
    "pragma": "PRAGMA enable_profiling",
    "pragma call": "CALL pragma_database_size()",
    # extensions (only local sources here: a failing guard must not reach the network)
    "install": "INSTALL httpfs FROM 'http://127.0.0.1:9'",
    "force install": "FORCE INSTALL '{root}/evil.duckdb_extension'",
    "load": "LOAD '{root}/evil.duckdb_extension'",
    "load by name": "LOAD httpfs",
}


@pytest.mark.parametrize("query", REFUSED.values(), ids=REFUSED.keys())
def test_a_refused_query_changes_and_reveals_nothing(
    root: Path, query: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _tree(root)
    with pytest.raises(QueryError) as refused:
        run_sql(snapshot(root), query.format(root=root), fmt="csv")
    message = str(refused.value)
    # Refused by the statement check, or by the database's own ban on file access; not by chance.
    assert message.startswith("refused: ") or "file system operations are disabled" in message, message
    assert "\n" not in message and SECRET not in message
    assert SECRET not in capsys.readouterr().out
    assert _tree(root) == before


def test_reading_the_snapshot_still_works(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_sql(snapshot(root), "SELECT count(*) AS n FROM marts.articles", fmt="csv")
    run_sql(snapshot(root), "EXPLAIN SELECT * FROM marts.articles", fmt="csv")
    run_sql(snapshot(root), "EXPLAIN (FORMAT json) SELECT * FROM marts.articles", fmt="csv")
    run_sql(snapshot(root), "SELECT count(*) AS n FROM query('SELECT * FROM marts.articles')", fmt="csv")
    assert capsys.readouterr().out.startswith("n\n5\n")


#: Calls the statement check must find however they are written: a comment between the
#: name and its arguments, a statement in a string, one made as the query runs. (Run in a
#: process of their own: one that got through would abort it.)
HIDDEN = {
    "block comment": "SELECT * FROM enable_logging /* */ (storage='file', storage_path='{root}/logs')",
    "line comment": "SELECT * FROM enable_logging --\n(storage='file', storage_path='{root}/logs')",
    "in query()": "SELECT * FROM query('SELECT * FROM enable_logging(storage=''file'')')",
    "made in query()": "SELECT * FROM query('SELECT * FROM enable_' || 'logging(storage=''file'')')",
    "in a subquery": "SELECT (SELECT count(*) FROM truncate_duckdb_logs())",
    "serialized": (
        "SELECT * FROM json_execute_serialized_sql(json_serialize_sql("
        "'SELECT * FROM enable_logging(storage=''file'', storage_path=''{root}/logs'')'))"
    ),
}


@pytest.mark.parametrize(
    "query",
    [REFUSED["delete"], REFUSED["read_text"], REFUSED["load"], *HIDDEN.values()],
    ids=["write", "file function", "extension", *HIDDEN.keys()],
)
def test_the_command_refuses_in_one_line_with_exit_status_2(root: Path, query: str) -> None:
    before = _tree(root)
    result = run_cli("sql", query.format(root=root), "--snapshot", str(snapshot(root)), timeout=60)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and SECRET not in result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("newsroom sql: error: ")
    assert _tree(root) == before


def test_values_a_format_cannot_hold_fail_with_a_clear_error(root: Path, tmp_path: Path) -> None:
    for query, fmt in [
        ("SELECT 'infinity'::TIMESTAMP AS t", "csv"),
        ("SELECT DATE '99999-01-01' AS d", "json"),
        ("SELECT INTERVAL 1 DAY AS i", "parquet"),
    ]:
        output = tmp_path / f"out.{fmt}" if fmt == "parquet" else None
        with pytest.raises(QueryError, match=f"cannot be written as {fmt}.*cast that column"):
            run_sql(snapshot(root), query, fmt=fmt, output=output)
        assert output is None or not output.exists()


def test_json_output_stays_json(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_sql(snapshot(root), "SELECT 'nan'::DOUBLE AS x, '-inf'::DOUBLE AS y, 1.5::DOUBLE AS z", fmt="json")
    assert json.loads(capsys.readouterr().out) == [{"x": "NaN", "y": "-Infinity", "z": 1.5}]
    with pytest.raises(QueryError, match="'a' appears twice"):
        run_sql(snapshot(root), "SELECT 1 AS a, 2 AS a", fmt="json")


def test_the_table_view_shows_the_rows_asked_for_and_says_there_are_more(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_sql(snapshot(root), "SELECT range AS n FROM range(500)", max_rows=5)
    shown = capsys.readouterr()
    assert [
        line.split()[1] for line in shown.out.splitlines() if line.split()[1:2] and line.split()[1].isdigit()
    ] == ["0", "1", "2", "3", "4"]
    assert "more than 5 rows" in shown.err


def test_paths_that_cannot_be_resolved_are_refused_in_one_line(root: Path, tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for output in (tmp_path / "a" / "x.csv", Path("~nosuchuser-here/x.csv")):
        with pytest.raises(QueryError, match="cannot use"):
            run_sql(snapshot(root), "SELECT 1", fmt="csv", output=output)


def test_a_database_journal_is_never_replaced(root: Path, tmp_path: Path) -> None:
    database = tmp_path / "w.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    journal = tmp_path / "w.duckdb.wal"
    journal.write_bytes(b"pending")
    with pytest.raises(QueryError, match="the journal of"):
        run_sql(snapshot(root), "SELECT 1", fmt="csv", output=journal, force=True)
    assert journal.read_bytes() == b"pending"


def test_a_file_of_another_engine_is_not_read_through_a_downloaded_extension(
    root: Path, tmp_path: Path
) -> None:
    other = tmp_path / "s.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(QueryError, match="cannot open the snapshot") as refused:
        run_sql(other, "SELECT 1", fmt="csv")
    assert "download" not in str(refused.value).lower()


def test_one_enormous_value_is_stopped_by_the_memory_limit(root: Path) -> None:
    # DuckDB's own limit does not see a list built inside one function call: the process's does.
    started = time.monotonic()
    query = "SELECT length(list_concat(range(200000000), range(10))) AS n"
    result = run_cli(
        "sql",
        query,
        "--snapshot",
        str(snapshot(root)),
        "--memory-limit",
        "100MB",
        "--timeout",
        "20",
        timeout=120,
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    # DuckDB's own out-of-memory error; where an allocation fails where it does not expect
    # one, the process's end by a signal; where the process at its cap cannot stop itself
    # (its time limit's thread dies there), its kill past the time: each one line naming the limit.
    assert "--memory-limit" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert time.monotonic() - started < 60


def test_a_reading_command_stuck_at_its_memory_cap_is_killed_and_said_to_need_memory(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def stuck_at_the_cap() -> int:
        held = []
        with contextlib.suppress(MemoryError):
            while True:
                held.append(bytearray(50 * 2**20))
        time.sleep(120)  # as a query whose time limit could not run
        return 0

    started = time.monotonic()
    status = run_bounded(stuck_at_the_cap, QueryLimits(timeout=0.5, memory_bytes=100_000_000), "newsroom sql")
    assert status == 2
    assert time.monotonic() - started < 0.5 + GRACE_SECONDS + 5
    assert capsys.readouterr().err.strip().endswith("raise --memory-limit")


def test_a_reading_command_past_its_time_and_grace_is_killed(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    status = run_bounded(lambda: time.sleep(120) or 0, QueryLimits(timeout=0.1), "newsroom sql")
    assert status == 2
    assert time.monotonic() - started < 0.1 + GRACE_SECONDS + 5
    assert "ran longer than 0.1 s" in capsys.readouterr().err


def test_the_table_view_shows_two_columns_of_one_name(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_sql(snapshot(root), "SELECT 1 AS a, 2 AS a")
    header = next(line for line in capsys.readouterr().out.splitlines() if " a " in line)
    assert "a_1" in header


def test_bidirectional_controls_and_time_zones_read_as_they_are(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_sql(
        snapshot(root),
        "SELECT TIMETZ '12:00:00+05:00' AS tz, 'paid ' || chr(8238) || 'fdp.exe' AS t",
        fmt="csv",
    )
    out = capsys.readouterr().out
    assert "12:00:00+05" in out  # the offset is kept
    assert "\u202e" not in out and "paid \ufffdfdp.exe" in out


def test_a_pivot_without_its_values_is_refused_with_the_way_to_write_it(root: Path) -> None:
    with pytest.raises(QueryError, match=r"IN \('live', 'withdrawn'\)"):
        run_sql(snapshot(root), "PIVOT marts.articles ON title", fmt="csv")
