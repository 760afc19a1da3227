"""dbt cost on a large log: full refresh vs an incremental run after +1% events.

    uv run python benchmarks/transform.py [--articles 300000] [--fetches 400000]

Builds a synthetic event log with SQL in a temporary DuckDB file (300k articles,
0-2 revisions each, over 60 days across 200 sources, plus fetch events: about
1M events; the hash chain is left empty, nothing here verifies it), with the
enrichers' output made up to match: two or three entity mentions per headline
drawn from 40,000 names with a long tail (some by surname alone), and a story
thread per five articles. Then prints the wall time of `dbt run --full-refresh`,
of an incremental `dbt run` after appending 1% more events (new articles,
revisions of old ones, fetches), their ratio, the time dbt spent inside the
models (the slowest listed), the history tests over the changed articles and
over all, and peak memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import duckdb

from ingestion._derive.entities import SCHEMA_SQL as ENTITIES_SCHEMA_SQL
from ingestion._derive.places import refresh_places
from ingestion._derive.threads import SCHEMA_SQL as THREADS_SCHEMA_SQL
from ingestion._derive.transform import DBT_PROJECT, run_dbt
from ingestion._log.store import SCHEMA_SQL

DAYS = 60
SOURCES = 200

# Article payloads as ingest writes them (the fields staging reads).
PAYLOAD = """json_object(
    'identity', 'urn:bench:' || a, 'guid', 'urn:bench:' || a,
    'url', 'https://' || source_id || '.example/' || a,
    'title', 'Headline number ' || a || ' version ' || v,
    'summary', 'Summary of story ' || a || repeat(' with more words', 6),
    'body', repeat('Body text of story ' || a || ' as of version ' || v || '. ', 12),
    'byline', 'Reporter ' || (a % 50), 'language', 'en',
    'published_at', strftime(published_at, '%Y-%m-%dT%H:%M:%S'),
    'raw', json_object('body_sha256', md5(a::VARCHAR)))"""

FETCH_PAYLOAD = """json_object(
    'url', 'https://' || source_id || '.example/rss', 'status', 200, 'elapsed_ms', 40 + f % 400,
    'items_seen', 30, 'new', 1, 'revised', 0,
    'error_class', CASE WHEN failed THEN 'Timeout' END,
    'error_message', CASE WHEN failed THEN 'no answer in time' END)"""

INSERT = """
INSERT INTO raw.events
SELECT (SELECT coalesce(max(event_seq), 0) FROM raw.events)
           + row_number() OVER (ORDER BY event_at, stream_id, stream_version),
       md5(stream_id || '#' || stream_version), event_type, stream_id, stream_version,
       source_id, event_at, event_at, 'bench', md5(payload::VARCHAR), payload, md5(payload::VARCHAR), '', ''
