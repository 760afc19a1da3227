"""The sources file (feeds.yml): which feeds and wires to poll, and how."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from .exceptions import ConfigError

KINDS = ("rss", "ninjs", "newsml")
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")

DEFAULT_DB = Path("data/newsroom.duckdb")


def resolve_db_path(db: str | os.PathLike[str] | None = None) -> Path:
    """--db wins, then $NEWSROOM_DB, then data/newsroom.duckdb."""
    return Path(db or os.environ.get("NEWSROOM_DB") or DEFAULT_DB)


@dataclass(frozen=True, slots=True)
class Source:
    id: str
    url: str
    kind: str = "rss"
    language: str | None = None
    #: Minimum time between polls when the scheduler polls only due sources.
    poll_interval_minutes: int = 15
    #: Pause between two requests to the same host.
    politeness_delay_seconds: float = 1.0

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc.lower() or "(local files)"


def _check_url(source_id: str, url: str, base_dir: Path) -> str:
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return url
    if scheme == "" or (len(scheme) == 1 and url[1:3] in (":\\", ":/")):  # C:\ paths
        path = Path(url).expanduser()
        return str(path if path.is_absolute() else (base_dir / path).resolve())
    raise ConfigError(
        f"source {source_id!r}: url {url!r} has scheme {scheme!r}; only http(s) URLs and "
        "local file paths are accepted (write a file path without 'file:')"
    )


def parse_sources(data: object, base_dir: Path) -> list[Source]:
    entries = data.get("sources") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise ConfigError("the sources file needs a non-empty 'sources:' list")
    defaults = data.get("defaults", {}) if isinstance(data, dict) else {}
    sources: list[Source] = []
    seen: set[str] = set()
    for position, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise ConfigError(f"source #{position} must be a mapping with at least id and url")
        entry = {**defaults, **entry}
        source_id = str(entry.get("id", "")).strip()
        if not _ID.match(source_id):
            raise ConfigError(
                f"source #{position}: id {source_id!r} must be 1-64 lower-case letters, digits, '_', '.', '-'"
            )
        if source_id in seen:
            raise ConfigError(f"source id {source_id!r} appears twice")
        seen.add(source_id)
        url = entry.get("url")
        if not isinstance(url, str) or not url.strip():
            raise ConfigError(f"source {source_id!r}: 'url' is required")
        kind = str(entry.get("kind", "rss")).lower()
        if kind not in KINDS:
            raise ConfigError(f"source {source_id!r}: kind {kind!r} is not one of {', '.join(KINDS)}")
        unknown = set(entry) - {
            "id",
            "url",
            "kind",
            "language",
            "poll_interval_minutes",
            "politeness_delay_seconds",
            "name",
            "notes",
        }
        if unknown:
            raise ConfigError(f"source {source_id!r}: unknown keys {sorted(unknown)}")
        try:
            sources.append(
                Source(
                    id=source_id,
                    url=_check_url(source_id, url.strip(), base_dir),
                    kind=kind,
                    language=entry.get("language"),
                    poll_interval_minutes=int(entry.get("poll_interval_minutes", 15)),
                    politeness_delay_seconds=float(entry.get("politeness_delay_seconds", 1.0)),
                )
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"source {source_id!r}: {exc}") from exc
    return sources


def load_sources(path: str | os.PathLike[str]) -> list[Source]:
    """Read and check a sources file; relative file paths are relative to it."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"sources file {path} not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"sources file {path} is not valid YAML: {exc}") from exc
    return parse_sources(data, path.parent.resolve())
