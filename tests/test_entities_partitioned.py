"""Entity extraction split into partitions (one Airflow mapped task each) and merged by
one writer gives the rows of a single-process run; a retried partition or merge adds
nothing twice, and a missing partition is refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from threadpoolctl import threadpool_info

from ingestion._derive import entities
from ingestion._derive.entities import (
    extract_entities,
    extract_partition,
    merge_partitions,
    partitions_dir,
    plan_partitions,
)
from ingestion._log import store as store_module
from ingestion.exceptions import EntityExtractionError, StoreError

from .conftest import copy_data_dir
from .test_hostile_entities import append_articles

ENRICH_TABLES = {
    "enrich.texts": "text_hash",
    "enrich.mentions": "text_hash, mention_index",
    "enrich.field_texts": "event_seq, field",
    "enrich.batches": "last_event_seq",
}


def enrich_rows(db: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            table: con.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
            for table, order in ENRICH_TABLES.items()
        }


def forget_entities(db: Path) -> None:
    """The demo database as before its first extraction (its dbt views stay)."""
    with duckdb.connect(str(db)) as con:
        for table in ENRICH_TABLES:
            con.execute(f"DELETE FROM {table}")


def run_partitioned(db: Path, parts: int) -> int:
    through = plan_partitions(db)
    for part in reversed(range(parts)):  # the order tasks finish in does not matter
        extract_partition(db, part, parts, through=through)
    merge_partitions(db, parts, through)
    return through


@pytest.fixture
def demo_pair(demo_data_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Two private copies of the demo database whose entities are to be extracted again."""
    single, partitioned = (copy_data_dir(demo_data_dir, tmp_path / name) for name in ("single", "parts"))
    for db in (single, partitioned):
        forget_entities(db)
    return single, partitioned


def test_partitions_merged_equal_a_single_process_run_on_the_demo(demo_pair) -> None:
    single, partitioned = demo_pair
    report = extract_entities(single, n_process=1)
    assert report.texts_new > 100 and report.mentions > 100

    run_partitioned(partitioned, parts=3)

    assert enrich_rows(partitioned) == enrich_rows(single)
    assert not any(partitions_dir(partitioned).iterdir())  # merged files are removed


