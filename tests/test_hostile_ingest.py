"""The log never records false history, and one source's trouble stays its own.

Real HTTP on 127.0.0.1, real DuckDB files, a real second process holding the lock.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

import ingestion._log.backfill
from ingestion._demo.localserver import RequestInfo, Route
from ingestion._log import events
from ingestion._log.backfill import backfill
from ingestion._log.feed_states import current_states_file, feed_states_path, read_feed_states, states_of
from ingestion._log.record import blob_store_for, ingest, record
from ingestion._log.store import EventStore, PendingEvent
from ingestion._log.verify import verify
from ingestion._model import FetchRequest
from ingestion._sources import text
from ingestion._sources.config import Source
from ingestion._sources.dates import utcnow
from ingestion._sources.fetch import FetchLimits
from ingestion._sources.parse import FIELD_CAPS, MAX_ITEMS_PER_DOCUMENT, parse_body
from ingestion._sources.plan import fetch_all, is_due, plan
from ingestion._sources.rss import parse_rss
from ingestion._sources.rss_fast import parse_rss_fast

from .conftest import run_cli
from .feeds import item, rss

FAST = FetchLimits(connect_timeout=1, read_timeout=2, total_timeout=5, max_attempts=1)


def query(db_path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def feed_payloads(db_path: Path) -> list[dict]:
    rows = query(db_path, "SELECT payload FROM raw.events WHERE starts_with(stream_id, 'feed:') ORDER BY 1")
    return [json.loads(p) for (p,) in rows]


def titles_by_version(db_path: Path) -> list[str]:
    rows = query(
        db_path,
        "SELECT payload ->> '$.title' FROM raw.events WHERE starts_with(event_type, 'article.') "
        "ORDER BY event_seq",
    )
    return [title for (title,) in rows]


def serve(server, path: str, body: bytes) -> Source:
    server.routes[path] = Route(body)
    return Source(path.strip("/"), server.url(path))


# -- caps: nothing huge gets into the log ---------------------------------------------


def test_a_field_over_its_cap_is_cut_and_the_cut_recorded(server, db_path: Path) -> None:
    huge_body = "<p>" + "word " * 300_000 + "</p>"  # 1.5 million characters
    source = serve(server, "/huge", rss([item(1, description=huge_body), item(2)]))
    report = ingest([source], db_path, limits=FAST)
    assert report.sources[0].counts["new"] == 2
    (body,) = query(db_path, "SELECT max(length(payload ->> '$.body')) FROM raw.events")[0]
    assert body is None or body <= FIELD_CAPS["body"]
    (summary, issues) = query(
        db_path,
        "SELECT length(payload ->> '$.summary'), payload -> '$.issues' FROM raw.events "
        "WHERE payload ->> '$.identity' = 'urn:test:1'",
    )[0]
    assert summary <= FIELD_CAPS["summary"]
    assert "summary of 1,499,999 characters cut to the first 20,000" in issues
    (fetched,) = [p for p in feed_payloads(db_path)]
    assert fetched["fields_cut"] == [{"identity": "urn:test:1", "fields": ["summary"]}]


def test_items_past_the_per_document_cap_are_counted_not_read(server, db_path: Path) -> None:
    many = MAX_ITEMS_PER_DOCUMENT + 700
    source = serve(server, "/many", rss([{"title": f"t{n}", "guid": f"g{n}"} for n in range(many)]))
    report = ingest([source], db_path, limits=replace(FAST, max_bytes=20_000_000))
    assert report.sources[0].counts["new"] == MAX_ITEMS_PER_DOCUMENT
    (fetched,) = feed_payloads(db_path)
    assert fetched["items_cut"] == 700
    assert fetched["items_seen"] == many
    assert "700 items past the first" in report.sources[0].message


# -- false history ------------------------------------------------------------------


def test_a_headline_that_returns_to_an_earlier_wording_is_a_revision(server, db_path: Path) -> None:
    source = Source("flip", server.url("/flip"))
    for title in ("Wording A", "Wording B", "Wording A"):
        server.routes["/flip"] = Route(rss([item(1, title)]))
        ingest([source], db_path, limits=FAST)
    assert titles_by_version(db_path) == ["Wording A", "Wording B", "Wording A"]


def test_guids_that_change_on_every_fetch_fall_back_to_the_link(server, db_path: Path) -> None:
    fetches = {"n": 0}

    def fresh_guids(_: RequestInfo) -> Route:
        fetches["n"] += 1
        return Route(rss([item(n, guid=f"urn:session-{fetches['n']}:{n}") for n in range(1, 6)]))

    server.routes["/unstable"] = fresh_guids
    source = Source("unstable", server.url("/unstable"))
    for _ in range(4):
        ingest([source], db_path, limits=FAST)
    assert query(
        db_path, "SELECT count(DISTINCT stream_id) FROM raw.events WHERE starts_with(event_type, 'article.')"
    ) == [(5,)]
    decisions = [p["identity_decision"] for p in feed_payloads(db_path) if "identity_decision" in p]
    assert len(decisions) == 1 and decisions[0]["mode"] == "link"
    assert "new guid" in decisions[0]["reason"]
    # A sixth story is still a new article, and an edit of a known one a revision.
    server.routes["/unstable"] = Route(
        rss([item(n, guid=f"urn:later:{n}") for n in range(2, 7)] + [item(1, "Edited", guid="urn:x")])
    )
    report = ingest([source], db_path, limits=FAST)
    assert (report.sources[0].counts["new"], report.sources[0].counts["revised"]) == (1, 1)


def test_stable_guids_with_changing_links_keep_their_identity(server, db_path: Path) -> None:
    source = Source("stable", server.url("/stable"))
    for visit in range(3):
        server.routes["/stable"] = Route(
            rss([item(n, link=f"http://example.org/news/{n}?v={visit}") for n in range(1, 5)])
        )
        ingest([source], db_path, limits=FAST)
    assert query(
        db_path, "SELECT count(DISTINCT stream_id) FROM raw.events WHERE starts_with(event_type, 'article.')"
    ) == [(4,)]
    assert not [p for p in feed_payloads(db_path) if "identity_decision" in p]


def test_items_sharing_one_link_keep_their_guids(server, db_path: Path) -> None:
    source = Source("live", server.url("/live"))
    for guids in (["u1", "u2", "u3", "u4"], ["u5", "u6", "u7", "u1"], ["u8", "u9", "u5"]):
        server.routes["/live"] = Route(
            rss([item(0, f"Update {g}", guid=g, link="https://example.org/live") for g in guids])
        )
        report = ingest([source], db_path, limits=FAST)
        assert report.sources[0].counts["revised"] == 0
    published = query(db_path, "SELECT count(*) FROM raw.events WHERE event_type = 'article.published'")
    assert published == [(9,)]
    assert not [p for p in feed_payloads(db_path) if "identity_decision" in p]


def _story(name: str, title: str | None = None, guid: str = "0", scheme: str = "https") -> dict[str, str]:
    return {"title": title or f"Story {name}", "guid": guid, "link": f"{scheme}://example.org/{name}"}


def _serve(server, path: str, stories: list[dict[str, str]], minute: int) -> None:
    server.routes[path] = Route(rss(stories, build_date=f"Mon, 09 Mar 2026 10:{minute:02d}:00 GMT"))


def article_histories(db_path: Path) -> list[list[str]]:
    """Each article's versions (link and title), whatever it is identified by."""
    rows = query(
        db_path,
        "SELECT list(concat_ws(' | ', payload ->> '$.url', payload ->> '$.title') ORDER BY event_seq) "
        "FROM raw.events WHERE starts_with(event_type, 'article.') GROUP BY stream_id ORDER BY 1",
    )
    return [versions for (versions,) in rows]


