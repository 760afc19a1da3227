"""Fetching against a real HTTP server on 127.0.0.1: every failure is recorded, none blocks."""

from __future__ import annotations

import gzip
import json
import time
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from ingestion._demo.localserver import RequestInfo, Route
from ingestion._log.record import ingest
from ingestion._sources.config import Source
from ingestion._sources.fetch import FetchLimits

from .feeds import item, rss

FAST = FetchLimits(
    connect_timeout=1,
    read_timeout=1,
    total_timeout=3,
    max_attempts=3,
    backoff_seconds=0.01,
    max_bytes=1_000_000,
)


def events(db_path: Path, where: str = "true") -> list[dict]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        rows = con.execute(
            f"SELECT event_type, source_id, occurred_at, payload FROM raw.events WHERE {where} "
            "ORDER BY event_seq"
        ).fetchall()
    return [{"type": t, "source": s, "occurred_at": o, **json.loads(p)} for t, s, o, p in rows]


def run(server, db_path: Path, routes: dict, **limits) -> dict[str, object]:
    server.routes.update(routes)
    sources = [Source(path.strip("/").replace("/", "-") or "root", server.url(path)) for path in routes]
    report = ingest(sources, db_path, limits=replace(FAST, **limits))
    return {summary.source_id: summary for summary in report.sources}


def test_etag_gives_304_and_nothing_new(server, db_path: Path) -> None:
    route = {"/feed": Route(rss([item(1), item(2)]), etag=True)}
    first = run(server, db_path, route)["feed"]
    assert first.counts["new"] == 2
    second = run(server, db_path, route)["feed"]
    assert second.status == "not modified"
    assert server.requests[-1].headers.get("if-none-match")
    fetched = events(db_path, "event_type = 'feed.fetched'")
    assert [e["not_modified"] for e in fetched] == [False, True]
    assert len(events(db_path, "starts_with(event_type, 'article.')")) == 2


def test_permanent_redirect_is_recorded_and_temporary_is_not(server, db_path: Path) -> None:
    body = Route(rss([item(1)]))
    results = run(
        server,
        db_path,
        {
            "/moved": Route(status=301, headers={"Location": "/new-home"}),
            "/new-home": body,
            "/temp": Route(status=302, headers={"Location": "/elsewhere"}),
            "/elsewhere": body,
        },
    )
    assert results["moved"].counts["new"] == 1
    by_source = {e["source"]: e for e in events(db_path, "event_type = 'feed.fetched'")}
    assert by_source["moved"]["permanent_redirect"] == server.url("/new-home")
    assert by_source["temp"]["permanent_redirect"] is None
    assert by_source["temp"]["final_url"] == server.url("/elsewhere")


