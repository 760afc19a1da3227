"""Marts built from events written by hand, with what the entity and thread steps would
have stored for them (or not yet): real dbt, real DuckDB."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import orjson
import pytest

from ingestion._derive import ner
from ingestion._derive.transform import _entity_models_changed, run_dbt

from .test_incremental_marts import dbt, new_database, private_project, store_title_mentions


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return private_project(tmp_path_factory.mktemp("dbt"))


class Log:
    """Appends article events (and what the entity and thread steps would have stored)."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.versions: dict[str, int] = {}
        self.pending: list[tuple] = []

    def add(
        self,
        article: str,
        event_type: str = "article.published",
        *,
        recorded_at: str,
        occurred_at: str | None = None,
        source: str = "src",
        title: str = "",
        mentions: list[tuple[str, str]] = (),
        decision: tuple[str, str] | None = None,
        event_time: str | None = None,
        enrich: bool = True,
        **fields: object,
    ) -> int:
        version = self.versions.get(article, 0) + 1
        self.versions[article] = version
        with duckdb.connect(str(self.db)) as con:
            seq = con.execute("SELECT coalesce(max(event_seq), 0) + 1 FROM raw.events").fetchall()[0][0]
            payload = orjson.dumps({"identity": article, "title": title, "language": "en", **fields}).decode()
            con.execute(
                "INSERT INTO raw.events VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'test', ?, ?, ?, '', '')",
                [seq, f"{article}#{version}", event_type, article, version, source, occurred_at, recorded_at,
                 title, payload, title],
            )  # fmt: skip
        if decision is None:
            decision = ("leave", article) if event_type == "article.withdrawn" else ("open", article)
        work = (seq, article, version, title, mentions, decision, event_time or occurred_at or recorded_at)
        if enrich:
            self.enrich(*work)
        else:
            self.pending.append(work)
        return seq

    def enrich_pending(self) -> None:
        """What `newsroom transform` does first: entities and threads of the events not read yet."""
        for work in self.pending:
            self.enrich(*work)
        self.pending.clear()

    def enrich(self, seq, article, version, title, mentions, decision, event_time) -> None:
        with duckdb.connect(str(self.db)) as con:
            action, thread = decision
            con.execute(
                "INSERT INTO enrich.thread_assignments VALUES (?, ?, ?, ?, ?, 0.5, NULL, ?, 'test', NULL)",
                [seq, article, version, action, thread, event_time],
            )
            store_title_mentions(con, seq, article, version, title, mentions)


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def full_refresh_copy(db: Path, project: Path) -> Path:
    full = db.parent / "full.duckdb"
    shutil.copy(db, full)
    dbt("run", full, project, "--full-refresh")
    return full


@pytest.fixture
def log(tmp_path: Path) -> Log:
    return Log(new_database(tmp_path / "newsroom.duckdb"))


def test_names_in_non_latin_scripts_are_not_one_entity(log: Log, project: Path) -> None:
    """Two different people named in Cyrillic (and one in Greek) are three entities;
    name_key() drops every letter outside a-z, so all of them get the key '' and one id."""
    log.add("c1", recorded_at="2026-03-01 10:00:00", title="Путин meets Зеленский",
            mentions=[("Путин", "PERSON"), ("Зеленский", "PERSON")])  # fmt: skip
    log.add(
        "c2",
        recorded_at="2026-03-01 11:00:00",
        title="Μητσοτάκης speaks",
        mentions=[("Μητσοτάκης", "PERSON")],
    )
    dbt("build", log.db, project, "--full-refresh")
    entities = query(log.db, "SELECT canonical_name FROM marts.entities ORDER BY 1")
    pairs = query(log.db, "SELECT count(*) FROM marts.entity_pairs")
    assert len(entities) == 3, entities
    assert pairs == [(1,)]


