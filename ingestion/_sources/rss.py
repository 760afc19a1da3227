"""RSS 0.9x/1.0/1.1/2.0 and Atom, through feedparser."""

from __future__ import annotations

import bisect
import codecs
import io
import math
import re
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

import feedparser

from ingestion._model import ParsedItem, ParseResult, Rejection
from ingestion._sources.dates import checked, from_struct_time, loose_reading, names_day, read_datetime
from ingestion._sources.text import as_seen, canonical_url, html_to_text, one_line, web_url, without_scheme
from ingestion.exceptions import DateRefused, ParseError

_HTML_START = (b"<!doctype html", b"<html")
#: RSS 1.1 has no version attribute for feedparser to report; its namespace says it.
_RSS11_NAMESPACE = "http://purl.org/net/rss1.1#"
#: An ampersand written as a character reference, which feedparser's loose parser leaves in links.
_NUMERIC_AMPERSAND = re.compile(r"&#(?:0*38|[xX]0*26);")
#: The start and end of an item or entry, and the end of a feed, with or without a prefix.
_ANY_ITEM_START = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)(?=[\s/>])")
_ANY_ITEM_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?(?:item|entry)\s*>")
_FEED_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?(?:rss|feed|RDF)\s*>")

# Media RSS describes the attached photo or video, but feedparser files
# media:description under the item's description/content and media:title under
# its title. In an item with its own text that is a photo caption, so it goes
# before parsing; in an item that *is* the media (a video feed) it is the text.
# An item runs from <item> or <entry> to the first matching closing tag; a media
# element from its start tag (no "<" inside) to "/>" or to its first closing tag
# inside the item.
_ITEM_NAMES = (b"item", b"entry")
_MEDIA_NAMES = (b"description", b"title", b"text")


def _subsets(names: tuple[bytes, ...]) -> list[tuple[bytes, ...]]:
    return [tuple(n for i, n in enumerate(names) if mask >> i & 1) for mask in range(1 << len(names))]


_ITEM_START = {
    names: re.compile(rb"<(" + b"|".join(names) + rb")\b") for names in _subsets(_ITEM_NAMES) if names
}
_ITEM_END = {name: re.compile(rb"</" + name + rb"\s*>") for name in _ITEM_NAMES}
# Per set of names that may still close in the item: a self-closing media element
# of any name, or the start tag of one that may close.
_MEDIA_TEXT_START = {
    names: re.compile(
        rb"<media:(?:(?:description|title|text)\b[^<>]*/>"
        + (rb"|(" + b"|".join(names) + rb")\b[^<>]*>" if names else b"")
        + rb")"
    )
    for names in _subsets(_MEDIA_NAMES)
}
_MEDIA_TEXT_END = {name: re.compile(rb"</media:" + name + rb"\s*>") for name in _MEDIA_NAMES}
_OWN_TEXT = re.compile(rb"<(?:description|summary|content)\b")


class _NextMatch:
    """The first match of a pattern at or after a position, for positions that never
    go back: an answer is reused for every later position it still answers, so all
    the questions together scan the body about once. This is what keeps an
    unclosed tag repeated a million times linear instead of quadratic."""

    def __init__(self, pattern: re.Pattern[bytes], body: bytes) -> None:
        self._pattern, self._body = pattern, body
        self._asked_at = -1
        self._found: re.Match[bytes] | None = None

    def at_or_after(self, position: int) -> re.Match[bytes] | None:
        answered = 0 <= self._asked_at <= position and (
            self._found is None or self._found.start() >= position
        )
        if not answered:
            self._asked_at = position
            self._found = self._pattern.search(self._body, position)
        return self._found


