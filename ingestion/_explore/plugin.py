"""Datasette pages for the newsroom: an article's versions with what changed, a
story thread, an entity's mentions, and the Atom change feeds.

Everything from the data is escaped (the templates autoescape; the diff escapes
each piece it marks up): a headline is whatever a feed sent.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import mimetypes
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from datasette import hookimpl
from datasette.database import QueryInterrupted
from datasette.utils import tilde_encode
from datasette.utils.asgi import Base400, Response
from markupsafe import Markup, escape

from ingestion._explore.metadata import DATABASE, PLUGIN

#: Columns holding an id one of our pages shows, and that page.
_PAGE_OF_COLUMN = {
    "article_id": "article",
    "duplicate_of": "article",
    "first_article": "article",
    "thread_id": "thread",
    "merged_into": "thread",
    "entity_id": "entity",
    "entity_a": "entity",
    "entity_b": "entity",
}
_TABLE_OF_PAGE = {"article": "articles", "thread": "story_threads", "entity": "entities"}
_MENTIONS_SHOWN = 500
#: A thread page lists this many articles; the rest are a link to the table away.
_THREAD_ARTICLES_SHOWN = 1_000
#: Words and the spaces between them, so a diff keeps the text's own spacing.
_TOKENS = re.compile(r"\s+|[^\s]+")
#: Tokens a diff compares once the start and end both versions share are set aside:
#: comparing costs their product, so a longer changed stretch is shown taken out and
#: put in whole.
_DIFF_TOKENS = 4_000


@hookimpl
def register_routes() -> list[tuple[str, Any]]:
    return [
        (r"^/article/(?P<article_id>[^/]+)$", article_page),
        (r"^/thread/(?P<thread_id>[^/]+)$", thread_page),
        (r"^/entity/(?P<entity_id>[^/]+)$", entity_page),
        (r"^/feeds/(?P<path>.+)$", feed_file),
    ]


@hookimpl
def prepare_jinja2_environment(env: Any) -> None:
    # Datasette's own encoding of a row id in a URL ("." is "~2E"): urlencode leaves a
    # "." that Datasette then reads as a format, as in "news.json".
    env.filters["row_id"] = lambda value: tilde_encode(str(value))


@hookimpl
def handle_exception(
    datasette: Any, request: Any, exception: Exception
) -> Callable[[], Awaitable[Response]] | None:
    """A request's own error (a 4xx) or a query over the time limit as a short page, without
    a traceback on the console (``serve.explorer_app`` keeps Datasette's own handler, which
    answers the rest, from printing the frames' local variables: the request's headers)."""
    if DATABASE not in datasette.databases:  # another Datasette in this process: its own pages
        return None
    if isinstance(exception, QueryInterrupted):
        status, message = 503, "This page took too long to build from the published snapshot."
    elif isinstance(exception, Base400):
        status, message = exception.status, str(exception.args[0]) if exception.args else "Bad request."
    else:
        return None

    async def page() -> Response:
        if request.path.endswith(".json"):
            return Response.json({"ok": False, "error": message, "status": status}, status=status)
        return await _message_page(datasette, request, message, status)

    return page


@hookimpl
def render_cell(value: Any, column: str, database: str, datasette: Any) -> Markup | None:
    """Ids link to their page here; a reference Datasette already expanded keeps its
    label and gains that link."""
    page = _PAGE_OF_COLUMN.get(column)
    if database != DATABASE or page is None or value in (None, ""):
        return None
    if isinstance(value, dict):  # {"value": id, "label": text}
        row_url = datasette.urls.row(DATABASE, _TABLE_OF_PAGE[page], tilde_encode(str(value["value"])))
        return Markup('<a href="{}">{}</a>&nbsp;<em><a href="{}">{}</a></em>').format(
            page_url(page, value["value"]), value["label"] or value["value"], row_url, value["value"]
        )
    return Markup('<a href="{}">{}</a>').format(page_url(page, value), value)


#: Datasette lists every column's description above a table's rows; folded, the rows
#: (and the search box) come first.
_FOLD_COLUMN_DESCRIPTIONS = """
document.querySelectorAll("dl.column-descriptions").forEach(function (list) {
  var details = document.createElement("details");
  var summary = document.createElement("summary");
  summary.textContent = "What each column means";
  list.parentNode.insertBefore(details, list);
  details.appendChild(summary);
  details.appendChild(list);
});
"""


@hookimpl
def extra_body_script(view_name: str, database: str | None) -> str | None:
    return _FOLD_COLUMN_DESCRIPTIONS if view_name == "table" and database == DATABASE else None


def page_url(page: str, identifier: Any) -> str:
    return f"/{page}/{quote(str(identifier), safe='')}"


async def article_page(datasette: Any, request: Any) -> Response:
    article_id = request.url_vars["article_id"]
    db = datasette.get_database(DATABASE)
    article = await _one(db, "SELECT * FROM articles WHERE article_id = ?", [article_id])
    if article is None:
        return await _not_found(datasette, request, f"No article {article_id!r} in the published snapshot.")
    versions = await _all(
        db, "SELECT * FROM article_versions WHERE article_id = ? ORDER BY version", [article_id]
    )
    # Diffs are worked out in a thread: the server answers other requests meanwhile.
    shown = await asyncio.to_thread(_versions_shown, versions)
    thread = await _one(
        db,
        "SELECT ta.thread_id, ta.is_member, t.label FROM thread_articles AS ta "
        "LEFT JOIN story_threads AS t ON t.thread_id = ta.thread_id WHERE ta.article_id = ?",
        [article_id],
    )
    entities = await _all(
        db,
        "SELECT e.entity_id, e.canonical_name, e.entity_type, count(*) AS mentions "
        "FROM entity_mentions AS m JOIN entities AS e ON e.entity_id = m.entity_id "
        "WHERE m.article_id = ? AND m.is_current GROUP BY e.entity_id, e.canonical_name, e.entity_type "
        "ORDER BY mentions DESC, e.canonical_name",
        [article_id],
    )
    return await _render(
        datasette,
        request,
        "newsroom_article.html",
        {"article": article, "versions": shown, "thread": thread, "entities": entities},
    )


def _versions_shown(versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each version with its fields, the later ones marked up with what changed."""
    shown = []
    previous: dict[str, Any] | None = None
    for version in versions:
        fields = []
        for name in ("title", "summary", "body"):
            text = version.get(name) or ""
            if previous is None:
                fields.append({"name": name, "changed": False, "html": escape(text)})
            else:
                before = previous.get(name) or ""
                fields.append({"name": name, "changed": before != text, "html": word_diff(before, text)})
        shown.append({"row": version, "fields": fields, "withdrawn": _is_withdrawal(version)})
        previous = version
    return shown


