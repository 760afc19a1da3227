"""Worker processes forked from a fork server that has imported the module they run.

Not forked from the caller, whose fetch threads or database threads a plain fork
would copy holding whatever lock they hold; not spawned, which would import
everything again for each worker. As with any start method but a plain fork, each
worker imports the caller's main module again: a script that starts them (an ingest
parsing many bodies, a run threading many articles) keeps its work under
``if __name__ == "__main__":`` (the ``newsroom`` command does).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
from contextlib import suppress
from multiprocessing.context import BaseContext


def forkserver_context(preload: str, *, start: bool = False) -> BaseContext | None:
    """The start method of workers forked from a fork server that imports the module
    ``preload`` (unless an earlier caller in this process started the server: then
    each worker imports it); None where there are no fork servers (Windows).
    ``start``: start the server now, so that it imports while the caller goes on."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([preload])
    if start:
        with suppress(Exception):  # starting the workers says what is wrong, and callers fall back
            multiprocessing.forkserver.ensure_running()
    return context
