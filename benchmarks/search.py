"""Full-text search at scale: building the index at publish, and the latency of a search.

    uv run python benchmarks/search.py [--copies 15] [--body-share 0.10] [--revised-share 0.05]
                                       [--sources 4] [--queries 240] [--seed 7]
                                       [--search-budget 900] [--keep DIR]

About 5-25 minutes on 2 cores.

Makes an archive of ~427,000 articles as `newsroom backfill` reads them
(../shared/data/threads/uci_dev cycled ``--copies`` times with shifted dates and
distinct guids; ``--body-share`` of them carry a body from giveme5w1h, and
``--revised-share`` come again at the end of the archive with a changed headline, so
the index holds earlier versions too), split by outlet over ``--sources`` sources,
and loads it. dbt then builds only the marts search reads (articles, article_versions,
sources, and the entity and thread marts, empty: extraction and threading are skipped).
Publish's steps follow: the marts are copied into a fresh DuckDB file as
``main.<mart>``, and a fresh process times ``build_search_index`` and then queries the
file opened as `newsroom search` opens it.

Prints the dataset, the build (wall, peak RSS, file size before and after, the index
tables' row counts, documents, distinct terms), and p50/p95/max latency of
``search()`` with its rows fetched (limit 20) by kind of query (common, middling and
rare headline words, capitalised names; 1-3 words each; filters), timed until
``--search-budget`` seconds are spent, and of the raw ``search_articles('...')``
macro; whether the goal (p50 and p95 under 100 ms) is met; and where the slowest
common-word search spends its time: each statement it runs, and EXPLAIN ANALYZE of
the slowest one and of the macro (slowest operators; their times are summed over
threads).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from multiprocessing import get_context
from pathlib import Path

import duckdb

from ingestion._derive.entities import SCHEMA_SQL as ENTITIES_SCHEMA_SQL
from ingestion._derive.places import SCHEMA_SQL as PLACES_SCHEMA_SQL
from ingestion._derive.threads import SCHEMA_SQL as THREADS_SCHEMA_SQL
from ingestion._derive.transform import run_dbt
from ingestion._extensions import forbid_downloads
from ingestion._log.backfill import backfill
from ingestion._publish.search import SearchFilters, build_search_index, fold, search
from ingestion._publish.snapshot import STORAGE_VERSION, copy_mart
from ingestion._publish.sql import open_published

SHARED = Path(__file__).resolve().parents[2] / "shared"
THREADS_DATA = SHARED / "data" / "threads"
#: What search reads: the two article marts, `sources` (--source) and the entity and
#: thread marts (aliases, --entity, --thread), with everything upstream of them.
MARTS = (
    "articles",
    "article_versions",
    "sources",
    "entities",
    "entity_mentions",
    "story_threads",
    "thread_articles",
)
GOAL_MS = 100
#: The kinds of query without a filter, by where their words come from.
PLAIN = ("common", "middling", "rare", "names")
FILTERED = ("--since (last 10%)", "--source", "--current-only", '"phrase"')
LIMIT = 20
#: Query words are read off headlines as written, so a capital inside a headline marks a name.
_WORD = re.compile(r"[^\W\d_]{3,}")


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def make_archives(workdir: Path, args: argparse.Namespace) -> tuple[list[tuple[str, Path]], Counter[str]]:
    """One archive per source, sorted by published_at, revised headlines after all first versions."""
    rows = read_rows(THREADS_DATA / "uci_dev" / "articles.jsonl")
    bodies = [
        row["body"] for row in read_rows(THREADS_DATA / "giveme5w1h" / "articles.jsonl") if row.get("body")
    ]
    rng = random.Random(args.seed)
    firsts: dict[str, list[dict]] = {}
    revisions: dict[str, list[dict]] = {}
    counts: Counter[str] = Counter()
    for copy in range(args.copies):
        for row in rows:
            row = dict(row)
            if copy:
                when = datetime.fromisoformat(row["published_at"].replace("Z", "+00:00"))
                row["published_at"] = (when + timedelta(days=11 * copy)).isoformat()
                row["guid"] = f"{row['guid']}~{copy}"
                row["url"] = None
            if rng.random() < args.body_share:
                row["body"] = bodies[counts["with body"] % len(bodies)]
                counts["with body"] += 1
            source = f"bench{zlib.crc32(str(row.get('source')).encode()) % args.sources}"
            firsts.setdefault(source, []).append(row)
            counts["articles"] += 1
            if rng.random() < args.revised_share:
                # A wire's rewrite: the headline gains a tag and loses its trailing ellipsis.
                title = row["title"].removesuffix("...").strip()
                revisions.setdefault(source, []).append({**row, "title": f"UPDATE 1-{title}"})
                counts["revised"] += 1
    archives = []
    for source, lines in sorted(firsts.items()):
        lines.sort(key=lambda r: (r.get("published_at") or "", r.get("guid") or ""))
        path = workdir / f"{source}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in lines + revisions.get(source, [])))
        archives.append((source, path))
    return archives, counts


def build_marts(db_path: Path) -> None:
    """dbt over the log, for search's marts only; enrichment tables left empty."""
    with duckdb.connect(str(db_path)) as con:
        con.execute(ENTITIES_SCHEMA_SQL)
        con.execute(THREADS_SCHEMA_SQL)
        con.execute(PLACES_SCHEMA_SQL)
    for command, extra in (
        ("seed", ()),
        ("run", ("--full-refresh", "--select", " ".join(f"+{mart}" for mart in MARTS))),
    ):
        report = run_dbt(command, db_path, *extra)
        assert report.success, report.failures
        print(f"  {report.summary()}")


