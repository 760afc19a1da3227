"""Deciding which article events a batch of parsed items means.

The rule: an event is recorded only when what a reader sees changes. Content is
compared by hash of the normalised title, summary, body, byline and URL against
the latest version. A headline that flips back to an earlier wording is a real
revision (publishers A/B-test headlines); a whole body fetched before records
nothing (see ``record``), and a wire version older than the one we hold is stale, as
is an archive's version made before the one we hold (see ``decide``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from ingestion._log.store import PendingEvent, StreamHead, higher_wire_version, wire_version_key
from ingestion._model import ParsedItem, ParseResult, Rejection
from ingestion._sources.dates import iso
from ingestion._sources.text import content_hashes, without_scheme, without_story_sids

#: The name each article event is counted under in reports.
COUNT_KEYS = {"article.published": "new", "article.revised": "revised", "article.withdrawn": "withdrawn"}


def article_id(source_id: str, identity: str) -> str:
    """Stable id of an article stream: the source plus its wire/feed identity."""
    return hashlib.sha256(f"{source_id}\x1f{identity}".encode()).hexdigest()[:20]


def scheme_twin(identity: str) -> str | None:
    """The identity with the other of http and https, for one that is a web address."""
    for scheme, other in (("https://", "http://"), ("http://", "https://")):
        if identity.startswith(scheme):
            return other + identity[len(scheme) :]
    return None


def stream_ids_with_twins(source_id: str, items: Iterable[ParsedItem]) -> list[str]:
    """The streams of ``items`` and of their identities' ``scheme_twin``: the heads that
    ``follow_scheme_moves`` needs."""
    ids = []
    for item in items:
        ids.append(article_id(source_id, item.identity))
        if twin := scheme_twin(item.identity):
            ids.append(article_id(source_id, twin))
    return ids


def follow_scheme_moves(
    source_id: str, items: list[ParsedItem], heads: dict[str, StreamHead], *, versions_in_order: bool
) -> list[str]:
    """Give an item whose address moved between http and https the identity its article
    has, if its own is new to the log: with ``versions_in_order`` (an archive's lines,
    each a version of its article) the identity an item before it in ``items`` took for
    the same address, else its twin's if that is recorded and, in a feed's document (a
    snapshot, whose items are different articles), no other item of ``items`` has it. A
    site moving to https, or servers behind one name that disagree on the scheme, would
    otherwise record each of its articles again as new. ``heads`` holds those of
    ``stream_ids_with_twins``. Returns the items' streams, as they are identified now."""
    identities = set() if versions_in_order else {item.identity for item in items}
    taken: dict[str, str] = {}  # an address without its scheme -> the identity an item took
    stream_ids = []
    for item in items:
        stream_id = article_id(source_id, item.identity)
        twin = scheme_twin(item.identity)
        if twin is not None and stream_id not in heads:
            address = without_scheme(twin)
            identity = taken.get(address) if versions_in_order else None
            if identity is None:
                recorded = article_id(source_id, twin) in heads and twin not in identities
                identity = twin if recorded else item.identity
                taken[address] = identity
            if identity != item.identity:
                item.issues.append(f"identified as {identity[:200]!r}, the address its article has")
                item.identity = identity
                stream_id = article_id(source_id, identity)
        stream_ids.append(stream_id)
    return stream_ids


