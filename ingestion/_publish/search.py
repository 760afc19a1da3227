"""Full-text search over every version of every article, ranked by BM25.

The index is built at publish, inside the snapshot, from the validated marts:
``search_documents`` holds one row per version that has text (current, earlier
and withdrawn articles alike); its title, summary and body are split into words
(lowercase, accents stripped, English stop words left out, Porter stems from
DuckDB's fts extension) and kept as postings sorted by term, so a search reads
only the row groups of its own terms: its cost follows how many documents hold
the words, not how many documents there are. A later publish re-indexes only
the articles whose rows changed (``update_search_index``) and sorts the postings
again once the unsorted tail has grown by a quarter. The table macro
``search_articles('query')`` makes the index usable from SQL. ``newsroom
search`` adds filters, one row per article (its best version) and a snippet with
the match marked.

A query is words and "quoted phrases": every word counts towards the rank, a
phrase must also appear as written. A word that names a known entity brings in
the entity's other names ("Zelensky" also finds "Selenskyj" once entity
resolution has linked the two), unless ``aliases=False``.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from ingestion._extensions import load_extension
from ingestion.exceptions import QueryError

#: Letters that have no decomposition but that a reader takes for others ("Wałęsa" is
#: searched as "Walesa", "Straße" as "Strasse"), Greek's final sigma, the Latin ligatures
#: and fullwidth letters and digits: ``fold`` and ``_fold_sql`` turn them into these.
_FOLDED_LETTERS = {
    "ł": "l",
    "ø": "o",
    "đ": "d",
    "ð": "d",
    "ħ": "h",
    "\u0131": "i",  # dotless i
    "ŧ": "t",
    "\u03c2": "\u03c3",  # Greek final sigma: sigma
    **{chr(0xFF41 + n): chr(0x61 + n) for n in range(26)},  # fullwidth a-z
    **{chr(0xFF10 + n): str(n) for n in range(10)},  # fullwidth 0-9
    "ß": "ss",
    "æ": "ae",
    "œ": "oe",
    "þ": "th",
    "ﬀ": "ff",
    "ﬁ": "fi",
    "ﬂ": "fl",
    "ﬃ": "ffi",
    "ﬄ": "ffl",
    "ﬅ": "st",
    "ﬆ": "st",
}
_FOLD_TABLE = str.maketrans(_FOLDED_LETTERS)
#: Between words: anything but a letter or a digit, of any script.
_SEPARATORS = re.compile(r"[\W_]+")
#: The index's name for how it reads words: a snapshot indexed otherwise is indexed again
#: (``index_rule`` adds a digest of the stop words).
SEARCH_RULE = "unicode-words-1"


#: The letters ``_FOLDED_LETTERS`` folds, as a regular expression's class.
_FOLDED_CLASS = f"[{''.join(_FOLDED_LETTERS)}]"


def _fold_sql(text: str) -> str:
    """``fold`` in SQL (DuckDB's ``strip_accents`` drops the marks a canonical decomposition
    leaves): the letters of ``_FOLDED_LETTERS`` are looked for once, and only a text that
    has one goes through their replacements (a pass over the text each)."""
    accents_off = f"strip_accents(lower({text}))"
    single = {letter: to for letter, to in _FOLDED_LETTERS.items() if len(to) == 1}
    folded = f"translate({accents_off}, '{''.join(single)}', '{''.join(single.values())}')"
    for letter, letters in _FOLDED_LETTERS.items():
        if len(letters) > 1:
            folded = f"replace({folded}, '{letter}', '{letters}')"
    return f"CASE WHEN regexp_matches({accents_off}, '{_FOLDED_CLASS}') THEN {folded} ELSE {accents_off} END"


def _words_sql(text: str) -> str:
    """A text's words as the index sees them, in SQL: the same rule as ``_SEPARATORS`` after ``fold``."""
    return f"list_filter(regexp_split_to_array({_fold_sql(text)}, '[^\\pL\\pN]+'), word -> word <> '')"


