"""The named-entity models and the language each text is read in.

Our own spaCy pipelines (tok2vec + ner, CPU, no word embeddings; the German one carries a
table of what a lexicon knows of each word form) ship in ``ner_models/<language>/``;
``training/`` rebuilds them. Each text is read by the model of its article's
language: detected from the article's own words when the detector is sure,
else the language its source declares.
"""

from __future__ import annotations

import bisect
import importlib.metadata
import importlib.util
import itertools
import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

from ingestion._derive.places import gazetteer_id, place_rows
from ingestion.exceptions import EntityExtractionError

MODELS_DIR = Path(__file__).with_name("ner_models")
#: Languages read by a pipeline installed as a package (only its tok2vec and ner run):
#: spaCy's French pipeline, trained on WikiNER; no French training data we may use is
#: modern news, and on historic French newspapers our own would start from nothing.
PACKAGED_MODELS = {"fr": "fr_core_news_sm"}
#: Languages with a model: ours (``ner_models/<language>``) and the packaged ones.
MODEL_LANGUAGES = ("en", "de", *PACKAGED_MODELS)
#: Languages whose texts also get the well-known places their model missed, found by
#: name in the gazetteer (the German model, trained on 5,000 sentences, misses
#: "Düsseldorf" or "Kiew" in a headline): countries, and cities from
#: GAZETTEER_MIN_POPULATION people, by every Latin-script name they go by.
GAZETTEER_LANGUAGES = ("de",)
GAZETTEER_MIN_POPULATION = 500_000
#: The models' labels in ours: spaCy's French pipeline says PER and LOC.
LABELS = {"PER": "PERSON", "LOC": "PLACE"}
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

#: Lowercase words inside names ("Ursula von der Leyen", "Palais des Nations",
#: "Charles de Gaulle"), where our models tend to stop: a mention is carried across
#: one or two of them (see ``joined_over_particles``).
NAME_PARTICLES = (
    "al", "bin", "da", "das", "de", "del", "della", "den", "der", "des", "di", "dos", "du", "ibn", "la", "le",
    "ten", "ter", "van", "von", "zu",
)  # fmt: skip
_PARTICLE = rf"(?:{'|'.join(NAME_PARTICLES)})"
_PARTICLE_RUN = rf"(?:{_PARTICLE}\s+){{1,2}}"
_PARTICLES_BETWEEN = re.compile(rf"\s+{_PARTICLE_RUN}")
_PARTICLES_BEFORE = re.compile(rf"(?:^|(?<=\s)){_PARTICLE_RUN}$")
_PARTICLES_AT_END = re.compile(rf"(?:\s+{_PARTICLE}){{1,2}}$")
_WORD_AFTER = re.compile(r"\s*([\w'\u2019-]+)")
_WORD = re.compile(r"[^\W\d_][\w'\u2019-]*")
#: The longest place name, in words, looked up in the gazetteer ("Vereinigte Arabische Emirate").
_LONGEST_PLACE_WORDS = 3

#: Words that put a storm's name after them, in the languages we read ("Storm Isolde",
#: "Sturm „Isolde“", "Hurricane Katrina", "la tempête Ciarán"). Storms take people's first
#: names, and a storm at the top of a people chart is the kind of error no reader forgives.
STORM_WORDS = (
    "storm", "tropical storm", "hurricane", "typhoon", "cyclone",
    "sturm", "sturmtief", "orkan", "orkantief", "tief", "tiefdruckgebiet", "hurrikan", "taifun", "zyklon",
    "wirbelsturm", "tropensturm", "tempête", "ouragan", "typhon",
)  # fmt: skip
_STORM = rf"(?:{'|'.join(STORM_WORDS)})(?:e?s)?"  # German genitives: "des Sturms"
_STORM_WORD = re.compile(_STORM, re.IGNORECASE)
#: Quotation marks a storm's name may stand in: straight, German, English and French ones.
_QUOTES = "\"'\u201e\u201c\u201d\u201a\u2018\u2019\u00ab\u00bb"
_STORM_BEFORE = re.compile(rf"\b{_STORM}\s*[{_QUOTES}]?\s*$", re.IGNORECASE)
_STORM_FIRST = re.compile(rf"{_STORM}\s+\S", re.IGNORECASE)

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
    if package := PACKAGED_MODELS.get(language):
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            return MODELS_DIR / f"{package} (not installed)"
        return Path(spec.origin).parent / f"{package}-{importlib.metadata.version(package)}"
    return MODELS_DIR / language


@cache
def model_meta(language: str) -> dict:
    path = model_path(language) / "meta.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EntityExtractionError(
            f"the {language} entity model is missing or damaged ({path}: {exc}); reinstall newsroom "
            f"or rebuild it with `uv run python training/train_{language}.py`"
        ) from exc


