"""Pausing Python's cyclic garbage collector around bulk work."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of objects are made.

    Each full collection walks every live object: during a backfill about a tenth
    of the run time; reading back the story threads' saved state at a million
    articles (57,000 threads) took 2.1-2.6 s with it and 1.8 s without. The objects
    made there are freed by reference counting, and collections resume with the pause.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
