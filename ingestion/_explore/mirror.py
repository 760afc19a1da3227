"""The published DuckDB snapshot, mirrored into SQLite for the explorer.

Datasette reads SQLite, so every mart becomes a SQLite table with the keys dbt
declares (primary keys, and foreign keys wherever every value has its row, so
Datasette links rows), indexes on the columns people filter by, timestamps as
ISO-8601 UTC text ending in ``Z``, lists and maps as JSON text, and a full-text
index over the title, summary and body of every article version.

Both layouts of the snapshot read the same: marts are read as ``marts.<name>``
(tables, or views over tables in the default schema), naive timestamps are UTC
like TIMESTAMPTZ ones, and a ``<name>_json`` companion of a nested column is
left out because the column itself becomes that JSON.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ingestion._explore.docs import ModelDocs, model_docs
from ingestion._extensions import NO_DOWNLOADS
from ingestion._publish.update import MartChange

#: The table Datasette's search box on ``article_versions`` uses.
SEARCH_TABLE = "article_versions_fts"
SEARCHED_TABLE = "article_versions"
SEARCHED_COLUMNS = ("title", "summary", "body")
#: The snapshot's own record (when it was built, up to which event), mirrored beside the marts.
SNAPSHOTS_TABLE = "snapshots"

#: Millisecond precision for every timestamp, so that equal instants are equal text and
#: text order is time order across tables (the form JavaScript's toISOString writes).
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%gZ"
_ROWS_PER_BATCH = 20_000
_INTEGER_TYPES = ("BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER")

#: References whose column name does not say which mart they point at. The others are
#: found by name: a column named like another mart's single-column key points at it.
_NAMED_REFERENCES = {
    ("story_threads", "first_source_id"): "sources",
    ("story_threads", "merged_into"): "story_threads",
    ("thread_articles", "duplicate_of"): "articles",
    ("entity_pairs", "entity_a"): "entities",
    ("entity_pairs", "entity_b"): "entities",
}

#: Columns the explorer filters, sorts or facets by (references are indexed anyway).
FILTERED_COLUMNS = {
    "articles": ("status", "language", "published_at", "first_seen_at", "withdrawn_at"),
    "article_versions": ("event_type", "valid_from", "recorded_at"),
    "articles_daily": ("day",),
    "entities": ("entity_type", "canonical_name", "mention_count", "last_seen_at"),
    "entity_mentions": ("valid_from",),
    "entity_daily": ("day",),
    "entity_extraction_status": ("status",),
    "story_threads": ("status", "first_published_at", "last_seen_at", "article_count"),
    "threads_daily": ("day",),
}


@dataclass(slots=True)
class _Column:
    name: str
    sqlite_type: str
    select: str


@dataclass(slots=True)
class _Table:
    name: str
    relation: str
    columns: list[_Column]
    primary_key: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()
    #: column -> (table, column)
    references: dict[str, tuple[str, str]] = field(default_factory=dict)


def write_mirror(snapshot: Path, target: Path) -> None:
    """Write a new SQLite file at ``target`` from the DuckDB snapshot at ``snapshot``.

    The file is built beside ``target`` and renamed onto it when complete.
    """
    target = Path(target)
    building = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    with duckdb.connect(str(snapshot), read_only=True, config=NO_DOWNLOADS) as source:
        # Timestamps WITH TIME ZONE are written as UTC whatever the machine's zone.
        source.execute("SET TimeZone = 'UTC'")
        source.execute("SET enable_progress_bar = false")
        tables = _plan_tables(source)
        out = sqlite3.connect(building, isolation_level=None)
        try:
            # A new file nobody reads yet: no journal, no syncs until the end.
            for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -131072"):
                out.execute(f"PRAGMA {pragma}")
            out.execute("BEGIN")
            for table in tables:
                out.execute(_create_table_sql(table))
                _copy_rows(source, out, table, table.relation)
            for statement in _index_sql(tables):
                out.execute(statement)
            if any(t.name == SEARCHED_TABLE for t in tables):
                _build_search_index(out)
            out.execute("COMMIT")
            # Statistics let SQLite pick the indexes for Datasette's facet and filter queries.
            out.execute("PRAGMA analysis_limit = 1000")  # a sample is enough, and quick on big tables
            out.execute("ANALYZE")
            out.close()
            building.chmod(0o444)  # nobody writes a published file, not even by mistake
            os.replace(building, target)
        except BaseException:
            out.close()
            building.unlink(missing_ok=True)
            raise


def update_mirror(
    source: duckdb.DuckDBPyConnection, building: Path, target: Path, changes: dict[str, MartChange]
) -> bool:
    """Write the mirror of the snapshot ``source`` at ``target``: ``building``, a copy of
    the previous mirror the caller made for this, with ``changes`` applied (the rows each
    mart lost and gained), renamed onto ``target``.

    Returns False, removing ``building``, when that cannot give what ``write_mirror``
    would: tables, keys or references that differ from the previous mirror's.
    """
    source.execute("SET TimeZone = 'UTC'")
    target = Path(target)
    out = sqlite3.connect(building, isolation_level=None)
    try:
        try:
            tables = _plan_tables(source, _MirrorBefore(_keys(out), _references(out), changes))
            usable = _declares(out, tables)
        except sqlite3.DatabaseError:  # not a SQLite file, or a damaged one
            usable = False
        if not usable:
            out.close()
            building.unlink()
            return False
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -131072"):
            out.execute(f"PRAGMA {pragma}")
        out.execute("BEGIN")
        for table in tables:
            if table.name == SNAPSHOTS_TABLE:
                out.execute(f"DELETE FROM {_quote(table.name)}")
                _copy_rows(source, out, table, table.relation)
                continue
            change = changes[table.name]
            removed, added, rewritten = change.removed_table, change.added_table, ""
            if table.primary_key and table.name != SEARCHED_TABLE and change.removed and change.added:
                removed, added, rewritten = _split_by_key(table, removed, added)
            if change.removed:
                _delete_rows(source, out, table, removed)
            if rewritten:
                _update_rows(source, out, table, rewritten)
            if change.added:
                [(last_row,)] = out.execute(f"SELECT coalesce(max(rowid), 0) FROM {_quote(table.name)}")
                _copy_rows(source, out, table, added)
                if table.name == SEARCHED_TABLE:
                    columns = ", ".join(SEARCHED_COLUMNS)
                    out.execute(
                        f"INSERT INTO {SEARCH_TABLE} (rowid, {columns}) "
                        f"SELECT rowid, {columns} FROM {SEARCHED_TABLE} WHERE rowid > ?",
                        [last_row],
                    )
            [(rows,)] = out.execute(f"SELECT count(*) FROM {_quote(table.name)}")
            if rows != source.execute(f"SELECT count(*) FROM {table.relation}").fetchall()[0][0]:
                raise MirrorOutOfStep(f"{table.name}: {rows} rows in the mirror after the update")
        out.execute("COMMIT")
        out.execute("PRAGMA analysis_limit = 1000")
        out.execute("ANALYZE")
        out.close()
        building.chmod(0o444)
        os.replace(building, target)
    except BaseException as error:
        out.close()
        building.unlink(missing_ok=True)
        # Rows the mirror cannot match one for one, or a key the change broke.
        if isinstance(error, MirrorOutOfStep | sqlite3.IntegrityError):
            return False
        raise
    return True


@dataclass(frozen=True, slots=True)
class _MirrorBefore:
    """The mirror an update starts from, and the change since: a key or a reference it
    declares held for every row of it, so only the rows of the change can break it."""

    #: (table, columns) of each primary key and unique column the mirror declared.
    keys: frozenset[tuple[str, tuple[str, ...]]]
    #: (table, column, parent table) of each foreign key the mirror declared.
    references: frozenset[tuple[str, str, str]]
    changes: dict[str, MartChange]


def _keys(out: sqlite3.Connection) -> frozenset[tuple[str, tuple[str, ...]]]:
    """The primary keys and unique indexes the mirror ``out`` declares: (table, columns)."""
    keys = set()
    for (table,) in out.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        described = out.execute(f"PRAGMA table_info({_quote(table)})").fetchall()
        primary_key = tuple(row[1] for row in sorted(described, key=lambda row: row[5]) if row[5])
        if primary_key:
            keys.add((table, primary_key))
        for _, index, unique, origin, _ in out.execute(f"PRAGMA index_list({_quote(table)})").fetchall():
            if unique and origin == "c":
                columns = out.execute(f"PRAGMA index_info({_quote(index)})").fetchall()
                keys.add((table, tuple(row[2] for row in columns)))
    return frozenset(keys)


def _references(out: sqlite3.Connection) -> frozenset[tuple[str, str, str]]:
    """The foreign keys the mirror ``out`` declares: (table, column, parent table)."""
    return frozenset(
        (table, column, parent)
        for (table,) in out.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        for _, _, parent, column, *_ in out.execute(f"PRAGMA foreign_key_list({_quote(table)})").fetchall()
    )


def _declares(out: sqlite3.Connection, tables: list[_Table]) -> bool:
    """Whether the mirror ``out`` has exactly the tables, keys and indexes planned for ``tables``."""
    declared = out.execute(
        "SELECT sql FROM sqlite_master WHERE type IN ('table', 'index') AND sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite%' AND name NOT LIKE ?",
        [f"{SEARCH_TABLE}%"],
    ).fetchall()
    planned = [_create_table_sql(t) for t in tables] + _index_sql(tables)
    return sorted(row[0] for row in declared) == sorted(planned)


class MirrorOutOfStep(Exception):
    """Rows of the mirror could not be matched one for one (identical rows twice, or a
    row to update that the mirror does not hold)."""


def _split_by_key(table: _Table, removed: str, added: str) -> tuple[str, str, str]:
    """The rows of ``removed`` and of ``added`` whose key is not in the other, and the rows
    of ``added`` whose key is: those rewrite a row in place (a pair whose count changed,
    an article moved to another thread). An update leaves the key's index, and those of
    columns whose value it keeps, as they were; a delete and an insert rewrite them."""
    same_key = " AND ".join(f"a.{_quote(c)} = r.{_quote(c)}" for c in table.primary_key)
    return (
        f"(SELECT r.* FROM {removed} AS r ANTI JOIN {added} AS a ON {same_key})",
        f"(SELECT a.* FROM {added} AS a ANTI JOIN {removed} AS r ON {same_key})",
        f"(SELECT a.* FROM {added} AS a SEMI JOIN {removed} AS r ON {same_key})",
    )


def _update_rows(
    source: duckdb.DuckDBPyConnection, out: sqlite3.Connection, table: _Table, rows: str
) -> None:
    """Give each row of ``table`` the values of the row of ``rows`` with its key; each
    must find its row (a mirror out of step with the snapshot before may not)."""
    columns = {c.name: c for c in table.columns}
    values = [c for c in table.columns if c.name not in table.primary_key]
    if not values:  # the key is the whole row: nothing to rewrite
        return
    assignments = ", ".join(f"{_quote(c.name)} = ?" for c in values)
    where = " AND ".join(f"{_quote(c)} = ?" for c in table.primary_key)
    sent, updated = _write_rows(
        source,
        out,
        f"UPDATE {_quote(table.name)} SET {assignments} WHERE {where}",
        [*values, *(columns[c] for c in table.primary_key)],
        rows,
    )
    if updated != sent:
        raise MirrorOutOfStep(f"{table.name}: {sent - updated} rows to update are not in the mirror")


def _delete_rows(
    source: duckdb.DuckDBPyConnection, out: sqlite3.Connection, table: _Table, removed: str
) -> None:
    """Delete from the mirror the rows equal to the rows of ``removed`` (in the snapshot),
    and their entries in the full-text index."""
    out.execute(f"CREATE TEMP TABLE removed ({', '.join(_quote(c.name) for c in table.columns)})")
    _copy_rows(source, out, table, removed, into="temp.removed")
    # Find them through one index: the key's, else the indexed column through which
    # the removed rows read the fewest rows. SQLite's own pick goes by averages and
    # takes a column like entity_id, whose removed rows name the busiest entities
    # (thousands of rows each); a `+` keeps it off the other columns' indexes.
    lookup = table.primary_key or _cheapest_lookup(source, table, removed)
    match = " AND ".join(
        f"t.{_quote(c.name)} IS r.{_quote(c.name)}"
        if c.name in lookup
        else f"+t.{_quote(c.name)} IS r.{_quote(c.name)}"
        for c in table.columns
    )
    out.execute(
        f"CREATE TEMP TABLE gone AS SELECT t.rowid AS id FROM {_quote(table.name)} AS t "
        f"JOIN temp.removed AS r ON {match}"
    )
    if table.name == SEARCHED_TABLE:
        columns = ", ".join(SEARCHED_COLUMNS)
        out.execute(
            f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, rowid, {columns}) "
            f"SELECT 'delete', rowid, {columns} FROM {SEARCHED_TABLE} "
            "WHERE rowid IN (SELECT id FROM temp.gone)"
        )
    out.execute(f"DELETE FROM {_quote(table.name)} WHERE rowid IN (SELECT id FROM temp.gone)")
    out.execute("DROP TABLE temp.removed")
    out.execute("DROP TABLE temp.gone")


def _indexed_columns(table: _Table) -> list[str]:
    """The columns with an index of their own in the mirror (see ``_index_sql``)."""
    names = {c.name for c in table.columns}
    indexed = [
        *table.unique,
        *table.references,
        *FILTERED_COLUMNS.get(table.name, ()),
        *table.primary_key[:1],
    ]
    return [column for column in dict.fromkeys(indexed) if column in names]


def _cheapest_lookup(source: duckdb.DuckDBPyConnection, table: _Table, removed: str) -> tuple[str, ...]:
    """The indexed column of ``table`` through which the rows equal to those of
    ``removed`` are found reading the fewest rows (none when it has no index).

    Each removed row reads every row holding its value: a value shared by many removed
    rows is read once for each. (Counted by the rows holding any of the values, one busy
    entity's relinked mentions were looked up through it, each reading its thousands of
    rows: 6.2 s for 9,000 mentions in a 100,000-article mirror, 0.4 s through their articles.)"""
    costs = []
    for column in _indexed_columns(table):
        quoted = _quote(column)
        [(rows,)] = source.execute(
            f"SELECT coalesce(sum(r.n * t.n), 0) "
            f"FROM (SELECT {quoted} AS v, count(*) AS n FROM {removed} GROUP BY ALL) AS r "
            f"JOIN (SELECT {quoted} AS v, count(*) AS n FROM {table.relation} "
            f"WHERE {quoted} IN (SELECT {quoted} FROM {removed}) OR {quoted} IS NULL GROUP BY ALL) AS t "
            "ON r.v IS NOT DISTINCT FROM t.v"
        ).fetchall()
        costs.append((rows, column))
    return (min(costs)[1],) if costs else ()


def _plan_tables(source: duckdb.DuckDBPyConnection, before: _MirrorBefore | None = None) -> list[_Table]:
    """What the mirror of ``source`` holds: tables, keys, references. ``before``, when
    the mirror is an update, lets a key or a reference that held there be checked on
    the change alone."""
    marts = [
        row[0]
        for row in source.execute(
            "SELECT DISTINCT table_name FROM information_schema.tables WHERE table_schema = 'marts' "
            "ORDER BY table_name"
        ).fetchall()
    ]
    docs = model_docs()
    tables = [_plan_table(source, "marts", mart, docs.get(mart, ModelDocs()), before) for mart in marts]
    has_snapshots = source.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = 'meta' AND table_name = 'snapshots'"
    ).fetchall()[0][0]
    if has_snapshots:
        tables.append(_plan_table(source, "meta", "snapshots", ModelDocs()))
    _add_references(source, tables, docs, before)
    return tables


def _plan_table(
    source: duckdb.DuckDBPyConnection,
    schema: str,
    name: str,
    docs: ModelDocs,
    before: _MirrorBefore | None = None,
) -> _Table:
    described = source.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, name],
    ).fetchall()
    types = dict(described)
    columns = [
        _mirrored_column(column, data_type)
        for column, data_type in described
        if not _is_json_companion(column, types)
    ]
    relation = f"{schema}.{_quote(name)}"
    table = _Table(name=SNAPSHOTS_TABLE if schema == "meta" else name, relation=relation, columns=columns)
    names = {c.name for c in columns}
    key = docs.primary_key
    if key and set(key) <= names and _holds_key(source, table, key, before):
        table.primary_key = key
    table.unique = tuple(
        column for column in docs.unique if column in names and _holds_key(source, table, (column,), before)
    )
    return table


def _holds_key(
    source: duckdb.DuckDBPyConnection, table: _Table, columns: tuple[str, ...], before: _MirrorBefore | None
) -> bool:
    """Whether ``columns`` can be a key of ``table`` in the mirror (``_is_key``). A key the
    mirror before declared is checked on the rows put in alone, for NULLs (which SQLite
    would take into a key); a value twice SQLite refuses as the update inserts it, and
    the mirror is then written anew."""
    if before is None or (table.name, columns) not in before.keys:
        return _is_key(source, table.relation, columns)
    added = before.changes[table.name].added_table
    [(has_null,)] = source.execute(
        f"SELECT EXISTS (SELECT 1 FROM {added} WHERE NOT ({_no_nulls(columns)}))"
    ).fetchall()
    return not has_null


def _is_json_companion(column: str, types: dict[str, str]) -> bool:
    base = column.removesuffix("_json")
    return base != column and types.get(column) == "VARCHAR" and _is_nested(types.get(base, ""))


def _is_nested(data_type: str) -> bool:
    return data_type.endswith("]") or data_type.startswith(("MAP(", "STRUCT(", "UNION("))


def _mirrored_column(name: str, data_type: str) -> _Column:
    """How one DuckDB column is written to SQLite: its declared type there and the
    DuckDB expression that yields its values in that form."""
    quoted = _quote(name)
    if data_type.startswith("TIMESTAMP"):  # with or without time zone; naive ones are UTC
        return _Column(name, "TEXT", f"strftime({quoted}, '{_TIMESTAMP_FORMAT}')")
    if _is_nested(data_type):
        return _Column(name, "TEXT", f"CAST(to_json({quoted}) AS VARCHAR)")
    if data_type in _INTEGER_TYPES:
        return _Column(name, "INTEGER", quoted)
    if data_type in ("HUGEINT", "UHUGEINT", "UBIGINT"):
        return _Column(name, "INTEGER", f"CAST({quoted} AS BIGINT)")
    if data_type in ("DOUBLE", "FLOAT") or data_type.startswith("DECIMAL"):
        return _Column(name, "REAL", f"CAST({quoted} AS DOUBLE)")
    if data_type == "BLOB":
        return _Column(name, "BLOB", quoted)
    # VARCHAR, JSON, DATE (ISO text), TIME, UUID, INTERVAL, ENUM: their text.
    return _Column(name, "TEXT", f"CAST({quoted} AS VARCHAR)")


def _is_key(source: duckdb.DuckDBPyConnection, relation: str, columns: tuple[str, ...]) -> bool:
    """Whether the columns hold no NULL and no value twice, as a SQLite key must."""
    quoted = ", ".join(_quote(c) for c in columns)
    # One 64-bit hash a row is quicker to count than the key's strings: as many distinct
    # hashes as rows proves the key unique; fewer (a duplicate, or a collision) asks again.
    [(has_null, rows, hashes)] = source.execute(
        f"SELECT bool_or(NOT ({_no_nulls(columns)})), count(*), count(DISTINCT hash({quoted})) "
        f"FROM {relation}"
    ).fetchall()
    if has_null:
        return False
    if rows == hashes:
        return True
    duplicate = source.execute(
        f"SELECT EXISTS (SELECT 1 FROM {relation} GROUP BY {quoted} HAVING count(*) > 1)"
    ).fetchall()[0][0]
    return not duplicate


def _no_nulls(columns: tuple[str, ...]) -> str:
    """The condition that none of ``columns`` is NULL."""
    return " AND ".join(f"{_quote(c)} IS NOT NULL" for c in columns)


def _add_references(
    source: duckdb.DuckDBPyConnection,
    tables: list[_Table],
    docs: dict[str, ModelDocs],
    before: _MirrorBefore | None = None,
) -> None:
    """Foreign keys: dbt's relationships, columns named like another mart's key and the
    few named otherwise, each kept only when every value in it has its row."""
    by_name = {t.name: t for t in tables}
    # The mart a key names: thread_articles is keyed by article_id too, but it refers to articles.
    key_owner = {
        t.primary_key[0]: t.name
        for t in tables
        if len(t.primary_key) == 1 and t.primary_key[0] not in docs.get(t.name, ModelDocs()).references
    }
    for table in tables:
        if table.name == SNAPSHOTS_TABLE:
            continue
        declared = docs.get(table.name, ModelDocs()).references
        for column in (c.name for c in table.columns):
            named = _NAMED_REFERENCES.get((table.name, column))
            target = declared.get(column) or named or key_owner.get(column)
            # A table's own key is no reference, unless named as one (a merged thread's successor).
            if target is None or (target == table.name and named is None):
                continue
            parent = by_name.get(target)
            if parent is None or len(parent.primary_key) != 1:
                continue
            parent_key = parent.primary_key[0]
            if before is not None and (table.name, column, parent.name) in before.references:
                dangling = _dangles_after(source, table, column, parent, before.changes)
            else:
                dangling = _dangles(source, table.relation, column, parent)
            if not dangling:
                table.references[column] = (parent.name, parent_key)


def _dangles(source: duckdb.DuckDBPyConnection, children: str, column: str, parent: _Table) -> bool:
    """Whether a value of ``column`` in the rows of ``children`` has no row in ``parent``."""
    child_value = f"child.{_quote(column)}"
    return source.execute(
        f"SELECT EXISTS (SELECT 1 FROM {children} AS child WHERE {child_value} IS NOT NULL "
        f"AND NOT EXISTS (SELECT 1 FROM {parent.relation} AS parent "
        f"WHERE parent.{_quote(parent.primary_key[0])} = {child_value}))"
    ).fetchall()[0][0]


def _dangles_after(
    source: duckdb.DuckDBPyConnection,
    table: _Table,
    column: str,
    parent: _Table,
    changes: dict[str, MartChange],
) -> bool:
    """``_dangles`` for a reference that held before ``changes``: only a row put into
    ``table``, or a child of a key taken out of ``parent`` for good, can dangle now.
    Reads the change and two columns, not every child against every parent."""
    if _dangles(source, changes[table.name].added_table, column, parent):
        return True
    key = _quote(parent.primary_key[0])
    taken_out = changes[parent.name].removed_table
    gone = f"SELECT {key} FROM {taken_out} EXCEPT SELECT {key} FROM {parent.relation}"
    if not source.execute(f"SELECT EXISTS ({gone})").fetchall()[0][0]:
        return False
    return source.execute(
        f"SELECT EXISTS (SELECT 1 FROM {table.relation} WHERE {_quote(column)} IN ({gone}))"
    ).fetchall()[0][0]


def _create_table_sql(table: _Table) -> str:
    parts = [f"{_quote(c.name)} {c.sqlite_type}" for c in table.columns]
    if table.primary_key:
        parts.append(f"PRIMARY KEY ({', '.join(_quote(c) for c in table.primary_key)})")
    for column, (parent, parent_key) in table.references.items():
        parts.append(f"FOREIGN KEY ({_quote(column)}) REFERENCES {_quote(parent)} ({_quote(parent_key)})")
    return f"CREATE TABLE {_quote(table.name)} (\n    " + ",\n    ".join(parts) + "\n)"


def _copy_rows(
    source: duckdb.DuckDBPyConnection, out: sqlite3.Connection, table: _Table, relation: str, into: str = ""
) -> None:
    """The rows of ``relation`` (shaped like ``table`` in the snapshot) into the mirror's
    table, or the table ``into``."""
    insert = f"INSERT INTO {into or _quote(table.name)} VALUES ({', '.join('?' for _ in table.columns)})"
    _write_rows(source, out, insert, table.columns, relation)


def _write_rows(
    source: duckdb.DuckDBPyConnection,
    out: sqlite3.Connection,
    statement: str,
    columns: list[_Column],
    relation: str,
) -> tuple[int, int]:
    """Run ``statement`` in the mirror once per row of ``relation`` (in the snapshot), its
    parameters the row's ``columns`` in their mirrored form; returns how many rows it
    was run for and how many rows of the mirror it changed."""
    select = ", ".join(f"{c.select} AS {_quote(c.name)}" for c in columns)
    rows = source.execute(f"SELECT {select} FROM {relation}")
    sent = changed = 0
    for batch in rows.to_arrow_reader(_ROWS_PER_BATCH):
        parameters = zip(*(column.to_pylist() for column in batch.columns), strict=True)
        changed += out.executemany(statement, parameters).rowcount
        sent += batch.num_rows
    return sent, changed


def _index_sql(tables: list[_Table]) -> list[str]:
    statements = []
    for table in tables:
        names = {c.name for c in table.columns}
        for column in table.unique:
            statements.append(
                f"CREATE UNIQUE INDEX {_quote(f'{table.name}_{column}_unique')} "
                f"ON {_quote(table.name)} ({_quote(column)})"
            )
        indexed = [*table.references, *FILTERED_COLUMNS.get(table.name, ())]
        for column in dict.fromkeys(indexed):
            # The key's first column is served by the key's own index.
            if column not in names or column in table.unique or table.primary_key[:1] == (column,):
                continue
            statements.append(
                f"CREATE INDEX {_quote(f'{table.name}_{column}')} ON {_quote(table.name)} ({_quote(column)})"
            )
    return statements


def _build_search_index(out: sqlite3.Connection) -> None:
    """FTS5 over every version's text, reading the text from the table itself (no copy);
    accents folded, so "Zurich" finds "Zürich"."""
    out.execute(
        f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5("
        f"{', '.join(SEARCHED_COLUMNS)}, content=[{SEARCHED_TABLE}], "
        "tokenize='unicode61 remove_diacritics 2')"
    )
    out.execute(f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}) VALUES ('rebuild')")
    out.execute(f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}) VALUES ('optimize')")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
