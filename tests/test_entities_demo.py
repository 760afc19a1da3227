"""What a journalist sees of entities in the demo: the people chart lists people, the
places chart places, one Zelensky across English and German, and the German feed's
people and places found (hand-labelled below)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

#: Every person the demo's feeds name, in text or bylines (read from the bundled feeds).
DEMO_PEOPLE = {
    "Volodymyr Zelensky", "António Guterres", "Christine Lagarde", "Rafael Grossi", "Ignazio Cassis",
    "Micheál Martin", "Sanne Vermeulen", "Ursula von der Leyen", "Friedrich Merz", "Niamh Carraway",
    "Rembrandt van Rijn", "Katrin Vogel", "Lena Hoffmann", "Claire Vandenberghe", "Hannah Kowalski",
    "Ana Ferreira", "Lotte Jansen", "Jonas Lindqvist", "Priya Nair", "Olena Marchuk", "Jan Becker",
    "Pieter de Graaf", "Eleanor Whitcombe", "Ciaran Doyle", "Aoife Kearney", "Ruth Calloway",
    "Marcus Feld", "Javier Olmedo", "Daniel Osei", "Martina Lindner", "Stefan Richter",
}  # fmt: skip

#: The people and places of the German feed's current articles, by title and field:
#: (surface, field, entity type), labelled by hand.
GERMAN_GOLD = {
    "Selenskyj zu UN-Gesprächen in Genf eingetroffen": [
        ("Selenskyj", "title", "person"), ("Genf", "title", "place"),
        ("Wolodymyr Selenskyj", "summary", "person"), ("Genf", "summary", "place"),
        ("Saporischschja", "summary", "place"),
    ],
    "Sturm „Isolde“: 180.000 Haushalte in Irland ohne Strom": [
        ("Irland", "title", "place"), ("Irland", "summary", "place"), ("Dublin", "summary", "place"),
        ("Düsseldorf", "summary", "place"), ("Köln/Bonn", "summary", "place"),
    ],
    "Rheinpegel in Köln steigt nach Regenfällen leicht an": [
        ("Köln", "title", "place"), ("Deutschlands", "summary", "place"), ("Rhein", "summary", "place"),
        ("Köln", "summary", "place"),
    ],
    "EZB vor Zinsentscheid: Ökonomen erwarten keine Änderung": [("Christine Lagarde", "summary", "person")],
    "Düsseldorf: Rheinuferpromenade ab April teilweise gesperrt": [
        ("Düsseldorf", "title", "place"), ("Rheinuferpromenade", "title", "place"),
        ("Rheinuferpromenade", "summary", "place"),
    ],
    "Merz telefoniert vor Genfer Treffen mit Selenskyj": [
        ("Merz", "title", "person"), ("Selenskyj", "title", "person"),
        ("Friedrich Merz", "summary", "person"), ("Wolodymyr Selenskyj", "summary", "person"),
        ("Deutschland", "summary", "place"),
    ],
    "Kölner Dom: Gerüst am Nordturm wird abgebaut": [
        ("Kölner Dom", "title", "place"), ("Kölner Doms", "summary", "place"),
    ],
    "Genfer Gespräche begonnen: Gefangenenaustausch und AKW Saporischschja auf der Agenda": [
        ("Saporischschja", "title", "place"), ("Genf", "summary", "place"), ("Kiew", "summary", "place"),
        ("Moskau", "summary", "place"), ("António Guterres", "summary", "person"),
    ],
    "Sturm „Isolde“: Flüge von Düsseldorf nach Dublin gestrichen": [
        ("Düsseldorf", "title", "place"), ("Dublin", "title", "place"),
        ("Düsseldorf", "summary", "place"), ("Dublin", "summary", "place"),
    ],
    "Hafenstreik in Rotterdam: Duisburger Hafen rechnet mit Verzögerungen": [
        ("Rotterdam", "title", "place"), ("Rhein", "summary", "place"), ("Ruhr", "summary", "place"),
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def demo_con(demo_data_dir: Path):
    with duckdb.connect(str(demo_data_dir / "newsroom.duckdb"), read_only=True) as con:
        yield con


def top(con, entity_type: str, n: int = 10) -> list[str]:
    return [
        name
        for (name,) in con.execute(
            """
            SELECT canonical_name FROM marts.entities WHERE entity_type = ?
            ORDER BY mention_count DESC, canonical_name LIMIT ?
            """,
            [entity_type, n],
        ).fetchall()
    ]


def test_the_people_chart_lists_people(demo_con) -> None:
    people = top(demo_con, "person")
    assert people[:3] == ["Volodymyr Zelensky", "António Guterres", "Christine Lagarde"]
    assert set(people) <= DEMO_PEOPLE, set(people) - DEMO_PEOPLE


def test_the_places_chart_lists_places(demo_con) -> None:
    places = top(demo_con, "place")
    assert not set(places) & DEMO_PEOPLE
    assert {"Geneva", "Ukraine", "Rotterdam", "Ireland", "Zaporizhzhia"} <= set(places)


def test_zelensky_is_one_person_in_english_and_german(demo_con) -> None:
    spellings = demo_con.execute(
        """
        SELECT m.surface, count(DISTINCT m.entity_id) OVER () FROM marts.entity_mentions m
        JOIN marts.entities e USING (entity_id) WHERE e.canonical_name = 'Volodymyr Zelensky'
        """
    ).fetchall()
    assert {"Zelensky", "Selenskyj", "Wolodymyr Selenskyj"} <= {surface for surface, _ in spellings}
    assert {ids for _, ids in spellings} == {1}


def test_most_people_and_places_of_the_german_feed_are_found(demo_con) -> None:
    found = set(
        demo_con.execute(
            """
            SELECT v.title, m.surface, m.field, m.entity_type
            FROM marts.entity_mentions m JOIN marts.article_versions v USING (article_id, version)
            WHERE v.source_id = 'rheinblick' AND m.is_current
            """
        ).fetchall()
    )
    titles = {title for (title,) in demo_con.execute(
        "SELECT title FROM marts.articles WHERE source_id = 'rheinblick'"
    ).fetchall()}  # fmt: skip
    assert titles == set(GERMAN_GOLD), "the German demo feed changed: label its articles again"
    gold = {(title, *mention) for title, mentions in GERMAN_GOLD.items() for mention in mentions}
    missed = sorted(gold - found)
    assert len(gold) - len(missed) >= 0.8 * len(gold), missed
