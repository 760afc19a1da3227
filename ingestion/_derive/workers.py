"""Worker processes of our own for entity extraction (not spaCy's ``n_process``,
which hangs when a worker fails): spawned, a model per language each, a time limit
per batch. A worker that dies or overruns its limit stops the run with an
``EntityExtractionError``."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from ingestion._derive.ner import Reading, load_model, read_texts
from ingestion.exceptions import EntityExtractionError

#: A worker's time limit for one batch: the grace (which covers loading a model)
#: plus the batch's characters at a rate far below the slowest text measured
#: (~3,500 characters/s for token-dense junk on one busy core, prose ~30,000).
WORKER_GRACE_SECONDS = 60.0
WORKER_MIN_CHARS_PER_SECOND = 1_000
#: The variable numpy's BLAS (OpenBLAS) reads its thread count from.
_BLAS_THREADS = "OPENBLAS_NUM_THREADS"

#: Texts of one language, read by that language's model.
Batch = tuple[str, list[str]]


def _worker_main(conn: Connection) -> None:
    """A worker process: reads batches until sent None, loading each language's model once."""
    try:
        while (batch := conn.recv()) is not None:
            language, texts = batch
            try:
                nlp = load_model(language)
            except EntityExtractionError as exc:  # reported to the parent, which raises
                conn.send(("error", str(exc)))
                return
            conn.send(("ok", read_texts(nlp, texts)))
    except (EOFError, OSError):  # the parent went away: nothing left to do
        return


@dataclass(slots=True)
class _Worker:
    process: BaseProcess
    conn: Connection
    batch: int = -1  # the batch it is reading, -1 when idle
    texts: int = 0
    chars: int = 0
    time_limit: float = 0.0
    deadline: float = 0.0


class WorkerPool:
    """Worker processes (spawned, a model each) reading batches of texts in parallel.

    Results come back in batch order, identical to reading in this process. A
    worker that dies, fails to start or overruns its time limit raises
    ``EntityExtractionError`` at once, and every worker is stopped.
    """

    def __init__(self, size: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.workers: list[_Worker] = []
        try:
            with _one_blas_thread_for_children():
                self._start(context, size)
        except BaseException:
            self.close(graceful=False)
            raise

    def _start(self, context, size: int) -> None:
        for _ in range(size):
            parent, child = context.Pipe()
            process = context.Process(
                target=_worker_main, args=(child,), daemon=True, name="newsroom-entities"
            )
            process.start()
            child.close()
            self.workers.append(_Worker(process, parent))

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.close(graceful=exc_type is None)

    def close(self, *, graceful: bool = True) -> None:
        """Stop every worker: politely after a clean run, at once after an error."""
        for worker in self.workers:
            if graceful and worker.process.is_alive():
                with suppress(OSError):  # it has just gone: the join below ends quickly
                    worker.conn.send(None)
        for worker in self.workers:
            worker.process.join(5 if graceful else 0)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
            worker.conn.close()

    def read(self, batches: list[Batch]) -> Iterator[list[Reading]]:
        done: dict[int, list[Reading]] = {}
        sent = yielded = 0
        while yielded < len(batches):
            for worker in self.workers:
                if worker.batch < 0 and sent < len(batches):
                    self._send(worker, sent, batches[sent])
                    sent += 1
            busy = [w for w in self.workers if w.batch >= 0]
            deadline = min(w.deadline for w in busy)
            ready = wait(
                [w.conn for w in busy] + [w.process.sentinel for w in busy],
                timeout=max(0.0, deadline - time.monotonic()),
            )
            for worker in busy:
                if worker.conn in ready:
                    done[worker.batch] = self._receive(worker)
                    worker.batch = -1
                elif worker.process.sentinel in ready:
                    raise self._died(worker)
                elif time.monotonic() >= worker.deadline:
                    raise EntityExtractionError(
                        f"entity extraction worker (pid {worker.process.pid}) did not finish "
                        f"{worker.texts} texts ({worker.chars:,} characters) within "
                        f"{worker.time_limit:.0f} s; it was stopped"
                    )
            while yielded in done:
                yield done.pop(yielded)
                yielded += 1

    def _send(self, worker: _Worker, index: int, batch: Batch) -> None:
        chars = sum(map(len, batch[1]))
        worker.batch, worker.texts, worker.chars = index, len(batch[1]), chars
        worker.time_limit = batch_time_limit(chars)
        worker.deadline = time.monotonic() + worker.time_limit
        # From a thread: a batch larger than the pipe's buffer blocks until the worker reads
        # it, and a stalled worker never does, yet its time limit must still be able to fire.
        threading.Thread(target=_send_quietly, args=(worker.conn, batch), daemon=True).start()

    def _receive(self, worker: _Worker) -> list[Reading]:
        try:
            kind, value = worker.conn.recv()
        except (EOFError, OSError):
            raise self._died(worker) from None
        if kind == "error":
            raise EntityExtractionError(f"entity extraction worker (pid {worker.process.pid}): {value}")
        return value

    def _died(self, worker: _Worker) -> EntityExtractionError:
        worker.process.join(1)
        return EntityExtractionError(
            f"entity extraction worker (pid {worker.process.pid}) stopped (exit code "
            f"{worker.process.exitcode}) while reading {worker.texts} texts (a worker killed for lack of "
            "memory shows in the system log)"
        )


@contextmanager
def _one_blas_thread_for_children() -> Iterator[None]:
    """Workers started inside multiply matrices on one thread each: the pool is the
    parallelism, and BLAS threads of their own would only compete with the other
    workers for the cores (~20% more CPU time for the same words, measured). BLAS
    reads the setting once, when the child imports numpy; this process keeps its own."""
    before = os.environ.get(_BLAS_THREADS)
    os.environ[_BLAS_THREADS] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ[_BLAS_THREADS]
        else:
            os.environ[_BLAS_THREADS] = before


def _send_quietly(conn: Connection, batch: Batch) -> None:
    with suppress(OSError):  # the worker is gone: its process sentinel reports that
        conn.send(batch)


def batch_time_limit(chars: int) -> float:
    """Seconds a worker may take for a batch of this many characters."""
    return WORKER_GRACE_SECONDS + chars / WORKER_MIN_CHARS_PER_SECOND
