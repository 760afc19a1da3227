"""Write-audit-publish: validation gates the published snapshot; readers are never disturbed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

import ingestion._quality.validate as validate_module
from ingestion._derive.transform import run_dbt, transform
from ingestion._log.backfill import backfill
from ingestion._log.store import EventStore, PendingEvent
from ingestion._publish.snapshot import last_published_seq, publish, published_dir, published_path
from ingestion._quality.validate import ValidationReport, validate
from ingestion._sources.dates import utcnow
from ingestion.exceptions import PublishError, ValidationFailed

from .conftest import copy_data_dir, run_cli


@pytest.fixture
def work_db(demo_data_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the demo's data directory (nothing published yet)."""
    return copy_data_dir(demo_data_dir, tmp_path)


def failed_expectations(report) -> set[str]:
    return {f"{o.suite}: {o.expectation}" for o in report.failures()}


def test_a_clean_run_publishes_a_snapshot_with_meta_and_parquet(work_db: Path) -> None:
    report = publish(work_db)
    assert report.validation.success
    with duckdb.connect(str(published_path(work_db)), read_only=True) as con:
        statuses = dict(con.execute("SELECT status, count(*) FROM marts.articles GROUP BY 1").fetchall())
        meta = con.execute("SELECT last_event_seq, validation_success FROM meta.snapshots").fetchall()
    assert statuses == {"live": 67, "withdrawn": 1}
    assert meta == [(report.last_event_seq, True)]
    for mart in ("articles", "article_versions", "articles_daily", "sources"):
        files = list((report.parquet_dir / mart).glob("*.parquet"))
        assert files and all(path.stat().st_size > 0 for path in files), mart
    assert [path.name for path in (report.parquet_dir / "sources").iterdir()] == ["all.parquet"]
    rows = duckdb.sql(f"FROM '{report.parquet_dir}/articles/*.parquet'").fetchall()
    assert len(rows) == 68, "the monthly files hold every article once"
    assert (work_db.parent / "docs" / "gx" / "index.html").exists()
    assert last_published_seq(work_db) == report.last_event_seq


def test_parquet_exports_switch_as_one_set(work_db: Path) -> None:
    first = publish(work_db).parquet_dir.resolve()
    second = publish(work_db).parquet_dir.resolve()
    assert first != second and first.is_dir()  # the one before stays for readers still in it
    third = publish(work_db)
    assert third.parquet_dir.is_symlink() and not first.exists() and second.is_dir()
    assert {p.name for p in third.parquet_dir.iterdir()} >= {"articles", "sources"}


def test_events_appended_after_the_build_are_validated_next_time(work_db: Path) -> None:
    # An ingest between `dbt build` and publish: its events are not in the marts, so
    # the snapshot must not claim them, or the next validation would skip them.
    with duckdb.connect(str(work_db), read_only=True) as con:
        [(built_up_to,)] = con.execute("SELECT max(event_seq) FROM marts.article_versions").fetchall()
    with EventStore(work_db) as store, store.transaction():
        store.append(
            [PendingEvent("feed.fetched", "feed:late", "late", {"status": 200})],
            recorded_at=utcnow(),
            run_id="late-ingest",
        )
    report = publish(work_db)
    assert report.last_event_seq == built_up_to
    later = validate(work_db, stages=("raw",), since=report.last_event_seq, build_docs=False)
    assert {s.suite: s.rows for s in later.suites}["raw_events"] >= 1