def follow_shared_guids(
    source_id: str,
    result: ParseResult,
    heads: dict[str, StreamHead],
    latest_texts: Callable[[list[int]], dict[int, tuple[str | None, ...]]],
    heads_of: Callable[[list[str]], dict[str, StreamHead]],
) -> list[ParsedItem]:
    """Identify by its page an item of ``result`` whose guid does not tell it apart.

    Items of a feed's document that share a guid (``result_of`` identified those with pages
    by them, but for the first when none lacks a page) are an article each: the one the
    article recorded under the guid is (its latest text, else its page) keeps the guid, the
    others are identified by their pages. A guid new to the log goes to an item without a
    page if there is one (nothing else identifies it), else to none. An item without a page
    that is not the guid's article is rejected: nothing tells it apart. An item alone with
    its guid is its guid's article (a guid recorded for another page: its page moved),
    unless its page, at either scheme, is an article recorded by page whose latest version
    came with the same guid: then it is that one. Otherwise a site giving its items one guid
    ("0", its own address) records the article it lists first as a revision of the one it
    listed first before.

    ``heads`` holds those of the items' streams and of ``guid_streams``; ``latest_texts``
    is ``EventStore.latest_texts``, ``heads_of`` ``EventStore.heads`` (asked only about the
    pages of items whose guid's article is on another page). An identity is changed only
    where no other item of the document has the new one. Returns the items whose identity
    changed: their heads are not looked up yet."""
    items = result.items
    by_guid: dict[str, list[tuple[ParsedItem, str | None]]] = {}  # a guid -> its items, each with its page
    for item in items:
        if item.guid is not None and not item.withdrawn:
            by_guid.setdefault(item.guid, []).append((item, item.url))
    holders: dict[str, ParsedItem | None] = {}  # a guid -> the item of its recorded article, if any
    to_read: dict[int, str] = {}  # the event_seq of a guid's latest version -> the guid
    recorded_pages: list[tuple[str, str | None]] = []  # a guid -> the page of its latest version
    alone: list[tuple[ParsedItem, str]] = []  # items alone with their guid, whose page is to be looked up
    for guid, group in by_guid.items():
        head = heads.get(article_id(source_id, guid))
        if all(page is None for _, page in group) and (head is None or head.withdrawn):
            continue  # as parsed: the first takes the guid, the others are duplicates
        if head is None or head.withdrawn:  # no article under the guid: the items are new or known by page
            if len(group) > 1:
                holders[guid] = next((item for item, page in group if page is None), None)
            else:
                alone.append(_paged(group[0]))
            continue
        unchanged = [item for item, _ in group if head.content_hash in item_content_hashes(item)]
        if unchanged:
            holders[guid] = unchanged[0]
        elif head.event_seq is None:  # decided in this batch (another fetch of the source)
            recorded_pages.append((guid, head.url))
        else:
            to_read[head.event_seq] = guid
    if to_read:
        recorded_pages += [
            (to_read[event_seq], url) for event_seq, (*_, url, _guid) in latest_texts(list(to_read)).items()
        ]
    moved: list[tuple[ParsedItem, str]] = []  # items alone with a guid recorded for another page
    for guid, recorded_page in recorded_pages:
        group = by_guid[guid]
        on_page = [item for item, page in group if page == recorded_page] or [
            item for item, page in group if page is not None and _same_page(page, recorded_page)
        ]
        if on_page:
            holders[guid] = on_page[0]
        elif len(group) > 1 or group[0][1] is None:  # an item without a page is no page's article
            holders[guid] = None
        else:
            moved.append(_paged(group[0]))
    if moved:
        for stream_id, head in heads_of(
            [s for _, page in moved for s in _page_streams(source_id, page)]
        ).items():
            heads.setdefault(stream_id, head)
    # An item alone with its guid is the article recorded by its page (a link no other item
    # of the document has) if that article's latest version came with the same guid: one
    # its guid named no more, when the guid was shared. (A page recorded without the guid,
    # a live blog's, say, is another article.)
    found = [
        (item, page, heads[stream_ids[0]])
        for item, page in alone + moved
        if (stream_ids := [s for s in _page_streams(source_id, page) if s in heads])
    ]
    links = Counter(item.url for item in items) if found else Counter()
    to_check: dict[int, ParsedItem] = {}  # the event_seq of a page's latest version -> the item
    for item, page, head in found:
        if head.withdrawn or links[page] > 1:
            continue
        if head.event_seq is None:  # decided in this batch
            if head.guid == item.guid:
                holders[item.guid or ""] = None
        else:
            to_check[head.event_seq] = item
    if to_check:
        for event_seq, (*_, recorded_guid) in latest_texts(list(to_check)).items():
            if recorded_guid == to_check[event_seq].guid:
                holders[to_check[event_seq].guid or ""] = None
    return _reidentify(result, by_guid, holders)


def _paged(member: tuple[ParsedItem, str | None]) -> tuple[ParsedItem, str]:
    item, page = member
    assert page is not None  # a guid's only item, and one of them has a page
    return item, page


