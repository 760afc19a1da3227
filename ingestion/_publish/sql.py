"""``newsroom sql``: read-only queries against the published snapshot.

A reader must not be able to damage anything or stall the machine:

- the snapshot is opened read-only, SQL gets no file access, and only SELECT and
  EXPLAIN statements run;
- every query runs under a time limit and a memory limit, and its output stops
  at a row limit and a byte limit;
- a result file is written beside its target and renamed into place only once
  the query has finished; an existing file is replaced only when asked, and
  never a database, a stored body, the snapshot or anything in the data
  directory;
- control characters in text are replaced before they reach a terminal or a
  CSV file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import resource
import signal
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import duckdb

from ingestion._extensions import NO_DOWNLOADS, load_extension
from ingestion.exceptions import QueryError, QueryFailed

if TYPE_CHECKING:
    import pyarrow as pa

#: Statement types a reader may run. Everything else (writes, ATTACH, COPY, SET,
#: INSTALL...) is refused before it reaches the database.
_READ_ONLY = {"SELECT", "EXPLAIN"}

#: C0 controls but tab and newline, DEL and the C1 controls: what can move a
#: terminal's cursor, change its colours or end a field early in other programs; and
#: the explicit bidirectional controls, which make a line read otherwise than it is
#: (right-to-left text needs none of them). The same class works in Python and in
#: DuckDB's (RE2) regular expressions.
_CONTROL_CLASS = r"[\x00-\x08\x0b-\x1f\x7f-\x9f" + "\u202a-\u202e\u2066-\u2069]"
_CONTROL_RE = re.compile(_CONTROL_CLASS)
REPLACEMENT_CHARACTER = "\ufffd"
#: JSON escapes C0 controls itself but leaves C1 controls raw; as escapes the JSON stays lossless.
_JSON_C1_ESCAPES = {code: f"\\u{code:04x}" for code in range(0x7F, 0xA0)}

#: Rows fetched at a time: few enough that a batch of wide rows stays small in memory.
_BATCH_ROWS = 1_000
_HUGE_INTEGERS = {"HUGEINT", "UHUGEINT"}
#: Type names of columns whose values can hold text (nested types included).
_TEXT_TYPE_MARKERS = ("VARCHAR", "JSON", "ENUM", "STRUCT", "MAP", "UNION", "[")
_BLOB_NAME = re.compile(r"[0-9a-f]{64}\.gz")
#: Opening a file another engine wrote (a SQLite file given as a snapshot) must not fetch
#: the extension that reads it: extensions come from packages only.
#: Table functions that change the connection's state or write files: refused by name
#: (with file access off, one that enables logging aborts the process when it closes).
_STATEFUL_NAMES = frozenset(
    {
        "enable_logging",
        "disable_logging",
        "truncate_duckdb_logs",
        "enable_profiling",
        "disable_profiling",
        "checkpoint",
        "force_checkpoint",
    }
)
#: The same in a statement's text, for one DuckDB cannot hand back parsed.
_STATEFUL_FUNCTIONS = re.compile(rf'\b"?({"|".join(sorted(_STATEFUL_NAMES))})"?\s*\(', re.IGNORECASE)
#: EXPLAIN, ANALYZE and options in parentheses (``EXPLAIN (FORMAT json)``) before what is explained.
_EXPLAIN = re.compile(r"\s*EXPLAIN(\s+ANALY[SZ]E)?(\s*\([^()]*\))?", re.IGNORECASE)
_PIVOT = re.compile(r"\s*(?:UN)?PIVOT\b", re.IGNORECASE)


#: What a reading command's process may use beyond twice its query's memory limit (a
#: result is copied once as it leaves DuckDB): Python, DuckDB, Arrow and their libraries.
PROCESS_HEADROOM_BYTES = 2**30
#: How long past its time limit a reading command's process is given to stop by itself.
GRACE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """What one query may use. ``max_rows`` and ``max_bytes`` bound csv, json and parquet output."""

    timeout: float = 60.0
    memory_bytes: int = 2_000_000_000
    max_rows: int = 1_000_000
    max_bytes: int = 1_000_000_000


def run_bounded(work: Callable[[], int], limits: QueryLimits, command: str) -> int:
    """Run ``work`` (a reading command: it reports its own errors and returns its exit
    status) in a child process that cannot outgrow twice ``limits.memory_bytes`` (plus
    ``PROCESS_HEADROOM_BYTES``) nor outlive ``limits.timeout`` (plus ``GRACE_SECONDS``).

    DuckDB keeps its own limits between chunks of rows and over the memory it manages;
    one value computed at once (a list of a billion numbers) escapes both. The child's
    address space is capped, so such an allocation fails as DuckDB's out-of-memory
    error, and a child still running after the grace is killed. Where processes cannot
    be forked, ``work`` runs in this one with DuckDB's limits only.
    """
    if not hasattr(os, "fork"):
        return work()
    cap = 2 * limits.memory_bytes + PROCESS_HEADROOM_BYTES
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:  # pragma: no cover (runs in the child, which ends with os._exit)
        status = 70
        try:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
            # At the cap any thread's allocation may fail (the time limit's among them):
            # the parent reports how the child ended, in one line, not each thread's death.
            sys.unraisablehook = _quiet_about_memory(sys.unraisablehook)
            threading.excepthook = _quiet_about_memory(threading.excepthook)
            status = work()
        except MemoryError:
            print(f"{command}: error: stopped: {_MEMORY_STOP}", file=sys.stderr)
            status = 2
        except BaseException:  # a bug: shown as it would be without the child, then ended
            traceback.print_exc()
            status = 1
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(status)
    deadline = time.monotonic() + limits.timeout + GRACE_SECONDS
    try:
        while True:
            finished, status = os.waitpid(child, os.WNOHANG)
            if finished:
                break
            if time.monotonic() >= deadline:
                # Near its cap the child may be unable to stop itself (its time limit's
                # thread could not run): then memory, not time, is what it ran out of.
                at_cap = _address_space(child) >= 0.9 * cap
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
                stop = f"stopped: {_MEMORY_STOP}" if at_cap else _too_long(limits)
                print(f"{command}: error: {stop}", file=sys.stderr)
                return 2
            time.sleep(0.02)
    except KeyboardInterrupt:  # the child has its own, and says so
        with contextlib.suppress(ChildProcessError):
            os.waitpid(child, 0)
        return 130
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    print(
        f"{command}: error: stopped: the query's process ended by signal {os.WTERMSIG(status)}; "
        f"{_MEMORY_STOP}",
        file=sys.stderr,
    )
    return 2


_MEMORY_STOP = "it may need more memory than its limit; narrow the query or raise --memory-limit"


def _quiet_about_memory(hook: Callable[[Any], None]) -> Callable[[Any], None]:
    def quiet(failure: Any) -> None:
        if not isinstance(failure.exc_value, MemoryError):
            hook(failure)

    return quiet


def _address_space(pid: int) -> int:
    """The bytes of address space process ``pid`` holds (0 where /proc cannot tell)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def _too_long(limits: QueryLimits) -> str:
    return (
        f"stopped: the query ran longer than {limits.timeout:g} s; narrow it (WHERE, LIMIT) "
        "or allow more time with --timeout SECONDS"
    )


