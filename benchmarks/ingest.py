"""Ingest throughput: bare feedparser vs the full ingest path, and backfill rows/s.

    uv run python benchmarks/ingest.py [--feeds 200] [--items 100] [--lines 100000]

Writes synthetic feeds and an archive to a temporary directory, then prints:
bare ``feedparser.parse`` items/s over the same bodies, full ``ingest`` items/s
(read, store raw body, parse, clean, decide, append to DuckDB), their ratio, and
backfill rows/s for a JSON Lines archive, and the seconds to parse a 20 MB body
built against the parser (the worst case a source can send).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import feedparser

from ingestion._log.backfill import backfill
from ingestion._log.record import ingest
from ingestion._sources.config import Source
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--lines", type=int, default=100_000)
    args = parser.parse_args()
    rng = random.Random(42)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = []
        for feed in range(args.feeds):
            path = root / f"feed{feed}.xml"
            write_feed(path, feed, args.items, rng)
            paths.append(path)
        total_items = args.feeds * args.items
        print(
            f"input: {args.feeds} feeds x {args.items} items "
            f"({sum(p.stat().st_size for p in paths) / 1e6:.1f} MB), local files"
        )

        # Warm up both paths on one feed first (imports, DuckDB, caches): the figures
        # below are per-item steady-state rates, which is what grows with volume.
        warm_source = replace(Source("warmup", str(paths[0])), politeness_delay_seconds=0.0)
        ingest([warm_source], root / "warmup" / "newsroom.duckdb")
        feedparser.parse(io.BytesIO(paths[0].read_bytes()))

        bodies = [p.read_bytes() for p in paths]
        started = time.perf_counter()
        parsed = sum(len(feedparser.parse(io.BytesIO(body)).entries) for body in bodies)
        bare = time.perf_counter() - started
        assert parsed == total_items
        bare_rate = total_items / bare
        print(f"bare feedparser.parse:  {bare_rate:10,.0f} items/s  ({bare:.2f} s)")

        sources = [
            replace(Source(f"bench{i}", str(p)), politeness_delay_seconds=0.0) for i, p in enumerate(paths)
        ]
        db = root / "data" / "newsroom.duckdb"
        started = time.perf_counter()
        report = ingest(sources, db)
        full = time.perf_counter() - started
        assert report.totals()["new"] == total_items, report.totals()
        full_rate = total_items / full
        print(f"full ingest path:       {full_rate:10,.0f} items/s  ({full:.2f} s)")
        print(f"ratio full/bare:        {full_rate / bare_rate:10.1%}  (goal >= 70%)")

        started = time.perf_counter()
        again = ingest(sources, db)
        print(
            f"re-ingest, unchanged:   {time.perf_counter() - started:10.2f} s ({again.totals()['new']} new)"
        )

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
