"""Incremental entity and thread marts equal a full refresh, in the cases that reach
back into history: a lone surname that becomes ambiguous when a second person with
it appears (its old mentions move to another entity), an editor ignoring a name
(an article left with no entity at all), a revision dropping a name, a withdrawal,
a thread merged into another, an article moving threads; and revisions that keep
their publication time, whose pairs of entities are added to, not recounted."""

from __future__ import annotations

import hashlib
import random
import shutil
from pathlib import Path

import duckdb
import orjson
import pytest

from ingestion._derive import threads
from ingestion._derive.entities import SCHEMA_SQL as ENTITIES_SCHEMA_SQL
from ingestion._derive.places import refresh_places
from ingestion._derive.threads import SCHEMA_SQL as THREADS_SCHEMA_SQL
from ingestion._derive.threads import assign_threads
from ingestion._derive.transform import DBT_PROJECT, run_dbt
from ingestion._log.store import SCHEMA_SQL

from .test_invariants_demo import derived_tables, differences

# (article, version, event type, day, title, mentions as (surface, label), thread decision)
# fmt: off
FIRST_RUN = [
    ("a1", 1, "article.published", 1, "John Smith visits Paris", [("John Smith", "PERSON"), ("Paris", "GPE")], ("open", "a1")),
    ("a2", 1, "article.published", 1, "Smith speaks", [("Smith", "PERSON")], ("join", "a1")),
    ("a3", 1, "article.published", 2, "Acme Group in Paris", [("Acme Group", "ORG"), ("Paris", "GPE")], ("open", "a3")),
    ("a4", 1, "article.published", 2, "Paris and Acme Group", [("Paris", "GPE"), ("Acme Group", "ORG")], ("join", "a3")),
    ("a5", 1, "article.published", 3, "Berlin weather", [("Berlin", "GPE")], ("open", "a5")),
    ("a6", 1, "article.published", 3, "Acme Group results", [("Acme Group", "ORG")], ("open", "a6")),
    # never touched again: only the new Jane Smith changes what its "Smith" means
    ("a8", 1, "article.published", 3, "Smith again", [("Smith", "PERSON")], ("open", "a8")),
    ("a9", 1, "article.published", 2, "Rome and Madrid talks", [("Rome", "GPE"), ("Madrid", "GPE")], ("open", "a9")),
    ("a10", 1, "article.published", 2, "Rome, Madrid and Lisbon", [("Rome", "GPE"), ("Madrid", "GPE"), ("Lisbon", "GPE")], ("open", "a10")),
]
SECOND_RUN = [
    ("a7", 1, "article.published", 4, "Jane Smith in Berlin", [("Jane Smith", "PERSON"), ("Berlin", "GPE")], ("join", "a5")),
    ("a3", 2, "article.revised", 4, "Acme Group expands", [("Acme Group", "ORG")], ("stay", "a3")),
    ("a4", 2, "article.withdrawn", 4, "", [], ("leave", "a3")),
    ("a2", 2, "article.revised", 4, "Smith speaks in Berlin", [("Smith", "PERSON"), ("Berlin", "GPE")], ("move", "a5")),
    # revised with their publication time kept: a9 names Lisbon too, a10 no longer Madrid
    ("a9", 2, "article.revised", 4, "Rome, Madrid and Lisbon talks", [("Rome", "GPE"), ("Madrid", "GPE"), ("Lisbon", "GPE")], ("stay", "a9")),
    ("a10", 2, "article.revised", 4, "Rome and Lisbon", [("Rome", "GPE"), ("Lisbon", "GPE")], ("stay", "a10")),
]
# fmt: on
# The threader found that a5's story is a1's.
SECOND_RUN_MERGES = [("a5", "a1")]
IGNORED = "Acme Group"
#: Articles whose every version says when it was published (day of March).
PUBLISHED = {"a9": 2, "a10": 2}