_STOPWORDS_FILE = Path(__file__).parents[1] / "_derive" / "stopwords_en.txt"
#: BM25's usual constants: how fast repeated words stop counting, how much length matters.
BM25_K1, BM25_B = 1.2, 0.75
_MAX_QUERY_CHARS = 1_000
_MAX_WORDS = 32
SNIPPET_CHARS = 160
#: How much a match on an entity's other name counts, against a word of the search.
ALIAS_WEIGHT = 0.3
#: Every name of every entity, one row each.
_ENTITY_NAMES = "(SELECT entity_id, unnest(list_append(aliases, canonical_name)) AS alias FROM main.entities)"
#: How a match is marked in a snippet.
MARK_OPEN, MARK_CLOSE = "**", "**"


def _bm25_sql(weight: str) -> str:
    """A posting's share of a document's score, ``p`` a posting and ``s`` the stats."""
    return (
        f"{weight} * p.tf * {BM25_K1 + 1} / "
        f"(p.tf + {BM25_K1} * ({1 - BM25_B} + {BM25_B} * p.document_terms / s.average_terms))"
    )


def _idf_sql(terms: str = "t") -> str:
    return f"ln(1 + (s.documents - {terms}.document_count + 0.5) / ({terms}.document_count + 0.5))"


#: The documents of the articles ``{articles}`` selects, from the snapshot's marts.
_DOCUMENTS_SQL = """
    SELECT
        v.article_id, v.version, v.is_current, a.status = 'withdrawn' AS withdrawn,
        v.source_id, v.language, coalesce(v.published_at, a.first_seen_at) AS published_at,
        v.valid_from, v.title, v.summary, v.body, a.title AS current_title, a.status
    FROM main.article_versions AS v
    JOIN main.articles AS a USING (article_id)
    WHERE NOT v.is_withdrawal AND v.article_id IN ({articles})
"""
#: The postings of the documents numbered above ``{after}``, sorted by term.
_POSTINGS_SQL = f"""
    WITH words AS (
        SELECT doc_id, article_number, version, is_current,
               unnest({_words_sql("concat_ws(' ', title, summary, body)")}) AS word
        FROM main.search_documents
        WHERE doc_id > {{after}}
    ), counted AS (
        SELECT stem(word, 'porter') AS term, doc_id, article_number, version, is_current,
               count(*)::INTEGER AS tf
        FROM words
        WHERE word NOT IN (SELECT word FROM main.search_stopwords)
        GROUP BY ALL
    )
    SELECT *, sum(tf) OVER (PARTITION BY doc_id)::INTEGER AS document_terms
    FROM counted
    ORDER BY term, doc_id
"""
#: Postings added since the table was last sorted, as a share of all of them, that make
#: the next update sort it again: searches skip row groups by term, which a long
#: unsorted tail defeats. Sorting when the tail has grown by a fixed share keeps the
#: total cost of sorting in step with the postings added.
_RESORT_SHARE = 0.25


#: Results are fetched by document number; the index makes that a lookup.
_DOCUMENTS_INDEX_SQL = "CREATE UNIQUE INDEX search_documents_doc_id ON main.search_documents (doc_id)"


def index_rule() -> str:
    """``SEARCH_RULE`` and a digest of the stop words: a list changed by an upgrade (the
    threads' list, shared) has every updated snapshot indexed again, as a full build is."""
    return f"{SEARCH_RULE}+{hashlib.sha256(_STOPWORDS_FILE.read_bytes()).hexdigest()[:12]}"