def _rebuild_events_without_constraints(db_path: Path, tamper: str) -> None:
    """A damaged log as it could arrive from elsewhere: no constraints, then tampered."""
    with duckdb.connect(str(db_path)) as con:
        con.execute("CREATE TABLE raw.events_copy AS SELECT * FROM raw.events")
        con.execute("DROP TABLE raw.events CASCADE")
        con.execute("ALTER TABLE raw.events_copy RENAME TO events")
        con.execute(tamper)


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (
            "INSERT INTO raw.events SELECT * REPLACE (event_seq + 1000 AS event_seq) "
            "FROM raw.events WHERE event_seq = 5",
            "raw_events: expect_column_values_to_be_between(event_id_occurrences)",
        ),
        (
            "UPDATE raw.events SET stream_version = stream_version + 1 WHERE event_seq = ("
            "SELECT max(event_seq) FROM raw.events WHERE event_type = 'article.revised')",
            "raw_events: expect_column_values_to_be_in_set(version_follows_previous)",
        ),
        # A headline edited in the log: nothing built on it may be published.
        (
            'UPDATE raw.events SET payload = json_merge_patch(payload, \'{"title": "Edited"}\') '
            "WHERE event_seq = (SELECT max(event_seq) FROM raw.events WHERE event_type = 'article.published')",
            "raw_events: expect_column_values_to_be_in_set(payload_matches_hash)",
        ),
        (
            'UPDATE raw.events SET payload = json_merge_patch(payload, \'{"title": "Edited"}\'), '
            'payload_hash = sha256(json_merge_patch(payload, \'{"title": "Edited"}\')::VARCHAR) '
            "WHERE event_seq = (SELECT max(event_seq) FROM raw.events WHERE event_type = 'article.published')",
            "raw_events: expect_column_values_to_be_in_set(event_matches_hash)",
        ),
        (
            'UPDATE raw.events SET payload = json_merge_patch(payload, \'{"title": "Edited"}\'), '
            "payload_hash = NULL, event_hash = NULL "
            "WHERE event_seq = (SELECT max(event_seq) FROM raw.events WHERE event_type = 'article.published')",
            "raw_events: expect_column_values_to_be_in_set(payload_matches_hash)",
        ),
    ],
)
def test_a_broken_log_fails_validation_by_name(work_db: Path, tamper: str, expected: str) -> None:
    _rebuild_events_without_constraints(work_db, tamper)
    report = validate(work_db, stages=("raw",))
    assert not report.success
    assert expected in failed_expectations(report)


@pytest.mark.parametrize(
    ("tamper", "failing_test"),
    [
        (
            # A live article marked withdrawn: its history says otherwise.
            "UPDATE marts.articles SET status = 'withdrawn', last_event_seq = 10**9 "
            "WHERE article_id = (SELECT min(article_id) FROM marts.articles WHERE status = 'live')",
            "articles_status_follows_last_version",
        ),
        (
            # A version lost from the middle of a history.
            "DELETE FROM marts.article_versions WHERE version_id = (SELECT min(version_id) "
            "FROM marts.article_versions WHERE version = 2 AND NOT is_current)",
            "history_in_order",
        ),
    ],
)
def test_an_impossible_mart_row_fails_the_dbt_tests_by_name(
    work_db: Path, tamper: str, failing_test: str
) -> None:
    with duckdb.connect(str(work_db)) as con:
        con.execute(tamper)
    report = run_dbt("test", work_db, "--select", "articles article_versions")
    assert not report.success
    assert any(failure.startswith(failing_test) for failure in report.failures), report.failures


def test_the_history_tests_check_what_changed_after_the_bound_of_each_run(work_db: Path) -> None:
    """The bound reaches dbt as an environment variable, which dbt's partial parsing
    follows: each run checks from its own bound, never from the one parsed before."""
    with duckdb.connect(str(work_db)) as con:
        con.execute(
            "UPDATE marts.entity_mentions SET entity_id = NULL "
            "WHERE event_seq = (SELECT min(event_seq) FROM marts.entity_mentions)"
        )
        last = con.execute("SELECT max(event_seq) FROM marts.entity_mentions").fetchall()[0][0]

    def failures(checked_since: int) -> list[str]:
        report = run_dbt("test", work_db, "--select", "entity_mentions", checked_since=checked_since)
        return [failure.split(":")[0] for failure in report.failures]

    assert failures(last) == []
    assert "not_null_entity_mentions_entity_id" in failures(0)
    assert failures(last) == []


def test_a_mention_off_its_surface_blocks_publishing_and_keeps_the_old_snapshot(work_db: Path) -> None:
    first = publish(work_db)
    before = published_path(work_db).read_bytes()
    with duckdb.connect(str(work_db)) as con:
        con.execute(
            "UPDATE marts.entity_mentions SET start_char = start_char + 1, event_seq = 10**9 "
            "WHERE (article_id, version, start_char) = (SELECT (article_id, version, start_char) "
            "FROM marts.entity_mentions ORDER BY ALL LIMIT 1)"
        )
    with pytest.raises(ValidationFailed) as failure:
        publish(work_db)
    assert "marts_entity_mentions: expect_column_values_to_be_in_set(span_matches_surface)" in str(
        failure.value
    )
    assert published_path(work_db).read_bytes() == before
    assert last_published_seq(work_db) == first.last_event_seq
    result = run_cli("publish", "--db", str(work_db))
    assert result.returncode == 1
    assert "span_matches_surface" in result.stdout + result.stderr