def test_items_given_one_guid_are_each_their_own_article_in_any_order(server, db_path: Path) -> None:
    """A site giving every item the same guid ("0"): the first item took the guid and the
    others were rejected as duplicates, and when another came first, it was recorded as a
    revision of the article before."""
    source = Source("one-guid", server.url("/one-guid"))
    fetches = [
        ([_story("a")], (1, 0)),  # alone: the article under the guid
        ([_story("b"), _story("a")], (1, 0)),
        ([_story("c"), _story("b")], (1, 0)),  # neither is on the guid's page
        ([_story("b", "Story b, revised")], (0, 1)),  # alone, its guid recorded for a's page
        ([_story("a"), _story("c")], (0, 0)),
        ([_story("a", "Story a, revised"), _story("b", "Story b, revised")], (0, 1)),
    ]
    for minute, (stories, (new, revised)) in enumerate(fetches):
        _serve(server, "/one-guid", stories, minute)
        counts = ingest([source], db_path, limits=FAST).sources[0].counts
        assert (counts["new"], counts["revised"], counts["rejected"]) == (new, revised, 0)
    assert article_histories(db_path) == [
        ["https://example.org/a | Story a", "https://example.org/a | Story a, revised"],
        ["https://example.org/b | Story b", "https://example.org/b | Story b, revised"],
        ["https://example.org/c | Story c"],
    ]
    assert not [p for p in feed_payloads(db_path) if "identity_decision" in p]


@pytest.mark.parametrize(
    ("guids", "orders"),
    [("0000", "ab ba ab b"), ("0123", "ab ba ab ba")],
    ids=["one-guid", "a-new-guid-each-fetch"],
)
def test_a_guid_items_share_from_the_start_names_none_of_them(
    server, db_path: Path, guids: str, orders: str
) -> None:
    """A lone item whose guid is new to the log is its page's article when that article came
    with the same guid (one-guid); under another guid it would be a new article (as before)."""
    source = Source("shared", server.url("/shared"))
    for minute, (order, guid) in enumerate(zip(orders.split(), guids, strict=True)):
        title = "Story b, revised" if minute == 3 else None  # the last fetch revises b
        _serve(
            server, "/shared", [_story(name, title if name == "b" else None, guid) for name in order], minute
        )
        ingest([source], db_path, limits=FAST)
    assert article_histories(db_path) == [
        ["https://example.org/a | Story a"],
        ["https://example.org/b | Story b", "https://example.org/b | Story b, revised"],
    ]


def _fetch_each(
    server, db_path: Path, path: str, fetches: list[list[dict[str, str]]]
) -> list[tuple[int, ...]]:
    """Serve and ingest each document in turn: the counts (new, revised, unchanged, rejected) of each."""
    source = Source(path.strip("/"), server.url(path))
    counted = []
    for minute, stories in enumerate(fetches):
        _serve(server, path, stories, minute)
        counts = ingest([source], db_path, limits=FAST).sources[0].counts
        counted.append(tuple(counts[key] for key in ("new", "revised", "unchanged", "rejected")))
    return counted


NOTICE = {"title": "Notice", "guid": "0"}  # no link: nothing but its guid identifies it


@pytest.mark.parametrize(
    ("fetches", "counted"),
    [
        ([[NOTICE], [NOTICE, _story("a")]], [(1, 0, 0, 0), (1, 0, 1, 0)]),
        ([[NOTICE, _story("a")], [_story("a"), NOTICE]], [(2, 0, 0, 0), (0, 0, 2, 0)]),
        ([[NOTICE, _story("a")], [_story("a")]], [(2, 0, 0, 0), (0, 0, 1, 0)]),
        ([[_story("a")], [NOTICE, _story("a")]], [(1, 0, 0, 0), (0, 0, 1, 1)]),  # the guid is a's
        ([[_story("a")], [NOTICE], [_story("a"), NOTICE]], [(1, 0, 0, 0), (0, 0, 0, 1), (0, 0, 1, 1)]),
    ],
    ids=[
        "notice-then-both",
        "both-in-either-order",
        "both-then-story",
        "story-then-both",
        "story-then-notice",
    ],
)
def test_an_item_without_a_page_is_told_apart_from_those_with_pages_by_its_guid(
    server, db_path: Path, fetches: list[list[dict[str, str]]], counted: list[tuple[int, ...]]
) -> None:
    """Sharing the guid out recorded the story as a revision of the notice, or the notice
    as a revision of the story, by the order the feed listed them."""
    assert _fetch_each(server, db_path, "/no-page", fetches) == counted
    assert all(len(versions) == 1 for versions in article_histories(db_path))


@pytest.mark.parametrize("reverse", [False, True], ids=["page-first", "notice-first"])
def test_one_page_at_both_schemes_beside_an_item_without_a_page_is_one_article(
    server, db_path: Path, reverse: bool
) -> None:
    stories = [_story("a"), _story("a", scheme="http"), NOTICE]
    assert _fetch_each(server, db_path, "/twice", [stories[::-1] if reverse else stories]) == [(2, 0, 0, 1)]
    first_versions = [v[0].replace("https://", "").replace("http://", "") for v in article_histories(db_path)]
    assert sorted(first_versions) == ["Notice", "example.org/a | Story a"]


