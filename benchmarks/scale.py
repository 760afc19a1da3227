"""The product path at scale: load N articles, build everything, then add 10k more.

    uv run python benchmarks/scale.py [--articles 100000 1000000 ...] [--increment 10000]
                                      [--body-share 0.05] [--revised-share 0.05] [--sources 1]
                                      [--keep DIR]

For each N, in a fresh directory and a fresh process (so peak memory is that N's):

1. An archive of N articles as `newsroom backfill` reads them, split by outlet over
   ``--sources`` sources. The headlines are the real ones of ../shared/data/threads
   (uci_dev and uci_long_dev: 222,045 headlines, 10 March - 30 May 2014) in time order;
   past them, the text is synthetic: each cycle over the real rows moves them 82 days
   later and splices every headline's first half onto another headline's second half,
   so every text is new to extraction and threading. ``--body-share`` of the articles
   carry a body from giveme5w1h (383 bodies, ~590 words, reused in turn: extraction reads
   each once, threading and search every time); ``--revised-share`` come again at the
   end of their source's archive with a changed headline. One source by default, so the
   articles are loaded in time order as feeds deliver them: with several, each source's
   archive spans the whole timeline and is loaded after the one before, so story
   threading meets all but the first as late archives (threaded in their own time).
2. The full build, stage by stage (each stage's time and this process's peak RSS in
   it): backfill, entities (NER), threads, `dbt build --full-refresh`; then a first
   validate + publish.
3. An increment of ``--increment`` new articles (the next ones in time) plus revisions
   of 5% as many recent ones, stage by stage: backfill, entities, threads, dbt build,
   validate (every stage, since the last snapshot, with Data Docs), publish (split
   into its steps by timing the functions it calls).
4. The working database's size, bytes per article and its biggest tables' shares
   (by storage block), peak RSS (this process; for the NER workers only an upper
   bound), and two journalist reads of the published file, opened as `newsroom sql`
   opens it: the people with most articles in the last week, and `newsroom search`
   for the most common headline term (first run, then the median of five).

Prints each N's details as it goes, then a Markdown table (one row per N) with the
machine: cores and the load average before and after.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import resource
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import duckdb
import orjson

import ingestion._publish.snapshot as snapshot
from ingestion._derive.entities import extract_entities
from ingestion._derive.threads import assign_threads
from ingestion._derive.transform import transform
from ingestion._log.backfill import backfill
from ingestion._publish.search import search
from ingestion._publish.snapshot import last_published_seq, publish, published_dir, published_path
from ingestion._publish.sql import open_published
from ingestion._quality.validate import validate

THREADS_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "threads"
#: Later than the real rows' span (81 days), so each synthetic cycle follows the one before.
CYCLE_DAYS = 82
#: Publish's steps, timed by wrapping the functions of that name it calls: a full
#: build's and an update's.
PUBLISH_STEPS = (
    "copy_mart",
    "_update_marts",
    "build_search_index",
    "update_search_index",
    "write_change_feeds",
    "write_mirror",
    "update_mirror",
    "write_mart_parquet",
)

TOP_PEOPLE_LAST_WEEK = """
    SELECT e.canonical_name, sum(d.articles) AS articles
    FROM entity_daily AS d JOIN entities AS e USING (entity_id)
    WHERE e.entity_type = 'person' AND d.day > (SELECT max(day) FROM entity_daily) - 7
    GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10
