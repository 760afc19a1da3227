"""RSS 2.0 read with lxml: the common feed, many times faster than feedparser.

``parse_rss_fast`` gives exactly what ``rss.parse_rss`` gives (same items, text,
dates, issues and warning), or None: it declines whatever it cannot be sure to read
as feedparser does, and the caller reads that with feedparser. It declines when

- the encoding needed a repair, or the document is not ASCII-compatible;
- the content type is not an XML one (feedparser notes that in the warning);
- libxml2 finds the XML not well-formed, its version is not 1.0, or it has a DOCTYPE;
- the root is not ``<rss version="2.0">`` holding one ``<channel>``;
- an element carries ``xml:base``, ``xml:lang``, ``base`` or ``lang`` (feedparser
  resolves links and sets languages from them);
- an element feedparser gives a meaning we do not reproduce: anything outside the
  elements listed below, or an element of a namespace feedparser has a handler
  for that is not listed; markup (elements, comments) inside a text element;
- an item has two titles, descriptions, bodies, guids, authors or dates, or an
  ``alternate`` Atom link (feedparser's link rules for those depend on order);
- a title, description or body holds markup that feedparser's sanitizer might
  turn into different text (see ``_reads_the_same``), or text its "UTF-8 read
  as Latin-1" repair would change;
- an author names an e-mail address (feedparser splits those).
"""

from __future__ import annotations

import html.entities
import re
from datetime import datetime
from functools import partial

from feedparser.api import StrictFeedParser
from feedparser.datetimes import _parse_date as feedparser_date
from feedparser.mixin import _FeedParserMixin
from lxml import etree

from ingestion._model import ParseResult
from ingestion._sources.rss import FeedEntry, prepared, result_of
from ingestion._sources.text import VOID_TAGS

_NOT_ASCII_COMPATIBLE = re.compile(rb"\x00|\x4c\x6f\xa7\x94")
_XML_TYPES = ("application/xml", "application/xml-dtd", "application/xml-external-parsed-entity")
_TEXT_XML_TYPES = ("text/xml", "text/xml-external-parsed-entity")

# feedparser names an element by the canonical prefix of its namespace (matched in
# lower case), else by the prefix the document gives it; names are lower-cased.
_CANONICAL_PREFIXES = {uri.lower(): prefix for uri, prefix in _FeedParserMixin.namespaces.items()}
_USERLAND = "http://backend.userland.com/rss"
_CANONICAL_NAMES = frozenset(prefix.encode() for prefix in _CANONICAL_PREFIXES.values())
# A namespace declaration anywhere in the document (in text too: then it only costs the fast path).
_PREFIX_BINDING = re.compile(rb"""xmlns:([A-Za-z_][\w.-]*)\s*=\s*["']([^"']*)["']""")

# Children of <channel> that never touch the feed's title or language.
_CHANNEL_LEAVES = frozenset(
    {
        "description",
        "link",
        "copyright",
        "managingeditor",
        "webmaster",
        "pubdate",
        "lastbuilddate",
        "category",
        "generator",
        "docs",
        "cloud",
        "ttl",
        "rating",
    }
)
# Containers under <channel> and what they may hold (feedparser files their
# titles and links under the image or text input, not the feed).
_CHANNEL_CONTAINERS = {
    "image": frozenset({"url", "title", "link", "width", "height", "description"}),
    "textinput": frozenset({"title", "description", "name", "link"}),
    "skiphours": frozenset({"hour"}),
    "skipdays": frozenset({"day"}),
}
# Children of <item> whose content we do not read and feedparser files under keys
# we do not read either.
_ITEM_IGNORED = frozenset(
    {
        "category",
        "comments",
        "dc:subject",
        "media:content",
        "media:thumbnail",
        "media:credit",
        "media:keywords",
        "media:category",
        "media:rating",
    }
)
_MEDIA_GROUP = "media:group"
_AUTHORS = frozenset({"author", "dc:creator"})
_SINGLE_FIELDS = frozenset({"title", "description", "content:encoded", "guid", "pubdate", "dc:date"})

