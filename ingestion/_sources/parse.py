"""One fetched body → items, whatever the source kind, within the per-document caps;
and the parsed results kept beside the raw bodies, so the writer need not parse."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import tempfile
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from ingestion._model import ParsedItem, ParseResult
from ingestion._sources.newsml import parse_newsml
from ingestion._sources.ninjs import parse_ninjs
from ingestion._sources.rss import parse_rss
from ingestion._sources.rss_fast import parse_rss_fast
from ingestion.exceptions import ParseError

#: Items read from one document; the rest are counted in the fetch's payload.
MAX_ITEMS_PER_DOCUMENT = 5_000
#: Changes whenever any parser's output for the same body may change: a kept
#: result of another version is parsed again.
PARSER_VERSION = "8"
#: How long a kept result stands for a parse now: dates are judged against the
#: time of parsing (a date more than a day ahead is dropped).
KEPT_RESULT_LIFETIME = timedelta(hours=1)
_ITEM_START = re.compile(rb"<(?:[A-Za-z][\w.-]*:)?(?:item|entry)[\s>/]")
#: The longest text each field keeps, in characters. Far above any real article
#: (the longest news features run to ~100k characters), far below what breaks
#: the steps after ingest (spaCy refuses texts over 1,000,000 characters).
FIELD_CAPS = {"title": 2_000, "byline": 1_000, "summary": 20_000, "body": 300_000}


def cap_fields(item: ParsedItem) -> list[str]:
    """Cut over-long fields at a word boundary; the names of the fields cut.

    The cut is noted in ``item.issues`` (so in the article's payload); the raw
    body keeps the full text, so nothing is lost for good.
    """
    cut = []
    for name, cap in FIELD_CAPS.items():
        text = getattr(item, name)
        if len(text) <= cap:
            continue
        space = text.rfind(" ", cap - 200, cap)
        setattr(item, name, text[: space if space > 0 else cap].rstrip())
        item.issues.append(f"{name} of {len(text):,} characters cut to the first {cap:,}")
        cut.append(name)
    return cut


def parse_body(
    kind: str,
    body: bytes,
    *,
    source_id: str,
    url: str,
    now: datetime,
    content_type: str | None = None,
    language: str | None = None,
) -> ParseResult:
    """Items of one document: at most :data:`MAX_ITEMS_PER_DOCUMENT`, each field
    within its cap; what was cut is counted in the result."""
    items_cut = 0
    if kind == "rss":
        # Cut the bytes before parsing: feedparser holds every item in memory.
        body, items_cut = _cut_items(body)
        # The fast path reads the common RSS 2.0 feed and declines anything else.
        result = parse_rss_fast(
            body, now=now, content_type=content_type, default_language=language
        ) or parse_rss(
            body, source_id=source_id, url=url, now=now, content_type=content_type, default_language=language
        )
    elif kind == "ninjs":
        result = parse_ninjs(body, source_id=source_id, url=url, now=now, default_language=language)
    elif kind == "newsml":
        result = parse_newsml(body, source_id=source_id, url=url, now=now, default_language=language)
    else:
        raise ParseError(f"unknown source kind {kind!r}", source_id=source_id, url=url)
    if len(result.items) > MAX_ITEMS_PER_DOCUMENT:
        items_cut += len(result.items) - MAX_ITEMS_PER_DOCUMENT
        del result.items[MAX_ITEMS_PER_DOCUMENT:]
    result.items_cut += items_cut
    for item in result.items:
        if cut := cap_fields(item):
            result.fields_cut[item.identity] = cut
    return result


def _cut_items(body: bytes) -> tuple[bytes, int]:
    """The document up to its item number :data:`MAX_ITEMS_PER_DOCUMENT` + 1, and
    how many items were cut off."""
    if body.count(b"item") + body.count(b"entry") <= MAX_ITEMS_PER_DOCUMENT:
        return body, 0
    starts = _ITEM_START.finditer(body)
    for position, match in enumerate(starts):
        if position == MAX_ITEMS_PER_DOCUMENT:
            return body[: match.start()], 1 + sum(1 for _ in starts)
    return body, 0


class ParsedResults:
    """Parse results (or the parse error) of fetched bodies, one gzip JSON file per
    body and parse context, written by the fetch tasks and read by the writer.

    A result is found only for the same body, kind, content type and language, by
    the same :data:`PARSER_VERSION`, parsed at most :data:`KEPT_RESULT_LIFETIME`
    before; otherwise the caller parses again.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path_for(self, body_sha256: str, kind: str, content_type: str | None, language: str | None) -> Path:
        context = json.dumps([kind, content_type, language]).encode()
        return (
            self.root / body_sha256[:2] / f"{body_sha256}.{hashlib.sha256(context).hexdigest()[:16]}.json.gz"
        )

    def put(self, path: Path, result: ParseResult | ParseError, parsed_at: datetime) -> None:
        document = {"parser_version": PARSER_VERSION, "parsed_at": parsed_at.isoformat()}
        if isinstance(result, ParseError):
            document["error"] = result.message
        else:
            document["result"] = result.to_dict()
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with (
                os.fdopen(fd, "wb") as raw,
                gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz,
            ):
                gz.write(orjson.dumps(document))
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def prune(self, now: datetime) -> None:
        """Remove the results too old to be used again (kept twice their lifetime, by
        the file's time, so one a fetch task is writing now is never touched): the
        folder holds about two lifetimes of fetches, not every fetch ever made."""
        cutoff = (now - 2 * KEPT_RESULT_LIFETIME).replace(tzinfo=UTC).timestamp()
        with contextlib.suppress(FileNotFoundError), os.scandir(self.root) as folders:
            for folder in folders:
                if not folder.is_dir(follow_symlinks=False):
                    continue
                with os.scandir(folder.path) as files:
                    for file in files:
                        if file.is_file(follow_symlinks=False) and file.stat().st_mtime < cutoff:
                            with contextlib.suppress(FileNotFoundError):
                                os.unlink(file.path)

    def get(self, path: Path, now: datetime, *, source_id: str, url: str) -> ParseResult | ParseError | None:
        """The kept result, or None when there is none that stands for a parse at ``now``."""
        try:
            document = orjson.loads(gzip.decompress(path.read_bytes()))
            if document.get("parser_version") != PARSER_VERSION:
                return None
            parsed_at = datetime.fromisoformat(document["parsed_at"])
            if abs(now - parsed_at) > KEPT_RESULT_LIFETIME:
                return None
            if "error" in document:
                return ParseError(document["error"], source_id=source_id, url=url)
            return ParseResult.from_dict(document["result"])
        except (OSError, EOFError, zlib.error, ValueError, KeyError, TypeError):
            return None  # missing, damaged or of an unknown shape: parsed again