def _drop_media_captions(body: bytes) -> bytes:
    """``body`` without the media description/title/text elements of items that
    have their own text; linear in the size of ``body``."""
    item_ends = {name: _NextMatch(pattern, body) for name, pattern in _ITEM_END.items()}
    media_ends = {name: _NextMatch(pattern, body) for name, pattern in _MEDIA_TEXT_END.items()}
    open_names = _ITEM_NAMES
    kept: list[bytes] = []
    copied_up_to = position = 0
    while open_names:
        start = _ITEM_START[open_names].search(body, position)
        if start is None:
            break
        end = item_ends[start.group(1)].at_or_after(start.end())
        if end is None:  # no closing tag from here on: no later item of this name closes either
            open_names = tuple(name for name in open_names if name != start.group(1))
            position = start.start() + 1
            continue
        item_end = end.end()
        if _OWN_TEXT.search(body, start.start(), item_end):
            opaque = _opaque_spans(body, start.end(), item_end)
            for drop_start, drop_end in _media_text_spans(body, start.end(), item_end, media_ends):
                at = bisect.bisect_right(opaque, (drop_start, math.inf)) - 1
                if at >= 0 and opaque[at][0] <= drop_start < opaque[at][1]:
                    continue  # "<media:title>" written as text in a CDATA section or a comment
                kept.append(body[copied_up_to:drop_start])
                copied_up_to = drop_end
        position = item_end
    if not kept:
        return body
    kept.append(body[copied_up_to:])
    return b"".join(kept)


_OPAQUE_START = re.compile(rb"<!\[CDATA\[|<!--")


