"""The event log: the only writer of ``raw.events``.

``record`` decides (``events``) and appends (``store``) what a run's parsed
items mean; ``backfill`` does the same for archives; ``verify`` re-checks the
hash chain; ``blobs`` keeps every raw body; ``feed_states`` is the copy of the
per-source state that planning reads without the writer lock.
"""
