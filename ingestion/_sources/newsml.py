"""IPTC NewsML-G2 (a newsItem, a newsMessage of items, or another item class) to ParsedItems.

Only text newsItems become articles; pictures, videos, packages, concepts, planning
and knowledge items are recorded as rejections. The XML is parsed once with the
standard library, after a scan of the prolog that refuses entity declarations
(billion laughs, external entities). Schema validation (XSD) is out of scope; a few
cheap structural rules of the standard are checked instead.
"""

from __future__ import annotations

import contextlib
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from html import escape
from xml.parsers import expat

from ingestion._model import ParsedItem, ParseResult, Rejection
from ingestion._sources.text import html_to_text, one_line, web_url
from ingestion._sources.wire import (
    code_of,
    finish,
    is_withdrawn,
    note_if_empty,
    set_dates,
    urgency,
    without_title,
)
from ingestion.exceptions import ItemRejected, ParseError

__all__ = ["parse_newsml"]

_LABEL = "NewsML-G2"
NAR = "http://iptc.org/std/nar/2006-10-01/"
_N = f"{{{NAR}}}"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_ITEM_CLASSES = ("newsItem", "packageItem", "conceptItem", "knowledgeItem", "planningItem", "catalogItem")
#: itemMeta children the standard requires.
_REQUIRED_META = ("itemClass", "provider", "versionCreated")
# Deeper chains of <related> inside <related> are invalid since 2.34 (three levels).
_TOO_DEEP_RELATED = "/".join([f".//{_N}related"] + [f"{_N}related"] * 3)
# Items may omit catalogRef/catalog only from NewsML-G2 2.30 on.
_CATALOG_OPTIONAL_FROM = (2, 30)
_WEB_RELS = ("canonical", "self", "alternate", "web")
_SUMMARY_ROLES = ("summary", "teaser", "abstract", "lead", "")
_MAIN_HEADLINE_ROLES = ("", "main", "headline")
# Inline markup that is not article text: NITF media blocks, HTML page chrome.
_NITF_SKIP = frozenset({"media", "body.head", "body.end"})
_XHTML_SKIP = frozenset({"header", "footer", "head", "nav", "aside"})
_KEPT_ATTRIBUTES = ("class", "id", "role")


class _EntityDeclared(Exception):
    pass


class _PrologDone(Exception):
    pass


def parse_newsml(
    body: bytes,
    *,
    source_id: str,
    url: str,
    now: datetime,
    default_language: str | None = None,
) -> ParseResult:
    """One fetched NewsML-G2 body to items; see the module docstring."""
    root = _parse(body, source_id, url)
    elements = _item_elements(root, source_id, url)
    message_lang = root.get(_XML_LANG)
    items: list[ParsedItem] = []
    rejections: list[Rejection] = []
    for index, element in enumerate(elements):
        try:
            items.append(_item(element, now, element.get(_XML_LANG) or message_lang or default_language))
        except ItemRejected as exc:
            rejections.append(Rejection(index, str(exc), element.get("guid") or None))
    return finish(_LABEL, items, rejections, source_id=source_id, url=url)


# --- document ----------------------------------------------------------------------------


def _parse(body: bytes, source_id: str, url: str) -> ET.Element:
    if not body or not body.strip():
        raise ParseError(f"{_LABEL}: empty document", source_id=source_id, url=url)
    try:
        _refuse_entities(body)
    except _EntityDeclared as exc:
        raise ParseError(
            f"{_LABEL}: the document declares XML entities ({exc}); refused", source_id=source_id, url=url
        ) from exc
    except expat.ExpatError as exc:
        raise ParseError(f"{_LABEL}: not well-formed XML ({exc})", source_id=source_id, url=url) from exc
    try:
        return ET.fromstring(body)
    except ET.ParseError as exc:
        raise ParseError(f"{_LABEL}: not well-formed XML ({exc})", source_id=source_id, url=url) from exc


def _refuse_entities(body: bytes) -> None:
    """Scan the prolog (up to the root element) and refuse any entity declaration.

    Entities are what entity-expansion and external-entity attacks are built from, and
    no NewsML-G2 feed needs them. Parsing stops at the first element, so this is cheap.
    Raises ``expat.ExpatError`` when the prolog is not well-formed.
    """
    scanner = expat.ParserCreate()

    def declared(name: str, *_: object) -> None:
        raise _EntityDeclared(f"entity {name!r}")

    def started(*_: object) -> None:
        raise _PrologDone

    scanner.EntityDeclHandler = declared
    scanner.UnparsedEntityDeclHandler = declared
    scanner.StartElementHandler = started
    # A prolog this scan cannot read is refused rather than handed on unchecked.
    with contextlib.suppress(_PrologDone):
        scanner.Parse(body, True)


