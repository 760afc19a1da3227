"""Named-entity extraction: article text in, raw mentions out (an enrichment step
whose tables dbt sources as ``enrich.*``).

Incremental by content: every title, summary and body is hashed together with
the extractor's identity and language; a text already processed is never run
through the model again (a re-run, an unchanged field in a new version, a wire
copy). spaCy's CPU inference is deterministic, so dropping ``enrich`` and
running again gives the same rows. Cleaning and resolution happen in dbt.

A text the model cannot read does not stop a run: every text gets exactly one row in
``enrich.texts`` with its status. ``extracted``: read whole. ``truncated``: longer
than ``MAX_TEXT_CHARS``, only the first part was read (its mentions are kept).
``failed``: the model raised on it (``detail`` says why; the rest of the run goes
on). ``unsupported_language``: no model for the language. Like every processed
text, a failed one is not read again on later runs.

Each article version is read in one language (``ner.article_language``) by that
language's model (``ner``). Large runs use worker processes of our own
(``workers``); a worker that dies or overruns its time limit stops the run with an
``EntityExtractionError`` and nothing of the run is recorded.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ingestion._derive.ner import (
    MODEL_LANGUAGES,
    Reading,
    article_language,
    extractor_id,
    load_model,
    read_texts,
)
from ingestion._derive.places import refresh_places
from ingestion._derive.workers import Batch, WorkerPool
from ingestion._log.store import EventStore, registered

FIELDS = ("title", "summary", "body")

#: The longest text the model reads, in characters: as long as the longest field
#: ingest keeps, so only old events hold longer ones. Those are read up to the
#: last whitespace before the cap (status ``truncated``). Reading 300,000
#: characters of prose takes ~10 s; spaCy refuses anything over 1,000,000.
MAX_TEXT_CHARS = 300_000

#: Texts handed to the model (and to a worker) at a time: at most this many, and no
#: more characters than BATCH_CHARS unless one text alone is longer.
BATCH_TEXTS = 64
BATCH_CHARS = 100_000
#: Two worker processes pay for their start-up (~3 s, a model each) past ~30k words.
PARALLEL_FROM_WORDS = 30_000

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS enrich;
CREATE TABLE IF NOT EXISTS enrich.field_texts (
    event_seq BIGINT NOT NULL, article_id VARCHAR NOT NULL, version INTEGER NOT NULL,
    field VARCHAR NOT NULL, text_hash VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS enrich.texts (
    text_hash VARCHAR PRIMARY KEY, extractor VARCHAR NOT NULL, language VARCHAR,
    status VARCHAR NOT NULL, words INTEGER NOT NULL, mention_count INTEGER NOT NULL,
    detail VARCHAR
);
-- Databases from before texts could be truncated or fail have no detail column.
ALTER TABLE enrich.texts ADD COLUMN IF NOT EXISTS detail VARCHAR;
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
    texts_truncated: int = 0
    texts_failed: int = 0
    words: int = 0
    mentions: int = 0
    seconds: float = 0.0
    #: Another model's results were dropped: every article was read again.
    extractor_changed: bool = False

    def summary(self) -> str:
        rate = self.words / self.seconds if self.seconds else 0.0
        return (
            f"entities: {self.events} new article versions, {self.texts_new} new texts "
            f"({self.texts_unsupported} in unsupported languages, {self.texts_truncated} truncated, "
            f"{self.texts_failed} failed), {self.mentions} mentions, "
            f"{self.words:,} words in {self.seconds:.1f} s ({rate:,.0f} words/s)"
        )


def text_hash(text: str, language: str, extractor: str) -> str:
    return hashlib.sha256(f"{extractor}\x1f{language}\x1f{text}".encode()).hexdigest()


def readable_part(text: str) -> str:
    """The text, or when longer than MAX_TEXT_CHARS its start up to the last
    whitespace before the cap (a hard cut when the last 1,000 characters have none)."""
    if len(text) <= MAX_TEXT_CHARS:
        return text
    end, floor = MAX_TEXT_CHARS, MAX_TEXT_CHARS - 1_000
    while end > floor and not text[end].isspace():
        end -= 1
    return text[: end if end > floor else MAX_TEXT_CHARS]


def batches_of(texts: list[str], languages: list[str]) -> list[Batch]:
    """Consecutive texts of one language grouped by BATCH_TEXTS and BATCH_CHARS, in
    order: the texts come sorted by language, so a batch never mixes two."""
    batches: list[Batch] = []
    current: list[str] = []
    chars = 0
    for position, text in enumerate(texts):
        language = languages[position]
        starts_new = current and (
            len(current) >= BATCH_TEXTS
            or chars + len(text) > BATCH_CHARS
            or language != languages[position - 1]
        )
        if starts_new:
            batches.append((languages[position - 1], current))
            current, chars = [], 0
        current.append(text)
        chars += len(text)
    if current:
        batches.append((languages[-1], current))
    return batches


def extract(
    texts: list[str],
    languages: list[str],
    *,
    n_process: int = 1,
    on_progress: Callable[[int], None] | None = None,
) -> list[Reading]:
    """Each text read by its language's model (read whole: callers cap the length),
    in order. Texts of one language must be consecutive."""
    batches = batches_of(texts, languages)
    readings: list[Reading] = []
    if n_process > 1 and len(batches) > 1:
        with WorkerPool(min(n_process, len(batches))) as pool:
            for batch_readings in pool.read(batches):
                readings.extend(batch_readings)
                if on_progress:
                    on_progress(len(batch_readings))
        return readings
    for language, batch in batches:
        readings.extend(read_texts(load_model(language), batch))
        if on_progress:
            on_progress(len(batch))
    return readings


def extract_entities(
    db_path: Path,
    *,
    n_process: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> EntityReport:
    """Process every article version recorded since the last run.

    ``n_process`` defaults to two worker processes for large runs (a backfill) and
    one otherwise, where starting them would cost more than it saves.
    """
    report = EntityReport()
    started = time.monotonic()
    extractor = extractor_id()
    with EventStore(db_path) as store:
        con = store.con
        con.execute(SCHEMA_SQL)
        refresh_places(con)
        since = con.execute(
            "SELECT coalesce(max(last_event_seq), 0) FROM enrich.batches WHERE extractor = ?", [extractor]
        ).fetchall()[0][0]
        rows = con.execute(
            """
            SELECT event_seq, stream_id, stream_version, title, summary, body, language
            FROM raw.article_events
            WHERE event_seq > ?
            ORDER BY event_seq
            """,
            [since],
        ).fetchall()
        report.events = len(rows)
        if not rows:
            return report
        field_rows: list[tuple] = []
        pending: dict[str, tuple[str, str]] = {}  # text_hash -> (text, language)
        for event_seq, article_id, version, title, summary, body, declared in rows:
            texts = [
                (field, text) for field, text in zip(FIELDS, (title, summary, body), strict=True) if text
            ]
            if not texts:
                continue
            language = article_language("\n".join(text for _, text in texts), declared)
            for field, text in texts:
                digest = text_hash(text, language, extractor)
                field_rows.append((event_seq, article_id, version, field, digest))
                pending.setdefault(digest, (text, language))
        known = _known_hashes(con, list(pending))
        text_rows: list[tuple] = []
        mention_rows: list[tuple] = []
        supported: list[tuple[str, str, str, str]] = []  # (text_hash, text, language, part read)
        for digest, (text, lang) in pending.items():
            if digest in known:
                continue
            report.texts_new += 1
            if lang in MODEL_LANGUAGES:
                supported.append((digest, text, lang, readable_part(text)))
            else:
                text_rows.append(
                    (digest, extractor, lang, "unsupported_language", len(text.split()), 0, None)
                )
                report.texts_unsupported += 1
        words_to_read = sum(len(part.split()) for *_, part in supported)
        workers = n_process or (2 if words_to_read >= PARALLEL_FROM_WORDS else 1)
        supported.sort(key=lambda text: text[2])  # by language (stable): one model per batch
        readings = extract(
            [part for *_, part in supported],
            [lang for _, _, lang, _ in supported],
            n_process=workers,
            on_progress=on_progress,
        )
        for (digest, text, lang, part), (mentions, error) in zip(supported, readings, strict=True):
            words = len(text.split())
            if error is not None:
                status, detail, mentions = "failed", error, []
                report.texts_failed += 1
            elif len(part) < len(text):
                status, detail = "truncated", f"read the first {len(part):,} of {len(text):,} characters"
                report.texts_truncated += 1
                report.words += len(part.split())
            else:
                status, detail = "extracted", None
                report.words += words
            text_rows.append((digest, extractor, lang, status, words, len(mentions), detail))
            mention_rows.extend((digest, i, *m) for i, m in enumerate(mentions))
        report.mentions = len(mention_rows)
        with store.transaction():
            # A new model reads every article again: what older models found is only a
            # cache of theirs, dropped so that nothing downstream mixes the two.
            report.extractor_changed = _drop_other_extractors(con, extractor)
            _insert(
                con,
                "enrich.texts",
                text_rows,
                ["text_hash", "extractor", "language", "status", "words", "mention_count", "detail"],
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
            con.execute(
                "INSERT INTO enrich.batches VALUES (?, ?, ?)", [rows[-1][0], extractor, report.texts_new]
            )
    report.seconds = time.monotonic() - started
    return report


def _drop_other_extractors(con, extractor: str) -> bool:
    if not con.execute("SELECT count(*) FROM enrich.batches WHERE extractor <> ?", [extractor]).fetchall()[0][
        0
    ]:
        return False
    con.execute(
        "DELETE FROM enrich.field_texts WHERE text_hash IN "
        "(SELECT text_hash FROM enrich.texts WHERE extractor <> ?)",
        [extractor],
    )
    con.execute(
        "DELETE FROM enrich.mentions WHERE text_hash IN "
        "(SELECT text_hash FROM enrich.texts WHERE extractor <> ?)",
        [extractor],
    )
    con.execute("DELETE FROM enrich.texts WHERE extractor <> ?", [extractor])
    con.execute("DELETE FROM enrich.batches WHERE extractor <> ?", [extractor])
    return True


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