def test_a_revision_recorded_between_the_entity_step_and_dbt_is_never_counted(
    log: Log, project: Path
) -> None:
    """`newsroom transform` (and the transform DAG) runs NER and threading, closes the file,
    then runs dbt: an ingest waiting for the file records in between. dbt then builds
    articles with a revision whose mentions do not exist yet, and entities takes that
    revision's event_seq as its watermark (articles.last_event_seq): when the next run's NER
    adds the revision's mentions, entities skips them for good, and entity_mentions points at
    an entity that entities never gets (its relationships test fails every build after)."""
    log.add("a1", recorded_at="2026-03-01 10:00:00", title="John Smith visits Paris",
            mentions=[("John Smith", "PERSON"), ("Paris", "GPE")])  # fmt: skip
    dbt("build", log.db, project, "--full-refresh")
    # transform: NER and threads (nothing new) ... an ingest records a revision ... dbt
    log.add("a1", "article.revised", recorded_at="2026-03-02 10:00:00", title="Jane Doe visits Berlin",
            mentions=[("Jane Doe", "PERSON"), ("Berlin", "GPE")], decision=("stay", "a1"), enrich=False)  # fmt: skip
    dbt("build", log.db, project)
    # the next transform: NER and threads read the revision, dbt builds
    log.enrich_pending()
    report = run_dbt("build", log.db, project_dir=project)
    entities = query(log.db, "SELECT canonical_name, article_count FROM marts.entities ORDER BY 1")
    full = full_refresh_copy(log.db, project)
    expected = query(full, "SELECT canonical_name, article_count FROM marts.entities ORDER BY 1")
    assert (entities, report.failures) == (expected, [])


def test_a_revision_recorded_between_the_entity_step_and_dbt_drops_its_pairs(log: Log, project: Path) -> None:
    """The same gap, for entity_pairs: the build that meets the revision before its NER
    recounts the pair the article named without it (its current version names nobody yet);
    the next build takes the revision as a steady one of the version built (the watermark is
    past that version) and adds nothing for a pair it named before: the pair stays one
    article short for good."""
    when = {"published_at": "2026-03-01T09:00:00"}
    log.add("a1", recorded_at="2026-03-01 10:00:00", title="John Smith visits Paris",
            mentions=[("John Smith", "PERSON"), ("Paris", "GPE")], **when)  # fmt: skip
    log.add("a2", recorded_at="2026-03-01 11:00:00", title="Acme Group in Berlin",
            mentions=[("Acme Group", "ORG"), ("Berlin", "GPE")], **when)  # fmt: skip
    dbt("build", log.db, project, "--full-refresh")
    log.add("a1", "article.revised", recorded_at="2026-03-02 10:00:00", title="John Smith leaves Paris",
            mentions=[("John Smith", "PERSON"), ("Paris", "GPE")], decision=("stay", "a1"), enrich=False,
            **when)  # fmt: skip
    dbt("run", log.db, project)
    log.enrich_pending()
    dbt("run", log.db, project)
    pairs = "SELECT entity_a, entity_b, article_count FROM marts.entity_pairs ORDER BY ALL"
    full = full_refresh_copy(log.db, project)
    assert query(log.db, pairs) == query(full, pairs)


