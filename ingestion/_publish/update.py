"""A new snapshot as the previous one plus what changed, so publishing costs what changed.

Most of a snapshot is what the one before held. ``update_marts`` starts from a copy
of the previous file and, mart by mart, removes the rows the working database no
longer has and adds the rows it did not have before. Rows are told apart by a hash
of every column in the form readers get (the same expressions a full publish
writes), so no rule of any model needs to say what it rewrote: a mart relinked
by entity resolution, a thread gone dormant, a full refresh, all look the same.
Comparing hashes reads each mart once on each side, which is a few columns' worth
of work per row; the writes follow the change.

The rows taken out and put in stay in temporary tables (``MartChange``) for the
search index and the explorer's mirror, which apply the same change. A mart whose
row count comes out different from the working database's (identical rows twice,
or a hash collision) raises ``SnapshotOutOfStep``: the caller then publishes in full.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from ingestion.exceptions import NewsroomError


class SnapshotOutOfStep(NewsroomError):
    """The previous snapshot cannot be brought up to date row by row; publish in full."""


@dataclass(frozen=True, slots=True)
class MartChange:
    """The rows of ``mart`` a publish took out (``removed_table``) and put in (``added_table``),
    as published (the reader's columns, JSON companions included)."""

    mart: str
    removed: int
    added: int

    @property
    def removed_table(self) -> str:
        return f"temp.main.{_temporary('removed', self.mart)}"

    @property
    def added_table(self) -> str:
        return f"temp.main.{_temporary('added', self.mart)}"

    def __bool__(self) -> bool:
        return bool(self.removed or self.added)


def update_mart(out: duckdb.DuckDBPyConnection, mart: str, select_list: str, hashed: list[str]) -> MartChange:
    """Bring ``main.<mart>`` of the snapshot ``out`` to the rows of ``work.marts.<mart>``.

    ``select_list`` is what a full publish selects from the working mart; ``hashed``
    names the published columns that carry the data (JSON companions are derived),
    which the select list yields under the same names.
    """
    row_hash = f"hash({', '.join(hashed)})"
    working = f"(SELECT rowid, {select_list} FROM work.marts.{mart})"
    # One join of the two sides' row hashes finds both the rows gone and the rows new.
    out.execute(
        "CREATE OR REPLACE TEMP TABLE row_changes AS "
        "SELECT published.row_id AS gone, working.row_id AS new "
        f"FROM (SELECT rowid AS row_id, {row_hash} AS h FROM main.{mart}) AS published "
        f"FULL JOIN (SELECT rowid AS row_id, {row_hash} AS h FROM {working}) AS working USING (h) "
        "WHERE published.row_id IS NULL OR working.row_id IS NULL"
    )
    gone = "SELECT gone FROM row_changes WHERE gone IS NOT NULL"
    new = "SELECT new FROM row_changes WHERE new IS NOT NULL"
    removed_table, added_table = _temporary("removed", mart), _temporary("added", mart)
    out.execute(f"CREATE OR REPLACE TEMP TABLE {removed_table} AS FROM main.{mart} WHERE rowid IN ({gone})")
    out.execute(
        f"CREATE OR REPLACE TEMP TABLE {added_table} AS SELECT * EXCLUDE (rowid) FROM {working} "
        f"WHERE rowid IN ({new})"
    )
    out.execute(f"DELETE FROM main.{mart} WHERE rowid IN ({gone})")
    out.execute(f"INSERT INTO main.{mart} FROM {added_table}")
    [(removed, added, published, in_work)] = out.execute(
        f"SELECT (SELECT count(*) FROM {removed_table}), (SELECT count(*) FROM {added_table}), "
        f"(SELECT count(*) FROM main.{mart}), (SELECT count(*) FROM work.marts.{mart})"
    ).fetchall()
    out.execute("DROP TABLE row_changes")
    if published != in_work:
        raise SnapshotOutOfStep(
            f"{mart}: {published:,} rows after the update, {in_work:,} in the working database"
        )
    return MartChange(mart, removed, added)


def _temporary(kind: str, mart: str) -> str:
    """The temporary table holding the rows of ``mart`` a publish took out or put in."""
    return f'"{kind}__{mart}"'