def build_search_index(con: duckdb.DuckDBPyConnection) -> None:
    """Index every version with text, in the snapshot ``con`` is building (marts in ``main``)."""
    load_extension(con, "fts")  # stem()
    stopwords = [
        line.strip()
        for line in _STOPWORDS_FILE.read_text(encoding="utf-8").splitlines()
        if line and line[0] != "#"
    ]
    con.execute(
        "CREATE TABLE main.search_stopwords AS SELECT DISTINCT unnest(?::VARCHAR[]) AS word ORDER BY 1",
        [stopwords],
    )
    con.execute(
        f"""
        CREATE TABLE main.search_documents AS
        SELECT row_number() OVER (ORDER BY article_id, version) AS doc_id,
               dense_rank() OVER (ORDER BY article_id) AS article_number, *
        FROM ({_DOCUMENTS_SQL.format(articles="SELECT article_id FROM main.articles")})
        ORDER BY doc_id
        """
    )
    con.execute(f"CREATE TABLE main.search_postings AS {_POSTINGS_SQL.format(after=0)}")
    con.execute(
        "CREATE TABLE main.search_terms AS SELECT term, count(*)::INTEGER AS document_count "
        "FROM main.search_postings GROUP BY term ORDER BY term"
    )
    con.execute(
        "CREATE TABLE main.search_stats (documents BIGINT, average_terms DOUBLE, "
        "total_terms BIGINT, documents_with_terms BIGINT, unsorted_postings BIGINT)"
    )
    counted, total = _document_lengths(con, "true")
    _write_stats(con, documents_with_terms=counted, total_terms=total, unsorted_postings=0)
    con.execute(_DOCUMENTS_INDEX_SQL)
    con.execute("CREATE TABLE main.search_rule AS SELECT ?::VARCHAR AS rule", [index_rule()])
    con.execute(
        f"""
        CREATE MACRO main.search_articles(query) AS TABLE
        WITH query_terms AS (
            SELECT DISTINCT stem(word, 'porter') AS term
            FROM (SELECT unnest({_words_sql("query")}) AS word)
            WHERE word NOT IN (SELECT word FROM main.search_stopwords)
        ), weights AS (
            SELECT t.term, {_idf_sql()} AS idf
            FROM main.search_terms AS t, main.search_stats AS s
            WHERE t.term IN (SELECT term FROM query_terms)
        ), scores AS (
            SELECT p.doc_id, sum({_bm25_sql("w.idf")}) AS score
            FROM main.search_postings AS p JOIN weights AS w USING (term), main.search_stats AS s
            GROUP BY p.doc_id
        )
        SELECT d.article_id, d.version, d.is_current, d.withdrawn, d.source_id, d.language,
               d.published_at, d.valid_from, d.title, round(scores.score, 3) AS score
        FROM scores JOIN main.search_documents AS d USING (doc_id)
        ORDER BY scores.score DESC, d.article_id, d.version
        """
    )


