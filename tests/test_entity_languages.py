"""Each article is read in its language, by a model of ours; a damaged model is a
clear error before anything is written."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from ingestion._derive import entities, ner
from ingestion._derive.entities import EntityReport, extract_entities
from ingestion._derive.ner import article_language
from ingestion._derive.places import place_rows
from ingestion._derive.transform import transform
from ingestion._log import store
from ingestion.exceptions import EntityExtractionError

from .test_hostile_entities import append_articles

GERMAN = (
    "Der ukrainische Präsident Wolodymyr Selenskyj ist am Montag zu Gesprächen über einen "
    "Gefangenenaustausch nach Genf gereist. Bundeskanzler Friedrich Merz telefonierte zuvor mit ihm."
)
ENGLISH = (
    "Ukraine's president Volodymyr Zelensky travelled to Geneva on Monday for talks on a prisoner "
    "exchange. Chancellor Friedrich Merz spoke with him by phone beforehand."
)


def append_one_article_in_each_language(db: Path) -> None:
    append_articles(
        db,
        [
            {"identity": "de-1", "title": "Selenskyj reist nach Genf", "body": GERMAN, "language": "de"},
            {"identity": "en-1", "title": "Zelensky travels to Geneva", "body": ENGLISH, "language": "en"},
        ],
    )


@pytest.mark.parametrize(
    ("text", "declared", "expected"),
    [
        (GERMAN, "en", "de"),  # the words win over a wrong declaration
        (ENGLISH, "de", "en"),
        (GERMAN, None, "de"),
        ("Zelensky travels to Geneva for UN talks", "en", "en"),  # too short to be sure
        ("Zelensky travels to Geneva for UN talks", None, "en"),  # never Nigerian Pidgin
        ("Selenskyj reist zu UN-Gesprächen nach Genf", None, "de"),  # unsure, but a language we read
        ("", "de-CH", "de"),
        ("", None, "en"),
    ],
)
def test_an_article_is_read_in_the_language_its_words_or_its_source_give(
    text: str, declared: str | None, expected: str
) -> None:
    assert article_language(text, declared) == expected


def test_english_and_german_articles_get_mentions_from_their_own_model(tmp_path: Path) -> None:
    db = tmp_path / "newsroom.duckdb"
    append_one_article_in_each_language(db)
    progress: list[tuple[int, int]] = []
    report = extract_entities(db, n_process=1, on_progress=lambda *read: progress.append(read))
    assert (report.texts_new, report.texts_unsupported, report.texts_failed) == (4, 0, 0)
    assert progress == [(1, 2), (2, 2)]  # a batch of each language's texts: half the versions each
    with duckdb.connect(str(db), read_only=True) as con:
        found = con.execute(
            "SELECT t.language, m.surface, m.label FROM enrich.mentions m JOIN enrich.texts t USING (text_hash)"
        ).fetchall()
    assert ("de", "Selenskyj", "PERSON") in found or ("de", "Wolodymyr Selenskyj", "PERSON") in found
    assert ("en", "Volodymyr Zelensky", "PERSON") in found
    assert {language for language, _, _ in found} == {"de", "en"}


ENRICH_TABLES = ("texts", "mentions", "field_texts")


def _enrich(db: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {table: con.execute(f"FROM enrich.{table} ORDER BY ALL").fetchall() for table in ENRICH_TABLES}


def test_a_run_in_parts_records_what_one_part_does_and_one_stopped_part_way_keeps_its_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole, parts = tmp_path / "whole" / "newsroom.duckdb", tmp_path / "parts" / "newsroom.duckdb"
    append_one_article_in_each_language(whole)
    extract_entities(whole, n_process=1)

    monkeypatch.setattr(store, "PART_EVENTS", 1)  # an article version a part
    append_one_article_in_each_language(parts)
    calls = 0
    extract = entities.extract

    def fail_second_part(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise EntityExtractionError("the model fell over")
        return extract(*args, **kwargs)

    monkeypatch.setattr(entities, "extract", fail_second_part)
    with pytest.raises(EntityExtractionError) as stopped:
        extract_entities(parts, n_process=1)
    first_event = _enrich(whole)["field_texts"][0][0]
    assert str(stopped.value) == (
        f"the model fell over; this run recorded the article versions up to event #{first_event}; "
        "the next starts there"
    )
    assert {row[0] for row in _enrich(parts)["field_texts"]} == {first_event}  # the first part's

    progress: list[tuple[int, int]] = []
    report = extract_entities(parts, n_process=1, on_progress=lambda *done: progress.append(done))
    assert (report.events, report.texts_new, progress) == (1, 2, [(1, 1)])
    assert _enrich(parts) == _enrich(whole)
    with duckdb.connect(str(parts), read_only=True) as con:
        assert con.execute("SELECT texts FROM enrich.batches ORDER BY last_event_seq").fetchall() == [
            (2,),
            (2,),
        ]


def test_a_run_in_parts_starts_its_worker_processes_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "PART_EVENTS", 1)
    started: list[int] = []
    pool = entities.WorkerPool
    monkeypatch.setattr(entities, "WorkerPool", lambda size: started.append(size) or pool(size))
    db = tmp_path / "newsroom.duckdb"
    body = " ".join([ENGLISH] * 800)  # past BATCH_CHARS: each part is read in two batches, by two workers
    append_articles(
        db,
        [
            {"identity": f"en-{n}", "title": f"Zelensky in Geneva, day {n}", "body": f"Day {n}. {body}"}
            for n in range(3)
        ],
    )
    assert extract_entities(db, n_process=2).texts_new == 6
    assert started == [2]


def test_a_damaged_model_stops_the_run_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "ner_models"
    shutil.copytree(ner.MODELS_DIR, models)
    (models / "en" / "ner" / "model").write_bytes(b"not a model")
    monkeypatch.setattr(ner, "MODELS_DIR", models)
    monkeypatch.setattr(ner, "_MODELS", {})
    db = tmp_path / "newsroom.duckdb"
    append_articles(db, [{"identity": "en-1", "title": "Zelensky travels to Geneva", "body": ENGLISH}])

    with pytest.raises(
        EntityExtractionError, match=r"the en entity model newsroom_ner_en .* cannot be loaded"
    ):
        extract_entities(db, n_process=1)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM enrich.texts").fetchall() == [(0,)]
        assert con.execute("SELECT count(*) FROM enrich.field_texts").fetchall() == [(0,)]


def test_a_missing_model_names_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ner, "MODELS_DIR", tmp_path / "nowhere")
    ner.model_meta.cache_clear()
    try:
        with pytest.raises(EntityExtractionError, match="the en entity model is missing or damaged"):
            ner.extractor_id()
    finally:
        ner.model_meta.cache_clear()


def test_new_models_read_everything_again_and_the_next_build_is_a_full_refresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "newsroom.duckdb"
    append_one_article_in_each_language(db)
    assert transform(db).success
    before = _mentions_by_extractor(db)
    assert set(before) == {ner.extractor_id()}

    upgraded = "ner:en=newer-model;de=newer-model"
    monkeypatch.setattr(entities, "extractor_id", lambda: upgraded)
    monkeypatch.setattr(ner, "extractor_id", lambda: upgraded)
    assert transform(db).success
    assert "rebuilding in full" in capsys.readouterr().out
    after = _mentions_by_extractor(db)
    # Only the new extractor's rows, as many as before (the same models really ran).
    assert after == {upgraded: next(iter(before.values()))}
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT DISTINCT extractor FROM enrich.texts").fetchall() == [(upgraded,)]
        assert con.execute("SELECT DISTINCT extractor FROM enrich.batches").fetchall() == [(upgraded,)]


def test_mentions_cleaned_by_a_version_that_kept_their_name_are_built_on_incrementally(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The cleaned mentions lost their unread ``name`` column: a database built with it is
    brought up to the model before the next incremental build, which would refuse it."""
    db = tmp_path / "newsroom.duckdb"
    append_articles(db, [{"identity": "en-1", "title": "Zelensky travels to Geneva", "body": ENGLISH}])
    assert transform(db).success
    with duckdb.connect(str(db)) as con:  # as an older version built it
        con.execute("ALTER TABLE intermediate.int_entity_mentions_cleaned ADD COLUMN name VARCHAR")
    append_articles(db, [{"identity": "en-2", "title": "Merz calls Zelensky", "body": ""}])
    capsys.readouterr()
    assert transform(db).success
    assert "rebuilding in full" not in capsys.readouterr().out
    with duckdb.connect(str(db), read_only=True) as con:
        columns = {
            row[0] for row in con.execute("DESCRIBE intermediate.int_entity_mentions_cleaned").fetchall()
        }
        titles = con.execute(
            "SELECT DISTINCT article_id FROM marts.entity_mentions WHERE field = 'title'"
        ).fetchall()
    assert "name" not in columns and "linked_name" in columns
    assert len(titles) == 2  # the new article's headline names people too