def clean_text(text: str) -> str:
    """``text`` with control characters (but tab and newline) replaced by U+FFFD."""
    return _CONTROL_RE.sub(REPLACEMENT_CHARACTER, text)


def error_line(exc: BaseException) -> str:
    """A DuckDB message as one safe line: its first paragraph (no query excerpt, no hints)."""
    paragraph = str(exc).strip().split("\n\n", 1)[0]
    return clean_text(" ".join(paragraph.split()))


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str | None = None) -> bool:
    if table is None:
        sql, params = "SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?", [schema]
    else:
        sql = "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?"
        params = [schema, table]
    return bool(con.execute(sql, params).fetchall()[0][0])


def is_snapshot(path: Path) -> bool:
    """Whether ``path`` is a published snapshot (or a copy of one): marts, but no event log."""
    try:
        with duckdb.connect(str(path), read_only=True, config=NO_DOWNLOADS) as con:
            return _has_table(con, "marts") and not _has_table(con, "raw", "events")
    except duckdb.Error:
        return False


def snapshot_for(db_path: Path) -> Path:
    """The snapshot ``--db PATH`` means: the one published from the working database at PATH,
    or PATH itself when it is a snapshot file."""
    from ingestion._publish.snapshot import published_path

    published = published_path(db_path)
    if not published.exists() and db_path.is_file() and is_snapshot(db_path):
        return db_path
    return published