# Markup our text cleaning and feedparser's sanitizer both read as the same text:
# elements the sanitizer keeps, none our cleaning skips or marks as a caption.
_SAFE_TAGS = frozenset(
    {
        "a",
        "abbr",
        "acronym",
        "address",
        "article",
        "aside",
        "b",
        "big",
        "blockquote",
        "br",
        "center",
        "cite",
        "code",
        "dd",
        "del",
        "dfn",
        "div",
        "dl",
        "dt",
        "em",
        "figcaption",
        "figure",
        "font",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "i",
        "img",
        "ins",
        "kbd",
        "li",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "samp",
        "section",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "time",
        "tr",
        "tt",
        "u",
        "ul",
        "var",
    }
)
_SAFE_ATTRIBUTES = frozenset(
    {
        "href",
        "src",
        "alt",
        "title",
        "width",
        "height",
        "align",
        "valign",
        "border",
        "target",
        "rel",
        "hspace",
        "vspace",
        "datetime",
        "cite",
        "colspan",
        "rowspan",
        "color",
        "face",
        "size",
    }
)
_SPECIAL = re.compile(r"[<&]")
_TAG = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9]*)"
    r"((?:\s+[A-Za-z][A-Za-z0-9_:-]*(?:\s*=\s*(?:\"[^\"<>]*\"|'[^'<>]*'|[-A-Za-z0-9./,:;+*%?!$()_#~@]+))?)*)"
    r"\s*(/?)>"
)
_ATTRIBUTE_NAME = re.compile(r"\s+([A-Za-z][A-Za-z0-9_:-]*)")
_ATTRIBUTE_VALUE = re.compile(r"\s*=\s*(?:\"[^\"<>]*\"|'[^'<>]*'|[-A-Za-z0-9./,:;+*%?!$()_#~@]+)")
_ENTITY = re.compile(r"&(?:([A-Za-z][A-Za-z0-9]*)|#([0-9]{1,7})|#[xX]([0-9A-Fa-f]{1,6}));")
_LONE_AMPERSAND = re.compile(r"&(?=\s|\Z)")
# "S&P 500": a name after "&" and no ";" ("[^...]" as the sanitizer's tokenizer wants).
_BARE_NAME = re.compile(r"&([A-Za-z][-.A-Za-z0-9]*)(?=[^-.A-Za-z0-9;])")
_KNOWN_ENTITIES = frozenset(html.entities.name2codepoint) | {"apos"}
# Entities HTML reads without their ";" (&copy2020 is "©2020").
_LEGACY_ENTITIES = frozenset(name for name in html.entities.html5 if not name.endswith(";"))
# Windows-1252's letters for the C1 controls, as feedparser maps them in all text.
_CP1252 = {
    code: bytes([code]).decode("cp1252")
    for code in range(0x80, 0xA0)
    if code not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)  # undefined in Windows-1252
}
_URI_EXTRA_SLASHES = re.compile(r"^([A-Za-z][A-Za-z0-9+,\-.]*://)/+")
# Tags and entities: what the sanitizer may write differently.
_NOT_KEPT_VERBATIM = re.compile(r"<[^>]*>|&[#A-Za-z0-9]*;?")
_LINK_ENTITY = re.compile(r"&([A-Za-z0-9_]+);")


class _Declined(Exception):
    """The document holds something only feedparser reads as feedparser does."""


