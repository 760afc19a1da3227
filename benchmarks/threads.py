"""Story-thread quality and speed on the product's own path.

    uv run python benchmarks/threads.py

For each labelled set in ../shared/data/threads/ (uci_dev, giveme5w1h, uci_long_dev): sort the
archive by published_at (a desk sees a story in time order), load it with
`newsroom backfill`, assign threads, and score the assignments with
../shared/eval/score_threads.py (B-cubed and pairwise P/R/F1 within each day).
giveme5w1h again without its summaries, under titles that say less and less
(its title alone, its first three words, "News", the body's first six words).
On uci_long_dev (two months), whether threads stay stories: the share of articles
in threads spanning more than 14 days, and the ten biggest threads; and the same
two months as two archives (its publishers split in two halves) loaded one after
the other, as a second source's archive is loaded after the first's. Then the cost
of assigning 10,000 new headlines on top of ~400,000 already threaded (uci_dev
replicated with shifted dates), and peak memory.
"""

from __future__ import annotations

import csv
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from ingestion._derive.threads import ThreadReport, assign_threads
from ingestion._log.backfill import backfill

SHARED = Path(__file__).resolve().parents[2] / "shared"
SETS = ("uci_dev", "giveme5w1h", "uci_long_dev")
#: A thread spanning more than this many days counts as long-running (a topic rather than a story?).
LONG_DAYS = 14


def read_text(path: Path) -> str:
    """The file, or its gzip-compressed twin (``name.gz``)."""
    if path.exists():
        return path.read_text()
    with gzip.open(f"{path}.gz", "rt", encoding="utf-8") as f:
        return f.read()


def sorted_archive(source: Path, target: Path, copies: int = 1, shift_days: int = 11) -> int:
    rows = [json.loads(line) for line in read_text(source).splitlines() if line.strip()]
    out = []
    for copy in range(copies):
        for row in rows:
            row = dict(row)
            if copy:
                when = datetime.fromisoformat(row["published_at"].replace("Z", "+00:00"))
                row["published_at"] = (when + timedelta(days=shift_days * copy)).isoformat()
                row["guid"] = f"{row['guid']}~{copy}"
                row["url"] = None
            out.append(row)
    out.sort(key=lambda r: (r.get("published_at") or "", r.get("guid") or ""))
    target.write_text("".join(json.dumps(r) + "\n" for r in out))
    return len(out)


#: Each article's thread now (article_id, thread_id, first_seen): its last assignment,
#: followed through merges (A into B, then B into C: C).
CURRENT_THREADS = """
    WITH RECURSIVE chain AS (
        SELECT thread_id, merged_into FROM enrich.thread_merges
        UNION ALL
        SELECT c.thread_id, m.merged_into
        FROM chain c JOIN enrich.thread_merges m ON m.thread_id = c.merged_into
    ),
    final AS (
        SELECT thread_id, merged_into FROM chain
        WHERE merged_into NOT IN (SELECT thread_id FROM enrich.thread_merges)
    )
    SELECT a.article_id, coalesce(f.merged_into, a.thread_id) AS thread_id, a.first_seen
    FROM (
        SELECT article_id, arg_max(thread_id, event_seq) AS thread_id, min(event_time) AS first_seen
        FROM enrich.thread_assignments GROUP BY 1
    ) a
    LEFT JOIN final f USING (thread_id)
"""


def score(name: str, workdir: Path) -> None:
    data = SHARED / "data" / "threads" / name
    db = workdir / name / "newsroom.duckdb"
    archive = workdir / f"{name}.jsonl"
    sorted_archive(data / "articles.jsonl", archive)
    backfill(archive, name, db)
    score_threads(name, data, db, workdir, assign_threads(db))


#: Titles that say little, for full-text stories followed over weeks (the held-out ones carry a
#: body and a one-line title): each gives giveme5w1h's articles a title and no summary.
WEAK_TITLES: dict[str, Callable[[dict], str]] = {
    "its title alone": lambda row: row["title"],
    "its title's first three words": lambda row: " ".join(row["title"].split()[:3]),
    'the title "News"': lambda row: "News",
    "its body's first six words as title": lambda row: " ".join((row.get("body") or "").split()[:6]),
}


def score_weak_titles(workdir: Path) -> None:
    """giveme5w1h without summaries, under each of ``WEAK_TITLES``."""
    data = SHARED / "data" / "threads" / "giveme5w1h"
    archive = workdir / "giveme5w1h.jsonl"
    sorted_archive(data / "articles.jsonl", archive)
    rows = [json.loads(line) for line in archive.read_text().splitlines()]
    for number, (name, title) in enumerate(WEAK_TITLES.items()):
        variant = workdir / f"giveme5w1h-weak{number}.jsonl"
        retitled = ({**row, "title": title(row), "summary": ""} for row in rows)
        variant.write_text("".join(json.dumps(row) + "\n" for row in retitled))
        db = workdir / f"giveme5w1h-weak{number}" / "newsroom.duckdb"
        backfill(variant, "giveme5w1h", db)
        score_threads(f"giveme5w1h, {name}", data, db, workdir, assign_threads(db))


