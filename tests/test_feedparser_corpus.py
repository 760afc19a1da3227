"""feedparser's own test corpus, every file through the real ingest path.

Each file must come out as articles or as a recorded failure, never a crash.
Files marked "http" are served with their headers from a local server.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from ingestion._demo.localserver import Route
from ingestion._log.record import ingest
from ingestion._sources.config import Source
from ingestion._sources.fetch import FetchLimits

from .conftest import shared_path

pytestmark = pytest.mark.shared

NOT_FEEDS = {"expectations.jsonl", "SOURCE.txt", "LICENSE.feedparser"}
COMPRESSION = {".gz": "gzip", ".z": "deflate"}


def _source_id(relative: str) -> str:
    return relative.lower().replace("/", ".").replace(" ", "_")[:64]


def test_every_corpus_file_is_ingested_or_recorded_as_failed(server, db_path: Path) -> None:
    corpus = shared_path("data", "feeds", "feedparser-tests")
    expectations = {
        row["path"]: row for row in map(json.loads, (corpus / "expectations.jsonl").read_text().splitlines())
    }
    sources = []
    for path in sorted(p for p in corpus.rglob("*") if p.is_file() and p.name not in NOT_FEEDS):
        relative = path.relative_to(corpus).as_posix()
        row = expectations.get(relative, {})
        source_id = _source_id(relative)
        if relative.startswith("http/") or path.suffix in COMPRESSION:
            headers = {k: v for k, v in row.get("headers", {}).items() if k not in ("Status", "Location")}
            if path.suffix in COMPRESSION:
                headers["Content-Encoding"] = COMPRESSION[path.suffix]
            status = int(row.get("headers", {}).get("Status", 200))
            if "Location" in row.get("headers", {}):
                # The corpus points at feedparser's own test server; point at ours.
                target = row["headers"]["Location"].split("/", 3)[-1].removeprefix("tests/")
                headers["Location"] = "/" + target
            server.routes[f"/{relative}"] = Route(path.read_bytes(), status=status, headers=headers)
            sources.append(Source(source_id, server.url(f"/{relative}")))
        else:
            sources.append(Source(source_id, str(path)))
    server.routes["/-/return-304.xml"] = Route(status=304)
    sources = [replace(s, politeness_delay_seconds=0.0) for s in sources]
    assert len(sources) > 2200

    report = ingest(sources, db_path, limits=FetchLimits(max_attempts=1, read_timeout=2, total_timeout=5))

    statuses = {s.source_id: s.status for s in report.sources}
    assert len(statuses) == len(sources)
    with duckdb.connect(str(db_path), read_only=True) as con:
        per_source = dict(
            con.execute(
                "SELECT source_id, count(*) FROM raw.events WHERE starts_with(stream_id, 'feed:') GROUP BY 1"
            ).fetchall()
        )
        failures = con.execute(
            "SELECT source_id, payload ->> '$.error_class', payload ->> '$.error_message' "
            "FROM raw.events WHERE event_type = 'feed.failed'"
        ).fetchall()
    assert per_source == dict.fromkeys(statuses, 1), "every file leaves exactly one feed event"
    for source_id, error_class, message in failures:
        assert error_class and message, f"{source_id}: failure without a reason"
        assert "Traceback" not in message
    # Well-formed RSS and Atom never fail; CDF (a different format) is "not a feed".
    failed_wellformed = {s for s, _, _ in failures if s.startswith("wellformed.")}
    assert all(s.startswith("wellformed.cdf.") for s in failed_wellformed), failed_wellformed
    # Redirects are followed, compression decoded (or passed through when it is not).
    assert not {s for s, _, _ in failures if s.startswith("compression.")} - {
        "compression.gzip-struct-error.gz"
    }
    assert statuses["http.http_status_301.xml"] == "ok"
    # A 304 to a request that named no version is the server's failure: there is no body to keep.
    assert statuses["http.http_redirect_to_304.xml"] == "failed"
