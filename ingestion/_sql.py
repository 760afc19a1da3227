"""``newsroom sql``: read-only queries against the published snapshot."""

from __future__ import annotations

import contextlib
import csv
import json
import sys
from pathlib import Path

import duckdb

from .exceptions import NewsroomError

#: Statement types a reader may run. Everything else (writes, ATTACH, COPY, SET,
#: INSTALL...) is refused before it reaches the database.
_READ_ONLY = {"SELECT", "EXPLAIN"}


def open_published(path: Path) -> duckdb.DuckDBPyConnection:
    if not path.exists():
        raise NewsroomError(f"no published snapshot at {path}; run `newsroom publish` (or the demo) first")
    con = duckdb.connect(str(path), read_only=True)
    # No files outside the snapshot: no COPY TO, no reading or writing other paths.
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise NewsroomError(f"cannot parse the query: {exc}") from exc
    if not statements:
        raise NewsroomError("no statement given")
    for statement in statements:
        kind = statement.type.name
        if kind not in _READ_ONLY:
            raise NewsroomError(
                f"refused: {kind} statements are not allowed; the published data is read-only"
            )


def run_sql(
    path: Path, sql: str, *, fmt: str = "table", output: Path | None = None, max_rows: int = 100
) -> None:
    con = open_published(path)
    try:
        check_read_only(con, sql)
        try:
            relation = con.sql(sql)
        except duckdb.Error as exc:
            raise NewsroomError(str(exc).strip()) from exc
        if relation is None:
            return
        if fmt == "table":
            relation.show(max_rows=max_rows, max_width=200)
            return
        table = relation.fetch_arrow_table()
        if fmt == "parquet":
            import pyarrow.parquet as pq

            if output is None:
                raise NewsroomError("--format parquet needs --output FILE")
            pq.write_table(table, output)
            print(f"wrote {table.num_rows} rows to {output}")
            return
        with contextlib.ExitStack() as stack:
            stream = stack.enter_context(open(output, "w", newline="")) if output else sys.stdout
            _write_rows(stream, fmt, table.column_names, table.to_pylist())
    finally:
        con.close()


def _write_rows(stream, fmt: str, columns: list[str], rows: list[dict]) -> None:
    if fmt == "json":
        json.dump(rows, stream, default=str, ensure_ascii=False, indent=1)
        stream.write("\n")
    elif fmt == "csv":
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    else:
        raise NewsroomError(f"unknown format {fmt!r}")
