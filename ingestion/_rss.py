"""RSS 0.9x/1.0/2.0 and Atom, through feedparser."""

from __future__ import annotations

import io
import re
from datetime import datetime

import feedparser

from ._dates import checked, from_struct_time
from ._model import ParsedItem, ParseResult, Rejection
from ._text import canonical_url, html_to_text, one_line
from .exceptions import ParseError

_HTML_START = (b"<!doctype html", b"<html")
# Media RSS describes the attached photo or video, but feedparser files
# media:description under the item's description/content and media:title under
# its title. In an item with its own text that is a photo caption, so it goes
# before parsing; in an item that *is* the media (a video feed) it is the text.
_MEDIA_TEXT = re.compile(rb"<media:(description|title|text)\b[^>]*?(?:/>|>.*?</media:\1\s*>)", re.S)
_ITEM = re.compile(rb"<(item|entry)\b.*?</\1\s*>", re.S)
_OWN_TEXT = re.compile(rb"<(?:description|summary|content)\b")


def _drop_media_captions(body: bytes) -> bytes:
    def fix(match: re.Match[bytes]) -> bytes:
        item = match.group(0)
        return _MEDIA_TEXT.sub(b"", item) if _OWN_TEXT.search(item) else item

    return _ITEM.sub(fix, body)


def _first_content(entry: feedparser.FeedParserDict) -> str:
    contents = entry.get("content") or []
    # Prefer an HTML/text body over other content types (e.g. media descriptions).
    for content in contents:
        if "html" in (content.get("type") or "") or "text" in (content.get("type") or ""):
            return content.get("value") or ""
    return contents[0].get("value", "") if contents else ""


def parse_rss(
    body: bytes,
    *,
    source_id: str,
    url: str,
    now: datetime,
    content_type: str | None = None,
    default_language: str | None = None,
) -> ParseResult:
    if not body.strip():
        raise ParseError("empty body", source_id=source_id, url=url)
    if b"<media:" in body:
        body = _drop_media_captions(body)
    headers = {"content-type": content_type} if content_type else {}
    # A file object, never bytes: feedparser treats a bytes/str argument that looks
    # like a path or URL as something to open.
    parsed = feedparser.parse(io.BytesIO(body), response_headers=headers, sanitize_html=True)
    warning = None
    broken = False
    if parsed.get("bozo"):
        exc = parsed.bozo_exception
        warning = f"{type(exc).__name__}: {exc}"
        # Encoding and content-type complaints are notes; anything else means the
        # XML itself is broken (truncated, malformed).
        broken = not isinstance(exc, feedparser.ThingsNobodyCaresAboutButMe)
    if not parsed.entries:
        if not parsed.get("version"):
            head = body.lstrip()[:200].lower()
            if head.startswith(_HTML_START) or b"<html" in head:
                raise ParseError("an HTML page, not a feed", source_id=source_id, url=url)
            raise ParseError(
                f"not an RSS or Atom feed{f' ({warning})' if warning else ''}",
                source_id=source_id,
                url=url,
            )
        if broken:
            raise ParseError(f"unreadable feed: {warning}", source_id=source_id, url=url)
    feed_language = parsed.feed.get("language") or default_language or None
    result = ParseResult(warning=warning, feed_title=one_line(parsed.feed.get("title")) or None)
    seen: dict[str, int] = {}
    for index, entry in enumerate(parsed.entries):
        guid = (entry.get("id") or "").strip() or None
        link = (entry.get("link") or "").strip() or None
        url_id = canonical_url(link)
        identity = guid or url_id
        if not identity:
            result.rejections.append(Rejection(index, "item has neither guid nor link"))
            continue
        if identity in seen:
            result.rejections.append(
                Rejection(index, f"duplicate guid/link in feed (first at item {seen[identity]})", identity)
            )
            continue
        seen[identity] = index
        issues: list[str] = []
        summary_markup = entry.get("summary") or ""
        body_markup = _first_content(entry)
        title = one_line(entry.get("title"))
        summary = html_to_text(summary_markup)
        text = html_to_text(body_markup) if body_markup and body_markup != summary_markup else ""
        if not (title or summary or text):
            result.rejections.append(Rejection(index, "item has no title, summary or body", identity))
            continue
        result.items.append(
            ParsedItem(
                identity=identity,
                guid=guid,
                link=link,
                url=url_id,
                title=title,
                summary=summary,
                body=text,
                byline=one_line(entry.get("author")),
                language=entry.get("language") or feed_language,
                published_at=checked(
                    from_struct_time(entry.get("published_parsed")), now, issues, "published date"
                ),
                # dict.get: feedparser's own lookup quietly falls back to the published date.
                updated_at=checked(
                    from_struct_time(dict.get(entry, "updated_parsed")), now, issues, "updated date"
                ),
                issues=issues,
            )
        )
    return result
