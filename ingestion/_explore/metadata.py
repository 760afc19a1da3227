"""What Datasette shows around the data: titles, descriptions, facets and the
journalists' questions as ready-made queries."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from ingestion._explore.docs import model_docs
from ingestion._explore.mirror import SEARCH_TABLE, SEARCHED_TABLE, SNAPSHOTS_TABLE

#: The database's name in the explorer's URLs (/newsroom/articles).
DATABASE = "newsroom"
PLUGIN = "newsroom-explorer"

_FACETS = {
    "articles": ("source_id", "status", "language"),
    "article_versions": ("source_id", "event_type"),
    "articles_daily": ("source_id",),
    "entities": ("entity_type",),
    "entity_mentions": ("entity_type", "field"),
    "entity_extraction_status": ("status", "field", "language"),
    "story_threads": ("status", "first_source_id"),
    "thread_articles": ("is_member",),
}
_NEWEST_FIRST = {
    "articles": "published_at",
    "article_versions": "valid_from",
    "articles_daily": "day",
    "entities": "mention_count",
    "entity_daily": "day",
    "story_threads": "last_seen_at",
    "threads_daily": "day",
    SNAPSHOTS_TABLE: "built_at",
}
#: What Datasette shows for a row that another row points at.
_LABELS = {"articles": "title", "story_threads": "label", "entities": "canonical_name"}

_SNAPSHOT_DOCS = {
    "description": "The snapshot these tables come from: when it was built, up to which event, "
    "and what validation found.",
    "columns": {
        "built_at": "When the snapshot was built (UTC).",
        "last_event_seq": "The last article event every table reflects.",
        "last_event_recorded_at": "When that event was recorded (UTC).",
        "validation_success": "Every critical expectation passed (always 1: nothing else is published).",
        "validated_since_seq": "Validation covered the events after this one.",
        "validation": "Each suite: stage, success, rows checked, warnings.",
        "tables": "Rows per table.",
    },
}

#: The questions people ask of the newsroom's data. Times are ISO-8601 text, so
#: comparing them as text compares them as times; "this week" is the week up to the
#: newest day in the snapshot, so an older snapshot still answers.
QUERIES: dict[str, dict[str, str]] = {
    "named_most_this_week": {
        "title": "Who was named most this week?",
        "description": "Entities by mentions in the current versions of live articles over the "
        "7 days up to the newest day in the snapshot. Leave the type empty for all "
        "(person, organisation, place, group, other).",
        "sql": """SELECT e.entity_id, e.canonical_name, e.entity_type,
       sum(d.mentions) AS mentions, sum(d.articles) AS articles, max(d.sources) AS most_sources_a_day
FROM entity_daily AS d JOIN entities AS e ON e.entity_id = d.entity_id
WHERE d.day > date((SELECT max(day) FROM entity_daily), '-7 days')
  AND (:entity_type = '' OR e.entity_type = :entity_type)
GROUP BY e.entity_id, e.canonical_name, e.entity_type
ORDER BY mentions DESC, articles DESC
LIMIT 50""",
    },
    "headline_changes": {
        "title": "How did this headline change?",
        "description": "Every version of the articles whose headline changed and once read "
        "(or reads) like the words given; empty words list them all, latest first.",
        "sql": """SELECT v.article_id, v.version, v.valid_from, v.event_type, v.source_id,
       v.title, v.previous_title, v.title_chars_removed, v.title_chars_added
FROM article_versions AS v
WHERE v.article_id IN (
    SELECT article_id FROM article_versions
    WHERE instr(lower(title), lower(:words)) OR instr(lower(previous_title), lower(:words)))
  AND v.article_id IN (SELECT article_id FROM article_versions WHERE title_changed)
ORDER BY (SELECT max(valid_from) FROM article_versions AS last WHERE last.article_id = v.article_id) DESC,
         v.article_id, v.version
LIMIT 1000""",
    },
    "who_broke_it_first": {
        "title": "Which source broke the story first?",
        "description": "Story threads (labels like the words given; empty for all) with the member "
        "that has the earliest publisher time (its recorded time when the feed gives none).",
        "sql": """SELECT t.thread_id, t.label, first.source_id AS broken_by, first.published AS broken_at,
       first.article_id AS first_article, first.title AS first_headline,
       t.source_count, t.article_count, t.status
FROM story_threads AS t
JOIN (
    SELECT ta.thread_id, a.article_id, a.source_id, a.title,
           coalesce(a.published_at, a.first_seen_at) AS published,
           row_number() OVER (PARTITION BY ta.thread_id
                              ORDER BY coalesce(a.published_at, a.first_seen_at), a.article_id) AS rank
    FROM thread_articles AS ta JOIN articles AS a ON a.article_id = ta.article_id
    WHERE ta.is_member
) AS first ON first.thread_id = t.thread_id AND first.rank = 1
WHERE instr(lower(t.label), lower(:words))
ORDER BY t.article_count DESC, t.last_seen_at DESC
LIMIT 200""",
    },
    "withdrawn_articles": {
        "title": "Every withdrawn article",
        "description": "Articles a wire killed or cancelled, latest first; they keep their last text.",
        "sql": """SELECT article_id, source_id, title, published_at, withdrawn_at, version_count
FROM articles
WHERE status = 'withdrawn'
ORDER BY withdrawn_at DESC, article_id""",
    },
}


def explorer_metadata(mirror: Path, feeds_dir: Path) -> dict[str, Any]:
    """Datasette's metadata for the mirror at ``mirror``; ``feeds_dir`` holds the Atom
    feeds served at /feeds/."""
    docs = model_docs()
    tables: dict[str, Any] = {}
    for table, columns in _tables(mirror).items():
        model = docs.get(table)
        described: dict[str, Any] = (
            {"description": model.description, "columns": _present(model.columns, columns)}
            if model
            else dict(_SNAPSHOT_DOCS)
            if table == SNAPSHOTS_TABLE
            else {}
        )
        facets = [column for column in _FACETS.get(table, ()) if column in columns]
        if facets:
            described["facets"] = facets
        if _NEWEST_FIRST.get(table) in columns:
            described["sort_desc"] = _NEWEST_FIRST[table]
        if _LABELS.get(table) in columns:
            described["label_column"] = _LABELS[table]
        if table == SEARCHED_TABLE:
            described["fts_table"] = SEARCH_TABLE
        if table.startswith(f"{SEARCH_TABLE}_") or table in (SEARCH_TABLE, "sqlite_stat1"):
            described["hidden"] = True
        tables[table] = described
    return {
        "title": "newsroom explorer",
        "description": "The published, validated snapshot of the newsroom's tables, read-only. "
        "Search every version of every article on article_versions; /article/<id>, "
        "/thread/<id> and /entity/<id> show an article's versions with what changed, "
        "a story thread and an entity's mentions. Change feeds: /feeds/changes.atom.",
        "databases": {
            DATABASE: {
                "description": "Every mart of the published snapshot; `snapshots` says when it was built.",
                "tables": tables,
                "queries": QUERIES,
            }
        },
        "plugins": {PLUGIN: {"feeds_dir": str(feeds_dir)}},
    }


def _tables(mirror: Path) -> dict[str, set[str]]:
    with closing(sqlite3.connect(f"{mirror.resolve().as_uri()}?mode=ro&immutable=1", uri=True)) as con:
        names = [row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            name: {row[1] for row in con.execute("SELECT * FROM pragma_table_info(?)", [name])}
            for name in names
        }


def _present(descriptions: dict[str, str], columns: set[str]) -> dict[str, str]:
    return {name: text for name, text in descriptions.items() if name in columns and text}
