"""Entities through the product's own path (archive -> backfill -> transform -> marts)
on a real scraped wire story: found, resolved, typed; revisions extract only new
texts and keep entity ids; a replay from the event log gives identical marts; a
German article is read by the German model, never guessed at with the English one."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from ingestion._derive.entities import EntityReport, extract_entities
from ingestion._derive.transform import transform
from ingestion._log.backfill import backfill

from .conftest import shared_path

pytestmark = pytest.mark.shared

SOURCE = "wire-archive"
SEED_GUID = "seed:coalition-of-the-willing-2026-01-07"
GERMAN_GUID = "seed:de-merz-bundeswehr-2026-01-07"
REVISED_TITLE = "Macron and Starmer pledge troops for Ukraine as Zelensky meets allies in Paris"
ENTITY_MARTS = ["entity_mentions", "entities", "entity_pairs", "entity_daily", "entity_extraction_status"]
DERIVED_SCHEMAS = ["enrich", "staging", "intermediate", "marts"]
TYPES = {"PERSON": "person", "ORG": "organisation", "PLACE": "place"}
#: Required rows of expected_entities.csv that must resolve exactly (every surface in the
#: clean text found, one entity, not shared with another row, right type). Measured: 34
#: of 37 with our English model (32 with en_core_web_sm 3.8, which scores 0.63 against
#: our 0.87 on CoNLL eng.testa). The misses below are the model's (the raw output in
#: enrich.mentions has them so). Raise the bar when rules or models fix them.
MIN_REQUIRED_RESOLVED = 34
REQUIRED_MISSES_SEEN = {
    "Radoslaw Sikorski": "tagged as an organisation",
    "European Union": "'EU' is only tagged inside the ORG span 'EU Council'",
    "Bundestag": "tagged as a person",
}

# Written for this test: a short German report (read by the German model, not the English one).
GERMAN_TITLE = "Merz stellt Beteiligung der Bundeswehr an Schutztruppe für die Ukraine in Aussicht"
GERMAN_BODY = (
    "Bundeskanzler Friedrich Merz hat am Dienstag in Paris erstmals angekündigt, dass sich die "
    "Bundeswehr an einer Friedenssicherung beteiligen könnte.\n"
    "Der französische Präsident Emmanuel Macron und der britische Premierminister Keir Starmer "
    "unterzeichneten mit dem ukrainischen Präsidenten eine Erklärung."
)


@dataclass
class Expected:
    canonical_name: str
    entity_type: str
    surfaces: list[str]
    required: bool


@dataclass
class Pipeline:
    """Everything the tests look at, captured stage by stage from one database."""

    seed_article: str = ""
    german_article: str = ""
    clean_v1: dict[str, str] = field(default_factory=dict)  # field -> clean text
    mentions_v1: list[dict] = field(default_factory=list)
    entities_v1: dict[str, dict] = field(default_factory=dict)  # entity_id -> row
    german_status: list[tuple] = field(default_factory=list)
    german_mentions: int = -1
    revision_counts: dict[str, int] = field(default_factory=dict)
    revision_report: EntityReport | None = None
    mentions_v1_after_revision: list[dict] = field(default_factory=list)
    mentions_v2: list[dict] = field(default_factory=list)
    entity_ids_after_revision: set[str] = field(default_factory=set)
    marts_before_replay: dict[str, list[tuple]] = field(default_factory=dict)
    marts_after_replay: dict[str, list[tuple]] = field(default_factory=dict)


def expected_entities() -> list[Expected]:
    with shared_path("data", "seed", "expected_entities.csv").open(encoding="utf-8") as handle:
        return [
            Expected(
                r["canonical_name"],
                r["entity_type"],
                r["surfaces_in_text"].split("|"),
                r["required"] == "yes",
            )
            for r in csv.DictReader(handle)
        ]


def write_archive(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def seed_record(title: str, body: str) -> dict:
    return {
        "guid": SEED_GUID,
        "url": "https://example.org/news/coalition-of-the-willing",
        "title": title,
        "summary": "",
        "body": body,
        "source": "sda/dpa",
        "published_at": "2026-01-07T06:41:00+01:00",
        "language": "en",
    }


def build(db_path: Path) -> None:
    report = transform(db_path)
    assert report.success, report.failures


def query(db_path: Path, sql: str, params: list | None = None) -> list[dict]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        cursor = con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def article_mentions(db_path: Path, article_id: str, version: int) -> list[dict]:
    return query(
        db_path,
        "SELECT field, start_char, end_char, surface, name, entity_type, label, entity_id "
        "FROM marts.entity_mentions WHERE article_id = ? AND version = ? ORDER BY ALL",
        [article_id, version],
    )


def entity_marts(db_path: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return {m: con.execute(f"SELECT * FROM marts.{m} ORDER BY ALL").fetchall() for m in ENTITY_MARTS}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Pipeline:
    story = shared_path("data", "seed", "coalition_of_the_willing_2026-01-07.txt").read_text(encoding="utf-8")
    title, body = story.split("\n", 1)
    tmp = tmp_path_factory.mktemp("entities")
    db_path = tmp / "data" / "newsroom.duckdb"
    state = Pipeline()

    # 1. The story and a German article, one archive, one transform.
    german = {
        "guid": GERMAN_GUID,
        "url": "https://example.org/de/merz-bundeswehr",
        "title": GERMAN_TITLE,
        "body": GERMAN_BODY,
        "source": "sda/dpa",
        "published_at": "2026-01-07T07:10:00+01:00",
        "language": "de",
    }
    report = backfill(write_archive(tmp / "first.jsonl", [seed_record(title, body), german]), SOURCE, db_path)
    assert report.counts["new"] == 2, report
    build(db_path)
    ids = {
        r["guid"]: r["article_id"]
        for r in query(db_path, "SELECT guid, article_id FROM marts.article_versions WHERE version = 1")
    }
    state.seed_article, state.german_article = ids[SEED_GUID], ids[GERMAN_GUID]
    clean = query(
        db_path,
        "SELECT title, summary, body FROM marts.article_versions WHERE article_id = ? AND version = 1",
        [state.seed_article],
    )[0]
    state.clean_v1 = {k: v or "" for k, v in clean.items()}
    state.mentions_v1 = article_mentions(db_path, state.seed_article, 1)
    state.entities_v1 = {r["entity_id"]: r for r in query(db_path, "SELECT * FROM marts.entities")}
    state.german_status = [
        tuple(r.values())
        for r in query(
            db_path,
            "SELECT field, language, status, mention_count FROM marts.entity_extraction_status "
            "WHERE article_id = ? ORDER BY field",
            [state.german_article],
        )
    ]
    state.german_mentions = query(
        db_path,
        "SELECT count(*) AS n FROM marts.entity_mentions WHERE article_id = ?",
        [state.german_article],
    )[0]["n"]

    # 2. A revision: the title changes, the body does not.
    report = backfill(
        write_archive(tmp / "second.jsonl", [seed_record(REVISED_TITLE, body)]), SOURCE, db_path
    )
    state.revision_counts = dict(report.counts)
    state.revision_report = extract_entities(db_path)
    build(db_path)  # extract_entities again (nothing new), then dbt build
    state.mentions_v1_after_revision = article_mentions(db_path, state.seed_article, 1)
    state.mentions_v2 = article_mentions(db_path, state.seed_article, 2)
    state.entity_ids_after_revision = {
        r["entity_id"] for r in query(db_path, "SELECT entity_id FROM marts.entities")
    }

    # 3. Replay: everything derived is dropped and rebuilt from the event log.
    state.marts_before_replay = entity_marts(db_path)
    with duckdb.connect(str(db_path)) as con:
        for schema in DERIVED_SCHEMAS:
            con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    build(db_path)
    state.marts_after_replay = entity_marts(db_path)
    return state


# ----------------------------------------------------------------------------- the seed story


def strip_the(text: str) -> str:
    return re.sub(r"^(the|The)\s+", "", text)


def matches(mention: dict, surface: str) -> bool:
    return any(
        value == surface or strip_the(value) == surface
        for value in (mention["surface"], mention["name"])
        if value
    )


def occurs(surface: str, text: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(surface)}(?!\w)", text) is not None


@dataclass
class RowResult:
    row: Expected
    missing: list[str]  # surfaces in the clean text that no mention carries
    entity_ids: set[str]
    entity_types: set[str]
    shared_with: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.missing
            and len(self.entity_ids) == 1
            and self.entity_types == {TYPES[self.row.entity_type]}
            and not self.shared_with
        )

    def describe(self) -> str:
        problems = []
        if self.missing:
            problems.append(f"not found: {self.missing}")
        if len(self.entity_ids) > 1:
            problems.append(f"split over {len(self.entity_ids)} entities")
        if self.entity_types != {TYPES[self.row.entity_type]}:
            problems.append(f"typed {sorted(self.entity_types)}, expected {TYPES[self.row.entity_type]}")
        if self.shared_with:
            problems.append(f"same entity as {self.shared_with}")
        known = (
            f" (seen before: {REQUIRED_MISSES_SEEN[self.row.canonical_name]})"
            if not self.ok and (self.row.canonical_name in REQUIRED_MISSES_SEEN)
            else ""
        )
        status = "ok  " if self.ok else "FAIL" if self.row.required else "miss"
        return f"{status} {self.row.canonical_name}: {'; '.join(problems) or 'resolved'}{known}"


def resolve_rows(state: Pipeline) -> list[RowResult]:
    text = "\n".join(state.clean_v1.values())
    results = []
    for row in expected_entities():
        present = [s for s in row.surfaces if occurs(s, text)]
        assert present, f"{row.canonical_name}: none of {row.surfaces} in the clean text"
        found = {s: [m for m in state.mentions_v1 if matches(m, s)] for s in present}
        ids = {m["entity_id"] for ms in found.values() for m in ms}
        results.append(
            RowResult(
                row,
                missing=[s for s, ms in found.items() if not ms],
                entity_ids=ids,
                entity_types={state.entities_v1[i]["entity_type"] for i in ids},
            )
        )
    required = [r for r in results if r.row.required]
    for result in required:
        result.shared_with = [
            other.row.canonical_name
            for other in required
            if other is not result and result.entity_ids & other.entity_ids
        ]
    return results


def test_seed_story_required_entities_resolve(pipeline: Pipeline) -> None:
    results = resolve_rows(pipeline)
    required = [r for r in results if r.row.required]
    passed = [r for r in required if r.ok]
    table = "\n".join(r.describe() for r in results)
    print(f"\nseed story: {len(passed)}/{len(required)} required entities resolved exactly\n{table}")
    assert len(passed) >= MIN_REQUIRED_RESOLVED, f"{len(passed)}/{len(required)} resolved:\n{table}"


def test_seed_story_resolution_never_merges_or_splits_required_entities(pipeline: Pipeline) -> None:
    """Whatever the model finds, resolution must keep one entity per row and rows apart."""
    required = [r for r in resolve_rows(pipeline) if r.row.required]
    split = {r.row.canonical_name: sorted(r.entity_ids) for r in required if len(r.entity_ids) > 1}
    merged = {r.row.canonical_name: r.shared_with for r in required if r.shared_with}
    assert not split
    assert not merged


def test_seed_story_spelling_variants_and_surnames_resolve_to_the_full_name(pipeline: Pipeline) -> None:
    by_surface = {}
    for m in pipeline.mentions_v1:
        by_surface.setdefault(m["surface"], set()).add(m["entity_id"])
    pairs = [
        ("Zelenskyj", "Volodymyr Zelensky"),  # spelling variant, same name key
        ("Merz", "Friedrich Merz"),  # lone surnames after the full name
        ("Witkoff", "Steve Witkoff"),
        ("Wadephul", "Johann Wadephul"),
        ("USA", "US"),  # curated aliases of one place
    ]
    for variant, full in pairs:
        assert by_surface.get(variant) and by_surface[variant] == by_surface[full], (variant, full)
    names = {e["canonical_name"] for e in pipeline.entities_v1.values()}
    assert {"Kyiv", "United States", "United Kingdom"} <= names  # curated aliases


def test_seed_story_credits_are_not_entities(pipeline: Pipeline) -> None:
    credit = re.compile(r"keystone|\bImage\b|\bsda\b|\bdpa\b|^\(?con\)?$", re.I)
    assert not [m for m in pipeline.mentions_v1 if credit.search(m["surface"]) or credit.search(m["name"])]
    for entity in pipeline.entities_v1.values():
        assert not credit.search(entity["canonical_name"]), entity
        assert not [a for a in entity["aliases"] if credit.search(a)], entity


# ----------------------------------------------------------------------------- revisions and replay


def test_a_revision_extracts_only_the_changed_field(pipeline: Pipeline) -> None:
    assert pipeline.revision_counts.get("revised") == 1, pipeline.revision_counts
    report = pipeline.revision_report
    assert report is not None
    assert (report.events, report.texts_new, report.texts_unsupported) == (1, 1, 0)
    assert report.words == len(REVISED_TITLE.split())  # the title only: the body was extracted before
    v1_body = [m for m in pipeline.mentions_v1 if m["field"] == "body"]
    v2_body = [m for m in pipeline.mentions_v2 if m["field"] == "body"]
    assert v2_body == v1_body  # the unchanged body keeps its mentions, offsets and entities


def test_a_revision_keeps_entity_ids(pipeline: Pipeline) -> None:
    assert pipeline.mentions_v1_after_revision == pipeline.mentions_v1
    assert set(pipeline.entities_v1) <= pipeline.entity_ids_after_revision
    title_v2 = {m["surface"]: m["entity_id"] for m in pipeline.mentions_v2 if m["field"] == "title"}
    ids_v1 = {m["name"]: m["entity_id"] for m in pipeline.mentions_v1}
    # a lone surname in the new title joins the one person known by that full name
    assert title_v2.get("Macron") == ids_v1["Emmanuel Macron"], title_v2
    assert title_v2.get("Starmer") == ids_v1["Keir Starmer"], title_v2


def test_replay_from_the_event_log_gives_identical_entity_marts(pipeline: Pipeline) -> None:
    for mart in ENTITY_MARTS:
        assert pipeline.marts_before_replay[mart], mart
        assert pipeline.marts_after_replay[mart] == pipeline.marts_before_replay[mart], mart


def test_a_german_article_is_read_by_the_german_model(pipeline: Pipeline) -> None:
    assert [(field, language, status) for field, language, status, _ in pipeline.german_status] == [
        ("body", "de", "extracted"),
        ("title", "de", "extracted"),
    ]
    assert pipeline.german_mentions > 0