def test_an_item_rejected_for_sharing_a_guid_is_named_by_its_place_in_the_document(
    server, db_path: Path
) -> None:
    untitled = {"guid": "x", "link": "https://example.org/x"}  # the parser's rejection, item 0
    _fetch_each(server, db_path, "/places", [[_story("a")], [untitled, _story("a"), NOTICE]])
    assert [r["index"] for r in feed_payloads(db_path)[-1]["rejections"]] == [0, 2]


def test_a_lone_item_whose_shared_guid_is_new_and_page_moved_to_https_is_its_page(
    server, db_path: Path
) -> None:
    fetches = [[_story("a", scheme="http"), _story("b", scheme="http")], [_story("b", "Story b, revised")]]
    assert _fetch_each(server, db_path, "/moved-page", fetches) == [(2, 0, 0, 0), (0, 1, 0, 0)]


def test_guids_new_on_a_page_recorded_without_one_are_their_own_articles(server, db_path: Path) -> None:
    """A live blog: updates with guids of their own on a page first recorded by its link."""
    source = Source("live", server.url("/live"))
    live = "https://example.org/live"
    fetches = [
        [{"title": "Live coverage", "link": live}],
        [{"title": f"Update {g}", "guid": g, "link": live} for g in ("u1", "u2")],
        [{"title": "Update u3", "guid": "u3", "link": live}],
    ]
    for minute, stories in enumerate(fetches):
        _serve(server, "/live", stories, minute)
        ingest([source], db_path, limits=FAST)
    assert sorted(article_histories(db_path)) == [
        [f"{live} | Live coverage"],
        [f"{live} | Update u1"],
        [f"{live} | Update u2"],
        [f"{live} | Update u3"],
    ]


def test_tracking_parameters_in_a_route_are_no_other_article(server, db_path: Path) -> None:
    source = Source("tracked", server.url("/tracked"))
    for minute, campaign in enumerate(["mon", "tue"]):
        link = f"https://example.org/#!/story/1?utm_source=rss&amp;utm_campaign={campaign}"
        _serve(server, "/tracked", [{"title": "Story 1", "link": link}], minute)
        ingest([source], db_path, limits=FAST)
    assert article_histories(db_path) == [["https://example.org/#!/story/1 | Story 1"]]


def test_one_page_at_both_schemes_under_one_guid_is_one_item(server, db_path: Path) -> None:
    _serve(server, "/schemes", [_story("a", scheme="http"), _story("a")], 0)
    counts = ingest([Source("schemes", server.url("/schemes"))], db_path, limits=FAST).sources[0].counts
    assert (counts["new"], counts["rejected"]) == (1, 1)


def test_a_guid_whose_first_item_is_rejected_keeps_its_article(server, db_path: Path) -> None:
    source = Source("untitled", server.url("/untitled"))
    _serve(server, "/untitled", [_story("a")], 0)
    ingest([source], db_path, limits=FAST)
    _serve(server, "/untitled", [{"guid": "0", "link": "https://example.org/x"}, _story("a")], 1)
    counts = ingest([source], db_path, limits=FAST).sources[0].counts
    assert (counts["new"], counts["unchanged"]) == (0, 1)


def test_two_fetches_of_a_source_with_one_guid_in_one_batch(server, db_path: Path) -> None:
    """The guid's article revised by the first fetch is told apart in the second all the same."""
    source = Source("batch", server.url("/batch"))
    _serve(server, "/batch", [_story("a")], 0)
    ingest([source], db_path, limits=FAST)
    blobs = blob_store_for(db_path)
    fetched = []
    for minute, order in enumerate([("a", "b"), ("b", "a")], start=1):
        _serve(server, "/batch", [_story(n, "Story a, revised" if n == "a" else None) for n in order], minute)
        fetched += fetch_all(plan({}, [source]).requests, blobs, limits=FAST)
    record(db_path, fetched)
    assert article_histories(db_path) == [
        ["https://example.org/a | Story a", "https://example.org/a | Story a, revised"],
        ["https://example.org/b | Story b"],
    ]


def test_an_item_alone_with_its_guid_whose_page_moved_to_https_is_its_own_article(
    server, db_path: Path
) -> None:
    source = Source("alone", server.url("/alone"))
    for minute, names in enumerate(["a", "ab"]):  # the guid recorded for a's page, b's page by itself
        _serve(server, "/alone", [_story(name, scheme="http") for name in names], minute)
        ingest([source], db_path, limits=FAST)
    _serve(server, "/alone", [_story("b", "Story b, revised")], 2)
    ingest([source], db_path, limits=FAST)
    assert article_histories(db_path) == [
        ["http://example.org/a | Story a"],
        ["http://example.org/b | Story b", "https://example.org/b | Story b, revised"],
    ]


def test_a_guid_whose_page_moves_is_still_one_article(server, db_path: Path) -> None:
    source = Source("moved", server.url("/moved"))
    for minute, (link, title) in enumerate([("talks", "Talks begin"), ("talks-end", "Talks end")]):
        stories = [item(1, title, link=f"https://example.org/{link}"), item(2)]
        server.routes["/moved"] = Route(rss(stories, build_date=f"Mon, 09 Mar 2026 10:{minute:02d}:00 GMT"))
        ingest([source], db_path, limits=FAST)
    assert titles_by_version(db_path) == ["Talks begin", "Headline number 2", "Talks end"]
    assert query(
        db_path, "SELECT count(DISTINCT stream_id) FROM raw.events WHERE starts_with(event_type, 'article.')"
    ) == [(2,)]


def test_articles_of_a_one_page_site_are_told_apart_by_their_routes(server, db_path: Path) -> None:
    """Links such as https://example.org/#!/story/1 all read as the site's address: the
    first item was read and the others rejected, and each fetch recorded the item it
    listed first as a revision of the one before."""
    source = Source("routes", server.url("/routes"))
    for minute, (stories, new) in enumerate([(("1", "2"), 2), (("3", "1", "2"), 1)]):
        items = [{"title": f"Story {n}", "link": f"https://example.org/#!/story/{n}"} for n in stories]
        server.routes["/routes"] = Route(rss(items, build_date=f"Mon, 09 Mar 2026 10:{minute:02d}:00 GMT"))
        report = ingest([source], db_path, limits=FAST).sources[0]
        assert (report.counts["new"], report.counts["revised"], report.counts["rejected"]) == (new, 0, 0)
    assert titles_by_version(db_path) == ["Story 1", "Story 2", "Story 3"]


