"""The ``newsroom`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from ingestion._publish.sql import QueryLimits, error_line
from ingestion.exceptions import (
    ArchiveError,
    ConfigError,
    NewsroomError,
    StepFailed,
    StoreError,
    ValidationFailed,
)

#: The limits of `newsroom sql` unless its options say otherwise.
QUERY_LIMITS = QueryLimits()


def _db_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--db",
        metavar="PATH",
        help="DuckDB file of the event log (default: $NEWSROOM_DB or data/newsroom.duckdb)",
    )
    return parent


def _positive(kind: type[int] | type[float], maximum: float):
    """An argparse type: a number of ``kind`` above zero and at most ``maximum``."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not 0 < value <= maximum:  # also refuses nan and inf
            raise argparse.ArgumentTypeError(f"must be above zero and at most {maximum:,g}: {text!r}")
        return value

    return parse


_SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def _size(text: str) -> int:
    """An argparse type: a size in bytes from e.g. ``500MB``, ``2GB`` or ``1000000``."""
    number = text.strip().upper().rstrip("BKMGT")
    unit = text.strip().upper()[len(number) :]
    try:
        value = float(number) * _SIZE_UNITS[unit]
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500MB, 2GB)") from None
    if not 1 <= value <= _MAX_SIZE:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must be from 1 byte to 1PB: {text!r}")
    return int(value)


_MAX_SIZE = 10**15


def _utc_time(text: str) -> datetime:
    """An argparse type: an ISO 8601 date or time, read as UTC unless it gives its offset."""
    from datetime import UTC

    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a date or time: {text!r} (e.g. 2026-03-01 or 2026-03-01T06:00Z)"
        ) from None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00 is before the first day Python knows
        raise argparse.ArgumentTypeError(f"out of the range of dates: {text!r}") from None