"""

#: The table's columns: (key in a result row, heading, format).
COLUMNS = (
    ("articles", "articles", "{:,}"),
    ("backfill_rate", "backfill rows/s", "{:,.0f}"),
    ("full entities", "full: NER s", "{:.0f}"),
    ("full threads", "threads s", "{:.0f}"),
    ("full dbt build", "dbt s", "{:.0f}"),
    ("+ backfill", "+{increment}: backfill s", "{:.1f}"),
    ("+ entities", "NER s", "{:.1f}"),
    ("+ threads", "threads s", "{:.1f}"),
    ("+ dbt build", "dbt s", "{:.1f}"),
    ("+ validate", "validate s", "{:.1f}"),
    ("+ publish", "publish s", "{:.1f}"),
    ("increment_total", "transform+validate+publish s", "{:.1f}"),
    ("database_mb", "working DB MB", "{:,.0f}"),
    ("bytes_per_article", "bytes/article", "{:,.0f}"),
    ("peak_rss_mb", "peak RSS MB", "{:,.0f}"),
    ("top_people_ms", "top people ms", "{:.0f}"),
    ("search_ms", "search ms", "{:.0f}"),
)


def read_rows(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as lines:
        return [orjson.loads(line) for line in lines if line.strip()]


class Articles:
    """Article ``n`` of the benchmark's timeline, the same in every process."""

    def __init__(self, body_share: float) -> None:
        real = read_rows(THREADS_DATA / "uci_dev" / "articles.jsonl") + read_rows(
            THREADS_DATA / "uci_long_dev" / "articles.jsonl.gz"
        )
        real.sort(key=lambda r: (r["published_at"], r["guid"]))
        self.real = real
        self.bodies = [r["body"] for r in read_rows(THREADS_DATA / "giveme5w1h" / "articles.jsonl")]
        self.body_share = body_share

    def __call__(self, n: int) -> dict:
        cycle, position = divmod(n, len(self.real))
        row = dict(self.real[position])
        if cycle:
            partner = self.real[(position * 7 + cycle * 1_000_003) % len(self.real)]["title"].split()
            words = row["title"].split()
            row["title"] = " ".join(words[: len(words) // 2 + 1] + partner[len(partner) // 2 :])
            when = datetime.fromisoformat(row["published_at"].replace("Z", "+00:00"))
            row["published_at"] = (when + timedelta(days=CYCLE_DAYS * cycle)).isoformat()
            row["guid"] = f"{row['guid']}~{cycle}"
            row["url"] = None
        if _share(b"body", n) < self.body_share:
            row["body"] = self.bodies[n % len(self.bodies)]
        return row


def _share(salt: bytes, n: int) -> float:
    """A fixed pseudo-random number in [0, 1) per article: choices that do not depend on N."""
    return zlib.crc32(salt + n.to_bytes(8, "little")) / 2**32


def write_archives(
    folder: Path, articles: Articles, new: range, revised: list[int], tag: str, sources: int
) -> tuple[list[tuple[str, Path]], int]:
    """One archive per source: the new articles in time order, then the revised headlines."""
    folder.mkdir(parents=True, exist_ok=True)
    handles: dict[str, Any] = {}

    def write(row: dict) -> None:
        source = f"bench{zlib.crc32(str(row.get('source')).encode()) % sources}"
        if source not in handles:
            handles[source] = (folder / f"{source}.jsonl").open("wb")
        handles[source].write(orjson.dumps(row) + b"\n")

    try:
        for n in new:
            write(articles(n))
        for n in revised:
            row = articles(n)
            write({**row, "title": f"{tag} {row['title'].removesuffix('...').strip()}"})
    finally:
        for handle in handles.values():
            handle.close()
    return sorted((source, folder / f"{source}.jsonl") for source in handles), len(new) + len(revised)


class Stages:
    """Wall seconds and this process's peak resident memory per named stage, printed as
    each ends (the peak is counted per stage where Linux lets a process reset it)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.peak_mb: dict[str, float] = {}

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        with suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from now
        started = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - started
        self.peak_mb[name] = peak_rss_mb()[0]
        print(f"  {name:32} {self.seconds[name]:8.1f} s   peak RSS {self.peak_mb[name]:8,.0f} MB")


def load(archives: list[tuple[str, Path]], db_path: Path) -> int:
    events = 0
    for source, path in archives:
        events += backfill(path, source, db_path).events_appended
    return events


def build(db_path: Path, stages: Stages, prefix: str, *, full_refresh: bool) -> None:
    with stages.timed(f"{prefix} entities"):
        print(f"    {extract_entities(db_path).summary()}")
    with stages.timed(f"{prefix} threads"):
        print(f"    {assign_threads(db_path).summary()}")
    with stages.timed(f"{prefix} dbt build"):
        report = transform(
            db_path, full_refresh=full_refresh, entities=False, checked_since=last_published_seq(db_path)
        )
        print(f"    {report.summary()}")
        if not report.success:
            sys.exit("dbt build failed: " + "; ".join(report.failures))


def validate_and_publish(db_path: Path, stages: Stages, prefix: str) -> dict[str, float]:
    """As the scheduler does it: validate every stage once, then publish with that report.
    Returns the seconds spent in each of publish's steps."""
    with stages.timed(f"{prefix} validate"):
        report = validate(db_path, since=last_published_seq(db_path))
        if not report.success:
            sys.exit(
                "validation failed: " + ", ".join(f"{o.suite}: {o.expectation}" for o in report.failures())
            )
    steps = dict.fromkeys(PUBLISH_STEPS, 0.0)
    originals = {name: getattr(snapshot, name) for name in PUBLISH_STEPS}

    def timing(name: str, step: Callable) -> Callable:
        def timed_step(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return step(*args, **kwargs)
            finally:
                steps[name] += time.perf_counter() - started

        return timed_step

    for name, step in originals.items():
        setattr(snapshot, name, timing(name, step))
    try:
        with stages.timed(f"{prefix} publish"):
            published = publish(db_path, validation=report)
    finally:
        for name, step in originals.items():
            setattr(snapshot, name, step)
    steps["rest (counts, CHECKPOINT, switch)"] = stages.seconds[f"{prefix} publish"] - sum(steps.values())
    print(
        "    publish steps: "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in steps.items() if seconds)
    )
    print(f"    published up to event #{published.last_event_seq}: {published.tables}")
    if published.changes is not None:
        changed = {mart: counts for mart, counts in published.changes.items() if any(counts)}
        print(f"    rows taken out and put in by the update: {changed}")
    return steps


def bytes_by_table(db_path: Path) -> list[tuple[str, float]]:
    """Each table's share of the database file, biggest first: the storage blocks its
    column segments sit in (a block shared by several tables split among them)."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        block_size = con.execute("SELECT block_size FROM pragma_database_size()").fetchall()[0][0]
        tables = con.execute(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
            "WHERE database_name = current_database()"
        ).fetchall()
        users: dict[int, set[str]] = {}
        for (table,) in tables:
            blocks = con.execute(
                "SELECT list_distinct(flatten(list(list_append(additional_block_ids, block_id)))) "
                f"FROM pragma_storage_info('{table}') WHERE block_id >= 0"
            ).fetchall()[0][0]
            for block in blocks or []:
                users.setdefault(block, set()).add(table)
    sizes: dict[str, float] = {}
    for tables_in_block in users.values():
        for table in tables_in_block:
            sizes[table] = sizes.get(table, 0.0) + block_size / len(tables_in_block)
    return sorted(sizes.items(), key=lambda item: -item[1])


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def peak_rss_mb() -> tuple[float, float]:
    """Peak RSS of this process and of its largest child (the NER workers), in MB.

    ru_maxrss survives exec, so a spawned process starts from its parent's peak:
    this process's own comes from VmHWM on Linux, and the children's figure is only
    an upper bound (at least this process's RSS when it spawned them)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, children
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE).group(1)) / 1024, children


def latency_ms(run: Callable[[], object]) -> tuple[float, float]:
    """The first run, then the median of five more, in milliseconds."""
    times = []
    for _ in range(6):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return times[0], statistics.median(times[1:])


def journalist_reads(db_path: Path) -> dict[str, float]:
    con = open_published(published_path(db_path))
    try:
        first, top_people = latency_ms(lambda: con.execute(TOP_PEOPLE_LAST_WEEK).fetchall())
        print(f"  top people in the last week: first {first:.0f} ms, then {top_people:.0f} ms")
        print("    " + "; ".join(f"{name} {n}" for name, n in con.execute(TOP_PEOPLE_LAST_WEEK).fetchall()))
        # The most common term but the revisions' tag, which only this benchmark puts in headlines.
        (word,) = con.execute(
            "SELECT term FROM main.search_terms WHERE length(term) >= 4 AND term <> stem('update', 'porter') "
            "ORDER BY document_count DESC LIMIT 1"
        ).fetchone()
        first_search, searched = latency_ms(lambda: search(con, word, limit=20)[0].fetchall())
        documents = con.execute(
            "SELECT document_count FROM main.search_terms WHERE term = ?", [word]
        ).fetchone()[0]
        print(
            f"  newsroom search {word!r} ({documents:,} documents hold it), limit 20: "
            f"first {first_search:.0f} ms, then {searched:.0f} ms"
        )
    finally:
        con.close()
    return {"top_people_ms": top_people, "search_ms": searched}


def measure(n: int, args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    """Everything for one N, in a process of its own."""
    sys.stdout.reconfigure(line_buffering=True)
    print(f"== {n:,} articles in {workdir}; load average {os.getloadavg()[0]:.2f}")
    articles = Articles(args.body_share)
    if n + args.increment > len(articles.real):
        print(f"  articles past #{len(articles.real):,} have synthetic (spliced) headlines")
    db_path = workdir / "newsroom.duckdb"
    stages = Stages()

    started = time.perf_counter()
    revised = [a for a in range(n) if _share(b"revised", a) < args.revised_share]
    base, lines = write_archives(workdir / "archive", articles, range(n), revised, "UPDATE 1-", args.sources)
    written = time.perf_counter() - started
    print(f"  archive: {lines:,} lines ({len(revised):,} revisions) written in {written:.0f} s")
    with stages.timed("backfill"):
        events = load(base, db_path)
    print(f"    {events:,} events; {lines / stages.seconds['backfill']:,.0f} rows/s")
    build(db_path, stages, "full", full_refresh=True)
    validate_and_publish(db_path, stages, "first")

    recent = range(max(0, n - args.increment), n)
    revised = [a for a in recent if _share(b"increment", a) < 0.05 * args.increment / len(recent)]
    new, _ = write_archives(
        workdir / "increment", articles, range(n, n + args.increment), revised, "UPDATE 2-", args.sources
    )
    print(f"  increment: {args.increment:,} new articles and {len(revised):,} revisions")
    with stages.timed("+ backfill"):
        load(new, db_path)
    build(db_path, stages, "+", full_refresh=False)
    validate_and_publish(db_path, stages, "+")

    database = size_of(db_path) + size_of(db_path.with_name(db_path.name + ".wal"))
    beside = {
        name: size_of(workdir / name) for name in ("blobs", "threads", "archive", "increment", "published")
    }
    print(
        f"  working database {database / 2**20:,.0f} MB ({database / (n + args.increment):,.0f} bytes "
        "an article); beside it: " + ", ".join(f"{k} {v / 2**20:,.0f} MB" for k, v in beside.items())
    )
    shares = bytes_by_table(db_path)
    print(
        "  where the working database's bytes go: "
        + ", ".join(f"{name} {size / database:.0%}" for name, size in shares[:10])
    )
    published_file = size_of(published_path(db_path)) / 2**20
    published_folder = size_of(published_dir(db_path) / "current") / 2**20
    print(f"  published file {published_file:,.0f} MB, Parquet, mirror and feeds {published_folder:,.0f} MB")
    reads = journalist_reads(db_path)
    own, child = peak_rss_mb()
    own = max(own, *stages.peak_mb.values())
    print(f"  peak RSS: this process {own:,.0f} MB, largest child at most {child:,.0f} MB")
    increment = ("+ entities", "+ threads", "+ dbt build", "+ validate", "+ publish")
    return {
        **stages.seconds,
        "articles": n,
        "backfill_rate": lines / stages.seconds["backfill"],
        "increment_total": sum(stages.seconds[name] for name in increment),
        "database_mb": database / 2**20,
        "bytes_per_article": database / (n + args.increment),
        "peak_rss_mb": own,
        **reads,
    }


def table(rows: list[dict[str, float]], increment: int) -> str:
    increment_text = f"{increment // 1000}k" if increment % 1000 == 0 else f"{increment:,}"
    lines = [
        "| " + " | ".join(heading.format(increment=increment_text) for _, heading, _ in COLUMNS) + " |",
        "|" + "|".join("---:" for _ in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(fmt.format(row[key]) for key, _, fmt in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, nargs="+", default=[100_000], metavar="N")
    parser.add_argument("--increment", type=int, default=10_000, help="new articles on top of N")
    parser.add_argument("--body-share", type=float, default=0.05, help="share of articles with a body")
    parser.add_argument("--revised-share", type=float, default=0.05, help="share with a second version")
    parser.add_argument("--sources", type=int, default=1, help="sources the outlets are split over")
    parser.add_argument(
        "--keep",
        metavar="DIR",
        type=Path,
        help="work in DIR/<N> and keep it (default: a temporary directory)",
    )
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    if not THREADS_DATA.exists():
        sys.exit(f"{THREADS_DATA} not found: the sample sets live beside the repository")
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.articles:
            workdir = (args.keep or Path(tmp)) / str(n)
            if workdir.exists() and any(workdir.iterdir()):
                sys.exit(f"{workdir} is not empty")
            workdir.mkdir(parents=True, exist_ok=True)
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as fresh:
                rows.append(fresh.submit(measure, n, args, workdir).result())
    load_after = os.getloadavg()
    print()
    print(table(rows, args.increment))
    print()
    print(
        f"{os.cpu_count()} cores; load average (1, 5, 15 min) before "
        f"{', '.join(f'{x:.2f}' for x in load_before)}, after {', '.join(f'{x:.2f}' for x in load_after)}"
    )


if __name__ == "__main__":
    main()
