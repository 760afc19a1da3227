"""Story threads: each new article version joins a developing story or opens one.

Online and in log order, like a desk watching the wire. An article is compared,
by cosine similarity of TF-IDF vectors (the words of title and summary and their
neighbouring pairs, and the lead of the body weighted lower so headline-only feeds
score as before, higher under a title that says little, its names most; IDF learnt
from the stream so far, on top of a prior from the language's word frequencies),
with the centroids of candidate threads found through an inverted index: active
threads (an article in the last ``WINDOW_DAYS``) and dormant ones (older, kept for
``DORMANT_DAYS`` so a story can continue, at a stricter threshold that keeps topics
from reviving them, then closed and forgotten). Centroids and thread sizes decay
with a half-life of hours, and a big active thread accepts weaker matches, but only
from an article close to its recent core (one of its articles of the last
``CORE_DAYS``): a headline that only names the company of a big thread is not its
story. The article joins the thread whose threshold it clears by the largest factor
(a ratio, so big threads' lower thresholds do not give them every article; the
recent core breaks near-ties), else opens a thread whose id is its own article_id.

Late archives: an article dated more than ``WINDOW_DAYS`` before the newest one threaded
(a second source's archive of the same months, loaded after the first) is decided in its
own time, against the threads that were open then, active or dormant, and its thread goes
back to sleep at once: today's threads neither take it nor stay open for it.

A story is not a topic: a thread remembers its origin (the strongest terms of its first
articles). When, after a pause of hours, both its centroid and the next article it would
take have moved away from that origin, the thread has drifted into another story (the
launch of one phone into every rumour about the next): it is closed and the article opens
a new thread.

Terms are language-independent where they can be: accents folded, transliterated
name endings unified ("Selenskyj", "Zelenskyy" -> "selensky"), and place names
mapped to one name through the gazetteer ("Genf" -> "geneva"), so an article in
German can join the English coverage of the same event.

Merges: when one article clears the thresholds of two active threads whose
centroids are alike (``MERGE_SIMILARITY``) and is close to the recent core of each,
the two were one story: the younger is folded into the older (centroid, recent
core, copies) and the merge recorded (``enrich.thread_merges``); the absorbed id
keeps resolving to the thread that holds its articles.

Copies: an article whose text nearly contains, or is nearly contained in, an
earlier article of its thread (a wire story republished with a changed headline
word, a trimmed paragraph, a dateline or boilerplate) is flagged ``duplicate_of``
the earliest such copy, with the overlap as ``copy_similarity``.

Reading and deciding: what the rule reads of an article's text (its terms counted, its copy
signature: ``article_text``) depends on the text alone, and its vector on that and the
document frequencies, which only the articles before it change. So with many articles to
thread, a worker process reads, weighs and counts ahead, into a copy of the vocabulary
(document frequencies, each language's terms) kept in step, while the rule decides
here, one article after another, and adds what the copy counted at the end
(``_texts_and_vectors``); the same texts, vectors and vocabulary, made in either process.

Deterministic: the same events in the same order give the same threads. The state
after the last run is kept beside the database (``threads/<db>.<rule>.pkl``); without
it (or when it does not match the log, or is of another ``STATE_LAYOUT``) everything
is replayed from the first event, which gives the same result, so an incremental run
equals a full rebuild. The word-frequency priors are kept there too, each built once.

Saved as the work goes: dormant threads, most of the state after a year, do not change
while they sleep, so each is written once, into a file of the threads that went to sleep
in the same run (``<db>.<rule>.dormant-<n>.pkl``), and the state file holds the rest. A
run writes that rest and the threads that went to sleep in it, not every sleeping thread
of the year behind it (at a million articles, 25 MB of 160); once the files hold more
stale threads (woken or closed since) than sleeping ones, or number
``DORMANT_FILES_LIMIT``, the sleeping ones are written again as one.

Bounded state: the saved state holds threads, not articles (a recent core is at most
``CORE_ARTICLES`` vectors of an active thread, dropped when it goes dormant). Which
thread an article sits in is read back from ``enrich.thread_assignments`` for the
articles a run revises or withdraws; a thread quiet for ``DORMANT_DAYS`` is closed
and its terms dropped; the vocabulary keeps at most ``VOCABULARY_LIMIT`` terms. And
threads are looked up only through terms that few of them hold
(``ACTIVE_PROBE_LIMIT``, ``DORMANT_PROBE_LIMIT``; ``LATE_PROBE_LIMIT`` for an article
dated in the past), so the cost of an article grows neither with the size of the desk
nor with the years of stories behind it.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import math
import operator
import os
import pickle
import re
import time
import unicodedata
import zlib
from array import array
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa

from ingestion._derive.ner import language_key
from ingestion._derive.places import gazetteer_id
from ingestion._files import write_atomically
from ingestion._forkserver import forkserver_context
from ingestion._gc import gc_paused
from ingestion._log.lake import create_schema
from ingestion._log.store import EventStore, registered

#: The rule's name: raise it whenever a decision could come out differently (a new rule
#: threads every article again), not for a change that only makes it faster. New data for
#: it (packages, stop words) needs no raise: ``rule_id`` digests it.
ALGORITHM = "decayed-centroid-v15"


def rule_id() -> str:
    """What the assignments are made by, as their ``algorithm`` column says: the rule and
    a digest of the data it reads (the place names and word frequencies of the packages
    ``gazetteer_id`` names, the stop-word files). New data changes decisions as a new
    rule does, so it threads every article again: a state kept across an upgrade would
    mix the two."""
    data = hashlib.sha256(gazetteer_id().encode())
    for language in sorted(_STOPWORDS):
        data.update(_stopwords_path(language).read_bytes())
    return f"{ALGORITHM}+{data.hexdigest()[:12]}"


#: The saved state's layout: raise it when the state's structures change but not the rule.
STATE_LAYOUT = 6
#: Saved states this version reads: 3 to 5 are the whole state in one file (then saved as 6
#: saves it, its dormant threads apart); layout 3 keeps dormant centroids as dicts, and 3 and
#: 4 a dormant thread's strongest terms as a list (made one string as read) and dormant
#: origins as dicts (packed as saved).
_READABLE_LAYOUTS = (3, 4, 5, STATE_LAYOUT)
#: Files of dormant threads a state may be spread over before they are written again as one.
DORMANT_FILES_LIMIT = 64
DAY = 86400.0
#: Base similarity to join an active thread; a large thread needs
#: BASE - SIZE_BONUS * ln(recent size), never below MIN_SIMILARITY.
BASE_THRESHOLD = 0.15
SIZE_BONUS = 0.02
MIN_SIMILARITY = 0.04
#: Half-life of centroid weights and of a thread's recent size: a few hours, so a thread
#: is what its story is about today, not what its company was about last week.
HALF_LIFE_DAYS = 0.35
#: The recent core: a big thread's lower threshold holds only for an article at least this
#: close (cosine) to one of the thread's articles of the last ``CORE_DAYS``; a headline that
#: merely names the company of a big thread needs the base threshold.
CORE_SIMILARITY = 0.2
CORE_DAYS = 1.0
#: Articles of a thread kept for the recent core (the newest), so its cost is bounded.
CORE_ARTICLES = 64
#: An article that clears several threads joins the one with the highest threshold ratio
#: plus this many times its closeness to the thread's recent core.
CORE_CHOICE_WEIGHT = 3.0
#: A thread without a new article for this long becomes dormant...
WINDOW_DAYS = 2.0
#: ...and can be revived, at this stricter similarity, for this long; then it is closed.
DORMANT_THRESHOLD = 0.3
#: ...or this one for an article with a body: its lead carries the story's own names and
#: numbers, where a headline shares a topic's words with stories long past.
DORMANT_THRESHOLD_WITH_BODY = 0.2
DORMANT_DAYS = 365.0
#: Dormant threads are indexed by their strongest terms only.
DORMANT_TERMS = 32
#: A term held by more active threads than this finds none of them (the threads its
#: article's other terms find still count it): a word in that many stories at once names
#: none of them, and reading its list for every article would cost more as the desk grows.
#: 32 (64 before, 256 before that): the same scores on the labelled sets (at 8, two
#: months' biggest threads took in a celebrity's doings and a TV series for five to six weeks).
ACTIVE_PROBE_LIMIT = 32
#: A term held by more dormant threads than this finds none of them: a revival needs the
#: story's own words, and a common term's list would be read for every article, growing
#: with history. 8 (64 before): two months' share of articles in threads spanning more
#: than 14 days went from 38% to 30%, their score from 0.801 to 0.802 (benchmarks/NOTES.md).
DORMANT_PROBE_LIMIT = 8
#: The same for an article dated before the active threads' window (``best_late``): the
#: stories of its day sleep now among a year's, and a word many of those hold may still
#: have been one few stories used that day (two months loaded as two archives, the second
#: late: B-cubed F1 0.712 at 256, 0.707 at 64). Few articles come late: this costs little.
LATE_PROBE_LIMIT = 256
#: Similarity an article needs with a thread in another language, on the terms both languages use.
CROSS_THRESHOLD = 0.25
#: Weight of each pair of neighbouring title and summary terms ("interest rate", "galaxy s5"),
#: a term of its own: pairs tell one story of a company from its others.
PAIR_WEIGHT = 0.5
#: Words of the body read (its lead), and the weight of each of its terms against title and summary.
LEAD_WORDS = 250
LEAD_WEIGHT = 0.35
#: Title and summary with fewer distinct terms than this ("Update", "Talks resume") say little
#: of the story: the lead speaks for the article, its terms at WEAK_HEAD_LEAD_WEIGHT each and
#: its names (capitalised words inside its sentences) NAME_WEIGHT more each time they occur.
WEAK_HEAD_TERMS = 6
WEAK_HEAD_LEAD_WEIGHT = 0.7
NAME_WEIGHT = 0.35
#: Languages that capitalise every noun: a capital letter does not mark a name there.
NOUNS_CAPITALISED = frozenset({"de", "lb"})
#: An article's vector keeps its strongest terms only (a headline has far fewer).
VECTOR_TERMS = 32
#: Copies: word pairs shared with an earlier article of the thread, over the smaller text's pairs.
COPY_OVERLAP = 0.7
#: Words of an article compared for copies, and articles of a thread kept to compare with.
COPY_WORDS = 200
COPY_CANDIDATES = 16
#: Threads of a late archive whose copies are kept while they sleep between its articles.
LATE_COPY_THREADS = 1024
#: Texts longer than this many word pairs are compared on a fixed quarter of their pairs.
COPY_SAMPLE_ABOVE = 64
#: Fewest sampled pairs a short text must have to be compared with a sampled long one.
COPY_MIN_SAMPLED = 8
#: Two active threads an article clears at once are one story, merged into the older,
#: when their centroids are at least this similar and the article is at least
#: MERGE_CORE_SIMILARITY close to the recent core of each.
MERGE_SIMILARITY = 0.25
MERGE_CORE_SIMILARITY = 0.3
#: Two threads that have both run for MERGE_ORIGIN_DAYS are merged only if their origins are
#: also MERGE_ORIGIN_SIMILARITY alike: an article that names two running stories at once (a
#: funeral held on Easter Monday) does not make them one. Younger threads are merged on
#: their centroids alone: two that one article shows alike are mostly one story split at its start.
MERGE_ORIGIN_DAYS = 2.0
MERGE_ORIGIN_SIMILARITY = 0.15
#: Two threads found not alike enough are compared again only once the articles that
#: joined them since could have turned them this much closer than the gap to
#: MERGE_SIMILARITY (in radians, a margin for the terms pruned meanwhile): big threads
#: share hundreds of terms, and one article after another clears both of them.
MERGE_RECHECK_MARGIN = 0.01
#: A thread's origin: the strongest terms of its first articles, what the story was about.
ORIGIN_ARTICLES = 8
ORIGIN_TERMS = 32
#: Stories, not topics: a thread at least ``DRIFT_DAYS`` old, quiet for ``DRIFT_PAUSE``,
#: whose centroid (its last hours) and next article are both below ``DRIFT_SIMILARITY``
#: to its origin has moved on to another story: it is closed and the article opens the
#: next thread. Checked at a pause only, so a day's coverage is not cut in two.
DRIFT_DAYS = 1.0
DRIFT_PAUSE = 0.25
DRIFT_SIMILARITY = 0.3
#: Terms whose document frequency is kept; past it the rarest are forgotten down to half
#: (a term met again starts counting anew), so the vocabulary does not grow with history.
VOCABULARY_LIMIT = 500_000
#: A language-wide prior for document frequencies, so that the IDF of a young stream (a few
#: hundred articles) already knows common words from names: the stream is read as if
#: PRIOR_DOCS documents had come before it, in which a term occurs in
#: PRIOR_DOCS * min(1, WORDS_PER_DOC * its frequency in the language) of them (``wordfreq``).
#: Word pairs and words the language's list lacks have no prior.
PRIOR_DOCS = 30_000
WORDS_PER_DOC = 100.0
#: Gazetteer places that unify names across languages: countries, and cities from this size.
PLACE_MIN_POPULATION = 100_000

_TOKEN = re.compile(r"\w\w+", re.UNICODE)
#: A longer word is no word a story is told in: not a term (v15; v14 took any length). A
#: body of one 300,000-letter word entered the vocabulary, the state and the word cache whole.
MAX_TERM_LETTERS = 64
_WORD = re.compile(r"\w+", re.UNICODE)
# Transliterations of Slavic names differ in their ending (-yj, -ij, -iy, -yy): one ending.
_NAME_ENDING = re.compile(r"(?:yj|ij|iy|yy)$")


def _stem(word: str) -> str:
    """Plurals and possessives only: "strikes" and "strike" are one term."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith("es") and word[-3] in "sxz":
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _fold(word: str) -> str:
    """Lower case without accents, "ß" as "ss", and a name's transliterated ending unified."""
    if not word.isascii():
        word = unicodedata.normalize("NFKD", word.replace("ß", "ss"))
        word = "".join(c for c in word if not unicodedata.combining(c))
    word = word.lower()
    if len(word) > 5:
        word = _NAME_ENDING.sub("y", word)
    # Transliterations also swap z/s and w/v at the start (Zelensky, Selenskyj; Volodymyr, Wolodymyr).
    if word[:1] == "z":
        word = "s" + word[1:]
    elif word[:1] == "w":
        word = "v" + word[1:]
    return word