FROM ({events})
"""


def article_events(first: int, count: int, start_day: int, days: int) -> str:
    return f"""
    SELECT 'a' || a AS stream_id, v::INTEGER AS stream_version, source_id,
           CASE WHEN v = 1 THEN 'article.published' ELSE 'article.revised' END AS event_type,
           published_at + INTERVAL ((v - 1) * 3) HOUR AS event_at, {PAYLOAD} AS payload
    FROM (SELECT a, 'src' || (a % {SOURCES}) AS source_id,
                 TIMESTAMP '2026-01-01' + INTERVAL ({start_day}) DAY
                     + INTERVAL ((hash(a) % ({days} * 86400))::BIGINT) SECOND AS published_at,
                 (hash(a * 7) % 3)::INTEGER AS revisions
          FROM range({first}, {first + count}) AS t(a)),
         range(1, revisions + 2) AS r(v)
    """


def revisions_of_existing(every: int, at_day: int) -> str:
    return f"""
    SELECT stream_id, (max(stream_version) + 1)::INTEGER AS stream_version,
           any_value(source_id) AS source_id, 'article.revised' AS event_type,
           TIMESTAMP '2026-01-01' + INTERVAL ({at_day}) DAY
               + INTERVAL (any_value(a) % 86400) SECOND AS event_at,
           json_object('identity', 'urn:bench:' || any_value(a), 'guid', 'urn:bench:' || any_value(a),
                       'title', 'Revised headline ' || any_value(a), 'summary', 'Updated.',
                       'body', 'Updated body.', 'language', 'en') AS payload
    FROM (SELECT stream_id, stream_version, source_id, substr(stream_id, 2)::BIGINT AS a
          FROM raw.events
          WHERE starts_with(stream_id, 'a') AND substr(stream_id, 2)::BIGINT % {every} = 0)
    GROUP BY stream_id
    """


def fetch_events(count: int, start_day: int, days: int) -> str:
    return f"""
    SELECT 'feed:' || source_id AS stream_id,
           (coalesce((SELECT max(stream_version) FROM raw.events AS e
                      WHERE e.stream_id = 'feed:' || source_id), 0)
            + row_number() OVER (PARTITION BY source_id ORDER BY f))::INTEGER AS stream_version,
           source_id, CASE WHEN failed THEN 'feed.failed' ELSE 'feed.fetched' END AS event_type,
           TIMESTAMP '2026-01-01' + INTERVAL ({start_day}) DAY
               + INTERVAL ((f * {days} * 86400) // {count}) SECOND AS event_at,
           {FETCH_PAYLOAD} AS payload
    FROM (SELECT f, 'src' || (f % {SOURCES}) AS source_id, f % 50 = 0 AS failed
          FROM range({count}) AS t(f))
    """


# What the enrichers would have written for the article events after `after`: the
# headline's text, its mentions (the names' popularity falls off like a power law,
# so a few are everywhere and most are rare; a person is sometimes named by surname
# alone after the full name) and a thread decision per version.
ENRICH = """
INSERT INTO enrich.field_texts
SELECT event_seq, stream_id, stream_version, 'title', md5(payload ->> '$.title')
FROM raw.events WHERE starts_with(stream_id, 'a') AND event_seq > {after};

INSERT INTO enrich.texts
SELECT DISTINCT text_hash, 'bench', 'en', 'ok', 8, 3, NULL::VARCHAR
FROM enrich.field_texts WHERE event_seq > {after}
  AND text_hash NOT IN (SELECT text_hash FROM enrich.texts);

INSERT INTO enrich.mentions
SELECT text_hash, m::INTEGER, m * 20, m * 20 + length(surface), surface, label
FROM (
    SELECT text_hash, m, name_rank,
           CASE name_rank % 3 WHEN 0 THEN 'PERSON' WHEN 1 THEN 'ORG' ELSE 'GPE' END AS label,
           CASE name_rank % 3
               WHEN 0 THEN CASE WHEN m = 2 THEN 'Surname' || name_rank
                                ELSE 'Given' || (name_rank % 97) || ' Surname' || name_rank END
               WHEN 1 THEN 'Agency' || name_rank || ' Group'
               ELSE 'Placeton' || name_rank END AS surface
    FROM (
        SELECT text_hash, m,
               -- ranks 0..39,999, the low ones far more often
               (pow((hash(text_hash || m) % 1000000) / 1000000.0, 3) * 40000)::BIGINT
                   // 3 * 3 + m % 3 AS name_rank
        FROM (SELECT DISTINCT t.text_hash FROM enrich.texts AS t
              ANTI JOIN enrich.mentions AS x ON x.text_hash = t.text_hash),
             range(3) AS r(m)
    )
);

INSERT INTO enrich.thread_assignments
SELECT event_seq, stream_id, stream_version,
       CASE WHEN stream_version > 1 THEN 'stay'
            WHEN substr(stream_id, 2)::BIGINT % 5 = 0 THEN 'open' ELSE 'join' END,
       't' || (substr(stream_id, 2)::BIGINT // 5), 0.5, NULL, recorded_at, 'bench', NULL
FROM raw.events WHERE starts_with(stream_id, 'a') AND event_seq > {after};
"""


def timed_run(db_path: Path, *extra: str) -> tuple[float, float, list[tuple[float, str]]]:
    """Wall seconds of `dbt run`, seconds spent executing models (from run_results),
    and the slowest models."""
    started = time.perf_counter()
    report = run_dbt("run", db_path, *extra)
    wall = time.perf_counter() - started
    assert report.success, report.failures
    results = json.loads((DBT_PROJECT / "target" / "run_results.json").read_text())["results"]
    slowest = sorted(((r["execution_time"], r["unique_id"].split(".")[-1]) for r in results), reverse=True)
    return wall, sum(r["execution_time"] for r in results), slowest[:6]


def slowest_line(slowest: list[tuple[float, str]]) -> str:
    return "  slowest: " + ", ".join(f"{name} {seconds:.2f}" for seconds, name in slowest)


def timed_history_tests(db_path: Path, checked_since: int) -> float:
    """Wall seconds of the tests that read whole histories (version order, status
    against the last version), checking the articles changed after ``checked_since``."""
    started = time.perf_counter()
    report = run_dbt(
        "test",
        db_path,
        "--select",
        "test_name:history_in_order articles_status_follows_last_version",
        checked_since=checked_since,
    )
    assert report.success, report.failures
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=300_000)
    parser.add_argument("--fetches", type=int, default=400_000)
    parser.add_argument(
        "--keep",
        metavar="DIR",
        type=Path,
        help="build the database in DIR and keep it (default: a temporary directory)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        db_path = workdir / "newsroom.duckdb"
        db_path.unlink(missing_ok=True)
        started = time.perf_counter()
        with duckdb.connect(str(db_path)) as con:
            con.execute(SCHEMA_SQL)
            con.execute(ENTITIES_SCHEMA_SQL)
            con.execute(THREADS_SCHEMA_SQL)
            con.execute(INSERT.format(events=article_events(0, args.articles, 0, DAYS)))
            con.execute(INSERT.format(events=fetch_events(args.fetches, 0, DAYS)))
            con.execute(ENRICH.format(after=0))
            refresh_places(con)
            total = con.execute("SELECT count(*) FROM raw.events").fetchall()[0][0]
        print(
            f"log: {total:,} events ({args.articles:,} articles, {args.fetches:,} fetches), "
            f"built in {time.perf_counter() - started:.1f} s"
        )

        run_dbt("parse", db_path)  # both timings below start from a parsed project
        assert run_dbt("seed", db_path).success  # the seeds models join (demonyms, overrides)
        full_wall, full_models, slowest = timed_run(db_path, "--full-refresh")
        print(f"full refresh:        {full_wall:7.2f} s wall, {full_models:7.2f} s in models")
        print(slowest_line(slowest))

        with duckdb.connect(str(db_path)) as con:
            # ~1% of the log: new articles with their revisions (~0.65%), revisions of
            # old articles (~0.2%), fetches (~0.1%).
            new_articles = total // 300
            con.execute(INSERT.format(events=article_events(args.articles, new_articles, DAYS, 1)))
            con.execute(INSERT.format(events=revisions_of_existing(every=150, at_day=DAYS)))
            con.execute(INSERT.format(events=fetch_events(total // 1000, DAYS, 1)))
            con.execute(ENRICH.format(after=total))
            added = con.execute("SELECT count(*) FROM raw.events").fetchall()[0][0] - total
        print(f"appended:            {added:,} events ({added / total:.1%})")

        inc_wall, inc_models, slowest = timed_run(db_path)
        print(f"incremental run:     {inc_wall:7.2f} s wall, {inc_models:7.2f} s in models")
        print(slowest_line(slowest))
        print(
            f"ratio incr/full:     {inc_wall / full_wall:7.1%} wall, "
            f"{inc_models / full_models:7.1%} in models  (goal < 10%)"
        )
        last_seq_before = total  # event_seq runs 1..total before the append
        changed = timed_history_tests(db_path, last_seq_before)
        everything = timed_history_tests(db_path, 0)
        print(f"history tests:       {changed:7.2f} s for the changed articles, {everything:.2f} s for all")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (RSS):   {peak:7,.0f} MB")


if __name__ == "__main__":
    main()