def test_an_article_recorded_before_routes_were_kept_is_not_revised_by_the_upgrade(
    server, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = Source("route", server.url("/route"))
    story = item(1, link="https://example.org/#!/story/1")
    server.routes["/route"] = Route(rss([story]))
    with monkeypatch.context() as before:  # the rule before: every fragment dropped
        canonical = text.canonical_url
        before.setattr(text, "canonical_url", lambda url: canonical(url and url.partition("#")[0]))
        ingest([source], db_path, limits=FAST)
    server.routes["/route"] = Route(rss([story], build_date="Mon, 09 Mar 2026 10:01:00 GMT"))
    assert ingest([source], db_path, limits=FAST).sources[0].counts["unchanged"] == 1
    server.routes["/route"] = Route(
        rss([{**story, "title": "Revised"}], build_date="Mon, 09 Mar 2026 10:02:00 GMT")
    )
    ingest([source], db_path, limits=FAST)
    urls = query(
        db_path,
        "SELECT payload ->> '$.url' FROM raw.events WHERE event_type LIKE 'article.%' ORDER BY event_seq",
    )
    assert urls == [("https://example.org/",), ("https://example.org/#!/story/1",)]


def _archive(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_a_grown_archive_records_only_what_is_new(tmp_path: Path, db_path: Path) -> None:
    first = [
        {"guid": "a", "title": "A v1"},
        {"guid": "b", "title": "B v1"},
        {"guid": "a", "title": "A v2"},
    ]
    backfill(_archive(tmp_path / "export.jsonl", first), "wire", db_path)
    grown = [
        *first,
        {"guid": "c", "title": "C v1"},
        {"guid": "a", "title": "A v3"},
        {"guid": "b", "title": "B v1"},
    ]
    report = backfill(_archive(tmp_path / "export.jsonl", grown), "wire", db_path)
    assert (report.counts["new"], report.counts["revised"]) == (1, 1)
    assert titles_by_version(db_path) == ["A v1", "B v1", "A v2", "C v1", "A v3"]
    # And a real return to an earlier text after what the log held is still recorded.
    again = [*grown, {"guid": "a", "title": "A v1"}]
    report = backfill(_archive(tmp_path / "export.jsonl", again), "wire", db_path)
    assert (report.counts["new"], report.counts["revised"]) == (0, 1)
    assert titles_by_version(db_path)[-1] == "A v1"
    assert verify(db_path).ok


def test_repeated_lines_in_a_grown_archive_replay_nothing(tmp_path: Path, db_path: Path) -> None:
    first = [{"guid": "a", "title": "A"}, {"guid": "a", "title": "A"}, {"guid": "a", "title": "B"}]
    backfill(_archive(tmp_path / "export.jsonl", first), "wire", db_path)
    report = backfill(
        _archive(tmp_path / "export.jsonl", [*first, {"guid": "c", "title": "C"}]), "wire", db_path
    )
    assert (report.counts["new"], report.counts["revised"]) == (1, 0)
    assert titles_by_version(db_path) == ["A", "B", "C"]


# -- one source's trouble stays its own ----------------------------------------------


def test_a_damaged_blob_fails_its_source_only_and_heals_on_the_next_fetch(server, db_path: Path) -> None:
    good = serve(server, "/good", rss([item(1)]))
    bad = serve(server, "/bad", rss([item(2), item(3)]))
    blobs = blob_store_for(db_path)
    outcomes = fetch_all(plan({}, [good, bad]).requests, blobs, limits=FAST)
    damaged = blobs.path_for(outcomes[1].body_sha256)
    damaged.write_bytes(damaged.read_bytes()[:20])  # truncated gzip: EOFError on read
    report = record(db_path, outcomes, blobs)
    by_source = {s.source_id: s for s in report.sources}
    assert by_source["good"].counts["new"] == 1
    assert by_source["bad"].status == "failed" and "BlobError" in by_source["bad"].message
    # The next fetch of the same body writes the blob again, and the items arrive.
    again = {s.source_id: s for s in ingest([good, bad], db_path, limits=FAST).sources}
    assert again["bad"].counts["new"] == 2


# -- planning: on time, without the lock ---------------------------------------------


def test_a_source_is_due_despite_the_seconds_between_planning_and_recording() -> None:
    now = utcnow()
    recorded_a_run_ago = now - timedelta(minutes=15) + timedelta(seconds=40)
    assert is_due(recorded_a_run_ago, 15, now)
    assert is_due(now - timedelta(seconds=55), 1, now)
    assert not is_due(now - timedelta(minutes=5), 15, now)
    assert is_due(None, 15, now)


def test_a_server_that_always_says_304_is_fetched_unconditionally_every_hour(server, db_path: Path) -> None:
    state = {"body": rss([item(1)])}

    def lying(request: RequestInfo) -> Route:
        if request.headers.get("if-none-match"):
            return Route(status=304)
        return Route(state["body"], headers={"ETag": '"same-forever"'})

    server.routes["/lying"] = lying
    source = Source("lying", server.url("/lying"))
    ingest([source], db_path, limits=FAST)
    state["body"] = rss([item(1), item(2)])
    soon = plan(read_feed_states(db_path), [source]).requests
    assert soon[0].etag == '"same-forever"'
    later = plan(read_feed_states(db_path), [source], now=utcnow() + timedelta(minutes=61)).requests
    assert later[0].etag is None and later[0].last_modified is None
    report = record(db_path, fetch_all(later, blob_store_for(db_path), limits=FAST))
    assert report.sources[0].counts["new"] == 1


def test_planning_does_not_wait_for_the_writer_lock(server, db_path: Path) -> None:
    source = serve(server, "/calm", rss([item(1)]))
    ingest([source], db_path, limits=FAST)
    assert feed_states_path(db_path).exists()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(db_path)!r}); print(1, flush=True); time.sleep(8)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline().strip() == b"1"
        started = time.monotonic()
        states = read_feed_states(db_path, lock_timeout=1)
        assert time.monotonic() - started < 1
        assert states["calm"].latest_body is not None
        # The whole command waits for the writer only to record, then succeeds.
        config = db_path.parent / "feeds.yml"
        config.write_text(f"sources:\n  - id: calm\n    url: {source.url}\n")
        result = run_cli("ingest", "--db", str(db_path), "--config", str(config), timeout=120)
        assert result.returncode == 0, result.stderr
        assert "body unchanged" in result.stdout
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_stale_feed_states_are_never_trusted(server, db_path: Path, tmp_path: Path) -> None:
    source = serve(server, "/s", rss([item(1)]))
    ingest([source], db_path, limits=FAST)
    kept = feed_states_path(db_path).read_text()
    server.routes["/s"] = Route(rss([item(1, "Changed")]))
    ingest([source], db_path, limits=FAST)
    feed_states_path(db_path).write_text(kept)  # as if the last run died before writing it
    states = read_feed_states(db_path)
    (latest,) = query(
        db_path, "SELECT arg_max(content_hash, event_seq) FROM raw.events WHERE stream_id = 'feed:s'"
    )[0]
    assert states["s"].latest_body == latest


