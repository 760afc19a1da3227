from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

import ingestion._log.backfill
from ingestion._log import events
from ingestion._log.backfill import backfill
from ingestion._log.blobs import BlobStore
from ingestion._log.feed_states import current_states_file
from ingestion._log.record import ingest
from ingestion._log.verify import verify
from ingestion._sources import text
from ingestion._sources.config import Source
from ingestion._sources.dates import utcnow
from ingestion.exceptions import NewsroomError

from .feeds import item, rss


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_backfill_appends_once_and_records_bad_lines(tmp_path: Path, db_path: Path) -> None:
    archive = _write(
        tmp_path / "archive.jsonl",
        [
            {"guid": "g1", "title": "First", "published_at": "2014-03-10T08:00:00Z", "source": "Wire A"},
            {"url": "HTTP://Example.org/b?utm_source=x", "title": "Second", "body": "<p>Body &amp; more</p>"},
            {"title": "no identity"},
            "not json at all",
            {"guid": "g5", "title": "Later", "published_at": "yesterday-ish"},
        ],
    )
    report = backfill(archive, "archive", db_path)
    assert report.lines == 5
    assert report.counts["new"] == 3 and report.counts["rejected"] == 2
    assert {r.index for r in report.rejections} == {3, 4}

    again = backfill(archive, "archive", db_path)
    assert again.loaded_before is not None and again.events_appended == 0

    with duckdb.connect(str(db_path), read_only=True) as con:
        rows = dict(
            con.execute(
                "SELECT payload ->> '$.identity', payload FROM raw.events "
                "WHERE event_type = 'article.published'"
            ).fetchall()
        )
        loads = con.execute("SELECT count(*) FROM raw.events WHERE event_type = 'archive.loaded'").fetchall()
    second = json.loads(rows["http://example.org/b"])
    assert second["body"] == "Body & more"
    assert json.loads(rows["g1"])["wire"]["outlet"] == "Wire A"
    assert json.loads(rows["g5"])["published_at"] is None
    assert json.loads(rows["g5"])["raw"]["line"] == 5
    assert loads == [(1,)]
    assert verify(db_path).ok
    raw = json.loads(rows["g1"])["raw"]
    assert BlobStore(db_path.parent / "blobs").get(raw["archive_sha256"]) == archive.read_bytes()


def test_a_changed_line_is_a_revision(tmp_path: Path, db_path: Path) -> None:
    backfill(_write(tmp_path / "a.jsonl", [{"guid": "g1", "title": "Old"}]), "s", db_path)
    report = backfill(_write(tmp_path / "b.jsonl", [{"guid": "g1", "title": "New"}]), "s", db_path)
    assert report.counts["revised"] == 1


def test_a_field_of_the_wrong_type_is_a_rejected_line_not_a_crash(tmp_path: Path, db_path: Path) -> None:
    archive = _write(tmp_path / "typed.jsonl", [{"guid": "g1", "title": 5}, {"guid": "g2", "title": "Fine"}])
    report = backfill(archive, "archive", db_path)
    assert report.counts["new"] == 1 and report.counts["rejected"] == 1
    assert report.rejections[0].index == 1


def _article_events(db_path: Path) -> list[tuple]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(
            "SELECT event_seq, event_id, event_type, stream_id, stream_version, content_hash, "
            "payload::VARCHAR FROM raw.events WHERE starts_with(event_type, 'article.') ORDER BY event_seq"
        ).fetchall()


def _versions_archive(tmp_path: Path) -> Path:
    # Three versions of g1 and two of g2, interleaved: an export of revision history.
    titles = [("g1", "One"), ("g2", "Two"), ("g1", "One, updated"), ("g3", "Three"), ("g2", "Two, updated")]
    titles += [("g1", "One, final"), ("g4", "Four")]
    return _write(tmp_path / "history.jsonl", [{"guid": g, "title": t} for g, t in titles])