def _item_elements(root: ET.Element, source_id: str, url: str) -> list[ET.Element]:
    namespace, local = _split(root.tag)
    if namespace != NAR:
        if local == "NewsML":
            reason = "this is NewsML 1.x (root <NewsML>), not NewsML-G2"
        else:
            reason = f"root element <{local}> is not in the NewsML-G2 namespace {NAR}"
        raise ParseError(f"{_LABEL}: {reason}", source_id=source_id, url=url)
    if local == "newsMessage":
        item_set = root.find(f"{_N}itemSet")
        elements = list(item_set) if item_set is not None else []
        if not elements:
            raise ParseError(f"{_LABEL}: the newsMessage has no items", source_id=source_id, url=url)
        return elements
    if local in _ITEM_CLASSES:
        return [root]
    raise ParseError(
        f"{_LABEL}: root element <{local}> is not an item or a newsMessage", source_id=source_id, url=url
    )


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


# --- one item ----------------------------------------------------------------------------


def _item(element: ET.Element, now: datetime, inherited_lang: str | None) -> ParsedItem:
    namespace, kind = _split(element.tag)
    if namespace != NAR or kind not in _ITEM_CLASSES:
        raise ItemRejected(f"unexpected element <{kind}> in the itemSet")
    if kind != "newsItem":
        raise ItemRejected(f"not a text item ({kind})")
    meta = _structure(element)
    item_class = _concept_id(meta.find(f"{_N}itemClass"))
    if item_class and code_of(item_class) != "text":
        raise ItemRejected(f"not a text item (itemClass {item_class})")

    guid = element.get("guid") or ""
    content = element.find(f"{_N}contentMeta")
    pubstatus = _concept_id(meta.find(f"{_N}pubStatus")) or None
    link = _link(meta)
    title = _headline(content)
    item = ParsedItem(
        identity=guid,
        guid=guid,
        link=link,
        url=web_url(link),
        title=title,
        summary=_summary(content),
        body=without_title(_body(element.find(f"{_N}contentSet")), title),
        byline=_byline(content),
        language=_language(content) or inherited_lang,
        withdrawn=is_withdrawn(pubstatus),
    )
    set_dates(item, now, _text(meta.find(f"{_N}firstCreated")), _text(meta.find(f"{_N}versionCreated")))
    item.wire = {
        "format": "newsml-g2",
        "version": element.get("version"),
        "pubstatus": pubstatus,
        "signals": list(dict.fromkeys(filter(None, map(_concept_id, meta.iterfind(f"{_N}signal"))))),
        "subjects": _subjects(content),
        "located": _located(content),
        "dateline": _text(_find(content, "dateline")) or None,
        "item_class": item_class or None,
        "urgency": _urgency(content),
        "embargoed": _text(meta.find(f"{_N}embargoed")) or None,
    }
    note_if_empty(item)
    return item


def _structure(element: ET.Element) -> ET.Element:
    """Cheap structural rules of the standard; returns the itemMeta."""
    if not (element.get("guid") or "").strip():
        raise ItemRejected("newsItem has no guid")
    meta = element.find(f"{_N}itemMeta")
    if meta is None:
        raise ItemRejected("newsItem has no itemMeta")
    for name in _REQUIRED_META:
        if meta.find(f"{_N}{name}") is None:
            raise ItemRejected(f"itemMeta has no {name}")
    version = _standard_version(element.get("standardversion"))
    if (
        version is not None
        and version < _CATALOG_OPTIONAL_FROM
        and element.find(f"{_N}catalogRef") is None
        and element.find(f"{_N}catalog") is None
    ):
        raise ItemRejected(
            f"newsItem declares NewsML-G2 {element.get('standardversion')} but has no "
            "catalogRef or catalog (optional only from 2.30)"
        )
    if element.find(_TOO_DEEP_RELATED) is not None:
        raise ItemRejected("<related> is nested more than three levels deep")
    return meta


def _standard_version(value: str | None) -> tuple[int, int] | None:
    match = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", value or "")
    return (int(match[1]), int(match[2])) if match else None


def _find(parent: ET.Element | None, name: str) -> ET.Element | None:
    return None if parent is None else parent.find(f"{_N}{name}")


def _findall(parent: ET.Element | None, name: str) -> list[ET.Element]:
    return [] if parent is None else parent.findall(f"{_N}{name}")


def _text(element: ET.Element | None) -> str:
    """All the text of an element, on one line (markup inside labels is dropped)."""
    if element is None:
        return ""
    return one_line(escape("".join(element.itertext()), quote=False))


def _concept_id(element: ET.Element | None) -> str:
    if element is None:
        return ""
    return element.get("qcode") or element.get("uri") or element.get("literal") or ""