def parse_rss_fast(
    body: bytes,
    *,
    now: datetime,
    content_type: str | None = None,
    default_language: str | None = None,
) -> ParseResult | None:
    """What ``parse_rss`` gives for ``body``, or None when the fast path declines it."""
    if not _xml_content_type(content_type):
        return None
    body, _headers, notes = prepared(body, content_type)
    if notes or _NOT_ASCII_COMPATIBLE.match(body[:4]) or _rebinds_a_canonical_prefix(body):
        return None
    # A parser per call: lxml parsers must not be shared between threads.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        tree = etree.fromstring(body, parser).getroottree()
        docinfo = tree.docinfo
        if docinfo.doctype or docinfo.internalDTD is not None or docinfo.xml_version not in (None, "1.0"):
            return None
        return _read(tree.getroot(), now, default_language)
    except (etree.XMLSyntaxError, _Declined, ValueError):
        return None


def _rebinds_a_canonical_prefix(body: bytes) -> bool:
    """Whether the document binds a prefix feedparser names a namespace by (``dc``) to
    another namespace, or one prefix to two namespaces: feedparser keeps one map of prefixes
    for the whole document, wherever each is declared, and reads elements through it, which
    ``_name`` (by each element's own namespace) does not."""
    bound: dict[bytes, bytes] = {}
    for prefix, uri in _PREFIX_BINDING.findall(body):
        uri = uri.lower()
        if bound.setdefault(prefix, uri) != uri:
            return True
        canonical = _CANONICAL_PREFIXES.get(uri.decode("utf-8", "replace"))
        if prefix in _CANONICAL_NAMES and canonical != prefix.decode():
            return True
    return False


def _xml_content_type(content_type: str | None) -> bool:
    if content_type is None:
        return True
    mime = content_type.split(";", 1)[0].strip().lower()
    return (
        mime in _XML_TYPES
        or mime in _TEXT_XML_TYPES
        or (mime.startswith(("application/", "text/")) and mime.endswith("+xml"))
    )


def _read(root: etree._Element, now: datetime, default_language: str | None) -> ParseResult:
    if _name(root) != "rss" or dict(root.attrib) != {"version": "2.0"}:
        raise _Declined
    channels = _elements(root)
    if len(channels) != 1 or _name(channels[0]) != "channel" or channels[0].attrib:
        raise _Declined
    titles: list[str] = []
    languages: list[str] = []
    items: list[FeedEntry] = []
    for child in _elements(channels[0]):
        name = _name(child)
        _check_attributes(child)
        if name == "item":
            if child.attrib:  # rdf:about, CDF's href, lastmod: feedparser reads them
                raise _Declined
            items.append(_entry(child))
        elif name in ("title", "language") and child.attrib:  # mode="base64": feedparser decodes it
            raise _Declined
        elif name == "title":
            titles.append(_title(_text(child))[0])
        elif name == "language":
            languages.append(_plain(_text(child)))
        elif name in _CHANNEL_LEAVES:
            _text(child)
        elif name in _CHANNEL_CONTAINERS:
            for grandchild in _elements(child):
                _check_attributes(grandchild)
                if _name(grandchild) not in _CHANNEL_CONTAINERS[name]:
                    raise _Declined
                _text(grandchild)
        elif not _ignorable(name, child):
            raise _Declined
    if len(titles) > 1 or len(languages) > 1:
        raise _Declined
    return result_of(
        items,
        feed_title=titles[0] if titles else None,
        feed_language=(languages[0] if languages else None) or default_language or None,
        warning=None,
        now=now,
    )


