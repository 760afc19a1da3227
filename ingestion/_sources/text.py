"""Turning publisher markup into clean text, and URLs into canonical identities."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Elements whose text is never article text.
_SKIPPED_TAGS = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "svg",
        "iframe",
        "figure",
        "figcaption",
        "picture",
        "video",
        "audio",
        "object",
        "head",
        "title",
        "button",
        "form",
    }
)
# Markup that marks captions and credits even outside <figure>.
_SKIPPED_CLASS = re.compile(r"caption|credit|copyright|photo-?info|image-?info|visually-?hidden", re.I)
_BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "br",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "section",
        "article",
        "header",
        "footer",
        "tr",
        "table",
        "pre",
        "hr",
        "dd",
        "dt",
        "hl1",
        "hl2",
        "hedline",
        "byline",
        "dateline",
        "tagline",
        "body.content",
        "block",
    }
)
#: Elements that never hold anything (HTML's void elements).
VOID_TAGS = frozenset(
    {
        "br",
        "hr",
        "img",
        "meta",
        "link",
        "input",
        "source",
        "wbr",
        "area",
        "base",
        "col",
        "embed",
        "param",
        "track",
    }
)
_SPACES = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r"\s*\n\s*")
# "Jan 7, 2026, 6:41 a.mJan 7, 2026, 6:41 a.m": a line that is one string twice, glued
# (a scraper's doubled label; "Yes we can. Yes we can." and "Sirhan Sirhan" are text).
_DOUBLED_LINE = re.compile(r"^(.{6,200}?)\1$")
# "...security troops.Image: keystone" - a credit glued to the end of a caption line
# ("... in March. Source: Eurostat" is the story's own sentence).
_TRAILING_CREDIT = re.compile(
    r"(?<=[.!?\"”)])(?:Image|Images|Photo|Photos|Picture|Bild|Foto|Credit|Source)s?:\s*"
    r"[\w][\w .,/&'\u2019-]{0,60}$",
    re.I,
)


_BLOCK_TAG = re.compile(r"</?(?:" + "|".join(sorted(_BLOCK_TAGS)).replace(".", r"\.") + r")\b[^>]*>", re.I)
_ANY_TAG = re.compile(r"<[^>]*>")
# No markup, entities, line breaks, runs of white space or control characters:
# nothing to normalise.
_PLAIN_LINE = re.compile(r"[^<&\s\xa0\u200b\x00-\x1f\x7f-\x9f]+(?: [^<&\s\xa0\u200b\x00-\x1f\x7f-\x9f]+)*\s?")
# C0 and C1 control characters (NUL, ESC, DEL...) are never text: deleted. Those
# Python counts as white space (tab, form feed, the separators \x1c-\x1f, NEL)
# stay for the white-space rules below, which make them one space.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
# Markup the regex pass cannot handle: skipped elements, marked captions, comments, CDATA.
_NEEDS_PARSER = re.compile(
    r"<(?:" + "|".join(sorted(_SKIPPED_TAGS)) + r")\b|\b(?:class|id|role)\s*=|<!|<\?", re.I
)
#: A tag the regex pass reads as the parser does: a name, then no quotes and no "<".
_SIMPLE_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:[\s/][^<>\"']*)?>")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_stack:
            if tag not in VOID_TAGS:
                self._skip_stack.append(tag)
            return
        marker = " ".join(v for k, v in attrs if k in ("class", "id", "role") and v)
        if tag in _SKIPPED_TAGS or (marker and _SKIPPED_CLASS.search(marker)):
            if tag not in VOID_TAGS:
                self._skip_stack.append(tag)
            return
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self._skip_stack and tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._skip_stack:
            # Pop up to the matching open tag; tolerate unclosed children.
            if tag in self._skip_stack:
                while self._skip_stack and self._skip_stack.pop() != tag:
                    pass
            return
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_stack:
            self.parts.append(data)

    def skipping(self) -> bool:
        """Whether the markup read so far ends inside an element whose text is skipped."""
        return bool(self._skip_stack)


def html_to_text(markup: str | None, *, multiline: bool = True) -> str:
    """Markup (or plain text) to clean text: tags stripped, entities decoded,
    captions/credits dropped where the markup marks them, whitespace normalised.

    ``multiline`` keeps paragraph breaks (bodies); otherwise one line (titles).
    """
    if not markup:
        return ""
    if _PLAIN_LINE.fullmatch(markup):  # one clean line already (most titles)
        return _clean_line(markup.strip())
    if "<" in markup and not _NEEDS_PARSER.search(markup) and _only_simple_tags(markup):
        # Simple markup (the common feed summary): a regex pass is 10x faster than
        # HTMLParser and gives the same text when nothing needs skipping and every "<"
        # opens a tag it reads to its end (not "2 < 3", not a quoted ">").
        text = html.unescape(_up_to_last_tag(_ANY_TAG, "", _up_to_last_tag(_BLOCK_TAG, "\n", markup)))
    elif "<" in markup:
        extractor = _TextExtractor()
        # Past the last ">" no tag can end; the parser would try one at each "<" there,
        # scanning to the end each time (a text of 20,000 "<a " took 20 s): it is text.
        end = markup.rfind(">") + 1
        try:
            extractor.feed(markup[:end])
            extractor.close()
            text = "".join(extractor.parts)
            if not extractor.skipping():
                text += html.unescape(markup[end:])
        except Exception:  # HTMLParser is lenient; this is belt and braces
            text = re.sub(r"<[^>]*>", " ", markup)
    elif "&" in markup:
        text = html.unescape(markup)
    else:
        text = markup
    if _CONTROL_CHARS.search(text):
        text = _CONTROL_CHARS.sub("", text)
    text = text.replace("\r", "\n").replace("\xa0", " ").replace("\u200b", "")
    lines = []
    for raw_line in _NEWLINES.split(text):
        line = _clean_line(_SPACES.sub(" ", raw_line).strip())
        if line:
            lines.append(line)
    return ("\n" if multiline else " ").join(lines)


def _only_simple_tags(markup: str) -> bool:
    return markup.count("<") == sum(1 for _ in _SIMPLE_TAG.finditer(markup))


def _up_to_last_tag(tag: re.Pattern[str], replacement: str, markup: str) -> str:
    """``tag.sub(replacement, markup)``, in time linear in the markup: past its last ">"
    no tag can end, and each "<" there would scan to the end before failing (a text of
    100,000 "<" took minutes)."""
    end = markup.rfind(">") + 1
    return tag.sub(replacement, markup[:end]) + markup[end:]


def _clean_line(line: str) -> str:
    # Cheap tests first: the regexes run only on lines that could match.
    if len(line) >= 12 and line[:6] in line[6:]:
        doubled = _DOUBLED_LINE.match(line)
        if doubled and any(char.isalpha() for char in doubled.group(1)):  # not a number's digits
            line = doubled.group(1).strip()
    if ":" in line:
        line = _TRAILING_CREDIT.sub("", line).rstrip()
    return line


def one_line(text: str | None) -> str:
    return html_to_text(text, multiline=False)


# Query parameters that identify a visit, not a document. Matched case-insensitively.
_TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "msclkid",
        "yclid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "_ga",
        "_gl",
        "ocid",
        "cmpid",
        "cmp",
        "smid",
        "smtyp",
        "at_medium",
        "at_campaign",
        "at_custom1",
        "at_custom2",
        "at_custom3",
        "at_custom4",
        "ito",
        "ns_mchannel",
        "ns_source",
        "ns_campaign",
        "ns_linkname",
        "ns_fee",
        "sr_share",
        "ref_src",
        "ref_url",
        "sessionid",
        "session_id",
        "phpsessid",
        "jsessionid",
        "aspsessionid",
        "cfid",
        "cftoken",
        "s_cid",
        "wt.mc_id",
    }
)
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "oly_")
# http(s)://host/path with no port, user, query, fragment or ;params.
_SIMPLE_URL = re.compile(r"^https?://[a-z0-9.-]+(/[^?#;]*)?$")
# The same with a query: the common feed link that only carries tracking parameters.
_SIMPLE_URL_WITH_QUERY = re.compile(r"^(https?://[a-z0-9.-]+(/[^?#;]*)?)\?([^#;]*)$")
# A query parameter name that reads as itself (nothing to unquote).
_PLAIN_PARAM = re.compile(r"[A-Za-z0-9_.-]+")
#: A ``sid`` that is a session's token, not a story's number.
_SESSION_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,}")
_PATH_SESSION = re.compile(r";(?:jsessionid|sessionid|sid)=[^/?#]*", re.I)


def canonical_url(url: str | None) -> str | None:
    """Canonical form of an article URL, used as identity when there is no guid.

    Scheme and host are lower-cased, default ports and the fragment dropped (but for a
    route after the front page's address, ``#!/story/1`` or ``#/story/1``: on a site whose
    pages are routes in one page, it is all that tells two articles apart), and
    tracking/session parameters (utm_*, fbclid, jsessionid...) removed.
    """
    if not url:
        return None
    url = url.strip()
    simple = _SIMPLE_URL.match(url)
    if simple:  # already lower-case, nothing to strip
        return url if simple.group(1) else url + "/"
    tracked = _SIMPLE_URL_WITH_QUERY.match(url)
    if tracked and all(_plain_tracking_param(part) for part in tracked.group(3).split("&")):
        # Every parameter goes: what the general path below gives, without taking it apart.
        return tracked.group(1) if tracked.group(2) else tracked.group(1) + "/"
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port if parts.port not in (None, 80 if scheme == "http" else 443) else None
    except ValueError:  # a port that is not a number, or past 65535
        return url
    if ":" in host:  # IPv6: urlsplit gives the address without its brackets
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    kept = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not _tracking_param(key, value)
    ]
    path = _PATH_SESSION.sub("", parts.path) or "/"
    return urlunsplit((scheme, netloc, path, urlencode(kept, doseq=True), _route(path, parts.fragment)))


def without_story_sids(url: str) -> str | None:
    """A canonical ``url`` as ``canonical_url`` gave it when every ``sid`` went as a session's
    (None if it has none): what an article recorded then was hashed with."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(key, value) for key, value in pairs if key.lower() != "sid"]
    if len(kept) == len(pairs):
        return None
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept, doseq=True), parts.fragment))


