"""Story threads: each new article version joins a developing story or opens one.

Online and in log order, like a desk watching the wire. An article is compared,
by cosine similarity of TF-IDF vectors (title and summary; IDF learnt from the
stream so far), with the centroids of candidate threads found through an
inverted index: active threads (an article in the last ``WINDOW_DAYS``) and
dormant ones (older, kept so long-running stories can continue, at a stricter
threshold). Centroids and thread sizes decay with a one-day half-life, and a big
active thread accepts slightly weaker matches. The article joins the thread it
clears by the widest margin, else opens a thread whose id is its own article_id.

Deterministic: the same events in the same order give the same threads. The state
after the last run is kept beside the database (``threads/state.pkl``); without
it (or when it does not match the log) everything is replayed from the first
event, which gives the same result, so an incremental run equals a full rebuild.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import pickle
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ingestion._log.store import EventStore, registered

ALGORITHM = "decayed-centroid-v1"
DAY = 86400.0
#: Base similarity to join an active thread; a large thread needs
#: BASE - SIZE_BONUS * ln(recent size), never below MIN_SIMILARITY.
BASE_THRESHOLD = 0.15
SIZE_BONUS = 0.02
MIN_SIMILARITY = 0.06
#: Half-life of centroid weights and of a thread's recent size.
HALF_LIFE_DAYS = 1.0
#: A thread without a new article for this long becomes dormant...
WINDOW_DAYS = 2.0
#: ...and can be revived, at this stricter similarity, for this long.
DORMANT_THRESHOLD = 0.25
DORMANT_DAYS = 3650.0
#: Dormant threads are indexed by their strongest terms only.
DORMANT_TERMS = 32

_TOKEN = re.compile(r"\w\w+", re.UNICODE)
# Function words that say nothing about which story an article belongs to.
_STOPWORDS = frozenset(
    word
    for word in Path(__file__).with_name("stopwords_en.txt").read_text(encoding="utf-8").splitlines()
    if word and not word.startswith("#")
)


def _stem(word: str) -> str:
    """Plurals and possessives only: "strikes" and "strike" are one term."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith("es") and word[-3] in "sxz":
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    text = text.lower().replace("'s ", " ").replace("\u2019s ", " ")
    return [_stem(w) for w in _TOKEN.findall(text) if w not in _STOPWORDS]


def copy_key(title: str, summary: str) -> str:
    """Same key = the same copy (a wire story republished verbatim)."""
    normalised = " ".join(_TOKEN.findall(f"{title} {summary}".lower()))
    return hashlib.sha1(normalised.encode()).hexdigest()


