"""Atom feeds of revisions and withdrawals, read back by a real feed reader."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import feedparser
import pytest

from ingestion._publish.changes import feed_slug, write_change_feeds
from ingestion._publish.snapshot import publish, published_path

from .conftest import copy_data_dir

BUILT_AT = datetime(2026, 3, 12, 12, 0)
# What the feeds report, counted the plain way: one row per source.
CHANGES_PER_SOURCE_SQL = """
    SELECT source_id, count(*) FROM marts.article_versions
    WHERE is_withdrawal OR (version > 1 AND (title_changed OR summary_changed OR body_changed))
    GROUP BY source_id
"""


@pytest.fixture(scope="module")
def snapshot(demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo published once for this module: the snapshot's path."""
    db_path = copy_data_dir(demo_data_dir, tmp_path_factory.mktemp("feeds"))
    publish(db_path)
    return published_path(db_path)


def write_feeds(db: Path, out_dir: Path, **options) -> list[Path]:
    with duckdb.connect(str(db), read_only=True) as con:
        return write_change_feeds(con, out_dir, updated=options.pop("updated", BUILT_AT), **options)


def read_feed(path: Path) -> feedparser.FeedParserDict:
    ET.parse(path)  # a strict XML parser first: feedparser would forgive malformed XML
    feed = feedparser.parse(path.read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    return feed


# -- the demo --------------------------------------------------------------------------------


def test_every_revision_and_withdrawal_is_an_entry_newest_first(snapshot: Path, tmp_path: Path) -> None:
    files = write_feeds(snapshot, tmp_path)
    with duckdb.connect(str(snapshot), read_only=True) as con:
        per_source = dict(con.execute(CHANGES_PER_SOURCE_SQL).fetchall())
        sources = [row[0] for row in con.execute("SELECT source_id FROM marts.sources").fetchall()]
    expected = sum(per_source.values())
    assert expected >= 10
    assert files[0] == tmp_path / "changes.atom"
    assert {p.name for p in files[1:]} == {f"{feed_slug(s)}.atom" for s in sources}

    feed = read_feed(tmp_path / "changes.atom")
    assert len(feed.entries) == expected
    assert feed.feed.updated == "2026-03-12T12:00:00Z"
    assert [link.href for link in feed.feed.links if link.rel == "self"] == ["/feeds/changes.atom"]
    times = [entry.updated for entry in feed.entries]
    assert times == sorted(times, reverse=True) and all(t.endswith("Z") for t in times)
    assert len({entry.id for entry in feed.entries}) == expected
    assert all(entry.id.startswith("tag:") for entry in feed.entries)
    for source_id in sources:
        own = read_feed(tmp_path / "sources" / f"{feed_slug(source_id)}.atom")
        assert len(own.entries) == per_source.get(source_id, 0)
        assert {entry.author for entry in own.entries} <= {source_id}
        assert own.feed.links[0].href == f"/feeds/sources/{feed_slug(source_id)}.atom"


def test_a_headline_change_shows_the_headline_before_and_after(snapshot: Path, tmp_path: Path) -> None:
    write_feeds(snapshot, tmp_path)
    feed = read_feed(tmp_path / "sources" / "cpa-wire.atom")
    [entry] = [e for e in feed.entries if "Storm Isolde" in e.title]
    before = "Met Éireann issues red wind warning ahead of Storm Isolde"
    after = "Met Éireann extends red wind warning to Mayo and Donegal as Storm Isolde nears"
    assert entry.title == f'Headline changed: "{before}" → "{after}"'
    content = entry.content[0].value
    assert f"<del>{before}</del>" in content and f"<ins>{after}</ins>" in content
    assert "Changed: headline, summary and text." in content
    assert {tag.term for tag in entry.tags} == {"headline", "summary", "text"}
    with duckdb.connect(str(snapshot), read_only=True) as con:
        [(article_id, version)] = con.execute(
            "SELECT article_id, version FROM marts.article_versions WHERE title = ?", [after]
        ).fetchall()
    assert entry.link == f"/article/{article_id}#v{version}"


def test_a_withdrawn_article_appears_under_the_headline_readers_knew(snapshot: Path, tmp_path: Path) -> None:
    write_feeds(snapshot, tmp_path)
    feed = read_feed(tmp_path / "changes.atom")
    [entry] = [e for e in feed.entries if e.title.startswith("Withdrawn: ")]
    assert entry.title == 'Withdrawn: "Rijksmuseum to exhibit newly attributed Rembrandt drawing"'
    assert "withdrawn" in {tag.term for tag in entry.tags}
    assert "KILLED - Rijksmuseum" in entry.content[0].value


def test_a_text_only_revision_says_so_with_a_word_diff_of_the_summary(snapshot: Path, tmp_path: Path) -> None:
    write_feeds(snapshot, tmp_path)
    feed = read_feed(tmp_path / "changes.atom")
    [entry] = [e for e in feed.entries if "Rotterdam strike tests EU plans" in e.title]
    assert entry.title == 'Text revised: "Rotterdam strike tests EU plans for port automation"'
    assert "<ins>Updated with the appointment of a mediator.</ins>" in entry.content[0].value


def test_the_same_snapshot_gives_the_same_bytes(snapshot: Path, tmp_path: Path) -> None:
    first = write_feeds(snapshot, tmp_path / "one")
    second = write_feeds(snapshot, tmp_path / "two", updated=BUILT_AT.replace(tzinfo=UTC))
    assert [p.relative_to(tmp_path / "one") for p in first] == [
        p.relative_to(tmp_path / "two") for p in second
    ]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()


def test_each_feed_keeps_its_newest_entries(snapshot: Path, tmp_path: Path) -> None:
    everything = read_feed(write_feeds(snapshot, tmp_path / "all")[0])
    newest = read_feed(write_feeds(snapshot, tmp_path / "three", max_entries=3)[0])
    assert [e.id for e in newest.entries] == [e.id for e in everything.entries[:3]]
    for path in (tmp_path / "three" / "sources").iterdir():
        assert len(read_feed(path).entries) <= 3


# -- hostile input -----------------------------------------------------------------------------


def tiny_snapshot(path: Path, versions: list[dict], sources: list[str]) -> Path:
    """A snapshot of just the columns the feeds read, with naive (UTC) timestamps."""
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA marts")
        con.execute("CREATE TABLE marts.sources (source_id VARCHAR)")
        con.executemany("INSERT INTO marts.sources VALUES (?)", [[s] for s in sources])
        con.execute(
            """
            CREATE TABLE marts.article_versions (
                article_id VARCHAR, version INTEGER, source_id VARCHAR, event_seq BIGINT,
                valid_from TIMESTAMP, recorded_at TIMESTAMP, is_withdrawal BOOLEAN,
                title VARCHAR, previous_title VARCHAR, summary VARCHAR, body VARCHAR,
                title_changed BOOLEAN, summary_changed BOOLEAN, body_changed BOOLEAN,
                body_chars_removed BIGINT, body_chars_added BIGINT
            )
            """
        )
        for seq, row in enumerate(versions, start=1):
            values = {
                "event_seq": seq,
                "valid_from": datetime(2026, 3, 1) + timedelta(hours=seq),
                "recorded_at": datetime(2026, 3, 2),
                "is_withdrawal": False,
                "title_changed": False,
                "summary_changed": False,
                "body_changed": False,
                **row,
            }
            names = ", ".join(values)
            con.execute(
                f"INSERT INTO marts.article_versions ({names}) VALUES ({', '.join('?' * len(values))})",
                list(values.values()),
            )
    return path


HOSTILE = "bad\x00\x01\x0b\x1f text ]]> <script>alert('x')</script> &amp; \ufffe\uffff end"


def test_hostile_text_gives_valid_xml(tmp_path: Path) -> None:
    db = tiny_snapshot(
        tmp_path / "tiny.duckdb",
        [
            {"article_id": "a1", "version": 1, "source_id": "s", "title": "first", "summary": "one"},
            {
                "article_id": "a1",
                "version": 2,
                "source_id": "s",
                "title": HOSTILE,
                "previous_title": "first",
                "summary": HOSTILE * 50,
                "title_changed": True,
                "summary_changed": True,
            },
            {
                "article_id": "<a2>&\"'\x07",
                "version": 2,
                "source_id": HOSTILE,
                "title": "x" * 100_000,
                "is_withdrawal": True,
                "valid_from": None,
                "recorded_at": None,
            },
        ],
        ["s"],
    )
    files = write_feeds(db, tmp_path / "feeds")
    feed = read_feed(files[0])
    assert len(feed.entries) == 2
    cleaned = "bad text ]]> <script>alert('x')</script> &amp; end"
    hostile_entry = next(e for e in feed.entries if e.id.endswith("/a1/v2"))
    assert hostile_entry.title == f'Headline changed: "first" → "{cleaned}"'
    withdrawn = next(e for e in feed.entries if e.title.startswith("Withdrawn"))
    assert len(withdrawn.title) < 400  # headlines are cut short
    assert withdrawn.updated == "2026-03-12T12:00:00Z"  # no time of its own: the feed's
    assert withdrawn.link.startswith("/article/%3Ca2%3E")
    assert sum(p.stat().st_size for p in files) < 100_000
    for path in files:
        raw = path.read_bytes()
        assert b"\x00" not in raw and b"<script>" not in raw


def test_hostile_source_ids_give_safe_distinct_file_names(tmp_path: Path) -> None:
    hostile_ids = [
        "../../etc/passwd",
        "a/b",
        "a\\b",
        "..",
        ".",
        "",
        "Ünïcödé Quelle",
        "新闻",
        "x" * 500,
        "x" * 501,
        "Harbour-Times",
        "harbour-times",
        "con",
        "plain-0123456789ab",
        "nul\x00",
    ]
    db = tiny_snapshot(
        tmp_path / "tiny.duckdb",
        [
            {
                "article_id": "a",
                "version": 2,
                "source_id": "../../etc/passwd",
                "title": "t",
                "title_changed": True,
            },
        ],
        hostile_ids,
    )
    out = tmp_path / "feeds"
    files = write_feeds(db, out)
    per_source = files[1:]
    assert len(per_source) == len(hostile_ids)
    assert len({p.name.casefold() for p in per_source}) == len(hostile_ids)
    for path in per_source:
        assert path.parent == out / "sources" and path.is_file()
        assert path.resolve().is_relative_to(out.resolve())
        assert len(path.name) < 100 and path.name.isascii() and not path.name.startswith(".")
        assert read_feed(path).feed.links[0].href == f"/feeds/sources/{path.name}"
    assert sorted(p.name for p in (out / "sources").iterdir()) == sorted(p.name for p in per_source)
    assert feed_slug("harbour-times") == "harbour-times"
    assert feed_slug("Ünïcödé Quelle").startswith("unicode-quelle-")
    [passwd] = [p for p in per_source if p.name.startswith("etc-passwd-")]
    assert len(read_feed(passwd).entries) == 1


def test_zoned_and_naive_times_mean_the_same_instant(tmp_path: Path) -> None:
    db = tiny_snapshot(
        tmp_path / "tiny.duckdb",
        [{"article_id": "a", "version": 2, "source_id": "s", "title": "t", "body_changed": True}],
        ["s"],
    )
    with duckdb.connect(str(db)) as con:
        con.execute("SET TimeZone = 'America/New_York'")
        con.execute(
            "ALTER TABLE marts.article_versions ALTER valid_from TYPE TIMESTAMPTZ USING valid_from AT TIME ZONE 'UTC'"
        )
        [(zoned,)] = con.execute("SELECT valid_from FROM marts.article_versions").fetchall()
        assert zoned.utcoffset() != timedelta(0)
        write_change_feeds(
            con, tmp_path / "feeds", updated=datetime(2026, 3, 12, 14, 0, tzinfo=timezone(timedelta(hours=2)))
        )
    feed = read_feed(tmp_path / "feeds" / "changes.atom")
    assert feed.feed.updated == "2026-03-12T12:00:00Z"
    assert feed.entries[0].updated == "2026-03-01T01:00:00Z"
    assert feed.entries[0].title == 'Text revised: "t"'
