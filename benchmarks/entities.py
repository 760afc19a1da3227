"""Entity quality and throughput through the product's own path: archive -> backfill ->
transform (our NER models + dbt clean-up and resolution) -> marts.entity_mentions.

    uv run python benchmarks/entities.py [--limit N] [--throughput-only]

Reads ../shared/data/entities/ (beside a development checkout):

* CoNLL-2003 ``conll2003/eng.testa``: each document is rebuilt as text (tokens
  joined by a space, sentences by a newline) and loaded as one article (body only).
  Mention-level exact-span precision/recall/F1 for PER/ORG/LOC (MISC ignored),
  with entity_type person -> PER, organisation -> ORG, place -> LOC.
* news-fair v2 (ELEVANT format): articles loaded with their text as body;
  predicted mentions aligned to gold mentions that carry a Wikidata id by exact
  span, then B-cubed over the aligned mentions (predicted cluster = our
  entity_id, gold cluster = the QID), across documents and within each document.
* Throughput of extract_entities and of the whole transform on the CoNLL set (a new
  database: the gazetteer is built and the workers start within the figure), and of
  extract_entities in steady state: CoNLL ``eng.train``'s 946 documents (~200k words,
  text only, never scored) added to that database after its first run.
* Words/s of the reading step alone (``entities.extract``: the models and our rules on
  them) on news bodies and on headlines, in this process and in two worker processes
  (already started: their start-up is printed apart), with words per CPU second and
  the load average, which on a shared machine says what the wall-clock figures are worth.
  Texts: ``../shared/data/threads/giveme5w1h`` (383 news articles; the bodies, ~600
  words each, and the headlines, repeated to ~100k words).

Gold offsets refer to the text as written; the marts' offsets refer to the clean
text (marts.article_versions.body). The two are compared, and where cleaning
changed a text the gold spans are carried over by a character alignment (the
number of such documents is printed). Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import difflib
import html
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ingestion._derive.entities import batches_of, extract, extract_entities
from ingestion._derive.ner import load_model, read_texts
from ingestion._derive.threads import assign_threads
from ingestion._derive.transform import run_dbt
from ingestion._derive.workers import WorkerPool
from ingestion._log.backfill import backfill

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "entities"
CONLL = DATA / "conll2003" / "eng.testa"
CONLL_TRAIN = DATA / "conll2003" / "eng.train"
NEWS_FAIR = DATA / "news-fair" / "news-fair-v2.benchmark.jsonl"
NEWS = REPO.parent / "shared" / "data" / "threads" / "giveme5w1h" / "articles.jsonl"
HEADLINE_WORDS = 100_000

TYPE_OF = {"person": "PER", "organisation": "ORG", "place": "LOC"}
CONLL_TYPES = ("PER", "ORG", "LOC")
QID = re.compile(r"Q\d+")

Span = tuple[int, int]


@dataclass(slots=True)
class Doc:
    guid: str
    text: str
    gold: list[tuple[int, int, object]]  # (start, end, label): CoNLL type, or (QID, coref)
    window: tuple[int, int] | None = None  # the part of the text that was annotated


# --------------------------------------------------------------------------- data


def read_conll(path: Path) -> list[Doc]:
    """Documents of eng.testa with gold PER/ORG/LOC character spans (IOB1 or IOB2)."""
    docs: list[list[list[tuple[str, str]]]] = []
    sentence: list[tuple[str, str]] = []

    def close_sentence() -> None:
        nonlocal sentence
        if sentence:
            if not docs:
                docs.append([])
            docs[-1].append(sentence)
        sentence = []

    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if not parts:
            close_sentence()
        elif parts[0] == "-DOCSTART-":
            close_sentence()
            docs.append([])
        else:
            sentence.append((parts[0], parts[-1]))
    close_sentence()

    result = []
    for number, sentences in enumerate(d for d in docs if d):
        lines, gold, offset = [], [], 0
        for sent in sentences:
            current: list | None = None  # [start, end, type]
            previous = "O"
            pieces, position = [], offset
            for token, tag in sent:
                if pieces:
                    position += 1  # the joining space
                start, end = position, position + len(token)
                kind = tag[2:] if tag != "O" else None
                begins = kind is not None and (tag.startswith("B-") or previous[2:] != kind)
                if current is not None and (kind is None or begins):
                    gold.append(tuple(current))
                    current = None
                if kind is not None and begins:
                    current = [start, end, kind]
                elif kind is not None:
                    current[1] = end
                pieces.append(token)
                position = end
                previous = tag
            if current is not None:
                gold.append(tuple(current))
            lines.append(" ".join(pieces))
            offset = position + 1  # the newline
        text = "\n".join(lines)
        gold = [g for g in gold if g[2] in CONLL_TYPES]
        for start, end, _ in gold:  # spans never start or end inside a token
            assert text[start:end] == text[start:end].strip() and text[start:end], (number, start, end)
        result.append(Doc(f"conll2003-testa-{number:04d}", text, gold))
    return result


def read_news_fair(path: Path, limit: int | None) -> tuple[list[Doc], Counter]:
    """Articles with their gold mentions that carry a Wikidata id (one per span)."""
    docs, notes = [], Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        if limit is not None and len(docs) >= limit:
            break
        record = json.loads(line)
        by_span: dict[Span, tuple[str, bool]] = {}
        for label in sorted(record["labels"], key=lambda lab: lab["id"]):
            qid = str(label.get("entity_id") or "")
            if not QID.fullmatch(qid):
                notes["gold mentions without a QID"] += 1
                continue
            span = (int(label["span"][0]), int(label["span"][1]))
            if span in by_span:
                notes["gold spans labelled twice (first kept)"] += 1
                continue
            by_span[span] = (qid, bool(label.get("coref")))
        # label: (QID, coref); coref mentions are pronouns and nominals ("he", "the firm")
        gold = [(s, e, label) for (s, e), label in sorted(by_span.items())]
        window = record.get("evaluation_span") or [0, len(record["text"])]
        docs.append(Doc(f"news-fair-{record['id']}", record["text"], gold, (int(window[0]), int(window[1]))))
    return docs, notes


# --------------------------------------------------------------------------- pipeline


def write_archive(path: Path, docs: Iterable[Doc], source: str) -> None:
    """One archive line per document. The body is the text HTML-escaped, so that a
    literal '<' or '&' in plain text survives the markup cleaning unchanged."""
    with path.open("w", encoding="utf-8") as out:
        for doc in docs:
            record = {
                "guid": doc.guid,
                "url": None,
                "title": "",
                "summary": "",
                "body": html.escape(doc.text, quote=False),
                "source": source,
                "published_at": "2024-01-15T12:00:00Z",
                "language": "en",
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


@dataclass(slots=True)
class Run:
    db_path: Path
    docs: int
    words: int = 0
    extract_seconds: float = 0.0
    dbt_seconds: float = 0.0
    transform_seconds: float = 0.0
    dbt_summary: str = ""


def load_and_transform(docs: list[Doc], source: str, workdir: Path) -> Run:
    """backfill, then transform (= extract_entities + assign_threads + dbt build, as
    transform() does; called step by step here so that the extraction report is ours to read)."""
    archive = workdir / f"{source}.jsonl"
    write_archive(archive, docs, source)
    db_path = workdir / source / "newsroom.duckdb"
    report = backfill(archive, source, db_path)
    if report.counts["rejected"] or report.counts["new"] != len(docs):
        sys.exit(f"{source}: backfill took {dict(report.counts)} for {len(docs)} documents")
    run = Run(db_path, len(docs))
    started = time.monotonic()
    entities = extract_entities(db_path)
    run.extract_seconds = entities.seconds
    run.words = entities.words
    print(f"  {entities.summary()}")
    assign_threads(db_path)
    dbt = run_dbt("build", db_path)
    run.transform_seconds = time.monotonic() - started
    run.dbt_seconds = dbt.elapsed_s
    run.dbt_summary = dbt.summary()
    print(f"  {run.dbt_summary}")
    if not dbt.success:
        sys.exit(f"{source}: dbt build failed: {dbt.failures}")
    return run


def steady_throughput(db_path: Path, workdir: Path, summary: dict) -> None:
    """extract_entities on eng.train's text, into a database that has had its first run."""
    docs = read_conll(CONLL_TRAIN)
    archive = workdir / "throughput.jsonl"
    write_archive(archive, docs, "throughput")
    backfill(archive, "throughput", db_path)
    report = extract_entities(db_path)
    rate = report.words / report.seconds if report.seconds else 0.0
    print(f"  steady state, eng.train text: {report.summary()}")
    summary["extract_entities words/s (steady)"] = f"{rate:,.0f} ({report.words:,} words)"