def _entry(item: etree._Element) -> FeedEntry:
    fields: dict[str, str] = {}
    authors: list[str] = []
    links: list[str] = []
    has_links = False
    guid_is_link = False
    for child in _elements(item):
        name = _name(child)
        _check_attributes(child)
        attributes = {key.lower(): value for key, value in child.attrib.items()} if child.attrib else {}
        if name in _SINGLE_FIELDS:
            if name in fields:
                raise _Declined
            if name == "guid":
                if set(attributes) - {"ispermalink"}:
                    raise _Declined
                guid_is_link = attributes.get("ispermalink", "true") == "true"
            elif attributes:
                raise _Declined
            fields[name] = _text(child)
        elif name in _AUTHORS:
            if attributes:
                raise _Declined
            authors.append(_text(child))
        elif name == "link":
            if not attributes:
                links.append(_text(child))
            elif {"href", "url", "uri"} & set(attributes) and _related(attributes):
                _text(child)  # listed by feedparser, never the item's link
            else:
                raise _Declined
            has_links = True
        elif name == "enclosure":
            _text(child)
            has_links = True
        elif name in _ITEM_IGNORED:
            _text(child)
        elif name == _MEDIA_GROUP:
            for grandchild in _elements(child):
                _check_attributes(grandchild)
                if _name(grandchild) not in _ITEM_IGNORED:
                    raise _Declined
                _text(grandchild)
        elif not _ignorable(name, child):
            raise _Declined
    if len(authors) > 1:
        raise _Declined
    guid = fields.get("guid")
    if guid is not None:
        guid = _plain(_resolved(guid) if guid_is_link else guid)
    if links:
        link: str | None = _LINK_ENTITY.sub(r"&\1", _plain(_resolved(links[-1])).replace("&amp;", "&"))
    else:
        link = guid if guid_is_link else None
    description, content = fields.get("description"), fields.get("content:encoded")
    summary_markup = _markup(description) if description is not None else None
    body_markup = _markup(content) if content is not None else ""
    if summary_markup is None:
        summary_markup = body_markup  # feedparser copies the body to a missing summary
    author = _plain(authors[0]) if authors else None
    if author and "@" in author:
        raise _Declined
    published, updated = _plain(fields.get("pubdate", "")), _plain(fields.get("dc:date", ""))
    title, title_is_plain = _title(fields["title"]) if "title" in fields else (None, False)
    return FeedEntry(
        guid=guid,
        link=link,
        has_links=has_links,
        title=title,
        plain=frozenset({"title"}) if title_is_plain else frozenset(),
        summary_markup=summary_markup,
        body_markup=body_markup,
        author=author,
        published=published,
        updated=updated,
        # Read only for a format our strict reader does not know, as feedparser reads it.
        published_parsed=partial(feedparser_date, published),
        updated_parsed=partial(feedparser_date, updated),
    )


def _related(attributes: dict[str, str]) -> bool:
    """An Atom link that is not the item's page (feedparser reads rel in lower case)."""
    return attributes.get("rel", "alternate").lower() != "alternate"


def _elements(parent: etree._Element) -> list[etree._Element]:
    """The child elements, without comments and processing instructions."""
    return [child for child in parent if isinstance(child.tag, str)]


_names: dict[tuple[str, str | None], str] = {}


def _name(element: etree._Element) -> str:
    """The element's name as feedparser dispatches on it: ``prefix:local`` or ``local``."""
    key = (element.tag, element.prefix)
    name = _names.get(key)
    if name is None:
        if len(_names) > 10_000:  # a hostile document's endless names: start again
            _names.clear()
        qname = etree.QName(element)
        namespace = (qname.namespace or "").lower()
        if _USERLAND in namespace:
            namespace = _USERLAND
        prefix = _CANONICAL_PREFIXES.get(namespace, element.prefix or "") if namespace else ""
        local = qname.localname.lower()
        name = _names[key] = f"{prefix.lower()}:{local}" if prefix else local
    return name


def _ignorable(name: str, element: etree._Element) -> bool:
    """An element feedparser has no handler for, under a prefix: it files its text
    under ``prefix_local``, a key nothing reads."""
    if ":" not in name or len(element):
        return False
    method = name.replace(":", "_")
    return not any(hasattr(StrictFeedParser, f"_{when}_{method}") for when in ("start", "end"))


def _check_attributes(element: etree._Element) -> None:
    if not element.attrib:
        return
    for key in element.attrib:
        local = key.rsplit("}", 1)[-1].lower()
        if local in ("lang", "base"):
            raise _Declined


def _text(element: etree._Element) -> str:
    """An element's text as feedparser keeps it (stripped); markup inside declines."""
    if len(element):
        raise _Declined
    return (element.text or "").strip()