def _reidentify(
    result: ParseResult,
    by_guid: dict[str, list[tuple[ParsedItem, str | None]]],
    holders: dict[str, ParsedItem | None],
) -> list[ParsedItem]:
    """Give each guid's ``holders`` item the guid and its other items their pages (those
    without pages rejected), where no other item of the document has the identity it would
    take; the items whose identity changed."""
    counts: Counter[str] | None = None  # the identities of the document's items, once needed
    changed: list[ParsedItem] = []
    rejected: dict[int, str] = {}  # id() of an item -> the guid it shares
    for guid, holder in holders.items():
        group = by_guid[guid]
        wanted = [guid if item is holder else page for item, page in group]  # None: rejected
        if all(item.identity == identity for (item, _), identity in zip(group, wanted, strict=True)):
            continue
        if counts is None:
            counts = Counter(item.identity for item in result.items)
        within = Counter(item.identity for item, _ in group)
        taken = [identity for identity in wanted if identity is not None]
        if len(set(taken)) < len(taken) or any(counts[identity] > within[identity] for identity in taken):
            continue  # another item of the document has it: two items would be one article
        for (item, _), identity in zip(group, wanted, strict=True):
            if identity is None:
                rejected[id(item)] = guid
            elif item.identity != identity:
                counts[item.identity] -= 1
                counts[identity] += 1
                item.identity = identity
                item.issues.append(
                    f"identified by its guid: the article recorded under {guid[:100]!r} is on its page"
                    if identity == guid
                    else f"identified by its link: guid {guid[:100]!r} does not tell it apart"
                )
                changed.append(item)
    if rejected:
        # The document's index of each item: those the parser rejected are not among them.
        parsed_out = {rejection.index for rejection in result.rejections}
        indices = (at for at in range(len(result.items) + len(parsed_out)) if at not in parsed_out)
        for index, item in zip(indices, result.items, strict=False):
            if id(item) in rejected:
                reason = f"guid {rejected[id(item)][:100]!r} is another item's, and nothing else names it"
                result.rejections.append(Rejection(index, reason, item.identity))
        result.items = [item for item in result.items if id(item) not in rejected]
    return changed


def guid_streams(source_id: str, items: Iterable[ParsedItem], heads: dict[str, StreamHead]) -> list[str]:
    """The streams ``follow_shared_guids`` reads that ``heads`` (those of the items' own)
    lacks: the guid's of an item identified otherwise and, for a guid not there, the item's
    page's (at either scheme)."""
    ids = []
    for item in items:
        if item.guid is None or item.url is None or (guid := article_id(source_id, item.guid)) in heads:
            continue
        if item.identity != item.guid:
            ids.append(guid)
        ids.extend(stream_id for stream_id in _page_streams(source_id, item.url) if stream_id != guid)
    return ids


def _page_streams(source_id: str, page: str) -> list[str]:
    """The streams of an article identified by ``page``, at either scheme."""
    twin = scheme_twin(page)
    return [article_id(source_id, page)] + ([article_id(source_id, twin)] if twin else [])


def _same_page(page: str, other: str | None) -> bool:
    """Whether two web addresses are one page but for http and https."""
    return other is not None and without_scheme(page) == without_scheme(other)


def reread_heads(
    items: list[ParsedItem],
    stream_ids: list[str],
    heads: dict[str, StreamHead],
    latest_texts: Callable[[list[int]], dict[int, tuple[str | None, ...]]],
) -> None:
    """Give each head that an item of a live article matches by neither hash the hash of
    its text as seen now (``latest_texts``: ``EventStore.latest_texts``; ``stream_ids``:
    the items', as ``follow_scheme_moves`` gives them), read for those
    versions only. A version recorded before ``content_hashes`` took the text as seen is
    hashed as written: an item that differs from it only in what no reader sees (a soft
    hyphen gone, a link now over https) would otherwise be recorded once as a revision."""
    differing: dict[int, StreamHead] = {}
    for item, stream_id in zip(items, stream_ids, strict=True):
        head = heads.get(stream_id)
        if head is None or head.event_seq is None or head.withdrawn or item.withdrawn:
            continue  # a version decided in this batch was hashed as seen
        if head.content_hash not in item_content_hashes(item):
            differing[head.event_seq] = head
    if differing:
        for event_seq, (title, summary, body, byline, url, _guid) in latest_texts(list(differing)).items():
            differing[event_seq].content_hash = content_hashes(title, summary, body, byline, url=url)[0]


def item_content_hashes(item: ParsedItem) -> tuple[str, ...]:
    """The hash of the item's text as seen, recorded with a new version, and the hash of
    its text as written if that differs (see ``content_hashes``); for a link with a route
    or a story's ``sid`` (``canonical_url``), also those with the link as read before they
    were kept, so that the upgrade records no revision."""
    texts = (item.title, item.summary, item.body, item.byline)
    hashes = content_hashes(*texts, url=item.url)
    if item.url and "#" in item.url:
        hashes += content_hashes(*texts, url=item.url.partition("#")[0])
    if item.url and "sid=" in item.url.lower() and (before := without_story_sids(item.url)):
        hashes += content_hashes(*texts, url=before)  # a story's sid was dropped as a session's
    if item.earlier_reading is not None:
        hashes += content_hashes(*item.earlier_reading, item.byline, url=item.url)
    return hashes