async def thread_page(datasette: Any, request: Any) -> Response:
    thread_id = request.url_vars["thread_id"]
    db = datasette.get_database(DATABASE)
    thread = await _one(db, "SELECT * FROM story_threads WHERE thread_id = ?", [thread_id])
    if thread is None:
        message = f"No story thread {thread_id!r} in the published snapshot."
        return await _not_found(datasette, request, message)
    # Publication order: the publisher's time, else when we first saw it (as first_source_id reads it).
    articles = await _all(
        db,
        "SELECT a.article_id, a.source_id, a.title, a.status, "
        "coalesce(a.published_at, a.first_seen_at) AS published, "
        "ta.is_member, ta.duplicate_of, ta.similarity, ta.copy_similarity, ta.joined_at "
        "FROM thread_articles AS ta JOIN articles AS a ON a.article_id = ta.article_id "
        f"WHERE ta.thread_id = ? ORDER BY published, a.article_id LIMIT {_THREAD_ARTICLES_SHOWN}",
        [thread_id],
    )
    members = [a for a in articles if a["is_member"]]
    # Counted over the whole thread, not the articles listed.
    sources = await _all(
        db,
        "SELECT a.source_id, count(*) AS articles, min(coalesce(a.published_at, a.first_seen_at)) AS first "
        "FROM thread_articles AS ta JOIN articles AS a ON a.article_id = ta.article_id "
        "WHERE ta.thread_id = ? AND ta.is_member GROUP BY a.source_id ORDER BY first, a.source_id",
        [thread_id],
    )
    return await _render(
        datasette,
        request,
        "newsroom_thread.html",
        {
            "thread": thread,
            "articles": articles,
            "first": members[0] if members else None,
            "sources": sources,
            "top_entities": _json_list(thread.get("top_entities")),
            "languages": _json_list(thread.get("languages")),
            "articles_shown": _THREAD_ARTICLES_SHOWN,
            "all_articles_url": f"{datasette.urls.table(DATABASE, 'thread_articles')}"
            f"?thread_id={quote(thread_id, safe='')}",
        },
    )