def protected_places(db_path: Path, snapshot: Path) -> list[tuple[str, Path]]:
    """Where query output may never go: the data directory (the folder of the working
    database, with published/, blobs/...) and the snapshot being read, with the data
    directory it was published into."""
    places = [("the data directory", db_path.parent), ("the snapshot being queried", snapshot)]
    published_into = resolved(snapshot).parent
    if published_into.name == "published":
        places.append(("the data directory", published_into.parent))
    return places


def _stored_data_kind(path: Path) -> str | None:
    """What ``path`` holds if it is something a query result must never replace."""
    if _BLOB_NAME.fullmatch(path.name):
        return "a stored raw body"
    for suffix in (".wal", "-wal", "-journal", "-shm"):  # DuckDB's and SQLite's companions
        if path.name.endswith(suffix) and path.name != suffix:
            database = path.with_name(path.name[: -len(suffix)])
            if database.is_file() and _stored_data_kind(database):
                return f"the journal of {database}"
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return "a file that cannot be read to check what it holds"
    if head[8:12] == b"DUCK":
        return "a DuckDB database"
    if head.startswith(b"SQLite format 3\x00"):
        return "a SQLite database"
    return None


def resolved(path: Path) -> Path:
    """``path`` with ``~`` expanded and links followed, or a clear error (an unknown
    ``~user``, a loop of links)."""
    try:
        return Path(path).expanduser().resolve()
    except (RuntimeError, OSError) as exc:
        raise QueryError(f"cannot use {path}: {exc}") from exc


def check_output_target(output: Path, protected: Sequence[tuple[str, Path]], *, force: bool) -> Path:
    """The file ``output`` really leads to (links followed), or an error if a query must not write it."""
    target = resolved(output)
    for description, place in protected:
        place = resolved(place)
        if target == place or target.is_relative_to(place):
            where = description if target == place else f"inside {description}"
            raise QueryError(
                f"refused: {output} is {where} ({place}); query results are never written there, "
                "not even with --force"
            )
    if target.exists():
        if not target.is_file():
            raise QueryError(f"refused: {output} exists and is not a regular file")
        kind = _stored_data_kind(target)
        if kind:
            raise QueryError(
                f"refused: {output} is {kind}; a query never replaces one, not even with --force"
            )
        if not force:
            raise QueryError(f"refused: {output} exists; pass --force to replace it")
    if not target.parent.is_dir():
        raise QueryError(f"cannot write {output}: the folder {target.parent} does not exist")
    return target


