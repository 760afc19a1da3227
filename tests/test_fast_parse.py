"""The fast RSS path gives what feedparser's path gives, or declines; parse results
kept by the fetch tasks give the writer the same events as parsing itself."""

from __future__ import annotations

import gzip
import json
import os
import time
from datetime import datetime
from pathlib import Path

import duckdb
import orjson
import pytest

from ingestion._log.record import blob_store_for, parse_fetched, parsed_results_for, record
from ingestion._model import FetchOutcome, ParseResult
from ingestion._sources.parse import PARSER_VERSION, parse_body
from ingestion._sources.rss import parse_rss
from ingestion._sources.rss_fast import parse_rss_fast
from ingestion.exceptions import ParseError

from .conftest import REPO, shared_path

NOW = datetime(2026, 3, 11, 12, 0)
DEMO_FEEDS = REPO / "ingestion" / "_demo" / "feeds"
NOT_FEEDS = {"expectations.jsonl", "SOURCE.txt", "LICENSE.feedparser", "EDITS.json", "README.md"}


def _both_paths(body: bytes, content_type: str | None = None) -> tuple[ParseResult | None, object]:
    """The fast path's result (None: declined) and feedparser's (or its ParseError)."""
    fast = parse_rss_fast(body, now=NOW, content_type=content_type)
    try:
        slow: object = parse_rss(body, source_id="s", url="u", now=NOW, content_type=content_type)
    except ParseError as exc:
        slow = exc
    return fast, slow


def _assert_equivalent(files: list[tuple[Path, str | None]]) -> int:
    """Every file the fast path reads gives feedparser's path's result; returns how many it read."""
    read = 0
    for path, content_type in files:
        fast, slow = _both_paths(path.read_bytes(), content_type)
        if fast is not None:
            assert fast == slow, path
            read += 1
    return read


def test_demo_feeds_read_the_same_on_both_paths() -> None:
    feeds = sorted(DEMO_FEEDS.rglob("*.xml"))
    assert _assert_equivalent([(path, None) for path in feeds]) >= 9  # the RSS feeds, every round


@pytest.mark.shared
def test_real_snapshots_read_the_same_on_both_paths() -> None:
    snapshots = sorted(shared_path("data", "feeds", "snapshots").rglob("*.xml"))
    assert len(snapshots) >= 160
    # bbc, cnn and nytimes are RSS 2.0 (all read fast); abscbnnews is Atom (declined).
    assert _assert_equivalent([(path, None) for path in snapshots]) >= 120


@pytest.mark.shared
def test_feedparser_corpus_reads_the_same_on_both_paths() -> None:
    corpus = shared_path("data", "feeds", "feedparser-tests")
    expectations = {
        row["path"]: row for row in map(json.loads, (corpus / "expectations.jsonl").read_text().splitlines())
    }
    files = []
    for path in sorted(p for p in corpus.rglob("*") if p.is_file() and p.name not in NOT_FEEDS):
        relative = path.relative_to(corpus).as_posix()
        headers = expectations.get(relative, {}).get("headers", {}) if relative.startswith("http/") else {}
        files.append((path, headers.get("Content-Type")))
    assert len(files) > 2200
    assert _assert_equivalent(files) >= 100


@pytest.mark.parametrize(
    "body",
    [
        # Atom, RSS 1.0 and RSS 0.91 are feedparser's.
        b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>a</id><title>T</title></entry></feed>',
        b'<rss version="0.91"><channel><item><title>T</title><link>https://x.example/1</link></item></channel></rss>',
        # Not well-formed, an entity only a DTD defines, a DOCTYPE.
        b'<rss version="2.0"><channel><item><title>T</title></item></channel>',
        b'<rss version="2.0"><channel><item><title>T&nbsp;U</title></item></channel></rss>',
        b'<!DOCTYPE rss><rss version="2.0"><channel></channel></rss>',
        # Markup the sanitizer changes: a script, a comment, an unknown entity, a class.
        b'<rss version="2.0"><channel><item><title>T</title><description>a&lt;script&gt;x&lt;/script&gt;'
        b"</description></item></channel></rss>",
        b'<rss version="2.0"><channel><item><title>T</title><description>a&lt;!-- c --&gt;b'
        b"</description></item></channel></rss>",
        b'<rss version="2.0"><channel><item><title>T</title><description>&amp;copy2026 a'
        b"</description></item></channel></rss>",
        b'<rss version="2.0"><channel><item><title>T</title><description>&lt;p class="caption"&gt;a&lt;/p&gt;'
        b"</description></item></channel></rss>",
        # A language or base from an attribute; an element feedparser gives a meaning.
        b'<rss version="2.0" xml:lang="de"><channel><item><title>T</title></item></channel></rss>',
        b'<rss version="2.0"><channel><item><title>T</title><summary>S</summary></item></channel></rss>',
        # Two titles; an author with an e-mail address.
        b'<rss version="2.0"><channel><item><title>T</title><title>U</title></item></channel></rss>',
        b'<rss version="2.0"><channel><item><title>T</title><author>a@b.example (A)</author></item></channel></rss>',
    ],
)
def test_fast_path_declines_what_only_feedparser_reads_as_feedparser(body: bytes) -> None:
    fast, slow = _both_paths(body)
    assert fast is None
    # Declined documents still parse (or fail) on feedparser's path, as before.
    assert isinstance(slow, (ParseResult, ParseError))


