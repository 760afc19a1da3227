"""Entity extraction against hostile text: a body over spaCy's 1,000,000-character
limit, runs of punctuation the tokenizer chokes on, a text the model raises on, and
worker processes that die or stall. No single text fails the run, every text gets
one row in enrich.texts, and a broken worker is a clear error within a bounded time.

Logs are built with the real EventStore.append; extraction runs in a subprocess with
a timeout wherever a hang is the failure being guarded against."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from ingestion._derive.entities import MAX_TEXT_CHARS, PARALLEL_FROM_WORDS, extract_entities
from ingestion._derive.ner import MAX_RUN_CHARS, load_model, read_texts, tokenizer_safe
from ingestion._log.events import article_id
from ingestion._log.store import EventStore, PendingEvent

from .conftest import REPO, run_cli

SOURCE = "hostile-wire"
# Written for these tests: short fictional reports with plenty of names.
SENTENCES = [
    "Emmanuel Macron met Keir Starmer in Paris on Tuesday to discuss support for Ukraine.",
    "The European Commission in Brussels said Ursula von der Leyen would travel to Kyiv.",
    "Officials at the United Nations in Geneva welcomed the talks between Germany and France.",
    "Friedrich Merz told reporters in Berlin that the Bundeswehr was ready to help.",
    "Shares of Siemens rose in Frankfurt after the company reported higher orders from India.",
    "Volodymyr Zelensky thanked Canada, Japan and Australia for their continued support.",
    "The World Health Organization warned of rising cases in Nigeria and Kenya on Monday.",
    "Antonio Guterres called on Russia and Ukraine to protect civilians near Zaporizhzhia.",
]
LEAD = " ".join(SENTENCES)
#: Cheap for the model: one token per 100-character run, so a huge body costs little.
FILLER_WORD = "x" * (MAX_RUN_CHARS - 1)


def article_text(number: int, words: int) -> str:
    """A distinct body of about `words` words."""
    sentences = []
    count = 0
    index = number
    while count < words:
        sentence = SENTENCES[index % len(SENTENCES)]
        sentences.append(f"Report {number}, paragraph {index}: {sentence}")
        count += len(sentences[-1].split())
        index += 1
    return " ".join(sentences)


def huge_body() -> str:
    """Over 1,000,000 characters: a lead with names, then filler words."""
    filler_words = (1_000_000 // len(FILLER_WORD)) + 100
    return LEAD + " " + " ".join([FILLER_WORD] * filler_words)


def append_articles(db_path: Path, articles: list[dict]) -> None:
    """One article.published event per article, through the real EventStore.append."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    events = [
        PendingEvent(
            "article.published",
            article_id(SOURCE, a["identity"]),
            SOURCE,
            {
                "identity": a["identity"],
                "guid": a["identity"],
                "url": f"https://example.org/news/{a['identity']}",
                "title": a["title"],
                "summary": "",
                "body": a["body"],
                "byline": "",
                "language": a.get("language", "en"),
            },
        )
        for a in articles
    ]
    with EventStore(db_path) as store, store.transaction():
        store.append(events, recorded_at=datetime.now(UTC).replace(tzinfo=None), run_id="hostile-entities")


