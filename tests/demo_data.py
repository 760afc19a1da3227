"""Building a working database from the bundled demo feeds, for tests that need marts."""

from __future__ import annotations

from pathlib import Path

from ingestion._demo import demo_rounds, serve_demo
from ingestion._fetch import FetchLimits
from ingestion._ingest import ingest
from ingestion._transform import transform


def build_demo_db(db_path: Path, rounds: int = 3) -> Path:
    with serve_demo() as (sources, switch):
        for round_dir in demo_rounds()[:rounds]:
            switch(round_dir)
            ingest(sources, db_path, limits=FetchLimits(max_attempts=1))
    report = transform(db_path)
    assert report.success, report.failures
    return db_path
