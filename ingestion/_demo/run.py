"""The demo: bundled fictional feeds served from 127.0.0.1, ingested round by round
by the real DAGs (``airflow dags test``)."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from importlib import resources
from pathlib import Path

import yaml

from ingestion._demo.airflow import airflow_environment, prepare_airflow, run_dag_test
from ingestion._demo.localserver import LocalServer, Route
from ingestion._sources.config import Source, parse_sources
from ingestion.exceptions import StepFailed

DEMO_DIR = Path(str(resources.files("ingestion._demo") / "feeds"))


def demo_rounds() -> list[Path]:
    return sorted(path for path in DEMO_DIR.glob("round*") if path.is_dir())


def _routes(round_dir: Path) -> dict[str, Route]:
    routes = {}
    for path in sorted(round_dir.iterdir()):
        content_type = {".xml": "application/xml", ".json": "application/json"}.get(
            path.suffix, mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        routes[f"/{path.name}"] = Route(path.read_bytes(), headers={"Content-Type": content_type}, etag=True)
    return routes


@contextmanager
def serve_demo() -> Iterator[tuple[list[Source], Callable[[Path], None]]]:
    """Start the demo server; yields the demo sources and a function to switch rounds."""
    with LocalServer() as server:
        text = (DEMO_DIR / "feeds.yml").read_text(encoding="utf-8")
        data = yaml.safe_load(text.replace("{base}", f"http://127.0.0.1:{server.port}"))
        # Every demo source lives on this one local server: no need to be polite to it.
        sources = [replace(source, politeness_delay_seconds=0.0) for source in parse_sources(data, DEMO_DIR)]

        def switch(round_dir: Path) -> None:
            server.routes = dict(_routes(round_dir))

        yield sources, switch


def run_demo(db_path: Path, *, echo: Callable[[str], None]) -> None:
    """Run the ingest and transform DAGs on each round of the demo feeds, into a
    local Airflow under the data directory; ``echo`` gets their output."""
    data_dir = db_path.parent
    config_path = data_dir / "demo" / "feeds.yml"
    env = airflow_environment(data_dir, db_path, config_path)
    home, dags = env["AIRFLOW_HOME"], env["AIRFLOW__CORE__DAGS_FOLDER"]
    echo(f"== Airflow home {home} (SQLite metadata), DAGs from {dags}")
    prepare_airflow(env)
    with serve_demo() as (sources, switch):
        config_path.parent.mkdir(parents=True, exist_ok=True)
        # The rounds follow each other within seconds: poll every source every time.
        config_path.write_text(
            yaml.safe_dump(
                {
                    "sources": [
                        {
                            "id": s.id,
                            "url": s.url,
                            "kind": s.kind,
                            "language": s.language,
                            "poll_interval_minutes": 0,
                            "politeness_delay_seconds": 0,
                        }
                        for s in sources
                    ]
                }
            )
        )
        for round_dir in demo_rounds():
            switch(round_dir)
            for dag_id in ("newsroom_ingest", "newsroom_transform"):
                echo(f"\n== {round_dir.name}: airflow dags test {dag_id}")
                result = run_dag_test(dag_id, env)
                for line in result.stdout.splitlines():
                    if line.strip() and not line[:4].isdigit() and "graphviz" not in line:
                        echo(line)
                if result.returncode != 0:
                    raise StepFailed(
                        f"{dag_id} failed in {round_dir.name} (exit {result.returncode}):\n"
                        f"{result.stderr[-3000:]}"
                    )


#: What the demo searches for in the published snapshot.
DEMO_SEARCH = "Zelensky"

#: Questions a journalist asks, answered from the published snapshot by the demo.
DEMO_QUERIES = (
    (
        "How did headlines change, and when?",
        "SELECT source_id, version, valid_from, left(previous_title, 40) AS was, "
        "left(title, 40) AS became FROM article_versions WHERE title_changed ORDER BY valid_from",
    ),
    (
        "Who was named most (people)?",
        "SELECT canonical_name, mention_count, article_count FROM entities "
        "WHERE entity_type = 'person' ORDER BY mention_count DESC, canonical_name LIMIT 10",
    ),
    (
        "Which are the biggest stories, and who broke each first?",
        "SELECT left(label, 50) AS story, article_count, first_source_id, first_published_at, languages "
        "FROM story_threads ORDER BY article_count DESC, first_published_at LIMIT 5",
    ),
    (
        "Show me every article that was withdrawn.",
        "SELECT source_id, title, published_at, withdrawn_at FROM articles WHERE status = 'withdrawn'",
    ),
    (
        "How healthy is each source?",
        "SELECT source_id, fetch_count, failure_rate, article_count, revision_count "
        "FROM sources ORDER BY source_id",
    ),
)