def _reading_parent() -> argparse.ArgumentParser:
    """Options of the commands that read the published snapshot."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--format", choices=["table", "csv", "json", "parquet"], default="table")
    parent.add_argument(
        "--output", type=Path, metavar="FILE", help="write to FILE instead of stdout (csv, json, parquet)"
    )
    parent.add_argument("--force", action="store_true", help="replace FILE if it exists")
    parent.add_argument(
        "--published",
        "--snapshot",
        dest="published",
        type=Path,
        metavar="PATH",
        help="read this snapshot file (e.g. a copy of a published one), not the one published from --db",
    )
    parent.add_argument(
        "--max-rows",
        type=_positive(int, 10**12),
        metavar="N",
        help="table: rows shown (default 100); csv, json, parquet: stop with an error after N rows "
        f"(default {QUERY_LIMITS.max_rows:,})",
    )
    parent.add_argument(
        "--max-bytes",
        type=_size,
        metavar="SIZE",
        default=QUERY_LIMITS.max_bytes,
        help="csv, json, parquet: stop with an error after SIZE of output, e.g. 200MB "
        f"(default {QUERY_LIMITS.max_bytes / 1e9:g}GB; parquet counts uncompressed data)",
    )
    parent.add_argument(
        "--timeout",
        type=_positive(float, 7 * 86_400),
        metavar="SECONDS",
        default=QUERY_LIMITS.timeout,
        help=f"stop the query after SECONDS (default {QUERY_LIMITS.timeout:g})",
    )
    parent.add_argument(
        "--memory-limit",
        type=_size,
        metavar="SIZE",
        default=QUERY_LIMITS.memory_bytes,
        help=f"memory the query may use, e.g. 4GB (default {QUERY_LIMITS.memory_bytes / 1e9:g}GB)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsroom",
        description="Feeds and news wires into an immutable DuckDB event log.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    db = _db_parent()

    ingest = commands.add_parser(
        "ingest",
        parents=[db],
        help="fetch every source once and append what changed",
        description="Fetch every source in the sources file once and append new, revised and "
        "withdrawn articles as events. Exits 0 when the run completed, even if some feeds "
        "failed (their failures are recorded as feed.failed events).",
    )
    ingest.add_argument(
        "--config", default="feeds.yml", metavar="FILE", help="sources file (default: feeds.yml)"
    )
    ingest.add_argument(
        "--due-only",
        action="store_true",
        help="skip sources polled more recently than their poll_interval_minutes",
    )
    ingest.set_defaults(func=_cmd_ingest)

    backfill = commands.add_parser(
        "backfill",
        parents=[db],
        help="append an archive file (JSON Lines) as articles",
        description="Append one article per line of a JSON Lines archive (fields: guid, url, "
        "title, summary, body, source, published_at, language; guid or url required). "
        "Loading the same archive again adds nothing; a load that was interrupted resumes "
        "after the last line it recorded.",
    )
    backfill.add_argument("file", type=Path, metavar="FILE.jsonl")
    backfill.add_argument(
        "--source", required=True, metavar="ID", help="source id the articles are recorded under"
    )
    backfill.set_defaults(func=_cmd_backfill)

    verify = commands.add_parser(
        "verify",
        parents=[db],
        help="check the hash chain, sequences and uniqueness",
        description="Recompute every event's hash and check sequences and versions. Exits "
        "non-zero and names the first bad event when anything was altered.",
    )
    verify.set_defaults(func=_cmd_verify)

    copy_log = commands.add_parser(
        "copy-log",
        parents=[db],
        help="copy the event log and its raw bodies into another database (e.g. a DuckLake)",
        description="Append to TARGET the events of the log (--db) it lacks, unchanged, and "
        "copy the raw bodies kept beside it. TARGET is a DuckDB file or a .lake description "
        "(see the README's DuckLake section); it must be new or an earlier copy. Run it again "
        "to bring a copy up to date; the derived tables are rebuilt there by `newsroom transform`.",
    )
    copy_log.add_argument("target", type=Path, metavar="TARGET")
    copy_log.set_defaults(func=_cmd_copy_log)

    transform = commands.add_parser(
        "transform",
        parents=[db],
        help="build the dbt models and run their tests",
        description="Run `dbt build` on the dbt project: staging views, intermediate and mart "
        "tables (incremental where history is large) and all dbt tests. Exits non-zero when a "
        "model or test fails.",
    )
    transform.add_argument(
        "--full-refresh", action="store_true", help="rebuild incremental models from all events"
    )
    transform.add_argument(
        "--select",
        metavar="SELECTOR",
        help="dbt node selection, e.g. entities; the models it depends on are built too",
    )
    transform.add_argument(
        "--docs", action="store_true", help="also generate dbt docs (dbt_project/target/index.html)"
    )
    transform.set_defaults(func=_cmd_transform)

    validate = commands.add_parser(
        "validate",
        parents=[db],
        help="run the Great Expectations checkpoints",
        description="Validate the event log (raw), the staging views and the marts with the "
        "suites declared in ingestion/_quality/expectations.py. Row checks cover events newer than the "
        "published snapshot unless --all-events. Prints pass/fail per suite, builds Data Docs "
        "into data/docs/gx/, exits non-zero when a critical expectation fails.",
    )
    validate.add_argument("--stage", choices=["raw", "staging", "marts", "all"], default="all")
    validate.add_argument(
        "--all-events", action="store_true", help="check every event, not only those since the last publish"
    )
    validate.set_defaults(func=_cmd_validate)

    gx_sync = commands.add_parser(
        "gx-sync",
        help="regenerate gx/ from the suites declared in ingestion/_quality/expectations.py",
        description="Write the Great Expectations file context in gx/ (suites, validation "
        "definitions, checkpoints) so that it matches ingestion/_quality/expectations.py, touching only "
        "what differs; commit the result. `validate` and `publish` never write gx/ and refuse to "
        "run while it is out of date.",
    )
    gx_sync.add_argument(
        "--check", action="store_true", help="only compare: write nothing, exit 1 naming what differs"
    )
    gx_sync.set_defaults(func=_cmd_gx_sync)

    publish = commands.add_parser(
        "publish",
        parents=[db],
        help="validate, then publish a read-only snapshot of the marts",
        description="Validate everything new since the last snapshot; if it passes, write "
        "data/published/newsroom.duckdb (replaced atomically) and Parquet exports of every mart "
        "in data/published/parquet/. If validation fails nothing is published and the command "
        "exits non-zero naming the failed expectations. The new snapshot is the previous one "
        "with the rows that changed taken out and put in, unless --full is given.",
    )
    publish.add_argument(
        "--full", action="store_true", help="build the snapshot anew instead of updating the previous one"
    )
    publish.set_defaults(func=_cmd_publish)

    reading = _reading_parent()
    sql = commands.add_parser(
        "sql",
        parents=[db, reading],
        help="query the published snapshot (read-only)",
        description="Run a read-only query (SELECT, EXPLAIN) against the published snapshot "
        "(data/published/newsroom.duckdb beside the --db database, or the file --published names). "
        "Marts are tables of their own name (FROM articles); search_articles('words') searches "
        "every version. Statements that write, attach or copy are refused. Every query has a time "
        "limit, a memory limit and, for csv, json and parquet, a row and a byte limit; reaching one "
        "stops the query with exit status 2; a query the database cannot run exits 1 with its "
        "error in one line. --output writes a new file and replaces an existing "
        "one only with --force, never a database, a stored body or anything in the data directory "
        "(the folder of the --db database).",
    )
    sql.add_argument("query", help='e.g. "SELECT title FROM articles LIMIT 5"')
    sql.set_defaults(func=_cmd_sql)

    search = commands.add_parser(
        "search",
        parents=[db, reading],
        help="full-text search over every version of every article",
        description="Rank articles by BM25 over the title, summary and body of every version, "
        "current and earlier, withdrawn ones included (status says so). Words count towards the "
        'rank; a "quoted phrase" must also appear as written. A word or phrase that names a known '
        "entity also searches the entity's other names (Zelensky finds Selenskyj once the two "
        "are resolved as one person); --no-aliases turns that off. One row per article: its best "
        "version, how many versions matched, and a snippet with the matches marked **like this**.",
    )
    search.add_argument("query", help='words and "quoted phrases", e.g. \'Zelensky "Geneva talks"\'')
    search.add_argument(
        "--since", type=_utc_time, metavar="TIME", help="published at or after TIME (UTC), e.g. 2026-03-01"
    )
    search.add_argument("--until", type=_utc_time, metavar="TIME", help="published before TIME (UTC)")
    search.add_argument("--source", metavar="ID", help="only this source")
    search.add_argument(
        "--entity", metavar="NAME", help="only articles that mention this entity (any of its names)"
    )
    search.add_argument("--thread", metavar="ID", help="only articles of this story thread")
    search.add_argument("--language", metavar="CODE", help="only this language (en also matches en-gb)")
    search.add_argument(
        "--current-only", action="store_true", help="only what articles say now, not earlier versions"
    )
    search.add_argument(
        "--no-aliases", action="store_true", help="search the words as given, not an entity's other names"
    )
    search.add_argument(
        "--limit",
        type=_positive(int, 10_000),
        default=20,
        metavar="N",
        help="articles to return (default 20)",
    )
    search.set_defaults(func=_cmd_search)

    serve = commands.add_parser(
        "serve",
        parents=[db],
        help="browse the published snapshot in a local, read-only web explorer",
        description="Serve the explorer of the published snapshot: every mart to browse and "
        "facet, search, a page per story thread, per article (every version, with what changed "
        "word by word) and per entity, and Atom feeds of revisions and withdrawals. Read-only; "
        "bound to 127.0.0.1 unless --host says otherwise. Stop it with Ctrl-C.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_positive(int, 65_535), default=8001, help="port (default 8001)")
    serve.set_defaults(func=_cmd_serve)

    demo = commands.add_parser(
        "demo",
        parents=[db],
        help="serve the bundled demo feeds on 127.0.0.1 and ingest them, round by round",
        description="Start a local HTTP server with the bundled (fictional) demo feeds, ingest "
        "them in rounds as if time passed, and show what was recorded. No internet needed.",
    )
    demo.set_defaults(func=_cmd_demo)
    return parser


def _db_path(args: argparse.Namespace) -> Path:
    from ingestion._sources.config import resolve_db_path

    return resolve_db_path(args.db)


def _cmd_ingest(args: argparse.Namespace) -> int:
    from ingestion._log.record import ingest
    from ingestion._sources.config import load_sources

    sources = load_sources(args.config)
    report = ingest(sources, _db_path(args), due_only=args.due_only)
    _print_report(report)
    return 0


def _print_report(report) -> None:
    for summary in report.sources:
        print(summary.line())
    totals = report.totals()
    print(
        f"run {report.run_id}: {len(report.sources)} sources, {totals['new']} new, "
        f"{totals['revised']} revised, {totals['withdrawn']} withdrawn, "
        f"{totals['failed']} failed; {report.events_appended} events appended"
    )


def _cmd_backfill(args: argparse.Namespace) -> int:
    from ingestion._log.backfill import backfill
    from ingestion._progress import Progress

    if not args.file.is_file():
        raise ArchiveError(f"archive {args.file} not found")
    progress = Progress(f"backfill {args.file.name}", args.file.stat().st_size)
    report = backfill(args.file, args.source, _db_path(args), on_bytes=progress.advance)
    progress.finish()
    if report.loaded_before is not None:
        print(
            f"{args.source}: {args.file.name} was loaded before ({report.loaded_before:%Y-%m-%d %H:%M} UTC, "
            "same content); nothing appended"
        )
        return 0
    if report.resumed_after_line:
        print(
            f"{args.source}: resumed an interrupted load of this archive after line "
            f"{report.resumed_after_line}"
        )
    c = report.counts
    print(
        f"{args.source}: {report.lines} lines, {c['new']} new, {c['revised']} revised, {c['withdrawn']} "
        f"withdrawn, {c['unchanged']} already present, {c['stale']} older than the article's latest "
        f"version, {c['rejected']} rejected; "
        f"{report.events_appended} events appended"
    )
    for rejection in report.rejections[:10]:
        print(f"  rejected {rejection.reason}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from ingestion._log.verify import verify

    report = verify(_db_path(args))
    for note in report.notes:
        print(f"note: {note}")
    if report.ok:
        print(
            f"OK: {report.events} events in {report.streams} streams; hash chain, sequences "
            "and versions intact"
        )
        return 0
    for problem in report.problems:
        print(f"FAIL {problem}")
    return 1


def _cmd_copy_log(args: argparse.Namespace) -> int:
    from ingestion._log.record import blob_store_for
    from ingestion._log.store import EventStore

    source = _db_path(args)
    if not source.exists():
        raise StoreError(f"no database at {source}")
    if args.target.resolve() == source.resolve():
        raise StoreError("the target is the log itself")
    with EventStore(args.target) as store:
        events = store.copy_events_from(source)
    bodies = blob_store_for(args.target).copy_missing_from(blob_store_for(source))
    print(f"copied {events:,} events and {bodies:,} raw bodies into {args.target}")
    print(f"next: newsroom transform --db {args.target}")
    return 0


def _cmd_transform(args: argparse.Namespace) -> int:
    from ingestion._derive.transform import DBT_PROJECT, check_selection, run_dbt, transform
    from ingestion._log.lake import is_lake
    from ingestion._publish.snapshot import last_published_seq

    db_path = _db_path(args)
    if not is_lake(db_path) and not db_path.exists():  # a typo would build a new, empty database
        raise StoreError(f"no event log at {db_path}; run `newsroom ingest` or `newsroom backfill` first")
    if args.select:
        check_selection(args.select)
    report = transform(
        db_path, full_refresh=args.full_refresh, select=args.select, checked_since=last_published_seq(db_path)
    )
    print(report.summary())
    if args.select and not report.counts:
        raise ConfigError(
            f"--select {args.select} matched nothing in the dbt project: name a model, e.g. story_threads"
        )
    for failure in report.failures:
        print(f"  FAIL {failure}")
    if args.docs and report.success:
        docs = run_dbt("docs generate", _db_path(args))
        print(f"{docs.summary()}: open {DBT_PROJECT / 'target' / 'index.html'}")
    return 0 if report.success else 1


def _print_validation(report) -> None:
    for line in report.lines():
        print(line)
    if report.docs_index:
        print(f"Data Docs: {report.docs_index}")


def _cmd_validate(args: argparse.Namespace) -> int:
    from ingestion._publish.snapshot import last_published_seq
    from ingestion._quality.expectations import STAGES
    from ingestion._quality.validate import validate

    db_path = _db_path(args)
    stages = STAGES if args.stage == "all" else (args.stage,)
    since = 0 if args.all_events else last_published_seq(db_path)
    report = validate(db_path, stages=stages, since=since)
    _print_validation(report)
    print(
        "validation "
        + ("passed" if report.success else "FAILED")
        + (f" (events after #{since})" if since else "")
    )
    return 0 if report.success else 1


def _cmd_gx_sync(args: argparse.Namespace) -> int:
    from ingestion._quality.validate import GX_DIR, sync_gx

    differences = sync_gx(write=not args.check)
    if not differences:
        print(f"{GX_DIR} matches the declared suites")
        return 0
    if args.check:
        print(f"{GX_DIR} is out of date (run `newsroom gx-sync`): {', '.join(differences)}")
        return 1
    for difference in differences:
        print(
            difference.replace("undeclared ", "removed ", 1)
            if difference.startswith("undeclared ")
            else f"wrote {difference}"
        )
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
    from ingestion._publish.snapshot import publish

    try:
        report = publish(_db_path(args), full=args.full)
    except ValidationFailed as failed:
        _print_validation(failed.report)
        print(f"newsroom publish: {failed}", file=sys.stderr)
        return 1
    _print_validation(report.validation)
    tables = ", ".join(f"{name} ({rows:,} rows)" for name, rows in report.tables.items())
    print(f"published {report.path} up to event #{report.last_event_seq}: {tables}")
    print(report.how())
    print(f"Parquet exports: {report.parquet_dir}")
    return 0


def _limits(args: argparse.Namespace) -> QueryLimits:
    """The limits of a reading command's query, from its options."""
    return QueryLimits(
        timeout=args.timeout,
        memory_bytes=args.memory_limit,
        max_rows=args.max_rows or QUERY_LIMITS.max_rows,
        max_bytes=args.max_bytes,
    )


