"""Atom feeds of what changed in the news: every revision and withdrawal of a snapshot.

``changes.atom`` covers every source; ``sources/<slug>.atom`` one source each. Entries
are newest first and link to the explorer's page of the article version. The files
depend on the snapshot and the ``updated`` time alone, so the same snapshot always
gives the same bytes.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from difflib import SequenceMatcher
from pathlib import Path
from urllib.parse import quote

import duckdb

ATOM_NS = "http://www.w3.org/2005/Atom"
#: The authority of our tag: URIs. `.invalid` names are reserved never to be
#: registered, so the ids cannot clash with anyone else's.
TAG_PREFIX = "tag:newsroom.invalid,2026:"
#: Where the feeds are served, for the feeds' links to themselves.
FEEDS_PATH = "/feeds"

HEADLINE_CHARS = 300
SUMMARY_CHARS = 2000
SUMMARY_WORDS = 300
#: Unchanged words kept on each side of a change in the summary's word diff.
CONTEXT_WORDS = 6
#: Words shown of one removed or added run: the diff is a pointer to the page, not a copy.
CHANGED_WORDS = 40
SLUG_CHARS = 60

# Characters XML 1.0 does not allow in a document, whatever the escaping.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_UNSAFE_IN_NAME = re.compile(r"[^a-z0-9._-]+")
_HASH_SUFFIX = re.compile(r"-[0-9a-f]{12}$")
# Names Windows refuses for a file whatever the extension.
_RESERVED_NAMES = {"con", "prn", "aux", "nul"} | {f"{p}{n}" for p in ("com", "lpt") for n in range(10)}

_CHANGES_SQL = f"""
WITH versions AS (
    SELECT
        article_id, version, source_id, event_seq,
        coalesce(valid_from, recorded_at) AS changed_at,
        coalesce(is_withdrawal, false) AS is_withdrawal,
        coalesce(title_changed, false) AS title_changed,
        coalesce(summary_changed, false) AS summary_changed,
        coalesce(body_changed, false) AS body_changed,
        left(title, {HEADLINE_CHARS * 2}) AS title,
        left(previous_title, {HEADLINE_CHARS * 2}) AS previous_title,
        left(summary, {SUMMARY_CHARS}) AS summary,
        left(lag(summary) OVER (PARTITION BY article_id ORDER BY version), {SUMMARY_CHARS})
            AS previous_summary,
        body_chars_removed, body_chars_added
    FROM marts.article_versions
),
changes AS (
    SELECT * FROM versions
    WHERE is_withdrawal OR (version > 1 AND (title_changed OR summary_changed OR body_changed))
),
ranked AS (
    SELECT
        *,
        row_number() OVER (ORDER BY changed_at DESC NULLS LAST, event_seq DESC NULLS LAST,
                           article_id, version DESC) AS overall_rank,
        row_number() OVER (PARTITION BY source_id
                           ORDER BY changed_at DESC NULLS LAST, event_seq DESC NULLS LAST,
                                    article_id, version DESC) AS source_rank
    FROM changes
)
SELECT
    article_id, version, source_id, epoch_us(changed_at), is_withdrawal,
    title_changed, summary_changed, body_changed, title, previous_title,
    summary, previous_summary, body_chars_removed, body_chars_added, overall_rank <= $max_entries