#: The version of the rules applied to the models' output (``joined_over_particles``,
#: ``places_missed``, ``nouns_not_people``, ``storms_not_people``): part of ``extractor_id``, so raise it
#: whenever those rules, their constants or the languages they apply to change.
RULES_VERSION = 4


def extractor_id() -> str:
    """Everything that changes what extraction writes: each model's name and
    version, the rules applied to their output and the gazetteer they read, and the
    language detector's version."""
    models = ";".join(
        f"{language}={model_meta(language)['name']}-{model_meta(language)['version']}"
        for language in MODEL_LANGUAGES
    )
    detector = f"py3langid-{importlib.metadata.version('py3langid')}:{','.join(DETECTED_LANGUAGES)}"
    return f"ner:{models};rules={RULES_VERSION};{gazetteer_id()};langid={detector}"


_MODELS: dict[str, object] = {}
#: Each loaded model's lexicon lookup (``word_kinds``), when it was trained with a lexicon table.
_WORD_KINDS: dict[str, Callable[[str], frozenset[str] | None]] = {}


def load_model(language: str):
    """The model for ``language``, loaded once per process, with only what finding
    entities needs: the ``ner`` component and the ``tok2vec`` it listens to, if any
    (spaCy's French ``ner`` has its own, so the shared one is not even loaded).

    Its layers multiply matrices with numpy's BLAS instead of thinc's default, blis:
    on our 2-core x86 machines that reads ~1.6x the words per CPU second, and the
    mentions of 290k words of news (giveme5w1h, CoNLL) came out the same."""
    if language not in _MODELS:
        import spacy
        from thinc.api import use_ops

        meta = model_meta(language)
        unneeded = [name for name in meta.get("components", []) if name not in ("tok2vec", "ner")]
        try:
            with use_ops("numpy", use_blis=False):
                nlp = spacy.load(model_path(language), exclude=unneeded)
            if "tok2vec" in nlp.pipe_names and "ner" not in nlp.get_pipe("tok2vec").listening_components:
                nlp.remove_pipe("tok2vec")
            _MODELS[language] = nlp
            if meta.get("lexicon_features"):
                _WORD_KINDS[language] = _lexicon_lookup(nlp.vocab, tuple(meta["lexicon_features"]))
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
    spans = [(ent.start_char, ent.end_char, LABELS.get(ent.label_, ent.label_)) for ent in doc.ents]
    if doc.lang_ == "en":  # in German or French these words are everyday words, not name parts
        spans = joined_over_particles(spans, text)
    if doc.lang_ in GAZETTEER_LANGUAGES:
        spans = sorted(spans + places_missed(spans, text))
    if kinds := word_kinds(doc.lang_):
        spans = nouns_not_people(spans, text, kinds)
    spans = storms_not_people(spans, text)
    return [(start, end, text[start:end], label) for start, end, label in spans]


@cache
def known_places() -> frozenset[str]:
    """The gazetteer names looked for in GAZETTEER_LANGUAGES texts (built once per process).
    A name that is also a function word of those languages is left out: some city goes by
    "Dabei" ("In doing so"), which opens a German sentence a dozen times in 2,200."""
    function_words = {
        word
        for language in GAZETTEER_LANGUAGES
        for word in Path(__file__).with_name(f"stopwords_{language}.txt").read_text(encoding="utf-8").split()
        if not word.startswith("#")
    }
    return frozenset(
        name
        for name, _, kind, _, population in place_rows()
        if (kind == "country" or (kind == "city" and (population or 0) >= GAZETTEER_MIN_POPULATION))
        and name.casefold() not in function_words
    )


def places_missed(spans: list[tuple[int, int, str]], text: str) -> list[tuple[int, int, str]]:
    """Well-known places named in ``text`` outside every span: the longest run of up
    to _LONGEST_PLACE_WORDS capitalised words that is a name in known_places()."""
    places = known_places()
    words = [w for w in _WORD.finditer(text) if w.group()[0].isupper()]
    # Spans by start, with the furthest end reached so far: whether a stretch overlaps
    # any span is two lookups, not a pass over them all (a text naming a place 40,000
    # times took minutes).
    covered = sorted((start, end) for start, end, _ in spans)
    starts = [start for start, _ in covered]
    reach = list(itertools.accumulate((end for _, end in covered), max))
    found: list[tuple[int, int, str]] = []
    position = 0
    while position < len(words):
        for length in range(min(_LONGEST_PLACE_WORDS, len(words) - position), 0, -1):
            first, last = words[position], words[position + length - 1]
            name = text[first.start() : last.end()]
            if " ".join(name.split()) == name and name in places:  # one space between words
                before_end = bisect.bisect_left(starts, last.end())  # the spans starting before it ends
                if not (before_end and reach[before_end - 1] > first.start()):
                    found.append((first.start(), last.end(), "PLACE"))
                position += length
                break
        else:
            position += 1
    return found


