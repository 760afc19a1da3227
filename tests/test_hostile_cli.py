"""The CLI against hostile input: queries that would destroy data, run forever or flood
the output, control characters in the data, closed pipes, damaged database files.

Every case runs the real ``newsroom`` command in a subprocess on real DuckDB files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from ingestion._log.store import EventStore, PendingEvent
from ingestion._sources.dates import utcnow

from .conftest import REPO, run_cli
from .feeds import item, rss

HOSTILE_TITLE = "Breaking\x1b[31m red\x00 nul\r cr\x9b c1\ttab end"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_error_line(result: subprocess.CompletedProcess, command: str, *, status: int = 2) -> str:
    """The one line an error left on stderr. Status 2: refused or over a limit; 1: a query
    the database could not run."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"newsroom {command}: error: "), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def working_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working database of a few MB: appended events plus a real ingest of a local feed."""
    root = tmp_path_factory.mktemp("working")
    db = root / "data" / "newsroom.duckdb"
    with EventStore(db) as store, store.transaction():
        store.append(
            [
                PendingEvent(
                    "article.published",
                    f"article:{n}",
                    "archive",
                    {"title": f"Story {n}", "body": "x" * 2000},
                )
                for n in range(3000)
            ],
            recorded_at=utcnow(),
            run_id="seed",
        )
    (root / "feed.xml").write_bytes(rss([item(n) for n in range(5)]))
    (root / "feeds.yml").write_text("sources:\n  - id: local\n    url: feed.xml\n")
    result = run_cli("ingest", "--db", str(db), "--config", str(root / "feeds.yml"), timeout=120)
    assert result.returncode == 0, result.stderr
    return db