def open_published(path: Path, limits: QueryLimits | None = None) -> duckdb.DuckDBPyConnection:
    limits = limits or QueryLimits()
    if not path.is_file():
        raise QueryError(f"no published snapshot at {path}; run `newsroom publish` (or the demo) first")
    try:
        con = duckdb.connect(str(path), read_only=True, config=NO_DOWNLOADS)
    except duckdb.Error as exc:
        raise QueryError(f"cannot open the snapshot {path}: {error_line(exc)}") from exc
    try:
        load_extension(con, "fts")  # for search_articles() and the search index's macros
        if _has_table(con, "raw", "events"):
            # A reader holding the working database open would block the pipeline's writer.
            raise QueryError(
                f"{path} is the working database, not a snapshot; query the published one "
                "(`newsroom publish`)"
            )
        if not _has_table(con, "marts"):
            raise QueryError(f"{path} is not a published snapshot (it has no marts)")
        try:
            con.execute(f"SET memory_limit = '{int(limits.memory_bytes)}B'")
        except duckdb.Error as exc:
            raise QueryError(
                f"--memory-limit {_size_text(limits.memory_bytes)} is too small: {error_line(exc)}"
            ) from exc
        # Published times are UTC; shown in UTC, and "today" is the UTC day, wherever the reader is.
        con.execute("SET TimeZone = 'UTC'")
        # No spilling: a read-only query writes no files, not even temporary ones.
        con.execute("SET temp_directory = ''")
        # No files outside the snapshot: no COPY TO, no reading or writing other paths.
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException as exc:
        con.close()
        if isinstance(exc, duckdb.Error):
            raise QueryError(f"cannot read the snapshot {path}: {error_line(exc)}") from exc
        raise
    return con


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryFailed(f"cannot parse the query: {error_line(exc)}") from exc
    if not statements:
        raise QueryError("no statement given")
    for statement in statements:
        kind = statement.type.name
        if kind not in _READ_ONLY and _PIVOT.match(sql):
            raise QueryError(
                "refused: a PIVOT without its values makes a type first; list them: "
                "PIVOT articles ON status IN ('live', 'withdrawn')"
            )
        if kind not in _READ_ONLY:
            raise QueryError(f"refused: {kind} statements are not allowed; the published data is read-only")
        if kind == "EXPLAIN":  # EXPLAIN ANALYZE runs what it explains: that must be read-only too
            explained = _EXPLAIN.sub("", statement.query, count=1)
            check_read_only(con, explained)
    if len(statements) > 1:
        raise QueryError(f"refused: {len(statements)} statements; run one at a time")
    calls = _function_calls(con, sql)
    if calls is None:
        if found := _STATEFUL_FUNCTIONS.search(sql):
            raise QueryError(f"refused: {found.group(1)}() changes the connection or writes files")
        return
    for name, arguments in calls:
        if name in _STATEFUL_NAMES:
            raise QueryError(f"refused: {name}() changes the connection or writes files")
        if name == "json_execute_serialized_sql":
            raise QueryError(f"refused: {name}() runs a statement this check cannot read; write it out")
        if name == "query":  # a statement in a string: what it runs is checked too
            if len(arguments) != 1 or arguments[0].get("class") != "CONSTANT":
                raise QueryError("refused: query() of a text made as the query runs; write the SELECT out")
            value = arguments[0].get("value") or {}
            if not value.get("is_null") and isinstance(value.get("value"), str):
                check_read_only(con, value["value"])


def _function_calls(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[str, list[dict]]] | None:
    """The functions a statement calls (lower-cased name, argument nodes), read from DuckDB's
    own parse of it, so that neither comments nor spelling hide one; None for a statement
    it does not hand back parsed."""
    try:
        [(serialized,)] = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchall()
        tree = json.loads(serialized)
    except (duckdb.Error, ValueError):
        return None
    if not isinstance(tree, dict) or tree.get("error"):
        return None
    calls: list[tuple[str, list[dict]]] = []
    pending: list[object] = [tree]
    while pending:  # a loop, not recursion: a query may nest deeper than Python's stack
        node = pending.pop()
        if isinstance(node, dict):
            name = node.get("function_name")
            if isinstance(name, str):
                children = node.get("children")
                calls.append((name.lower(), children if isinstance(children, list) else []))
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return calls


@contextlib.contextmanager
def _time_limit(con: duckdb.DuckDBPyConnection, seconds: float) -> Iterator[threading.Event]:
    """Interrupt ``con``'s query after ``seconds``, and every 50 ms after that until the
    block ends (an interrupt only stops the query running at that moment, and a block may
    start another); the event tells that the time ran out."""
    expired = threading.Event()
    finished = threading.Event()
    guard = threading.Lock()

    def watch() -> None:
        if finished.wait(seconds):
            return
        expired.set()
        while True:
            with guard:
                if finished.is_set():  # never touch a connection that may be closed already
                    return
                con.interrupt()
            if finished.wait(0.05):
                return

    watcher = threading.Thread(target=watch, name="query time limit", daemon=True)
    watcher.start()
    try:
        yield expired
    finally:
        with guard:
            finished.set()


