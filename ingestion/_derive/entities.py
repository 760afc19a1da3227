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
``EntityExtractionError`` and nothing of the part it was reading is recorded (a run
reads, extracts and records ``PART_EVENTS`` article versions at a time).

A run can also be split across machines: ``plan_partitions``, then
``extract_partition`` once per partition (the database only read), then
``merge_partitions``, the one writer; the rows are those of ``extract_entities``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

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
from ingestion._log.lake import create_schema
from ingestion._log.store import EventStore, registered
from ingestion.exceptions import EntityExtractionError, StoreError

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
-- Each text once (see _append_texts); not a key: its index took a tenth of the file.
CREATE TABLE IF NOT EXISTS enrich.texts (
    text_hash VARCHAR NOT NULL, extractor VARCHAR NOT NULL, language VARCHAR,
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
    """The text's key in enrich.*: the first 128 bits of a SHA-256, in hexadecimal.
    Enough to tell a billion texts apart (a collision about once in 10^20 such sets);
    the whole digest took 17 more bytes an article in each of three tables. Texts
    keyed by a whole digest in older databases stay as they are (a text seen again
    is read once more, under its shorter key)."""
    return hashlib.sha256(f"{extractor}\x1f{language}\x1f{text}".encode()).hexdigest()[:32]


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
    workers: Callable[[int], WorkerPool] | None = None,
) -> list[Reading]:
    """Each text read by its language's model (read whole: callers cap the length),
    in order. Texts of one language must be consecutive. With ``n_process`` over one,
    ``workers``, if given, hands out a pool of that many that stays up after (a run's,
    read in parts); otherwise one is started for these texts alone."""
    batches = batches_of(texts, languages)
    readings: list[Reading] = []
    if n_process > 1 and len(batches) > 1:
        with nullcontext(workers(n_process)) if workers else WorkerPool(min(n_process, len(batches))) as pool:
            for batch_readings in pool.read(batches):
                readings.extend(batch_readings)
                if on_progress:
                    on_progress(len(batch_readings))
        return readings
    # One BLAS thread, as in each worker: a second one saves ~3% of the time for ~75% more CPU
    # (measured on CoNLL text), and a mapped partition task must leave the other cores to the
    # partitions running beside it.
    with threadpool_limits(limits=1, user_api="blas"):
        for language, batch in batches:
            readings.extend(read_texts(load_model(language), batch))
            if on_progress:
                on_progress(len(batch))
    return readings