def _resolved(uri: str) -> str:
    # feedparser joins links with the document's base (none for a body it is handed),
    # which only drops extra slashes after the scheme.
    return _URI_EXTRA_SLASHES.sub(r"\1", uri)


def _plain(text: str) -> str:
    """Text as feedparser stores it: UTF-8 read as Latin-1 read again, C1 controls
    as Windows-1252 letters."""
    if text.isascii():
        return text
    return _utf8_repaired(text).translate(_CP1252)


def _utf8_repaired(text: str) -> str:
    """feedparser's repair of UTF-8 that was read as Latin-1 and encoded again."""
    try:
        return text.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _title(text: str) -> tuple[str, bool]:
    """A title as feedparser gives it, and whether as plain text: it sanitizes a title,
    and reads it as markup, only when it looks like HTML."""
    if _FeedParserMixin.looks_like_html(text):
        return _markup(text), False
    return _plain(text), True


def _markup(text: str) -> str:
    """Markup feedparser sanitizes, when our text cleaning reads it the same without."""
    if not text.isascii():
        if _utf8_repaired(text) != text:
            raise _Declined
        if _SPECIAL.search(text) and max(text) <= "\xff" and not _repair_fails_in_text(text):
            # feedparser repairs the sanitized markup, whose bytes between tags differ.
            raise _Declined
    if not _reads_the_same(text):
        raise _Declined
    return text.translate(_CP1252)


def _repair_fails_in_text(markup: str) -> bool:
    """Whether text the sanitizer keeps as it is shows the markup not to be UTF-8:
    after an ASCII letter (where any decoder is back in step) comes a byte sequence
    no UTF-8 has. The repair then fails on the sanitized markup too."""
    for segment in _NOT_KEPT_VERBATIM.split(markup):
        start = next((index for index, char in enumerate(segment) if char.isascii()), len(segment))
        region = segment[start:].encode("iso-8859-1")
        try:
            region.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.end < len(region):
                return True
    return False


def _reads_the_same(markup: str) -> bool:
    """Whether feedparser's sanitizer leaves the text of ``markup`` as our cleaning
    reads it: every tag a kept element with kept attributes and no caption marks,
    every ampersand a known entity, followed by a space or by a name no entity starts."""
    position = 0
    while special := _SPECIAL.search(markup, position):
        start = special.start()
        if special.group() == "<":
            tag = _TAG.match(markup, start)
            if tag is None or tag.group(2).lower() not in _SAFE_TAGS:
                return False
            closing, attributes, self_closing = tag.group(1), tag.group(3), tag.group(4)
            if closing and (attributes or self_closing):
                return False
            # </br> and <p/> read differently through the sanitizer than through our cleaning:
            # only a void element may be self-closed, and it is never closed.
            if (closing or self_closing) and (tag.group(2).lower() in VOID_TAGS) != bool(self_closing):
                return False
            names = _ATTRIBUTE_NAME.findall(_ATTRIBUTE_VALUE.sub("", attributes))
            if any(name.lower() not in _SAFE_ATTRIBUTES for name in names):
                return False
            position = tag.end()
            continue
        entity = _ENTITY.match(markup, start)
        if entity:
            name, decimal, hexadecimal = entity.groups()
            if name is not None and name not in _KNOWN_ENTITIES:
                return False
            if name is None and not 0x20 <= int(decimal or hexadecimal, 10 if decimal else 16) <= 0xD7FF:
                return False
            position = entity.end()
        elif _LONE_AMPERSAND.match(markup, start):
            position = start + 1
        elif bare := _BARE_NAME.match(markup, start):
            # Left as written by the sanitizer (unknown) and by HTML (no entity starts it).
            name = bare.group(1)
            if name in _KNOWN_ENTITIES or any(
                name[:end] in _LEGACY_ENTITIES for end in range(1, len(name) + 1)
            ):
                return False
            position = bare.end()
        else:
            return False
    return True
