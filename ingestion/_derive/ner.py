"""The named-entity models and the language each text is read in.

Our own spaCy pipelines (tok2vec + ner, CPU, no vectors) ship in ``ner_models/<language>/``;
``training/`` rebuilds them. Each text is read by the model of its article's
language: detected from the article's own words when the detector is sure,
else the language its source declares.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from functools import cache
from pathlib import Path

from ingestion.exceptions import EntityExtractionError

MODELS_DIR = Path(__file__).with_name("ner_models")
#: Languages with a model of ours (``ner_models/<language>``).
MODEL_LANGUAGES = ("en", "de")
#: A detected language is trusted from this probability up; below it the
#: source's declared language decides (headlines alone are often too short).
DETECTION_CONFIDENCE = 0.8
#: Characters of an article the detector reads: enough for any language, cheap.
DETECTION_SAMPLE_CHARS = 2_000
#: The languages the detector chooses among: those news feeds mostly use. With all 97
#: it reads short English headlines as Nigerian Pidgin or Luxembourgish; limited to
#: these, it was right on 97.8% of the labelled headlines we measured and on all bodies
#: (py3langid's code for Norwegian is "no").
DETECTED_LANGUAGES = (
    "en", "de", "fr", "es", "it", "nl", "pt", "sv", "no", "da", "pl", "ru", "uk", "tr", "zh", "ja", "ar",
)  # fmt: skip

#: The longest run of non-whitespace characters handed to the tokenizer. Its
#: prefix and suffix rules take time quadratic in a run's length (12,000 brackets
#: or "="s take ~30 s), so longer runs (junk, data, the odd long URL) get a space
#: every MAX_RUN_CHARS characters in place of a character, which keeps every
#: offset pointing into the text as stored.
MAX_RUN_CHARS = 100
_LONG_RUN = re.compile(rf"(?<!\S)\S{{{MAX_RUN_CHARS + 1},}}")

#: (start_char, end_char, surface, label)
Mention = tuple[int, int, str, str]
#: What the model made of one text: its mentions, or why it could not read it.
Reading = tuple[list[Mention], str | None]


def language_key(language: str | None) -> str | None:
    """The primary subtag of a language tag ('de-CH' -> 'de'); None when there is none."""
    key = (language or "").strip().lower().replace("_", "-").split("-")[0]
    return key or None


@cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(DETECTED_LANGUAGES))
    return identifier


def article_language(text: str, declared: str | None) -> str:
    """The language to read an article in: what its words say when the detector
    is sure, else what its source declares; with neither, the detector's guess
    when we have a model for it, else English (the most common undeclared case)."""
    declared_key = language_key(declared)
    sample = text[:DETECTION_SAMPLE_CHARS]
    if sample.strip():
        detected, probability = _identifier().classify(sample)
        if probability >= DETECTION_CONFIDENCE:
            return detected
        if declared_key is None and detected in MODEL_LANGUAGES:
            return detected
    return declared_key or "en"


def model_path(language: str) -> Path:
    return MODELS_DIR / language


@cache
def model_meta(language: str) -> dict:
    path = model_path(language) / "meta.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EntityExtractionError(
            f"the {language} entity model is missing or damaged ({path}: {exc}); reinstall newsroom "
            "or rebuild it with `uv run python training/train_ner.py`"
        ) from exc


def extractor_id() -> str:
    """Everything that changes what extraction writes: each model's name and
    version, and the language detector's version."""
    models = ";".join(
        f"{language}={model_meta(language)['name']}-{model_meta(language)['version']}"
        for language in MODEL_LANGUAGES
    )
    detector = f"py3langid-{importlib.metadata.version('py3langid')}:{','.join(DETECTED_LANGUAGES)}"
    return f"ner:{models};langid={detector}"


_MODELS: dict[str, object] = {}


def load_model(language: str):
    """The model for ``language``, loaded once per process."""
    if language not in _MODELS:
        import spacy

        meta = model_meta(language)
        try:
            _MODELS[language] = spacy.load(model_path(language))
        except Exception as exc:  # any failure to load is the same to the user: a damaged model
            raise EntityExtractionError(
                f"the {language} entity model {meta.get('name')} {meta.get('version')} cannot be "
                f"loaded from {model_path(language)} ({_reason(exc)}); reinstall newsroom"
            ) from exc
    return _MODELS[language]


def _reason(exc: BaseException) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}"[:300]


def _spaced_run(match: re.Match[str]) -> str:
    run = match.group()
    pieces = (" " + run[i + 1 : i + MAX_RUN_CHARS] for i in range(MAX_RUN_CHARS, len(run), MAX_RUN_CHARS))
    return run[:MAX_RUN_CHARS] + "".join(pieces)


def tokenizer_safe(text: str) -> str:
    """The text with runs of non-whitespace longer than MAX_RUN_CHARS broken by spaces, same length."""
    return _LONG_RUN.sub(_spaced_run, text)


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