def _query_failed(exc: BaseException, expired: threading.Event, limits: QueryLimits) -> QueryError:
    message = error_line(exc)
    if expired.is_set() or isinstance(exc, duckdb.InterruptException) or message.startswith("INTERRUPT"):
        return QueryError(_too_long(limits))
    if isinstance(exc, duckdb.OutOfMemoryException) or message.startswith("Out of Memory"):
        return QueryError(
            f"stopped: the query needs more than its memory limit ({_size_text(limits.memory_bytes)}); "
            "narrow it or raise --memory-limit"
        )
    if isinstance(exc, duckdb.PermissionException) or message.startswith("Permission Error"):
        return QueryError(f"refused: {message}")
    if "INT128" in message and "INT64" in message:
        message += " (a result is too large for a 64-bit integer: cast it in the query, e.g. ::DOUBLE)"
    return QueryFailed(f"the query failed: {message}")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _portable(relation: duckdb.DuckDBPyRelation, fmt: str) -> duckdb.DuckDBPyRelation:
    """``relation`` as the output format needs it: safe text and column names for the
    table view and CSV, 64-bit integers instead of HUGEINT (sums) for files."""
    as_text = fmt in ("table", "csv")
    expressions = []
    changed = False
    for position, (name, type_) in enumerate(zip(relation.columns, relation.types, strict=True), 1):
        type_name = str(type_)
        expression = f"#{position}"
        if fmt != "table" and type_name in _HUGE_INTEGERS:
            # JSON gets numbers and Parquet int64; a value too large fails with a clear message.
            expression = f"CAST(#{position} AS BIGINT)"
        elif fmt in ("csv", "json") and type_name == "TIME WITH TIME ZONE":
            expression = f"CAST(#{position} AS VARCHAR)"  # as Python's time it would lose its offset
        elif as_text and any(marker in type_name for marker in _TEXT_TYPE_MARKERS):
            expression = (
                f"regexp_replace(CAST(#{position} AS VARCHAR), '{_CONTROL_CLASS}', "
                f"'{REPLACEMENT_CHARACTER}', 'g')"
            )
        alias = clean_text(name) if as_text else name
        changed = changed or expression != f"#{position}" or alias != name
        expressions.append(f"{expression} AS {_quoted(alias)}")
    return relation.project(", ".join(expressions)) if changed else relation


class _CsvWriter:
    def __init__(self, sink: BinaryIO, schema: pa.Schema) -> None:
        self.sink = sink
        self._encode([schema.names])

    def _encode(self, rows: Iterator[Sequence[object]] | list[Sequence[object]]) -> int:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        data = text.getvalue().encode()
        self.sink.write(data)
        return len(data)

    def write(self, batch: pa.RecordBatch) -> int:
        return self._encode(zip(*(column.to_pylist() for column in batch.columns), strict=True))

    def finish(self) -> None:
        pass

    def discard(self) -> None:
        pass


class _JsonWriter:
    """One JSON array, one object per line, written as the rows arrive. NaN and the
    infinities, which JSON has no number for, are written as the strings "NaN",
    "Infinity" and "-Infinity"."""

    def __init__(self, sink: BinaryIO, schema: pa.Schema) -> None:
        import pyarrow as pa

        self.sink = sink
        self.rows = 0
        self.floats = [field.name for field in schema if pa.types.is_floating(field.type)]

    def write(self, batch: pa.RecordBatch) -> int:
        rows = batch.to_pylist()
        for row in rows if self.floats else ():
            for name in self.floats:
                value = row[name]
                if value is not None and not math.isfinite(value):
                    row[name] = "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
        lines = [
            json.dumps(row, default=str, ensure_ascii=False, allow_nan=False).translate(_JSON_C1_ESCAPES)
            for row in rows
        ]
        data = (("[\n" if not self.rows else ",\n") + ",\n".join(lines)).encode() if lines else b""
        self.rows += len(lines)
        self.sink.write(data)
        return len(data)

    def finish(self) -> None:
        self.sink.write(b"\n]\n" if self.rows else b"[]\n")

    def discard(self) -> None:
        pass