def _route(path: str, fragment: str) -> str:
    """The fragment of a link to a site's front page that is a route in its one page
    (``#!/story/1``, ``#!5781263``, ``#/story/1``), without tracking parameters; else ''."""
    if path != "/" or not fragment.startswith(("!", "/")):
        return ""
    route, _, query = fragment.partition("?")
    kept = [
        (key, value)
        for key, value in parse_qsl(query, keep_blank_values=True)
        if not _tracking_param(key, value)
    ]
    if kept:
        return f"{route}?{urlencode(kept, doseq=True)}"
    return route if route.strip("!/") else ""  # a bare "#!" (or tracking parameters alone): the front page


def _tracking_param(name: str, value: str) -> bool:
    name = name.lower()
    if name == "sid":  # a session's token, or a story's number (PHP-Nuke's ``article&sid=101``)
        return _SESSION_TOKEN.fullmatch(value) is not None and not value.isdigit()
    return name in _TRACKING_PARAMS or name.startswith(_TRACKING_PREFIXES)


def _plain_tracking_param(part: str) -> bool:
    """Whether one ``name=value`` of a query is a tracking parameter whose name needs no
    unquoting (a value that does is no session token: see ``_tracking_param``)."""
    name, _, value = part.partition("=")
    return _PLAIN_PARAM.fullmatch(name) is not None and _tracking_param(name, value)