def test_feed_states_written_from_the_new_events_equal_a_full_read_of_the_log(server, db_path: Path) -> None:
    """Each run folds only its own events into the states file; after every kind of
    outcome (a body with validators, a 304, a failure with Retry-After, a recovery, a
    source first seen), the file says what reading every event says."""
    validators = {"ETag": '"v1"', "Last-Modified": "Mon, 02 Mar 2026 10:00:00 GMT"}
    server.routes["/etag"] = Route(rss([item(1)]), headers=validators, etag=True)
    server.routes["/flaky"] = Route(b"down", status=503, headers={"Retry-After": "1"})
    sources = [Source("etag", server.url("/etag")), Source("flaky", server.url("/flaky"))]

    def ingest_and_compare() -> None:
        ingest(sources, db_path, limits=FAST)
        with EventStore(db_path, read_only=True) as store:
            assert current_states_file(db_path) == states_of(store)

    ingest_and_compare()
    assert read_feed_states(db_path)["flaky"].retry_after_until is not None
    ingest_and_compare()  # the etag source answers 304
    time.sleep(1.1)
    server.routes["/flaky"] = Route(rss([item(7)]))
    ingest_and_compare()
    server.routes["/etag"] = Route(rss([item(1), item(2)]), headers={"ETag": '"v2"'})
    sources.append(serve(server, "/late", rss([item(3)])))
    ingest_and_compare()
    states = read_feed_states(db_path)
    assert states["etag"].etag == '"v2"' and states["flaky"].latest_body and states["late"].latest_body


def test_a_long_retry_after_is_honoured_by_later_runs(server, db_path: Path) -> None:
    server.routes["/busy"] = Route(b"slow down", status=429, headers={"Retry-After": "100000"})
    source = Source("busy", server.url("/busy"))
    first = ingest([source], db_path, limits=FAST)
    assert first.sources[0].status == "failed"
    asked = len(server.requests)
    later = ingest([source], db_path, limits=FAST)
    assert len(server.requests) == asked  # not asked again
    assert later.sources[0].status == "deferred" and "wait until" in later.sources[0].message
    states = read_feed_states(db_path)
    assert states["busy"].retry_after_until > utcnow() + timedelta(hours=27)
    tomorrow_and_more = utcnow() + timedelta(seconds=100_100)
    assert plan(states, [source], now=tomorrow_and_more).requests


def test_a_retried_record_reports_what_its_first_attempt_recorded(server, db_path: Path) -> None:
    source = serve(server, "/retry", rss([item(1), item(2)]))
    outcomes = fetch_all(plan({}, [source]).requests, blob_store_for(db_path), limits=FAST)
    first = record(db_path, outcomes, run_id="airflow:scheduled__1")
    again = record(db_path, outcomes, run_id="airflow:scheduled__1")
    assert first.events_appended == 3 and again.events_appended == 0
    assert again.sources[0].status == "already recorded"
    assert again.totals()["new"] == first.totals()["new"] == 2


def test_a_cleared_run_records_its_fresh_fetches_and_not_those_already_recorded(
    server, db_path: Path
) -> None:
    """Clearing a scheduler run keeps its id: its fetch tasks run again and bring new
    fetches, which are history; a fetch task left alone brings back what was recorded."""
    paper = serve(server, "/cleared-paper", rss([item(1)]))
    wire = serve(server, "/cleared-wire", rss([item(5)]))
    blobs = blob_store_for(db_path)
    first_fetches = fetch_all(plan({}, [paper, wire]).requests, blobs, limits=FAST)
    first = record(db_path, first_fetches, run_id="airflow:scheduled__2")
    server.routes["/cleared-paper"] = Route(rss([item(1, title="Headline one, corrected")]))
    (paper_again,) = fetch_all(plan({}, [paper]).requests, blobs, limits=FAST)

    cleared = record(db_path, [paper_again, first_fetches[1]], run_id="airflow:scheduled__2")

    assert first.events_appended == 4
    assert cleared.run_id == "airflow:scheduled__2#2" and cleared.events_appended == 2
    assert [s.status for s in cleared.sources][1] == "already recorded"
    assert cleared.totals()["revised"] == 1 and cleared.sources[1].counts["new"] == 1
    retried = record(db_path, [paper_again, first_fetches[1]], run_id="airflow:scheduled__2")
    assert retried.events_appended == 0
    assert [s.counts["revised"] for s in retried.sources] == [1, 0]
    rows = query(db_path, "SELECT run_id, event_type FROM raw.events WHERE source_id = 'cleared-paper'")
    assert sorted(rows) == [
        ("airflow:scheduled__2", "article.published"),
        ("airflow:scheduled__2", "feed.fetched"),
        ("airflow:scheduled__2#2", "article.revised"),
        ("airflow:scheduled__2#2", "feed.fetched"),
    ]