def _reading(args: argparse.Namespace) -> dict:
    """Where a reading command reads and writes, and its limits, from its options."""
    from ingestion._publish.sql import protected_places, snapshot_for

    db_path = _db_path(args)
    snapshot = args.published or snapshot_for(db_path)
    limits = _limits(args)
    return {
        "path": snapshot,
        "fmt": args.format,
        "output": args.output,
        "max_rows": args.max_rows,
        "limits": limits,
        "force": args.force,
        "protected": protected_places(db_path, snapshot),
    }


def _cmd_sql(args: argparse.Namespace) -> int:
    from ingestion._publish.sql import run_sql

    run_sql(sql=args.query, **_reading(args))
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from ingestion._publish.search import SearchFilters, search
    from ingestion._publish.sql import run_query

    filters = SearchFilters(
        since=args.since,
        until=args.until,
        source=args.source,
        entity=args.entity,
        thread=args.thread,
        language=args.language,
        current_only=args.current_only,
    )

    def results(con):
        relation, added = search(con, args.query, filters, limit=args.limit, aliases=not args.no_aliases)
        if added:
            print(f"also searched, as other names of the same entity: {', '.join(added)}", file=sys.stderr)
        return relation

    run_query(relation_of=results, **_reading(args))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from ingestion._explore.serve import serve
    from ingestion._publish.snapshot import published_dir

    return serve(published_dir(_db_path(args)), host=args.host, port=args.port)