def store_title_mentions(
    con: duckdb.DuckDBPyConnection, seq: int, article: str, version: int, title: str, mentions: list
) -> None:
    """What entity extraction stores for a version's title: its text (once) and mentions."""
    if not title:
        return
    text_hash = hashlib.sha256(title.encode()).hexdigest()
    con.execute(
        "INSERT INTO enrich.field_texts VALUES (?, ?, ?, 'title', ?)", [seq, article, version, text_hash]
    )
    if con.execute("SELECT count(*) FROM enrich.texts WHERE text_hash = ?", [text_hash]).fetchall()[0][0]:
        return  # each text and its mentions once, as entity extraction stores them
    con.execute(
        "INSERT INTO enrich.texts VALUES (?, 'test', 'en', 'extracted', ?, ?, NULL)",
        [text_hash, len(title.split()), len(mentions)],
    )
    for index, (surface, label) in enumerate(mentions):
        start = title.index(surface)
        con.execute(
            "INSERT INTO enrich.mentions VALUES (?, ?, ?, ?, ?, ?)",
            [text_hash, index, start, start + len(surface), surface, label],
        )


def append_run(con: duckdb.DuckDBPyConnection, events: list, merges: list) -> None:
    seq = con.execute("SELECT coalesce(max(event_seq), 0) FROM raw.events").fetchall()[0][0]
    for article, version, event_type, day, title, mentions, (action, thread) in events:
        seq += 1
        at = f"2026-03-{day:02d} 12:00:00"
        fields = {"identity": article, "title": title, "language": "en"}
        if article in PUBLISHED:
            fields["published_at"] = f"2026-03-{PUBLISHED[article]:02d} 09:00:00"
        payload = orjson.dumps(fields).decode()
        con.execute(
            "INSERT INTO raw.events VALUES (?, ?, ?, ?, ?, 'src', ?, ?, 'test', ?, ?, ?, '', '')",
            [seq, f"{article}#{version}", event_type, article, version, at, at, title, payload, title],
        )
        con.execute(
            "INSERT INTO enrich.thread_assignments VALUES (?, ?, ?, ?, ?, 0.5, NULL, ?, 'test', NULL)",
            [seq, article, version, action, thread, at],
        )
        store_title_mentions(con, seq, article, version, title, mentions)
    for thread, into in merges:
        con.execute(
            "INSERT INTO enrich.thread_merges VALUES (?, ?, ?, TIMESTAMP '2026-03-04 12:00:00', 'test')",
            [seq, thread, into],
        )


def dbt(command: str, db: Path, project: Path, *extra: str) -> None:
    report = run_dbt(command, db, *extra, project_dir=project)
    assert report.success, report.failures