def _stopwords_path(language: str) -> Path:
    return Path(__file__).with_name(f"stopwords_{language}.txt")


def _stopwords(language: str) -> frozenset[str]:
    lines = _stopwords_path(language).read_text(encoding="utf-8").splitlines()
    # folded like the text's words, so "with" is still a stop word once it reads "vith"
    return frozenset(_fold(word) for word in lines if word and not word.startswith("#"))


# Function words that say nothing about which story an article belongs to, per language:
# German "war" or "die" are function words, English "war" and "die" are not.
_STOPWORDS = {language: _stopwords(language) for language in ("en", "de")}


#: The place map of this process: built from the gazetteer, or taken from the saved state.
_PLACES: dict[str, str] | None = None


def _places() -> dict[str, str]:
    """Folded one-word place name -> folded canonical name, once per process (building it
    reads the gazetteer, ~1.5 s; the saved state keeps a copy, see ``_load_state``)."""
    global _PLACES
    if _PLACES is None:
        _PLACES = _build_places()
    return _PLACES


def _build_places() -> dict[str, str]:
    from ingestion._derive.places import place_rows

    best: dict[str, tuple[int, str]] = {}
    for name, place, kind, _, population in place_rows():
        if kind != "country" and (kind != "city" or (population or 0) < PLACE_MIN_POPULATION):
            continue
        if " " in name or " " in place or len(name) < 4:
            continue
        # A country beats a city; a bigger city beats a smaller one of the same name.
        rank = 1 << 62 if kind == "country" else population or 0
        key = _fold(name)
        if key not in best or rank > best[key][0]:
            best[key] = (rank, _fold(place))
    canonical = {place for _, place in best.values()}
    # A name that is itself some place's canonical name keeps meaning that place.
    return {key: place for key, (_, place) in best.items() if key == place or key not in canonical}


#: Each language's words already turned into terms (None: a stop word). A dict, not
#: lru_cache: this lookup runs for every word of every article.
_TERMS: dict[str, dict[str, str | None]] = defaultdict(dict)
#: Words remembered per language; past it the memory starts again (bounded on hostile text).
_TERMS_KEPT = 262_144
_UNSEEN = object()
_UNSEEN_WORDS = itertools.repeat(_UNSEEN)
#: Constants mapped over a vector's terms (the default of ``dict.get``, and the ones of a formula).
_ZEROS = itertools.repeat(0.0)
#: Added to a bound computed in another order than the sum it bounds (cosines are at most 1).
_ROUNDING_MARGIN = 1e-9
#: A thread's origin when it has none: no article counted.
_NO_ORIGIN = (0, None)
_ONES = itertools.repeat(1)
_FLOAT_ONES = itertools.repeat(1.0)


class _TermWeights(dict[float, float]):
    """A term's count -> its weight before IDF: 1 for a term met once in title or summary (as
    before bodies were read), less for one met only in the lead. Counts repeat: each is
    computed once (up to a bound, for hostile text of endless distinct counts)."""

    def __missing__(self, count: float) -> float:
        if len(self) > 65_536:
            self.clear()
        weight = self[count] = 1.0 + math.log(count) if count >= 1.0 else count
        return weight


_TERM_WEIGHTS = _TermWeights()


def _plus_lead(count: float, times: int, weight: float) -> float:
    """A term's count with the times it occurs in the lead: ``weight`` added one by one,
    as floats add up (the rule's figures depend on the exact sum)."""
    for _ in range(times):
        count += weight
    return count


class _LeadSums(dict[int, float]):
    """The times a lead-only term occurs -> its count at one lead weight, each worked out once."""

    def __init__(self, weight: float) -> None:
        super().__init__()
        self.weight = weight

    def __missing__(self, times: int) -> float:
        if len(self) > 65_536:
            self.clear()
        total = self[times] = _plus_lead(0.0, times, self.weight)
        return total


_LEAD_SUMS = {weight: _LeadSums(weight) for weight in (LEAD_WEIGHT, WEAK_HEAD_LEAD_WEIGHT)}


def _term(word: str, language: str) -> str | None:
    folded = _fold(word)
    if folded in _STOPWORDS["en"] or folded in _STOPWORDS.get(language, ()):
        return None
    places = _places()
    place = places.get(folded)
    if place is None and language == "de" and folded.endswith("er"):
        place = places.get(folded[:-2])  # German place adjectives: "Genfer Gespräche", "Rotterdamer Hafen"
    return place if place is not None else _stem(folded)


#: The priors of this process, by ``_prior_key``: read from the state's folder when first
#: met, or built (~0.7 s for English, ~1.8 s for German) and written there for the next run.
_PRIORS: dict[tuple[str, bool], dict[str, float]] = {}
#: Each language tag met -> its ``_prior_key`` (None: no word list for it).
_PRIOR_KEYS: dict[str, tuple[str, bool] | None] = {}
#: Where priors are kept between runs (the folder of the saved state); None: nowhere.
_PRIOR_FOLDER: Path | None = None


def _prior(language: str) -> dict[str, float]:
    key = _prior_key(language)
    if key is None:  # no list for it, or no tag ("English"): the stream's IDF alone
        return {}
    prior = _PRIORS.get(key)
    if prior is None:
        path = _prior_path(key)
        prior = _read_prior(path) if path else None
        if prior is None:
            prior = _build_prior(key)
            if path:
                write_atomically(path, pickle.dumps(prior, protocol=pickle.HIGHEST_PROTOCOL))
        _PRIORS[key] = prior
    return prior


def _prior_key(language: str) -> tuple[str, bool] | None:
    """What a language's prior is made from: the word list ``wordfreq`` reads for its tag
    (many tags read one: "en", "eng", "cy" and "ga" read English's), and whether its
    terms are made as German's (``_term``). Keyed by the tag, each of a feed's thousands
    of made-up tags had built and held a copy of a list (50-100 MB each)."""
    if language not in _PRIOR_KEYS:
        import langcodes
        from wordfreq import available_languages

        try:
            wordlist, _ = langcodes.closest_match(language, sorted(available_languages()), max_distance=60)
        except ValueError:  # not a tag ("English")
            wordlist = "und"
        _PRIOR_KEYS[language] = None if wordlist == "und" else (wordlist, language == "de")
    return _PRIOR_KEYS[language]


def _prior_path(key: tuple[str, bool]) -> Path | None:
    """The prior's file, named for everything it is made from: the rule and its data
    (``rule_id``: its terms, stop words, gazetteer and word lists), and its key."""
    wordlist, german = key
    if _PRIOR_FOLDER is None or not re.fullmatch(r"[a-z]{2,3}", wordlist):
        return None
    made_from = f"{rule_id()};{PRIOR_DOCS};{WORDS_PER_DOC};{wordlist};{german}"
    return _PRIOR_FOLDER / f"prior.{wordlist}.{hashlib.sha1(made_from.encode()).hexdigest()[:16]}.pkl"


def _read_prior(path: Path) -> dict[str, float] | None:
    try:
        prior = pickle.loads(path.read_bytes())
    except Exception:  # missing, or cut short by a crash: built again
        return None
    return prior if isinstance(prior, dict) else None


def _build_prior(key: tuple[str, bool]) -> dict[str, float]:
    """Term -> pseudo-documents holding it: the word list's frequencies (``wordfreq``),
    each word made a term as the text's words are, summed over the words of one term."""
    from wordfreq import get_frequency_dict

    wordlist, german = key
    try:
        frequencies = get_frequency_dict(wordlist)
    finally:
        get_frequency_dict.cache_clear()  # our terms are all we keep of it
    terms_of = "de" if german else ""  # _term reads German's words apart, and every other language alike
    summed: dict[str, float] = {}
    for word, frequency in frequencies.items():  # the list's own order: deterministic sums
        for token in _TOKEN.findall(word):
            term = _term(token, terms_of)
            if term is not None:
                summed[term] = summed.get(term, 0.0) + frequency
    return {term: PRIOR_DOCS * min(1.0, WORDS_PER_DOC * f) for term, f in summed.items()}


def tokens(text: str, language: str = "en") -> list[str]:
    text = text.replace("'s ", " ").replace("\u2019s ", " ")
    known = _TERMS[language]
    if len(known) > _TERMS_KEPT:
        known.clear()
    words = _TOKEN.findall(text)
    found = list(map(known.get, words, _UNSEEN_WORDS))  # looked up in C: most words were seen before
    if _UNSEEN in found:
        for at, term in enumerate(found):
            if term is _UNSEEN:
                word = words[at]
                if len(word) > MAX_TERM_LETTERS:  # never cached either
                    found[at] = None
                    continue
                found[at] = known[word] = known[word] if word in known else _term(word, language)
    return [term for term in found if term is not None]


def term_counts(text: str, lead: str, language: str) -> dict[str, float]:
    """Each term of title and summary (``text``), and each pair of neighbours, counted;
    the lead's terms added at ``LEAD_WEIGHT`` each, or, under a title and summary of fewer
    than WEAK_HEAD_TERMS terms, at WEAK_HEAD_LEAD_WEIGHT with its names weighing
    NAME_WEIGHT more (``lead_names``). Depends on the text alone."""
    counts: dict[str, float] = {}
    found = tokens(text, language)
    for token in found:
        counts[token] = counts.get(token, 0.0) + 1.0
    for first, second in itertools.pairwise(found):
        pair = f"{first} {second}"
        counts[pair] = counts.get(pair, 0.0) + PAIR_WEIGHT
    if lead:
        weak_head = len(set(found)) < WEAK_HEAD_TERMS
        weight = WEAK_HEAD_LEAD_WEIGHT if weak_head else LEAD_WEIGHT
        in_lead = Counter(tokens(lead, language))
        in_both = {token: counts[token] for token in in_lead.keys() & counts.keys()}
        counts.update(zip(in_lead, map(_LEAD_SUMS[weight].__getitem__, in_lead.values()), strict=True))
        for token, count in in_both.items():
            counts[token] = _plus_lead(count, in_lead[token], weight)
        if weak_head and language not in NOUNS_CAPITALISED:
            for term, times in Counter(tokens(" ".join(lead_names(lead)), language)).items():
                counts[term] = counts.get(term, 0.0) + NAME_WEIGHT * times
    return counts


#: What ends the word before a sentence's first word, whose capital marks no name.
_SENTENCE_ENDS = (".", "!", "?", '"', "\u201d")