def read_back(db_path: Path, source: str) -> tuple[dict[str, str], dict[str, list[tuple]]]:
    """Clean body per guid and the body mentions (start, end, entity_type, entity_id, surface)."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        bodies = dict(
            con.execute(
                "SELECT guid, body FROM marts.article_versions WHERE source_id = ? AND version = 1", [source]
            ).fetchall()
        )
        mentions: dict[str, list[tuple]] = defaultdict(list)
        for guid, *mention in con.execute(
            """
            SELECT v.guid, m.start_char, m.end_char, m.entity_type, m.entity_id, m.surface
            FROM marts.entity_mentions m
            JOIN marts.article_versions v USING (article_id, version)
            WHERE v.source_id = ? AND m.version = 1 AND m.field = 'body'
            ORDER BY v.guid, m.start_char
            """,
            [source],
        ).fetchall():
            mentions[guid].append(tuple(mention))
    return bodies, mentions


def offset_map(original: str, clean: str) -> list[int | None]:
    """For each character of ``original`` (and its end), its index in ``clean``, or None
    where cleaning dropped it. Cleaning mostly collapses white space, which a linear walk
    follows exactly; anything else (a dropped doubled line or credit) is left to difflib."""
    mapping: list[int | None] = [None] * (len(original) + 1)
    i = j = 0
    while i < len(original) and j < len(clean):
        if original[i] == clean[j]:
            mapping[i] = j
            i, j = i + 1, j + 1
        elif original[i].isspace():
            i += 1
        elif clean[j].isspace():
            j += 1
        else:
            matcher = difflib.SequenceMatcher(None, original[i:], clean[j:], autojunk=False)
            for tag, i1, i2, j1, _ in matcher.get_opcodes():
                if tag == "equal":
                    for k in range(i2 - i1):
                        mapping[i + i1 + k] = j + j1 + k
            break
    mapping[len(original)] = len(clean)
    return mapping


def align_gold(doc: Doc, clean: str, notes: Counter) -> list[tuple[int, int, str]]:
    """Gold spans moved onto the clean text (dropped, and counted, where they do not survive)."""
    if clean == doc.text:
        return list(doc.gold)
    notes["documents changed by cleaning"] += 1
    mapping = offset_map(doc.text, clean)
    moved = []
    for start, end, label in doc.gold:
        new_start, last = mapping[start], mapping[end - 1]
        if (
            new_start is None
            or last is None
            or clean[new_start : last + 1].split() != doc.text[start:end].split()
        ):
            notes["gold spans lost in cleaning"] += 1
            continue
        moved.append((new_start, last + 1, label))
    return moved


# --------------------------------------------------------------------------- scores


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def b_cubed(pairs: list[tuple[object, object]]) -> tuple[float, float, float]:
    """B-cubed over items given as (predicted cluster, gold cluster)."""
    if not pairs:
        return 0.0, 0.0, 0.0
    pred_size = Counter(p for p, _ in pairs)
    gold_size = Counter(g for _, g in pairs)
    both = Counter(pairs)
    precision = sum(both[item] / pred_size[item[0]] for item in pairs) / len(pairs)
    recall = sum(both[item] / gold_size[item[1]] for item in pairs) / len(pairs)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def score_conll(docs: list[Doc], run: Run, summary: dict) -> None:
    bodies, mentions = read_back(run.db_path, "conll2003")
    notes: Counter = Counter()
    identical = sum(bodies.get(doc.guid) == doc.text for doc in docs)
    missing = [doc.guid for doc in docs if doc.guid not in bodies]
    if missing:
        sys.exit(f"conll2003: {len(missing)} documents missing from marts.article_versions: {missing[:5]}")
    counts = {t: Counter() for t in CONLL_TYPES}
    near_misses = 0  # a leading "the" or a trailing possessive inside the predicted span
    for doc in docs:
        gold = {(s, e, t) for s, e, t in align_gold(doc, bodies[doc.guid], notes)}
        predicted = set()
        for start, end, entity_type, _, surface in mentions.get(doc.guid, []):
            if entity_type not in TYPE_OF:
                continue
            kind = TYPE_OF[entity_type]
            predicted.add((start, end, kind))
            if (start, end, kind) not in gold:
                the = re.match(r"(?i)the\s+", surface)
                trimmed = (
                    start + (the.end() if the else 0),
                    end - (2 if re.search("['\u2019]s$", surface) else 0),
                )
                near_misses += trimmed != (start, end) and (*trimmed, kind) in gold
        for kind in CONLL_TYPES:
            g = {x for x in gold if x[2] == kind}
            p = {x for x in predicted if x[2] == kind}
            counts[kind]["tp"] += len(g & p)
            counts[kind]["fp"] += len(p - g)
            counts[kind]["fn"] += len(g - p)
    print(
        f"  clean text identical to the rebuilt text: {identical}/{len(docs)} documents"
        + "".join(f"; {k}: {v}" for k, v in sorted(notes.items()))
    )
    print(f"  {'type':<6}{'gold':>7}{'pred':>7}{'tp':>7}{'P':>8}{'R':>8}{'F1':>8}")
    total = Counter()
    for kind in (*CONLL_TYPES, "micro"):
        c = counts[kind] if kind != "micro" else total
        p, r, f = prf(c["tp"], c["fp"], c["fn"])
        print(
            f"  {kind:<6}{c['tp'] + c['fn']:>7}{c['tp'] + c['fp']:>7}{c['tp']:>7}{p:>8.3f}{r:>8.3f}{f:>8.3f}"
        )
        if kind != "micro":
            total.update(c)
        summary[f"conll {kind} P/R/F1"] = f"{p:.3f} / {r:.3f} / {f:.3f}"
    print(f"  predicted spans that miss gold only by a leading 'the' or a trailing 's: {near_misses}")


def clean_window(doc: Doc, clean: str) -> tuple[int, int]:
    """The annotated window of ``doc`` in clean-text offsets."""
    start, end = doc.window or (0, len(doc.text))
    if clean == doc.text:
        return start, end
    mapping = offset_map(doc.text, clean)
    inside = [m for m in mapping[start:end] if m is not None]
    return (inside[0], inside[-1] + 1) if inside else (0, 0)


def score_news_fair(docs: list[Doc], run: Run, summary: dict) -> None:
    bodies, mentions = read_back(run.db_path, "news-fair")
    notes: Counter = Counter()
    identical = sum(bodies.get(doc.guid) == doc.text for doc in docs)
    gold_total = gold_named = aligned_named = predicted_in_window = 0
    # gold names written as proper names (a capital first): what an NER model is for;
    # the rest of the linked gold is pronouns and common nouns ("students", "anxiety")
    proper_names = proper_exact = proper_overlapping = 0
    across: list[tuple[str, str]] = []  # (entity_id, QID) per aligned mention
    within: list[tuple[tuple[str, str], tuple[str, str]]] = []
    by_surface: list[tuple[str, str]] = []  # baseline: one entity per exact surface string
    for doc in docs:
        if doc.guid not in bodies:
            sys.exit(f"news-fair: {doc.guid} missing from marts.article_versions")
        clean = bodies[doc.guid]
        gold_total += len(doc.gold)
        gold_named += sum(not coref for _, _, (_, coref) in doc.gold)
        gold = {(s, e): label for s, e, label in align_gold(doc, clean, notes)}
        window = clean_window(doc, clean)
        spans = [(start, end) for start, end, *_ in mentions.get(doc.guid, [])]
        for (start, end), (_, coref) in gold.items():
            if coref or not clean[start:end][:1].isupper():
                continue
            proper_names += 1
            proper_exact += (start, end) in spans
            proper_overlapping += any(m_start < end and start < m_end for m_start, m_end in spans)
        for start, end, _, entity_id, surface in mentions.get(doc.guid, []):
            predicted_in_window += window[0] <= start and end <= window[1]
            if (start, end) not in gold:
                continue
            qid, coref = gold[(start, end)]
            aligned_named += not coref
            across.append((entity_id, qid))
            within.append(((doc.guid, entity_id), (doc.guid, qid)))
            by_surface.append((surface, qid))
    aligned = len(across)
    p, r, f = b_cubed(across)
    wp, wr, wf = b_cubed(within)
    sp, sr, sf = b_cubed(by_surface)
    print(
        f"  clean text identical to the original: {identical}/{len(docs)} documents"
        + "".join(f"; {k}: {v}" for k, v in sorted(notes.items()))
    )
    print(f"  gold mentions with a Wikidata id: {gold_total} ({gold_named} not coref, i.e. names)")
    print(f"  predicted body mentions inside the annotated windows (all types): {predicted_in_window}")
    print(
        f"  aligned by exact span: {aligned}/{gold_total} = {aligned / max(gold_total, 1):.1%} of gold; "
        f"{aligned_named}/{gold_named} = {aligned_named / max(gold_named, 1):.1%} of non-coref gold; "
        f"{aligned / max(predicted_in_window, 1):.1%} of predictions in the windows"
    )
    print(
        f"  gold proper names (not coref, a capital first): {proper_names}; found by exact span "
        f"{proper_exact} ({proper_exact / max(proper_names, 1):.1%}), overlapped by a mention "
        f"{proper_overlapping} ({proper_overlapping / max(proper_names, 1):.1%})"
    )
    clusters = f"{len({a for a, _ in across})} predicted vs {len({b for _, b in across})} gold clusters"
    print(f"  B-cubed across documents: P {p:.3f}  R {r:.3f}  F1 {f:.3f}  ({clusters})")
    print(f"  B-cubed within documents: P {wp:.3f}  R {wr:.3f}  F1 {wf:.3f}")
    print(f"  baseline, one entity per exact surface (across documents): P {sp:.3f}  R {sr:.3f}  F1 {sf:.3f}")
    summary["news-fair aligned gold mentions"] = (
        f"{aligned}/{gold_total} ({aligned / max(gold_total, 1):.1%})"
    )
    summary["news-fair proper names found (exact / overlap)"] = (
        f"{proper_exact / max(proper_names, 1):.1%} / {proper_overlapping / max(proper_names, 1):.1%} "
        f"of {proper_names}"
    )
    summary["news-fair B3 across docs P/R/F1"] = f"{p:.3f} / {r:.3f} / {f:.3f}"
    summary["news-fair B3 within docs P/R/F1"] = f"{wp:.3f} / {wr:.3f} / {wf:.3f}"
    summary["news-fair B3 surface baseline"] = f"{sp:.3f} / {sr:.3f} / {sf:.3f}"


# --------------------------------------------------------------------------- reading speed


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def read_speed(summary: dict) -> None:
    """Words/s of entities.extract's reading on bodies and headlines, 1 and 2 processes."""
    articles = [json.loads(line) for line in NEWS.read_text(encoding="utf-8").splitlines() if line.strip()]
    bodies = [a["body"] for a in articles if a.get("body")]
    titles = [a["title"] for a in articles if a.get("title")]
    titles *= max(1, HEADLINE_WORDS // sum(len(t.split()) for t in titles))
    read_texts(load_model("en"), ["Warm-up."])  # the model and the rules' caches, loaded once
    for name, texts in (("bodies", bodies), ("headlines", titles)):
        words = sum(len(text.split()) for text in texts)
        print(f"\n{name}: {len(texts):,} texts, {words:,} words ({words / len(texts):.0f} a text)")
        started, cpu_started = time.monotonic(), time.process_time()
        extract(texts, ["en"] * len(texts), n_process=1)
        seconds, cpu = time.monotonic() - started, time.process_time() - cpu_started
        print(
            f"  1 process:   {words / seconds:>8,.0f} words/s ({seconds:.1f} s; "
            f"{words / cpu:,.0f} words per CPU second); load average {load_average()}"
        )
        summary[f"read {name}, 1 process"] = f"{words / seconds:,.0f} words/s"
        batches = batches_of(texts, ["en"] * len(texts))
        started = time.monotonic()
        with WorkerPool(2) as pool:
            list(pool.read([("en", ["Warm-up."]), ("en", ["Warm-up."])]))  # both load their model
            startup = time.monotonic() - started
            started = time.monotonic()
            for _ in pool.read(batches):
                pass
            seconds = time.monotonic() - started
        print(
            f"  2 processes: {words / seconds:>8,.0f} words/s ({seconds:.1f} s, after {startup:.1f} s "
            f"starting them); load average {load_average()}"
        )
        summary[f"read {name}, 2 processes"] = f"{words / seconds:,.0f} words/s (load {load_average()})"


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="documents per data set (default: all)")
    parser.add_argument(
        "--throughput-only", action="store_true", help="only the reading speed on bodies and headlines"
    )
    args = parser.parse_args()
    if args.throughput_only:
        if not NEWS.is_file():
            sys.exit(f"benchmark data not found: expected {NEWS}")
        print(f"machine: {os.cpu_count()} CPUs; load average {load_average()}")
        summary = {"load at start": load_average()}
        read_speed(summary)
        print_summary(summary)
        return
    if not (CONLL.is_file() and NEWS_FAIR.is_file()):
        sys.exit(
            f"benchmark data not found: expected {CONLL} and {NEWS_FAIR} "
            "(../shared is only beside a development checkout)"
        )
    os.environ.setdefault("DO_NOT_TRACK", "1")
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {os.cpu_count()} CPUs; uptime: {load}")
    summary: dict[str, str] = {"load at start": load.split("load average:")[-1].strip()}

    conll = read_conll(CONLL)[: args.limit]
    news_fair, fair_notes = read_news_fair(NEWS_FAIR, args.limit)

    started = time.monotonic()
    load_model("en")
    model_seconds = time.monotonic() - started
    print(f"model load: {model_seconds:.1f} s (once per process; not in the figures below)")

    with tempfile.TemporaryDirectory(prefix="bench-entities-") as tmp:
        workdir = Path(tmp)
        gold = sum(len(d.gold) for d in conll)
        print(f"\nCoNLL-2003 eng.testa: {len(conll)} documents, {gold} gold PER/ORG/LOC mentions")
        run = load_and_transform(conll, "conll2003", workdir)
        score_conll(conll, run, summary)
        extract_rate = run.words / run.extract_seconds if run.extract_seconds else 0.0
        transform_rate = run.words / run.transform_seconds if run.transform_seconds else 0.0
        print(
            f"  throughput: extract_entities {run.words:,} words in {run.extract_seconds:.1f} s = "
            f"{extract_rate:,.0f} words/s; transform (extract + dbt build) {run.transform_seconds:.1f} s = "
            f"{transform_rate:,.0f} words/s"
        )
        summary["extract_entities words/s (CoNLL)"] = f"{extract_rate:,.0f} ({run.words:,} words)"
        summary["transform words/s (CoNLL)"] = f"{transform_rate:,.0f} (dbt build {run.dbt_seconds:.1f} s)"
        if CONLL_TRAIN.is_file() and args.limit is None:
            steady_throughput(run.db_path, workdir, summary)

        print(
            f"\nnews-fair v2: {len(news_fair)} articles"
            + "".join(f"; {k}: {v}" for k, v in sorted(fair_notes.items()))
        )
        run = load_and_transform(news_fair, "news-fair", workdir)
        score_news_fair(news_fair, run, summary)

    if NEWS.is_file() and args.limit is None:
        read_speed(summary)
    print_summary(summary)


def print_summary(summary: dict) -> None:
    print("\n== summary ==")
    width = max(map(len, summary))
    for key, value in summary.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
