"""Parsing fetched bodies in worker processes while the fetches go on.

Parsing is pure Python and holds the GIL, so the fetch threads cannot parse in
parallel. Once an ingest run has fetched enough bytes to pay for starting worker
processes (:data:`PARALLEL_PARSE_MIN_BYTES`), it hands every body to a pool of
them (one per CPU the process may use), and ``record`` takes the results instead
of parsing. A body whose parse fails, or that a worker could not read back, is
simply parsed again by ``record``, which records the error with its source; a
pool that cannot start or breaks leaves every body to ``record`` the same way.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import suppress
from datetime import datetime

from ingestion._forkserver import forkserver_context
from ingestion._log.blobs import BlobStore
from ingestion._model import FetchOutcome, ParseResult
from ingestion._sources.dates import utcnow
from ingestion._sources.parse import parse_body

#: Bytes of fetched bodies (about 3,000 RSS items) from which starting worker
#: processes (a second or so of imports, beside the fetching) pays for itself.
PARALLEL_PARSE_MIN_BYTES = 2_000_000


def parse_workers() -> int:
    """One worker per CPU this process may use; none (parse in ``record``) where
    worker processes cannot be forked from a fork server (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return 0
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class ParsePool:
    """Bodies fetched by one run, parsed in worker processes once there are enough.

    ``fetched`` is called from the fetch threads; ``results`` once fetching is done.
    ``skip`` maps a source to the body it delivered last time: that body is not
    parsed again (``record`` finds nothing new in it). Used as a context manager,
    so that the workers end with the block whatever happens in it.
    """

    def __init__(self, blobs: BlobStore, skip: dict[str, str | None], workers: int) -> None:
        self._blobs_root = str(blobs.root)
        self._skip = skip
        self._workers = workers
        self._waiting: list[FetchOutcome] = []
        self._waiting_bytes = 0
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[str, Future[ParseResult | None]] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def fetched(self, outcome: FetchOutcome) -> None:
        if self._workers < 2 or not outcome.ok or outcome.body_sha256 is None:
            return
        if outcome.body_sha256 == self._skip.get(outcome.source_id):
            return
        with self._lock:  # fetch threads call in at once
            if self._pool is not None:
                self._submit(outcome)
                return
            self._waiting.append(outcome)
            self._waiting_bytes += outcome.bytes
            if self._waiting_bytes < PARALLEL_PARSE_MIN_BYTES:
                return
            # forked from a server that imported the parsers (see ingestion._forkserver)
            self._pool = ProcessPoolExecutor(self._workers, mp_context=forkserver_context(__name__))
            waiting, self._waiting = self._waiting, []
            for earlier in waiting:
                self._submit(earlier)

    def _submit(self, outcome: FetchOutcome) -> None:
        assert self._pool is not None
        # Whatever keeps a worker from starting or working (a daemonic caller, no
        # memory, a broken pool) leaves the body to record.
        with suppress(Exception):
            self._futures[outcome.source_id] = self._pool.submit(
                parse_stored_body,
                self._blobs_root,
                outcome.body_sha256,
                outcome.kind,
                source_id=outcome.source_id,
                url=outcome.url,
                now=utcnow(),  # as record would parse it: dates are judged against the time of parsing
                content_type=outcome.content_type,
                language=outcome.language,
            )

    def results(self) -> dict[str, ParseResult]:
        """The parse results by source; a source missing from it is parsed by ``record``."""
        if self._pool is None:
            return {}
        parsed = {}
        for source_id, future in self._futures.items():
            try:
                result = future.result()
            except Exception:  # a worker that died, or a result that would not unpickle
                continue
            if result is not None:
                parsed[source_id] = result
        return parsed


def parse_stored_body(
    blobs_root: str,
    body_sha256: str,
    kind: str,
    *,
    source_id: str,
    url: str,
    now: datetime,
    content_type: str | None,
    language: str | None,
) -> ParseResult | None:
    """A worker's task: the parse of one stored body, or None when it cannot be
    read back or does not parse (``record`` then parses it and records why)."""
    try:
        body = BlobStore(blobs_root).get(body_sha256)
        return parse_body(
            kind, body, source_id=source_id, url=url, now=now, content_type=content_type, language=language
        )
    except Exception:  # record parses it again, and records why it fails
        return None