def many_articles(words: int) -> list[dict]:
    """Distinct English articles totalling about `words` words."""
    per_article = 600
    return [
        {
            "identity": f"story-{n}",
            "title": f"Story {n}: {SENTENCES[n % len(SENTENCES)]}",
            "body": article_text(n, per_article),
        }
        for n in range(words // per_article + 1)
    ]


def filler_articles(count: int) -> list[dict]:
    """Untitled articles whose bodies, cheap to read, each outweigh the buffer of the socket
    between parent and worker (~200 KiB): every batch is one body, and a worker that does not
    read blocks whoever writes to it."""
    filler = " ".join([FILLER_WORD] * 2_800)
    return [
        {
            "identity": f"long-{n}",
            "title": "",
            "body": f"Report {n}: {SENTENCES[n % len(SENTENCES)]} {filler}",
        }
        for n in range(count)
    ]


def texts_by_field(db_path: Path) -> dict[tuple[str, str], tuple]:
    """(identity, field) -> (status, words, mention_count, detail)."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        rows = con.execute(
            """
            SELECT json_extract_string(e.payload, '$.identity'), f.field, t.status, t.words,
                   t.mention_count, t.detail
            FROM enrich.field_texts f
            JOIN enrich.texts t USING (text_hash)
            JOIN raw.events e USING (event_seq)
            """
        ).fetchall()
    return {(r[0], r[1]): r[2:] for r in rows}


def enrich_tables(db_path: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return {
            "texts": con.execute(
                "SELECT text_hash, language, status, words, mention_count, detail FROM enrich.texts ORDER BY ALL"
            ).fetchall(),
            # mention_index order is the model's order: compared as stored, not sorted away
            "mentions": con.execute(
                "SELECT * FROM enrich.mentions ORDER BY text_hash, mention_index"
            ).fetchall(),
            "field_texts": con.execute("SELECT * FROM enrich.field_texts ORDER BY ALL").fetchall(),
        }


EXTRACT_SCRIPT = """
import json, sys
from pathlib import Path
from ingestion._derive import entities as _entities, workers as _workers
from ingestion.exceptions import NewsroomError
settings = json.loads(sys.argv[2])
for name, value in settings.pop("workers", {}).items():
    setattr(_workers, name, value)
try:
    report = _entities.extract_entities(Path(sys.argv[1]), **settings)
except NewsroomError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
print(json.dumps({"texts_new": report.texts_new, "truncated": report.texts_truncated,
                  "failed": report.texts_failed}))
"""


def start_extraction(db_path: Path, **settings) -> subprocess.Popen:
    """extract_entities in its own process (so a hang is a timeout, never a stuck test)."""
    return subprocess.Popen(
        [sys.executable, "-c", EXTRACT_SCRIPT, str(db_path), json.dumps(settings)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float) -> tuple[int, str, str, float]:
    started = time.monotonic()
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate(timeout=30)
        pytest.fail(f"extraction still running after {timeout} s (hung?)")
    return process.returncode, out, err, time.monotonic() - started


def worker_pids(parent: int) -> list[int]:
    """Entity workers (spawned Python processes) among the live children of `parent`."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # the command name may hold spaces: the fields after it are split from its closing ')'
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
            cmdline = stat.with_name("cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if int(ppid) == parent and state != "Z" and b"spawn_main" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


def is_entity_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def wait_for_workers(process: subprocess.Popen, count: int, timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = worker_pids(process.pid)
        if len(pids) >= count:
            return pids
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    process.communicate(timeout=30)
    pytest.fail(f"no {count} entity workers appeared within {timeout} s")


# ----------------------------------------------------------------------------- over-long texts


def test_a_body_over_a_million_characters_is_truncated_and_the_run_goes_on(db_path: Path) -> None:
    body = huge_body()
    assert len(body) > 1_000_000
    append_articles(
        db_path,
        [
            {"identity": "before", "title": "Macron meets Starmer in Paris", "body": SENTENCES[0]},
            {"identity": "huge", "title": "Zelensky thanks allies", "body": body},
            {"identity": "after", "title": "Merz speaks in Berlin", "body": SENTENCES[3]},
        ],
    )
    report = extract_entities(db_path, n_process=1)
    assert (report.texts_new, report.texts_truncated, report.texts_failed) == (6, 1, 0), report

    texts = texts_by_field(db_path)
    assert len(texts) == 6  # every field of every article has its row
    status, words, mention_count, detail = texts[("huge", "body")]
    assert status == "truncated"
    assert words == len(body.split())  # the words of the whole text, as stored
    assert detail.startswith("read the first ") and f"of {len(body):,} characters" in detail
    assert mention_count > 0  # the part read (the lead) was extracted
    for key in [
        ("before", "title"),
        ("before", "body"),
        ("huge", "title"),
        ("after", "title"),
        ("after", "body"),
    ]:
        assert texts[key][0] == "extracted" and texts[key][3] is None, (key, texts[key])
    assert texts[("before", "body")][2] > 0 and texts[("after", "body")][2] > 0

    with duckdb.connect(str(db_path), read_only=True) as con:
        spans = con.execute(
            """
            SELECT m.start_char, m.end_char, m.surface FROM enrich.mentions m
            JOIN enrich.field_texts f USING (text_hash)
            JOIN raw.events e USING (event_seq)
            WHERE f.field = 'body' AND json_extract_string(e.payload, '$.identity') = 'huge'
            """
        ).fetchall()
    assert len(spans) == mention_count
    assert all(end <= MAX_TEXT_CHARS and body[start:end] == surface for start, end, surface in spans)

    # Idempotent: nothing is read again, and the rows stay as they are.
    before = enrich_tables(db_path)
    again = extract_entities(db_path, n_process=1)
    assert (again.events, again.texts_new) == (0, 0)
    append_articles(db_path, [{"identity": "huge-copy", "title": "Zelensky thanks allies", "body": body}])
    copy = extract_entities(db_path, n_process=1)
    assert (copy.events, copy.texts_new, copy.texts_truncated) == (1, 0, 0)  # same texts, known hashes
    after = enrich_tables(db_path)
    assert after["texts"] == before["texts"] and after["mentions"] == before["mentions"]


def test_newsroom_transform_succeeds_over_a_huge_body(db_path: Path) -> None:
    append_articles(
        db_path,
        [
            {"identity": "huge", "title": "Zelensky thanks allies", "body": huge_body()},
            {"identity": "plain", "title": "Macron meets Starmer in Paris", "body": SENTENCES[0]},
        ],
    )
    result = run_cli("transform", "--db", str(db_path), "--select", "+entity_extraction_status", timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 truncated, 0 failed" in result.stdout
    with duckdb.connect(str(db_path), read_only=True) as con:
        rows = con.execute(
            "SELECT field, status, detail IS NOT NULL FROM marts.entity_extraction_status ORDER BY ALL"
        ).fetchall()
    assert sorted(rows) == sorted(
        [("title", "extracted", False), ("title", "extracted", False), ("body", "extracted", False),
         ("body", "truncated", True)]
    )  # fmt: skip


# ----------------------------------------------------------------------------- hostile shapes


def test_runs_the_tokenizer_chokes_on_are_read_quickly_with_true_offsets() -> None:
    nlp = load_model("en")
    # Each of these runs took the tokenizer over 30 s: its time is quadratic in a run's length.
    hostile = "(" * 12_000 + " Emmanuel Macron visited Paris. " + "=" * 12_000
    assert len(tokenizer_safe(hostile)) == len(hostile)
    started = time.monotonic()
    [(mentions, error)] = read_texts(nlp, [hostile])
    assert time.monotonic() - started < 30
    assert error is None
    assert {surface for _, _, surface, _ in mentions} >= {"Emmanuel Macron", "Paris"}
    assert all(hostile[start:end] == surface for start, end, surface, _ in mentions)


def test_a_text_the_model_raises_on_fails_alone() -> None:
    nlp = load_model("en")
    limit = nlp.max_length
    nlp.max_length = 200  # as if one text were beyond what the model accepts
    try:
        readings = read_texts(nlp, [SENTENCES[0], "Paris " * 100, SENTENCES[3]])
    finally:
        nlp.max_length = limit
    (first, first_error), (_, error), (last, last_error) = readings
    assert first and last and first_error is None and last_error is None
    assert error is not None and error.startswith("ValueError: [E088]"), error


# ----------------------------------------------------------------------------- worker processes


def test_two_workers_with_a_huge_text_finish_and_match_one_process(tmp_path: Path) -> None:
    articles = many_articles(PARALLEL_FROM_WORDS + 2_000)
    articles.insert(
        len(articles) // 2, {"identity": "huge", "title": "Zelensky thanks allies", "body": huge_body()}
    )
    parallel_db = tmp_path / "parallel" / "newsroom.duckdb"
    single_db = tmp_path / "single" / "newsroom.duckdb"
    append_articles(parallel_db, articles)
    append_articles(single_db, articles)

    code, out, err, seconds = finish(start_extraction(parallel_db), timeout=120)  # default: 2 workers
    assert code == 0, err
    assert json.loads(out) == {"texts_new": 2 * len(articles), "truncated": 1, "failed": 0}
    print(f"\ntwo workers, {len(articles)} articles: {seconds:.1f} s")

    extract_entities(single_db, n_process=1)
    parallel, single = enrich_tables(parallel_db), enrich_tables(single_db)
    assert parallel == single  # same rows, same mentions in the same order
    statuses = [row[2] for row in parallel["texts"]]
    assert statuses.count("truncated") == 1 and statuses.count("extracted") == len(statuses) - 1


def test_a_killed_worker_is_a_clear_error_not_a_hang(db_path: Path) -> None:
    append_articles(db_path, filler_articles(6))
    process = start_extraction(db_path, n_process=2)
    workers = wait_for_workers(process, 2)
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    code, out, err, seconds = finish(process, timeout=60)
    assert code == 2, (out, err)
    assert f"entity extraction worker (pid {victim}) stopped (exit code -9)" in err, err
    assert "nothing of this run was recorded" in err
    assert seconds < 30
    assert not [pid for pid in workers if is_entity_worker(pid)]  # the other worker was stopped too
    with duckdb.connect(str(db_path), read_only=True) as con:  # nothing half-written
        assert con.execute("SELECT count(*) FROM enrich.texts").fetchall() == [(0,)]

    assert extract_entities(db_path, n_process=1).texts_new == 6  # the next run does the work


def test_a_stalled_worker_is_stopped_at_its_time_limit(db_path: Path) -> None:
    append_articles(db_path, filler_articles(6))
    # A short limit for the test; the real one allows a minute plus a slow rate per character.
    limits = {"WORKER_GRACE_SECONDS": 15, "WORKER_MIN_CHARS_PER_SECOND": 1_000_000}
    process = start_extraction(db_path, n_process=2, workers=limits)
    victim = wait_for_workers(process, 2)[0]
    os.kill(victim, signal.SIGSTOP)  # alive but doing nothing, as a worker stuck on a lock would be
    try:
        code, out, err, seconds = finish(process, timeout=60)
    finally:
        if is_entity_worker(victim):  # the run should have stopped it; never leave it stopped
            os.kill(victim, signal.SIGKILL)
    assert code == 2, (out, err)
    assert f"entity extraction worker (pid {victim}) did not finish" in err, err
    assert "within 15 s" in err
    assert seconds < 30