async def entity_page(datasette: Any, request: Any) -> Response:
    entity_id = request.url_vars["entity_id"]
    db = datasette.get_database(DATABASE)
    entity = await _one(db, "SELECT * FROM entities WHERE entity_id = ?", [entity_id])
    if entity is None:
        return await _not_found(datasette, request, f"No entity {entity_id!r} in the published snapshot.")
    total = await _one(db, "SELECT count(*) AS n FROM entity_mentions WHERE entity_id = ?", [entity_id])
    mentions = await _all(
        db,
        "SELECT m.article_id, m.version, m.field, m.surface, m.valid_from, m.is_current, "
        "a.title, a.source_id, a.status FROM entity_mentions AS m "
        "LEFT JOIN articles AS a ON a.article_id = m.article_id WHERE m.entity_id = ? "
        f"ORDER BY m.valid_from DESC, m.article_id, m.version, m.start_char LIMIT {_MENTIONS_SHOWN}",
        [entity_id],
    )
    votes = entity.get("type_votes")
    return await _render(
        datasette,
        request,
        "newsroom_entity.html",
        {
            "entity": entity,
            "aliases": _json_list(entity.get("aliases")),
            "type_votes": json.loads(votes) if votes else {},
            "mentions": mentions,
            "mention_total": total["n"] if total else 0,
            "all_mentions_url": f"{datasette.urls.table(DATABASE, 'entity_mentions')}"
            f"?entity_id={quote(entity_id, safe='')}",
        },
    )


async def feed_file(datasette: Any, request: Any) -> Response:
    """A file of the published feeds folder, read at each request so that a new
    snapshot's feeds are served as soon as it is published."""
    config = datasette.plugin_config(PLUGIN) or {}
    if not config.get("feeds_dir"):
        return Response.text("No feeds are published.", status=404)
    try:
        root = Path(config["feeds_dir"]).resolve()
        path = (root / request.url_vars["path"]).resolve()
        found = path.is_relative_to(root) and path.is_file()
    except (OSError, ValueError):  # a name too long, a NUL
        found = False
    if not found:
        return Response.text("No such feed in the published snapshot.", status=404)
    if path.suffix == ".atom":
        content_type = "application/atom+xml; charset=utf-8"
    else:
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Response(path.read_bytes(), content_type=content_type)


def word_diff(before: str, after: str) -> Markup:
    """``after`` with the words taken out of ``before`` in <del> and the words put in,
    in <ins>; every piece escaped. Bounded: see ``_DIFF_TOKENS``."""
    old, new = _TOKENS.findall(before), _TOKENS.findall(after)
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end = 0
    while end < min(len(old), len(new)) - start and old[-1 - end] == new[-1 - end]:
        end += 1
    old_middle, new_middle = old[start : len(old) - end], new[start : len(new) - end]
    if len(old_middle) > _DIFF_TOKENS or len(new_middle) > _DIFF_TOKENS:
        operations = [("replace", 0, len(old_middle), 0, len(new_middle))]
    else:
        matcher = difflib.SequenceMatcher(None, old_middle, new_middle, autojunk=False)
        operations = matcher.get_opcodes()
    pieces = [str(escape("".join(new[:start])))]
    for operation, a1, a2, b1, b2 in operations:
        if operation == "equal":
            pieces.append(str(escape("".join(new_middle[b1:b2]))))
            continue
        if operation in ("delete", "replace") and a2 > a1:
            pieces.append(f"<del>{escape(''.join(old_middle[a1:a2]))}</del>")
        if operation in ("insert", "replace") and b2 > b1:
            pieces.append(f"<ins>{escape(''.join(new_middle[b1:b2]))}</ins>")
    pieces.append(str(escape("".join(new[len(new) - end :]))))
    return Markup("".join(pieces))


def _is_withdrawal(version: dict[str, Any]) -> bool:
    return bool(version.get("is_withdrawal")) or version.get("event_type") == "article.withdrawn"


def _json_list(text: str | None) -> list[Any]:
    if not text:
        return []
    value = json.loads(text)
    return value if isinstance(value, list) else []


async def _one(db: Any, sql: str, params: list[Any]) -> dict[str, Any] | None:
    rows = await _all(db, sql, params)
    return rows[0] if rows else None


async def _all(db: Any, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    result = await db.execute(sql, params)
    return [dict(row) for row in result.rows]


async def _not_found(datasette: Any, request: Any, message: str) -> Response:
    return await _message_page(datasette, request, message, 404)


async def _message_page(datasette: Any, request: Any, message: str, status: int) -> Response:
    page = await datasette.render_template(
        "newsroom_not_found.html",
        {
            "database": DATABASE,
            "message": message,
            "heading": "Not found" if status == 404 else f"Error {status}",
        },
        request=request,
    )
    return Response.html(page, status=status)


async def _render(datasette: Any, request: Any, template: str, context: dict[str, Any]) -> Response:
    context = {"database": DATABASE, "page_url": page_url, **context}
    return Response.html(await datasette.render_template(template, context, request=request))