def item_payload(item: ParsedItem, raw_ref: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "identity": item.identity,
        "guid": item.guid,
        "link": item.link,
        "url": item.url,
        "title": item.title,
        "summary": item.summary,
        "body": item.body,
        "byline": item.byline,
        "language": item.language,
        "published_at": iso(item.published_at),
        "updated_at": iso(item.updated_at),
        "raw": raw_ref if item.line is None else {**raw_ref, "line": item.line},
    }
    if item.wire:
        payload["wire"] = item.wire
    if item.issues:
        payload["issues"] = item.issues
    return payload


def _is_older_wire_version(item: ParsedItem, head: StreamHead) -> bool:
    """Whether the item's wire version is not past the logged one: a change of text needs
    a higher version; a kill may keep the version it cancels (v3 usable, then v3 canceled)."""
    new, old = wire_version_key(item.wire.get("version")), head.wire_version
    if new is None or old is None:
        return False
    return new < old if item.withdrawn else new <= old


def _partial(item: ParsedItem) -> bool:
    """Whether the item is a wire's partial representation of its article (ninjs
    ``representationtype``): recorded when it is all the log has of the article, or a
    withdrawal, but no revision; and its version does not keep the whole one out."""
    return item.wire.get("representation") == "partial"


def _made_before(item: ParsedItem, head: StreamHead) -> bool:
    """Whether the item's version was made before the latest one recorded, both dated."""
    return item.updated_at is not None and head.made_at is not None and item.updated_at < head.made_at


def _repeats(head: StreamHead, item: ParsedItem, hashes: tuple[str, ...]) -> bool:
    """Whether ``item`` is what the stream already says: a withdrawal of a withdrawn
    article, or the text of a live one."""
    if item.withdrawn:
        return head.withdrawn
    return head.content_hash in hashes and not head.withdrawn


def decide(
    source_id: str,
    items: list[ParsedItem],
    heads: dict[str, StreamHead],
    raw_ref: dict[str, Any],
    *,
    dated_versions: bool = False,
) -> tuple[list[PendingEvent], Counter[str]]:
    """Events for one source's items; ``heads`` is updated as events are decided,
    so an identity repeated later in the same batch is judged against them.

    With ``dated_versions`` (an archive's lines, whose ``updated_at`` says when each
    version was made), a version made before the latest one recorded is stale: listed
    out of order, it would otherwise be recorded as the article's current text."""
    pending: list[PendingEvent] = []
    counts: Counter[str] = Counter()
    for item in items:
        stream_id = article_id(source_id, item.identity)
        hashes = item_content_hashes(item)
        chash = hashes[0]
        head = heads.get(stream_id)
        if head is None:
            event_type = "article.withdrawn" if item.withdrawn else "article.published"
            occurred_at = item.published_at or item.updated_at
        elif _repeats(head, item, hashes):
            counts["unchanged"] += 1
            if dated_versions and head.made_at is None:
                head.made_at = item.updated_at  # the line says when the version it repeats was made
            continue
        elif _partial(item) and not item.withdrawn:
            # A listing or a metadata update: text it leaves out would read as deleted.
            counts["partial"] += 1
            continue
        elif _is_older_wire_version(item, head):
            # Before the withdrawal below: an older version that was canceled (served again,
            # or listed after the newer one in the same document) withdraws nothing now.
            counts["stale"] += 1
            continue
        elif dated_versions and _made_before(item, head):
            counts["stale"] += 1
            continue
        elif item.withdrawn:
            event_type, occurred_at = "article.withdrawn", item.updated_at
        else:
            event_type = "article.revised"
            newer = item.updated_at and (head.occurred_at is None or item.updated_at > head.occurred_at)
            occurred_at = item.updated_at if newer else None
        pending.append(
            PendingEvent(event_type, stream_id, source_id, item_payload(item, raw_ref), occurred_at, chash)
        )
        counts[COUNT_KEYS[event_type]] += 1
        if head is None:
            head = heads[stream_id] = StreamHead(0, event_type, None, None, None)
        head.version += 1
        head.event_type = event_type
        head.content_hash = chash
        # The latest time, as the log's head reads it: where a chunk ends changes nothing.
        if occurred_at and (head.occurred_at is None or occurred_at > head.occurred_at):
            head.occurred_at = occurred_at
        if not _partial(item):
            head.wire_version = higher_wire_version(head.wire_version, item.wire.get("version"))
        head.event_seq = None  # not in the log yet
        head.url, head.guid = item.url, item.guid
        if dated_versions:
            head.made_at = item.updated_at
    return pending, counts
