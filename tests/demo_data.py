"""Building a working database from the bundled demo feeds, for tests that need marts."""

from __future__ import annotations

import shutil
from pathlib import Path

from ingestion._demo.run import demo_rounds, serve_demo
from ingestion._derive.threads import state_path
from ingestion._derive.transform import transform
from ingestion._log.record import ingest
from ingestion._publish.snapshot import publish, published_dir
from ingestion._sources.fetch import FetchLimits

#: Beside the demo's data directory: what was published before its last round, kept
#: out of the data directory so that copies of it start with nothing published.
PUBLISHED_BEFORE_LAST_ROUND = "published-before-last-round"


def build_demo_db_round_by_round(db_path: Path) -> Path:
    """Every demo round ingested, each followed by a build, as the scheduler runs them.
    Between the second and third builds the threading state is lost, as a crash would.
    The build before the last round is published too, and that snapshot set aside."""
    rounds = demo_rounds()
    with serve_demo() as (sources, switch):
        for number, round_dir in enumerate(rounds):
            if number == len(rounds) - 1:
                publish(db_path)
                shutil.move(published_dir(db_path), db_path.parent.parent / PUBLISHED_BEFORE_LAST_ROUND)
            switch(round_dir)
            ingest(sources, db_path, limits=FetchLimits(max_attempts=1))
            if number == 2:
                state_path(db_path).unlink()  # only a cache: the next build replays the log
            report = transform(db_path)
            assert report.success, report.failures
    return db_path