class _ParquetWriter:
    def __init__(self, sink: BinaryIO, schema: pa.Schema) -> None:
        import pyarrow.parquet as pq

        self.writer = pq.ParquetWriter(sink, schema)

    def write(self, batch: pa.RecordBatch) -> int:
        self.writer.write_batch(batch)
        # Compressed sizes are known only per row group: count the data itself.
        return batch.nbytes

    def finish(self) -> None:
        self.writer.close()

    def discard(self) -> None:
        # Closed while its file is still open: left to the garbage collector it would
        # write to a closed file. The partial file is removed anyway.
        self.writer.close()


_WRITERS: dict[str, type[_CsvWriter | _JsonWriter | _ParquetWriter]] = {
    "csv": _CsvWriter,
    "json": _JsonWriter,
    "parquet": _ParquetWriter,
}


@contextlib.contextmanager
def _destination(
    target: Path | None, output: Path | None, protected: Sequence[tuple[str, Path]], *, force: bool
) -> Iterator[BinaryIO]:
    """stdout, or a new file beside ``target`` renamed onto it when the block succeeds."""
    if target is None or output is None:  # both or neither
        sys.stdout.flush()
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        try:
            sink = open(partial, "xb")  # noqa: SIM115 (closed below, before the rename)
        except OSError as exc:
            raise QueryError(f"cannot write {output}: {exc.strerror or exc}") from exc
        with sink:
            yield sink
        # Checked again: the target may have appeared while the query ran.
        check_output_target(output, protected, force=force)
        if force:
            os.replace(partial, target)
        else:
            try:
                os.link(partial, target)  # fails, rather than replaces, if the target exists by now
            except FileExistsError as exc:
                raise QueryError(f"refused: {output} exists; pass --force to replace it") from exc
            except OSError:  # a file system without hard links: the check above has to do
                os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _next_batch(
    reader: pa.RecordBatchReader, expired: threading.Event, limits: QueryLimits
) -> pa.RecordBatch | None:
    """The next batch, None at the end. DuckDB's errors while it produces the batch come
    through Arrow's reader as OSError."""
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None
    except (duckdb.Error, OSError) as exc:
        raise _query_failed(exc, expired, limits) from exc