@pytest.fixture
def data_dir(tmp_path: Path, working_db: Path) -> Path:
    """A data directory as the pipeline leaves it: the working database, a published
    snapshot (marts with a hostile title), blobs."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(working_db, data / "newsroom.duckdb")
    (data / "blobs" / "ab").mkdir(parents=True)
    (data / "blobs" / "ab" / ("ab" + "0" * 62 + ".gz")).write_bytes(b"\x1f\x8b body")
    (data / "published").mkdir()
    with duckdb.connect(str(data / "published" / "newsroom.duckdb")) as con:
        con.execute("CREATE SCHEMA marts")
        con.execute(
            "CREATE TABLE marts.articles AS SELECT range AS n, 'src' || (range % 3) AS source_id, "
            "CASE WHEN range = 1 THEN ? ELSE 'Headline ' || range END AS title, "
            "range * 1000000000000 AS words FROM range(500)",
            [HOSTILE_TITLE],
        )
        con.execute("CREATE SCHEMA meta")
        con.execute("CREATE TABLE meta.snapshots AS SELECT 1 AS last_event_seq")
    return data


def sql(data: Path, query: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return run_cli("sql", query, "--db", str(data / "newsroom.duckdb"), *args, timeout=timeout)


# -- 1. output never destroys data ------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "target", "force"),
    [
        ("parquet", "newsroom.duckdb", []),
        ("parquet", "newsroom.duckdb", ["--force"]),
        ("csv", "published/newsroom.duckdb", []),
        ("csv", "published/newsroom.duckdb", ["--force"]),
    ],
)
def test_output_never_replaces_the_working_database_or_the_snapshot(
    data_dir: Path, fmt: str, target: str, force: list[str]
) -> None:
    before = _digest(data_dir / target)
    result = sql(data_dir, "SELECT 1", "--format", fmt, "--output", str(data_dir / target), *force)
    assert "refused" in _one_error_line(result, "sql")
    assert _digest(data_dir / target) == before


@pytest.mark.parametrize("relative", ["blobs/ab/new.csv", "airflow/new.csv", "new.csv"])
def test_output_never_goes_into_the_data_directory(data_dir: Path, relative: str) -> None:
    (data_dir / "airflow").mkdir()
    result = sql(data_dir, "SELECT 1", "--format", "csv", "--output", str(data_dir / relative), "--force")
    assert "inside the data directory" in _one_error_line(result, "sql")
    assert not (data_dir / relative).exists()


def test_links_into_the_data_directory_are_followed_and_refused(data_dir: Path, tmp_path: Path) -> None:
    to_database = tmp_path / "innocent.csv"
    to_database.symlink_to(data_dir / "newsroom.duckdb")
    to_folder = tmp_path / "folder"
    to_folder.symlink_to(data_dir / "published")
    before = _digest(data_dir / "newsroom.duckdb")
    for output in (to_database, to_folder / "new.parquet"):
        result = sql(data_dir, "SELECT 1", "--format", "parquet", "--output", str(output), "--force")
        assert "refused" in _one_error_line(result, "sql")
    assert _digest(data_dir / "newsroom.duckdb") == before
    assert not (data_dir / "published" / "new.parquet").exists()


def test_databases_and_blobs_elsewhere_are_never_replaced(data_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "backup.duckdb"
    shutil.copy(data_dir / "newsroom.duckdb", copy)
    blob = tmp_path / ("cd" + "1" * 62 + ".gz")
    blob.write_bytes(b"\x1f\x8b body")
    for target in (copy, blob):
        before = _digest(target)
        result = sql(data_dir, "SELECT 1", "--format", "csv", "--output", str(target), "--force")
        assert "not even with --force" in _one_error_line(result, "sql")
        assert _digest(target) == before


def test_an_existing_file_is_replaced_only_with_force(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_text("keep me\n")
    result = sql(data_dir, "SELECT 1 AS one", "--format", "csv", "--output", str(out))
    assert "--force" in _one_error_line(result, "sql")
    assert out.read_text() == "keep me\n"
    result = sql(data_dir, "SELECT 1 AS one", "--format", "csv", "--output", str(out), "--force")
    assert result.returncode == 0, result.stderr
    assert out.read_text() == "one\n1\n"


def test_a_failing_query_leaves_no_file_behind(data_dir: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "old.csv").write_text("keep me\n")
    # Fails half-way through, after batches were written.
    failing = (
        "SELECT CASE WHEN range < 150000 THEN range::VARCHAR ELSE 'x' END::INTEGER AS v FROM range(200000)"
    )
    for name, force in (("new.csv", []), ("old.csv", ["--force"])):
        result = sql(data_dir, failing, "--format", "csv", "--output", str(out_dir / name), *force)
        assert "Conversion Error" in _one_error_line(result, "sql", status=1)
    assert sorted(p.name for p in out_dir.iterdir()) == ["old.csv"]
    assert (out_dir / "old.csv").read_text() == "keep me\n"


# -- 2. limits ------------------------------------------------------------------------------


@pytest.mark.parametrize("output", [[], ["--format", "csv", "--output", "OUT"]])
def test_a_long_query_is_stopped_at_the_time_limit(data_dir: Path, tmp_path: Path, output: list[str]) -> None:
    output = [str(tmp_path / "out.csv") if arg == "OUT" else arg for arg in output]
    started = time.monotonic()
    result = sql(
        data_dir,
        "SELECT count(*) FROM range(100000000) a, range(100000000) b WHERE a.range + b.range = 3",
        "--timeout",
        "2",
        *output,
    )
    elapsed = time.monotonic() - started
    assert "ran longer than 2 s" in _one_error_line(result, "sql")
    assert elapsed < 20  # the 2 s plus starting Python, never the hours the join would take
    assert not (tmp_path / "out.csv").exists()


def test_output_stops_at_the_row_limit(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "rows.parquet"
    result = sql(
        data_dir,
        "SELECT * FROM range(50000)",
        "--format",
        "parquet",
        "--output",
        str(out),
        "--max-rows",
        "20000",
    )
    assert "more than 20,000 rows" in _one_error_line(result, "sql")
    assert not out.exists()
    result = sql(data_dir, "SELECT * FROM range(50000)", "--format", "json", "--max-rows", "20000")
    assert "more than 20,000 rows" in _one_error_line(result, "sql")
    assert result.stdout.count("\n") <= 20_001
    result = sql(data_dir, "SELECT * FROM range(50000)", "--format", "parquet", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert pq.read_table(out).num_rows == 50_000


def test_wide_rows_are_stopped_before_they_fill_memory(data_dir: Path) -> None:
    # 100 rows of 10 MB: refused on the first batch's size, before it becomes Python objects.
    result = sql(
        data_dir,
        "SELECT repeat('x', 10000000) AS s FROM range(100)",
        "--format",
        "json",
        "--max-bytes",
        "50MB",
    )
    assert "larger than" in _one_error_line(result, "sql")


@pytest.mark.parametrize(
    "option", [["--timeout", "inf"], ["--timeout", "1e308"], ["--max-bytes", "inf"], ["--max-rows", "0"]]
)
def test_limits_out_of_range_are_usage_errors(data_dir: Path, option: list[str]) -> None:
    result = sql(data_dir, "SELECT 1", "--format", "csv", *option)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "must be" in result.stderr


def test_output_stops_at_the_byte_limit(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "big.csv"
    result = sql(
        data_dir,
        "SELECT repeat('x', 1000) FROM range(1000)",
        "--format",
        "csv",
        "--output",
        str(out),
        "--max-bytes",
        "100KB",
    )
    assert "larger than 0.1 MB" in _one_error_line(result, "sql")
    assert not out.exists()


def test_a_query_needing_too_much_memory_is_stopped(data_dir: Path) -> None:
    result = sql(data_dir, "SELECT list(range) FROM range(100000000)", "--memory-limit", "100MB")
    assert "memory limit" in _one_error_line(result, "sql")


# -- 3. errors, CSV lines, HUGEINT, snapshots -----------------------------------------------


@pytest.mark.parametrize(
    ("query", "fmt"),
    [
        ("SELECT CAST(title AS INTEGER) FROM marts.articles", "table"),
        ("SELECT CAST(title AS INTEGER) FROM marts.articles", "csv"),
        ("SELECT * FROM duckdb_extensions()", "table"),
        ("SELECT * FROM duckdb_extensions()", "json"),
        ("SELECT no_such_column FROM marts.articles", "table"),
        ("SELECT * FROM read_csv('/etc/passwd')", "csv"),
    ],
)
def test_query_errors_are_one_line(data_dir: Path, query: str, fmt: str) -> None:
    # Reading files (the extension folder included) is refused (2); the others fail as written (1).
    refused = "read_csv" in query or "duckdb_extensions" in query
    line = _one_error_line(sql(data_dir, query, "--format", fmt), "sql", status=2 if refused else 1)
    assert "\x1b" not in line and "\x00" not in line  # the hostile title is in the CAST error


def test_csv_lines_end_with_newline_only(data_dir: Path) -> None:
    result = sql(data_dir, "SELECT n, source_id FROM marts.articles ORDER BY n LIMIT 3", "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stdout
    assert result.stdout == "n,source_id\n0,src0\n1,src1\n2,src2\n"


def test_sums_are_plain_integers_in_json_and_parquet(data_dir: Path, tmp_path: Path) -> None:
    query = "SELECT source_id, sum(words) AS words FROM marts.articles GROUP BY 1 ORDER BY 1"
    result = sql(data_dir, query, "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows[0] == {"source_id": "src0", "words": sum(range(0, 500, 3)) * 1_000_000_000_000}
    out = tmp_path / "sums.parquet"
    assert sql(data_dir, query, "--format", "parquet", "--output", str(out)).returncode == 0
    assert str(pq.read_schema(out).field("words").type) == "int64"
    too_large = sql(
        data_dir, "SELECT 170141183460469231731687303715884105727::HUGEINT AS h", "--format", "json"
    )
    assert "64-bit" in _one_error_line(too_large, "sql", status=1)


def test_a_snapshot_file_can_be_queried_directly(data_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.duckdb"
    shutil.copy(data_dir / "published" / "newsroom.duckdb", copy)
    query = "SELECT count(*) AS n FROM marts.articles"
    by_option = run_cli("sql", query, "--snapshot", str(copy), "--format", "csv")
    by_db = run_cli("sql", query, "--db", str(copy), "--format", "csv")
    assert by_option.stdout == by_db.stdout == "n\n500\n", (by_option.stderr, by_db.stderr)
    # The working database is not a snapshot: a reader holding it open would block the writer.
    result = run_cli("sql", query, "--snapshot", str(data_dir / "newsroom.duckdb"))
    assert "working database" in _one_error_line(result, "sql")


# -- 4. control characters ------------------------------------------------------------------


def test_control_characters_never_reach_the_terminal_or_csv(data_dir: Path) -> None:
    query = 'SELECT title AS "t\x1b[2J" FROM marts.articles WHERE n = 1'
    for fmt in ("table", "csv"):
        result = sql(data_dir, query, "--format", fmt)
        assert result.returncode == 0, result.stderr
        for control in ("\x1b", "\x00", "\x9b", "\r"):
            assert control not in result.stdout, (fmt, result.stdout)
        assert "Breaking\ufffd[31m red\ufffd nul" in result.stdout
    as_json = sql(data_dir, query, "--format", "json")
    assert "\x1b" not in as_json.stdout and "\x9b" not in as_json.stdout
    assert json.loads(as_json.stdout)[0]["t\x1b[2J"] == HOSTILE_TITLE  # escaped, not lost


# -- 5. closed pipes ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_a_reader_that_stops_early_gets_no_traceback(data_dir: Path, fmt: str) -> None:
    command = [sys.executable, "-m", "ingestion.cli", "sql", "SELECT * FROM range(500000)"]
    command += ["--db", str(data_dir / "newsroom.duckdb"), "--format", fmt, "--max-rows", "500000"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.readline()  # like `| head -1`
        process.stdout.close()
        stderr = process.stderr.read().decode()
        returncode = process.wait(timeout=60)
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
    assert returncode == 141


# -- 6. damaged database files --------------------------------------------------------------


def _damage(source: Path, target: Path, kind: str) -> None:
    target.parent.mkdir(parents=True)
    if kind == "not-a-database":
        with duckdb.connect() as con:
            con.execute(f"COPY (SELECT 1 AS a) TO '{target}' (FORMAT parquet)")
        return
    if kind == "random-bytes":
        target.write_bytes(os.urandom(100_000))
        return
    if kind == "zero-bytes":
        target.write_bytes(b"")
        return
    shutil.copy(source, target)
    shutil.copy(source.with_name(source.name + ".head.json"), target.with_name(target.name + ".head.json"))
    size = target.stat().st_size
    if kind == "truncated":
        os.truncate(target, size // 2)
        return
    if kind == "header-flipped":
        offsets = [4200, 8300]  # the two database headers
    else:
        # The blocks every append reads: those of the log's last sequence numbers and hashes
        # (damage elsewhere in the log is verify's to find, see the next test). Blocks are
        # 256 KiB, after three headers of 4 KiB; a byte flipped anywhere in one fails its checksum.
        with duckdb.connect(str(target), read_only=True) as con:
            blocks = con.execute(
                "SELECT DISTINCT block_id FROM pragma_storage_info('raw.events') "
                "WHERE column_name IN ('event_seq', 'event_hash') AND block_id >= 0 "
                "AND row_group_id = (SELECT max(row_group_id) FROM pragma_storage_info('raw.events'))"
            ).fetchall()
        assert blocks
        offsets = [3 * 4096 + block * 262_144 + 1024 for (block,) in blocks]
    data = bytearray(target.read_bytes())
    for offset in offsets:
        data[offset] ^= 0xFF
    target.write_bytes(data)


DAMAGE = ["truncated", "blocks-flipped", "header-flipped", "not-a-database", "random-bytes", "zero-bytes"]


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_databases_give_one_clear_line(working_db: Path, tmp_path: Path, kind: str) -> None:
    db = tmp_path / "data" / "newsroom.duckdb"
    _damage(working_db, db, kind)
    (tmp_path / "feed.xml").write_bytes(rss([item(n) for n in range(100, 103)]))
    (tmp_path / "feeds.yml").write_text("sources:\n  - id: local\n    url: feed.xml\n")
    before = _digest(db)
    _one_error_line(run_cli("verify", "--db", str(db), timeout=120), "verify")
    _one_error_line(
        run_cli("ingest", "--db", str(db), "--config", str(tmp_path / "feeds.yml"), timeout=120), "ingest"
    )
    assert _digest(db) == before


def test_verify_reports_a_damaged_block_it_reads(working_db: Path, tmp_path: Path) -> None:
    """Damage in the middle of the log, where an ingest may never read, is found by verify."""
    db = tmp_path / "data" / "newsroom.duckdb"
    db.parent.mkdir()
    shutil.copy(working_db, db)
    data = bytearray(db.read_bytes())
    for offset in range(len(data) // 4, 3 * len(data) // 4, 65536):
        data[offset] ^= 0xFF
    db.write_bytes(data)
    line = _one_error_line(run_cli("verify", "--db", str(db)), "verify")
    assert "could not be read, so it was not verified" in line


def test_a_damaged_anchor_is_a_failure(working_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "newsroom.duckdb"
    shutil.copy(working_db, db)
    db.with_name(db.name + ".head.json").write_text("{not json")
    result = run_cli("verify", "--db", str(db))
    assert result.returncode == 1, result.stderr
    assert "FAIL anchor: newsroom.duckdb.head.json is not a valid anchor" in result.stdout


# -- 7. last resort -------------------------------------------------------------------------


def test_file_system_errors_are_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "feeds.yml"
    folder.mkdir()
    _one_error_line(run_cli("ingest", "--db", str(tmp_path / "x.duckdb"), "--config", str(folder)), "ingest")


def test_transform_of_a_database_that_is_not_there_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "typo.duckdb"
    line = _one_error_line(run_cli("transform", "--db", str(missing)), "transform")
    assert "no event log" in line and not missing.exists()


def test_a_selection_dbt_cannot_read_or_that_matches_nothing_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "n.duckdb"
    with EventStore(db):
        pass
    line = _one_error_line(run_cli("transform", "--db", str(db), "--select", "path:/etc"), "transform")
    assert "inside the dbt project" in line
    result = run_cli("transform", "--db", str(db), "--select", "stroy_threads")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "newsroom transform: error: --select stroy_threads matched nothing in the dbt project: "
        "name a model, e.g. story_threads"
    )


def _local_setup(tmp_path: Path) -> tuple[Path, Path]:
    """A working database made by a real ingest of a local feed, and its sources file."""
    (tmp_path / "feed.xml").write_bytes(rss([item(1), item(2)]))
    config = tmp_path / "feeds.yml"
    config.write_text("sources:\n  - id: local\n    url: feed.xml\n")
    db = tmp_path / "data" / "newsroom.duckdb"
    result = run_cli("ingest", "--db", str(db), "--config", str(config), timeout=180)
    assert result.returncode == 0, result.stderr
    return db, config


def test_a_damaged_feed_states_file_is_only_a_copy(tmp_path: Path) -> None:
    """<db>.feeds.json is only a copy of what the log says: one nested past Python's stack
    is read past like any damaged one (it was a traceback in every later ingest)."""
    db, config = _local_setup(tmp_path)
    db.with_name(db.name + ".feeds.json").write_text("[" * 200_000)
    result = run_cli("ingest", "--db", str(db), "--config", str(config), timeout=180)
    assert "Traceback" not in result.stderr, result.stderr[-1500:]
    assert result.returncode == 0, result.stderr[-1500:]


@pytest.mark.parametrize("command", ["validate", "publish"])
def test_a_damaged_build_record_is_not_a_traceback(tmp_path: Path, command: str) -> None:
    """A <db>.build.json nested past Python's stack is an unreadable record, no traceback."""
    db, _ = _local_setup(tmp_path)
    db.with_name(db.name + ".build.json").write_text("[" * 200_000)
    result = run_cli(command, "--db", str(db), timeout=300)
    assert "Traceback" not in result.stderr, result.stderr[-1500:]
    assert "RecursionError" not in result.stderr