def test_an_edited_seed_of_the_cleaning_rules_rebuilds_the_entity_models(
    log: Log, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cleaned mentions are appended once per article event: a demonym added to its
    seed (or any rule of theirs changed by an upgrade) would never reach the mentions
    cleaned before. `newsroom transform` rebuilds them in full when their rules changed."""
    monkeypatch.setattr(ner, "extractor_id", lambda: "test")  # the extractor Log writes
    log.add(
        "k1", recorded_at="2026-03-01 10:00:00", title="Kenyan runners win", mentions=[("Kenyan", "NORP")]
    )
    dbt("build", log.db, project, "--full-refresh")
    assert not _entity_models_changed(log.db, project)
    with (project / "seeds" / "demonyms.csv").open("a") as seed:
        seed.write("Kenyan,Kenya\n")
    assert _entity_models_changed(log.db, project)
    dbt("seed", log.db, project)
    dbt("build", log.db, project, "--full-refresh")
    assert not _entity_models_changed(log.db, project)
    assert query(log.db, "SELECT canonical_name, entity_type FROM marts.entities") == [("Kenya", "place")]


def test_a_kill_without_text_is_not_a_headline_change(log: Log, project: Path) -> None:
    """A kill notice that carries no text had shown as the headline changed to '', and the
    article published again under its old headline as a change from '': "every headline
    change today" (README) listed both."""
    log.add("k1", recorded_at="2026-03-01 09:00:00", title="Rembrandt drawing found")
    log.add("k1", "article.withdrawn", recorded_at="2026-03-02 09:00:00")
    log.add("k1", "article.revised", recorded_at="2026-03-03 09:00:00", title="Rembrandt drawing found",
            decision=("open", "k1"))  # fmt: skip
    dbt("build", log.db, project, "--full-refresh")
    changes = query(
        log.db,
        "SELECT version, title_changed, title_chars_removed, title_chars_added FROM marts.article_versions "
        "ORDER BY version",
    )
    assert changes == [(1, False, 0, 0), (2, False, 0, 0), (3, False, 0, 0)]


def test_an_override_whose_surface_differs_from_another_only_in_case_is_named_by_the_build(
    tmp_path: Path,
) -> None:
    """Overrides match a surface in any case: an editor's "NATO" row beside the curated "Nato"
    passed the seed's test (surfaces compared as written), and the build then failed on a
    model's test far from the cause. The seed's test names it."""
    project = private_project(tmp_path)
    log = Log(new_database(tmp_path / "newsroom.duckdb"))
    log.add("n1", recorded_at="2026-03-01 09:00:00", title="NATO meets", mentions=[("NATO", "ORG")])
    with (project / "seeds" / "entity_overrides.csv").open("a") as seed:
        seed.write("NATO,North Atlantic Treaty Organization,organisation,alias,the full name\n")
    report = run_dbt("build", log.db, "--full-refresh", project_dir=project)
    assert not report.success
    assert [failure for failure in report.failures if "entity_overrides" in failure], report.failures


def test_a_revision_redated_by_its_feed_does_not_hand_the_scoop_to_another_source(
    log: Log, project: Path
) -> None:
    """Wire A breaks the story at 09:00, wire B follows at 10:00; at 15:00 A's feed revises the
    article and, as many RSS feeds do, dates the revision in pubDate. The article was first
    published when its first version said: A broke the story (the current version's date
    had made it B, at 10:00)."""
    log.add("s1", source="wire-a", occurred_at="2026-03-01 09:00:00", recorded_at="2026-03-01 09:01:00",
            title="Dam bursts in the valley", published_at="2026-03-01T09:00:00")  # fmt: skip
    log.add("s2", source="wire-b", occurred_at="2026-03-01 10:00:00", recorded_at="2026-03-01 10:01:00",
            title="Valley dam bursts", published_at="2026-03-01T10:00:00", decision=("join", "s1"))  # fmt: skip
    log.add("s1", "article.revised", source="wire-a", occurred_at="2026-03-01 15:00:00", recorded_at="2026-03-01 15:01:00",
            title="Dam bursts in the valley, hundreds evacuated", published_at="2026-03-01T15:00:00",
            decision=("stay", "s1"))  # fmt: skip
    dbt("build", log.db, project, "--full-refresh")
    first = query(log.db, "SELECT first_source_id, first_published_at::varchar FROM marts.story_threads")
    published = query(log.db, "SELECT published_at::varchar FROM marts.articles WHERE article_id = 's1'")
    assert (first, published) == ([("wire-a", "2026-03-01 09:00:00")], [("2026-03-01 09:00:00",)])