def extract_entities(
    db_path: Path,
    *,
    n_process: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> EntityReport:
    """Process every article version recorded since the last run, a part at a time
    (``PART_EVENTS`` versions: read, extracted and recorded in a transaction of its own).

    ``n_process`` defaults to two worker processes for large runs (a backfill) and
    one otherwise, where starting them would cost more than it saves. ``on_progress``
    is called with the article versions done so far and their number, batch by batch.
    """
    report = EntityReport()
    started = time.monotonic()
    extractor = extractor_id()
    with EventStore(db_path) as store, _RunWorkers() as workers:
        con = store.con
        create_schema(con, SCHEMA_SQL)
        refresh_places(con)
        since = first = _extracted_through(con, extractor)
        total = con.execute("SELECT count(*) FROM raw.article_events WHERE event_seq > ?", [since]).fetchall()
        progress = _PartProgress(total[0][0], on_progress)
        while (through := store.part_end(since)) is not None:
            work = _collect(con, extractor, since, through, 0, 1, report)
            assert work is not None  # the part holds at least the event it ends with
            try:
                text_rows, mention_rows = _read(
                    work,
                    extractor,
                    report,
                    n_process=n_process,
                    on_progress=progress.part(report.events),
                    workers=workers.pool,
                )
            except EntityExtractionError as exc:
                recorded = (
                    f"this run recorded the article versions up to event #{since:,}; the next starts there"
                    if since > first
                    else "nothing of this run was recorded"
                )
                raise EntityExtractionError(f"{exc}; {recorded}") from exc
            with store.transaction():
                # A new model reads every article again: what older models found is only a
                # cache of theirs, dropped so that nothing downstream mixes the two.
                report.extractor_changed |= _drop_other_extractors(con, extractor)
                if text_rows:
                    with registered(con, "_new_texts", _arrow(text_rows, TEXT_COLUMNS)):
                        _append_texts(con, "SELECT * FROM _new_texts")
                _insert(con, "enrich.mentions", mention_rows, MENTION_COLUMNS)
                _insert(con, "enrich.field_texts", work.field_rows, FIELD_COLUMNS)
                con.execute(
                    "INSERT INTO enrich.batches VALUES (?, ?, ?)", [work.through, extractor, len(text_rows)]
                )
            progress.done(report.events)
            since = work.through
    report.seconds = time.monotonic() - started
    return report


class _RunWorkers:
    """The worker processes of a run read in parts: started by the first part that reads
    in parallel, kept for the parts after it (each start loads a model per worker)."""

    def __init__(self) -> None:
        self._pool: WorkerPool | None = None

    def pool(self, size: int) -> WorkerPool:
        if self._pool is None:
            self._pool = WorkerPool(size)
        return self._pool

    def __enter__(self) -> _RunWorkers:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if self._pool is not None:
            self._pool.close(graceful=exc_type is None)


class _PartProgress:
    """``on_progress`` in article versions for a run read in parts: a part's texts read so
    far count for as large a share of its versions (a new text may be shared by several
    versions, and an old one needs no reading)."""

    def __init__(self, total: int, on_progress: Callable[[int, int], None] | None) -> None:
        self.total, self.on_progress, self.reported = total, on_progress, 0

    def part(self, versions_through: int) -> Callable[[int, int], None] | None:
        """The callback for ``_read`` of the part that ends after ``versions_through`` versions."""
        if self.on_progress is None:
            return None
        before = self.reported

        def read(texts_read: int, texts: int) -> None:
            self._report(before + (versions_through - before) * texts_read // texts)

        return read

    def done(self, versions: int) -> None:
        self._report(versions)

    def _report(self, versions: int) -> None:
        if self.on_progress is not None and versions > self.reported:
            self.reported = versions
            self.on_progress(versions, self.total)


TEXT_COLUMNS = ["text_hash", "extractor", "language", "status", "words", "mention_count", "detail"]
MENTION_COLUMNS = ["text_hash", "mention_index", "start_char", "end_char", "surface", "label"]
FIELD_COLUMNS = ["event_seq", "article_id", "version", "field", "text_hash"]


@dataclass(slots=True)
class _Work:
    """What a run, or one partition of it, has to do for the article versions it read."""

    #: The last article event read: the next run starts after it.
    through: int
    #: (event_seq, article_id, version, field, text_hash) of every field in the partition.
    field_rows: list[tuple]
    #: enrich.texts rows of the new texts no model reads.
    unsupported_rows: list[tuple]
    #: (text_hash, text, language, part read) of the new texts a model reads, by language.
    supported: list[tuple[str, str, str, str]]


#: How texts are split into partitions, written into each partition file: a merge refuses
#: files split another way (a text could be in none of them, or in two).
PARTITION_SPLIT = "text-sha256"


def partition_of(text: str, parts: int) -> int:
    """The partition a text belongs to: the same for every run, whoever counts. By the text
    alone, not its language: a partition detects the language only of the articles that
    have a text in it, rather than every partition that of every article."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:16], 16) % parts


def _collect(
    con,
    extractor: str,
    since: int,
    through: int | None,
    part: int,
    parts: int,
    report: EntityReport,
    *,
    enrich_exists: bool = True,
) -> _Work | None:
    """The work for the article versions after ``since`` up to ``through`` (all when
    None) whose texts fall in ``part`` of ``parts``; None when there are no versions.
    Without ``enrich_exists`` (a database no run has written to) no text is known yet."""
    rows = con.execute(
        """
        SELECT event_seq, stream_id, stream_version, title, summary, body, language
        FROM raw.article_events
        WHERE event_seq > ? AND event_seq <= coalesce(?, event_seq)
        ORDER BY event_seq
        """,
        [since, through],
    ).fetchall()
    report.events += len(rows)
    if not rows:
        return None
    field_rows: list[tuple] = []
    pending: dict[str, tuple[str, str]] = {}  # text_hash -> (text, language)
    for event_seq, article_id, version, title, summary, body, declared in rows:
        texts = [(field, text) for field, text in zip(FIELDS, (title, summary, body), strict=True) if text]
        ours = (
            [(field, text) for field, text in texts if partition_of(text, parts) == part]
            if parts > 1
            else texts
        )
        if not ours:
            continue
        language = article_language("\n".join(text for _, text in texts), declared)  # of the whole article
        for field, text in ours:
            digest = text_hash(text, language, extractor)
            field_rows.append((event_seq, article_id, version, field, digest))
            pending.setdefault(digest, (text, language))
    known = _known_hashes(con, list(pending)) if enrich_exists else set()
    unsupported_rows: list[tuple] = []
    supported: list[tuple[str, str, str, str]] = []
    for digest, (text, lang) in pending.items():
        if digest in known:
            continue
        report.texts_new += 1
        if lang in MODEL_LANGUAGES:
            supported.append((digest, text, lang, readable_part(text)))
        else:
            unsupported_rows.append(
                (digest, extractor, lang, "unsupported_language", len(text.split()), 0, None)
            )
            report.texts_unsupported += 1
    supported.sort(key=lambda text: text[2])  # by language (stable): one model per batch
    return _Work(rows[-1][0], field_rows, unsupported_rows, supported)


def _read(
    work: _Work,
    extractor: str,
    report: EntityReport,
    *,
    n_process: int | None,
    on_progress: Callable[[int, int], None] | None = None,
    workers: Callable[[int], WorkerPool] | None = None,
) -> tuple[list[tuple], list[tuple]]:
    """The enrich.texts and enrich.mentions rows of the work's new texts (``workers``
    as for ``extract``)."""
    supported = work.supported
    words_to_read = sum(len(part.split()) for *_, part in supported)
    read_so_far = 0

    def read(texts: int) -> None:
        nonlocal read_so_far
        read_so_far += texts
        if on_progress:
            on_progress(read_so_far, len(supported))

    readings = extract(
        [part for *_, part in supported],
        [lang for _, _, lang, _ in supported],
        n_process=n_process or (2 if words_to_read >= PARALLEL_FROM_WORDS else 1),
        on_progress=read,
        workers=workers,
    )
    text_rows = list(work.unsupported_rows)
    mention_rows: list[tuple] = []
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
    report.mentions += len(mention_rows)
    return text_rows, mention_rows


def _extracted_through(con, extractor: str) -> int:
    """The last article event this extractor's results cover (0 before its first run)."""
    return con.execute(
        "SELECT coalesce(max(last_event_seq), 0) FROM enrich.batches WHERE extractor = ?", [extractor]
    ).fetchall()[0][0]


# Partitioned runs: the texts of a run split by hash into ``parts`` partitions, each
# read by its own process or machine (an Airflow mapped task) from a read-only
# database, written as one Parquet file to shared storage beside the database; then
# one merge, the run's only writer, appends them all in one transaction. The rows
# are those of a single-process run.

_MENTION_TYPE = pa.struct(
    [
        ("mention_index", pa.int32()),
        ("start_char", pa.int32()),
        ("end_char", pa.int32()),
        ("surface", pa.string()),
        ("label", pa.string()),
    ]
)
_FIELD_TYPE = pa.struct(
    [("event_seq", pa.int64()), ("article_id", pa.string()), ("version", pa.int32()), ("field", pa.string())]
)
#: One row per text of the partition; a text read by an earlier run has no status
#: (only its new field rows are appended).
PARTITION_SCHEMA = pa.schema(
    [
        ("text_hash", pa.string()),
        ("language", pa.string()),
        ("status", pa.string()),
        ("words", pa.int32()),
        ("words_read", pa.int32()),
        ("detail", pa.string()),
        ("mentions", pa.list_(_MENTION_TYPE)),
        ("fields", pa.list_(_FIELD_TYPE)),
    ]
)


def partitions_dir(db_path: Path) -> Path:
    """Where partition files go unless the caller says: a folder beside the database."""
    return db_path.with_name(f"{db_path.name}.entity-partitions")


def plan_partitions(db_path: Path) -> int:
    """The last article event a partitioned run covers, read once so that every
    partition reads the same events while the log grows: the end of the next part
    (``EventStore.part_end``), so that each run's tasks hold one part, not a backlog
    of years; the runs after it take the parts after it."""
    with EventStore(db_path, read_only=True) as store:
        con = store.con
        since = _extracted_through(con, extractor_id()) if _has_enrich_tables(con) else 0
        return store.part_end(since) or since


def extract_partition(
    db_path: Path,
    part: int,
    parts: int,
    out_dir: Path | None = None,
    *,
    through: int | None = None,
    n_process: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> EntityReport:
    """Read one partition's new texts (article versions up to ``through``, by default
    the log's last) and write its results to ``out_dir``; the database is only read,
    and only while the work is collected. Running it again replaces its file.
    ``on_progress`` as for ``extract_entities``."""
    if not 0 <= part < parts:
        raise EntityExtractionError(
            f"entity partition {part} does not exist: there are {parts} (0 to {parts - 1})"
        )
    report = EntityReport()
    started = time.monotonic()
    extractor = extractor_id()
    with EventStore(db_path, read_only=True) as store:
        con = store.con
        fresh = not _has_enrich_tables(con)
        since = 0 if fresh else _extracted_through(con, extractor)
        if through is None:
            through = _last_article_event(con)
        work = _collect(con, extractor, since, through, part, parts, report, enrich_exists=not fresh)
    text_rows, mention_rows = (
        _read(work, extractor, report, n_process=n_process, on_progress=on_progress) if work else ([], [])
    )
    run = {
        "extractor": extractor,
        "since": since,
        "through": through,
        "part": part,
        "parts": parts,
        "split": PARTITION_SPLIT,
    }
    _write_partition(
        _partition_file(out_dir or partitions_dir(db_path), run),
        {**run, "events": report.events},
        work.field_rows if work else [],
        text_rows,
        mention_rows,
        {digest: len(part_read.split()) for digest, _, _, part_read in work.supported} if work else {},
    )
    report.seconds = time.monotonic() - started
    return report


def merge_partitions(db_path: Path, parts: int, through: int, out_dir: Path | None = None) -> EntityReport:
    """Append the ``parts`` partition files of the run up to ``through`` to ``enrich.*``
    in one transaction, then remove them. A run already merged adds nothing; a missing
    or foreign partition file is an error that names it, and nothing is appended."""
    report = EntityReport()
    started = time.monotonic()
    extractor = extractor_id()
    out_dir = out_dir or partitions_dir(db_path)
    with EventStore(db_path) as store:
        con = store.con
        create_schema(con, SCHEMA_SQL)
        refresh_places(con)
        since = _extracted_through(con, extractor)
        run = {
            "extractor": extractor,
            "since": since,
            "through": through,
            "parts": parts,
            "split": PARTITION_SPLIT,
        }
        folder = _partition_file(out_dir, {**run, "part": 0}).parent
        if since >= through:  # merged before, or nothing was new
            _remove_covered_runs(out_dir, since)
            return report
        table = _read_partitions(folder, run)
        report.events = int(json.loads(table.schema.metadata[b"newsroom"])["events"])
        texts = table.filter(pc.is_valid(table["status"]))
        statuses = texts["status"].to_pylist()
        report.texts_new = len(statuses)
        report.texts_unsupported = statuses.count("unsupported_language")
        report.texts_truncated = statuses.count("truncated")
        report.texts_failed = statuses.count("failed")
        report.words = sum(
            words
            for status, words in zip(statuses, texts["words_read"].to_pylist(), strict=True)
            if status in ("extracted", "truncated")
        )
        report.mentions = sum(pc.list_value_length(table["mentions"]).to_pylist())
        with store.transaction(), registered(con, "_entity_partitions", table):
            report.extractor_changed = _drop_other_extractors(con, extractor)
            _append_texts(
                con,
                "SELECT text_hash, ? AS extractor, language, status, words, len(mentions) AS mention_count, "
                "detail FROM _entity_partitions WHERE status IS NOT NULL",
                [extractor],
            )
            con.execute(
                "INSERT INTO enrich.mentions "
                "SELECT text_hash, m.mention_index, m.start_char, m.end_char, m.surface, m.label "
                "FROM (SELECT text_hash, unnest(mentions) AS m FROM _entity_partitions)"
            )
            con.execute(
                "INSERT INTO enrich.field_texts "
                "SELECT f.event_seq, f.article_id, f.version, f.field, text_hash "
                "FROM (SELECT text_hash, unnest(fields) AS f FROM _entity_partitions)"
            )
            con.execute("INSERT INTO enrich.batches VALUES (?, ?, ?)", [through, extractor, report.texts_new])
    _remove_covered_runs(out_dir, through)
    report.seconds = time.monotonic() - started
    return report


def _remove_covered_runs(out_dir: Path, through: int) -> None:
    """Remove the partition folders of every run whose events are all extracted now
    (up to ``through``): this one's, and those of runs that never got merged (a
    failed scheduler run), which no merge would ever read."""
    with suppress(FileNotFoundError):
        for folder in out_dir.iterdir():
            covered = _RUN_FOLDER.fullmatch(folder.name)
            if covered and int(covered["through"]) <= through:
                shutil.rmtree(folder, ignore_errors=True)


#: A run's folder name (see ``_partition_file``).
_RUN_FOLDER = re.compile(r"[0-9a-f]{12}-events-(?P<since>\d+)-(?P<through>\d+)")


def _partition_file(out_dir: Path, run: dict) -> Path:
    """A run's files share a folder named by its extractor and events; a partition's
    name says which of how many it is."""
    extractor_key = hashlib.sha256(run["extractor"].encode()).hexdigest()[:12]
    folder = out_dir / f"{extractor_key}-events-{run['since'] + 1}-{run['through']}"
    return folder / f"part-{run['part']:04d}-of-{run['parts']:04d}.parquet"


def _write_partition(
    path: Path,
    run: dict,
    field_rows: list[tuple],
    text_rows: list[tuple],
    mention_rows: list[tuple],
    words_read: dict[str, int],
) -> None:
    texts = {row[0]: row for row in text_rows}
    mentions: dict[str, list[dict]] = defaultdict(list)
    for digest, index, start, end, surface, label in mention_rows:
        mentions[digest].append(
            {"mention_index": index, "start_char": start, "end_char": end, "surface": surface, "label": label}
        )
    fields: dict[str, list[dict]] = defaultdict(list)
    for event_seq, article_id, version, field, digest in field_rows:
        fields[digest].append(
            {"event_seq": event_seq, "article_id": article_id, "version": version, "field": field}
        )
    columns: dict[str, list] = {name: [] for name in PARTITION_SCHEMA.names}
    for digest, references in fields.items():
        _, _, language, status, words, _, detail = texts.get(digest, (None,) * 7)
        columns["text_hash"].append(digest)
        columns["language"].append(language)
        columns["status"].append(status)
        columns["words"].append(words)
        columns["words_read"].append(words_read.get(digest, words))
        columns["detail"].append(detail)
        columns["mentions"].append(mentions.get(digest, []))
        columns["fields"].append(references)
    schema = PARTITION_SCHEMA.with_metadata({"newsroom": json.dumps(run)})
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under another name, then renamed: a retried or killed task never
    # leaves half a file where the merge looks.
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    pq.write_table(pa.table(columns, schema=schema), partial)
    partial.replace(path)


def _read_partitions(folder: Path, run: dict) -> pa.Table:
    parts = run["parts"]
    tables = []
    for part in range(parts):
        path = _partition_file(folder.parent, {**run, "part": part})
        if not path.is_file():
            raise EntityExtractionError(
                f"entity partition {part} of {parts} (events {run['since'] + 1} to {run['through']}) is "
                f"missing: {path}; run that partition again, then the merge"
            )
        table = pq.read_table(path)
        written = json.loads((table.schema.metadata or {}).get(b"newsroom", b"{}"))
        if any(written.get(key) != value for key, value in {**run, "part": part}.items()):
            raise EntityExtractionError(f"entity partition file {path} belongs to another run: {written}")
        tables.append(table)
    return pa.concat_tables(tables)


def _has_enrich_tables(con) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'enrich' AND table_name = 'batches'"
        ).fetchall()[0][0]
    )