def test_a_sqlite_file_given_as_the_database_is_never_a_download(tmp_path: Path) -> None:
    """The explorer's mirror (published/newsroom.sqlite) given as --db: a clear error. DuckDB
    opens a SQLite file through an extension it would install from the network (settings made
    after the file was opened came too late). To keep this test off the network, HOME/.duckdb
    is a file: an install would stop at creating its folder, and say so."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".duckdb").write_text("not a folder: DuckDB cannot install (or download) into it\n")
    lite = tmp_path / "newsroom.sqlite"
    with sqlite3.connect(lite) as con:
        con.execute("CREATE TABLE notes (x TEXT)")
    con.close()
    for command in (["verify"], ["ingest", "--config", str(tmp_path / "feeds.yml")]):
        (tmp_path / "feeds.yml").write_text("sources:\n  - id: local\n    url: feed.xml\n")
        result = subprocess.run(
            [sys.executable, "-m", "ingestion.cli", *command, "--db", str(lite)],
            env={**os.environ, "HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
        line = _one_error_line(result, command[0])
        # What DuckDB says when it tries to install the extension (the step before the download).
        assert "Failed to create directory" not in line, line
        assert "download" not in line.lower(), line


def test_ingest_never_writes_into_a_foreign_duckdb_file(tmp_path: Path) -> None:
    """A DuckDB file that is not a newsroom log (someone's analytics database; the published
    snapshot, also named newsroom.duckdb) given as --db: nothing is written into it."""
    foreign = tmp_path / "analytics.duckdb"
    with duckdb.connect(str(foreign)) as con:
        con.execute("CREATE TABLE customers AS SELECT range AS id FROM range(10)")
    before = _digest(foreign)
    (tmp_path / "feed.xml").write_bytes(rss([item(1)]))
    (tmp_path / "feeds.yml").write_text("sources:\n  - id: local\n    url: feed.xml\n")
    result = run_cli("ingest", "--db", str(foreign), "--config", str(tmp_path / "feeds.yml"), timeout=180)
    with duckdb.connect(str(foreign), read_only=True) as con:
        schemas = {
            s
            for (s,) in con.execute("SELECT DISTINCT table_schema FROM information_schema.tables").fetchall()
        }
    assert schemas == {"main"}, (schemas, result.stdout)
    assert _digest(foreign) == before
    _one_error_line(result, "ingest")


def test_transform_never_builds_into_a_foreign_duckdb_file(tmp_path: Path) -> None:
    """Nor does `transform` build its 40-odd tables and views into such a file."""
    foreign = tmp_path / "analytics.duckdb"
    with duckdb.connect(str(foreign)) as con:
        con.execute("CREATE TABLE customers AS SELECT range AS id FROM range(10)")
    result = run_cli("transform", "--db", str(foreign), timeout=600)
    with duckdb.connect(str(foreign), read_only=True) as con:
        schemas = {
            s
            for (s,) in con.execute("SELECT DISTINCT table_schema FROM information_schema.tables").fetchall()
        }
    assert schemas == {"main"}, (schemas, result.stdout[-1000:])
    _one_error_line(result, "transform")


def test_publish_of_a_database_that_is_not_there_leaves_nothing_behind(tmp_path: Path) -> None:
    """A mistyped --db leaves no published/ folder with a lock file behind."""
    missing = tmp_path / "typo" / "newsroom.duckdb"
    _one_error_line(run_cli("publish", "--db", str(missing), timeout=120), "publish")
    assert not (tmp_path / "typo").exists(), sorted(p.name for p in (tmp_path / "typo").rglob("*"))