def lead_names(lead: str) -> list[str]:
    """The lead's words that start with a capital inside a sentence: names, mostly ("Kim",
    "Pyongyang", "NASA"), where a sentence's first word is any word."""
    return [
        word
        for before, word in itertools.pairwise(lead.split())
        if word[:1].isupper() and not before.endswith(_SENTENCE_ENDS)
    ]


def copy_key(title: str, summary: str) -> str:
    """Same key = the same copy (a wire story republished verbatim)."""
    normalised = " ".join(_TOKEN.findall(f"{title} {summary}".lower()))
    return hashlib.sha1(normalised.encode()).hexdigest()


#: (sampled, pairs, the quarter of pairs a sampled text keeps: kept ready for comparing with one).
Signature = tuple[bool, frozenset[int], frozenset[int]]
#: What weighing reads and counts: documents, their frequencies, each language's terms and number.
Vocabulary = tuple[int, Counter[str], dict[int, set[str]], dict[str, int]]


def copy_signature(text: str) -> Signature:
    """The article's word pairs (of its first ``COPY_WORDS`` words), hashed stably across processes;
    a long text keeps a fixed quarter of them (those whose hash is divisible by 4)."""
    # Most texts have their first COPY_WORDS words well inside the first half of the slice read:
    # more than that many there means the same first ones (only the last could be cut short).
    words = _WORD.findall(text[: COPY_WORDS * 8].lower())
    if len(words) <= COPY_WORDS and len(text) > COPY_WORDS * 8:
        words = _WORD.findall(text[: COPY_WORDS * 16].lower())
    words = words[:COPY_WORDS]
    hashes = list(map(zlib.crc32, map(str.encode, words)))
    # (a * 1_000_003 ^ b) & 0xFFFFFFFF for each pair a, b, computed by map in C: this runs on every article
    pairs = set(
        map(
            operator.and_,
            map(operator.xor, map(operator.mul, hashes, itertools.repeat(1_000_003)), hashes[1:]),
            itertools.repeat(0xFFFFFFFF),
        )
    )
    quarter = frozenset(h for h in pairs if not h & 3)
    if len(pairs) > COPY_SAMPLE_ABOVE:
        return True, quarter, quarter
    return False, frozenset(pairs), quarter


def copy_overlap(a: Signature, b: Signature) -> float:
    """Share of the smaller text's word pairs found in the other (a trimmed or extended copy scores high)."""
    pairs_a, pairs_b = a[1], b[1]
    if a[0] != b[0]:  # compare on the same quarter of pairs
        pairs_a, pairs_b = a[2], b[2]
        if min(len(pairs_a), len(pairs_b)) < COPY_MIN_SAMPLED:
            return 0.0  # a short text's quarter is too few pairs to tell a copy from shared names
    smaller = min(len(pairs_a), len(pairs_b))
    return len(pairs_a & pairs_b) / smaller if smaller else 0.0