def copy_marts(db_path: Path, snapshot: Path) -> None:
    """The marts into a new file as publish writes them: ``main.<mart>``, ``marts.<mart>`` views."""
    with duckdb.connect(str(snapshot), config={"storage_compatibility_version": STORAGE_VERSION}) as out:
        forbid_downloads(out)
        out.execute("SET TimeZone = 'UTC'")
        out.execute(f"ATTACH '{db_path.resolve()}' AS work (READ_ONLY)")
        out.execute("CREATE SCHEMA marts")
        for mart in MARTS:
            copy_mart(out, mart)
        out.execute("DETACH work")
        out.execute("CHECKPOINT")


def used_bytes(con: duckdb.DuckDBPyConnection) -> int:
    (block_size, used_blocks), *_ = con.execute(
        "SELECT block_size, used_blocks FROM pragma_database_size()"
    ).fetchall()
    return block_size * used_blocks


def peak_rss_mb() -> float:
    """This process's peak RSS. On Linux from VmHWM: getrusage's ru_maxrss keeps the
    peak of the process that spawned this one (it survives exec)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE).group(1)) / 1024


def measure_build(snapshot: Path) -> None:
    """Runs in a process of its own, so its peak RSS is the build's."""
    baseline = peak_rss_mb()
    with duckdb.connect(str(snapshot)) as con:
        forbid_downloads(con)
        before = snapshot.stat().st_size, used_bytes(con)
        started = time.perf_counter()
        con.execute("SET enable_progress_bar = false")
        build_search_index(con)
        con.execute("CHECKPOINT")
        wall = time.perf_counter() - started
        after = snapshot.stat().st_size, used_bytes(con)
        peak = peak_rss_mb()
        documents = con.execute("SELECT count(*) FROM main.search_documents").fetchall()[0][0]
        terms = con.execute("SELECT count(*) FROM main.search_terms").fetchall()[0][0]
        tables = con.execute(
            "SELECT table_name, estimated_size FROM duckdb_tables() "
            "WHERE starts_with(table_name, 'search_') ORDER BY table_name"
        ).fetchall()
    print(
        f"== build_search_index: {wall:.1f} s wall (incl. CHECKPOINT), peak RSS {peak:,.0f} MB "
        f"(process before the build: {baseline:,.0f} MB)"
    )
    print(f"  documents (versions with text): {documents:,}; distinct terms: {terms:,}")
    print(
        f"  file: {before[0] / 2**20:,.0f} MB -> {after[0] / 2**20:,.0f} MB; "
        f"used blocks: {before[1] / 2**20:,.0f} MB -> {after[1] / 2**20:,.0f} MB "
        f"(the index's tables: +{(after[1] - before[1]) / 2**20:,.0f} MB)"
    )
    print(
        "  rows (duckdb_tables().estimated_size): " + ", ".join(f"{name} {rows:,}" for name, rows in tables)
    )


