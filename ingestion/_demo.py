"""The demo: bundled fictional feeds served from 127.0.0.1, ingested round by round."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from importlib import resources
from pathlib import Path

import yaml

from ._config import Source, parse_sources
from ._localserver import LocalServer, Route

DEMO_DIR = Path(str(resources.files("ingestion") / "demo"))


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
