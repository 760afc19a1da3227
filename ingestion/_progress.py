"""A dependency-free progress line on stderr (redrawn on a terminal, sparse in logs)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


class Progress:
    def __init__(self, label: str, total: int, unit: str = "", *, stream=None) -> None:
        self.label, self.total, self.unit = label, max(total, 1), unit
        self.stream = stream or sys.stderr
        self.done = 0
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._tty = self.stream.isatty()

    def advance(self, amount: int = 1) -> None:
        self.done += amount
        now = time.monotonic()
        # Redraw at most 10x a second on a terminal, every 10 s into a log file.
        if now - self._last_draw >= (0.1 if self._tty else 10.0):
            self._last_draw = now
            self._draw(final=False)

    def finish(self) -> None:
        self.done = min(self.done, self.total)
        self._draw(final=True)

    def _draw(self, *, final: bool) -> None:
        fraction = min(self.done / self.total, 1.0)
        width = 30
        bar = "#" * int(fraction * width) + "-" * (width - int(fraction * width))
        elapsed = time.monotonic() - self.started
        text = f"{self.label} [{bar}] {fraction:6.1%}  {elapsed:5.1f} s"
        if self._tty:
            self.stream.write("\r" + text + ("\n" if final else ""))
        elif final or fraction < 1.0:
            self.stream.write(text + "\n")
        self.stream.flush()


#: Items (texts to read, article versions to thread) from which a step draws a progress
#: line: after a backfill such a step takes minutes; a scheduled run's few hundred items
#: take seconds.
SHOW_PROGRESS_FROM = 10_000


def progress_line(label: str, *, show_from: int = SHOW_PROGRESS_FROM) -> Callable[[int, int], None]:
    """An ``on_progress(done, total)`` callback for work whose size the caller learns only
    once it starts: a progress line is drawn when the total is ``show_from`` or more."""
    line: Progress | None = None
    finished = False

    def update(done: int, total: int) -> None:
        nonlocal line, finished
        if total < show_from or finished:
            return
        if line is None:
            line = Progress(label, total)
        line.advance(done - line.done)
        if done >= total:
            line.finish()
            finished = True  # the end may be reported twice: drawn once

    return update