class Threader:
    """The online state: document frequencies and every thread's decayed centroid."""

    def __init__(self) -> None:
        self.documents = 0
        self.df: dict[str, int] = defaultdict(int)
        self.centroid: list[dict[str, float] | None] = []
        self.norm2: list[float] = []
        self.ref: list[float] = []  # time the centroid's weights are scaled to
        self.last: list[float] = []
        self.recent_size: list[float] = []
        self.state: list[int] = []  # 1 active, 2 dormant, 0 closed
        self.pruned_at: list[int] = []
        self.thread_ids: list[str] = []  # index -> article_id that opened it
        self.index_of: dict[str, int] = {}
        self.active_postings: dict[str, set[int]] = defaultdict(set)
        self.dormant_postings: dict[str, dict[int, float]] = defaultdict(dict)
        self.dormant_terms: dict[int, list[str]] = {}
        self.active_heap: list[tuple[float, int]] = []
        self.dormant_heap: list[tuple[float, int]] = []
        self.first_copy: dict[tuple[int, str], str] = {}  # (thread, copy key) -> first article
        self.last_event_seq = 0
        #: The latest time seen: the rule's clock never runs backwards, so an article
        #: that arrives late with an old date is handled as arriving now.
        self.clock = 0.0

    def vector(self, text: str) -> dict[str, float]:
        counts: dict[str, int] = {}
        for token in tokens(text):
            counts[token] = counts.get(token, 0) + 1
        self.documents += 1
        for token in counts:
            self.df[token] += 1
        log_n = math.log(1 + self.documents)
        weights = {
            t: (1.0 + math.log(c)) * (log_n - math.log(1 + self.df[t]) + 1.0) for t, c in counts.items()
        }
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        return {t: w / norm for t, w in weights.items()}

    def _expire(self, now: float) -> None:
        while self.active_heap and self.active_heap[0][0] < now - WINDOW_DAYS * DAY:
            last, th = heapq.heappop(self.active_heap)
            if self.state[th] == 1 and self.last[th] == last:
                self._to_dormant(th)
        while self.dormant_heap and self.dormant_heap[0][0] < now - DORMANT_DAYS * DAY:
            last, th = heapq.heappop(self.dormant_heap)
            if self.state[th] == 2 and self.last[th] == last:
                self._wake(th)
                self.state[th], self.centroid[th] = 0, None

    def _to_dormant(self, th: int) -> None:
        centroid = self.centroid[th]
        for term in centroid:
            self.active_postings[term].discard(th)
        strongest = sorted(centroid, key=lambda t: (-centroid[t], t))[:DORMANT_TERMS]
        norm = math.sqrt(self.norm2[th]) or 1.0
        for term in strongest:
            self.dormant_postings[term][th] = centroid[term] / norm
        self.dormant_terms[th] = strongest
        self.state[th] = 2
        heapq.heappush(self.dormant_heap, (self.last[th], th))

    def _wake(self, th: int) -> None:
        for term in self.dormant_terms.pop(th, ()):
            del self.dormant_postings[term][th]

    def best(self, vector: dict[str, float], now: float) -> tuple[int, float] | None:
        """The thread this vector clears by the widest margin, with its similarity."""
        self._expire(now)
        dots: dict[int, float] = {}
        for term, x in vector.items():
            for th in self.active_postings.get(term, ()):
                dots[th] = dots.get(th, 0.0) + x * self.centroid[th][term]
        partial: dict[int, float] = {}
        for term, x in vector.items():
            for th, w in self.dormant_postings.get(term, {}).items():
                partial[th] = partial.get(th, 0.0) + x * w
        for th, score in partial.items():  # exact cosine only for promising dormant threads
            if score >= 0.5 * DORMANT_THRESHOLD:
                centroid = self.centroid[th]
                dots[th] = sum(x * centroid.get(t, 0.0) for t, x in vector.items())
        chosen, margin, similarity = None, -1e9, 0.0
        for th in sorted(dots):
            cosine = dots[th] / math.sqrt(self.norm2[th])
            if cosine < MIN_SIMILARITY:
                continue
            if self.state[th] == 1:
                size = self.recent_size[th] * 0.5 ** ((now - self.last[th]) / (HALF_LIFE_DAYS * DAY))
                need = (
                    max(MIN_SIMILARITY, BASE_THRESHOLD - SIZE_BONUS * math.log(size))
                    if size > 1
                    else BASE_THRESHOLD
                )
            else:
                need = DORMANT_THRESHOLD
            if cosine - need >= 0 and cosine - need > margin:
                chosen, margin, similarity = th, cosine - need, cosine
        return None if chosen is None else (chosen, similarity)

    def open(self, article_id: str, now: float) -> int:
        th = len(self.centroid)
        self.centroid.append({})
        self.norm2.append(0.0)
        self.ref.append(now)
        self.last.append(now)
        self.recent_size.append(0.0)
        self.state.append(1)
        self.pruned_at.append(0)
        self.thread_ids.append(article_id)
        self.index_of[article_id] = th
        return th

    def join(self, th: int, vector: dict[str, float], now: float) -> None:
        if self.state[th] == 2:
            self._wake(th)
            for term in self.centroid[th]:
                self.active_postings[term].add(th)
            self.state[th] = 1
        centroid = self.centroid[th]
        exponent = (now - self.ref[th]) / (HALF_LIFE_DAYS * DAY)
        if exponent > 20.0:  # rescale so weights stay bounded
            scale = 2.0 ** -min(exponent, 60.0) / (math.sqrt(self.norm2[th]) or 1.0)
            for term in centroid:
                centroid[term] *= scale
            self.norm2[th] *= scale * scale
            self.ref[th] = now
            gain = 1.0
        else:
            gain = 2.0**exponent
        dot = 0.0
        for term, x in vector.items():
            weight = centroid.get(term)
            if weight is None:
                centroid[term] = gain * x
                self.active_postings[term].add(th)
            else:
                dot += x * weight
                centroid[term] = weight + gain * x
        self.norm2[th] += 2.0 * gain * dot + gain * gain
        self.recent_size[th] = (
            self.recent_size[th] * 0.5 ** ((now - self.last[th]) / (HALF_LIFE_DAYS * DAY)) + 1
        )
        self.last[th] = now
        heapq.heappush(self.active_heap, (now, th))
        if len(centroid) > 256 and len(centroid) > 2 * self.pruned_at[th]:  # drop decayed terms
            cut = 1e-4 * math.sqrt(self.norm2[th])
            for term in [t for t, w in centroid.items() if w < cut]:
                del centroid[term]
                self.active_postings[term].discard(th)
            self.norm2[th] = sum(w * w for w in centroid.values())
            self.pruned_at[th] = len(centroid)


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