def word_kinds(language: str) -> Callable[[str], frozenset[str] | None] | None:
    """What the loaded ``language`` model's lexicon table (``train_de.py --lexicon``) knows of a
    word form, as a function: its features ("noun", "surname", ...), or None for a word the
    table does not hold. None for a model without such a table."""
    return _WORD_KINDS.get(language)


def _lexicon_lookup(vocab, features: tuple[str, ...]) -> Callable[[str], frozenset[str] | None]:
    vectors, strings = vocab.vectors, vocab.strings

    def kinds(word: str) -> frozenset[str] | None:
        row = vectors.find(key=strings[word])
        if row < 0:
            return None
        return frozenset(feature for feature, value in zip(features, vectors.data[row], strict=True) if value)

    return kinds


#: Lexicon features that make a word a name, not (only) an everyday noun.
_NAME_FEATURES = frozenset({"place_name", "first_name", "surname", "proper_name", "gazetteer", "big_place"})
#: The shortest head and modifier a compound is split into ("Zins" + "Entscheid").
_COMPOUND_PART = 3
#: A capitalised abbreviation and another word: no person's name starts so.
_ACRONYM_FIRST = re.compile(r"[A-ZÄÖÜ]{2,}\s+\S")


def nouns_not_people(
    spans: list[tuple[int, int, str]], text: str, kinds: Callable[[str], frozenset[str] | None]
) -> list[tuple[int, int, str]]:
    """A one-word "person" the lexicon knows only as an everyday noun, or does not know but
    that ends in one ("Zinsentscheid": Zins + Entscheid), is no person: German capitalises
    every noun, and a compound the model never saw looks like a name to it. A "person"
    opening with an abbreviation ("AKW Saporischschja") is an organisation."""

    def everyday_noun(known: frozenset[str] | None) -> bool:
        return known is not None and "noun" in known and not known & _NAME_FEATURES

    kept = []
    for start, end, label in spans:
        word = text[start:end]
        if label == "PERSON" and _ACRONYM_FIRST.match(word):
            label = "ORG"
        if label == "PERSON" and word.isalpha():
            known = kinds(word)
            heads = (
                word[i].upper() + word[i + 1 :] for i in range(_COMPOUND_PART, len(word) - _COMPOUND_PART)
            )
            if everyday_noun(known) or (known is None and any(everyday_noun(kinds(head)) for head in heads)):
                continue
        kept.append((start, end, label))
    return kept


def storms_not_people(spans: list[tuple[int, int, str]], text: str) -> list[tuple[int, int, str]]:
    """A "person" named right after a storm word, or starting with one, is a storm (EVENT);
    a "person" that is only a storm word ("Sturm" opening a headline) is no name at all."""
    kept = []
    for start, end, label in spans:
        if label == "PERSON":
            surface = text[start:end]
            if _STORM_WORD.fullmatch(surface):
                continue
            if _STORM_FIRST.match(surface) or _STORM_BEFORE.search(text, max(0, start - 40), start):
                label = "EVENT"
        kept.append((start, end, label))
    return kept


def joined_over_particles(spans: list[tuple[int, int, str]], text: str) -> list[tuple[int, int, str]]:
    """Mentions carried across NAME_PARTICLES, in English text: two mentions with only
    particles between them are one ("Ursula" + "von der" + "Leyen"; a person if either
    is one), a mention followed by particles and capitalised words takes them ("Palais"
    + "des Nations"), and a person preceded by particles takes them ("von der Leyen")."""
    joined: list[tuple[int, int, str]] = []
    for start, end, label in sorted(spans):
        if trailing := _PARTICLES_AT_END.search(text, start, end):  # "Jean de la" + "Fontaine"
            end = trailing.start()
        if joined:
            last_start, last_end, last_label = joined[-1]
            if _PARTICLES_BETWEEN.fullmatch(text, last_end, start):
                joined[-1] = (last_start, end, "PERSON" if "PERSON" in (label, last_label) else last_label)
                continue
        previous_end = joined[-1][1] if joined else 0
        if label == "PERSON" and (before := _PARTICLES_BEFORE.search(text, previous_end, start)):
            start = before.start()
        joined.append((start, end, label))
    extended = []
    for position, (start, end, label) in enumerate(joined):
        limit = joined[position + 1][0] if position + 1 < len(joined) else len(text)
        if particles := _PARTICLES_BETWEEN.match(text, end, limit):
            name_end, word = particles.end(), _WORD_AFTER.match(text, particles.end(), limit)
            while word and word.group(1)[0].isupper():
                name_end, word = word.end(), _WORD_AFTER.match(text, word.end(), limit)
            if name_end > particles.end():
                end = name_end
        extended.append((start, end, label))
    return extended


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
