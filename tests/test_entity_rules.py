"""The rules applied after the models: names carried across particles, names typed by
their last word, everyday words that are not people, one person across middle names
and family names."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pytest

from ingestion._derive.ner import (
    joined_over_particles,
    load_model,
    nouns_not_people,
    places_missed,
    storms_not_people,
    word_kinds,
)
from ingestion._derive.transform import transform

from .test_hostile_entities import append_articles


def spans(text: str, *marked: tuple[str, str]) -> list[tuple[int, int, str]]:
    """(start, end, label) of each (surface, label), found in ``text`` in order."""
    found, position = [], 0
    for surface, label in marked:
        start = text.index(surface, position)
        found.append((start, start + len(surface), label))
        position = start + len(surface)
    return found


def surfaces(text: str, joined: list[tuple[int, int, str]]) -> list[tuple[str, str]]:
    return [(text[start:end], label) for start, end, label in joined]


@pytest.mark.parametrize(
    ("text", "model_said", "expected"),
    [
        (  # two mentions with particles between them are one, a person if either is
            "President Ursula von der Leyen spoke.",
            [("Ursula", "ORG"), ("Leyen", "PERSON")],
            [("Ursula von der Leyen", "PERSON")],
        ),
        (  # a person preceded by particles takes them
            "said von der Leyen on Monday",
            [("Leyen", "PERSON")],
            [("von der Leyen", "PERSON")],
        ),
        (  # particles and capitalised words after a mention are taken
            "at the Palais des Nations in Geneva",
            [("Palais", "PLACE"), ("Geneva", "PLACE")],
            [("Palais des Nations", "PLACE"), ("Geneva", "PLACE")],
        ),
        (  # particles a mention ends with are moved out, then joined
            "said Jean de la Fontaine.",
            [("Jean de la", "PERSON"), ("Fontaine", "ORG")],
            [("Jean de la Fontaine", "PERSON")],
        ),
        (  # a lowercase word after the particles stops the name; non-people keep their start
            "the Bank de facto and de Gaulle",
            [("Bank", "ORG")],
            [("Bank", "ORG")],
        ),
    ],
)
def test_mentions_are_carried_across_name_particles(
    text: str, model_said: list[tuple[str, str]], expected: list[tuple[str, str]]
) -> None:
    assert surfaces(text, joined_over_particles(spans(text, *model_said), text)) == expected


@pytest.mark.parametrize(
    ("text", "model_said", "expected"),
    [
        (  # a storm's name is not a person, in quotes or not; the storm word alone is no name
            "Sturm „Isolde“: 180.000 Haushalte in Irland ohne Strom",
            [("Sturm", "PERSON"), ("Isolde", "PERSON"), ("Irland", "PLACE")],
            [("Isolde", "EVENT"), ("Irland", "PLACE")],
        ),
        (
            "Storm Isolde leaves 180,000 without power; Hurricane Katrina's anniversary",
            [("Storm Isolde", "PERSON"), ("Hurricane Katrina", "PERSON")],
            [("Storm Isolde", "EVENT"), ("Hurricane Katrina", "EVENT")],
        ),
        (
            "Wegen des Sturms „Isolde“ fallen Flüge aus",
            [("Isolde", "PERSON")],
            [("Isolde", "EVENT")],
        ),
        (  # people stay people, a surname that is a storm word too included
            "Minister Andreas Sturm met Stormy Daniels",
            [("Andreas Sturm", "PERSON"), ("Stormy Daniels", "PERSON")],
            [("Andreas Sturm", "PERSON"), ("Stormy Daniels", "PERSON")],
        ),
    ],
)
def test_storms_named_like_people_are_not_people(
    text: str, model_said: list[tuple[str, str]], expected: list[tuple[str, str]]
) -> None:
    assert surfaces(text, storms_not_people(spans(text, *model_said), text)) == expected


def test_everyday_german_nouns_and_their_compounds_are_not_people() -> None:
    """The German model's own lexicon table says which words are everyday nouns."""
    text = "EZB vor Zinsentscheid: Stimme von Merz, Selenskyj und AKW Saporischschja"
    model_said = [
        ("Zinsentscheid", "PERSON"),  # unknown, but Zins + Entscheid (an everyday noun)
        ("Stimme", "PERSON"),  # an everyday noun ("voice")
        ("Merz", "PERSON"),  # a surname in the lexicon, and an everyday noun besides
        ("Selenskyj", "PERSON"),  # unknown, no noun inside
        ("AKW Saporischschja", "PERSON"),  # an abbreviation first: an organisation
    ]
    load_model("de")
    kept = nouns_not_people(spans(text, *model_said), text, word_kinds("de"))
    assert surfaces(text, kept) == [
        ("Merz", "PERSON"),
        ("Selenskyj", "PERSON"),
        ("AKW Saporischschja", "ORG"),
    ]


ARTICLES = [
    {
        "identity": "port-1",
        "title": "Rotterdam port strike",
        "body": (
            "Terminal operators said ships would wait. Forecasters expect more wind. "
            "Stena Line cancelled sailings. Rafael Mariano Grossi will brief delegates; "
            "Ursula von der Leyen welcomed the talks."
        ),
    },
    {
        "identity": "port-2",
        "title": "Grossi briefs delegates",
        "body": "Rafael Grossi said a pause would help. Von der Leyen agreed, von der Leyen said.",
    },
]


def test_the_rules_type_drop_and_resolve_names_in_the_marts(tmp_path: Path) -> None:
    db = tmp_path / "newsroom.duckdb"
    append_articles(db, ARTICLES)
    assert transform(db).success
    with duckdb.connect(str(db), read_only=True) as con:
        entities = dict(con.execute("SELECT canonical_name, entity_type FROM marts.entities").fetchall())
        grossi = con.execute(
            "SELECT DISTINCT entity_id FROM marts.entity_mentions WHERE surface LIKE '%Grossi%'"
        ).fetchall()
        leyen = con.execute(
            "SELECT DISTINCT entity_id FROM marts.entity_mentions WHERE surface ILIKE '%Leyen%'"
        ).fetchall()
    people = {name for name, kind in entities.items() if kind == "person"}
    assert not people & {"Terminal", "Forecasters"}, people
    assert entities.get("Stena Line", "organisation") == "organisation"
    assert len(grossi) == 1, "Rafael Mariano Grossi, Rafael Grossi and Grossi are one person"
    assert len(leyen) == 1, "Ursula von der Leyen and von der Leyen are one person"


def test_places_the_model_missed_are_found_in_time_linear_in_the_text() -> None:
    # A German text naming a place 40,000 times, half of them already spans: each stretch is
    # checked against the spans by two lookups, not by a pass over them all.
    text = "Berlin " * 40_000
    spans = [(at * 7, at * 7 + 6, "LOC") for at in range(0, 40_000, 2)]
    started = time.monotonic()
    found = places_missed(spans, text)
    assert time.monotonic() - started < 5
    assert len(found) == 20_000 and found[0] == (7, 13, "PLACE")