@pytest.mark.parametrize(
    ("routes", "error_class", "words"),
    [
        (
            {
                "/loop": Route(status=302, headers={"Location": "/loop2"}),
                "/loop2": Route(status=302, headers={"Location": "/loop"}),
            },
            "RedirectLoop",
            "loop",
        ),
        ({"/nowhere": Route(status=302)}, "BadRedirect", "Location"),
        ({"/ftp": Route(status=301, headers={"Location": "ftp://example.org/x"})}, "BadRedirect", "non-HTTP"),
        ({"/gone": Route(b"gone", status=410)}, "HTTPError", "410"),
        (
            {
                "/html": Route(
                    b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>",
                    headers={"Content-Type": "text/html"},
                )
            },
            "ParseError",
            "HTML page",
        ),
        ({"/empty": Route(b"")}, "ParseError", "empty body"),
        (
            {"/json": Route(b'{"status": "ok"}', headers={"Content-Type": "application/json"})},
            "ParseError",
            "not an RSS or Atom feed",
        ),
        (
            {"/broken": Route(b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</ti')},
            "ParseError",
            "",
        ),
        ({"/huge": Route(b"<rss>" + b" " * 1_100_000 + b"</rss>")}, "TooLarge", "cap"),
        (
            {"/bomb": Route(gzip.compress(b"\0" * 30_000_000), headers={"Content-Encoding": "gzip"})},
            "TooLarge",
            "decompressed",
        ),
        ({"/slow": Route(rss([item(1)]), delay=2.5)}, "Timeout", "no answer"),
    ],
)
def test_bad_sources_become_readable_feed_failed_events(server, db_path, routes, error_class, words):
    good = {"/good": Route(rss([item(7)]))}
    results = run(server, db_path, {**routes, **good}, max_attempts=1)
    assert results["good"].counts["new"] == 1, "a bad source must not block a good one"
    first_bad = next(iter(routes)).strip("/")
    assert results[first_bad].status == "failed"
    failed = [e for e in events(db_path, "event_type = 'feed.failed'") if e["source"] == first_bad]
    assert failed and failed[0]["error_class"] == error_class
    assert words in failed[0]["error_message"]


def test_retries_with_backoff_and_retry_after(server, db_path: Path) -> None:
    calls = {"n": 0}

    def flaky(_request: RequestInfo) -> Route:
        calls["n"] += 1
        if calls["n"] == 1:
            return Route(status=503)
        if calls["n"] == 2:
            return Route(status=429, headers={"Retry-After": "1"})
        return Route(rss([item(1)]))

    started = time.monotonic()
    result = run(server, db_path, {"/flaky": flaky})["flaky"]
    assert result.counts["new"] == 1
    assert calls["n"] == 3
    assert time.monotonic() - started >= 1.0, "Retry-After was not honoured"
    fetched = events(db_path, "event_type = 'feed.fetched'")[0]
    assert fetched["attempts"] == 3


def test_a_long_retry_after_is_not_waited_for(server, db_path: Path) -> None:
    result = run(server, db_path, {"/busy": Route(status=429, headers={"Retry-After": "3600"})})
    assert result["busy"].status == "failed"
    assert "retry after 3600 s" in result["busy"].message


def test_connection_refused_and_missing_file_are_recorded(server, db_path: Path, tmp_path) -> None:
    sources = [
        Source("closed", "http://127.0.0.1:9/feed"),
        Source("missing", str(tmp_path / "no-such-feed.xml")),
    ]
    report = ingest(sources, db_path, limits=FetchLimits(max_attempts=1, connect_timeout=1))
    assert [s.status for s in report.sources] == ["failed", "failed"]
    assert {e["source"] for e in events(db_path, "event_type = 'feed.failed'")} == {"closed", "missing"}


def test_item_level_problems_are_recorded_in_the_fetched_event(server, db_path: Path) -> None:
    items = [
        item(1),
        item(1, title="Same guid again"),
        {"title": "No guid, no link", "description": "x"},
        item(3, pubDate="Sat, 01 Jan 2101 00:00:00 GMT"),
        item(4, pubDate="the day after tomorrow"),
    ]
    result = run(server, db_path, {"/feed": Route(rss(items))})["feed"]
    assert result.counts["new"] == 3
    assert result.counts["rejected"] == 2
    fetched = events(db_path, "event_type = 'feed.fetched'")[0]
    reasons = sorted(r["reason"] for r in fetched["rejections"])
    assert reasons[0].startswith("duplicate guid") and "neither guid nor link" in reasons[1]
    articles = {e["guid"]: e for e in events(db_path, "event_type = 'article.published'")}
    assert articles["urn:test:3"]["occurred_at"] is None
    assert "in the future" in articles["urn:test:3"]["issues"][0]
    assert articles["urn:test:4"]["occurred_at"] is None
    assert articles["urn:test:1"]["occurred_at"] is not None


def test_wrong_encoding_declaration_still_yields_articles(server, db_path: Path) -> None:
    body = rss([item(1, title="Café in Zürich")]).replace(b"utf-8", b"iso-8859-1", 1)
    body = body.decode().encode("utf-8")  # declared latin-1, really UTF-8
    latin = rss([item(2, title="Cafe")]).replace(b'encoding="utf-8"', b"")
    results = run(
        server,
        db_path,
        {
            "/declared-wrong": Route(body),
            "/undeclared": Route(latin, headers={"Content-Type": "text/plain"}),
        },
    )
    assert results["declared-wrong"].counts["new"] == 1
    assert results["undeclared"].counts["new"] == 1