def _mentions_by_extractor(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT extractor, count(*) FROM intermediate.int_entity_mentions_cleaned GROUP BY ALL"
        ).fetchall()
    return dict(rows)


def test_places_are_typed_and_resolved_by_the_gazetteer_across_languages(tmp_path: Path) -> None:
    db = tmp_path / "newsroom.duckdb"
    append_one_article_in_each_language(db)
    assert transform(db).success
    with duckdb.connect(str(db), read_only=True) as con:
        entities = {
            name: (entity_type, set(aliases))
            for name, entity_type, aliases in con.execute(
                "SELECT canonical_name, entity_type, aliases FROM marts.entities"
            ).fetchall()
        }
        places = con.execute("SELECT count(*) FROM enrich.places WHERE name = 'Genf'").fetchall()
    assert places == [(1,)]
    assert entities["Geneva"][0] == "place"
    assert {"Genf", "Geneva"} <= entities["Geneva"][1]  # the German spelling is the same city
    assert entities["Volodymyr Zelensky"][0] == "person"
    assert (
        "Selenskyj" in entities["Volodymyr Zelensky"][1]
        or "Wolodymyr Selenskyj" in entities["Volodymyr Zelensky"][1]
    )


def extract_one_article(tmp_path: Path, language: str, title: str, body: str) -> tuple[Path, EntityReport]:
    """A database with one article in ``language``, and the report of extracting it."""
    db = tmp_path / "newsroom.duckdb"
    append_articles(db, [{"identity": f"{language}-1", "title": title, "body": body, "language": language}])
    return db, extract_entities(db, n_process=1)


