"""Building a working database from the bundled demo feeds, for tests that need marts."""

from __future__ import annotations

from pathlib import Path

from ingestion._demo.run import demo_rounds, serve_demo
from ingestion._derive.threads import state_path
from ingestion._derive.transform import transform
from ingestion._log.record import ingest
from ingestion._sources.fetch import FetchLimits


def build_demo_db_round_by_round(db_path: Path) -> Path:
    """Every demo round ingested, each followed by a build, as the scheduler runs them.
    Between the second and third builds the threading state is lost, as a crash would."""
    with serve_demo() as (sources, switch):
        for number, round_dir in enumerate(demo_rounds()):
            switch(round_dir)
            ingest(sources, db_path, limits=FetchLimits(max_attempts=1))
            if number == 2:
                state_path(db_path).unlink()  # only a cache: the next build replays the log
            report = transform(db_path)
            assert report.success, report.failures
    return db_path