def _name(element: ET.Element) -> str:
    return _text(element.find(f"{_N}name"))


def _by_role(elements: list[ET.Element], roles: tuple[str, ...]) -> ET.Element | None:
    """The element whose role ranks best (then lowest rank attribute), else the first."""

    def key(element: ET.Element) -> tuple[int, int]:
        role = code_of(element.get("role"))
        rank = element.get("rank", "")
        ranked = re.fullmatch(r"[0-9]{1,9}", rank)  # not str.isdigit: "¹" is a digit to it
        return (roles.index(role) if role in roles else len(roles), int(rank) if ranked else 0)

    candidates = [e for e in elements if _text(e)]
    return min(candidates, key=key) if candidates else None


def _headline(content: ET.Element | None) -> str:
    return _text(_by_role(_findall(content, "headline"), _MAIN_HEADLINE_ROLES))


def _summary(content: ET.Element | None) -> str:
    return _text(_by_role(_findall(content, "description"), _SUMMARY_ROLES))


def _byline(content: ET.Element | None) -> str:
    by = _text(_find(content, "by"))
    if by:
        return by
    return ", ".join(name for name in map(_name, _findall(content, "creator")) if name)


def _language(content: ET.Element | None) -> str | None:
    for language in _findall(content, "language"):
        if language.get("tag"):
            return language.get("tag")
    return None


def _located(content: ET.Element | None) -> str | None:
    located = _find(content, "located")
    if located is None:
        return None
    return _name(located) or _concept_id(located) or None


def _subjects(content: ET.Element | None) -> list[dict[str, str]]:
    subjects = []
    for subject in _findall(content, "subject"):
        main = subject.find(f"{_N}mainConcept")
        entry = {
            "code": subject.get("qcode") or subject.get("literal") or _concept_id(main),
            "uri": subject.get("uri"),
            "name": _name(subject),
            "type": subject.get("type"),
        }
        entry = {k: v for k, v in entry.items() if v}
        if entry:
            subjects.append(entry)
    return subjects


def _urgency(content: ET.Element | None) -> int | None:
    return urgency(_text(_find(content, "urgency")))


def _link(meta: ET.Element) -> str | None:
    """The item's web page: a canonical/web link, else the first seeAlso web page.

    A link carrying a residref points to another item (a picture of the story), and
    one with a non-HTML content type to a file; neither is the article's page.
    """
    web = []
    for link in meta.iterfind(f"{_N}link"):
        href = link.get("href") or ""
        kind = (link.get("contenttype") or "text/html").lower()
        if href.lower().startswith(("http://", "https://")) and "html" in kind and not link.get("residref"):
            web.append((code_of(link.get("rel")), href))
    for wanted in (_WEB_RELS, ("seealso",)):
        for rel, href in web:
            if rel in wanted:
                return href
    return None


# --- body --------------------------------------------------------------------------------


def _body(content_set: ET.Element | None) -> str:
    if content_set is None:
        return ""
    for part in content_set:
        kind = (part.get("contenttype") or "").lower()
        _, local = _split(part.tag)
        if local == "inlineXML":
            text = _inline_xml(part, kind)
        elif local == "inlineData" and (not kind or kind.startswith("text/")):
            text = html_to_text(part.text)
        else:
            continue
        if text:
            return text
    return ""


def _inline_xml(part: ET.Element, kind: str) -> str:
    root = next(iter(part), None)
    if root is None:
        return ""
    _, local = _split(root.tag)
    if local == "nitf" or "nitf" in kind:
        content = root.find(".//{*}body.content")
        return html_to_text(_markup(content, _NITF_SKIP)) if content is not None else ""
    if local == "html" or "html" in kind:
        body = root.find(".//{*}body")
        return html_to_text(_markup(body if body is not None else root, _XHTML_SKIP))
    return ""  # SportsML, financial data...: structured data, not article text


def _markup(top: ET.Element, skip: frozenset[str]) -> str:
    """An element as namespace-free HTML for html_to_text (iterative: no recursion limit)."""
    parts: list[str] = []
    stack: list[tuple[ET.Element, bool]] = [(top, False)]
    while stack:
        node, closing = stack.pop()
        _, tag = _split(node.tag) if isinstance(node.tag, str) else ("", "")
        if closing:
            parts.append(f"</{tag}>")
        elif tag and tag not in skip:
            attributes = "".join(
                f' {name}="{escape(value)}"'
                for name, value in node.attrib.items()
                if name in _KEPT_ATTRIBUTES
            )
            parts.append(f"<{tag}{attributes}>{escape(node.text or '', quote=False)}")
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node))
            continue
        if node is not top and node.tail:
            parts.append(escape(node.tail, quote=False))
    return "".join(parts)