def update_search_index(con: duckdb.DuckDBPyConnection, touched_articles: str) -> None:
    """Re-index the articles ``touched_articles`` (a query of article ids) in a snapshot
    whose marts were brought up to date: their documents and postings are replaced,
    the term counts and statistics follow. Every score and order is what a fresh
    ``build_search_index`` would give; only the document numbers differ (equal scores go
    by article and version). An index that reads words by another rule (``SEARCH_RULE``
    with a digest of the stop words: an older version's) is built again instead."""
    if _rule_of(con) != index_rule():
        for table in _SEARCH_TABLES:
            con.execute(f"DROP TABLE IF EXISTS main.{table}")
        con.execute("DROP MACRO TABLE IF EXISTS main.search_articles")
        build_search_index(con)
        return
    load_extension(con, "fts")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE touched AS SELECT DISTINCT article_id FROM ({touched_articles})"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE dropped AS SELECT doc_id, article_id, article_number "
        "FROM main.search_documents WHERE article_id IN (SELECT article_id FROM touched)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE term_changes AS SELECT term, -count(*) AS change "
        "FROM main.search_postings WHERE doc_id IN (SELECT doc_id FROM dropped) GROUP BY term"
    )
    [(last_doc, last_article, counted, total, unsorted)] = con.execute(
        "SELECT (SELECT coalesce(max(doc_id), 0) FROM main.search_documents), "
        "(SELECT coalesce(max(article_number), 0) FROM main.search_documents), "
        "documents_with_terms, total_terms, unsorted_postings FROM main.search_stats"
    ).fetchall()
    dropped_counted, dropped_total = _document_lengths(con, "doc_id IN (SELECT doc_id FROM dropped)")
    # The index is built again after the change, not updated: deleting from it after a
    # publish's other updates crashed DuckDB 1.5.5 (a segmentation fault in its ART
    # index) on a million-article snapshot. Building it takes a third of a second there.
    con.execute("DROP INDEX main.search_documents_doc_id")
    con.execute("DELETE FROM main.search_postings WHERE doc_id IN (SELECT doc_id FROM dropped)")
    con.execute("DELETE FROM main.search_documents WHERE doc_id IN (SELECT doc_id FROM dropped)")
    # Articles keep their number; new ones are numbered after the last.
    con.execute(
        f"""
        INSERT INTO main.search_documents
        WITH numbers AS (
            SELECT article_id, article_number FROM dropped
            UNION
            SELECT article_id, {last_article} + row_number() OVER (ORDER BY article_id)
            FROM touched WHERE article_id NOT IN (SELECT article_id FROM dropped)
        )
        SELECT {last_doc} + row_number() OVER (ORDER BY d.article_id, d.version) AS doc_id,
               n.article_number, d.*
        FROM ({_DOCUMENTS_SQL.format(articles="SELECT article_id FROM touched")}) AS d
        JOIN (SELECT DISTINCT * FROM numbers) AS n USING (article_id)
        ORDER BY doc_id
        """
    )
    con.execute(f"INSERT INTO main.search_postings {_POSTINGS_SQL.format(after=last_doc)}")
    [(added, postings)] = con.execute(
        f"SELECT count(*) FILTER (WHERE doc_id > {last_doc}), count(*) FROM main.search_postings"
    ).fetchall()
    con.execute(
        f"INSERT INTO term_changes SELECT term, count(*) FROM main.search_postings "
        f"WHERE doc_id > {last_doc} GROUP BY term"
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE term_counts AS
        SELECT c.term, coalesce(any_value(t.document_count), 0) + sum(c.change) AS document_count
        FROM term_changes AS c LEFT JOIN main.search_terms AS t USING (term)
        GROUP BY c.term
        """
    )
    con.execute("DELETE FROM main.search_terms WHERE term IN (SELECT term FROM term_counts)")
    con.execute(
        "INSERT INTO main.search_terms SELECT term, document_count::INTEGER FROM term_counts "
        "WHERE document_count > 0 ORDER BY term"
    )
    added_counted, added_total = _document_lengths(con, f"doc_id > {last_doc}")
    unsorted += added
    if unsorted > _RESORT_SHARE * postings:
        con.execute(
            "CREATE OR REPLACE TABLE main.search_postings AS FROM main.search_postings ORDER BY term, doc_id"
        )
        unsorted = 0
    _write_stats(
        con,
        documents_with_terms=counted - dropped_counted + added_counted,
        total_terms=total - dropped_total + added_total,
        unsorted_postings=unsorted,
    )
    con.execute(_DOCUMENTS_INDEX_SQL)
    for table in ("touched", "dropped", "term_changes", "term_counts"):
        con.execute(f"DROP TABLE {table}")


#: The index's tables (``build_search_index``).
_SEARCH_TABLES = (
    "search_stopwords",
    "search_documents",
    "search_postings",
    "search_terms",
    "search_stats",
    "search_rule",
)


def _rule_of(con: duckdb.DuckDBPyConnection) -> str | None:
    """How the snapshot's index reads words (None: from before the rule was recorded)."""
    with contextlib.suppress(duckdb.CatalogException):
        return con.execute("SELECT any_value(rule) FROM main.search_rule").fetchall()[0][0]
    return None


def _document_lengths(con: duckdb.DuckDBPyConnection, documents: str) -> tuple[int, int]:
    """How many of ``documents`` (a condition on ``doc_id``) have postings, and their terms in all."""
    return con.execute(
        "SELECT count(*), coalesce(sum(document_terms), 0) FROM "
        f"(SELECT DISTINCT doc_id, document_terms FROM main.search_postings WHERE {documents})"
    ).fetchall()[0]


def _write_stats(
    con: duckdb.DuckDBPyConnection, *, documents_with_terms: int, total_terms: int, unsorted_postings: int
) -> None:
    """``search_stats``, its average from integer totals so that an updated index and a
    fresh one agree to the last bit."""
    con.execute("DELETE FROM main.search_stats")
    con.execute(
        "INSERT INTO main.search_stats SELECT (SELECT count(*) FROM main.search_documents), "
        "coalesce($total / nullif($counted, 0), 1), $total, $counted, $unsorted",
        {"total": total_terms, "counted": documents_with_terms, "unsorted": unsorted_postings},
    )


@dataclass(frozen=True, slots=True)
class SearchFilters:
    since: datetime | None = None
    until: datetime | None = None
    source: str | None = None
    entity: str | None = None
    thread: str | None = None
    language: str | None = None
    current_only: bool = False


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    words: tuple[str, ...]
    phrases: tuple[str, ...]


def fold(text: str) -> str:
    """Lowercase without accents (and ``_FOLDED_LETTERS``), as the index sees text."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    # composed again, as DuckDB's strip_accents does (Hangul syllables stay syllables)
    stripped = unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if unicodedata.category(c)[0] != "M")
    )
    return stripped.translate(_FOLD_TABLE)


def parse_query(query: str) -> ParsedQuery:
    """Words and "quoted phrases"; a clear error for what cannot be a search."""
    if len(query) > _MAX_QUERY_CHARS:
        raise QueryError(f"the search is longer than {_MAX_QUERY_CHARS:,} characters")
    if query.count('"') % 2:
        raise QueryError('the search has an unclosed quote: close the phrase ("like this") or drop the quote')
    parts = query.split('"')
    # A phrase with nothing left once folded (a lone accent) would match every article.
    phrases = tuple(" ".join(part.split()) for part in parts[1::2] if fold(part).strip())
    words = tuple(word for part in parts for word in _SEPARATORS.split(fold(part)) if word)
    if not words:
        raise QueryError("the search has no words to look for")
    if len(words) > _MAX_WORDS:
        raise QueryError(f"the search has more than {_MAX_WORDS} words")
    return ParsedQuery(words, phrases)


def has_search_index(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() "
            "WHERE schema_name = 'main' AND table_name = 'search_postings'"
        ).fetchall()[0][0]
    )


def search(
    con: duckdb.DuckDBPyConnection,
    query: str,
    filters: SearchFilters = SearchFilters(),
    *,
    limit: int = 20,
    aliases: bool = True,
) -> tuple[duckdb.DuckDBPyRelation, tuple[str, ...]]:
    """The best-matching articles, best first, and the entity names the search added.

    ``con`` is a snapshot opened with the full-text extension loaded.
    """
    if not has_search_index(con):
        raise QueryError(
            "this snapshot has no search index (it is older than this version); run `newsroom publish`"
        )
    parsed = parse_query(query)
    stopwords = {row[0] for row in con.execute("SELECT word FROM main.search_stopwords").fetchall()}
    if all(word in stopwords for word in parsed.words):
        raise QueryError(
            f"the search has only common words ({' '.join(parsed.words)}), which are not indexed; "
            "add a word that sets the articles you want apart"
        )
    added = _alias_names(con, query, parsed) if aliases else ()
    alias_words = sorted(
        {w for name in added for w in _SEPARATORS.split(fold(name)) if w} - set(parsed.words) - stopwords
    )
    weights = {term: 1.0 for term in _stems(con, [w for w in parsed.words if w not in stopwords])}
    for term in _stems(con, alias_words):
        # Another name of an entity counts for less than the words the journalist typed.
        weights.setdefault(term, ALIAS_WEIGHT)
    conditions, params = _filter_sql(con, filters)
    for number, phrase in enumerate(parsed.phrases):
        # white space as the phrase has it: one space (a phrase may run across a line break)
        folded = _fold_sql("concat_ws(' ', d.title, d.summary, d.body)")
        text = f"regexp_replace({folded}, '\\s+', ' ', 'g')"
        conditions.append(f"{text} LIKE $phrase{number} ESCAPE '\\'")
        params[f"phrase{number}"] = "%" + _like_escape(fold(phrase)) + "%"
    # Terms are letters and digits only (the split above), so literals are safe; as literals they
    # let DuckDB skip every row group of the sorted postings that holds none of them.
    terms = ", ".join(f"'{term}'" for term in weights)
    weight_of = " ".join(f"WHEN '{term}' THEN {weight}" for term, weight in weights.items())
    restrict = (
        f"AND p.doc_id IN (SELECT d.doc_id FROM main.search_documents AS d WHERE {' AND '.join(conditions)})"
        if conditions
        else ""
    )
    top = (
        con.execute(
            f"""
        WITH weights AS (
            SELECT t.term, (CASE t.term {weight_of} END) * {_idf_sql()} AS weight
            FROM main.search_terms AS t, main.search_stats AS s
            WHERE t.term IN ({terms})
        ), scored AS (
            SELECT p.doc_id, any_value(p.article_number) AS article_number, any_value(p.version) AS version,
                   any_value(p.is_current) AS is_current, sum({_bm25_sql("w.weight")}) AS score
            FROM main.search_postings AS p JOIN weights AS w USING (term), main.search_stats AS s
            WHERE p.term IN ({terms}) {"AND p.is_current" if filters.current_only else ""} {restrict}
            GROUP BY p.doc_id
        ), per_article AS (
            -- Each article once, by its best version (the latest of equals).
            SELECT arg_max(doc_id, {{'score': score, 'version': version}}) AS doc_id, max(score) AS score,
                   count(*) AS versions_matched, bool_or(is_current) AS current_matches
            FROM scored
            GROUP BY article_number
        ), placed AS (
            SELECT *, rank() OVER (ORDER BY score DESC) AS place FROM per_article
        )
        -- Equal scores by article and version, as document numbers differ between a snapshot
        -- built in full and one brought up to date (read for the ties within the limit only).
        SELECT p.doc_id, p.score, p.versions_matched, p.current_matches
        FROM placed AS p JOIN main.search_documents AS d USING (doc_id)
        WHERE p.place <= {int(limit)}
        ORDER BY p.score DESC, d.article_id, d.version
        LIMIT {int(limit)}
        """,
            params or None,
        ).fetchall()
        if weights
        else []
    )
    marked = sorted({*parsed.words, *alias_words} | {fold(phrase) for phrase in parsed.phrases})
    _register_snippet(con)
    # The few results are read back by their documents' index: no scan of every text.
    found = ", ".join(
        f"({doc_id}, {rank}, {score!r}::DOUBLE, {matched}, {current})"
        for rank, (doc_id, score, matched, current) in enumerate(top)
    )
    relation = con.sql(
        f"""
        SELECT d.article_id, round(top.score, 3) AS score, d.current_title AS title,
               d.version AS matched_version, top.versions_matched, top.current_matches, d.status,
               d.source_id, d.language, d.published_at,
               newsroom_snippet(d.title, d.summary, d.body, $marks) AS snippet
        FROM main.search_documents AS d
        JOIN (VALUES {found or "(NULL, NULL, NULL::DOUBLE, NULL, NULL)"})
            AS top(doc_id, rank, score, versions_matched, current_matches) USING (doc_id)
        WHERE d.doc_id IN ({", ".join(str(row[0]) for row in top) or "NULL"})
        ORDER BY top.rank
        """,
        params={"marks": marked},
    )
    return relation, added


def _stems(con: duckdb.DuckDBPyConnection, words: Sequence[str]) -> list[str]:
    """The index terms of ``words``, in order, without repeats."""
    if not words:
        return []
    stems = con.execute(
        "SELECT list_transform(?::VARCHAR[], word -> stem(word, 'porter'))", [list(words)]
    ).fetchall()
    return list(dict.fromkeys(stems[0][0]))


def _register_snippet(con: duckdb.DuckDBPyConnection) -> None:
    # An earlier search on this connection registered it already.
    with contextlib.suppress(duckdb.NotImplementedException):
        con.create_function(
            "newsroom_snippet",
            lambda title, summary, body, marks: snippet((title, summary, body), set(marks)),
            ["VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR[]"],
            "VARCHAR",
            null_handling="special",
        )


def snippet(fields: Sequence[str | None], marked: set[str]) -> str:
    """Up to ``SNIPPET_CHARS`` of the first field with a match, around it, matches marked."""
    words = sorted(filter(None, marked), key=len, reverse=True)  # an empty mark matches everywhere
    if not words:
        return ""
    pattern = re.compile("|".join(re.escape(word) for word in words))
    for text in fields:
        if not text:
            continue
        folded = fold(text)
        # Folding can change a text's length (ligatures, some letters); mark only where it does not.
        if len(folded) != len(text):
            folded = text.lower()
        first = pattern.search(folded)
        if first is None:
            continue
        start = max(0, first.start() - SNIPPET_CHARS // 3)
        end = min(len(text), start + SNIPPET_CHARS)
        window = " ".join(text[start:end].split())
        folded_window = " ".join(folded[start:end].split())
        pieces, position = [], 0
        for match in pattern.finditer(folded_window):
            pieces += [
                window[position : match.start()],
                MARK_OPEN,
                window[match.start() : match.end()],
                MARK_CLOSE,
            ]
            position = match.end()
        pieces.append(window[position:])
        return ("…" if start else "") + "".join(pieces) + ("…" if end < len(text) else "")
    return " ".join((next((t for t in fields if t), "") or "")[:SNIPPET_CHARS].split())


def _alias_names(con: duckdb.DuckDBPyConnection, query: str, parsed: ParsedQuery) -> tuple[str, ...]:
    """Other names of the entities the query names (whole query, a phrase or a word)."""
    candidates = {fold(" ".join(query.replace('"', " ").split())), *map(fold, parsed.phrases), *parsed.words}
    rows = con.execute(
        f"""
        SELECT DISTINCT alias
        FROM {_ENTITY_NAMES}
        WHERE entity_id IN (
            SELECT entity_id
            FROM {_ENTITY_NAMES}
            WHERE {_fold_sql("alias")} IN (SELECT unnest(?::VARCHAR[]))
        )
        ORDER BY alias
        """,
        [sorted(candidates)],
    ).fetchall()
    return tuple(row[0] for row in rows if fold(row[0]) not in candidates)


def _filter_sql(
    con: duckdb.DuckDBPyConnection, filters: SearchFilters
) -> tuple[list[str], dict[str, object]]:
    conditions: list[str] = []
    params: dict[str, object] = {}

    def param(value: object) -> str:
        name = f"filter{len(params)}"
        params[name] = value
        return "$" + name

    if filters.since is not None:
        conditions.append(f"d.published_at >= {param(filters.since)}")
    if filters.until is not None:
        conditions.append(f"d.published_at < {param(filters.until)}")
    if filters.source is not None:
        if not con.execute(
            "SELECT count(*) FROM main.sources WHERE source_id = ?", [filters.source]
        ).fetchall()[0][0]:
            raise QueryError(
                f"no source {filters.source!r} in this snapshot (see `SELECT source_id FROM sources`)"
            )
        conditions.append(f"d.source_id = {param(filters.source)}")
    if filters.language is not None:
        language = param(filters.language.lower())
        conditions.append(
            f"(lower(d.language) = {language} OR starts_with(lower(d.language), {language} || '-'))"
        )
    if filters.entity is not None:
        entity_ids = [
            row[0]
            for row in con.execute(
                f"""
                SELECT DISTINCT entity_id
                FROM {_ENTITY_NAMES}
                WHERE {_fold_sql("alias")} = ? OR entity_id = ?
                """,
                [fold(filters.entity), filters.entity],
            ).fetchall()
        ]
        if not entity_ids:
            raise QueryError(
                f"no entity named {filters.entity!r} in this snapshot "
                "(see `SELECT canonical_name, aliases FROM entities`)"
            )
        conditions.append(
            "d.article_id IN (SELECT article_id FROM main.entity_mentions WHERE entity_id IN "
            f"(SELECT unnest({param(entity_ids)}::VARCHAR[])))"
        )
    if filters.thread is not None:
        # A thread merged into another is read as the one it joined.
        found = con.execute(
            "SELECT coalesce(merged_into, thread_id) FROM main.story_threads WHERE thread_id = ?",
            [filters.thread],
        ).fetchall()
        if not found:
            raise QueryError(
                f"no story thread {filters.thread!r} in this snapshot (see `SELECT * FROM story_threads`)"
            )
        conditions.append(
            "d.article_id IN (SELECT article_id FROM main.thread_articles "
            f"WHERE thread_id = {param(found[0][0])} AND is_member)"
        )
    return conditions, params


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
