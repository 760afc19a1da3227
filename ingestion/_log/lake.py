"""The working database in DuckLake: a catalog in PostgreSQL, data files in a shared directory.

The embedded DuckDB file is the default. A path ending in ``.lake`` names instead a small
YAML file that says where the lake is::

    catalog: "dbname=newsroom host=db.internal user=newsroom"   # libpq connection string
    data_path: lake-files/            # relative to this file's folder, or absolute

Everything the pipeline keeps beside the database (blobs, the anchor, feed states,
threading state, the published snapshot) stays beside this file, so the folder is what
the machines share. Passwords come from libpq's own places (``PGPASSWORD``,
``~/.pgpass``), never from this file.

DuckLake has no primary keys, unique constraints or indexes: ``verify`` checks what the
file's constraints would have (unique sequence, contiguous stream versions). It also
lets two transactions append to one table at once, which would give two events the
same sequence number, so every writer first takes a PostgreSQL advisory lock, held for
as long as it is open, the way a writer holds the DuckDB file's lock: one writer at a
time, readers on any machine at any time (each sees a complete snapshot).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from ingestion._extensions import NO_DOWNLOADS, load_extension
from ingestion.exceptions import ConfigError, StoreError, StoreLockedError

#: How a working database in DuckLake is named: ``--db path/to/newsroom.lake``.
LAKE_SUFFIX = ".lake"
#: The name the lake is attached under; ``USE`` makes its schemas (``raw``,
#: ``enrich``, ``marts``...) read as they do in the DuckDB file.
LAKE_ALIAS = "newsroom"
#: The advisory lock every writer holds (one lake per catalog database).
_WRITER_LOCK_KEY = 7_310_614_522_015_032_421
_MAX_SETTING_CHARS = 1_000


@dataclass(frozen=True, slots=True)
class Lake:
    """Where one lake is: its PostgreSQL catalog and its data files."""

    catalog: str
    data_path: Path

    def attach_sql(self, *, read_only: bool, alias: str = LAKE_ALIAS) -> str:
        target = _literal(f"ducklake:postgres:{self.catalog}")
        options = f"DATA_PATH {_literal(str(self.data_path) + '/')}"
        if read_only:
            options += ", READ_ONLY"
        return f"ATTACH {target} AS {alias} ({options})"


def is_lake(path: str | Path) -> bool:
    return Path(path).suffix == LAKE_SUFFIX


def read_lake(path: str | Path) -> Lake:
    """The lake a ``.lake`` file describes; a :class:`ConfigError` naming the file and the key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the lake description {path}: {exc}") from exc
    if len(text) > 10 * _MAX_SETTING_CHARS:
        raise ConfigError(f"{path}: a lake description is a few lines, this one is {len(text):,} characters")
    try:
        settings = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {_one_line(exc)}") from exc
    except RecursionError as exc:
        raise ConfigError(f"{path} nests too deeply") from exc
    if not isinstance(settings, dict) or set(settings) != {"catalog", "data_path"}:
        raise ConfigError(f"{path} must hold exactly two keys, catalog and data_path")
    for key, value in settings.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{path}: {key} must be a non-empty string")
        if len(value) > _MAX_SETTING_CHARS or re.search(r"[\x00-\x1f]", value):
            raise ConfigError(f"{path}: {key} must be one line of at most {_MAX_SETTING_CHARS} characters")
    data_path = Path(settings["data_path"].strip())
    try:
        data_path = data_path.expanduser()
        data_path = data_path if data_path.is_absolute() else (path.parent / data_path).resolve()
    except (RuntimeError, OSError) as exc:  # a loop of links
        raise ConfigError(f"{path}: data_path is not a usable folder: {exc}") from exc
    return Lake(catalog=settings["catalog"].strip(), data_path=data_path)


def load_lake_extensions(con: duckdb.DuckDBPyConnection) -> None:
    for extension in ("postgres_scanner", "ducklake"):
        load_extension(con, extension)


def connect_lake(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached and in use."""
    lake = read_lake(path)
    if not read_only:
        lake.data_path.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config=NO_DOWNLOADS)
    try:
        load_lake_extensions(con)
        con.execute(lake.attach_sql(read_only=read_only))
        con.execute(f"USE {LAKE_ALIAS}")
    except duckdb.Error as exc:
        con.close()
        message = _one_line(exc)
        if read_only and "creating a new DuckLake is explicitly disabled" in message:
            raise StoreError(f"the lake {path} holds no event log yet; run `newsroom ingest` first") from exc
        raise StoreError(f"cannot open the lake {path}: {message}") from exc
    return con


def attach_read_only(con: duckdb.DuckDBPyConnection, path: Path, alias: str) -> None:
    """The working database (a DuckDB file or a lake) attached to ``con`` as ``alias``, read-only."""
    if not is_lake(path):
        con.execute(f"ATTACH {_literal(str(path.resolve()))} AS {alias} (READ_ONLY)")
        return
    load_lake_extensions(con)
    con.execute(read_lake(path).attach_sql(read_only=True, alias=alias))


class WriterLock:
    """The lake's one-writer lock: a PostgreSQL session advisory lock on the catalog
    database, released when :meth:`release` closes the session (or the process dies)."""

    def __init__(self, path: Path, *, timeout: float) -> None:
        import psycopg

        lake = read_lake(path)
        deadline = time.monotonic() + timeout
        delay = 0.1
        self._path = path
        try:
            self._session = psycopg.connect(lake.catalog, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreError(f"cannot reach the catalog of {path}: {_one_line(exc)}") from exc
        try:
            if self._session.info.server_version >= 140000:
                # A server that ends idle sessions would take the lock from a writer between commits.
                self._session.execute("SET idle_session_timeout = 0")
            while not self._try_lock():
                if time.monotonic() >= deadline:
                    raise StoreLockedError(
                        f"{path} is in use by another writer (waited {timeout:.0f} s). "
                        "Only one writer at a time; retry when it has finished."
                    )
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        except psycopg.Error as exc:
            self._session.close()
            raise StoreError(f"cannot lock the catalog of {path}: {_one_line(exc)}") from exc
        except BaseException:
            self._session.close()
            raise

    def _try_lock(self) -> bool:
        return self._session.execute("SELECT pg_try_advisory_lock(%s)", [_WRITER_LOCK_KEY]).fetchone()[0]

    def confirm(self) -> None:
        """Raise unless the lock is still ours: its session alive (a session lock is let go
        only when the session ends). Checked before each commit, so a writer whose session
        was ended (a restarted server, an administrator) stores nothing a second writer could
        be storing too."""
        import psycopg

        try:
            self._session.execute("SELECT 1")
        except psycopg.Error as exc:
            raise StoreError(
                f"lost the writer lock on {self._path} (its PostgreSQL session ended: "
                f"{_one_line(exc)}); nothing of this transaction was stored, run again"
            ) from exc

    def release(self) -> None:
        self._session.close()


def create_schema(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Run ``CREATE`` statements written for the DuckDB file; on a lake without the
    primary keys DuckLake cannot keep (``verify`` checks them), and without column
    compression (its Parquet files are compressed anyway)."""
    kind = con.execute("SELECT type FROM duckdb_databases() WHERE database_name = current_database()")
    if kind.fetchall() == [("ducklake",)]:
        sql = re.sub(r" USING COMPRESSION \w+", "", sql.replace(" PRIMARY KEY", ""))
    con.execute(sql)


def _one_line(exc: BaseException) -> str:
    """An error's message with its line breaks and runs of spaces made single spaces."""
    return " ".join(str(exc).split())


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