def test_an_archive_of_versions_loaded_twice_adds_nothing(tmp_path: Path, db_path: Path) -> None:
    archive = _versions_archive(tmp_path)
    first = backfill(archive, "s", db_path)
    assert (first.counts["new"], first.counts["revised"]) == (4, 3)
    before = _article_events(db_path)
    # Judged line by line against the latest versions, "One" would come back as a revision.
    again = backfill(archive, "s", db_path)
    assert again.events_appended == 0
    assert _article_events(db_path) == before


def test_an_interrupted_load_resumes_where_it_stopped(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _versions_archive(tmp_path)
    reference = tmp_path / "reference" / "newsroom.duckdb"
    # The source also has a feed's run and a finished load of another archive: neither
    # is an unfinished load of this one.
    feed = tmp_path / "feed.xml"
    feed.write_bytes(rss([item(9, "From the feed")]))
    other = _write(tmp_path / "other.jsonl", [{"guid": "o1", "title": "Elsewhere"}])
    for db in (reference, db_path):
        ingest([Source("s", str(feed))], db)
        backfill(other, "s", db)
    backfill(archive, "s", reference)

    monkeypatch.setattr(ingestion._log.backfill, "CHUNK_LINES", 2)
    lines_read = 0

    def interrupt_at_line_6(_: int) -> None:
        nonlocal lines_read
        lines_read += 1
        if lines_read == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backfill(archive, "s", db_path, on_bytes=interrupt_at_line_6)
    partial = _article_events(db_path)
    assert 0 < len(partial) < 7  # chunks of lines 1-2 and 3-4 committed, nothing after

    resumed = backfill(archive, "s", db_path)
    assert resumed.resumed_after_line == 4
    assert (resumed.counts["new"], resumed.counts["revised"]) == (1, 2)

    def comparable(events: list[tuple]) -> list[tuple]:  # the same but for run and load times
        return [(t, s, v, h, json.loads(p)["title"]) for _, _, t, s, v, h, p in events]

    assert comparable(_article_events(db_path)) == comparable(_article_events(reference))
    assert verify(db_path).ok


def test_an_archive_that_changes_while_loading_records_nothing(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _versions_archive(tmp_path)
    # As if the file changed between its hashing and its keeping.
    copy_and_hash = ingestion._log.backfill._private_copy

    @contextmanager
    def misread(path: Path, folder: Path) -> Iterator[tuple[Path, str]]:
        with copy_and_hash(path, folder) as (copy, _):
            yield copy, "0" * 64

    monkeypatch.setattr(ingestion._log.backfill, "_private_copy", misread)
    with pytest.raises(NewsroomError, match="changed while it was being loaded"):
        backfill(archive, "s", db_path)
    assert _article_events(db_path) == []


def test_a_big_backfill_leaves_no_freed_blocks_behind(tmp_path: Path, db_path: Path) -> None:
    # At DuckDB's default checkpoint threshold this load checkpoints halfway and
    # rewrites the row group it is filling: about 115 blocks in the file, 61 in use.
    body = "Dockworkers walked out at dawn as talks over pay broke down again. " * 2
    archive = _write(
        tmp_path / "big.jsonl",
        [{"guid": f"g{n}", "title": f"Strike, day {n}", "body": f"{n} {body}"} for n in range(60_000)],
    )
    assert backfill(archive, "archive", db_path).counts["new"] == 60_000
    with duckdb.connect(str(db_path), read_only=True) as con:
        [(used, total)] = con.execute(
            "SELECT used_blocks, total_blocks FROM pragma_database_size()"
        ).fetchall()
    assert used == total


def test_identifiers_must_be_text_or_whole_numbers(tmp_path: Path, db_path: Path) -> None:
    # As floats, 10**29 and 10**29 + 1 are one number: they must not become one article.
    lines = [
        '{"guid": 100000000000000000000000000000, "title": "Big one"}',
        '{"guid": 100000000000000000000000000001, "title": "Big two"}',
        '{"guid": 7, "title": "Seven"}',
        '{"guid": 1.5, "title": "A float"}',
        '{"guid": {"a": 1}, "title": "An object"}',
        '{"url": ["https://example.org/a"], "title": "A list"}',
    ]
    report = backfill(_write(tmp_path / "ids.jsonl", lines), "s", db_path)
    assert report.counts["new"] == 1 and report.counts["rejected"] == 5
    assert {r.index for r in report.rejections} == {1, 2, 4, 5, 6}
    assert "not text or a whole number" in report.rejections[-1].reason


def test_odd_values_of_a_line_are_noted_not_fatal(tmp_path: Path, db_path: Path) -> None:
    nested = "[" * 300 + "]" * 300
    lines = [
        f'{{"guid": "g1", "title": "Deep", "language": {nested}}}',
        {"guid": "g2", "title": "Long date", "published_at": "2014-03-10 " + "x" * 50_000},
        {"guid": "g3", "title": "Long id", "url": "https://example.org/" + "a" * 10_000},
    ]
    report = backfill(_write(tmp_path / "odd.jsonl", lines), "s", db_path)
    assert report.counts["new"] == 2 and report.counts["rejected"] == 1
    payloads = [json.loads(row[-1]) for row in _article_events(db_path)]
    assert payloads[0]["language"] is None and "not a language tag" in payloads[0]["issues"][0]
    assert "not a date" in payloads[1]["issues"][0] and len(payloads[1]["issues"][0]) < 200


def test_a_line_over_the_cap_is_rejected_unread(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingestion._log.backfill, "MAX_LINE_BYTES", 1_000)
    lines = [
        {"guid": "g1", "title": "Short"},
        {"guid": "g2", "title": "x" * 5_000},
        {"guid": "g3", "title": "After"},
    ]
    report = backfill(_write(tmp_path / "long.jsonl", lines), "s", db_path)
    assert report.counts["new"] == 2 and report.counts["rejected"] == 1
    assert report.rejections[0].index == 2 and "longer than" in report.rejections[0].reason


def test_a_byte_order_mark_is_read_past_and_a_compressed_archive_refused(
    tmp_path: Path, db_path: Path
) -> None:
    archive = tmp_path / "bom.jsonl"
    archive.write_bytes(b"\xef\xbb\xbf" + json.dumps({"guid": "g1", "title": "First"}).encode() + b"\n")
    assert backfill(archive, "s", db_path).counts["new"] == 1
    compressed = tmp_path / "archive.jsonl.gz"
    compressed.write_bytes(gzip.compress(archive.read_bytes()))
    with pytest.raises(NewsroomError, match="gzip-compressed"):
        backfill(compressed, "s", db_path)
    with pytest.raises(NewsroomError, match="source id"):
        backfill(archive, "a\x1fb", db_path)


def test_an_archive_still_being_written_records_only_lines_it_kept(tmp_path: Path, db_path: Path) -> None:
    archive = _write(tmp_path / "growing.jsonl", [{"guid": f"g{n}", "title": f"Story {n}"} for n in range(3)])

    def exporter_appends(_: int) -> None:
        with archive.open("a") as more:
            more.write(json.dumps({"guid": "late", "title": "Late story"}) + "\n")

    report = backfill(archive, "s", db_path, on_bytes=exporter_appends)
    assert report.counts["new"] == 3
    events = _article_events(db_path)
    kept = BlobStore(db_path.parent / "blobs").get(json.loads(events[0][-1])["raw"]["archive_sha256"])
    lines = kept.decode().splitlines()
    for *_, payload in events:
        raw = json.loads(payload)["raw"]
        assert json.loads(lines[raw["line"] - 1])["title"] == json.loads(payload)["title"]


def test_an_archive_says_when_a_version_was_made_and_which_withdrew_the_article(
    tmp_path: Path, db_path: Path
) -> None:
    versions = [
        {"guid": "k1", "title": "Minister resigns", "published_at": "2026-03-10T08:00:00Z"},
        {"guid": "k1", "title": "Minister resigns", "withdrawn": True, "updated_at": "2026-03-10T09:00:00Z"},
        {"guid": "k1", "title": "Minister resigns, corrected", "updated_at": "2026-03-10T10:00:00Z"},
        {"guid": "k2", "withdrawn": True},  # a kill notice may say nothing
        {"guid": "k3", "title": "Port strike", "withdrawn": "yes"},
    ]
    archive = _write(tmp_path / "kills.jsonl", versions)
    first = backfill(archive, "wire", db_path)
    assert backfill(archive, "wire", db_path).loaded_before is not None
    grown = _write(tmp_path / "kills-grown.jsonl", versions)  # the same lines, another file
    assert backfill(grown, "wire", db_path).counts["new"] == 0
    with duckdb.connect(str(db_path), read_only=True) as con:
        rows = con.execute(
            "SELECT stream_version, event_type, occurred_at::VARCHAR, payload ->> '$.issues[0]' FROM raw.events "
            "WHERE starts_with(event_type, 'article.') ORDER BY event_seq"
        ).fetchall()
    assert (first.counts["new"], first.counts["revised"], first.counts["withdrawn"]) == (2, 1, 2)
    assert rows == [
        (1, "article.published", "2026-03-10 08:00:00", None),
        (2, "article.withdrawn", "2026-03-10 09:00:00", None),
        (3, "article.revised", "2026-03-10 10:00:00", None),
        (1, "article.withdrawn", None, None),
        (1, "article.published", None, "withdrawn 'yes' is not true or false; ignored"),
    ]


@pytest.mark.parametrize("chunk_lines", [1, 25_000])
def test_a_version_listed_after_a_newer_one_is_not_recorded_as_current(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_lines: int
) -> None:
    monkeypatch.setattr(ingestion._log.backfill, "CHUNK_LINES", chunk_lines)  # 1: the log's head is read
    versions = [
        {"guid": "a", "title": "Talks resume", "published_at": "2026-03-10T08:00:00Z"},
        {"guid": "a", "title": "Talks resume in Geneva", "updated_at": "2026-03-10T10:00:00Z"},
        {"guid": "a", "title": "Talks to resume", "updated_at": "2026-03-10T09:00:00Z"},  # made before
        {"guid": "a", "title": "Talks to resume", "withdrawn": True, "updated_at": "2026-03-10T09:30:00Z"},
        {"guid": "a", "title": "Talks end", "updated_at": "2026-03-10T12:00:00Z"},
    ]
    first = backfill(_write(tmp_path / "a.jsonl", versions), "s", db_path)
    assert (first.counts["new"], first.counts["revised"], first.counts["stale"]) == (1, 2, 2)
    with duckdb.connect(str(db_path), read_only=True) as con:
        titles = con.execute(
            "SELECT payload ->> '$.title' FROM raw.events WHERE event_type LIKE 'article.%' ORDER BY event_seq"
        ).fetchall()
    assert titles == [("Talks resume",), ("Talks resume in Geneva",), ("Talks end",)]
    # Another export of the same versions and one made before the latest: nothing added.
    again = backfill(_write(tmp_path / "b.jsonl", [*versions[1:3], versions[4], versions[2]]), "s", db_path)
    assert again.events_appended == 1  # the archive's summary alone
    assert verify(db_path).ok


def test_a_grown_archive_matches_versions_recorded_before_hashes_were_of_the_text_as_seen(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    versions = [{"guid": "g", "title": "Ger\xadmany votes"}, {"guid": "g", "title": "Germany has voted"}]
    latest_with_a_soft_hyphen = {"guid": "h", "title": "Ger\xadmany has voted"}
    with monkeypatch.context() as before:  # the rule before: the hash of the text as written
        before.setattr(
            events,
            "content_hashes",
            lambda *texts, url: (text._hash((*(t or "" for t in texts), url or "")),),
        )
        backfill(_write(tmp_path / "a.jsonl", [*versions, latest_with_a_soft_hyphen]), "s", db_path)
    grown = backfill(
        _write(tmp_path / "b.jsonl", [*versions, {"guid": "g", "title": "Germany votes no"}]), "s", db_path
    )
    assert (grown.counts["unchanged"], grown.counts["revised"]) == (2, 1)
    # Another export, without the soft hyphen: the same version as a reader sees it.
    plain = backfill(
        _write(tmp_path / "c.jsonl", [{"guid": "h", "title": "Germany has voted"}]), "s", db_path
    )
    assert (plain.counts["unchanged"], plain.counts["revised"]) == (1, 0)


def _interrupted_then_resumed(
    archive: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch, *, chunk_lines: int, at_chunk: int
) -> None:
    """``backfill`` ``chunk_lines`` lines a chunk, stopped (Ctrl-C) as chunk ``at_chunk`` is
    decided, then run again."""
    monkeypatch.setattr(ingestion._log.backfill, "CHUNK_LINES", chunk_lines)
    append_chunk = ingestion._log.backfill._append_chunk
    chunks = 0

    def interrupted(*args: object) -> int:
        nonlocal chunks
        chunks += 1
        if chunks == at_chunk:
            raise KeyboardInterrupt
        return append_chunk(*args)

    with monkeypatch.context() as interrupting:
        interrupting.setattr(ingestion._log.backfill, "_append_chunk", interrupted)
        with pytest.raises(KeyboardInterrupt):
            backfill(archive, "s", db_path)
    backfill(archive, "s", db_path)


@pytest.mark.parametrize(
    "versions",
    [
        [
            {"guid": "a", "title": "A", "updated_at": "2026-03-10T10:00:00Z"},
            {"guid": "a", "title": "B", "updated_at": "2026-03-10T12:00:00Z"},
            {"guid": "a", "title": "X", "updated_at": "2026-03-10T11:00:00Z"},  # made before B
            {"guid": "a", "title": "C"},  # undated
        ],
        [
            {"guid": "a", "title": "A", "updated_at": "2026-03-10T10:00Z"},
            {"guid": "a", "title": "B", "updated_at": "2026-03-10T12:00Z"},
            {"guid": "a", "title": "X", "updated_at": "2026-03-10T11:00Z"},  # made before B
            {"guid": "a", "title": "Y", "updated_at": "2026-03-10T13:00Z"},
            {"guid": "a", "title": "Z", "updated_at": "2026-03-10T13:00Z"},  # the same minute
        ],
    ],
    ids=["undated-last", "same-minute"],
)
def test_a_load_resumed_or_grown_past_a_version_made_before_records_what_one_load_did(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch, versions: list[dict]
) -> None:
    """The version made before was not recorded, so it is in no history: the walk through
    the log's versions must step over it, not judge the lines after it anew."""
    lines = [*versions, *({"guid": f"b{n}", "title": "Other"} for n in range(3))]
    archive = _write(tmp_path / "a.jsonl", lines)
    expected = [v["title"] for v in versions if v["title"] != "X"]
    backfill(archive, "s", db_path)
    assert _titles_of(db_path, "a") == expected
    grown = backfill(_write(tmp_path / "grown.jsonl", [*lines, {"guid": "c", "title": "New"}]), "s", db_path)
    assert (grown.counts["new"], grown.counts["revised"], grown.counts["stale"]) == (1, 0, 1)

    resumed = tmp_path / "resumed" / "newsroom.duckdb"
    _interrupted_then_resumed(archive, resumed, monkeypatch, chunk_lines=len(versions), at_chunk=2)
    assert _titles_of(resumed, "a") == expected


def test_a_feeds_clock_does_not_decide_which_archive_versions_are_older(
    tmp_path: Path, db_path: Path
) -> None:
    """A feed's times are not trusted to order versions: one 9 hours ahead (a local time
    sent as UTC) made an archive's later version look older than the feed's."""
    now = utcnow()
    ahead = (now + timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M:%SZ")
    extra = f'<dc:date xmlns:dc="http://purl.org/dc/elements/1.1/">{ahead}</dc:date>'
    feed = tmp_path / "feed.xml"
    feed.write_bytes(rss([item(1, "Polls open", extra=extra)]))
    ingest([Source("s", str(feed))], db_path)
    later = {
        "guid": "urn:test:1",
        "title": "Polls close early",
        "updated_at": f"{(now + timedelta(minutes=1)).isoformat()}Z",
    }
    assert backfill(_write(tmp_path / "a.jsonl", [later]), "s", db_path).counts["revised"] == 1


def _titles_of(db_path: Path, guid: str) -> list[str]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        rows = con.execute(
            "SELECT payload ->> '$.title' FROM raw.events WHERE event_type LIKE 'article.%' "
            "AND (payload ->> '$.guid') = ? ORDER BY event_seq",
            [guid],
        ).fetchall()
    return [title for (title,) in rows]


def test_a_text_field_of_another_type_rejects_its_line(tmp_path: Path, db_path: Path) -> None:
    """An exporter's "nothing" of the wrong type (``{}``, ``[]``, ``false``, ``0``) is no
    empty text: read as one, it would record the body or title deleted, then restored."""
    lines = [
        {"guid": "g1", "title": "Dock strike ends", "body": "Workers return on Monday."},
        {"guid": "g1", "title": "Dock strike ends", "body": {}},
        {"guid": "g1", "title": [], "body": "Workers return on Monday."},
        {"guid": "g1", "title": "Dock strike ends", "summary": False, "body": "Workers return on Monday."},
        {"guid": "g1", "title": "Dock strike ends", "body": 0},
        {"guid": "g1", "title": "Dock strike ends", "byline": 0, "author": "Jo Bloggs"},
    ]
    report = backfill(_write(tmp_path / "typed.jsonl", lines), "s", db_path)
    assert [row[2] for row in _article_events(db_path)] == ["article.published"]
    assert [r.reason for r in report.rejections] == [
        "line 2: body is an object, not text",
        "line 3: title is a list, not text",
        "line 4: summary is true or false, not text",
        "line 5: body is a number, not text",
        "line 6: byline is a number, not text",
    ]


def test_links_told_apart_by_a_story_number_named_sid_are_two_articles(tmp_path: Path, db_path: Path) -> None:
    """PHP-Nuke's ``modules.php?name=News&file=article&sid=101``: ``sid`` is the story, not a
    session (one would be a long token), so the second story is not a revision of the first."""
    base = "http://news.example.org/modules.php?name=News&file=article&sid="
    lines = [
        {"url": base + "101", "title": "Council approves budget", "body": "The vote was 7 to 2."},
        {"url": base + "202", "title": "Storm closes schools", "body": "All schools shut on Friday."},
    ]
    report = backfill(_write(tmp_path / "nuke.jsonl", lines), "s", db_path)
    assert report.counts["new"] == 2
    assert [row[2] for row in _article_events(db_path)] == ["article.published", "article.published"]


def test_a_version_made_before_one_a_feed_recorded_is_stale(tmp_path: Path, db_path: Path) -> None:
    """A feed recorded two versions (the log keeps no time they were made); an archive lists
    them dated 10:00 and 12:00, then one dated 11:00: stale, as in a first load, not the
    article's current text."""
    feed = tmp_path / "feed.xml"
    for title in ("Talks resume", "Talks resume in Geneva"):
        feed.write_bytes(rss([item(1, title)]))
        ingest([Source("s", str(feed))], db_path)
    common = {"guid": "urn:test:1", "url": "http://example.org/news/1", "summary": "Summary of story 1."}
    versions = [
        {**common, "title": "Talks resume", "updated_at": "2026-03-10T10:00:00Z"},
        {**common, "title": "Talks resume in Geneva", "updated_at": "2026-03-10T12:00:00Z"},
        {**common, "title": "Talks to resume", "updated_at": "2026-03-10T11:00:00Z"},
    ]
    report = backfill(_write(tmp_path / "a.jsonl", versions), "s", db_path)
    assert report.counts["stale"] == 1
    assert [json.loads(row[-1])["title"] for row in _article_events(db_path)] == [
        "Talks resume",
        "Talks resume in Geneva",
    ]


def test_a_resumed_load_steps_over_a_kill_notice_repeated(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill notice again (no version in the log: it repeated a withdrawal) is stepped over
    when a load resumes, not recorded as a withdrawal of the corrected article after it."""
    lines = [
        {"guid": "k1", "title": "Minister resigns"},
        {"guid": "k1", "title": "Minister resigns", "withdrawn": True},
        {"guid": "k1", "withdrawn": True},
        {"guid": "k1", "title": "Minister resigns, corrected"},
        {"guid": "k2", "title": "Port strike ends"},
        {"guid": "k3", "title": "Ferry resumes"},
    ]
    archive = _write(tmp_path / "kills.jsonl", lines)
    reference = tmp_path / "reference" / "newsroom.duckdb"
    backfill(archive, "s", reference)
    _interrupted_then_resumed(archive, db_path, monkeypatch, chunk_lines=2, at_chunk=3)

    def history(path: Path) -> list[tuple]:
        return [(row[2], json.loads(row[-1])["title"]) for row in _article_events(path)]

    assert history(db_path) == history(reference)
    assert [kind for kind, _ in history(db_path)][:3] == [
        "article.published",
        "article.withdrawn",
        "article.revised",
    ]


def test_a_stale_line_does_not_jump_to_its_text_later_in_the_history(tmp_path: Path, db_path: Path) -> None:
    """A, B, C made before B (stale), D, C again: loaded again with a line more, the stale C
    is stepped over where it stands, not matched with the later C (which replayed D and C)."""
    versions = [
        {"guid": "h", "title": "Poll: Smith leads", "updated_at": "2026-03-10T10:00:00Z"},
        {"guid": "h", "title": "Smith takes lead in poll", "updated_at": "2026-03-10T12:00:00Z"},
        {"guid": "h", "title": "Poll: Smith ahead", "updated_at": "2026-03-10T11:00:00Z"},
        {"guid": "h", "title": "Smith leads poll by 5 points"},
        {"guid": "h", "title": "Poll: Smith ahead"},
    ]
    first = backfill(_write(tmp_path / "a.jsonl", versions), "s", db_path)
    assert (first.counts["new"], first.counts["revised"], first.counts["stale"]) == (1, 3, 1)
    grown = backfill(_write(tmp_path / "b.jsonl", [*versions, {"guid": "k", "title": "Other"}]), "s", db_path)
    assert (grown.counts["new"], grown.counts["revised"], grown.counts["stale"]) == (1, 0, 1)


def test_a_dated_line_repeating_an_undated_version_dates_it_in_every_load(
    tmp_path: Path, db_path: Path
) -> None:
    """T1 undated, T1 again dated 14:00, T2 dated 11:00: T2 is stale whether the archive is
    loaded at once or its first line before the rest."""
    rows = [
        {"guid": "a", "title": "T1"},
        {"guid": "a", "title": "T1", "updated_at": "2026-03-10T14:00:00Z"},
        {"guid": "a", "title": "T2", "updated_at": "2026-03-10T11:00:00Z"},
    ]
    once = tmp_path / "once" / "newsroom.duckdb"
    assert backfill(_write(tmp_path / "whole.jsonl", rows), "s", once).counts["stale"] == 1
    backfill(_write(tmp_path / "first.jsonl", rows[:1]), "s", db_path)
    assert backfill(_write(tmp_path / "whole.jsonl", rows), "s", db_path).counts["stale"] == 1

    def titles(path: Path) -> list[str]:
        return [json.loads(row[-1])["title"] for row in _article_events(path)]

    assert titles(db_path) == titles(once) == ["T1"]


def test_an_archive_of_a_source_identified_by_link_finds_its_articles(tmp_path: Path, db_path: Path) -> None:
    """Once a source's guids proved to change on every fetch, its items are identified by
    link (README, "guids that change on every fetch"): its archive's lines are too, or every
    story it lists would be recorded a second time, as another article."""
    feed = tmp_path / "feed.xml"
    for fetch in range(1, 4):
        feed.write_bytes(rss([item(n, guid=f"urn:session-{fetch}:{n}") for n in range(1, 6)]))
        ingest([Source("s", str(feed))], db_path)
    assert len({event[3] for event in _article_events(db_path)}) == 5
    lines: list[object] = [
        {
            "url": f"http://example.org/news/{n}",
            "title": f"Headline number {n}",
            "summary": f"Summary of story {n}.",
        }
        for n in range(1, 5)
    ]
    lines.append(
        {"guid": "urn:session-9:5", "url": "http://example.org/news/5", "title": "Headline five, edited"}
    )
    report = backfill(_write(tmp_path / "a.jsonl", lines), "s", db_path)
    assert (report.counts["new"], report.counts["revised"], report.counts["unchanged"]) == (0, 1, 4)
    assert len({event[3] for event in _article_events(db_path)}) == 5


def test_an_archive_records_the_same_events_whatever_its_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A withdrawal dated before the version it follows, then a revision dated between the
    two: within a chunk the revision was judged against the withdrawal's time, across a
    chunk's end (a resumed load) against the latest time, as the log reads it. The latest,
    both ways."""
    rows = [
        {"guid": "a", "title": "T1", "updated_at": "2026-03-10T14:00:00Z"},
        {"guid": "a", "title": "T2"},
        {"guid": "a", "withdrawn": True, "updated_at": "2026-03-10T11:00:00Z"},
        {"guid": "a", "title": "T3", "updated_at": "2026-03-10T12:00:00Z"},
    ]
    archive = _write(tmp_path / "a.jsonl", rows)
    once = tmp_path / "once" / "newsroom.duckdb"
    backfill(archive, "s", once)
    monkeypatch.setattr(ingestion._log.backfill, "CHUNK_LINES", 1)
    chunked = tmp_path / "chunked" / "newsroom.duckdb"
    backfill(archive, "s", chunked)
    sql = (
        "SELECT event_type, payload ->> '$.title', occurred_at FROM raw.events "
        "WHERE starts_with(event_type, 'article.') ORDER BY event_seq"
    )
    events = []
    for path in (once, chunked):
        with duckdb.connect(str(path), read_only=True) as con:
            events.append(con.execute(sql).fetchall())
    assert events[0] == events[1]
    assert events[0][-1] == ("article.revised", "T3", None)  # not after the latest time known


def test_planning_after_a_backfill_reads_the_states_file_not_the_log(tmp_path: Path, db_path: Path) -> None:
    """A backfill changes no feed's state: the states file beside the log is written again
    with the log's new last event, so planning does not wait for the writer's lock to read
    the log (a transform may hold it for minutes)."""
    feed = tmp_path / "feed.xml"
    feed.write_bytes(rss([item(1)]))
    ingest([Source("s", str(feed))], db_path)
    before = current_states_file(db_path)
    assert before is not None
    backfill(_write(tmp_path / "a.jsonl", [{"guid": "g1", "title": "From the archive"}]), "s", db_path)
    assert current_states_file(db_path) == before
    backfill(
        _write(tmp_path / "b.jsonl", [{"guid": "g2", "title": "Into a log without feeds"}]),
        "t",
        tmp_path / "new.duckdb",
    )
    assert current_states_file(tmp_path / "new.duckdb") == {}