def test_french_articles_are_read_by_the_french_pipeline(tmp_path: Path) -> None:
    db, report = extract_one_article(
        tmp_path,
        "fr",
        "Zelensky à Genève",
        "Le président ukrainien Volodymyr Zelensky est arrivé lundi à Genève pour des pourparlers "
        "sur un échange de prisonniers, a annoncé le ministère suisse des Affaires étrangères.",
    )
    assert (report.texts_new, report.texts_unsupported) == (2, 0)
    with duckdb.connect(str(db), read_only=True) as con:
        found = set(
            con.execute(
                "SELECT t.language, m.surface, m.label FROM enrich.mentions m JOIN enrich.texts t USING (text_hash)"
            ).fetchall()
        )
    assert {("fr", "Volodymyr Zelensky", "PERSON"), ("fr", "Genève", "PLACE")} <= found


def test_a_language_without_a_model_is_marked_never_read_by_another(tmp_path: Path) -> None:
    db, report = extract_one_article(
        tmp_path,
        "es",
        "Zelensky en Ginebra",
        "El presidente ucraniano Volodymyr Zelensky llegó el lunes a Ginebra para unas conversaciones "
        "sobre un intercambio de prisioneros, según anunció el Ministerio de Asuntos Exteriores suizo.",
    )
    assert (report.texts_new, report.texts_unsupported, report.mentions) == (2, 2, 0)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT DISTINCT language, status FROM enrich.texts").fetchall() == [
            ("es", "unsupported_language")
        ]


def test_german_text_gets_well_known_places_the_model_missed_but_never_a_function_word() -> None:
    text = "Dabei fiel in Düsseldorf der Strom aus."  # some city also goes by "Dabei"
    assert ner.places_missed([], text) == [(14, 24, "PLACE")]


def test_a_citys_other_names_that_are_common_english_words_are_not_places() -> None:
    places = {(name, place) for name, place, kind, _, _ in place_rows() if kind == "city"}
    names = {name for name, _ in places}
    # Once nicknames or literal translations of a city's name: in the news, a company, a word, a building.
    assert not {"Google", "Soul", "Drug", "Rest"} & names
    assert ("White House", "Casablanca") not in places
    # Other names that share a word with the city's own, or are not English words, stay.
    assert {("New York", "New York City"), ("Genf", "Geneva"), ("München", "Munich")} <= places
