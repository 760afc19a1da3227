"""What the training scripts share: the data location, IOB sentences to product-style
text with entity spans, spaCy Docs from them, and one training run from a config."""

from __future__ import annotations

import ast
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc, DocBin
from thinc.api import Config

HERE = Path(__file__).resolve().parent
#: The labelled data: ``../shared/data/entities`` beside the repository, or
#: ``$NEWSROOM_SHARED_DIR/data/entities``.
DEFAULT_DATA = Path(os.environ.get("NEWSROOM_SHARED_DIR", HERE.parents[1] / "shared")) / "data" / "entities"

#: (token, IOB tag) for one sentence.
Sentence = list[tuple[str, str]]


def spans_of(sentence: Sentence, labels: dict[str, str]) -> list[tuple[int, int, str]]:
    """Token spans (start, end, our label) of one sentence, for the tags ``labels`` maps.
    Works for IOB1 and IOB2: an entity starts at B-X, or at I-X after O or another type
    (so a B-LOCderiv is its own type and never merges with a neighbouring LOC)."""
    spans: list[tuple[int, int, str]] = []
    current: list | None = None
    previous = "O"
    for i, (_, tag) in enumerate(sentence):
        kind = tag[2:] if tag[:2] in ("B-", "I-") else None
        begins = kind is not None and (tag.startswith("B-") or previous == "O" or previous[2:] != kind)
        if current is not None and (kind is None or begins):
            spans.append(tuple(current))
            current = None
        if kind is not None and begins:
            current = [i, i + 1, kind]
        elif kind is not None and current is not None:
            current[1] = i + 1
        previous = tag if kind is not None else "O"
    if current is not None:
        spans.append(tuple(current))
    return [(s, e, labels[k]) for s, e, k in spans if k in labels]


def text_and_spans(
    sentences: list[Sentence], labels: dict[str, str]
) -> tuple[str, list[tuple[int, int, str]]]:
    """The text as the product sees it (tokens joined by a space, sentences by a newline)
    and the character spans of its entities."""
    lines: list[str] = []
    spans: list[tuple[int, int, str]] = []
    offset = 0
    for sentence in sentences:
        starts, position = [], offset
        for token, _ in sentence:
            starts.append(position)
            position += len(token) + 1
        for s, e, label in spans_of(sentence, labels):
            spans.append((starts[s], starts[e - 1] + len(sentence[e - 1][0]), label))
        line = " ".join(token for token, _ in sentence)
        lines.append(line)
        offset += len(line) + 1
    return "\n".join(lines), spans


def to_docs(
    nlp: Language, pieces: Iterable[list[Sentence]], labels: dict[str, str], notes: Counter
) -> list[Doc]:
    """spaCy Docs made by the pipeline's own tokenizer, one per piece, gold entities set.
    A span the tokenizer cannot align to is dropped and counted (it is rare: tokens are
    space-separated already, and the tokenizer only splits further)."""
    out = []
    for piece in pieces:
        text, spans = text_and_spans(piece, labels)
        doc = nlp.make_doc(text)
        ents = []
        for start, end, label in spans:
            span = doc.char_span(start, end, label=label)
            if span is None:
                notes["gold spans not on token boundaries (dropped)"] += 1
                continue
            ents.append(span)
        notes["entities"] += len(ents)
        doc.ents = ents
        out.append(doc)
    return out


def write_corpus(out: Path, train_docs: list[Doc], dev_docs: list[Doc]) -> Path:
    corpus_dir = out / "corpus"
    corpus_dir.mkdir(exist_ok=True)
    DocBin(docs=train_docs, store_user_data=False).to_disk(corpus_dir / "train.spacy")
    DocBin(docs=dev_docs, store_user_data=False).to_disk(corpus_dir / "dev.spacy")
    return corpus_dir


def read_config(path: Path) -> Config:
    # Not interpolated: an override of system.seed must reach training.seed (${system.seed}).
    return Config().from_disk(path, interpolate=False)


def train(config: Config, corpus_dir: Path, out: Path, seed: int, settings: list[str]) -> int:
    """Train ``config`` on the corpus with ``settings`` ("section.key=value") applied;
    the models go to ``out``/model-best and model-last. Returns the seconds it took."""
    from spacy.cli.train import train as spacy_train

    overrides: dict[str, object] = {
        "paths.train": str(corpus_dir / "train.spacy"),
        "paths.dev": str(corpus_dir / "dev.spacy"),
        "system.seed": seed,
    }
    for item in settings:
        key, _, value = item.partition("=")
        overrides[key] = _value(value)
    config = config.merge(Config(_nested(overrides)))
    config_path = out / "config.cfg"
    config.to_disk(config_path)
    # Start clean so that a stale model from an earlier run can never be scored.
    for stale in ("model-best", "model-last"):
        shutil.rmtree(out / stale, ignore_errors=True)
    started = time.monotonic()
    spacy_train(config_path, out, use_gpu=-1)
    return round(time.monotonic() - started)


def _value(raw: str):
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


def _nested(flat: dict[str, object]) -> dict:
    """{"a.b.c": 1} -> {"a": {"b": {"c": 1}}} (for merging overrides into a Config)."""
    nested: dict = {}
    for key, value in flat.items():
        *path, last = key.split(".")
        node = nested
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return nested