FROM ranked
WHERE overall_rank <= $max_entries OR source_rank <= $max_entries
ORDER BY overall_rank
"""


@dataclass(frozen=True)
class _Change:
    article_id: str
    version: int
    source_id: str | None
    changed_at: datetime | None
    is_withdrawal: bool
    title_changed: bool
    summary_changed: bool
    body_changed: bool
    title: str
    previous_title: str
    summary: str
    previous_summary: str
    body_chars_removed: int | None
    body_chars_added: int | None
    in_overall_feed: bool


def write_change_feeds(
    con: duckdb.DuckDBPyConnection, out_dir: Path, *, updated: datetime, max_entries: int = 200
) -> list[Path]:
    """Write ``changes.atom`` and ``sources/<slug>.atom`` (one per source, see
    :func:`feed_slug`) under ``out_dir`` from the marts ``con`` reads; returns the
    files written. Each feed holds its newest ``max_entries`` changes; ``updated``
    (naive means UTC) is the feeds' own time."""
    if max_entries < 1:
        raise ValueError("max_entries must be at least 1")
    changes = [
        _Change(
            article_id=str(row[0]),
            version=int(row[1]),
            source_id=row[2],
            changed_at=_from_epoch_us(row[3]),
            is_withdrawal=row[4],
            title_changed=row[5],
            summary_changed=row[6],
            body_changed=row[7],
            title=row[8] or "",
            previous_title=row[9] or "",
            summary=row[10] or "",
            previous_summary=row[11] or "",
            body_chars_removed=row[12],
            body_chars_added=row[13],
            in_overall_feed=row[14],
        )
        for row in con.execute(_CHANGES_SQL, {"max_entries": max_entries}).fetchall()
    ]
    source_ids = {
        row[0] for row in con.execute("SELECT DISTINCT source_id FROM marts.sources").fetchall()
    } | {change.source_id for change in changes}
    source_ids.discard(None)
    feed_time = updated.replace(tzinfo=UTC) if updated.tzinfo is None else updated.astimezone(UTC)

    out_dir = Path(out_dir)
    (out_dir / "sources").mkdir(parents=True, exist_ok=True)
    written = [
        _write_feed(
            out_dir / "changes.atom",
            feed_id=f"{TAG_PREFIX}feeds/changes",
            title="Changes: every source",
            self_href=f"{FEEDS_PATH}/changes.atom",
            updated=feed_time,
            changes=(c for c in changes if c.in_overall_feed),
        )
    ]
    for source_id in sorted(source_ids):
        slug = feed_slug(source_id)
        own = [c for c in changes if c.source_id == source_id][:max_entries]
        written.append(
            _write_feed(
                out_dir / "sources" / f"{slug}.atom",
                feed_id=f"{TAG_PREFIX}feeds/source/{quote(source_id, safe='')}",
                title=f"Changes: {_one_line(source_id, HEADLINE_CHARS)}",
                self_href=f"{FEEDS_PATH}/sources/{slug}.atom",
                updated=feed_time,
                changes=own,
            )
        )
    return written


