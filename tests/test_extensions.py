"""DuckDB extensions come from their packages, never from the network; the product's
connections never download one; a database written by a newer DuckDB is one clear line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ingestion._extensions import extension_path, forbid_downloads, load_extension
from ingestion._log.store import EventStore
from ingestion.exceptions import ExtensionError

from .conftest import run_cli

EXTENSIONS = ["fts", "sqlite_scanner", "ducklake", "postgres_scanner"]

#: The main header (the first 140 non-zero bytes of the file's first 4 KiB) of a database
#: file written by DuckDB 2.0.1: storage version 999, library "v2.0.1", a valid checksum.
DUCKDB_2_0_1_HEADER = bytes.fromhex(
    "007cfc994c120b1b4455434be703000000000000000000000000000000000000000000000000000000000000"
    "000000000000000076322e302e31000000000000000000000000000000000000000000000000000038643738"
    "313134653930000000000000000000000000000000000000000000000000000000000000af59635592264076"
    "073066f4948d88e0"
)


@pytest.fixture
def offline(tmp_path: Path):
    """A connection that cannot have anything from DuckDB's extension server: an empty
    extension directory and a repository address where nothing listens."""
    extension_dir = tmp_path / "extension-dir"
    extension_dir.mkdir()
    with duckdb.connect() as con:
        con.execute(f"SET extension_directory = '{extension_dir}'")
        con.execute("SET custom_extension_repository = 'http://127.0.0.1:9'")
        yield con
    assert list(extension_dir.iterdir()) == []  # nothing was installed


def test_each_extension_file_is_in_its_package_for_this_duckdb() -> None:
    for name in EXTENSIONS:
        path = extension_path(name)
        assert path.is_file()
        assert path.parts[-2:] == (f"v{duckdb.__version__}", f"{name}.duckdb_extension")


def test_all_four_load_offline_and_work(offline: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    con = offline
    for name in EXTENSIONS:
        load_extension(con, name)
    loaded = dict(con.execute("SELECT extension_name, loaded FROM duckdb_extensions()").fetchall())
    assert all(loaded[name] for name in EXTENSIONS), loaded

    con.execute("CREATE TABLE docs (id INTEGER, body VARCHAR)")
    con.execute(
        "INSERT INTO docs VALUES (1, 'River floods the old town'), (2, 'Council votes on budget'), "
        "(3, 'Floods recede as rain stops')"
    )
    con.execute("PRAGMA create_fts_index('docs', 'id', 'body')")
    hits = con.execute(
        "SELECT id FROM (SELECT id, fts_main_docs.match_bm25(id, 'floods') AS score FROM docs) "
        "WHERE score IS NOT NULL ORDER BY id"
    ).fetchall()
    assert hits == [(1,), (3,)]

    lite = tmp_path / "export.sqlite"
    con.execute(f"ATTACH '{lite}' AS lite (TYPE sqlite)")
    con.execute("CREATE TABLE lite.docs AS SELECT id, body FROM docs")
    assert con.execute("SELECT count(*) FROM lite.docs").fetchall() == [(3,)]
    con.execute("DETACH lite")
    assert lite.read_bytes().startswith(b"SQLite format 3\x00")

    con.execute(
        f"ATTACH 'ducklake:{tmp_path / 'catalog.ducklake'}' AS lake (DATA_PATH '{tmp_path / 'lake'}')"
    )
    con.execute("CREATE TABLE lake.docs AS SELECT * FROM docs")
    assert con.execute("SELECT count(*) FROM lake.docs WHERE body ILIKE '%flood%'").fetchall() == [(2,)]
    con.execute("DETACH lake")
    con.execute(f"ATTACH 'ducklake:{tmp_path / 'catalog.ducklake'}' AS lake_again")
    assert con.execute("SELECT count(*) FROM lake_again.docs").fetchall() == [(3,)]

    assert con.execute(
        "SELECT count(*) FROM duckdb_functions() WHERE function_name = 'postgres_scan'"
    ).fetchall()[0][0]


def test_an_extension_without_its_package_names_the_package(offline: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ExtensionError, match=rf"install duckdb-extension-spatial=={duckdb.__version__}"):
        load_extension(offline, "spatial")
    with pytest.raises(ExtensionError, match="not a DuckDB extension name"):
        load_extension(offline, "fts'; INSTALL httpfs; --")


def test_a_package_for_another_duckdb_version_is_refused(
    offline: duckdb.DuckDBPyConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real installed package (on sys.path) that ships only another DuckDB's build."""
    site = tmp_path / "site"
    package = site / "duckdb_extension_elsewhere"
    (package / "extensions" / "v0.9.2").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "extensions" / "v0.9.2" / "elsewhere.duckdb_extension").write_bytes(b"\0" * 64)
    info = site / "duckdb_extension_elsewhere-0.9.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: duckdb-extension-elsewhere\nVersion: 0.9.2\n"
    )
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ExtensionError, match=r"duckdb-extension-elsewhere 0\.9\.2 has no build for DuckDB"):
        load_extension(offline, "elsewhere")