def _last_article_event(con) -> int:
    return con.execute("SELECT coalesce(max(event_seq), 0) FROM raw.article_events").fetchall()[0][0]


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


def _append_texts(con, new_texts: str, parameters: list | None = None) -> None:
    """Append the rows of the query ``new_texts`` (TEXT_COLUMNS) to enrich.texts, which
    holds each text once: a second row would count its mentions twice downstream. A
    run's texts are new by construction (its work leaves out the texts the table held
    when it was collected, and one writer at a time appends); this checks it, in the
    writer's transaction, instead of a key on text_hash whose index took a tenth of the
    working database. Nothing of the run is appended when it fails."""
    repeated, stored, example = con.execute(
        f"""
        WITH new AS ({new_texts})
        SELECT (SELECT count(*) - count(DISTINCT text_hash) FROM new), count(*), any_value(text_hash)
        FROM new SEMI JOIN enrich.texts USING (text_hash)
        """,
        parameters,
    ).fetchall()[0]
    if repeated or stored:
        raise StoreError(
            f"entity extraction would store texts twice ({repeated} repeated in the run, {stored} "
            f"stored before, e.g. {example}): nothing was stored; run the extraction again (a "
            "partitioned one from its partitions)"
        )
    con.execute(f"INSERT INTO enrich.texts ({', '.join(TEXT_COLUMNS)}) {new_texts}", parameters)


def _arrow(rows: list[tuple], columns: list[str]) -> pa.Table:
    return pa.table(dict(zip(columns, map(list, zip(*rows, strict=True)), strict=True)))


def _insert(con, table: str, rows: list[tuple], columns: list[str]) -> None:
    if not rows:
        return
    with registered(con, "_enrich_batch", _arrow(rows, columns)):
        con.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM _enrich_batch")