def test_a_date_only_feedparser_reads_is_read_by_feedparser_on_the_fast_path_too() -> None:
    body = (
        b'<rss version="2.0"><channel><item><title>T</title><guid>urn:t</guid>'
        b"<pubDate>2026-070T10:00Z</pubDate><dc:date>10 March, 2026</dc:date></item></channel></rss>"
    ).replace(b'version="2.0"', b'version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"')
    fast, slow = _both_paths(body)
    assert fast is not None
    assert fast == slow


def test_html_content_type_is_feedparsers() -> None:
    body = (DEMO_FEEDS / "round1" / "rheinblick.xml").read_bytes()
    assert parse_rss_fast(body, now=NOW, content_type="application/rss+xml; charset=utf-8") is not None
    assert parse_rss_fast(body, now=NOW, content_type="text/html") is None  # feedparser notes it


def test_parse_results_survive_their_trip_through_json() -> None:
    for path in sorted(DEMO_FEEDS.rglob("*.*")):
        kind = {".xml": "newsml" if "atlas" in path.name else "rss", ".json": "ninjs"}.get(path.suffix)
        if kind is None:
            continue
        result = parse_body(kind, path.read_bytes(), source_id="s", url="u", now=NOW)
        assert result.items, path
        assert ParseResult.from_dict(orjson.loads(orjson.dumps(result.to_dict()))) == result, path


def _fetched(tmp_path: Path, db_path: Path, name: str, round_: str = "round1") -> FetchOutcome:
    body = (DEMO_FEEDS / round_ / name).read_bytes()
    sha = blob_store_for(db_path).put(body)
    return FetchOutcome(
        source_id=name.split(".")[0],
        url=str(tmp_path / name),
        kind="rss",
        fetched_at=NOW.isoformat(),
        ok=True,
        body_sha256=sha,
        bytes=len(body),
    )


def _article_events(db_path: Path) -> list[tuple]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(
            "SELECT event_type, stream_id, stream_version, content_hash, payload_hash FROM raw.events "
            "WHERE starts_with(event_type, 'article.') ORDER BY stream_id, stream_version"
        ).fetchall()


def test_record_reads_kept_results_and_records_the_same_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ("harbour-times.xml", "rheinblick.xml", "meridian-post.xml")
    recorded, bodies = [], set()
    for keep in (True, False):
        db = tmp_path / ("kept" if keep else "parsed") / "newsroom.duckdb"
        for round_ in ("round1", "round2", "round3"):
            outcomes = [_fetched(tmp_path, db, name, round_) for name in names]
            bodies |= {outcome.body_sha256 for outcome in outcomes}
            with monkeypatch.context() as patched:
                if keep:
                    parse_fetched(outcomes, blob_store_for(db))
                    # The writer reads every body's kept result, the previous body's too.
                    patched.setattr("ingestion._log.record.parse_body", _no_parsing)
                record(db, outcomes, run_id=f"run-{round_}")
        recorded.append(_article_events(db))
    assert recorded[0] == recorded[1]
    assert recorded[0]
    assert len(list((tmp_path / "kept" / "blobs" / "parsed").rglob("*.json.gz"))) == len(bodies)
    assert not (tmp_path / "parsed" / "blobs" / "parsed").exists()


def _no_parsing(*args: object, **kwargs: object) -> ParseResult:
    raise AssertionError("parsed although a kept result was there")


def test_record_parses_again_what_was_kept_by_another_parser_version_or_damaged(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes = [
        _fetched(tmp_path, db_path, "rheinblick.xml"),
        _fetched(tmp_path, db_path, "harbour-times.xml"),
    ]
    blobs = blob_store_for(db_path)
    parse_fetched(outcomes, blobs)
    kept = parsed_results_for(blobs)
    older, damaged = (kept.path_for(o.body_sha256 or "", "rss", None, None) for o in outcomes)
    document = orjson.loads(gzip.decompress(older.read_bytes()))
    assert document["parser_version"] == PARSER_VERSION
    # An older parser's result that says something else entirely, and a torn file.
    document.update(parser_version="0", result=ParseResult().to_dict())
    older.write_bytes(gzip.compress(orjson.dumps(document)))
    damaged.write_bytes(damaged.read_bytes()[:20])
    report = record(db_path, outcomes)
    assert {s.source_id: s.counts["new"] > 0 for s in report.sources} == {
        "rheinblick": True,
        "harbour-times": True,
    }


def test_results_too_old_to_be_used_are_removed_by_the_writer(tmp_path: Path, db_path: Path) -> None:
    outcomes = [_fetched(tmp_path, db_path, name) for name in ("rheinblick.xml", "harbour-times.xml")]
    blobs = blob_store_for(db_path)
    parse_fetched(outcomes, blobs)
    kept = parsed_results_for(blobs)
    old, fresh = (kept.path_for(o.body_sha256 or "", "rss", None, None) for o in outcomes)
    three_hours_ago = time.time() - 3 * 3600
    os.utime(old, (three_hours_ago, three_hours_ago))
    record(db_path, outcomes)
    assert not old.exists() and fresh.exists()


def test_a_kept_parse_error_is_the_sources_failure(tmp_path: Path, db_path: Path) -> None:
    blobs = blob_store_for(db_path)
    sha = blobs.put(b"<html><body>not a feed</body></html>")
    outcome = FetchOutcome("page", str(tmp_path / "page"), "rss", NOW.isoformat(), ok=True, body_sha256=sha)
    parse_fetched([outcome], blobs)
    assert list(parsed_results_for(blobs).root.rglob("*.json.gz"))
    report = record(db_path, [outcome])
    assert report.sources[0].status == "failed"
    assert "HTML page" in report.sources[0].message