def test_a_source_whose_fetch_task_failed_is_recorded_failed_once_however_often_the_record_runs(
    server, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingestion.pipeline import record_fetches

    monkeypatch.setenv("NEWSROOM_DB", str(db_path))
    paper = serve(server, "/task-paper", rss([item(1)]))
    requests = plan({}, [paper, Source("ghost", "http://ghost.invalid/feed")]).requests
    planned = [{"hosts": ["127.0.0.1"], "requests": [r.to_dict() for r in requests]}]
    fetched = [o.to_dict() for o in fetch_all(requests[:1], blob_store_for(db_path), limits=FAST)]
    started = datetime(2026, 3, 10, 12, tzinfo=UTC)

    first = record_fetches(fetched, "airflow:scheduled__3", planned=planned, run_at=started)
    again = record_fetches(fetched, "airflow:scheduled__3", planned=planned, run_at=started)

    assert first["events_appended"] == 3 and again["events_appended"] == 0
    rows = query(
        db_path,
        "SELECT payload ->> 'error_class', payload ->> 'fetched_at' FROM raw.events "
        "WHERE event_type = 'feed.failed'",
    )
    assert rows == [("FetchTaskFailed", "2026-03-10T12:00:00")]


# -- parsing in worker processes ------------------------------------------------------


def _recorded(db_path: Path) -> list[tuple]:
    """What a run recorded, without what differs between two runs: times and what holds them."""
    rows = query(
        db_path,
        "SELECT event_type, source_id, stream_id, stream_version, content_hash, payload "
        "FROM raw.events ORDER BY stream_id, stream_version",
    )
    timeless = []
    for *fields, payload in rows:
        data = json.loads(payload)
        for key in ("fetched_at", "elapsed_ms", "raw", "decided_at"):
            data.pop(key, None)
        timeless.append((*fields, data))
    return timeless


def test_bodies_parsed_by_worker_processes_record_what_the_writer_would(
    server, tmp_path: Path, monkeypatch
) -> None:
    import ingestion._log.record as recording
    from ingestion._sources.parse_pool import PARALLEL_PARSE_MIN_BYTES, ParsePool

    words = "Ministers met at the harbour to talk about the strike. " * 50
    per_feed = [item(feed * 100 + n, description=words) for feed in range(12) for n in range(60)]
    sources = [serve(server, f"/busy{feed}", rss(per_feed[feed * 60 : feed * 60 + 60])) for feed in range(12)]
    # Bodies that fail to parse, or that a worker gives up on, are the writer's again.
    sources.append(serve(server, "/garbage", b"\x00\x01 not a feed at all " * 1000))
    assert sum(len(server.routes[f"/busy{feed}"].body) for feed in range(12)) > PARALLEL_PARSE_MIN_BYTES

    parsed_by_workers = []
    results = ParsePool.results

    def counted(pool: ParsePool) -> dict:
        found = results(pool)
        parsed_by_workers.append(len(found))
        return found

    monkeypatch.setattr(ParsePool, "results", counted)
    in_workers = tmp_path / "workers" / "newsroom.duckdb"
    report = ingest([replace(s, politeness_delay_seconds=0.0) for s in sources], in_workers, limits=FAST)
    assert parsed_by_workers == [12]
    assert report.totals()["new"] == 720

    monkeypatch.setattr(recording, "parse_workers", lambda: 0)
    in_writer = tmp_path / "writer" / "newsroom.duckdb"
    ingest([replace(s, politeness_delay_seconds=0.0) for s in sources], in_writer, limits=FAST)
    assert parsed_by_workers == [12, 0]
    assert _recorded(in_workers) == _recorded(in_writer)
    assert [row[0] for row in _recorded(in_workers) if row[1] == "garbage"] == ["feed.failed"]


# -- what the log keeps of time and of validators -------------------------------------


def test_recorded_at_never_goes_back_along_the_log(db_path: Path) -> None:
    # A writer that waited for the lock appends after one that came later: its time is not earlier.
    later, earlier = utcnow(), utcnow() - timedelta(minutes=5)
    with EventStore(db_path) as store:
        for when, stream in ((later, "feed:a"), (earlier, "feed:b")):
            with store.transaction():
                store.append(
                    [PendingEvent("feed.fetched", stream, stream[5:], {})], recorded_at=when, run_id="r"
                )
    times = [when for (when,) in query(db_path, "SELECT recorded_at FROM raw.events ORDER BY event_seq")]
    assert times == sorted(times) and times[-1] == later


def test_a_body_without_validators_forgets_the_ones_before(server, db_path: Path) -> None:
    # Kept, body 1's ETag would be sent with the next request, and a 304 would hide a return to it.
    first, second = (
        rss([item(1, title="Minister resigns")]),
        rss([item(1, title="Minister denies resigning")]),
    )
    server.routes["/feed"] = Route(first, headers={"ETag": '"v1"'})
    source = Source("news", server.url("/feed"))
    ingest([source], db_path, limits=FAST)
    assert read_feed_states(db_path)["news"].etag == '"v1"'
    server.routes["/feed"] = Route(second)
    ingest([source], db_path, limits=FAST)
    assert read_feed_states(db_path)["news"].etag is None
    with EventStore(db_path, read_only=True) as store:
        assert states_of(store)["news"].etag is None


# -- one source's odd values never cost the run -------------------------------------------


def _ninjs(**extra: object) -> bytes:
    return json.dumps({"uri": "urn:wire:1", "headline": "Port strike ends", "version": "1", **extra}).encode()


def test_wire_values_out_of_their_range_are_dropped_not_stored(server, db_path: Path) -> None:
    server.routes["/wire"] = Route(_ninjs(urgency=2**64))
    report = ingest([Source("wire", server.url("/wire"), kind="ninjs")], db_path, limits=FAST)
    assert report.totals()["new"] == 1, [s.line() for s in report.sources]
    [(urgency,)] = query(
        db_path, "SELECT payload ->> '$.wire.urgency' FROM raw.events WHERE event_type = 'article.published'"
    )
    assert urgency is None


def test_a_value_the_log_cannot_store_fails_its_source_only(server, db_path: Path) -> None:
    server.routes["/surrogate"] = Route(b'{"uri": "urn:wire:2", "headline": "Breaking \\ud800 news"}')
    sources = [
        Source("surrogate", server.url("/surrogate"), kind="ninjs"),
        serve(server, "/odd", rss([item(1)])),
        serve(server, "/feed", rss([item(2)])),
    ]
    blobs = blob_store_for(db_path)
    outcomes = fetch_all([FetchRequest(s.id, s.url, s.kind) for s in sources], blobs, limits=FAST)
    # As a parser that let a number past 64 bits through would hand it over.
    odd = parse_body(
        "rss", blobs.get(outcomes[1].body_sha256), source_id="odd", url=sources[1].url, now=utcnow()
    )
    odd.items[0].wire["urgency"] = 2**70
    report = record(db_path, outcomes, blobs, parsed_by_source={"odd": odd})
    by_source = {summary.source_id: summary for summary in report.sources}
    assert by_source["feed"].counts["new"] == 1
    assert by_source["odd"].status == "failed" and "cannot be recorded" in by_source["odd"].message
    assert by_source["surrogate"].status == "failed" and "not JSON" in by_source["surrogate"].message
    failed = query(db_path, "SELECT source_id FROM raw.events WHERE event_type = 'feed.failed' ORDER BY 1")
    assert failed == [("odd",), ("surrogate",)]
    assert verify(db_path).ok


def test_a_states_file_left_behind_by_a_crash_is_not_trusted(server, db_path: Path) -> None:
    # A commit that went through, then a crash before the anchor and the states file moved:
    # both name the event before. The writer asks the log itself.
    source = serve(server, "/feed", rss([item(1)]))
    ingest([source], db_path, limits=FAST)
    anchor_file = db_path.with_name(db_path.name + ".head.json")
    before = {path: path.read_bytes() for path in (anchor_file, feed_states_path(db_path))}
    server.routes["/feed"] = Route(rss([item(1), item(2)]))
    ingest([source], db_path, limits=FAST)
    for path, content in before.items():
        path.write_bytes(content)
    again = ingest([source], db_path, limits=FAST)
    assert again.sources[0].status == "body unchanged", again.sources[0].line()


# -- what no reader sees is no revision ---------------------------------------------

FORMS = [
    "Ger\xadmany votes on Jose\u0301",
    "Germany votes on José",
    "\ufeffGermany\u2060 votes on Jose\u0301",
]


def _serve_titles(server, db_path: Path, titles: list[str]) -> None:
    source = Source("forms", server.url("/forms"))
    for minute, title in enumerate(titles):  # a new build date each time: the body changes
        server.routes["/forms"] = Route(
            rss([item(1, title)], build_date=f"Mon, 09 Mar 2026 10:{minute:02d}:00 GMT")
        )
        ingest([source], db_path, limits=FAST)


def test_text_that_differs_only_in_what_no_reader_sees_is_no_revision(server, db_path: Path) -> None:
    """Soft hyphens, byte order marks, word joiners, decomposed letters: a feed switching
    between forms would otherwise record a revision each time."""
    _serve_titles(server, db_path, [*FORMS, FORMS[0], "Germany votes on José again"])
    assert titles_by_version(db_path) == [FORMS[0], "Germany votes on José again"]


def test_a_version_recorded_before_hashes_were_of_the_text_as_seen_is_still_matched(
    server, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as before:  # the rule before: the hash of the text as written
        before.setattr(
            events,
            "content_hashes",
            lambda *texts, url: (text._hash((*(t or "" for t in texts), url or "")),),
        )
        _serve_titles(server, db_path, [FORMS[0]])
    hashes = "SELECT content_hash FROM raw.events WHERE event_type LIKE 'article.%'"
    (recorded_before,) = query(db_path, hashes)  # the one version, hashed as written
    # The same text, then other forms of it: its text as seen is read again to compare.
    _serve_titles(server, db_path, [FORMS[0], *FORMS, FORMS[0]])
    assert query(db_path, hashes) == [recorded_before]
    _serve_titles(server, db_path, ["Germany votes no"])
    assert titles_by_version(db_path) == [FORMS[0], "Germany votes no"]


@pytest.mark.parametrize("cut_before", [b"goes on", b"r 2</title>", b"</item></channel>"])
@pytest.mark.parametrize(
    "first_summary",
    [
        "Summary of story 1.",
        "<![CDATA[<p>Close each item with </item>.</p>]]>",  # markup that is text
        "Summary of story 1.<!-- </item> -->",
    ],
)
def test_a_feed_that_breaks_off_records_no_revision_of_the_item_it_cut(
    server, db_path: Path, cut_before: bytes, first_summary: str
) -> None:
    """A dropped connection or a server's output cut at a size ends the document inside an
    item: the lenient parser still offers it, with part of its text."""
    whole = rss(
        [
            item(1, description=first_summary),
            item(2, description="A long summary of story two that goes on and on."),
        ]
    )
    source = serve(server, "/cut", whole)
    ingest([source], db_path, limits=FAST)
    server.routes["/cut"] = Route(whole[: whole.rindex(cut_before)])
    ingest([source], db_path, limits=FAST)
    assert titles_by_version(db_path) == ["Headline number 1", "Headline number 2"]
    (last_fetch,) = query(
        db_path, "SELECT payload FROM raw.events WHERE stream_id = 'feed:cut' ORDER BY event_seq DESC LIMIT 1"
    )
    assert [(r["index"], r["reason"]) for r in json.loads(last_fetch[0])["rejections"]] == [
        (1, "item cut off: the document breaks off before its end")
    ]


def test_a_site_that_moves_to_https_or_back_records_nothing_new(server, db_path: Path) -> None:
    """A site moving to https, or servers behind one name that disagree on the scheme they
    write: each article was recorded again as new (without guids) or revised (with)."""
    source = Source("moving", server.url("/moving"))
    for minute, scheme in enumerate(["http", "https", "http", "https"]):
        stories = [
            {"title": "Without a guid", "link": f"{scheme}://example.org/news/1"},
            {"title": "A permalink guid", "guid": f"{scheme}://example.org/news/2"},
        ]
        server.routes["/moving"] = Route(rss(stories, build_date=f"Mon, 09 Mar 2026 10:{minute:02d}:00 GMT"))
        ingest([source], db_path, limits=FAST)
    assert titles_by_version(db_path) == ["Without a guid", "A permalink guid"]
    # A new story at the other scheme's address is still new.
    server.routes["/moving"] = Route(rss([{"title": "Another", "link": "http://example.org/news/3"}]))
    ingest([source], db_path, limits=FAST)
    assert titles_by_version(db_path)[-1] == "Another"


def test_an_archive_of_the_same_articles_at_https_adds_nothing(tmp_path: Path, db_path: Path) -> None:
    lines = [
        {"url": "http://example.org/a", "title": "Talks"},
        {"guid": "http://example.org/b", "title": "Vote"},
    ]
    backfill(_archive(tmp_path / "http.jsonl", lines), "s", db_path)
    moved = [
        {**line, **{key: line[key].replace("http:", "https:") for key in ("url", "guid") if key in line}}
        for line in lines
    ]
    again = backfill(_archive(tmp_path / "https.jsonl", moved), "s", db_path)
    assert (again.counts["new"], again.counts["revised"], again.counts["unchanged"]) == (0, 0, 2)


@pytest.mark.parametrize(
    "broken",
    [
        rss([item(1), item(2), item(3)]).replace(b"</item>", b"", 1),  # an item without its end, mid-document
        rss([item(1), item(2, description="S&P gains"), item(3)]),  # a bare "&"
        # a bare "&" in bytes the patterns for items cannot read
        rss([item(1), item(2, description="S&P gains"), item(3)])
        .decode()
        .replace('encoding="utf-8"', 'encoding="utf-16"')
        .encode("utf-16-le"),
    ],
    ids=["unclosed-item", "bare-ampersand", "utf-16-without-bom"],
)
def test_a_broken_document_that_does_not_break_off_has_every_item_read(broken: bytes) -> None:
    result = parse_body(
        "rss", broken, source_id="s", url="u", now=utcnow(), content_type="application/rss+xml"
    )
    assert result.warning and not result.rejections
    assert [i.identity for i in result.items] == ["urn:test:1", "urn:test:2", "urn:test:3"]


@pytest.mark.parametrize("chunk_lines", [1, 25_000])
def test_an_address_at_both_schemes_is_one_article_in_one_archive_or_one_chunk(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_lines: int
) -> None:
    monkeypatch.setattr(ingestion._log.backfill, "CHUNK_LINES", chunk_lines)
    lines = [
        {"url": "http://example.org/a", "title": "Talks"},
        {"url": "https://example.org/a", "title": "Talks end"},
    ]
    loaded = backfill(_archive(tmp_path / "a.jsonl", lines), "s", db_path)
    assert (loaded.counts["new"], loaded.counts["revised"]) == (1, 1)


def test_a_feed_that_lists_an_address_at_both_schemes_keeps_two_articles(
    server, tmp_path: Path, db_path: Path
) -> None:
    """A document is a snapshot: its two items are two articles, revised each on its own.
    An archive of the same lines then finds each its own (recorded) article."""
    source = Source("both", server.url("/both"))
    for minute, (first, second) in enumerate(
        [("Talks resume", "Talks end"), ("Talks resume", "Talks ended")]
    ):
        stories = [
            {"title": first, "link": "http://example.org/live"},
            {"title": second, "link": "https://example.org/live"},
        ]
        server.routes["/both"] = Route(rss(stories, build_date=f"Mon, 09 Mar 2026 10:{minute:02d}:00 GMT"))
        ingest([source], db_path, limits=FAST)
    assert titles_by_version(db_path) == ["Talks resume", "Talks end", "Talks ended"]
    lines = [
        {"url": "http://example.org/live", "title": "Talks resume"},
        {"url": "https://example.org/live", "title": "Talks ended"},
    ]
    loaded = backfill(_archive(tmp_path / "both.jsonl", lines), "both", db_path)
    assert (loaded.counts["new"], loaded.counts["revised"]) == (0, 0)


def _summary_and_body(summary: str, body: str) -> bytes:
    return (
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        "<title>t</title><link>http://example.org/</link><description>t</description>"
        "<item><title>Talks resume</title><link>http://example.org/news/1</link><guid>g1</guid>"
        f"<description>{summary}</description><content:encoded>{body}</content:encoded></item>"
        "</channel></rss>"
    ).encode()


def test_a_body_repeating_the_summary_in_other_markup_is_no_revision(tmp_path: Path, db_path: Path) -> None:
    """A feed that gives the summary again as the body, its markup the same one fetch and
    a little different the next (a line break, no paragraph tag): no body either time, so
    no revision; the fast path reads it as feedparser's does."""
    feed, source = tmp_path / "feed.xml", Source("s", str(tmp_path / "feed.xml"))
    summary = "&lt;p&gt;Talks resume in Geneva.&lt;/p&gt;"
    for body in (summary, "&lt;p&gt;Talks resume\n in Geneva.&lt;/p&gt;\n", "Talks resume in Geneva."):
        feed.write_bytes(_summary_and_body(summary, body))
        ingest([source], db_path)
        document = _summary_and_body(summary, body)
        fast = parse_rss_fast(document, now=utcnow())
        assert fast is not None
        assert fast == parse_rss(document, source_id="s", url="u", now=utcnow())
        assert [(i.summary, i.body) for i in fast.items] == [("Talks resume in Geneva.", "")]
    rows = query(
        db_path,
        "SELECT event_type, payload ->> '$.body' FROM raw.events WHERE starts_with(event_type, 'article.')",
    )
    assert rows == [("article.published", "")]


def test_a_version_whose_body_repeated_the_summary_is_matched_by_a_feed_that_drops_it(
    tmp_path: Path, db_path: Path
) -> None:
    """An archive line keeps a body that repeats the summary (as a feed did before parser
    version 8, when the two were written in different markup): the feed's item, which keeps
    no such body, is that version, not a revision."""
    archive = tmp_path / "a.jsonl"
    line = {"guid": "g1", "url": "http://example.org/news/1", "title": "Talks resume"}
    archive.write_text(
        json.dumps({**line, "summary": "Talks resume in Geneva.", "body": "Talks resume in Geneva."})
    )
    backfill(archive, "s", db_path)
    feed = tmp_path / "feed.xml"
    feed.write_bytes(
        _summary_and_body("&lt;p&gt;Talks resume in Geneva.&lt;/p&gt;", "Talks resume in Geneva.")
    )
    report = ingest([Source("s", str(feed))], db_path)
    assert report.sources[0].counts["unchanged"] == 1, report.sources[0].counts


_PLAIN_TEXT_ATOM = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
<id>urn:f</id><updated>2026-03-01T00:00:00Z</updated><entry><id>urn:1</id>
<title type="text">If a&lt;b and c&gt;d, then a&lt;d</title>
<summary>Use &lt;script&gt; tags &amp; &lt;b&gt;bold&lt;/b&gt; in HTML</summary>
<link href="http://example.org/1"/><updated>2026-03-01T00:00:00Z</updated></entry></feed>"""


def test_a_less_than_sign_in_plain_text_is_a_character_not_a_tag(tmp_path: Path, db_path: Path) -> None:
    """Atom text constructs and RSS titles without markup are plain text: "a<b and c>d" was
    read as markup, so the log recorded "If ad, then a<d" and a summary cut to "Use"."""
    feed = tmp_path / "feed.xml"
    feed.write_bytes(_PLAIN_TEXT_ATOM)
    ingest([Source("s", str(feed))], db_path)
    rows = query(
        db_path, "SELECT payload ->> '$.title', payload ->> '$.summary' FROM raw.events WHERE stream_id <> ''"
    )
    assert ("If a<b and c>d, then a<d", "Use <script> tags & <b>bold</b> in HTML") in rows
    document = rss([item(1, "If a&lt;b and c&gt;d, then a&lt;d")])
    fast = parse_rss_fast(document, now=utcnow())
    assert fast is not None and fast.items[0].title == "If a<b and c>d, then a<d"
    assert fast == parse_rss(document, source_id="s", url="u", now=utcnow())


def test_a_version_recorded_with_plain_text_read_as_markup_is_no_revision(
    tmp_path: Path, db_path: Path
) -> None:
    """The log of an earlier version holds the text as it was read then: the same entry,
    read right now, is that version (a revision is a change the feed made)."""
    archive = tmp_path / "a.jsonl"
    line = {"guid": "urn:1", "url": "http://example.org/1", "title": "If ad, then a<d", "summary": "Use"}
    archive.write_text(json.dumps(line))
    backfill(archive, "s", db_path)
    feed = tmp_path / "feed.xml"
    feed.write_bytes(_PLAIN_TEXT_ATOM)
    report = ingest([Source("s", str(feed))], db_path)
    assert report.sources[0].counts["unchanged"] == 1, report.sources[0].counts