class Threader:
    """The online state: document frequencies and every open thread's decayed centroid."""

    def __init__(self) -> None:
        self.documents = 0
        self.df: Counter[str] = Counter()
        #: A dormant thread's centroid stays as it was saved (``_packed``) until it is needed.
        self.centroid: list[dict[str, float] | tuple[str, bytes] | None] = []
        self.norm2: list[float] = []
        self.ref: list[float] = []  # time the centroid's weights are scaled to
        self.last: list[float] = []
        #: The clock when the thread last took an article: a dormant thread closes DORMANT_DAYS
        #: after it. The same as ``last`` but for a thread of an archive loaded late.
        self.touched: list[float] = []
        self.recent_size: list[float] = []
        self.state: list[int] = []  # 1 active, 2 dormant, 0 closed
        self.pruned_at: list[int] = []
        self.thread_ids: list[str] = []  # index -> article_id that opened it
        self.index_of: dict[str, int] = {}
        #: term -> {active thread: the term's weight in its centroid}, kept equal to the centroids.
        self.active_postings: dict[str, dict[int, float]] = defaultdict(dict)
        self.dormant_postings: dict[str, dict[int, float]] = defaultdict(dict)
        #: A dormant thread's posted terms, NUL-separated: one object a thread to save, not 32.
        self.dormant_terms: dict[int, str] = {}
        self.active_heap: list[tuple[float, int]] = []
        self.dormant_heap: list[tuple[float, int]] = []
        #: Active threads: their first distinct copies, (article_id, exact key, signature).
        self.copies: dict[int, list[tuple[str, str, Signature]]] = {}
        #: The same for the threads a late archive's articles last joined, which sleep between
        #: its articles: the LATE_COPY_THREADS most recently put to sleep, oldest first.
        self.late_copies: dict[int, list[tuple[str, str, Signature]]] = {}
        #: Languages by number, each language's terms, and each thread's (its opener's) language.
        self.language_numbers: dict[str, int] = {}
        self.language_terms: dict[int, set[str]] = {}
        self.thread_language: list[int] = []
        #: Merged threads: absorbed -> the thread it went into; and merges not yet written.
        self.merged_into: dict[int, int] = {}
        self.new_merges: list[Merge] = []
        #: Active threads: their newest articles, the recent core.
        self.core: dict[int, _Core] = {}
        #: How far each thread's centroid may have turned, in all (radians, a bound summed
        #: over its articles); and for each younger active thread, the older ones it was
        #: compared with for a merge: other -> the two threads' turn at which it is due again.
        self.turned: list[float] = []
        #: Each thread's opening time, and its origin: the first articles' summed vector while
        #: it has fewer than ORIGIN_ARTICLES (with their count), then its strongest terms, unit length.
        self.opened: list[float] = []
        #: A dormant thread's origin is saved packed, and unpacked when next needed (``_origin_of``).
        self.origin: dict[int, tuple[int, dict[str, float] | tuple[str, bytes]]] = {}
        self.merge_checked: dict[int, dict[int, float]] = {}
        self.last_event_seq = 0
        #: The place map the terms were made with, and the gazetteer it came from.
        self.places: tuple[str, dict[str, str]] | None = None
        #: The latest time seen: the rule's clock never runs backwards. An article that arrives
        #: late by less than WINDOW_DAYS is handled as arriving now; one older than that (an
        #: archive loaded after newer articles) in its own time, see ``best_late``.
        self.clock = 0.0
        #: How the state is laid out: a saved state of another layout is replayed, not read.
        self.layout = STATE_LAYOUT
        #: Dormant threads whose centroid was unpacked since the state was read: the packed form,
        #: saved again as it is (a dormant centroid does not change until the thread wakes).
        self.packed_before: dict[int, tuple[str, bytes]] = {}
        #: Dormant threads saved apart (``_save_state``): each -> the number of its file; and
        #: each file -> the threads it was written with (some woken or closed since).
        self.saved_dormant: dict[int, int] = {}
        self.dormant_files: dict[int, int] = {}

    def __getstate__(self) -> dict:
        """The whole state: the live one with the dormant threads in it (packed)."""
        state = self.live_state()
        centroids, origins = state["centroid"], state["origin"]
        for th, thread_state in enumerate(self.state):
            if thread_state == 2:
                centroids[th] = self._centroid_as_saved(th)
                if th in self.origin:
                    origins[th] = self._origin_as_saved(th)
        return {**state, "dormant_postings": self.dormant_postings, "dormant_terms": self.dormant_terms}

    def live_state(self) -> dict:
        """The state without what dormant threads alone hold (saved apart, ``dormant_records``):
        ``__setstate__`` reads it, ``restore_dormant`` then adds the dormant threads back.
        The postings repeat the active centroids' weights (a third of the state): rebuilt
        on load; a recent core is saved as its articles, without the terms' index."""
        states = self.state
        return {
            **self.__dict__,
            "active_postings": None,
            "dormant_postings": None,
            "dormant_terms": {},
            "centroid": [None if states[th] == 2 else centroid for th, centroid in enumerate(self.centroid)],
            "packed_before": {},
            "core": {th: members.articles for th, members in self.core.items()},
            "origin": {th: origin for th, origin in self.origin.items() if states[th] != 2},
        }

    def _centroid_as_saved(self, th: int) -> tuple[str, bytes] | dict[str, float] | None:
        """A dormant thread's centroid as saved: packed, in the form it was read in if unpacked since."""
        centroid = self.centroid[th]
        return (self.packed_before.get(th) or _packed(centroid)) if isinstance(centroid, dict) else centroid

    def _origin_as_saved(self, th: int) -> tuple[int, tuple[str, bytes] | dict[str, float]]:
        count, origin = self.origin[th]
        return (count, _packed(origin)) if isinstance(origin, dict) else (count, origin)

    def dormant_records(self, threads: list[int]) -> tuple[list[tuple], tuple[str, bytes, bytes, bytes]]:
        """What these dormant threads alone hold, as saved apart: each one's centroid and
        origin (packed, as ``__getstate__`` saves them) and strongest terms; and their
        postings, term by term: the terms (NUL-separated), how many threads each, and
        those threads and their weights, one term's after another."""
        records, by_term = [], {}
        dormant = self.dormant_postings
        for th in threads:
            terms = self.dormant_terms[th]
            origin = self._origin_as_saved(th) if th in self.origin else None
            records.append((th, self._centroid_as_saved(th), origin, terms))
            for term in terms.split("\0") if terms else ():
                held = by_term.get(term)
                if held is None:
                    held = by_term[term] = (array("q"), array("d"))
                held[0].append(th)
                held[1].append(dormant[term][th])
        counts = array("q", (len(held[0]) for held in by_term.values()))
        threads_by_term, weights = array("q"), array("d")
        for held in by_term.values():
            threads_by_term.extend(held[0])
            weights.extend(held[1])
        return records, ("\0".join(by_term), counts.tobytes(), threads_by_term.tobytes(), weights.tobytes())

    def restore_dormant(
        self, records: list[tuple], postings: tuple[str, bytes, bytes, bytes], stale: set[int]
    ) -> None:
        """Add back the dormant threads ``dormant_records`` saved, but for the ``stale`` ones
        (woken or closed since). The postings are made term by term, so that a term's threads
        and weights lie together in memory: made thread by thread, looking them up for a
        run's articles took 40% longer (at a million articles, 3.3 s against 2.3)."""
        dormant = self.dormant_postings
        terms, counts, threads, weights = postings
        held = zip(array("q", threads), array("d", weights), strict=True)
        for term, count in zip(terms.split("\0") if terms else (), array("q", counts), strict=True):
            dormant[term].update(itertools.islice(held, count))
        for th, centroid, origin, strongest in records:
            if th in stale:
                self._unpost_dormant(th, strongest)
                continue
            self.centroid[th] = centroid
            if origin is not None:
                self.origin[th] = origin
            self.dormant_terms[th] = strongest

    def __setstate__(self, state: dict) -> None:
        self.packed_before = {}  # not in the states saved before it was kept
        if state["dormant_postings"] is None:  # a live state: its dormant threads are added back
            state["dormant_postings"] = defaultdict(dict)
        else:  # a whole state (layouts 3 to 5): its dormant threads are in it, none saved apart
            state["saved_dormant"], state["dormant_files"] = {}, {}
        if state.get("layout") in (3, 4):
            state["dormant_terms"] = {th: "\0".join(terms) for th, terms in state["dormant_terms"].items()}
        if "language_bit" in state:  # saved before languages were numbered: each a bit, in order met
            number_of = {bit: number for number, bit in enumerate(state["language_bit"].values())}
            state["language_numbers"] = {
                language: number_of[bit] for language, bit in state.pop("language_bit").items()
            }
            state["language_terms"] = {
                number_of[bit]: terms for bit, terms in state["language_terms"].items()
            }
            state["thread_language"] = [number_of[bit] for bit in state["thread_language"]]
        self.__dict__.update(state)
        self.active_postings = defaultdict(dict)
        self.core = {th: _Core(articles) for th, articles in self.core.items()}
        for th, thread_state in enumerate(self.state):
            if thread_state == 1:
                self._post(th)

    def weigh(self, counts: dict[str, float], language: str) -> dict[str, float]:
        """The article's vector from its ``term_counts``, by the document frequencies so far
        (which it then joins): its strongest terms, TF-IDF weighted, unit length."""
        self.count(counts, language)
        return self.vector(counts, language)

    def count(self, counts: dict[str, float], language: str) -> None:
        """Count an article's terms into the document frequencies and its language's terms."""
        self.documents += 1
        if len(self.df) + len(counts) > VOCABULARY_LIMIT:
            self._forget_rare_terms()
        self.df.update(counts.keys())  # counted in C
        self.language_terms.setdefault(self.language_number(language), set()).update(counts)

    def vector(self, counts: dict[str, float], language: str) -> dict[str, float]:
        """The vector of the article counted last, from its ``term_counts``."""
        prior = _prior(language)
        log_n = math.log(1 + self.documents + PRIOR_DOCS)
        # idf = log_n - log(1 + df + prior) + 1, term by term in C
        pseudo_documents = map(
            operator.add,
            map(operator.add, _ONES, map(self.df.__getitem__, counts)),
            map(prior.get, counts, _ZEROS),
        )
        idfs = map(
            operator.add,
            map(operator.sub, itertools.repeat(log_n), map(math.log, pseudo_documents)),
            _FLOAT_ONES,
        )
        # A term met once in title or summary weighs 1 (as before bodies were read); lead-only terms less.
        term_weights = map(_TERM_WEIGHTS.__getitem__, counts.values())
        weights = dict(zip(counts, map(operator.mul, term_weights, idfs), strict=True))
        if len(weights) > VECTOR_TERMS:  # a body's long tail costs posting lookups and says little
            # the heaviest first, ties by term: sorted on (-weight, term) pairs, compared in C
            heaviest = sorted(zip(map(operator.neg, weights.values()), weights, strict=True))[:VECTOR_TERMS]
            weights = {t: -negative for negative, t in heaviest}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        return {t: w / norm for t, w in weights.items()}

    def cross_norms(self, vector: dict[str, float], language: int) -> dict[int, float]:
        """The vector's length on the terms each other language uses (by its number), which a
        cosine with a thread opened in that language is divided by (``_cross_cosine``)."""
        return {other: self._cross_norm(vector, other) for other in self.language_terms if other != language}

    def _cross_norm(self, vector: dict[str, float], language: int) -> float:
        terms = self.language_terms.get(language, set())
        return math.sqrt(sum(x * x for t, x in vector.items() if t in terms))

    def vocabulary(self) -> Vocabulary:
        """What weighing reads and counts (a ``Vocabulary``)."""
        return self.documents, self.df, self.language_terms, self.language_numbers

    def _forget_rare_terms(self) -> None:
        """Keep the VOCABULARY_LIMIT // 2 terms met in most documents (ties by term). A
        forgotten term stays in the centroids that hold it: only its count starts again."""
        kept = sorted(self.df.items(), key=lambda kv: (-kv[1], kv[0]))[: VOCABULARY_LIMIT // 2]
        self.df = Counter(dict(kept))
        self.language_terms = {
            number: terms.intersection(self.df) for number, terms in self.language_terms.items()
        }

    def language_number(self, language: str) -> int:
        """The language's number: 0, 1, 2... in the order met. (Bits before, ``1 << n``: one of
        a feed's thousands of made-up tags took a thousand-bit number, held for every thread.)"""
        if language not in self.language_numbers:
            self.language_numbers[language] = len(self.language_numbers)
        return self.language_numbers[language]

    def _expire(self, now: float) -> None:
        while self.active_heap and self.active_heap[0][0] < now - WINDOW_DAYS * DAY:
            last, th = heapq.heappop(self.active_heap)
            if self.state[th] == 1 and self.last[th] == last:
                self._to_dormant(th)
        while self.dormant_heap and self.dormant_heap[0][0] < now - DORMANT_DAYS * DAY:
            touched, th = heapq.heappop(self.dormant_heap)
            if self.state[th] == 2 and self.touched[th] == touched:
                self._wake(th)
                self.close(th)

    def close(self, th: int) -> None:
        """Forget a thread's terms for good: it takes no more articles."""
        if self.state[th] == 1:
            self._unpost(th, self.centroid[th])
        self.state[th], self.centroid[th] = 0, None
        self.copies.pop(th, None)
        self.late_copies.pop(th, None)
        self.merge_checked.pop(th, None)
        self.core.pop(th, None)
        self.origin.pop(th, None)

    def _to_dormant(self, th: int) -> None:
        centroid = self.centroid[th]
        self._unpost(th, centroid)
        if self.origin.get(th, (ORIGIN_ARTICLES,))[0] < 2:
            # A thread of one article, most dormant ones: its origin is counted anew if it wakes.
            del self.origin[th]
        strongest = sorted(centroid, key=lambda t: (-centroid[t], t))[:DORMANT_TERMS]
        norm = math.sqrt(self.norm2[th]) or 1.0
        for term in strongest:
            self.dormant_postings[term][th] = centroid[term] / norm
        self.dormant_terms[th] = "\0".join(strongest)  # terms are made of word characters: never a NUL
        self.state[th] = 2
        copies = self.copies.pop(th, None)  # copies arrive within hours of the first...
        if copies and self.touched[th] != self.last[th]:  # ...of a late archive's article, too
            self.late_copies[th] = copies
            if len(self.late_copies) > LATE_COPY_THREADS:
                del self.late_copies[next(iter(self.late_copies))]
        self.merge_checked.pop(th, None)
        self.core.pop(th, None)  # older than CORE_DAYS: it no longer counts
        heapq.heappush(self.dormant_heap, (self.touched[th], th))

    def _post(self, th: int) -> None:
        postings = self.active_postings
        for term, weight in self._centroid_of(th).items():
            postings[term][th] = weight

    def _unpost(self, th: int, terms: Iterable[str]) -> None:
        postings = self.active_postings
        for term in terms:
            holders = postings[term]
            del holders[th]
            if not holders:  # the vocabulary of active threads, not of all time
                del postings[term]

    def _wake(self, th: int) -> None:
        # Its centroid changes from now on: unpacked first (``_centroid_of`` keeps the form it
        # was saved in), or the form saved would be kept and written with its next sleep.
        self._centroid_of(th)
        self.packed_before.pop(th, None)
        self.saved_dormant.pop(th, None)  # its saved record is stale from now on
        self._unpost_dormant(th, self.dormant_terms.pop(th, ""))

    def _unpost_dormant(self, th: int, terms: str) -> None:
        postings = self.dormant_postings
        for term in terms.split("\0") if terms else ():
            holders = postings[term]
            del holders[th]
            if not holders:
                del postings[term]

    def _origin_of(self, th: int) -> tuple[int, dict[str, float]]:
        """The thread's origin, (0, {}) if none; one saved packed is unpacked the first time."""
        count, origin = self.origin.get(th, (0, {}))
        if isinstance(origin, tuple):
            origin = _unpacked(origin)
            self.origin[th] = (count, origin)
        return count, origin

    def _centroid_of(self, th: int) -> dict[str, float]:
        """The thread's centroid; a dormant one's as saved is unpacked the first time."""
        centroid = self.centroid[th]
        if isinstance(centroid, tuple):
            self.packed_before[th] = centroid
            centroid = self.centroid[th] = _unpacked(centroid)
        return centroid

    def best(
        self,
        vector: dict[str, float],
        now: float,
        language: int,
        closeness: Closeness,
        with_body: bool,
        cross_norms: dict[int, float] | None = None,
    ) -> tuple[int, float, list[int]] | None:
        """The thread this vector clears by the widest margin, with its similarity, and
        every other active thread it clears.

        A thread opened in another language is compared on the article's terms that language
        also uses (names, places, numbers), at ``CROSS_THRESHOLD``. ``closeness`` is the
        vector's, kept for the merges the caller then checks; an article ``with_body`` revives
        a dormant thread at ``DORMANT_THRESHOLD_WITH_BODY``; ``cross_norms``, if given, are the
        vector's (``Threader.cross_norms``), worked out where it was weighed."""
        dormant_need = DORMANT_THRESHOLD_WITH_BODY if with_body else DORMANT_THRESHOLD
        self._expire(now)
        dots = self._dots(vector, 0.5 * dormant_need, revival=(language, lambda _: dormant_need))
        # Most threads found share a word or two: one pass in C drops them (cross-language ones are kept).
        lengths = map(math.sqrt, map(self.norm2.__getitem__, dots))
        cosines = list(map(operator.truediv, dots.values(), lengths))
        if len(self.language_numbers) == 1:
            found = zip(dots, cosines, strict=True)
            near = sorted(itertools.compress(found, map(MIN_SIMILARITY.__le__, cosines)))
        else:
            languages = self.thread_language
            found = zip(dots, cosines, strict=True)
            near = sorted((th, c) for th, c in found if c >= MIN_SIMILARITY or languages[th] != language)
        cleared: list[tuple[int, float, float]] = []  # thread, cosine, cosine over its threshold
        shared_norm = {} if cross_norms is None else cross_norms
        for th, cosine in near:
            other = self.thread_language[th]
            if other != language:
                cosine = self._cross_cosine(cosine, vector, other, shared_norm)
                need = CROSS_THRESHOLD
            elif self.state[th] == 1:
                need = self._size_need(th, now)
                # The size bonus is for the story the thread is telling now, not its company.
                if need <= cosine < BASE_THRESHOLD and closeness(th) < CORE_SIMILARITY:
                    need = BASE_THRESHOLD
            else:
                need = dormant_need
            if cosine >= need:
                # A ratio: an absolute margin favours big threads, whose need is lowest.
                cleared.append((th, cosine, cosine / need))
        if not cleared:
            return None
        chosen, similarity, _ = cleared[0]
        if len(cleared) > 1:  # the nearest recent articles break near-ties between stories
            chosen, similarity, _ = max(cleared, key=lambda c: c[2] + CORE_CHOICE_WEIGHT * closeness(c[0]))
        return chosen, similarity, [th for th, _, _ in cleared if th != chosen and self.state[th] == 1]

    def best_late(
        self,
        vector: dict[str, float],
        when: float,
        language: int,
        with_body: bool,
        cross_norms: dict[int, float] | None = None,
    ) -> tuple[int, float, list[int]] | None:
        """For an article dated before the active threads' window (an archive loaded after
        newer articles), decided in its own time: of the threads open by then, the one it
        clears by the widest margin, with its similarity (and, like ``best``, the others to
        merge it with: none, merges are decided on the stream). So a second source's archive of
        the same months joins the stories of its days, not today's.

        A thread is compared by its centroid (its latest coverage) or its origin (its first
        articles), whichever is nearer: the article may date from any day of the story. One
        with an article within ``WINDOW_DAYS`` of the date was active then (its size lowers
        the bar as on the day, with no recent core to check: that is gone), one quiet longer
        dormant; one in another language needs ``CROSS_THRESHOLD`` (``cross_norms`` as for
        ``best``)."""
        dormant_need = DORMANT_THRESHOLD_WITH_BODY if with_body else DORMANT_THRESHOLD
        self._expire(self.clock)

        def by_centroid(th: int) -> float:
            """What a dormant thread needs of its centroid (0.0: its origin may be nearer)."""
            if self.origin.get(th, _NO_ORIGIN)[0] >= ORIGIN_ARTICLES:
                return 0.0
            return self._late_need(th, when, dormant_need)

        dots = self._dots(
            vector, 0.5 * min(BASE_THRESHOLD, dormant_need), when, revival=(language, by_centroid)
        )
        found: tuple[int, float, list[int]] | None = None
        widest = 0.0
        shared_norm = {} if cross_norms is None else cross_norms
        for th in sorted(dots):
            if not self._open_at(th, when):
                continue
            cosine = dots[th] / (math.sqrt(self.norm2[th]) or 1.0)
            count, origin = self._origin_of(th)
            if count >= ORIGIN_ARTICLES:
                # over the vector's terms: a headline has fewer than the origin's ORIGIN_TERMS
                cosine = max(cosine, sum(map(operator.mul, vector.values(), map(origin.get, vector, _ZEROS))))
            other = self.thread_language[th]
            if other != language:
                cosine = self._cross_cosine(cosine, vector, other, shared_norm)
                need = CROSS_THRESHOLD
            else:
                need = self._late_need(th, when, dormant_need)
            if cosine >= need and cosine / need > widest:
                found, widest = (th, cosine, []), cosine / need
        return found

    def _late_need(self, th: int, when: float, dormant_need: float) -> float:
        """The similarity a thread of the article's language needs to take an article dated
        ``when``: an active thread's then if it took an article within WINDOW_DAYS of that
        date, a dormant one's (``dormant_need``) otherwise."""
        return self._size_need(th, when) if self.last[th] >= when - WINDOW_DAYS * DAY else dormant_need

    def _size_need(self, th: int, when: float) -> float:
        """The similarity an active thread needs at ``when``: less the more articles it took lately."""
        size = self.recent_size[th] * 0.5 ** (max(0.0, when - self.last[th]) / (HALF_LIFE_DAYS * DAY))
        if size <= 1:
            return BASE_THRESHOLD
        return max(MIN_SIMILARITY, BASE_THRESHOLD - SIZE_BONUS * math.log(size))

    def _cross_cosine(
        self, cosine: float, vector: dict[str, float], language: int, norms: dict[int, float]
    ) -> float:
        """A cosine with a thread opened in another language, counted on the vector's terms that
        language also uses (names, places, numbers): their length is kept in ``norms``."""
        if language not in norms:
            norms[language] = self._cross_norm(vector, language)
        return cosine / norms[language] if norms[language] else 0.0

    def _open_at(self, th: int, when: float) -> bool:
        """Whether the thread was open at that time: opened by then (give or take a window), not closed."""
        return self.opened[th] <= when + WINDOW_DAYS * DAY and self.last[th] >= when - DORMANT_DAYS * DAY

    def _dots(
        self,
        vector: dict[str, float],
        dormant_half: float,
        when: float | None = None,
        revival: tuple[int, Callable[[int], float]] | None = None,
    ) -> defaultdict[int, float]:
        """The vector's dot products with the active threads its terms find (centroids as they
        are), and with the dormant threads whose strongest terms give at least ``dormant_half``
        (those open at ``when``, if given: a late article's, found through terms of at most
        LATE_PROBE_LIMIT holders). With ``revival`` (a language and, for a dormant thread of
        it, the cosine it needs), such a thread that cannot reach that cosine is left out:
        its centroid is not unpacked."""
        dots: defaultdict[int, float] = defaultdict(float)  # its missing keys are filled in C
        common: list[tuple[dict[int, float], float]] = []
        postings = self.active_postings  # a local: this loop is the hot path
        for term, x in vector.items():
            holders = postings.get(term)
            if holders is None:
                continue
            if len(holders) > ACTIVE_PROBE_LIMIT:
                common.append((holders, x))
                continue
            for th, weight in holders.items():
                dots[th] += x * weight
        for holders, x in common:  # still part of the similarity with the threads the other terms found
            for th in dots:
                weight = holders.get(th)
                if weight is not None:
                    dots[th] += x * weight
        partial: defaultdict[int, float] = defaultdict(float)
        common_dormant: list[tuple[dict[int, float], float]] = []
        probe_limit = DORMANT_PROBE_LIMIT if when is None else LATE_PROBE_LIMIT
        for term, x in vector.items():
            dormant = self.dormant_postings.get(term)
            if dormant:
                if len(dormant) <= probe_limit:
                    for th, weight in dormant.items():
                        partial[th] += x * weight
                else:
                    common_dormant.append((dormant, x))
        promising = list(itertools.compress(partial, map(dormant_half.__le__, partial.values())))
        if when is not None:
            promising = [th for th in promising if self._open_at(th, when)]
        if revival is not None:
            language, need_of = revival
            total = sum(vector.values())
            promising = [
                th
                for th in promising
                if self.thread_language[th] != language
                or self._dormant_reach(th, vector, partial[th], common_dormant, total) >= need_of(th)
            ]
        for th in promising:  # the exact dot product
            dots[th] = sum(map(operator.mul, vector.values(), map(self._centroid_of(th).get, vector, _ZEROS)))
        return dots

    def _dormant_reach(
        self,
        th: int,
        vector: dict[str, float],
        posted: float,
        common: list[tuple[dict[int, float], float]],
        total: float,
    ) -> float:
        """The most a dormant thread's cosine with ``vector`` can be, from what its postings
        hold: ``posted``, the part its strongest terms held by few threads gave (as few as
        ``_dots`` probes), plus the part of its strongest terms held more widely
        (``common``), plus, if its centroid has more terms than those, the weakest of them
        times the vector's weights (``total``, their sum): every other term weighs no
        more, and no weight is negative (an IDF is at least 1). Above the exact cosine but
        for the rounding of two sums, which the margin covers. Read from the postings, the
        bound spares unpacking the centroids of the many threads it leaves out."""
        reach = posted
        for holders, x in common:
            weight = holders.get(th)
            if weight is not None:
                reach += x * weight
        centroid = self.centroid[th]
        if (centroid[0].count("\0") + 1 if isinstance(centroid, tuple) else len(centroid)) > DORMANT_TERMS:
            reach += self.dormant_postings[self.dormant_terms[th].rpartition("\0")[2]][th] * total
        return reach + _ROUNDING_MARGIN

    def resolve(self, th: int) -> int:
        """The thread ``th`` is now part of (itself unless merged)."""
        while th in self.merged_into:
            th = self.merged_into[th]
        return th

    def alike_enough_to_merge(self, a: int, b: int, now: float) -> bool:
        """Whether two active threads' centroids are MERGE_SIMILARITY alike, and their
        origins too if both have run for MERGE_ORIGIN_DAYS at ``now``. Centroids are not
        compared again until their articles since could have turned them that close: the
        angle between two centroids changes by no more than the sum of their turns."""
        older, younger = sorted((a, b))
        turned = self.turned[a] + self.turned[b]
        checked = self.merge_checked.setdefault(younger, {})
        if turned < checked.get(older, -1.0):
            return False
        cosine = self.centroid_cosine(a, b)
        if cosine >= MERGE_SIMILARITY:
            both_ran = now - max(self.opened[a], self.opened[b]) >= MERGE_ORIGIN_DAYS * DAY
            return not both_ran or self._origins_alike(a, b)
        gap = math.acos(max(cosine, -1.0)) - math.acos(MERGE_SIMILARITY) - MERGE_RECHECK_MARGIN
        checked[older] = turned + max(gap, 0.0)
        return False

    def _origins_alike(self, a: int, b: int) -> bool:
        """Whether two threads' origins (what their first articles were about) are
        MERGE_ORIGIN_SIMILARITY alike. An origin of fewer than ORIGIN_ARTICLES is a sum of
        article vectors, not of unit length: compared by cosine all the same."""
        (_, first), (_, second) = self._origin_of(a), self._origin_of(b)
        norm2 = math.fsum(w * w for w in first.values()) * math.fsum(w * w for w in second.values())
        return norm2 > 0.0 and _shared_dot(first, second) >= MERGE_ORIGIN_SIMILARITY * math.sqrt(norm2)

    def centroid_cosine(self, a: int, b: int) -> float:
        dot = _shared_dot(self.centroid[a], self.centroid[b])
        return dot / (math.sqrt(self.norm2[a] * self.norm2[b]) or 1.0)

    def merge(self, absorbed: int, survivor: int, now: float) -> None:
        """Fold one active thread into another: its centroid (rescaled to the survivor's
        reference time), recent size and copy candidates; the absorbed thread closes."""
        scale = 2.0 ** ((self.ref[absorbed] - self.ref[survivor]) / (HALF_LIFE_DAYS * DAY))
        target, postings = self.centroid[survivor], self.active_postings
        for term, weight in self.centroid[absorbed].items():
            target[term] = postings[term][survivor] = target.get(term, 0.0) + weight * scale
        self.norm2[survivor] = sum(w * w for w in target.values())
        self.turned[survivor] += math.pi  # compared anew with every other thread
        decay = 0.5 ** ((now - self.last[absorbed]) / (HALF_LIFE_DAYS * DAY))
        self.recent_size[survivor] = (
            self.recent_size[survivor] * 0.5 ** ((now - self.last[survivor]) / (HALF_LIFE_DAYS * DAY))
            + self.recent_size[absorbed] * decay
        )
        self.last[survivor], self.touched[survivor] = now, self.clock
        heapq.heappush(self.active_heap, (now, survivor))
        candidates = self.copies.setdefault(survivor, [])
        candidates.extend(self.copies.get(absorbed, [])[: max(0, COPY_CANDIDATES - len(candidates))])
        survivor_core, absorbed_core = self.core.get(survivor), self.core.get(absorbed)
        self.core[survivor] = _Core(
            heapq.merge(
                survivor_core.articles if survivor_core else (),
                absorbed_core.articles if absorbed_core else (),
                key=operator.itemgetter(0),
            )
        )
        self.close(absorbed)
        self.merged_into[absorbed] = survivor

    def open(self, article_id: str, now: float, language: int = 0) -> int:
        th = len(self.centroid)
        self.thread_language.append(language)
        self.centroid.append({})
        self.norm2.append(0.0)
        self.ref.append(now)
        self.last.append(now)
        self.touched.append(self.clock)
        self.recent_size.append(0.0)
        self.state.append(1)
        self.pruned_at.append(0)
        self.turned.append(0.0)
        self.opened.append(now)
        self.thread_ids.append(article_id)
        self.index_of[article_id] = th
        return th

    def join(self, th: int, vector: dict[str, float], now: float) -> None:
        """Add the vector to the thread's centroid at time ``now``: the clock, or a late
        article's own date (then the thread's recent size and core, which are about its
        latest coverage, take it only if it is the thread's newest)."""
        if self.state[th] == 2:
            self._wake(th)
            self._post(th)
            self.state[th] = 1
            copies = self.late_copies.pop(th, None)
            if copies:
                self.copies[th] = copies
        centroid, postings = self.centroid[th], self.active_postings
        exponent = (now - self.ref[th]) / (HALF_LIFE_DAYS * DAY)
        if exponent > 20.0:  # rescale so weights stay bounded
            scale = 2.0 ** -min(exponent, 60.0) / (math.sqrt(self.norm2[th]) or 1.0)
            for term, weight in centroid.items():
                centroid[term] = postings[term][th] = weight * scale
            self.norm2[th] *= scale * scale
            self.ref[th] = now
            gain = 1.0
        else:
            gain = 2.0**exponent
        dot = 0.0
        for term, x in vector.items():
            weight = centroid.get(term)
            if weight is None:
                centroid[term] = postings[term][th] = gain * x
            else:
                dot += x * weight
                centroid[term] = postings[term][th] = weight + gain * x
        before = self.norm2[th]
        self.norm2[th] += 2.0 * gain * dot + gain * gain
        self.turned[th] += _angle(before + gain * dot, before, self.norm2[th])
        self.touched[th] = self.clock
        if now >= self.last[th]:
            self.recent_size[th] = (
                self.recent_size[th] * 0.5 ** ((now - self.last[th]) / (HALF_LIFE_DAYS * DAY)) + 1
            )
            self.last[th] = now
            core = self.core.get(th)
            if core is None:
                core = self.core[th] = _Core()
            core.drop_before(now - CORE_DAYS * DAY)
            core.append(now, vector)
        # An article of long ago leaves a thread it woke as old as it was: it is dormant again next time.
        heapq.heappush(self.active_heap, (self.last[th], th))
        self._count_into_origin(th, vector)
        if len(centroid) > 256 and len(centroid) > 2 * self.pruned_at[th]:  # drop decayed terms
            cut = 1e-4 * math.sqrt(self.norm2[th])
            decayed = [t for t, w in centroid.items() if w < cut]
            self._unpost(th, decayed)
            for term in decayed:
                del centroid[term]
            before = self.norm2[th]
            self.norm2[th] = sum(w * w for w in centroid.values())
            self.turned[th] += _angle(self.norm2[th], before, self.norm2[th])  # what is left is orthogonal
            self.pruned_at[th] = len(centroid)

    def _count_into_origin(self, th: int, vector: dict[str, float]) -> None:
        """Sum the thread's first articles; at ORIGIN_ARTICLES keep their strongest terms."""
        count, origin = self._origin_of(th)
        if count >= ORIGIN_ARTICLES:
            return
        for term, x in vector.items():
            origin[term] = origin.get(term, 0.0) + x
        count += 1
        if count == ORIGIN_ARTICLES:
            strongest = sorted(origin.items(), key=lambda kv: (-kv[1], kv[0]))[:ORIGIN_TERMS]
            norm = math.sqrt(sum(w * w for _, w in strongest)) or 1.0
            origin = {t: w / norm for t, w in strongest}
        self.origin[th] = (count, origin)

    def moved_on(self, th: int, vector: dict[str, float], now: float) -> bool:
        """Whether a thread, quiet since DRIFT_PAUSE, now tells another story than its origin,
        and so does the article that would join it."""
        if now - self.last[th] < DRIFT_PAUSE * DAY or now - self.opened[th] < DRIFT_DAYS * DAY:
            return False
        count, origin = self._origin_of(th)
        if count < ORIGIN_ARTICLES:
            return False
        centroid = self.centroid[th]
        dot = sum(map(operator.mul, origin.values(), map(centroid.get, origin, _ZEROS)))
        if dot >= DRIFT_SIMILARITY * (math.sqrt(self.norm2[th]) or 1.0):
            return False
        return sum(map(operator.mul, origin.values(), map(vector.get, origin, _ZEROS))) < DRIFT_SIMILARITY

    def copy_of(self, th: int, article_id: str, key: str, signature: Signature) -> tuple[str, float] | None:
        """The earliest article of the thread this one copies, with the overlap; remembered if new."""
        found = None
        candidates = self.copies.setdefault(th, [])
        for other, other_key, other_signature in candidates:
            if other == article_id:
                continue
            overlap = 1.0 if other_key == key else copy_overlap(signature, other_signature)
            if overlap >= COPY_OVERLAP:
                found = (other, overlap)
                break
        known = any(other == article_id for other, _, _ in candidates)
        if found is None and len(candidates) < COPY_CANDIDATES and not known:
            candidates.append((article_id, key, signature))
        return found


def _shared_dot(first: dict[str, float], second: dict[str, float]) -> float:
    """The dot product of two sparse vectors. The shared terms are found in C (key views):
    big threads share few of their hundreds. A set's order varies between processes; fsum's
    exact sum does not depend on it."""
    return math.fsum(first[t] * second[t] for t in first.keys() & second.keys())


def _packed(centroid: dict[str, float]) -> tuple[str, bytes] | dict[str, float]:
    """A dormant thread's centroid as it is saved: its terms in one string and its weights
    in one array, in the dict's order. Dormant centroids are most of the saved state, and
    two objects a thread pickle faster than a dict of dozens of terms (at a million
    articles, the state is written in 1.2 s instead of 2.2 and read in 1.2 s instead of 2.7)."""
    terms = "\0".join(centroid)
    if not centroid or terms.count("\0") != len(centroid) - 1:  # a term holding a NUL: kept as is
        return centroid
    return terms, array("d", centroid.values()).tobytes()


def _unpacked(packed: tuple[str, bytes]) -> dict[str, float]:
    """The centroid ``_packed`` saved: the same terms, order and weights (doubles, exactly)."""
    terms, weights = packed
    return dict(zip(terms.split("\0"), array("d", weights), strict=True))


def _angle(dot: float, norm2_a: float, norm2_b: float) -> float:
    """The angle between two vectors, from their dot product and squared lengths (pi if one is empty)."""
    if norm2_a <= 0.0 or norm2_b <= 0.0:
        return math.pi
    return math.acos(max(-1.0, min(1.0, dot / math.sqrt(norm2_a * norm2_b))))


class Closeness:
    """An article's closeness to threads' recent cores: its highest cosine with one of a
    thread's articles of the last ``CORE_DAYS``, computed once per thread and only when asked."""

    __slots__ = ("known", "now", "threader", "vector")

    def __init__(self, threader: Threader, vector: dict[str, float], now: float) -> None:
        self.threader, self.vector, self.now = threader, vector, now
        self.known: dict[int, float] = {}

    def __call__(self, th: int) -> float:
        found = self.known.get(th)
        if found is None:
            core = self.threader.core.get(th)
            since = self.now - CORE_DAYS * DAY
            found = self.known[th] = core.closeness(self.vector, since) if core is not None else 0.0
        return found


class _Core:
    """A thread's recent core: its newest articles' (time, vector), oldest first, at most
    ``CORE_ARTICLES``. Once asked for an article's closeness, also indexed by term (kept in
    step from then on): the article's terms find the few articles that share them, where
    comparing it with each of a big thread's 64 took most of the time of a closeness."""

    __slots__ = ("articles", "by_term", "first")

    def __init__(self, articles: Iterable[tuple[float, dict[str, float]]] = ()) -> None:
        self.articles: deque[tuple[float, dict[str, float]]] = deque(articles, maxlen=CORE_ARTICLES)
        #: term -> {article number: its weight}, an article numbered by its arrival (None: not built).
        self.by_term: dict[str, dict[int, float]] | None = None
        self.first = 0  # the number of articles[0]

    def append(self, when: float, vector: dict[str, float]) -> None:
        if len(self.articles) == CORE_ARTICLES:
            self._drop_oldest()
        self.articles.append((when, vector))
        if self.by_term is not None:
            self._index(self.first + len(self.articles) - 1, vector)

    def drop_before(self, when: float) -> None:
        while self.articles and self.articles[0][0] < when:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        _, vector = self.articles.popleft()
        if self.by_term is not None:
            for term in vector:
                holders = self.by_term[term]
                del holders[self.first]
                if not holders:
                    del self.by_term[term]
        self.first += 1

    def _index(self, number: int, vector: dict[str, float]) -> None:
        by_term = self.by_term
        assert by_term is not None
        for term, weight in vector.items():
            holders = by_term.get(term)
            if holders is None:
                by_term[term] = {number: weight}
            else:
                holders[number] = weight

    def closeness(self, vector: dict[str, float], since: float) -> float:
        """The highest cosine (dot product: unit vectors) of ``vector`` with one of the
        articles from the newest back to the first older than ``since``; 0.0 if none."""
        recent = 0
        for when, _ in reversed(self.articles):
            if when < since:
                break
            recent += 1
        if not recent:
            return 0.0
        if self.by_term is None:
            self.by_term = {}
            for at, (_, article) in enumerate(self.articles):
                self._index(self.first + at, article)
        lowest, by_term = self.first + len(self.articles) - recent, self.by_term
        products: dict[int, list[float]] = {}
        for term, x in vector.items():
            holders = by_term.get(term)
            if holders is not None:
                for number, weight in holders.items():
                    if number >= lowest:
                        found = products.get(number)
                        if found is None:
                            products[number] = [weight * x]
                        else:
                            found.append(weight * x)
        # fsum is exact: the same dot product in any order of terms
        dots = (found[0] if len(found) == 1 else math.fsum(found) for found in products.values())
        return max(dots, default=0.0)


#: The event type of a withdrawal: the article leaves its thread, and is not weighed.
WITHDRAWN = "article.withdrawn"


@dataclass(slots=True)
class Merge:
    event_seq: int  # the article event that showed the two threads are one story
    thread_id: str  # the absorbed thread
    merged_into: str
    event_time: float


@dataclass(slots=True)
class Assignment:
    event_seq: int
    article_id: str
    version: int
    action: str  # open, join, stay, move, leave
    thread_id: str
    similarity: float | None
    duplicate_of: str | None
    event_time: float
    copy_similarity: float | None = None


def assign(
    threader: Threader,
    current: dict[str, str],
    text: ArticleText,
    vector: dict[str, float] | None,
    event_seq: int,
    article_id: str,
    version: int,
    event_type: str,
    event_time: float,
    clock_time: float,
    cross_norms: dict[int, float] | None = None,
) -> Assignment:
    """One article version (a row of ``_EVENTS_SQL``, its text read, its ``vector``, None
    for a withdrawal, and its ``cross_norms`` if known: ``_texts_and_vectors``) through the
    rule; ``current`` maps article -> its thread. The rule runs at ``clock_time`` or later,
    never backwards; an article dated before the active threads' window is decided in its
    own time."""
    threader.last_event_seq = event_seq
    threader.clock = max(threader.clock, clock_time)
    late = clock_time < threader.clock - WINDOW_DAYS * DAY
    now = clock_time if late else threader.clock
    if event_type == WITHDRAWN:
        thread = current.pop(article_id, article_id)
        if thread in threader.index_of:
            thread = threader.thread_ids[threader.resolve(threader.index_of[thread])]
        return Assignment(event_seq, article_id, version, "leave", thread, None, None, event_time)
    assert vector is not None
    language = threader.language_number(text.language)
    closeness = Closeness(threader, vector, now)
    if late:  # no merges nor drift: those are decided on the stream as it arrives
        found = threader.best_late(vector, now, language, text.with_body, cross_norms)
    else:
        found = threader.best(vector, now, language, closeness, text.with_body, cross_norms)
        if found is not None and threader.state[found[0]] == 1 and threader.moved_on(found[0], vector, now):
            threader.close(found[0])  # its story is over: this article opens the next one
            found = None
    previous = current.get(article_id)
    if previous is not None:  # its thread may have been merged since
        previous = threader.thread_ids[threader.resolve(threader.index_of[previous])]
    if found is None and previous is not None and threader.state[threader.index_of[previous]] != 0:
        th, similarity, action = threader.index_of[previous], None, "stay"
    elif found is None:
        # A revision that fits nowhere opens a thread of its own under a new id.
        new_id = article_id if article_id not in threader.index_of else f"{article_id}#{version}"
        th, similarity = threader.open(new_id, now, language), None
        action = "open" if previous is None else "move"
    else:
        th, similarity, also_cleared = found
        for other in also_cleared:  # one article close to two similar stories makes them one
            if min(closeness(th), closeness(other)) < MERGE_CORE_SIMILARITY:
                continue
            both_active = threader.state[th] == threader.state[other] == 1
            if both_active and threader.alike_enough_to_merge(th, other, now):
                absorbed, th = max(th, other), min(th, other)  # the older thread survives
                threader.merge(absorbed, th, now)
                threader.new_merges.append(
                    Merge(event_seq, threader.thread_ids[absorbed], threader.thread_ids[th], event_time)
                )
        thread_id = threader.thread_ids[th]
        action = "join" if previous is None else ("stay" if thread_id == previous else "move")
        similarity = round(similarity, 6)
    threader.join(th, vector, now)
    thread_id = threader.thread_ids[th]
    current[article_id] = thread_id
    copy = threader.copy_of(th, article_id, text.copy_key, text.signature)
    if late:
        threader._expire(threader.clock)  # the story of long ago goes back to sleep at once
    return Assignment(
        event_seq,
        article_id,
        version,
        action,
        thread_id,
        similarity,
        None if copy is None else copy[0],
        event_time,
        None if copy is None else round(copy[1], 6),
    )


class ArticleText(NamedTuple):
    """What the rule reads of an article version's text: worked out from the text alone,
    so it can be read ahead, in another process (``_texts_and_vectors``)."""

    language: str  # the language's key, "en" when none is known
    # term_counts of title, summary and the body's lead (empty from the worker, which counts them)
    counts: dict[str, float]
    with_body: bool
    copy_key: str
    signature: Signature


def article_text(title: str, summary: str, body: str, language: str) -> ArticleText:
    language = language_key(language) or "en"  # "en-GB" is "en"
    lead = " ".join(body.split(None, LEAD_WORDS)[:LEAD_WORDS]) if body else ""
    return ArticleText(
        language,
        term_counts(f"{title} \n {summary}", lead, language),
        bool(lead),
        copy_key(title, summary),
        copy_signature(f"{title}\n{summary}\n{body}"),
    )


#: Article versions from which a run reads their texts and weighs them in a worker
#: process while the rule runs here (reading and weighing are a third to a half of the
#: work, the rule the rest); below it, starting the worker (a fork server importing this
#: module) costs more than it saves.
PARALLEL_TEXT_MIN_EVENTS = 2_000
#: Article versions the worker reads per task, and tasks handed to it ahead of the rule.
TEXT_CHUNK = 256
TEXT_CHUNKS_AHEAD = 16
#: How long the rule waits for a chunk from the worker (it takes a tenth of a second or
#: so): past it, the worker is stopped and the rest read here.
TEXT_CHUNK_SECONDS = 30.0

#: The worker's copy of the vocabulary, kept in step with the rule's (``_read_chunk``).
_COPY: _Copy | None = None
#: What the worker hands back for a chunk: texts, vectors, cross-language norms.
_ChunkRead = tuple[list[ArticleText], list[dict[str, float] | None], list[dict[int, float] | None]]


def _texts_and_vectors(
    rows: list[tuple], threader: Threader
) -> Iterator[tuple[ArticleText, dict[str, float] | None, dict[int, float] | None]]:
    """Each row's ``ArticleText`` (its last four fields: title, summary, body, language),
    its vector (``Threader.weigh``; None for a withdrawal, which is not weighed) and its
    ``Threader.cross_norms`` (None where ``threader`` can work them out itself), in order;
    each article is counted into the vocabulary (``Threader.vocabulary``) as it is weighed,
    so each vector is weighed by the documents before it.

    With many rows, a worker process reads, weighs and counts ahead, into a copy of
    ``threader``'s vocabulary made as it starts and kept in step: each chunk handed to it
    carries the articles weighed here since the last. It hands back the vectors and their
    cross-language norms, all the rule reads of the vocabulary, so ``threader``'s own stays
    as it was until the end, when it takes what the copy counted (each term's count, each
    language's new terms; the whole copy if it forgot its rare terms). If that cannot be
    had, or the worker fails part way, the articles it counted are read again and counted
    here, in order, before anything more is weighed here. Until the worker is up, and from
    the moment it fails, texts are read and weighed here (and the first chunk handed to it,
    rather than waited for). Either way the same: a text depends on its fields alone, a
    vector on its text and the documents counted before it, its norms on the vector and the
    languages' terms counted with it."""
    pool = None
    if len(rows) >= PARALLEL_TEXT_MIN_EVENTS and (context := forkserver_context(__name__)) is not None:
        languages = sorted({language_key(raw) or "en" for raw in {row[-1] for row in rows}})
        for language in languages:
            _prior(language)  # made and saved here first: the worker reads the same as it starts
        with suppress(Exception):  # no worker (no memory, a daemonic caller): read here
            pool = ProcessPoolExecutor(
                1,
                mp_context=context,
                initializer=_start_reading,
                initargs=(
                    _places(),
                    _PRIOR_FOLDER,
                    languages,
                    VOCABULARY_LIMIT,
                    # the vocabulary as it is now, pickled before any more is counted
                    pickle.dumps(threader.vocabulary(), pickle.HIGHEST_PROTOCOL),
                ),
            )
    weighed = [row[3] != WITHDRAWN for row in rows]  # as ``assign`` tells a withdrawal
    chunks = len(range(0, len(rows), TEXT_CHUNK))
    # the documents counted before each chunk's first
    starts = list(
        itertools.accumulate(
            (sum(weighed[at * TEXT_CHUNK : (at + 1) * TEXT_CHUNK]) for at in range(chunks)),
            initial=threader.documents,
        )
    )
    up: Future[None] | None = None
    ahead: deque[Future[_ChunkRead]] = deque()
    unsent: list[tuple[dict[str, float], str]] = []  # the articles weighed here, for the worker to count
    counted_there: list[int] = []  # the chunks the worker counted and ``threader`` has not
    counted_by_copy: Future[_Counted] | None = None
    first_handed: int | None = None  # the first chunk handed to the worker
    try:
        if pool is not None:
            try:
                up = pool.submit(_worker_up)
            except Exception:  # a broken pool
                _stop(pool)
                pool = None
        for at in range(chunks):
            if up is not None and up.done():  # from now on, the worker reads ahead
                if up.exception() is not None:  # it failed as it started
                    _stop(pool)
                    pool = None
                else:
                    first_handed = at
                up = None
            while (
                pool is not None
                and up is None
                and len(ahead) < TEXT_CHUNKS_AHEAD
                and at + len(ahead) < chunks
            ):
                chunk = at + len(ahead)
                try:
                    ahead.append(
                        pool.submit(_read_chunk, starts[chunk], unsent, *_chunk(rows, weighed, chunk))
                    )
                except Exception:  # a broken pool
                    _stop(pool)
                    pool = None
                unsent = []
            if pool is not None and counted_by_copy is None and at + len(ahead) == chunks:  # all handed out
                try:
                    counted_by_copy = pool.submit(_counted_by_copy)
                except Exception:  # a broken pool
                    _stop(pool)
                    pool = None
            read = None
            if pool is not None and ahead and at == first_handed:
                # Read here too rather than wait a tenth of a second for the worker's first
                # chunk, which it counts into its copy all the same.
                ahead.popleft()
            elif pool is not None and ahead:
                try:
                    read = ahead.popleft().result(timeout=TEXT_CHUNK_SECONDS)
                except Exception:  # a worker that died, hung, or sent what would not unpickle
                    _stop(pool)
                    pool = None
            if read is None:
                _count_here(threader, rows, weighed, counted_there)
                fields, to_weigh = _chunk(rows, weighed, at)
                for text, is_weighed in zip(_read_texts(fields), to_weigh, strict=True):
                    if not is_weighed:
                        yield text, None, None
                        continue
                    if up is not None:  # the worker is starting: it counts this one once it is up
                        unsent.append((text.counts, text.language))
                    yield text, threader.weigh(text.counts, text.language), None
            else:
                counted_there.append(at)
                yield from zip(*read, strict=True)
        if counted_there and pool is not None and counted_by_copy is not None:
            expected = threader.documents + sum(starts[at + 1] - starts[at] for at in counted_there)
            try:
                counted = counted_by_copy.result(timeout=TEXT_CHUNK_SECONDS)
                in_step = (
                    counted.documents == expected and counted.language_numbers == threader.language_numbers
                )
            except Exception:  # as for a chunk, or what came back is not what the copy counted
                _stop(pool)
                pool = None
            else:
                if in_step:
                    if counted.whole:
                        threader.df, threader.language_terms = counted.frequencies, counted.language_terms
                    else:
                        # Counts, not increments (``Counter.update`` would add): a new term comes
                        # after the others, in the order counting met it, as counting here puts it.
                        dict.update(threader.df, counted.frequencies)
                        for number, terms in counted.language_terms.items():
                            threader.language_terms.setdefault(number, set()).update(terms)
                    threader.documents = counted.documents
                    counted_there.clear()
    finally:
        _count_here(threader, rows, weighed, counted_there)  # what the copy did not bring, or a stop part way
        if pool is not None:
            if up is not None or ahead:  # still starting, or reading what is no longer wanted
                _stop(pool)
            else:
                pool.shutdown(cancel_futures=True)  # the worker is idle


def _chunk(
    rows: list[tuple], weighed: list[bool], at: int
) -> tuple[list[tuple[str, str, str, str]], list[bool]]:
    """The fields of chunk ``at``'s texts, and whether each is weighed."""
    chunk = slice(at * TEXT_CHUNK, (at + 1) * TEXT_CHUNK)
    return [row[-4:] for row in rows[chunk]], weighed[chunk]


def _stop(pool: ProcessPoolExecutor) -> None:
    """End a failed worker now, even one stuck in a chunk (shutting the executor down
    waits for it, and it has no public way to end its processes before Python 3.14)."""
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        with suppress(Exception):
            worker.terminate()


def _count_here(threader: Threader, rows: list[tuple], weighed: list[bool], chunks: list[int]) -> None:
    """Count into ``threader``'s vocabulary, in order, the articles of ``chunks`` (emptied),
    which the worker counted into its copy: read again, as their counts stayed there."""
    for at in chunks:
        fields, to_weigh = _chunk(rows, weighed, at)
        for text, is_weighed in zip(_read_texts(fields), to_weigh, strict=True):
            if is_weighed:
                threader.count(text.counts, text.language)
    chunks.clear()


def _read_texts(fields: list[tuple[str, str, str, str]]) -> list[ArticleText]:
    return [article_text(*text) for text in fields]


class _Counted(NamedTuple):
    """What the worker's copy counted in a run, for the caller's vocabulary."""

    documents: int
    #: the count of each term counted, a new term after the others in the order first
    #: counted; or, ``whole``, the copy's frequencies
    frequencies: dict[str, int]
    #: each language's terms not there before (by number); or, ``whole``, the copy's
    language_terms: dict[int, set[str]]
    language_numbers: dict[str, int]
    #: the copy forgot its rare terms (which cuts each language's terms too) during the run,
    #: so it hands back its whole vocabulary, to be taken as it is
    whole: bool


class _Copy:
    """The worker's copy of the caller's vocabulary, and what it was before a run counted into it."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.threader = threader = Threader()
        threader.documents, threader.df, threader.language_terms, threader.language_numbers = vocabulary
        self.frequencies = threader.df  # forgetting rare terms replaces it
        # Kept aside as they came, and compared once the run is over, rather than noting
        # each article's terms in the hot loop.
        self.counts_before = dict(threader.df)
        self.language_terms_before = {number: set(terms) for number, terms in threader.language_terms.items()}

    def counted(self) -> _Counted:
        """What the run counted: the change, or the whole vocabulary once it forgot rare terms."""
        threader = self.threader
        if threader.df is not self.frequencies:
            return _Counted(
                threader.documents,
                threader.df,
                threader.language_terms,
                threader.language_numbers,
                whole=True,
            )
        before = self.counts_before
        # in the order of the frequencies: a new term after the others, in the order first counted
        frequencies = {term: count for term, count in threader.df.items() if before.get(term) != count}
        new_terms = {
            number: terms - self.language_terms_before.get(number, set())
            for number, terms in threader.language_terms.items()
        }
        return _Counted(threader.documents, frequencies, new_terms, threader.language_numbers, whole=False)


def _start_reading(
    places: dict[str, str],
    prior_folder: Path | None,
    languages: list[str],
    vocabulary_limit: int,
    vocabulary: bytes,
) -> None:
    """A worker's place map (the caller's, the same as building it, without the
    gazetteer's ~1.5 s), the priors of the rows' languages from the caller's folder, and
    its copy of the caller's vocabulary (pickled), whose rare terms it forgets at the
    caller's limit."""
    global _PLACES, _PRIOR_FOLDER, _COPY, VOCABULARY_LIMIT
    _PLACES, _PRIOR_FOLDER, VOCABULARY_LIMIT = places, prior_folder, vocabulary_limit
    for language in languages:
        _prior(language)
    _COPY = _Copy(pickle.loads(vocabulary))


def _worker_up() -> None:
    """Nothing: done once the worker has started."""


def _read_chunk(
    start: int,
    counted: list[tuple[dict[str, float], str]],
    fields: list[tuple[str, str, str, str]],
    weighed: list[bool],
) -> _ChunkRead:
    """In the worker: the chunk's texts (their counts left out: counted here), vectors and
    cross-language norms, after counting the articles the caller weighed itself
    (``counted``: counts and language); ``start`` is the number of documents before the
    chunk, which the copy must have counted."""
    assert _COPY is not None
    threader = _COPY.threader
    for counts, language in counted:
        threader.count(counts, language)
    if threader.documents != start:
        raise RuntimeError(f"the worker counted {threader.documents:,} documents, the caller {start:,}")
    texts: list[ArticleText] = []
    vectors: list[dict[str, float] | None] = []
    norms: list[dict[int, float] | None] = []
    for text, is_weighed in zip(_read_texts(fields), weighed, strict=True):
        if is_weighed:
            vector = threader.weigh(text.counts, text.language)
            vectors.append(vector)
            norms.append(threader.cross_norms(vector, threader.language_number(text.language)))
        else:
            vectors.append(None)
            norms.append(None)
        texts.append(text._replace(counts={}))
    return texts, vectors, norms


def _counted_by_copy() -> _Counted:
    """In the worker, after the last chunk: what its copy counted (``_Copy.counted``)."""
    copy = _COPY
    assert copy is not None
    return copy.counted()


@dataclass(slots=True)
class ThreadReport:
    articles: int = 0
    opened: int = 0
    replayed: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        rate = self.articles / self.seconds if self.seconds else 0.0
        replay = f", after replaying {self.replayed} from the log" if self.replayed else ""
        return (
            f"threads: {self.articles} article versions assigned, {self.opened} new threads "
            f"in {self.seconds:.1f} s ({rate:,.0f}/s){replay}"
        )


SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS enrich;
CREATE TABLE IF NOT EXISTS enrich.thread_assignments (
    event_seq BIGINT NOT NULL, article_id VARCHAR NOT NULL, version INTEGER NOT NULL,
    action VARCHAR NOT NULL, thread_id VARCHAR NOT NULL, similarity DOUBLE, duplicate_of VARCHAR,
    event_time TIMESTAMP NOT NULL, algorithm VARCHAR NOT NULL, copy_similarity DOUBLE
);
ALTER TABLE enrich.thread_assignments ADD COLUMN IF NOT EXISTS copy_similarity DOUBLE;
CREATE TABLE IF NOT EXISTS enrich.thread_merges (
    event_seq BIGINT NOT NULL, thread_id VARCHAR NOT NULL, merged_into VARCHAR NOT NULL,
    merged_at TIMESTAMP NOT NULL, algorithm VARCHAR NOT NULL
);
"""

#: Each article version as ``assign`` takes it, and the time the rule's clock takes
#: from it: a revision or withdrawal without a date of its own is dated by its
#: article's latest dated version, not by when it was recorded. Loading an old archive
#: with a dateless revision in it would otherwise move the clock to the day of the
#: load, and every older article after it would be threaded as arriving then.
_EVENTS_SQL = """
SELECT e.event_seq, e.stream_id, e.stream_version, e.event_type,
       epoch(coalesce(least(e.occurred_at, e.recorded_at), e.recorded_at)),
       epoch(CASE
           WHEN e.occurred_at IS NOT NULL OR e.stream_version = 1 THEN least(e.occurred_at, e.recorded_at)
           ELSE coalesce(
               (SELECT max(least(p.occurred_at, p.recorded_at)) FROM raw.events AS p
                WHERE p.stream_id = e.stream_id AND p.stream_version < e.stream_version
                  AND p.occurred_at IS NOT NULL),
               e.recorded_at)
       END) AS clock_time,
       coalesce(e.title, ''), coalesce(e.summary, ''), coalesce(e.body, ''), coalesce(e.language, '')
FROM raw.article_events AS e
WHERE e.event_seq > ? AND e.event_seq <= ?
ORDER BY e.event_seq
"""


def state_path(db_path: Path) -> Path:
    """The saved state of the database at ``db_path``, named by its whole file name: a
    lake and a file of the same stem beside each other (``newsroom.lake``,
    ``newsroom.duckdb``) keep states of their own."""
    return Path(db_path).parent / "threads" / f"{Path(db_path).name}.{rule_id()}.pkl"


#: Article versions between two calls of ``assign_threads``'s ``on_progress``.
PROGRESS_EVERY = 1_000
#: The tables dbt builds from the assignments, incrementally: each finds its new work by
#: the assignments' event_seq, which a new rule's rows reuse (it threads the same events
#: again), so they would keep the old rule's threads. Dropped with the old rule's rows,
#: they are built in full by the next build.
BUILT_FROM_ASSIGNMENTS = ("marts.thread_articles", "marts.story_threads", "marts.threads_daily")


def assign_threads(db_path: Path, *, on_progress: Callable[[int, int], None] | None = None) -> ThreadReport:
    """Assign every article version recorded since the last run, a part at a time
    (``PART_EVENTS`` versions: assigned, then recorded in a transaction of its own and the
    state saved). ``on_progress`` is called with the versions assigned so far (those
    replayed first, without a usable saved state) and their number, every
    ``PROGRESS_EVERY`` and at the end."""
    global _PRIOR_FOLDER
    _PRIOR_FOLDER = state_path(db_path).parent
    report = ThreadReport()
    started = time.monotonic()
    rule = rule_id()
    with EventStore(db_path) as store:
        con = store.con
        create_schema(con, SCHEMA_SQL)
        done = con.execute(
            "SELECT coalesce(max(event_seq), 0) FROM enrich.thread_assignments WHERE algorithm = ?",
            [rule],
        ).fetchall()[0][0]
        pending = con.execute("SELECT count(*) FROM raw.article_events WHERE event_seq > ?", [done])
        total = pending.fetchall()[0][0]
        if total >= PARALLEL_TEXT_MIN_EVENTS:
            forkserver_context(__name__, start=True)  # imports this module while the state is read
        threader = _load_state(db_path, done)
        if threader.last_event_seq != done:  # no usable state: replay the log up to `done`
            threader = Threader()
            replay = con.execute("SELECT count(*) FROM raw.article_events WHERE event_seq <= ?", [done])
            total += replay.fetchall()[0][0]
            replayed_through = 0
            while replayed_through < done and (through := store.part_end(replayed_through)) is not None:
                through = min(through, done)
                for _ in _assign_part(con, rule, threader, replayed_through, through):
                    report.replayed += 1
                    if on_progress and report.replayed % PROGRESS_EVERY == 0:
                        on_progress(report.replayed, total)
                replayed_through = through
            threader.new_merges.clear()  # recorded by the run that made them
        while (through := store.part_end(done)) is not None:
            rows = []
            for assignment in _assign_part(con, rule, threader, done, through):
                rows.append(assignment)
                if on_progress and (report.articles + len(rows)) % PROGRESS_EVERY == 0:
                    on_progress(report.replayed + report.articles + len(rows), total)
            report.articles += len(rows)
            report.opened += sum(a.action == "open" for a in rows)
            _record(store, rule, rows, threader)
            done = through
        if report.replayed and not report.articles:  # a replay no part saved: saved for the next run
            _save_state(store.path, threader)
        if on_progress:
            on_progress(report.replayed + report.articles, report.replayed + report.articles)
    report.seconds = time.monotonic() - started
    return report


def _assign_part(con, rule: str, threader: Threader, after: int, through: int) -> Iterator[Assignment]:
    """The assignments of the article versions after event #``after`` up to ``through``,
    in order. An article seen before the part is in the thread of its latest assignment
    before it (recorded by the parts and runs before, or on the log's replay the same)."""
    events = con.execute(_EVENTS_SQL, [after, through]).fetchall()
    current = _current_threads(con, rule, {row[1] for row in events if row[2] > 1}, after)
    for row, (text, vector, norms) in zip(events, _texts_and_vectors(events, threader), strict=True):
        yield assign(threader, current, text, vector, *row[:6], norms)


def _record(store: EventStore, rule: str, rows: list[Assignment], threader: Threader) -> None:
    """Append a part's assignments and the merges it made, then save the state they leave."""
    con = store.con
    table = pa.table(
        {
            "event_seq": [a.event_seq for a in rows],
            "article_id": [a.article_id for a in rows],
            "version": pa.array([a.version for a in rows], pa.int32()),
            "action": [a.action for a in rows],
            "thread_id": [a.thread_id for a in rows],
            "similarity": pa.array([a.similarity for a in rows], pa.float64()),
            "duplicate_of": pa.array([a.duplicate_of for a in rows], pa.string()),
            "event_time": pa.array([int(a.event_time * 1_000_000) for a in rows], pa.timestamp("us")),
            "algorithm": [rule] * len(rows),
            "copy_similarity": pa.array([a.copy_similarity for a in rows], pa.float64()),
        }
    )
    merges = threader.new_merges
    merge_table = pa.table(
        {
            "event_seq": pa.array([m.event_seq for m in merges], pa.int64()),
            "thread_id": pa.array([m.thread_id for m in merges], pa.string()),
            "merged_into": pa.array([m.merged_into for m in merges], pa.string()),
            "merged_at": pa.array([int(m.event_time * 1e6) for m in merges], pa.timestamp("us")),
            "algorithm": pa.array([rule] * len(merges), pa.string()),
        }
    )
    with (
        store.transaction(),
        registered(con, "_assignments", table),
        registered(con, "_merges", merge_table),
    ):
        # A new rule threads every article again: the old rule's rows are only a
        # cache of its own, dropped so that nothing downstream mixes the two.
        replaced = con.execute(
            "DELETE FROM enrich.thread_assignments WHERE algorithm <> ?", [rule]
        ).fetchall()[0][0]
        con.execute("DELETE FROM enrich.thread_merges WHERE algorithm <> ?", [rule])
        if replaced:
            for built in BUILT_FROM_ASSIGNMENTS:
                con.execute(f"DROP TABLE IF EXISTS {built}")
        con.execute("INSERT INTO enrich.thread_assignments BY NAME SELECT * FROM _assignments")
        con.execute("INSERT INTO enrich.thread_merges BY NAME SELECT * FROM _merges")
    merges.clear()
    _save_state(store.path, threader)


def _current_threads(con, rule: str, article_ids: set[str], before: int) -> dict[str, str]:
    """Each of these articles' thread, by its latest assignment under ``rule`` up to event
    #``before`` (none once it left)."""
    if not article_ids:
        return {}
    table = pa.table({"article_id": pa.array(sorted(article_ids), pa.string())})
    with registered(con, "_seen_before", table):
        rows = con.execute(
            """
            SELECT article_id, arg_max(thread_id, event_seq), arg_max(action, event_seq)
            FROM enrich.thread_assignments
            WHERE algorithm = ? AND event_seq <= ? AND article_id IN (SELECT article_id FROM _seen_before)
            GROUP BY article_id
            """,
            [rule, before],
        ).fetchall()
    return {article: thread for article, thread, action in rows if action != "leave"}


def _dormant_path(path: Path, number: int) -> Path:
    """The file of dormant threads numbered ``number`` beside the state file ``path``."""
    return path.with_name(f"{path.stem}.dormant-{number}.pkl")


def _load_state(db_path: Path, done: int) -> Threader:
    global _PLACES
    path = state_path(db_path)
    if done and path.exists():
        try:
            with gc_paused():
                threader = pickle.loads(path.read_bytes())
                if isinstance(threader, dict):  # a live state: its dormant threads are in their files
                    live = threader
                    if live.get("layout") != STATE_LAYOUT or live.get("last_event_seq") != done:
                        return Threader()
                    threader = Threader.__new__(Threader)
                    threader.__setstate__(live)
                    _read_dormant(path, threader)
            layout = getattr(threader, "layout", None)
            usable = layout in _READABLE_LAYOUTS and threader.last_event_seq == done
            if isinstance(threader, Threader) and usable:
                threader.layout = STATE_LAYOUT
                if _PLACES is None and threader.places and threader.places[0] == gazetteer_id():
                    _PLACES = threader.places[1]  # the same packages: the same map
                return threader
        except Exception:  # unreadable or from another version: replay instead
            pass
    return Threader()


def _read_dormant(path: Path, threader: Threader) -> None:
    """Add back the dormant threads of a live state from their files (each thread from the
    file it was last saved in); a file missing or short of a thread raises."""
    saved, restored = threader.saved_dormant, 0
    for number in sorted(threader.dormant_files):
        records, postings = pickle.loads(_dormant_path(path, number).read_bytes())
        stale = {record[0] for record in records if saved.get(record[0]) != number}
        threader.restore_dormant(records, postings, stale)
        restored += len(records) - len(stale)
    dormant = sum(state == 2 for state in threader.state)
    if not restored == len(saved) == dormant:
        raise ValueError(f"{restored:,} dormant threads read back, {dormant:,} saved")


def _save_state(db_path: Path, threader: Threader) -> None:
    path = state_path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    threader.places = (gazetteer_id(), _places())
    # Each dormant file of this database: (its rule, its number).
    dormant_file = re.compile(rf"{re.escape(Path(db_path).name)}\.([^.]+)\.dormant-([0-9]+)\.pkl")
    on_disk = {
        name: (m[1], int(m[2])) for name in os.listdir(path.parent) if (m := dormant_file.fullmatch(name))
    }
    files, saved = threader.dormant_files, threader.saved_dormant
    sleeping = Counter(saved.values())  # each file's threads still asleep
    for number in [number for number in files if number not in sleeping]:
        del files[number]
    dormant = [th for th, state in enumerate(threader.state) if state == 2]
    stale = sum(files.values()) - len(saved)
    if stale > len(dormant) or len(files) >= DORMANT_FILES_LIMIT:
        files.clear()  # mostly stale, or too many: every sleeping thread written again, as one
        saved.clear()
    unsaved = [th for th in dormant if th not in saved]
    if unsaved:
        # Past every number on disk: a file the state before names stays as it was until it is replaced.
        number = 1 + max((*files, *(n for _, n in on_disk.values())), default=0)
        records = threader.dormant_records(unsaved)
        write_atomically(_dormant_path(path, number), pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL))
        files[number] = len(unsaved)
        saved.update(dict.fromkeys(unsaved, number))
    write_atomically(path, pickle.dumps(threader.live_state(), protocol=pickle.HIGHEST_PROTOCOL))
    # Only now are the files the state before named, and no longer this one, never read
    # again; nor the states of older rules (their rows were just replaced), nor priors
    # made for another rule or other packages.
    older = re.compile(rf"{re.escape(Path(db_path).name)}\.[^.]+\.pkl")
    # Named by the stem alone before, and shared with any database of that stem.
    legacy = re.compile(rf"{re.escape(Path(db_path).stem)}\.[^.]+(?:\.dormant-[0-9]+)?\.pkl")
    if Path(db_path).stem == Path(db_path).name:
        legacy = older
    current_rule = rule_id()
    for other in path.parent.iterdir():
        prior = re.fullmatch(r"prior\.([a-z]{2,3})\.[0-9a-f]{16}\.pkl", other.name)
        stale_prior = prior is not None and other not in (
            _prior_path((prior[1], german)) for german in (False, True)
        )
        rule, number = on_disk.get(other.name, (None, None))
        unused = rule is not None and (rule != current_rule or number not in files)
        if other != path and (
            older.fullmatch(other.name) or legacy.fullmatch(other.name) or stale_prior or unused
        ):
            other.unlink(missing_ok=True)