def private_project(folder: Path) -> Path:
    """A copy of the dbt project in ``folder``, so that a test can edit its overrides seed."""
    target = folder / "dbt_project"
    shutil.copytree(DBT_PROJECT, target, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    return target


def new_database(db: Path) -> Path:
    """An empty working database with the tables the entities and threads steps write."""
    with duckdb.connect(str(db)) as con:
        for schema in (SCHEMA_SQL, ENTITIES_SCHEMA_SQL, THREADS_SCHEMA_SQL):
            con.execute(schema)
        refresh_places(con)
    return db


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the dbt project, so that the test can edit its overrides seed."""
    return private_project(tmp_path_factory.mktemp("dbt"))


@pytest.fixture(scope="module")
def incremental_and_full(project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    db = new_database(tmp_path_factory.mktemp("incremental") / "newsroom.duckdb")
    with duckdb.connect(str(db)) as con:
        append_run(con, FIRST_RUN, [])
    dbt("build", db, project, "--full-refresh")
    with duckdb.connect(str(db)) as con:
        append_run(con, SECOND_RUN, SECOND_RUN_MERGES)
    with (project / "seeds" / "entity_overrides.csv").open("a") as seed:
        seed.write(f"{IGNORED},,,ignore,not an entity for this test\n")
    dbt("seed", db, project)
    dbt("run", db, project)
    full = db.parent / "full.duckdb"
    shutil.copy(db, full)
    dbt("run", full, project, "--full-refresh")
    return db, full


def test_the_second_run_reaches_back_into_history(incremental_and_full: tuple[Path, Path]) -> None:
    incremental, _ = incremental_and_full
    with duckdb.connect(str(incremental), read_only=True) as con:
        smith_entities = con.execute(
            "SELECT count(DISTINCT entity_id) FROM marts.entity_mentions WHERE name LIKE '%Smith'"
        ).fetchall()[0][0]
        ignored = con.execute(
            "SELECT count(*) FROM marts.entity_mentions WHERE name = ?", [IGNORED]
        ).fetchall()
        a5 = con.execute(
            "SELECT status, merged_into FROM marts.story_threads WHERE thread_id = 'a5'"
        ).fetchall()
        a8 = con.execute(
            "SELECT e.canonical_name FROM marts.entity_mentions m JOIN marts.entities e USING (entity_id) "
            "WHERE m.article_id = 'a8'"
        ).fetchall()
        pairs = con.execute(
            "SELECT least(a.canonical_name, b.canonical_name), greatest(a.canonical_name, b.canonical_name), "
            "p.article_count FROM marts.entity_pairs AS p "
            "JOIN marts.entities AS a ON a.entity_id = p.entity_a JOIN marts.entities AS b ON b.entity_id = p.entity_b "
            "WHERE a.canonical_name IN ('Rome', 'Madrid', 'Lisbon') AND b.canonical_name IN ('Rome', 'Madrid', 'Lisbon') "
            "ORDER BY 1, 2"
        ).fetchall()
    # John Smith, Jane Smith, and the lone "Smith" that no longer names one person
    assert smith_entities == 3
    assert a8 == [("Smith",)]
    assert ignored == [(0,)]
    assert a5 == [("merged", "a1")]
    assert pairs == [("Lisbon", "Madrid", 1), ("Lisbon", "Rome", 2), ("Madrid", "Rome", 1)]


def test_incremental_equals_full_refresh(incremental_and_full: tuple[Path, Path]) -> None:
    incremental, full = incremental_and_full
    assert differences(derived_tables(full), derived_tables(incremental)) == []


def test_an_override_edited_without_new_events_reaches_every_mart(tmp_path: Path) -> None:
    """An editor's change to entity_overrides built with no new events, after a build
    whose events brought no new name: the marts may hold the log's last event as their
    watermark, so the change is stamped above it (int_log_positions_built tells the
    builds apart) and reaches the mentions, the entities' names and the threads."""
    project = private_project(tmp_path)
    db = new_database(tmp_path / "newsroom.duckdb")
    with duckdb.connect(str(db)) as con:
        append_run(con, FIRST_RUN, [])
    dbt("build", db, project, "--full-refresh")
    with duckdb.connect(str(db)) as con:  # only names seen before
        append_run(
            con, [("a11", 1, "article.published", 4, "Paris again", [("Paris", "GPE")], ("join", "a1"))], []
        )
    dbt("run", db, project)
    with (project / "seeds" / "entity_overrides.csv").open("a") as seed:
        seed.write("Paris,,,ignore,not an entity for this test\n")
        seed.write("Acme Group,ACME Group,,alias,the same entity under the name it writes itself\n")
    dbt("seed", db, project)
    dbt("run", db, project)
    with duckdb.connect(str(db), read_only=True) as con:
        paris = con.execute("SELECT count(*) FROM marts.entity_mentions WHERE name = 'Paris'").fetchall()
        acme = con.execute(
            "SELECT canonical_name FROM marts.entities WHERE canonical_name ILIKE 'acme%'"
        ).fetchall()
    assert paris == [(0,)]
    assert acme == [("ACME Group",)]
    full = tmp_path / "full.duckdb"
    shutil.copy(db, full)
    dbt("run", full, project, "--full-refresh")
    assert differences(derived_tables(full), derived_tables(db)) == []


def test_a_new_threading_rule_builds_the_thread_marts_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new rule threads every event again under the event_seqs the marts were built
    through: built incrementally, they would keep the old rule's threads."""
    project = private_project(tmp_path)
    db = new_database(tmp_path / "newsroom.duckdb")
    with duckdb.connect(str(db)) as con:
        append_run(con, FIRST_RUN, [])
    dbt("build", db, project, "--full-refresh")
    first_run_threads = (
        "SELECT thread_id, article_id FROM marts.thread_articles WHERE article_id IN ? ORDER BY ALL"
    )
    first_run = [[article for article, *_ in FIRST_RUN]]
    with duckdb.connect(str(db)) as con:
        append_run(con, SECOND_RUN, SECOND_RUN_MERGES)
        before = con.execute(first_run_threads, first_run).fetchall()
    monkeypatch.setattr(threads, "ALGORITHM", "a-newer-rule")
    assert assign_threads(db).articles == len(FIRST_RUN) + len(SECOND_RUN)
    dbt("run", db, project)
    full = tmp_path / "full.duckdb"
    shutil.copy(db, full)
    dbt("run", full, project, "--full-refresh")
    with duckdb.connect(str(db), read_only=True) as con:
        after = con.execute(first_run_threads, first_run).fetchall()
    assert after != before  # the new rule threads the first run otherwise: the test can tell
    assert differences(derived_tables(full), derived_tables(db)) == []


# Names that make resolution move: lone surnames shared by several people, a middle
# name, a German place name; and the overrides an editor may add or take back.
RANDOM_NAMES = [
    ("John Smith", "PERSON"), ("Jane Smith", "PERSON"), ("Smith", "PERSON"), ("Anna Berg", "PERSON"),
    ("Berg", "PERSON"), ("Paul Maria Berg", "PERSON"), ("Paris", "GPE"), ("Berlin", "GPE"), ("Genf", "GPE"),
    ("Acme Group", "ORG"), ("Acme", "ORG"), ("Leyen", "PERSON"), ("Ursula von der Leyen", "PERSON"),
]  # fmt: skip
RANDOM_OVERRIDES = [
    "Smith,,,split,x", "Berg,,,ignore,x", "Acme,Acme Group,,alias,x", "Paris,,,ignore,x",
    "Genf,Geneva,place,alias,x", "Jane Smith,Janet Smith,,alias,x", "Leyen,,organisation,alias,x",
]  # fmt: skip


@pytest.mark.parametrize("seed", [11, 13])
def test_random_builds_equal_a_full_refresh(seed: int, tmp_path: Path) -> None:
    """Eight builds of random new articles, revisions (some moving thread), withdrawals,
    merges and override edits, some builds with no new events at all: the marts built
    one after another equal one full refresh at the end. (Seeds 11 and 13 once found
    counts taken twice from a withdrawal the last build had counted already.)"""
    rng = random.Random(seed)
    project = private_project(tmp_path)
    seed_file = project / "seeds" / "entity_overrides.csv"
    curated = seed_file.read_text()
    db = new_database(tmp_path / "newsroom.duckdb")
    articles: dict[str, list] = {}  # article -> [version, thread, live]
    threads: list[str] = []
    merged: set[str] = set()
    overrides: list[str] = []
    for build in range(8):
        events, merges = [], []
        for _ in range(rng.choice([0, 0, 1, 2, 3])):
            article = f"a{len(articles) + 1}"
            names = rng.sample(RANDOM_NAMES, rng.randint(1, 3))
            open_threads = [t for t in threads if t not in merged]
            if open_threads and rng.random() < 0.5:
                decision = ("join", rng.choice(open_threads))
            else:
                decision = ("open", article)
                threads.append(article)
            articles[article] = [1, decision[1], True]
            title = " and ".join(surface for surface, _ in names) + " meet"
            events.append((article, 1, "article.published", 1 + build, title, names, decision))
        live = [a for a, (_, _, alive) in articles.items() if alive and all(e[0] != a for e in events)]
        for article in rng.sample(live, min(len(live), rng.choice([0, 0, 1, 2]))):
            state = articles[article]
            state[0] += 1
            if rng.random() < 0.25:
                state[2] = False
                events.append(
                    (article, state[0], "article.withdrawn", 1 + build, "", [], ("leave", state[1]))
                )
                continue
            names = rng.sample(RANDOM_NAMES, rng.randint(0, 3))
            title = (
                " and ".join(surface for surface, _ in names) + " again" if names else "Nothing named here"
            )
            others = [t for t in threads if t not in merged and t != state[1]]
            if others and rng.random() < 0.3:
                state[1] = rng.choice(others)
                decision = ("move", state[1])
            else:
                decision = ("stay", state[1])
            events.append((article, state[0], "article.revised", 1 + build, title, names, decision))
        open_threads = [t for t in threads if t not in merged]
        if len(open_threads) >= 2 and events and rng.random() < 0.2:
            older, younger = sorted(rng.sample(open_threads, 2), key=lambda t: int(t[1:]))
            merges.append((younger, older))
            merged.add(younger)
            for state in articles.values():
                if state[1] == younger:
                    state[1] = older
        edited = rng.random() < 0.35
        if edited:
            if overrides and rng.random() < 0.3:
                overrides.remove(rng.choice(overrides))
            elif (row := rng.choice(RANDOM_OVERRIDES)) not in overrides:
                overrides.append(row)
            seed_file.write_text(curated + "".join(f"{row}\n" for row in overrides))
        if events:
            with duckdb.connect(str(db)) as con:
                append_run(con, events, merges)
        if build == 0:
            dbt("build", db, project, "--full-refresh")
            continue
        if edited:
            dbt("seed", db, project)
        dbt("run", db, project)
    full = tmp_path / "full.duckdb"
    shutil.copy(db, full)
    dbt("run", full, project, "--full-refresh")
    assert differences(derived_tables(full), derived_tables(db)) == []


def test_an_article_withdrawn_with_its_text_and_published_again_counts_as_a_full_refresh(
    tmp_path: Path,
) -> None:
    """A wire's kill keeps the article's text (its mentions are the withdrawal version's),
    which counted for no one: a later version must not take those counts away again."""
    project = private_project(tmp_path)
    db = new_database(tmp_path / "newsroom.duckdb")
    talks = [("Olaf Scholz", "PERSON"), ("Donald Tusk", "PERSON"), ("Warsaw", "GPE")]
    runs = [
        [("k1", 1, "article.published", 1, "Olaf Scholz and Donald Tusk meet in Warsaw", talks, ("open", "k1"))],
        [("k1", 2, "article.withdrawn", 2, "Olaf Scholz and Donald Tusk meet in Warsaw", talks, ("leave", "k1"))],
        [("k1", 3, "article.revised", 3, "Olaf Scholz meets Emmanuel Macron",
          [("Olaf Scholz", "PERSON"), ("Emmanuel Macron", "PERSON")], ("open", "k1"))],
    ]  # fmt: skip
    for number, events in enumerate(runs):
        with duckdb.connect(str(db)) as con:
            append_run(con, events, [])
        dbt("build", db, project, *(["--full-refresh"] if number == 0 else []))
    full = tmp_path / "full.duckdb"
    shutil.copy(db, full)
    dbt("run", full, project, "--full-refresh")
    assert differences(derived_tables(full), derived_tables(db)) == []
    with duckdb.connect(str(db), read_only=True) as con:
        counts = dict(con.execute("SELECT canonical_name, article_count FROM marts.entities").fetchall())
    assert counts == {"Olaf Scholz": 1, "Emmanuel Macron": 1, "Donald Tusk": 0, "Warsaw": 0}
