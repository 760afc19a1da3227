"""Ingest throughput: bare feedparser vs our parse paths and the full ingest, and backfill rows/s.

    uv run python benchmarks/ingest.py [--feeds 200] [--items 100] [--lines 100000]

Writes synthetic feeds and an archive to a temporary directory, then prints, on
the same bodies: bare ``feedparser.parse`` items/s; our parse (``parse_body``:
the fast RSS path, text cleaning, caps) and our feedparser path (``parse_rss``);
the full ``ingest`` items/s with the feeds served from 127.0.0.1 (fetch, store
raw body, parse and clean in worker processes, decide, append to DuckDB; the
workers' start included) and its ratio to bare feedparser; the scheduler's split
(fetch tasks parse and keep results, then the writer's ``record`` alone);
backfill rows/s for a JSON Lines archive; and the seconds to parse a 20 MB body
built against the parser (the worst case a source can send). The load average
is printed beside the figures: they are only comparable on a machine nobody else
is using.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import feedparser

from ingestion._demo.localserver import LocalServer, Route
from ingestion._log.backfill import backfill
from ingestion._log.record import blob_store_for, ingest, parse_fetched, record
from ingestion._model import FetchRequest
from ingestion._sources.config import Source
from ingestion._sources.dates import utcnow
from ingestion._sources.parse import parse_body
from ingestion._sources.plan import fetch_all
from ingestion._sources.rss import parse_rss

WORDS = [
    "minister",
    "summit",
    "ceasefire",
    "talks",
    "port",
    "strike",
    "storm",
    "final",
    "rate",
    "bank",
    "union",
    "vote",
    "border",
    "energy",
    "market",
    "court",
    "police",
    "election",
    "coalition",
    "budget",
    "troops",
    "harbour",
]


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def write_feed(path: Path, feed: int, items: int, rng: random.Random) -> None:
    entries = []
    for i in range(items):
        entries.append(
            f"<item><title>{sentence(rng, 9)}</title>"
            f"<link>https://news{feed}.example/story/{i}?utm_source=rss</link>"
            f"<guid isPermaLink='false'>urn:bench:{feed}:{i}</guid>"
            f"<description>&lt;p&gt;{sentence(rng, 30)} "
            f"&lt;b&gt;{sentence(rng, 8)}&lt;/b&gt;&lt;/p&gt;</description>"
            f"<dc:creator>Reporter {rng.randint(1, 50)}</dc:creator>"
            f"<pubDate>Mon, 09 Mar 2026 {i % 24:02d}:{i % 60:02d}:00 GMT</pubDate></item>"
        )
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Bench</title>'
        f"<link>https://news{feed}.example/</link><description>b</description>{''.join(entries)}"
        "</channel></rss>"
    )


def write_archive(path: Path, lines: int, rng: random.Random) -> None:
    with path.open("w") as out:
        for i in range(lines):
            out.write(
                json.dumps(
                    {
                        "guid": f"urn:archive:{i}",
                        "url": f"https://archive.example/{i}",
                        "title": sentence(rng, 9),
                        "summary": sentence(rng, 25),
                        "source": f"Outlet {i % 40}",
                        "published_at": f"2014-03-{10 + i % 8:02d}T08:00:00Z",
                        "language": "en",
                    }
                )
                + "\n"
            )


def adversarial_body(size: int) -> bytes:
    """A well-formed feed of ``size`` bytes built against the media-caption pass:
    hundreds of thousands of never-closed <media:description> in an item that has
    its own text and as many never-closed <item>/<entry> after it, each in a comment
    so that feedparser itself skips them."""
    half = size // 2
    media = b"<!--<media:description>-->" * (half // 26)
    items = b"<!--<item><entry>-->" * (half // 20)
    return (
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Worst</title>'
        b"<item><title>T</title><guid>urn:worst:1</guid><description>D</description>"
        + media
        + b"</item>"
        + items
        + b"</channel></rss>"
    )


def _load() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def _rate(label: str, items: int, seconds: float, note: str = "") -> float:
    rate = items / seconds
    print(f"{label:<34}{rate:10,.0f} items/s  ({seconds:.2f} s; {_load()}){note}")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--lines", type=int, default=100_000)
    args = parser.parse_args()
    rng = random.Random(42)
    with tempfile.TemporaryDirectory() as tmp, LocalServer() as server:
        root = Path(tmp)
        paths = []
        for feed in range(args.feeds):
            path = root / f"feed{feed}.xml"
            write_feed(path, feed, args.items, rng)
            paths.append(path)
            server.routes[f"/feed{feed}.xml"] = Route(
                path.read_bytes(), headers={"Content-Type": "application/rss+xml; charset=utf-8"}
            )
        total_items = args.feeds * args.items
        print(
            f"input: {args.feeds} feeds x {args.items} items "
            f"({sum(p.stat().st_size for p in paths) / 1e6:.1f} MB), served from 127.0.0.1; {_load()}"
        )

        def sources(prefix: str) -> list[Source]:
            return [
                replace(Source(f"{prefix}{i}", server.url(f"/feed{i}.xml")), politeness_delay_seconds=0.0)
                for i in range(args.feeds)
            ]

        # Warm up every path on one feed first (imports, DuckDB, caches): the figures
        # below are per-item steady-state rates, which is what grows with volume.
        ingest(sources("warmup")[:1], root / "warmup" / "newsroom.duckdb")
        bodies = [p.read_bytes() for p in paths]
        feedparser.parse(io.BytesIO(bodies[0]))

        started = time.perf_counter()
        parsed = sum(len(feedparser.parse(io.BytesIO(body)).entries) for body in bodies)
        bare = time.perf_counter() - started
        assert parsed == total_items
        bare_rate = _rate("bare feedparser.parse:", total_items, bare)

        now = utcnow()
        started = time.perf_counter()
        parsed = sum(len(parse_body("rss", body, source_id="b", url="b", now=now).items) for body in bodies)
        assert parsed == total_items
        fast_rate = _rate("our parse (fast path, cleaned):", total_items, time.perf_counter() - started)
        started = time.perf_counter()
        parsed = sum(len(parse_rss(body, source_id="b", url="b", now=now).items) for body in bodies)
        assert parsed == total_items
        _rate("our feedparser path (fallback):", total_items, time.perf_counter() - started)
        print(f"{'fast parse / bare feedparser:':<34}{fast_rate / bare_rate:10.1f}x")

        db = root / "data" / "newsroom.duckdb"
        started = time.perf_counter()
        report = ingest(sources("bench"), db)
        full = time.perf_counter() - started
        assert report.totals()["new"] == total_items, report.totals()
        full_rate = _rate("full ingest (127.0.0.1):", total_items, full)
        print(f"{'ratio full ingest / bare:':<34}{full_rate / bare_rate:10.1f}x  (goal >= 5x)")

        started = time.perf_counter()
        again = ingest(sources("bench"), db)
        print(
            f"{'re-ingest, unchanged:':<34}{time.perf_counter() - started:10.2f} s "
            f"({again.totals()['new']} new)"
        )

        # The scheduler's split: fetch tasks fetch, parse and keep results; the writer
        # then only reads them, decides and appends.
        split_db = root / "split" / "newsroom.duckdb"
        blobs = blob_store_for(split_db)
        started = time.perf_counter()
        requests = [FetchRequest(s.id, s.url, s.kind) for s in sources("split")]
        outcomes = fetch_all(requests, blobs, politeness={})
        parse_fetched(outcomes, blobs)
        fetched = time.perf_counter() - started
        started = time.perf_counter()
        report = record(split_db, outcomes, blobs)
        written = time.perf_counter() - started
        assert report.totals()["new"] == total_items, report.totals()
        _rate("split: fetch + parse + keep:", total_items, fetched)
        _rate("split: the writer's record alone:", total_items, written)

        archive = root / "archive.jsonl"
        write_archive(archive, args.lines, rng)
        started = time.perf_counter()
        loaded = backfill(archive, "archive", root / "backfill" / "newsroom.duckdb")
        elapsed = time.perf_counter() - started
        assert loaded.counts["new"] == args.lines
        print(
            f"backfill {args.lines:,} lines:  {args.lines / elapsed:10,.0f} rows/s  "
            f"({elapsed:.2f} s; goal > 20,000 rows/s)"
        )
    body = adversarial_body(20 * 1024 * 1024)
    started = time.perf_counter()
    worst = parse_rss(body, source_id="worst", url="worst", now=datetime(2026, 1, 1))
    assert len(worst.items) == 1
    print(f"worst case, 20 MB body:  {time.perf_counter() - started:10.2f} s to parse (adversarial markup)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (RSS):      {peak:10,.0f} MB")


if __name__ == "__main__":
    main()