def word_pools(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Headline words by how many headlines hold them, and names (capitalised inside a headline)."""
    stopwords = {row[0] for row in con.execute("SELECT word FROM main.search_stopwords").fetchall()}
    titles = [
        row[0] for row in con.execute("SELECT title FROM main.articles WHERE title IS NOT NULL").fetchall()
    ]
    frequency: Counter[str] = Counter()
    capitalised: Counter[str] = Counter()
    for title in titles:
        words = _WORD.findall(title)
        frequency.update({fold(word) for word in words} - stopwords)
        capitalised.update(word for word in words[1:] if word[0].isupper() and not word.isupper())
    ranked = [word for word, _ in frequency.most_common()]
    names = [word for word, n in capitalised.most_common() if n >= 50 and fold(word) not in stopwords]
    return {
        "common": ranked[:200],
        "middling": ranked[200 : len(ranked) // 4],
        "rare": [word for word in ranked if frequency[word] <= frequency[ranked[-1]] + 15],
        "names": names[:500],
    }


def plan_queries(
    con: duckdb.DuckDBPyConnection, count: int, seed: int
) -> list[tuple[str, str, SearchFilters]]:
    """(kind, query, filters): ``count`` plain queries of 1-3 words, then five per filter."""
    rng = random.Random(seed)
    pools = word_pools(con)
    kinds = list(PLAIN)
    queries = []
    for n in range(count):
        kind = kinds[n % len(kinds)]
        queries.append((kind, " ".join(rng.sample(pools[kind], rng.randint(1, 3))), SearchFilters()))
    first, last = con.execute("SELECT min(published_at), max(published_at) FROM main.articles").fetchall()[0]
    since = first + (last - first) * 0.9
    source = con.execute("SELECT min(source_id) FROM main.sources").fetchall()[0][0]
    titles = [
        row[0] for row in con.execute("SELECT title FROM main.articles USING SAMPLE 2000 ROWS").fetchall()
    ]
    for _ in range(5):
        words = " ".join(rng.sample(pools["middling"], rng.randint(1, 2)))
        queries.append(("--since (last 10%)", words, SearchFilters(since=since)))
        queries.append(("--source", words, SearchFilters(source=source)))
        queries.append(("--current-only", words, SearchFilters(current_only=True)))
        title = _WORD.findall(rng.choice([t for t in titles if len(_WORD.findall(t)) >= 3]))
        start = rng.randrange(len(title) - 1)
        queries.append(('"phrase"', f'"{title[start]} {title[start + 1]}"', SearchFilters()))
    # Mixed, so that queries past the time budget leave every kind represented.
    rng.shuffle(queries)
    return queries


def percentiles(times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"p50 {statistics.median(ms):7.1f}  p95 {p95:7.1f}  max {ms[-1]:7.1f} ms  (n={len(ms)})"


class RecordingConnection:
    """A connection that keeps every statement run through it, with its wall time."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.statements: list[tuple[str, object, float]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.con, name)

    def execute(self, query: str, parameters: object = None) -> duckdb.DuckDBPyConnection:
        started = time.perf_counter()
        result = self.con.execute(query, parameters)
        self.statements.append((query, parameters, time.perf_counter() - started))
        return result

    def sql(self, query: str, params: object = None) -> duckdb.DuckDBPyRelation:
        started = time.perf_counter()
        result = self.con.sql(query, params=params)
        self.statements.append((query, params, time.perf_counter() - started))
        return result


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def print_by_kind(by_kind: dict[str, list[float]]) -> None:
    print(f"  {'all plain queries':24} {percentiles([t for kind in PLAIN for t in by_kind.get(kind, [])])}")
    for kind in (*PLAIN, *FILTERED):
        if kind in by_kind:
            print(f"  {kind:24} {percentiles(by_kind[kind])}")


def measure_queries(snapshot: Path, count: int, seed: int, budget: float) -> None:
    """Latency inside one process that has the snapshot open, as `newsroom search` opens it."""
    con = RecordingConnection(open_published(snapshot))
    queries = plan_queries(con.con, count, seed)
    search(con, "warm up", limit=LIMIT)[0].fetchall()
    con.execute("SELECT * FROM search_articles('warm up') LIMIT 20").fetchall()

    by_kind: dict[str, list[float]] = {}
    call_times, fetch_times, full_pages = [], [], 0
    measured: list[tuple[float, str, str]] = []
    spent = 0.0
    for kind, query, filters in queries:
        if spent > budget:
            break
        started = time.perf_counter()
        relation, _ = search(con, query, filters, limit=LIMIT)
        called = time.perf_counter()
        rows = relation.fetchall()
        done = time.perf_counter()
        spent += done - started
        by_kind.setdefault(kind, []).append(done - started)
        measured.append((done - started, kind, query))
        call_times.append(called - started)
        fetch_times.append(done - called)
        full_pages += len(rows) == LIMIT
    plain = [t for kind in PLAIN for t in by_kind.get(kind, [])]
    left_out = len(queries) - len(call_times)
    skipped = f" ({left_out} left out, past the {budget:.0f} s budget)" if left_out else ""
    print(
        f"== search() + fetch (limit {LIMIT}): {len(call_times)} queries{skipped}, "
        f"{full_pages} with a full page"
    )
    print_by_kind(by_kind)
    print(f"  {'of which search() call':24} {percentiles(call_times)}")
    print(f"  {'of which fetching':24} {percentiles(fetch_times)}")

    macro_times = [
        timed(
            lambda q=query: con.execute(
                f"SELECT * FROM search_articles('{fold(q)}') LIMIT {LIMIT}"
            ).fetchall()
        )
        for kind, query, _ in queries
        if kind in PLAIN
    ]
    print(f"== search_articles('...') LIMIT {LIMIT}")
    print(f"  {'all plain queries':24} {percentiles(macro_times)}")

    ms = sorted(plain)
    if statistics.median(ms) * 1000 > GOAL_MS or ms[round(0.95 * (len(ms) - 1))] * 1000 > GOAL_MS:
        print(f"== goal ({GOAL_MS} ms) missed")
    _, slowest = max((seconds, query) for seconds, kind, query in measured if kind == "common")
    profile(con, slowest)
    con.close()


def profile(con: RecordingConnection, query: str) -> None:
    """The statements one search runs, each with its time, and where the slowest spends it."""
    con.statements.clear()
    started = time.perf_counter()
    search(con, query, limit=LIMIT)[0].fetchall()
    total = time.perf_counter() - started
    print(f"== where search({query!r}) spends {total * 1000:.0f} ms, statement by statement")
    for sql, _, seconds in con.statements:
        print(f"  {seconds * 1000:8.1f} ms  {' '.join(sql.split())[:100]}")
    sql, params, _ = max(con.statements, key=lambda statement: statement[2])
    explain(con.con, "the slowest", sql, params)
    macro = f"SELECT * FROM search_articles('{fold(query)}') LIMIT {LIMIT}"
    explain(con.con, f"search_articles('{fold(query)}')", macro, None)


def explain(con: duckdb.DuckDBPyConnection, label: str, sql: str, params: object) -> None:
    """EXPLAIN ANALYZE, summed up: the total and the operators that took longest."""
    plan = json.loads(con.execute("EXPLAIN (ANALYZE, FORMAT json) " + sql, params).fetchall()[0][1])
    operators = []

    def walk(node: dict) -> None:
        info = json.dumps(node.get("extra_info") or {})
        if node.get("operator_name"):  # the root is the query itself
            operators.append(
                (
                    node.get("operator_timing", 0),
                    node.get("operator_name"),
                    node.get("operator_cardinality"),
                    info,
                )
            )
        for child in node.get("children", []):
            walk(child)

    walk(plan)
    print(f"  {label}: {plan['latency'] * 1000:.0f} ms; slowest operators:")
    for seconds, name, rows, info in sorted(operators, key=lambda o: -o[0])[:6]:
        print(f"    {seconds * 1000:8.1f} ms  {name:14} {rows or 0:>10,} rows  {info[:110]}")


def measure(snapshot: Path, count: int, seed: int, budget: float) -> None:
    sys.stdout.reconfigure(line_buffering=True)
    measure_build(snapshot)
    measure_queries(snapshot, count, seed, budget)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--copies", type=int, default=15, help="times uci_dev is cycled (28,471 articles each)"
    )
    parser.add_argument("--body-share", type=float, default=0.10, help="share of articles with a body")
    parser.add_argument("--revised-share", type=float, default=0.05, help="share with a second version")
    parser.add_argument("--sources", type=int, default=4, help="sources the outlets are split over")
    parser.add_argument("--queries", type=int, default=240, help="plain queries (filters come on top)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--search-budget",
        type=float,
        default=900,
        metavar="SECONDS",
        help="stop timing whole search() calls after this long (the statement without snippets runs for all)",
    )
    parser.add_argument(
        "--keep", metavar="DIR", type=Path, help="work in DIR and keep it (default: a temporary directory)"
    )
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    if not THREADS_DATA.exists():
        sys.exit(f"{THREADS_DATA} not found: the sample sets live beside the repository")
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        db_path, snapshot = workdir / "newsroom.duckdb", workdir / "snapshot.duckdb"
        for stale in (db_path, snapshot):
            stale.unlink(missing_ok=True)

        started = time.perf_counter()
        archives, counts = make_archives(workdir, args)
        print(
            f"== archive: {counts['articles']:,} articles over {len(archives)} sources; "
            f"{counts['with body']:,} with a body ({args.body_share:.0%}), "
            f"{counts['revised']:,} revised ({args.revised_share:.0%}); {time.perf_counter() - started:.1f} s"
        )
        started = time.perf_counter()
        events = 0
        for source, path in archives:
            report = backfill(path, source, db_path)
            events += report.events_appended
        print(f"== backfill: {events:,} events in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        build_marts(db_path)
        copy_marts(db_path, snapshot)
        with duckdb.connect(str(snapshot), read_only=True) as con:
            sizes = {
                mart: con.execute(f"SELECT count(*) FROM main.{mart}").fetchall()[0][0] for mart in MARTS
            }
        print(
            f"== marts built and copied in {time.perf_counter() - started:.1f} s: "
            + ", ".join(f"{mart} {rows:,}" for mart, rows in sizes.items())
        )

        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as fresh:
            fresh.submit(measure, snapshot, args.queries, args.seed, args.search_budget).result()
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
