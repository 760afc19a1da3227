"""newsroom: feeds and news wires into an immutable DuckDB event log."""

import os

__version__ = "0.1.0"

# Arrow's default allocator (mimalloc) made building the log's 20,000-row appends take
# 0.15-0.8 s, erratically, against a steady 0.02 s with the C library's: it hands freed
# pages back to the system and faults them in again on the next batch. Set before any of
# our modules imports pyarrow, and inherited by our worker processes; an operator's own
# choice of ARROW_DEFAULT_MEMORY_POOL stands.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