def score_two_archives(name: str, workdir: Path) -> None:
    """The set's publishers split in two halves, each half's archive in time order, the
    second loaded after the first: its articles arrive dated before the threads' clock."""
    data = SHARED / "data" / "threads" / name
    db = workdir / f"{name}-two-archives" / "newsroom.duckdb"
    archive = workdir / f"{name}.jsonl"
    sorted_archive(data / "articles.jsonl", archive)
    halves: tuple[list[str], list[str]] = ([], [])
    for line in archive.read_text().splitlines(keepends=True):
        halves[zlib.crc32(json.loads(line)["source"].encode()) % 2].append(line)
    for number, lines in enumerate(halves):
        half = workdir / f"{name}.half{number}.jsonl"
        half.write_text("".join(lines))
        backfill(half, f"half{number}", db)
    score_threads(f"{name}, two archives loaded one after the other", data, db, workdir, assign_threads(db))


def score_threads(name: str, data: Path, db: Path, workdir: Path, report: ThreadReport) -> None:
    """Score the threads in the database against the set's labels (within days)."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            f"""
            SELECT a.guid, t.thread_id FROM ({CURRENT_THREADS}) t
            JOIN raw.article_events a ON a.stream_id = t.article_id AND a.stream_version = 1
            """
        ).fetchall()
        merges = con.execute("SELECT count(*) FROM enrich.thread_merges").fetchall()[0][0]
        if name.startswith("uci_long_dev"):
            thread_spans(con)
    print(f"   {merges:,} threads merged into another")
    gold = workdir / "gold.csv"
    gold.write_text(read_text(data / "gold.csv"))
    predictions = workdir / "pred.csv"
    with predictions.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "thread"])
        writer.writerows(rows)
    result = subprocess.run(
        [sys.executable, str(SHARED / "eval" / "score_threads.py"), str(gold), str(predictions)],
        capture_output=True,
        text=True,
        check=False,
    )
    print(f"== {name}: {len(rows):,} articles, {report.summary()}")
    print(result.stdout.strip() or result.stderr.strip())


def thread_spans(con: duckdb.DuckDBPyConnection) -> None:
    """Stories, not topics: how many articles sit in threads spanning weeks, and the biggest threads."""
    threads = f"""
        SELECT thread_id, count(*) AS articles,
               date_diff('second', min(first_seen), max(first_seen)) / 86400 AS days
        FROM ({CURRENT_THREADS}) GROUP BY 1
    """
    share = con.execute(
        f"SELECT sum(articles) FILTER (WHERE days > {LONG_DAYS}) / sum(articles) FROM ({threads})"
    ).fetchall()[0][0]
    print(f"share of articles in threads spanning > {LONG_DAYS} days: {share:.3f}; biggest threads:")
    biggest = con.execute(
        f"""
        SELECT t.articles, t.days, a.title FROM ({threads}) t
        JOIN raw.article_events a ON a.stream_id = t.thread_id AND a.stream_version = 1
        ORDER BY t.articles DESC, t.thread_id LIMIT 10
        """
    ).fetchall()
    for articles, days, title in biggest:
        print(f"  {articles:6,} articles over {days:5.1f} days, opened by: {title}")


def throughput(workdir: Path) -> None:
    source = SHARED / "data" / "threads" / "uci_dev" / "articles.jsonl"
    db = workdir / "speed" / "newsroom.duckdb"
    archive = workdir / "speed.jsonl"
    total = sorted_archive(source, archive, copies=15)
    lines = archive.read_text().splitlines(keepends=True)
    first, second = workdir / "first.jsonl", workdir / "second.jsonl"
    first.write_text("".join(lines[: total - 10_000]))
    # The new articles carry full bodies (giveme5w1h's, in turn) so the cost of reading them is counted.
    bodies = [
        json.loads(line)["body"]
        for line in read_text(SHARED / "data" / "threads" / "giveme5w1h" / "articles.jsonl").splitlines()
        if line.strip()
    ]
    new_rows = [json.loads(line) for line in lines[total - 10_000 :]]
    second.write_text(
        "".join(json.dumps({**row, "body": bodies[n % len(bodies)]}) + "\n" for n, row in enumerate(new_rows))
    )
    backfill(first, "speed", db)
    base = assign_threads(db)
    backfill(second, "speed", db)
    started = time.perf_counter()
    new = assign_threads(db)
    elapsed = time.perf_counter() - started
    print(f"== throughput: {base.articles:,} threaded first ({base.summary()})")
    print(
        f"assigning {new.articles:,} new (with bodies) on top: {elapsed:.2f} s = "
        f"{new.articles / elapsed:,.0f} articles/s (incl. loading the saved state and writing assignments)"
    )


def main() -> None:
    if not (SHARED / "data" / "threads").exists():
        sys.exit(f"{SHARED / 'data' / 'threads'} not found: the labelled sets live beside the repository")
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for name in SETS:
            score(name, workdir)
        score_weak_titles(workdir)
        score_two_archives("uci_long_dev", workdir)
        throughput(workdir)
    print(f"peak memory (RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