def test_a_reader_keeps_working_while_publish_replaces_the_snapshot(work_db: Path) -> None:
    publish(work_db)
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import duckdb, sys, time
            path = {str(published_path(work_db))!r}
            held = duckdb.connect(path, read_only=True)  # held open across the publishes
            print("ready", flush=True)
            errors, reads, deadline = 0, 0, time.monotonic() + 60
            while sys.stdin.readline().strip() != "stop" and time.monotonic() < deadline:
                for _ in range(20):
                    try:
                        assert held.execute("SELECT count(*) FROM marts.articles").fetchall()[0][0] == 68
                        with duckdb.connect(path, read_only=True) as fresh:
                            fresh.execute("SELECT count(*) FROM marts.article_versions").fetchall()
                        reads += 1
                    except Exception as exc:
                        errors += 1
                        print("error", exc, flush=True)
                print("ok", flush=True)
            print(f"done reads={{reads}} errors={{errors}}", flush=True)
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "ready"
        for _ in range(2):
            reader.stdin.write("go\n")
            reader.stdin.flush()
            publish(work_db)  # replaces the file the reader holds open
            assert reader.stdout.readline().strip() == "ok"
        out, _ = reader.communicate("stop\n", timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert "errors=0" in out, out
    assert reader.returncode == 0


def test_a_publish_that_fails_half_way_leaves_the_old_snapshot_and_no_debris(
    work_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(work_db)
    published = work_db.parent / "published"
    before = sorted(p.relative_to(published) for p in published.rglob("*"))

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    # The mirror is the last file written, whether the snapshot is updated or built anew.
    monkeypatch.setattr("ingestion._publish.snapshot.update_mirror", disk_full)
    monkeypatch.setattr("ingestion._publish.snapshot.write_mirror", disk_full)
    with pytest.raises(OSError, match="No space left"):
        publish(work_db)
    assert sorted(p.relative_to(published) for p in published.rglob("*")) == before


# -- what is published is what was validated ----------------------------------------------


def test_marts_of_a_failed_build_are_not_published(work_db: Path) -> None:
    # A threads step gone wrong: the build's unique test fails after the article marts
    # were rebuilt and before the thread marts were.
    with duckdb.connect(str(work_db)) as con:
        con.execute("INSERT INTO enrich.thread_assignments FROM enrich.thread_assignments LIMIT 1")
    assert not transform(work_db, entities=False).success
    with pytest.raises(PublishError, match="the last dbt build failed"):
        publish(work_db)
    assert not published_path(work_db).exists()


def test_a_validation_of_marts_since_rebuilt_does_not_publish_them(work_db: Path) -> None:
    since = last_published_seq(work_db)
    report = validate(work_db, since=since, build_docs=False)
    assert report.success and report.build_id
    assert transform(work_db, entities=False).success  # built again: not what was validated
    with pytest.raises(PublishError, match="built again after they were validated"):
        publish(work_db, validation=report)
    publish(work_db)  # validated anew, it is published


def _record_a_day_ahead(db_path: Path, event: PendingEvent) -> None:
    """Append ``event`` as a writer whose clock is a day ahead would."""
    with EventStore(db_path) as store, store.transaction():
        store.append([event], recorded_at=utcnow() + timedelta(days=1), run_id="clock-ahead")


def test_events_built_after_the_raw_stage_are_validated_before_they_are_published(work_db: Path) -> None:
    """The scheduler validates raw events before the build and the marts after it: an
    ingest in between puts events in the marts that the raw stage never read."""
    since = last_published_seq(work_db)
    raw = validate(work_db, stages=("raw",), since=since, build_docs=False)
    article = {"identity": "ahead-1", "title": "Ferry timetable", "language": "en", "raw": {}}
    _record_a_day_ahead(
        work_db, PendingEvent("article.published", "ahead-1", "ahead", article, content_hash="0" * 64)
    )
    assert transform(work_db).success  # entities and threads too: the snapshot claims what all reflect
    built = validate(work_db, stages=("staging", "marts"), since=since, build_docs=False)
    merged = ValidationReport.merged([raw.to_dict(), built.to_dict()])
    with pytest.raises(ValidationFailed) as failed:
        publish(work_db, validation=merged)
    assert "recorded_not_in_future" in str(failed.value.report.failures())


def test_a_build_of_a_selection_passes_and_is_not_published(work_db: Path, tmp_path: Path) -> None:
    """New names, then a build of one mart: entity_mentions is rebuilt and entities is not,
    so their relationship is not tested, and the marts are not published until a whole build."""
    archive = tmp_path / "later.jsonl"
    archive.write_text(
        json.dumps({"guid": "later-1", "title": "Ursula von der Leyen visits Tallinn", "language": "en"})
        + "\n"
    )
    backfill(archive, "later", work_db)
    assert transform(work_db, select="entity_daily").success
    with pytest.raises(PublishError, match="a selection"):
        publish(work_db)
    assert transform(work_db).success
    assert publish(work_db).validation.success


def test_a_build_that_begins_while_publishing_stops_the_publish(
    work_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lake takes no file lock: a transform may start while a snapshot is built. It
    writes its build record before touching a mart, and the switch waits on that record."""
    import ingestion._publish.snapshot as snapshot
    from ingestion._derive.transform import _write_build_record

    write_mirror = snapshot.write_mirror

    def a_transform_starts_meanwhile(*args: object) -> None:
        write_mirror(*args)
        _write_build_record(work_db, "another-build", "building")

    monkeypatch.setattr(snapshot, "write_mirror", a_transform_starts_meanwhile)
    with pytest.raises(PublishError, match="did not finish"):
        publish(work_db)
    assert not published_path(work_db).exists()
    assert not list((published_path(work_db).parent / "snapshots").glob("*"))


def test_events_ingested_between_threads_and_dbt_build_are_raw_checked_before_publish(work_db: Path) -> None:
    """The scheduler: validate_raw, entities, threads, [an ingest takes the writer slot],
    dbt_build, validate_staging, validate_marts, publish. The build puts the late event in
    the marts though entities and threads stopped before it (the snapshot's claimed position,
    the least of the three, is not past the raw stage's ``up_to``): it is raw-checked too."""
    since = last_published_seq(work_db)
    raw = validate(work_db, stages=("raw",), since=since, build_docs=False)
    assert raw.success
    article = {"identity": "ahead-2", "title": "Ferry timetable from the future", "language": "en", "raw": {}}
    _record_a_day_ahead(
        work_db, PendingEvent("article.published", "ahead-2", "ahead", article, content_hash="1" * 64)
    )
    # The scheduler's dbt_build task: entities and threads ran in their own tasks before the ingest.
    assert transform(work_db, entities=False).success
    built = validate(work_db, stages=("staging", "marts"), since=since, build_docs=False)
    assert built.success
    merged = ValidationReport.merged([raw.to_dict(), built.to_dict()])
    with pytest.raises(ValidationFailed) as failed:
        publish(work_db, validation=merged)
    assert any("recorded_not_in_future" in failure for failure in failed_expectations(failed.value.report))


def test_fetch_events_built_after_the_raw_stage_are_raw_checked_before_publish(work_db: Path) -> None:
    """The same gap with a whole transform: an ingest between validate_raw and the build
    that records only fetches moves no article position, yet the `sources` mart is built
    from those fetch events: they are raw-checked too."""
    since = last_published_seq(work_db)
    raw = validate(work_db, stages=("raw",), since=since, build_docs=False)
    failed = {
        "url": "https://harbour.example/rss.xml",
        "error_class": "HTTPError",
        "error_message": "HTTP 503 from a writer whose clock is a day ahead",
        "status": 503,
    }
    _record_a_day_ahead(work_db, PendingEvent("feed.failed", "feed:clock-ahead", "clock-ahead", failed))
    assert transform(work_db).success
    built = validate(work_db, stages=("staging", "marts"), since=since, build_docs=False)
    merged = ValidationReport.merged([raw.to_dict(), built.to_dict()])
    with pytest.raises(ValidationFailed) as failed_validation:
        publish(work_db, validation=merged)
    assert any(
        "recorded_not_in_future" in failure for failure in failed_expectations(failed_validation.value.report)
    )


def test_a_killed_publish_leaves_no_snapshot_folder_behind(work_db: Path) -> None:
    """A publish killed (the OOM killer, a task's timeout) while building leaves its
    half-built snapshot's folder (Parquet, a copy of the explorer's mirror): the next
    publish removes it first, so they do not pile up while every attempt is killed."""

    publish(work_db)
    snapshots = published_dir(work_db) / "snapshots"
    killed = []
    for _ in range(2):
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                textwrap.dedent(f"""
                import sys, time
                import ingestion._publish.snapshot as snapshot
                from pathlib import Path

                def stuck(*args, **kwargs):
                    print("building", flush=True)
                    time.sleep(600)

                snapshot.write_change_feeds = stuck
                snapshot.publish(Path({str(work_db)!r}))
                """),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )
        try:
            assert child.stdout.readline().strip() == "building"
            folders_now = {p.name for p in snapshots.iterdir()}
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.kill()
            child.wait()
        killed.append(folders_now)
    left_by_killed = set.union(*killed) - {(published_dir(work_db) / "current").resolve().name}
    assert left_by_killed, "the killed publishes made no folder: the reproducer proves nothing"
    before = (published_dir(work_db) / "current").resolve().name
    publish(work_db)
    after = (published_dir(work_db) / "current").resolve().name
    remaining = {p.name for p in snapshots.iterdir()}
    sizes = {
        name: sum(f.stat().st_size for f in (snapshots / name).rglob("*") if f.is_file())
        for name in remaining - {before, after}
    }
    assert remaining <= {before, after}, f"folders of killed publishes still there (bytes): {sizes}"


def _archive(path: Path, guid: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "guid": guid,
                "title": "Quorvex ferry crews walk out over rosters",
                "summary": "Crossings to the islands are halted while the Quorvex crews strike.",
                "language": "en",
                "published_at": "2026-03-02T10:00:00Z",
            }
        )
        + "\n"
    )
    return path


def test_search_over_an_updated_snapshot_ranks_like_a_full_build(work_db: Path, tmp_path: Path) -> None:
    """Two outlets' identical copies score the same: equal scores go by article, not by the
    document's number, which differs between a snapshot built in full and one brought up
    to date (`newsroom search --limit 1` showed another article)."""
    from ingestion._extensions import load_extension
    from ingestion._log.backfill import backfill
    from ingestion._log.events import article_id
    from ingestion._publish.search import search

    backfill(_archive(tmp_path / "first.jsonl", "copy-first"), "copies", work_db)
    assert transform(work_db).success
    publish(work_db)
    first = article_id("copies", "copy-first")
    # The later copy's id sorts before the first's: a full build numbers it first.
    guid = next(f"copy-{n}" for n in range(1000) if article_id("copies", f"copy-{n}") < first)
    backfill(_archive(tmp_path / "second.jsonl", guid), "copies", work_db)
    assert transform(work_db).success

    def searched() -> tuple[list[tuple], list[tuple]]:
        with duckdb.connect(str(published_path(work_db)), read_only=True) as con:
            load_extension(con, "fts")
            relation, _ = search(con, "Quorvex", limit=1)
            top = relation.select("article_id, score").fetchall()
            macro = con.execute("SELECT article_id, score FROM search_articles('Quorvex') LIMIT 1").fetchall()
        return top, macro

    assert publish(work_db).changes is not None  # updated from the snapshot before
    updated = searched()
    assert publish(work_db, full=True).changes is None
    full = searched()
    assert full[0][0][1] == updated[0][0][1]  # the same score
    assert updated == full, f"updated snapshot: {updated}; built in full: {full}"


def test_an_upgrade_that_changes_the_stop_words_reindexes_an_updated_snapshot(
    work_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upgrade that edits the stop words (the threads' list, shared) has an updated
    snapshot indexed again, as a full build is: it had kept searching by the old list."""
    import ingestion._publish.search as search_module

    publish(work_db)
    upgraded = tmp_path / "stopwords_en.txt"
    upgraded.write_text(
        search_module._STOPWORDS_FILE.read_text(encoding="utf-8") + "geneva\n", encoding="utf-8"
    )
    monkeypatch.setattr(search_module, "_STOPWORDS_FILE", upgraded)  # the upgrade's list

    def index_of_geneva() -> tuple[int, int]:
        with duckdb.connect(str(published_path(work_db)), read_only=True) as con:
            return con.execute(
                "SELECT (SELECT count(*) FROM search_stopwords WHERE word = 'geneva'), "
                "(SELECT count(*) FROM search_terms WHERE term = 'geneva')"
            ).fetchall()[0]

    assert publish(work_db).changes is not None
    updated = index_of_geneva()
    assert publish(work_db, full=True).changes is None
    full = index_of_geneva()
    assert full == (1, 0)
    assert updated == full, f"updated snapshot (stop word, indexed term): {updated}; full build: {full}"


def test_validation_results_and_data_docs_do_not_grow_with_every_run(
    work_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every validation stores a result per suite, and Data Docs rendered a page for every
    result ever stored: both grew with every run of the scheduler, and so did the time each
    validation took (27 s after 300 runs). The newest runs' are kept."""
    monkeypatch.setattr(validate_module, "KEPT_RESULTS_PER_SUITE", 2)
    data = work_db.parent

    def stored() -> tuple[int, int]:
        results = sum(1 for _ in (data / "gx" / "validations").rglob("*.json"))
        pages = sum(1 for _ in (data / "docs" / "gx" / "validations").rglob("*.html"))
        return results, pages

    for _ in range(2):
        validate(work_db, since=0)
    after_two = stored()
    for _ in range(3):
        validate(work_db, since=0)
    after_five = stored()
    assert after_five == after_two, (
        f"result files and doc pages after 2 runs: {after_two}, after 5: {after_five}"
    )