def _cmd_demo(args: argparse.Namespace) -> int:
    from ingestion._demo.run import DEMO_QUERIES, DEMO_SEARCH, run_demo
    from ingestion._publish.search import search
    from ingestion._publish.snapshot import last_published_seq, published_path
    from ingestion._publish.sql import run_query, run_sql

    db_path = _db_path(args).resolve()
    data_dir = db_path.parent
    try:
        run_demo(db_path, echo=print)
    except StepFailed as failed:
        print(f"newsroom demo: {failed}", file=sys.stderr)
        return 1
    published = published_path(db_path)
    print(f"\nWorking database (the event log and all models): {db_path}")
    print(
        f"Published, validated, read-only database: {published} (up to event #{last_published_seq(db_path)})"
    )
    print(f"Parquet exports for dashboards: {published.parent / 'parquet'}")
    print(f"Validation reports (Data Docs): {data_dir / 'docs' / 'gx' / 'index.html'}")
    for title, query in DEMO_QUERIES:
        print(f'\n-- {title}\n$ newsroom sql "{" ".join(query.split())}"')
        run_sql(published, query)
    print(
        f"\n-- Every article that ever said it, earlier headlines included\n$ newsroom search {DEMO_SEARCH}"
    )

    def found(con):
        relation, added = search(con, DEMO_SEARCH, limit=10)
        print(f"(also searched, as other names of the same person: {', '.join(added)})")
        return relation.select(
            "score, left(title, 50) AS title, versions_matched, source_id, left(snippet, 60) AS snippet"
        )

    run_query(published, found)
    where = f" --db {args.db}" if args.db else ""
    print(f"\nBrowse stories, headline diffs, entities and feeds of changes: newsroom serve{where}")
    return 0


def _is_environment_error(exc: Exception) -> bool:
    """Errors of the files and the database rather than of newsroom's code: a damaged or
    unreadable file, a full disk, a database error. Anything else is a bug and keeps its traceback."""
    duckdb = sys.modules.get("duckdb")
    return isinstance(exc, OSError) or (duckdb is not None and isinstance(exc, duckdb.Error))


def _quiet_stdout() -> None:
    """Send what is left for stdout to /dev/null: the reader of a pipe (`| head`) has gone,
    and flushing at exit would fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file descriptor (captured): nothing to flush
        pass
    finally:
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    args = build_parser().parse_args(argv)
    if args.func in (_cmd_sql, _cmd_search):  # a reader's query: in a process of its own, with hard limits
        from ingestion._publish.sql import run_bounded

        return run_bounded(lambda: _run(args), _limits(args), f"newsroom {args.command}")
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Run the command ``args`` names: its exit status, its errors as one line."""
    try:
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:
        _quiet_stdout()
        return 141  # as if killed by SIGPIPE, like other commands in a pipeline
    except NewsroomError as exc:
        print(f"newsroom {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print(f"newsroom {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not _is_environment_error(exc):
            raise
        print(f"newsroom {args.command}: error: {error_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