def test_a_partition_reads_on_one_blas_thread_leaving_the_other_cores_to_the_others(
    demo_pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, partitioned = demo_pair
    blas_threads: set[int] = set()
    read_texts = entities.read_texts

    def read_noting_threads(model, texts):
        blas_threads.update(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
        return read_texts(model, texts)

    monkeypatch.setattr(entities, "read_texts", read_noting_threads)
    assert extract_partition(partitioned, 0, 2, through=plan_partitions(partitioned)).texts_new > 0
    assert blas_threads == {1}


def test_a_retried_partition_or_merge_adds_nothing_twice(demo_pair) -> None:
    _, db = demo_pair
    through = plan_partitions(db)
    for part in range(2):
        extract_partition(db, part, 2, through=through)
    extract_partition(db, 1, 2, through=through)  # a retried task replaces its own file
    first = merge_partitions(db, 2, through)
    merged = enrich_rows(db)
    assert first.texts_new == len(merged["enrich.texts"])

    again = merge_partitions(db, 2, through)  # a retried merge
    assert again.texts_new == 0
    extract_partition(db, 0, 2, through=through)  # a partition retried after the merge: nothing new
    assert merge_partitions(db, 2, through).texts_new == 0
    assert enrich_rows(db) == merged


def test_a_merge_removes_the_folders_of_runs_it_covers_and_keeps_later_ones(demo_pair) -> None:
    _, db = demo_pair
    through = plan_partitions(db)
    # A scheduler run that failed after its partitions (never merged), and one planned
    # after this one that is still running.
    abandoned = extract_partition(db, 0, 1, through=through - 5)
    assert abandoned.events > 0
    later = partitions_dir(db) / "0123456789ab-events-1-999999999"
    later.mkdir()
    extract_partition(db, 0, 1, through=through)
    assert len(list(partitions_dir(db).iterdir())) == 3
    merge_partitions(db, 1, through)
    assert list(partitions_dir(db).iterdir()) == [later]


def test_a_missing_partition_is_refused_by_name_and_nothing_is_written(demo_pair) -> None:
    _, db = demo_pair
    through = plan_partitions(db)
    for part in (0, 2):
        extract_partition(db, part, 3, through=through)
    with pytest.raises(EntityExtractionError, match=r"entity partition 1 of 3 .* is missing"):
        merge_partitions(db, 3, through)
    assert all(not rows for rows in enrich_rows(db).values())

    extract_partition(db, 1, 3, through=through)  # the missing task runs again
    assert merge_partitions(db, 3, through).texts_new > 100


def test_a_text_stored_since_the_partitions_were_read_is_refused_and_nothing_is_written(
    demo_pair,
) -> None:
    """enrich.texts has no key on text_hash (its index took a tenth of the file): the
    merge itself refuses to store a text a second time, whose mentions would count twice."""
    _, db = demo_pair
    through = plan_partitions(db)
    extract_partition(db, 0, 1, through=through)
    (partition,) = partitions_dir(db).glob("*/*.parquet")
    written = pq.read_table(partition)
    stale = written.filter(pc.is_valid(written["status"]))
    with duckdb.connect(str(db)) as con:  # a text stored by a writer the partition never saw
        con.execute(
            "INSERT INTO enrich.texts VALUES (?, 'another run', 'en', 'extracted', 3, 0, NULL)",
            [stale["text_hash"][0].as_py()],
        )
    before = enrich_rows(db)

    with pytest.raises(StoreError, match=r"would store texts twice \(0 repeated in the run, 1 stored before"):
        merge_partitions(db, 1, through)
    assert enrich_rows(db) == before and partition.exists()


def test_a_partition_of_another_split_is_refused(demo_pair) -> None:
    _, db = demo_pair
    through = plan_partitions(db)
    extract_partition(db, 0, 2, through=through)
    folder = next(partitions_dir(db).iterdir())
    (folder / "part-0000-of-0002.parquet").rename(folder / "part-0001-of-0002.parquet")
    extract_partition(db, 0, 2, through=through)
    with pytest.raises(EntityExtractionError, match="belongs to another run"):
        merge_partitions(db, 2, through)
    with pytest.raises(EntityExtractionError, match="partition 2 does not exist"):
        extract_partition(db, 2, 2)


def test_a_partition_file_split_another_way_is_refused(demo_pair) -> None:
    _, db = demo_pair
    through = plan_partitions(db)
    for part in range(2):
        extract_partition(db, part, 2, through=through)
    path = next(partitions_dir(db).iterdir()) / "part-0000-of-0002.parquet"
    table = pq.read_table(path)
    written = json.loads(table.schema.metadata[b"newsroom"])
    del written["split"]  # as a version that split texts another way wrote it
    pq.write_table(table.replace_schema_metadata({"newsroom": json.dumps(written)}), path)
    with pytest.raises(EntityExtractionError, match="belongs to another run"):
        merge_partitions(db, 2, through)


def test_each_partition_detects_the_language_of_its_own_articles_only(
    demo_pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, db = demo_pair
    detected: list[str] = []
    article_language = entities.article_language

    def detect_noting(text: str, declared: str | None) -> str:
        detected.append(text)
        return article_language(text, declared)

    monkeypatch.setattr(entities, "article_language", detect_noting)
    through = plan_partitions(db)
    extract_partition(db, 0, 1, through=through)
    everyone = len(detected)
    detected.clear()
    for part in range(4):
        extract_partition(db, part, 4, through=through)
    assert everyone > 50 and len(detected) < 3 * everyone  # not 4 times: ~2.2 for the demo


def test_partitions_read_a_database_no_extraction_has_touched(tmp_path: Path) -> None:
    single, partitioned = tmp_path / "single.duckdb", tmp_path / "parts.duckdb"
    articles = [
        {"identity": f"a-{n}", "title": f"Olaf Scholz visits Paris, day {n}", "body": "Talks in Berlin."}
        for n in range(6)
    ]
    for db in (single, partitioned):
        append_articles(db, articles)
    extract_entities(single, n_process=1)
    run_partitioned(partitioned, parts=2)
    assert enrich_rows(partitioned) == enrich_rows(single)


def test_a_partitioned_run_takes_one_part_of_a_backlog(demo_pair, monkeypatch: pytest.MonkeyPatch) -> None:
    # As a single process works through the log a part at a time, so do the mapped tasks:
    # each run holds one part, and the runs after it take the rest, to the same rows.
    single, partitioned = demo_pair
    extract_entities(single)
    with duckdb.connect(str(partitioned), read_only=True) as con:
        events = con.execute("SELECT event_seq FROM raw.article_events ORDER BY event_seq").fetchall()
    monkeypatch.setattr(store_module, "PART_EVENTS", len(events) // 3)
    ends = []
    while (through := plan_partitions(partitioned)) > (ends[-1] if ends else 0):
        run_partitioned(partitioned, 2)
        ends.append(through)
    assert len(ends) >= 3 and ends[-1] == events[-1][0]
    assert ends[0] == events[len(events) // 3 - 1][0]
    rows = enrich_rows(partitioned)
    assert {key: value for key, value in rows.items() if key != "enrich.batches"} == {
        key: value for key, value in enrich_rows(single).items() if key != "enrich.batches"
    }