#: What a published link never holds: control characters (browsers drop some, so the
#: link shown is not the link followed; in an Atom feed they are no XML at all) and
#: bidirectional controls (which show one link as another).
_NOT_IN_A_LINK = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def unfit_for_a_link(text: str) -> bool:
    """Whether ``text`` holds a character no link holds (``_NOT_IN_A_LINK``)."""
    return _NOT_IN_A_LINK.search(text) is not None


def web_url(link: str | None) -> str | None:
    """The canonical form of ``link`` when it is a web page (http or https with a
    host), else None: ``javascript:``, ``data:``, ``mailto:``... are never published
    as an article's link."""
    url = canonical_url(link)
    if not url or not url.startswith(("http://", "https://")) or unfit_for_a_link(url):
        return None
    if _SIMPLE_URL.match(url):  # a host and no port: nothing more to check
        return url
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port
    except ValueError:  # a malformed IPv6 host, a port that is not a number or past 65535
        return None
    return url if host else None


#: Characters that show as nothing: soft hyphen, byte order mark (zero-width no-break
#: space), word joiner. (Zero-width joiners are left: they shape emoji and scripts.)
_INVISIBLE = ("\xad", "\ufeff", "\u2060")


def as_seen(text: str) -> str:
    """The text as a reader sees it: without soft hyphens, byte order marks and word
    joiners, and with letters in one form ("é" as one character, not "e" and an accent)."""
    if text.isascii():
        return text
    for invisible in _INVISIBLE:
        if invisible in text:
            text = text.replace(invisible, "")
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def content_hashes(*texts: str | None, url: str | None) -> tuple[str, ...]:
    """Hash of what a reader sees: the ``texts`` ``as_seen``, and the ``url`` without its
    scheme (a page is the same page over http and https, and servers behind one name
    disagree on which they write); equal hashes mean 'no revision'. Then, if the fields
    as written hash differently, that hash too. Versions recorded before the hash was
    taken of what is seen carry the second: an item that matches a version by either is
    that version, so the change of rule records no revision."""
    written = (*(text or "" for text in texts), url or "")
    seen = (*(as_seen(text) if text else "" for text in texts), without_scheme(url or ""))
    if seen == written:
        return (_hash(seen),)
    return _hash(seen), _hash(written)


def without_scheme(url: str) -> str:
    """``//host/path``: a web address without its http or https."""
    for scheme in ("https:", "http:"):
        if url.startswith(scheme):
            return url[len(scheme) :]
    return url


def _hash(fields: tuple[str, ...]) -> str:
    # \x1f (unit separator) never survives text cleaning, so fields cannot run together.
    return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()