def assign(
    threader: Threader,
    current: dict[str, str],
    event_seq: int,
    article_id: str,
    version: int,
    event_type: str,
    title: str,
    summary: str,
    now: float,
) -> Assignment:
    """One article version through the rule; ``current`` maps article -> its thread."""
    threader.last_event_seq = event_seq
    event_time = now
    now = threader.clock = max(threader.clock, now)
    if event_type == "article.withdrawn":
        thread = current.pop(article_id, article_id)
        return Assignment(event_seq, article_id, version, "leave", thread, None, None, event_time)
    vector = threader.vector(f"{title} \n {summary}")
    found = threader.best(vector, now)
    previous = current.get(article_id)
    if found is None and previous is not None and threader.state[threader.index_of[previous]] != 0:
        th, similarity, action = threader.index_of[previous], None, "stay"
    elif found is None:
        # A revision that fits nowhere opens a thread of its own under a new id.
        new_id = article_id if article_id not in threader.index_of else f"{article_id}#{version}"
        th, similarity = threader.open(new_id, now), None
        action = "open" if previous is None else "move"
    else:
        th, similarity = found
        thread_id = threader.thread_ids[th]
        action = "join" if previous is None else ("stay" if thread_id == previous else "move")
        similarity = round(similarity, 6)
    threader.join(th, vector, now)
    thread_id = threader.thread_ids[th]
    current[article_id] = thread_id
    key = (th, copy_key(title, summary))
    first = threader.first_copy.setdefault(key, article_id)
    return Assignment(
        event_seq,
        article_id,
        version,
        action,
        thread_id,
        similarity,
        first if first != article_id else None,
        event_time,
    )


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
    event_time TIMESTAMP NOT NULL, algorithm VARCHAR NOT NULL
);
"""

_EVENTS_SQL = """
SELECT event_seq, stream_id, stream_version, event_type,
       epoch(coalesce(least(occurred_at, recorded_at), recorded_at)) AS event_time,
       coalesce(title, ''), coalesce(summary, '')
FROM raw.article_events
WHERE event_seq > ?
ORDER BY event_seq
"""


def state_path(db_path: Path) -> Path:
    return Path(db_path).parent / "threads" / f"{Path(db_path).stem}.{ALGORITHM}.pkl"


def assign_threads(db_path: Path) -> ThreadReport:
    """Assign every article version recorded since the last run."""
    report = ThreadReport()
    started = time.monotonic()
    with EventStore(db_path) as store:
        con = store.con
        con.execute(SCHEMA_SQL)
        done = con.execute(
            "SELECT coalesce(max(event_seq), 0) FROM enrich.thread_assignments WHERE algorithm = ?",
            [ALGORITHM],
        ).fetchall()[0][0]
        threader, current = _load_state(db_path, done)
        if threader.last_event_seq != done:  # no usable state: replay the log up to `done`
            threader, current = Threader(), {}
            for row in con.execute(_EVENTS_SQL + "", [0]).fetchall():
                if row[0] > done:
                    break
                assign(threader, current, *row[:4], row[5], row[6], row[4])
                report.replayed += 1
        rows = [
            assign(threader, current, *row[:4], row[5], row[6], row[4])
            for row in con.execute(_EVENTS_SQL, [done]).fetchall()
        ]
        report.articles = len(rows)
        report.opened = sum(a.action == "open" for a in rows)
        if rows:
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
                    "algorithm": [ALGORITHM] * len(rows),
                }
            )
            with store.transaction(), registered(con, "_assignments", table):
                con.execute("INSERT INTO enrich.thread_assignments SELECT * FROM _assignments")
            _save_state(db_path, threader, current)
    report.seconds = time.monotonic() - started
    return report


def _load_state(db_path: Path, done: int) -> tuple[Threader, dict[str, str]]:
    path = state_path(db_path)
    if done and path.exists():
        try:
            threader, current = pickle.loads(path.read_bytes())
            if isinstance(threader, Threader) and threader.last_event_seq == done:
                return threader, current
        except Exception:  # unreadable or from another version: replay instead
            pass
    return Threader(), {}


def _save_state(db_path: Path, threader: Threader, current: dict[str, str]) -> None:
    path = state_path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps((threader, current), protocol=pickle.HIGHEST_PROTOCOL))
    tmp.replace(path)