def run_sql(
    path: Path,
    sql: str,
    *,
    fmt: str = "table",
    output: Path | None = None,
    max_rows: int | None = None,
    limits: QueryLimits | None = None,
    force: bool = False,
    protected: Sequence[tuple[str, Path]] = (),
) -> None:
    """Run ``sql`` on the snapshot at ``path``; print it (table, csv, json) or write ``output``.

    ``max_rows`` is how many rows the table view shows (default 100); the other
    formats stop with an error beyond ``limits.max_rows`` rows or ``limits.max_bytes``.
    """

    def relation(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation | None:
        check_read_only(con, sql)
        return con.sql(sql)

    run_query(
        path,
        relation,
        fmt=fmt,
        output=output,
        max_rows=max_rows,
        limits=limits,
        force=force,
        protected=protected,
    )


def run_query(
    path: Path,
    relation_of: Callable[[duckdb.DuckDBPyConnection], duckdb.DuckDBPyRelation | None],
    *,
    fmt: str = "table",
    output: Path | None = None,
    max_rows: int | None = None,
    limits: QueryLimits | None = None,
    force: bool = False,
    protected: Sequence[tuple[str, Path]] = (),
) -> None:
    """Open the snapshot at ``path``, get a result from ``relation_of`` and print or write it
    as :func:`run_sql` does, under the same limits."""
    limits = limits or QueryLimits()
    if fmt not in ("table", *_WRITERS):
        raise QueryError(f"unknown format {fmt!r}")
    if fmt == "parquet" and output is None:
        raise QueryError("--format parquet needs --output FILE")
    if fmt == "table" and output is not None:
        raise QueryError("--output needs --format csv, json or parquet")
    target = check_output_target(output, protected, force=force) if output is not None else None
    con = open_published(path, limits)
    try:
        with _time_limit(con, limits.timeout) as expired:
            try:
                relation = relation_of(con)
                if relation is None:
                    return
                relation = _portable(relation, fmt)
                if fmt == "table":
                    shown = max_rows or 100
                    # Only what is shown is fetched, and one row more to tell there are more.
                    fetched = relation.limit(shown + 1).to_arrow_table()
                    shown_rows = fetched.slice(0, shown).rename_columns(_apart(fetched.column_names))
                    con.from_arrow(shown_rows).show(max_rows=shown, max_width=200)
                    if fetched.num_rows > shown:
                        print(
                            f"more than {shown:,} rows: --max-rows N shows more, --format csv gives them all",
                            file=sys.stderr,
                        )
                    return
                reader = relation.to_arrow_reader(_BATCH_ROWS)
                rows = _export(reader, fmt, target, output, protected, limits, expired, force=force)
            except duckdb.Error as exc:
                raise _query_failed(exc, expired, limits) from exc
    finally:
        con.close()
    if output is not None:
        print(f"wrote {rows:,} rows to {output}")


def _export(
    reader: pa.RecordBatchReader,
    fmt: str,
    target: Path | None,
    output: Path | None,
    protected: Sequence[tuple[str, Path]],
    limits: QueryLimits,
    expired: threading.Event,
    *,
    force: bool,
) -> int:
    """Stream the result into its destination within the limits; the number of rows written."""
    incomplete = "nothing was written" if output is not None else "the output above is incomplete"
    names = reader.schema.names
    if fmt != "csv" and len(set(names)) < len(names):  # a JSON object or Parquet file keeps one
        twice = next(name for name in names if names.count(name) > 1)
        raise QueryError(f"refused: the column name {twice!r} appears twice; name them apart with AS")
    rows = written = 0
    with _destination(target, output, protected, force=force) as sink:
        try:
            writer = _WRITERS[fmt](sink, reader.schema)
        except _unwritable() as exc:
            raise _cannot_write(fmt, exc) from exc
        try:
            while (batch := _next_batch(reader, expired, limits)) is not None:
                if expired.is_set():
                    raise _query_failed(TimeoutError(), expired, limits)
                rows += batch.num_rows
                if rows > limits.max_rows:
                    raise QueryError(
                        f"stopped: the result has more than {limits.max_rows:,} rows (--max-rows); "
                        f"{incomplete}. Narrow the query or raise --max-rows"
                    )
                # Checked before the batch becomes Python objects, which take several times its size.
                if written + batch.nbytes > limits.max_bytes:
                    raise _too_large(limits, incomplete)
                try:
                    written += writer.write(batch)
                except _unwritable() as exc:
                    raise _cannot_write(fmt, exc) from exc
                if written > limits.max_bytes:
                    raise _too_large(limits, incomplete)
        except BaseException:
            writer.discard()
            raise
        writer.finish()
    return rows


def _apart(names: list[str]) -> list[str]:
    """Column names told apart as DuckDB does it ("a", "a_1"): a table of two columns of
    one name cannot be read back for showing."""
    seen: Counter[str] = Counter()
    result = []
    for name in names:
        result.append(f"{name}_{seen[name]}" if seen[name] else name)
        seen[name] += 1
    return result


def _too_large(limits: QueryLimits, incomplete: str) -> QueryError:
    return QueryError(
        f"stopped: the result is larger than {_size_text(limits.max_bytes)} (--max-bytes); "
        f"{incomplete}. Narrow the query or raise --max-bytes"
    )


def _unwritable() -> tuple[type[Exception], ...]:
    """What writing a value the format cannot hold raises: Arrow's errors (an interval in
    Parquet), Python's for a date it cannot hold (year 99999, infinity) in csv and json."""
    import pyarrow as pa

    return (pa.ArrowException, ValueError, OverflowError)


def _cannot_write(fmt: str, exc: Exception) -> QueryFailed:
    return QueryFailed(
        f"a value of the result cannot be written as {fmt}: {error_line(exc)}; "
        "cast that column in the query (e.g. ::VARCHAR)"
    )


def _size_text(size: int) -> str:
    return f"{size / 1e9:g} GB" if size >= 1e9 else f"{size / 1e6:g} MB"