def _opaque_spans(body: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """The CDATA sections and comments between ``start`` and ``end`` (neither nests in
    XML), in order: markup written inside them is text. One scan of the item."""
    spans: list[tuple[int, int]] = []
    if body.find(b"<!", start, end) < 0:
        return spans
    position = start
    while opened := _OPAQUE_START.search(body, position, end):
        closing = b"]]>" if opened.group() == b"<![CDATA[" else b"-->"
        stop = body.find(closing, opened.end(), end)
        position = end if stop < 0 else stop + len(closing)
        spans.append((opened.start(), position))
    return spans


def _media_text_spans(
    body: bytes, position: int, item_end: int, media_ends: dict[bytes, _NextMatch]
) -> list[tuple[int, int]]:
    """Where the media text elements between ``position`` and ``item_end`` are."""
    spans = []
    may_close = _MEDIA_NAMES
    while True:
        start = _MEDIA_TEXT_START[may_close].search(body, position, item_end)
        if start is None:
            return spans
        name = start.group(1)
        if name is None:  # self-closing
            spans.append((start.start(), start.end()))
            position = start.end()
            continue
        end = media_ends[name].at_or_after(start.end())
        if end is not None and end.end() <= item_end:
            spans.append((start.start(), end.end()))
            position = end.end()
        else:  # never closed in this item: later elements of this name cannot close either
            may_close = tuple(n for n in may_close if n != name)
            position = start.end()


# Byte order marks, longest first (the UTF-32 LE mark starts like the UTF-16 LE one).
_BOMS = (
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)
# First bytes of a document with no byte order mark that is not ASCII-compatible
# (UTF-16/32 without a mark, EBCDIC): feedparser's own sniffing reads those.
_NOT_ASCII_START = re.compile(rb"\x00|\x4c\x6f\xa7\x94")
_XML_DECLARED_ENCODING = re.compile(rb"\s*<\?xml[^>]*?\sencoding\s*=\s*[\"']([\w.:-]+)[\"']")
_DECLARATION_ENCODING = re.compile(r"\A(\s*<\?xml[^>]*?\sencoding\s*=\s*)([\"'])[^\"']*\2")
_CHARSET = re.compile(r";\s*charset\s*=\s*[\"']?([^\s\"';]+)", re.I)
# One well-formed UTF-8 sequence of two or more bytes.
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
# Encodings (by codec name) whose names publishers give for their supersets, as
# browsers read them: "iso-8859-1" text with curly quotes is windows-1252.
_SUPERSETS = {"iso8859-1": "cp1252", "gb2312": "gb18030", "ascii": "utf-8"}


def _ascii_compatible(encoding: str) -> str | None:
    """The codec for a declared encoding name, when it is known and reads ASCII as
    ASCII (a declaration readable in ASCII cannot truthfully name UTF-16)."""
    try:
        name = codecs.lookup(encoding).name
        name = _SUPERSETS.get(name, name)
        return name if b"<?xml".decode(name) == "<?xml" else None
    except (LookupError, UnicodeDecodeError):
        return None


def _to_utf8(body: bytes, content_type: str | None) -> tuple[bytes, dict[str, str], list[str]]:
    """The document as UTF-8 bytes that feedparser cannot misread, the headers to
    give it, and notes on what did not decode as declared.

    The encoding is the byte order mark's, else the XML declaration's, else the
    HTTP charset's, else UTF-8 (the XML default). Bytes invalid in it become
    U+FFFD, so one bad byte spoils one character, not the whole document (left to
    feedparser, it would retry everything as windows-1252 or iso-8859-2).
    """
    headers = {"content-type": content_type} if content_type else {}
    notes = []
    encoding = "utf-8"
    for bom, bom_encoding in _BOMS:
        if body.startswith(bom):
            encoding, body = bom_encoding, body[len(bom) :]
            break
    else:
        if _NOT_ASCII_START.search(body[:4]):
            return body, headers, notes
        declared = _XML_DECLARED_ENCODING.match(body)
        charset = _CHARSET.search(content_type or "")
        names = [declared.group(1).decode("ascii")] if declared else []
        names += [charset.group(1)] if charset else []
        usable = [codec for codec in map(_ascii_compatible, names) if codec]
        if usable:
            encoding = usable[0]
        elif names:
            notes.append(f"unknown encoding {names[0]!r}; read as UTF-8")
        if not declared and encoding in _SINGLE_BYTE and _valid_utf8_beyond_ascii(body):
            # A server's header, not the document, named a single-byte charset, and the
            # bytes read as UTF-8: the header is wrong (text in a single-byte charset is
            # valid UTF-8 beyond ASCII only by rare accident). Trusting it would make the
            # reading follow a header that can differ between fetches of the same feed
            # (two servers behind one name), recording a false revision of every item.
            notes.append(f"valid UTF-8 although the server said charset {names[0]!r}; read as UTF-8")
            encoding = "utf-8"
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        text = body.decode(encoding, errors="replace")
        if encoding == "utf-8" and _mostly_invalid(body, text):
            # A single-byte document, declared or not: a few of its letter pairs may happen
            # to be valid UTF-8 ("ß“"), which must not turn every other letter into U+FFFD.
            text = body.decode("windows-1252", errors="replace")
            notes.append("not UTF-8 as declared or presumed; read as windows-1252")
        else:
            notes.append(
                f"bytes invalid in {exc.encoding} replaced by U+FFFD (the first at byte {exc.start})"
            )
    text = _DECLARATION_ENCODING.sub(r"\g<1>\g<2>utf-8\g<2>", text, count=1)
    if content_type:
        headers["content-type"] = f"{content_type.split(';', 1)[0].strip()}; charset=utf-8"
    return text.encode("utf-8"), headers, notes


#: The common single-byte codecs, as ``codecs.lookup`` names them (iso-8859-1 is read
#: as cp1252): they give every byte a character, so a header naming one cannot be told
#: wrong by the bytes failing to decode.
_SINGLE_BYTE = frozenset(
    {"cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "iso8859-2", "iso8859-5", "iso8859-7", "iso8859-9",
     "iso8859-15", "koi8-r"}
)  # fmt: skip


def _valid_utf8_beyond_ascii(body: bytes) -> bool:
    if body.isascii():
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _mostly_invalid(body: bytes, replaced: str) -> bool:
    """Whether ``body`` has more bytes invalid in UTF-8 (each a U+FFFD in ``replaced``,
    its UTF-8 reading) than valid UTF-8 sequences of more than one byte."""
    invalid = replaced.count("\ufffd") - body.count("\ufffd".encode())
    return invalid > len(_UTF8_MULTIBYTE.findall(body))


def prepared(body: bytes, content_type: str | None) -> tuple[bytes, dict[str, str], list[str]]:
    """The document as both parsers read it: UTF-8 (see ``_to_utf8``), media captions
    of items with their own text dropped; the headers to give feedparser, and notes."""
    body, headers, notes = _to_utf8(body, content_type)
    if b"<media:" in body:
        body = _drop_media_captions(body)
    if b"&#" in body:
        body = _NUMERIC_REFERENCE.sub(_no_character_for, body)
    return body, headers, notes


_NUMERIC_REFERENCE = re.compile(rb"&#(?:[xX]([0-9A-Fa-f]{1,16})|([0-9]{1,24}));")


def _no_character_for(reference: re.Match[bytes]) -> bytes:
    """A reference to a code point no text can hold (a surrogate, past U+10FFFF) as
    U+FFFD: feedparser fails on the whole feed for one, where one character is lost."""
    hexadecimal, decimal = reference.groups()
    code = int(hexadecimal, 16) if hexadecimal else int(decimal)
    return b"&#xFFFD;" if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF else reference.group()


DateFallback = time.struct_time | Callable[[], time.struct_time | None] | None


@dataclass(slots=True)
class FeedEntry:
    """One entry's fields as feedparser presents them, before our cleaning."""

    guid: str | None = None
    link: str | None = None
    #: Whether the entry has link elements (feedparser offers a permalink guid as
    #: the link when it has none).
    has_links: bool = False
    title: str | None = None
    summary_markup: str = ""
    body_markup: str = ""
    author: str | None = None
    language: str | None = None
    published: str | None = None
    updated: str | None = None
    #: feedparser's own reading of the dates (or how to get it), for formats the
    #: strict reader does not know.
    published_parsed: DateFallback = None
    updated_parsed: DateFallback = None
    #: Which of "title", "summary" and "body" are plain text (an Atom text construct, an
    #: RSS title without markup): a "<" in them is a character, not a tag's start.
    plain: frozenset[str] = frozenset()


def _first_content(entry: feedparser.FeedParserDict) -> feedparser.FeedParserDict | None:
    contents = entry.get("content") or []
    # Prefer an HTML/text body over other content types (e.g. media descriptions).
    for content in contents:
        if "html" in (content.get("type") or "") or "text" in (content.get("type") or ""):
            return content
    return contents[0] if contents else None


def _is_plain(detail: feedparser.FeedParserDict | None) -> bool:
    return detail is not None and detail.get("type") == "text/plain"


def _feed_entry(entry: feedparser.FeedParserDict, *, read_loosely: bool = False) -> FeedEntry:
    """``read_loosely``: by feedparser's loose parser, which it falls back to for a document
    that is not well-formed XML (one ``&nbsp;`` anywhere in it). That parser leaves an
    ``&amp;`` in a guid or an Atom id as written (``?p=1&amp;lang=en``), and a numeric
    ampersand in a link (WordPress's ``&#038;``, whose ``#`` then cuts the link), which its
    strict parser resolves; the other escapes there it resolves itself. Those two are
    resolved here, once, so the same item reads the same in either document."""
    # dict.get for dates: feedparser's own lookup quietly falls back to the published date.
    published, updated = dict.get(entry, "published"), dict.get(entry, "updated")
    guid, link = entry.get("id"), entry.get("link")
    if read_loosely:
        guid = guid.replace("&amp;", "&") if isinstance(guid, str) else guid
        link = _NUMERIC_AMPERSAND.sub("&", link) if isinstance(link, str) else link
    content = _first_content(entry)
    details = {"title": entry.get("title_detail"), "summary": entry.get("summary_detail"), "body": content}
    return FeedEntry(
        guid=guid,
        link=link,
        has_links=bool(entry.get("links")),
        title=entry.get("title"),
        summary_markup=entry.get("summary") or "",
        body_markup=(content.get("value") or "") if content is not None else "",
        author=entry.get("author"),
        language=entry.get("language"),
        published=published if isinstance(published, str) else None,
        updated=updated if isinstance(updated, str) else None,
        published_parsed=dict.get(entry, "published_parsed"),
        updated_parsed=dict.get(entry, "updated_parsed"),
        plain=frozenset(name for name, detail in details.items() if _is_plain(detail)),
    )


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
    body, headers, notes = prepared(body, content_type)
    # A file object, never bytes: feedparser treats a bytes/str argument that looks
    # like a path or URL as something to open.
    parsed = feedparser.parse(io.BytesIO(body), response_headers=headers, sanitize_html=True)
    broken = False
    if parsed.get("bozo"):
        exc = parsed.bozo_exception
        notes.append(f"{type(exc).__name__}: {exc}")
        # Encoding and content-type complaints are notes; anything else means the
        # XML itself is broken (truncated, malformed).
        broken = not isinstance(exc, feedparser.ThingsNobodyCaresAboutButMe)
    warning = "; ".join(notes) or None
    if not parsed.entries:
        if not parsed.get("version") and _RSS11_NAMESPACE not in parsed.get("namespaces", {}).values():
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
    entries, cut_off = parsed.entries, []
    if broken and entries and _ends_inside_an_item(body):
        # A document that breaks off (a dropped connection, a server's output cut at a
        # size) ends inside its last item, which the lenient parser still offers with part
        # of its text: a revision that never happened.
        entries, cut_off = entries[:-1], entries[-1:]
    result = result_of(
        (_feed_entry(entry, read_loosely=broken) for entry in entries),
        feed_title=parsed.feed.get("title"),
        feed_language=parsed.feed.get("language") or default_language or None,
        warning=warning,
        now=now,
    )
    for index, entry in enumerate(cut_off, start=len(entries)):
        identity = (entry.get("id") or entry.get("link") or "").strip() or None
        result.rejections.append(
            Rejection(index, "item cut off: the document breaks off before its end", identity)
        )
    return result


def _ends_inside_an_item(body: bytes) -> bool:
    """Whether the document ends inside its last item: neither an item's end nor the
    feed's follows the last item's start tag (markup in CDATA sections and comments is text).
    False for a body these byte patterns cannot read (UTF-16): it is not known to be cut."""
    opaque = _opaque_spans(body, 0, len(body))

    def is_markup(found: re.Match[bytes]) -> bool:
        at = bisect.bisect_right(opaque, (found.start(), math.inf)) - 1
        return not (at >= 0 and opaque[at][0] <= found.start() < opaque[at][1])

    last_start = None
    for found in _ANY_ITEM_START.finditer(body):
        if is_markup(found):
            last_start = found
    if last_start is None or body.find(b">", last_start.end()) < 0:
        return False  # none, or one cut inside its start tag: no entry was opened for it
    return not any(
        is_markup(found)
        for end in (_ANY_ITEM_END, _FEED_END)
        for found in end.finditer(body, last_start.end())
    )


def _addressed(entries: Iterable[FeedEntry]) -> list[tuple[str | None, str | None, str | None, FeedEntry]]:
    """Each entry's guid and link, trimmed (None when empty), and its link's ``web_url``:
    only a web page's link is published as the article's url."""
    read = []
    for entry in entries:
        link = (entry.link or "").strip() or None
        read.append(((entry.guid or "").strip() or None, link, web_url(link), entry))
    return read


def result_of(
    entries: Iterable[FeedEntry],
    *,
    feed_title: str | None,
    feed_language: str | None,
    warning: str | None,
    now: datetime,
) -> ParseResult:
    """Entries to items: identities, duplicates, clean text, strictly read dates."""
    result = ParseResult(warning=warning, feed_title=one_line(feed_title) or None)
    seen: dict[str, int] = {}
    read = _addressed(entries)
    # A guid an item without a page has is that item's: nothing else identifies it.
    unpaged = {guid for guid, _, url_id, _ in read if guid and not url_id}
    # a guid -> the pages of its items (without their schemes), each with the identity it took
    pages_of_guid: dict[str, dict[str, str]] = {}
    for index, (guid, link, url_id, entry) in enumerate(read):
        # the canonical form of whatever link there is, as it always was
        identity = guid or url_id or canonical_url(link)
        if not identity:
            result.rejections.append(Rejection(index, "item has neither guid nor link"))
            continue
        issues: list[str] = []
        page = without_scheme(url_id) if url_id else None
        if guid is not None and page:
            pages = pages_of_guid.setdefault(guid, {} if guid in unpaged else {page: guid})
            if page in pages:  # a page listed again (at either scheme): a duplicate
                identity = pages[page]
            elif url_id not in seen:
                # One guid on items of different pages (a site's address, "0"): the guid tells
                # them apart no more, their pages do. Which of them is the article the log
                # holds under the guid is the writer's to decide (``follow_shared_guids``).
                issues.append(
                    f"guid {guid[:100]!r} also given to another page's item: identified by its link"
                )
                identity = pages[page] = url_id
        if identity in seen:
            result.rejections.append(
                Rejection(index, f"duplicate guid/link in feed (first at item {seen[identity]})", identity)
            )
            continue
        seen[identity] = index
        # Without link elements feedparser offers the guid as the link: nothing to note.
        if link and not url_id and entry.has_links:
            issues.append(f"link {link[:100]!r} is not a web (http/https) address; not published")
        title, summary, text, earlier_reading = _texts(entry)
        if not (title or summary or text):
            result.rejections.append(Rejection(index, "item has no title, summary or body", identity))
            continue
        # In this order: the issues list the published date's problems first.
        published = checked(
            _entry_date(entry.published, entry.published_parsed, "published", issues),
            now,
            issues,
            "published date",
        )
        updated = checked(
            _entry_date(entry.updated, entry.updated_parsed, "updated", issues), now, issues, "updated date"
        )
        result.items.append(
            ParsedItem(
                identity=identity,
                guid=guid,
                link=link,
                url=url_id,
                title=title,
                summary=summary,
                body=text,
                byline=one_line(entry.author),
                language=entry.language or feed_language,
                published_at=published,
                updated_at=updated,
                issues=issues,
                earlier_reading=earlier_reading,
            )
        )
    return result


def _texts(entry: FeedEntry) -> tuple[str, str, str, tuple[str, str, str] | None]:
    """The entry's title, summary and body as text, and as parser version 7 read them if
    that differs (``ParsedItem.earlier_reading``)."""
    fields = {"title": entry.title or "", "summary": entry.summary_markup, "body": entry.body_markup}

    def read(plain: Collection[str]) -> tuple[str, str, str]:
        title, summary, body = (
            value.replace("<", "&lt;") if name in plain else value for name, value in fields.items()
        )
        return one_line(title), html_to_text(summary), html_to_text(body) if body and body != summary else ""

    earlier = read(())
    escaped = any("<" in fields[name] for name in entry.plain)
    title, summary, body = read(entry.plain) if escaped else earlier
    # A body that says what the summary says is none, whatever its markup and spacing: a
    # feed that writes the two a little differently from one fetch to the next revises nothing.
    if body and as_seen(body).split() == as_seen(summary).split():
        body = ""
    return title, summary, body, None if earlier == (title, summary, body) else earlier


#: A date text longer than this is not read by dateutil (its time grows with the text).
_LONGEST_DATE = 100
#: An offset after a time of day ("10:00:00 +0100").
_OFFSET = re.compile(r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s*[+-]\d\d:?\d\d\b")


def _entry_date(raw: str | None, fallback: DateFallback, key: str, issues: list[str]) -> datetime | None:
    """The publisher's date as written, read strictly (feedparser's own reading rolls
    30 February over to 1 March and takes unknown zones for UTC), else by dateutil
    held to the same rules (``loose_reading``).

    feedparser's reading (``fallback``) is used only for a format neither knows, and
    only when the text names the same day (see ``names_day``).
    """
    if not raw or not raw.strip():
        return None
    what = f"{key} date {raw[:60]!r}"
    try:
        value = read_datetime(raw)
        if value is None and len(raw) <= _LONGEST_DATE:
            value = loose_reading(raw)
    except DateRefused as exc:
        issues.append(f"{what}: {exc}; ignored")
        return None
    if value is not None:
        # feedparser's readings had whole seconds; stored times keep that precision.
        return value.replace(microsecond=0)
    if _OFFSET.search(raw):  # feedparser may read the time and drop its offset (+0100 CET)
        issues.append(f"{what} has an offset we cannot read with it; ignored")
        return None
    value = from_struct_time(fallback() if callable(fallback) else fallback)
    if value is None or not names_day(raw, value):
        issues.append(f"{what} is not a date we can read; ignored")
        return None
    return value