def feed_slug(source_id: str) -> str:
    """The file name (without ``.atom``) of a source's feed: the id itself when it is
    already a plain lowercase name, else a readable version of it plus a hash of the id,
    so that no two ids share a file, even on a case-insensitive file system."""
    ascii_id = unicodedata.normalize("NFKD", source_id).encode("ascii", "ignore").decode("ascii")
    readable = _UNSAFE_IN_NAME.sub("-", ascii_id.lower()).strip(".-_")[:SLUG_CHARS].rstrip(".-_")
    # A name that already ends like a hashed one is hashed too, so the two kinds never meet.
    if (
        readable
        and readable == source_id
        and not _HASH_SUFFIX.search(readable)
        and readable.split(".")[0] not in _RESERVED_NAMES
    ):
        return readable
    digest = hashlib.sha256(source_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{readable or 'source'}-{digest}"


def _write_feed(
    path: Path,
    *,
    feed_id: str,
    title: str,
    self_href: str,
    updated: datetime,
    changes: Iterable[_Change],
) -> Path:
    feed = ET.Element("feed", xmlns=ATOM_NS)
    _text(feed, "id", feed_id)
    _text(feed, "title", title)
    _text(feed, "updated", _rfc3339(updated))
    ET.SubElement(feed, "link", rel="self", type="application/atom+xml", href=self_href)
    _text(ET.SubElement(feed, "author"), "name", "newsroom")
    for change in changes:
        feed.append(_entry(change, fallback_time=updated))
    ET.indent(feed)
    ET.ElementTree(feed).write(path, encoding="utf-8", xml_declaration=True)
    return path


def _entry(change: _Change, *, fallback_time: datetime) -> ET.Element:
    entry = ET.Element("entry")
    article = quote(change.article_id, safe="")
    _text(entry, "id", f"{TAG_PREFIX}article/{article}/v{change.version}")
    _text(entry, "title", _entry_title(change))
    _text(entry, "updated", _rfc3339(change.changed_at or fallback_time))
    _text(ET.SubElement(entry, "author"), "name", _one_line(change.source_id or "unknown source", 200))
    href = f"/article/{article}#v{change.version}"
    ET.SubElement(entry, "link", rel="alternate", type="text/html", href=href)
    for term in _kinds(change):
        ET.SubElement(entry, "category", term=term)
    _text(entry, "content", ET.tostring(_content(change), encoding="unicode"), type="html")
    return entry


def _kinds(change: _Change) -> list[str]:
    """What the entry reports, as the words used in its categories and text."""
    kinds = ["withdrawn"] if change.is_withdrawal else []
    flags = {"headline": change.title_changed, "summary": change.summary_changed, "text": change.body_changed}
    return kinds + [name for name, changed in flags.items() if changed]


def _entry_title(change: _Change) -> str:
    if change.is_withdrawal:
        # A wire kill rewrites the headline ("KILLED - ..."); the one readers knew is the previous.
        return f'Withdrawn: "{_one_line(change.previous_title or change.title, HEADLINE_CHARS)}"'
    if change.title_changed:
        before = _one_line(change.previous_title, HEADLINE_CHARS)
        return f'Headline changed: "{before}" → "{_one_line(change.title, HEADLINE_CHARS)}"'
    return f'Text revised: "{_one_line(change.title, HEADLINE_CHARS)}"'


def _content(change: _Change) -> ET.Element:
    """The entry's body as an XHTML fragment: what changed, the headline before and
    after, a word diff of the summary and the size of the text change."""
    div = ET.Element("div")
    changed = [kind for kind in _kinds(change) if kind != "withdrawn"]
    lead = "Withdrawn." if change.is_withdrawal else "Revised."
    if changed:
        lead += f" Changed: {_listed(changed)}."
    _text(div, "p", f"{lead} Version {change.version}.")
    if change.title_changed:
        _labelled(div, "Headline before: ", "del", _one_line(change.previous_title, HEADLINE_CHARS))
        _labelled(div, "Headline after: ", "ins", _one_line(change.title, HEADLINE_CHARS))
    else:
        _labelled(div, "Headline: ", "span", _one_line(change.title, HEADLINE_CHARS))
    if change.summary_changed:
        summary = _text(div, "p", "Summary:")
        for kind, words in _word_diff(change.previous_summary, change.summary):
            if kind == "equal":
                _append_text(summary, f" {words}")
            else:
                _append_text(summary, " ")
                _text(summary, "del" if kind == "delete" else "ins", words)
    if change.body_changed:
        removed, added = change.body_chars_removed, change.body_chars_added
        sizes = f": {removed or 0} characters removed, {added or 0} added" if removed or added else ""
        _text(div, "p", f"Text changed{sizes}.")
    return div


def _word_diff(before: str, after: str) -> list[tuple[str, str]]:
    """(``equal`` | ``delete`` | ``insert``, words) runs turning ``before`` into
    ``after``; long unchanged runs are cut to a few words of context."""
    old = _clean(before).split()[:SUMMARY_WORDS]
    new = _clean(after).split()[:SUMMARY_WORDS]
    opcodes = SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes()
    runs: list[tuple[str, str]] = []
    for index, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            words = old[i1:i2]
            keep_head = CONTEXT_WORDS if index > 0 else 0
            keep_tail = CONTEXT_WORDS if index < len(opcodes) - 1 else 0
            if len(words) > keep_head + keep_tail + 1:
                words = [*words[:keep_head], "…", *words[len(words) - keep_tail :]]
            runs.append(("equal", " ".join(words)))
            continue
        if i2 > i1:
            runs.append(("delete", _some_words(old[i1:i2])))
        if j2 > j1:
            runs.append(("insert", _some_words(new[j1:j2])))
    return runs


def _some_words(words: list[str]) -> str:
    return " ".join(words if len(words) <= CHANGED_WORDS else [*words[:CHANGED_WORDS], "…"])


def _labelled(parent: ET.Element, label: str, tag: str, value: str) -> None:
    paragraph = _text(parent, "p", label)
    _text(paragraph, tag, value)


def _text(parent: ET.Element, tag: str, value: str, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    element.text = _clean(value)
    return element


def _append_text(element: ET.Element, value: str) -> None:
    """Add text after the last child of ``element`` (mixed content)."""
    value = _clean(value)
    if len(element):
        last = element[-1]
        last.tail = (last.tail or "") + value
    else:
        element.text = (element.text or "") + value


def _clean(value: str) -> str:
    return _NOT_XML.sub("", value)


def _one_line(value: str, limit: int) -> str:
    text = " ".join(_clean(value).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _listed(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _from_epoch_us(microseconds: int | None) -> datetime | None:
    # Read as epoch microseconds so naive (UTC) and zoned timestamps need no session time zone.
    if microseconds is None:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=microseconds)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