def test_an_unloaded_extension_is_an_error_not_a_download(offline: duckdb.DuckDBPyConnection) -> None:
    forbid_downloads(offline)
    with pytest.raises(duckdb.Error, match=r"(?i)autoload"):
        offline.execute("SELECT * FROM sqlite_scan('nowhere.sqlite', 'docs')")


def test_the_product_connections_never_download(db_path: Path) -> None:
    with EventStore(db_path) as store:
        settings = store.con.execute(
            "SELECT current_setting('autoinstall_known_extensions'), "
            "current_setting('autoload_known_extensions')"
        ).fetchall()
    assert settings == [(False, False)]
    profile = (Path(__file__).resolve().parents[1] / "dbt_project" / "profiles.yml").read_text()
    assert "autoinstall_known_extensions: false" in profile
    assert "autoload_known_extensions: false" in profile


def test_a_database_written_by_a_newer_duckdb_is_one_clear_line(db_path: Path) -> None:
    EventStore(db_path).close()
    data = bytearray(db_path.read_bytes())
    data[:4096] = DUCKDB_2_0_1_HEADER.ljust(4096, b"\0")
    db_path.write_bytes(data)
    result = run_cli("verify", "--db", str(db_path), timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "written by DuckDB 2.0.1" in lines[0]
    assert f"runs on DuckDB {duckdb.__version__}" in lines[0]
    assert "EXPORT DATABASE" in lines[0]


def test_a_damaged_first_block_is_not_mistaken_for_a_lock(db_path: Path) -> None:
    """DuckDB names the damaged "block"; that is no "lock" to wait 30 s for."""
    EventStore(db_path).close()
    data = bytearray(db_path.read_bytes())
    data[100] ^= 0xFF  # inside the main header: its checksum no longer matches
    db_path.write_bytes(data)
    result = run_cli("verify", "--db", str(db_path), timeout=20)  # a lock would be waited for 30 s
    assert result.returncode == 2, result.stderr
    assert "in use by another process" not in result.stderr
    assert "checksum" in result.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="network namespaces are Linux only")
def test_no_network_is_needed_at_all(tmp_path: Path) -> None:
    """The four load with no network interface up (when this machine allows a namespace)."""
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode:
        pytest.skip("cannot create a network namespace here")
    code = (
        "import duckdb\n"
        "from ingestion._extensions import load_extension\n"
        "con = duckdb.connect()\n"
        f"con.execute(\"SET extension_directory = '{tmp_path}'\")\n"
        f"for name in {EXTENSIONS!r}: load_extension(con, name)\n"
        "print(sorted(n for n, in con.execute('SELECT extension_name FROM duckdb_extensions() WHERE loaded').fetchall()))\n"
    )
    result = subprocess.run(
        [unshare, "-rn", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(tmp_path)},
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in EXTENSIONS), result.stdout
