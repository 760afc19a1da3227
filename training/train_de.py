"""Train the German NER model (PERSON, ORG, PLACE) from ../shared data, and score it on a
GermEval 2014 part it never saw.

    nice -n 19 uv run --group training python training/train_de.py --out /tmp/de_news --lexicon \\
        --dev-share 0.5 --set training.patience=5000 --set training.optimizer.use_averages=True
    nice -n 19 uv run python training/train_de.py --out /tmp/de_plain [--europeana] [--english 0.5]

Data (all in ``../shared/data/entities``):

* GermEval 2014 (CC BY 4.0): only its dev and test splits are available. We train on
  ``NER-de-test.tsv`` (5,100 sentences, minus a seeded 10% slice that picks the checkpoint) and
  report on ``NER-de-dev.tsv`` (2,200 sentences), which training never touches. ``--dev-share``
  trains on a seeded share of the dev split too and reports on the rest (the shipped model: 0.5).
  PER -> PERSON, ORG -> ORG, LOC -> PLACE; OTH and the ``*deriv`` ("deutsche") / ``*part``
  ("EU-weit") labels are not names of their own and become O.
* Europeana Newspapers German (CC0), optional: historic OCR newspapers, PER/LOC/ORG, one token
  stream per library, cut into pseudo-sentences at ".". Measured: it costs 3 points on the
  held-out half (0.553 against 0.583), so it is left out.
* CoNLL-2003 English train, optional (``--english SHARE``): names such as "Obama" or "Reuters"
  look the same in both languages. Measured with 0.3 (284 documents): 0.555 on the dev split
  against 0.542, but only 24 of the demo's 37 German names against 30, and persons in its people
  chart lost, so it is left out.

Word features (``--lexicon``, in the shipped model): German capitalises every noun, so a capital
says little about a name, and 5,100 sentences teach the model few of the nouns it will meet. With
``--lexicon`` each word form gets a small fixed vector of what a lexicon knows of it
(``lexicon_vectors``): an everyday noun, a place name, a first name, a surname or another proper
name in German Wiktionary (the ``german-nouns`` package in the ``training`` dependency group,
CC BY-SA 4.0: every case and number form of ~100,000 nouns), or a word of a name in the product's
gazetteer (``ingestion._derive.places``). The product reads the same table to drop "people" that
are everyday nouns (``ner.nouns_not_people``). Measured: trained on the test split, 0.622 on the
whole dev split (seed 1: 0.617) against 0.542 without; with ``--dev-share 0.5 --set
training.patience=5000``, 0.648 on the held-out half, and with parameter averaging besides
(``--set training.optimizer.use_averages=True``, the shipped model; chosen by the checkpoint
slice, 0.662 against 0.648) 0.651, against 0.545 for the model before. The model grows from
6.6 to 11.7 MB (467,000 forms).

Scores: mention-level exact-span P/R/F1 (the GermEval "outer" measure, on our three types) and
the document-level (surface, type) measure used for English, with each GermEval sentence as a
document (GermEval sentences come from separate pages).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import spacy
from common import DEFAULT_DATA, HERE, Sentence, read_config, text_and_spans, to_docs, train, write_corpus
from spacy.language import Language
from spacy.vectors import Vectors

from ingestion._derive.places import place_rows

DEFAULT_CONFIG = HERE / "configs" / "de_ner.cfg"
TYPES = ("PERSON", "ORG", "PLACE")
LABELS = {"PER": "PERSON", "ORG": "ORG", "LOC": "PLACE"}  # anything else (OTH, *deriv, *part, MISC) -> O


LICENCES = {
    "germeval2014_test": "CC BY 4.0 (Benikova, Biemann, Reznicek 2014)",
    "germeval2014_dev_share": "CC BY 4.0 (Benikova, Biemann, Reznicek 2014)",
    "europeana_de": "CC0 1.0 (Neudecker 2016)",
    "conll2003_en": "Reuters RCV1 text (team-internal use; the model may ship, the text may not)",
    "german_nouns_wiktionary": "CC BY-SA 4.0 (German Wiktionary, via the german-nouns package): the "
    "model's word-feature table is derived from it and shares its licence",
}

#: What the lexicon knows of a word form, one vector dimension each (a last one says "known").
LEXICON_FEATURES = ("noun", "place_name", "first_name", "surname", "proper_name", "gazetteer", "big_place")
#: German Wiktionary's parts of speech, as features; a form with none of the name kinds is an everyday noun.
NAME_KINDS = {"Toponym": "place_name", "Vorname": "first_name", "Nachname": "surname"}
OTHER_NAMES = {"Eigenname", "Straßenname"}


# --------------------------------------------------------------------------- corpora


def read_germeval(path: Path) -> list[Sentence]:
    """GermEval TSV: ``#`` source line, then ``index  token  outer-tag  inner-tag`` per token.
    Only the outer level is used (the nested inner level is rare and mostly *part/deriv)."""
    sentences: list[Sentence] = []
    current: Sentence = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if line.startswith("#\t") or not line.strip():
            if current:
                sentences.append(current)
            current = []
            continue
        current.append((parts[1], parts[2]))
    if current:
        sentences.append(current)
    return sentences


VALID_TAG = {f"{p}-{t}" for p in "BI" for t in ("PER", "ORG", "LOC", "MISC")} | {"O"}


def read_europeana(path: Path, notes: Counter) -> list[Sentence]:
    """One OCR token stream: ``token TAG`` lines, cut after each "." token (the corpus has no
    sentence breaks), at most 60 tokens a piece. Lines whose tag is not a valid tag (typos
    such as ``PEr``, URLs) are dropped: the caveat in its SOURCE.md."""
    sentences: list[Sentence] = []
    current: Sentence = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) != 2 or parts[1] not in VALID_TAG:
            if parts:
                notes["europeana lines dropped (malformed)"] += 1
            continue
        current.append((parts[0], parts[1]))
        if parts[0] == "." or len(current) >= 60:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences


def read_conll_documents(path: Path) -> list[list[Sentence]]:
    docs: list[list[Sentence]] = [[]]
    current: Sentence = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if not parts or parts[0] == "-DOCSTART-":
            if current:
                docs[-1].append(current)
            current = []
            if parts:
                docs.append([])
            continue
        current.append((parts[0], parts[-1]))
    if current:
        docs[-1].append(current)
    return [d for d in docs if d]


def split_dev(sentences: list[Sentence], share: float, seed: int) -> tuple[list[Sentence], list[Sentence]]:
    """GermEval dev cut in two by a seeded draw: the part held out for the reported scores
    (never trained on, never used to choose a checkpoint) and ``share`` of it to train on."""
    order = list(range(len(sentences)))
    random.Random(f"germeval-dev-{seed}").shuffle(order)
    trained = set(order[: round(len(order) * share)])
    return (
        [s for i, s in enumerate(sentences) if i not in trained],
        [s for i, s in enumerate(sentences) if i in trained],
    )


def lexicon_vectors(out: Path) -> tuple[Path, int]:
    """A blank German pipeline whose vectors give each known word form its LEXICON_FEATURES
    (0/1, plus 1 for "known"; unknown words get zeros). Forms share the few distinct rows."""
    import german_nouns  # the training dependency group: only this option needs it

    features: dict[str, int] = {}

    def mark(form: str, feature: str) -> None:
        features[form] = features.get(form, 0) | 1 << LEXICON_FEATURES.index(feature)

    with (Path(german_nouns.__path__[0]) / "nouns.csv").open(encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        next(rows)
        for lemma, pos, *forms in rows:
            kinds = set(pos.split(","))
            names = [NAME_KINDS[k] for k in sorted(kinds & NAME_KINDS.keys())]
            names += ["proper_name"] if kinds & OTHER_NAMES else []
            marks = names or (["noun"] if "Substantiv" in kinds else [])
            # columns after pos: genus (5), then every case and number form
            for form in {lemma, *forms[5:]}:
                form = form.strip()
                if form and " " not in form:
                    for feature in marks:
                        mark(form, feature)
    for name, _, kind, _, population in place_rows():
        for word in name.split():
            if len(word) > 1 and word[0].isupper():
                mark(word, "gazetteer")
                if kind == "country" or (population or 0) >= 100_000:
                    mark(word, "big_place")
    combos = sorted(set(features.values()))
    row_of = {combo: row for row, combo in enumerate(combos)}
    table = np.zeros((len(combos), len(LEXICON_FEATURES) + 1), dtype="float32")
    for combo, row in row_of.items():
        table[row, : len(LEXICON_FEATURES)] = [combo >> bit & 1 for bit in range(len(LEXICON_FEATURES))]
        table[row, -1] = 1.0
    nlp = spacy.blank("de")
    vectors = Vectors(data=table)
    for form, combo in sorted(features.items()):
        vectors.add(nlp.vocab.strings[form], row=row_of[combo])  # the form's hash; the string is not stored
    nlp.vocab.vectors = vectors
    path = out / "lexicon"
    nlp.to_disk(path)
    return path, len(features)


def grouped(sentences: list[Sentence], size: int) -> Iterator[list[Sentence]]:
    for i in range(0, len(sentences), size):
        yield sentences[i : i + size]


# --------------------------------------------------------------------------- evaluation


def prf(c: Counter) -> dict[str, float]:
    p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
    r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
    return {"p": round(p, 4), "r": round(r, 4), "f": round(2 * p * r / (p + r) if p + r else 0.0, 4)}


def count(counter: dict[str, Counter], gold: set, predicted: set) -> None:
    for t in ("all", *TYPES):
        g = {x for x in gold if t == "all" or x[-1] == t}
        p = {x for x in predicted if t == "all" or x[-1] == t}
        counter[t].update(tp=len(g & p), fp=len(p - g), fn=len(g - p))


def evaluate(nlp: Language, sentences: list[Sentence]) -> dict:
    items = [text_and_spans([s], LABELS) for s in sentences]
    texts = [t for t, _ in items]
    for _ in nlp.pipe(texts[:50]):  # warm-up
        pass
    started = time.perf_counter()
    docs = list(nlp.pipe(texts, batch_size=256))
    seconds = time.perf_counter() - started
    mention = {t: Counter() for t in ("all", *TYPES)}
    document = {t: Counter() for t in ("all", *TYPES)}
    for doc, (text, gold) in zip(docs, items, strict=True):
        predicted = [(e.start_char, e.end_char, e.label_) for e in doc.ents if e.label_ in TYPES]
        count(mention, set(gold), set(predicted))
        count(document, {(text[s:e], t) for s, e, t in gold}, {(text[s:e], t) for s, e, t in predicted})
    words = sum(len(t.split()) for t in texts)
    return {
        "sentences": len(sentences),
        "mention_level_exact_span": {t: prf(c) for t, c in mention.items()},
        "doc_level_surface_type": {t: prf(c) for t, c in document.items()},
        "words_per_second": round(words / seconds),
    }


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--heldout",
        type=float,
        default=0.1,
        help="share of the training sentences set aside to choose the checkpoint",
    )
    parser.add_argument("--europeana", action="store_true", help="add Europeana German newspapers")
    parser.add_argument(
        "--lexicon", action="store_true", help="word features from German Wiktionary and the gazetteer"
    )
    parser.add_argument(
        "--english", type=float, default=0.0, help="share of CoNLL-2003 English train documents to add"
    )
    parser.add_argument(
        "--repeat-germeval", type=int, default=1, help="times GermEval train is repeated (upsampling)"
    )
    parser.add_argument(
        "--dev-share",
        type=float,
        default=0.0,
        help="seeded share of GermEval dev sentences to train on too; the rest is the held-out part",
    )
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--eval-only", action="store_true")
    args = parser.parse_args()

    germeval = args.data / "train" / "germeval2014"
    heldout_part, dev_train = split_dev(read_germeval(germeval / "NER-de-dev.tsv"), args.dev_share, args.seed)
    model_dir = args.out / "model-best"
    args.out.mkdir(parents=True, exist_ok=True)
    sources = ["germeval2014_test"] + (["germeval2014_dev_share"] if dev_train else [])
    train_seconds = None

    if not args.eval_only:
        nlp = spacy.blank("de")
        notes: Counter = Counter()
        train_sents = read_germeval(germeval / "NER-de-test.tsv") + dev_train
        rng = random.Random(args.seed)
        order = list(range(len(train_sents)))
        rng.shuffle(order)
        dev_ids = set(order[: round(len(order) * args.heldout)])
        # GermEval sentences are from different pages: grouping 5 of them into one example only
        # makes batches less fiddly, it adds no context the model could use.
        train_docs = (
            to_docs(
                nlp, grouped([s for i, s in enumerate(train_sents) if i not in dev_ids], 5), LABELS, notes
            )
            * args.repeat_germeval
        )
        dev_docs = to_docs(
            nlp, grouped([s for i, s in enumerate(train_sents) if i in dev_ids], 5), LABELS, notes
        )
        sizes = {
            "germeval_train_sentences": len(train_sents) - len(dev_ids),
            "germeval_dev_slice_sentences": len(dev_ids),
        }
        if args.europeana:
            sources.append("europeana_de")
            eur = [
                s
                for name in ("enp_DE.lft.bio", "enp_DE.onb.bio", "enp_DE.sbb.bio")
                for s in read_europeana(args.data / "train" / "europeana_newspapers" / name, notes)
            ]
            sizes["europeana_pieces"] = len(eur)
            train_docs += to_docs(nlp, grouped(eur, 5), LABELS, notes)
        if args.english:
            sources.append("conll2003_en")
            docs = read_conll_documents(args.data / "conll2003" / "eng.train")
            rng.shuffle(docs)
            docs = docs[: round(len(docs) * args.english)]
            sizes["english_conll_docs"] = len(docs)
            train_docs += to_docs(nlp, (piece for d in docs for piece in grouped(d, 10)), LABELS, notes)
        corpus_dir = write_corpus(args.out, train_docs, dev_docs)
        settings = list(args.set)
        if args.lexicon:
            sources.append("german_nouns_wiktionary")
            lexicon, sizes["lexicon_forms"] = lexicon_vectors(args.out)
            settings += [
                f"paths.vectors={lexicon}",
                "components.tok2vec.model.embed.include_static_vectors=True",
            ]
        print(f"examples: train {len(train_docs)}, dev {len(dev_docs)}; {dict(notes)}; {sizes}", flush=True)
        train_seconds = train(read_config(args.config), corpus_dir, args.out, args.seed, settings)
        (args.out / "train_info.json").write_text(
            json.dumps(
                {
                    "train_seconds": train_seconds,
                    "sizes": sizes,
                    "notes": dict(notes),
                    "sources": sources,
                    "args": vars(args),
                },
                default=str,
                indent=1,
            )
        )

    info_path = args.out / "train_info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    nlp = spacy.load(model_dir)
    result = evaluate(nlp, heldout_part)
    result["heldout_part"] = (
        f"GermEval 2014 NER-de-dev.tsv, {len(heldout_part)} sentences"
        f"{f' (the {1 - args.dev_share:.0%} not trained on)' if args.dev_share else ''}"
        ", never used for checkpoint choice"
    )
    result["train_seconds"] = info.get("train_seconds", train_seconds)
    result["model_bytes"] = sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())
    meta = json.loads((model_dir / "meta.json").read_text())
    trained_on = info.get("sources", sources)
    result["checkpoint_slice_ents_f"] = meta["performance"].get("ents_f")
    (args.out / "metrics.json").write_text(json.dumps(result, indent=1))
    meta.update(
        {
            "name": "newsroom_ner_de",
            "version": date.today().strftime("%Y.%m.%d"),
            "description": "German NER (PERSON, ORG, PLACE), CPU, "
            + ("lexicon word features" if "german_nouns_wiktionary" in trained_on else "no vectors"),
            "license": "see training_data",
            "training_data": [{"corpus": s, "licence": LICENCES[s]} for s in trained_on],
            "training": {
                "date": date.today().isoformat(),
                "seed": args.seed,
                "train_seconds": result["train_seconds"],
            },
            **(
                {"lexicon_features": [*LEXICON_FEATURES, "known"]}
                if "german_nouns_wiktionary" in trained_on
                else {}
            ),
            "dev_scores": {
                result["heldout_part"]: {
                    k: result[k] for k in ("mention_level_exact_span", "doc_level_surface_type")
                }
            },
        }
    )
    (model_dir / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.exit(main())
