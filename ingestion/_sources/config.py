"""The sources file (feeds.yml): which feeds and wires to poll, and how."""

from __future__ import annotations

import os
import re
import reprlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from ingestion._sources.text import unfit_for_a_link
from ingestion.exceptions import ConfigError

KINDS = ("rss", "ninjs", "newsml")
_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
#: A BCP 47 language tag, loosely: "en", "de", "pt-BR", "zh-Hant-TW" (or with '_').
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8}){0,4}")

_TOP_LEVEL_KEYS = ("sources", "defaults")
_SOURCE_KEYS = (
    "id",
    "url",
    "kind",
    "language",
    "poll_interval_minutes",
    "politeness_delay_seconds",
    "name",
    "notes",
)
#: What ``defaults:`` may set for every source (an id or url shared by all makes no sense).
_DEFAULTABLE_KEYS = ("kind", "language", "poll_interval_minutes", "politeness_delay_seconds")
#: Allowed range of each number a source sets: (lowest, highest, whole numbers only).
#: 0 is allowed for both: a local server (the demo, tests) needs no pause and is always due.
_NUMBER_RANGES: dict[str, tuple[float, float, bool]] = {
    "poll_interval_minutes": (0, 7 * 24 * 60, True),
    "politeness_delay_seconds": (0, 60, False),
}
MAX_URL_LENGTH = 2048
MAX_TEXT_LENGTH = 2000
#: Largest sources file read: anything bigger is a mistake, not a list of feeds.
MAX_CONFIG_BYTES = 10 * 2**20
#: Most values the loaded document may stand for, each use of a YAML alias counted.
MAX_CONFIG_NODES = 1_000_000
# libyaml's parser is faster and refuses absurd nesting; the pure-Python one is the fallback.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SAFE_LOADER):  # type: ignore[misc, valid-type]
    """YAML's safe loader, refusing a key written twice in one mapping (YAML keeps the
    last, which would drop a list of sources or a source's url without a word)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {reprlib.repr(key_node.value)} appears twice", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)


DEFAULT_DB = Path("data/newsroom.duckdb")


def is_source_id(text: str) -> bool:
    """Whether ``text`` is a source id as feeds.yml allows one."""
    return bool(_ID.fullmatch(text))


def is_language_tag(text: str) -> bool:
    """Whether ``text`` is a language tag as feeds.yml allows one ("en", "pt-BR")."""
    return bool(_LANGUAGE.fullmatch(text))


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
        """The server, whatever port or user the URL names: politeness is per server."""
        return urlsplit(self.url).hostname or "(local files)"


def _check_url(source_id: str, url: str, base_dir: Path) -> str:
    where = f"source {source_id!r}: url {reprlib.repr(url)}"
    if len(url) > MAX_URL_LENGTH:
        raise ConfigError(f"{where} is longer than {MAX_URL_LENGTH:,} characters")
    if unfit_for_a_link(url):  # C0 and C1 controls, and bidirectional ones: shown as another URL
        raise ConfigError(f"{where} contains control characters")
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme in ("http", "https"):
            if not parts.hostname:
                raise ConfigError(f"{where} has no host")
            if parts.port == 0:  # reading the port also raises ValueError for one out of range
                raise ConfigError(f"{where} has port 0")
            if parts.username is not None or parts.password is not None:
                raise ConfigError(
                    f"{where} names a user or password: every fetch records its URL in the "
                    "event log, which keeps it for good"
                )
            return url
    except ValueError as exc:
        raise ConfigError(f"{where} is not a valid URL: {exc}") from exc
    if scheme == "" or (len(scheme) == 1 and url[1:3] in (":\\", ":/")):  # C:\ paths
        try:
            path = Path(url).expanduser()
            return str(path if path.is_absolute() else (base_dir / path).resolve())
        except (RuntimeError, OSError) as exc:  # an unknown ~user, a loop of links
            raise ConfigError(f"{where} is not a usable file path: {exc}") from exc
    raise ConfigError(
        f"source {source_id!r}: url {url!r} has scheme {scheme!r}; only http(s) URLs and "
        "local file paths are accepted (write a file path without 'file:')"
    )


def _number(where: str, key: str, value: object) -> float:
    low, high, whole = _NUMBER_RANGES[key]
    problem = ConfigError(
        f"{where}: {key} must be {'a whole number' if whole else 'a number'} from {low:g} to {high:g}, "
        f"not {reprlib.repr(value)}"
    )
    if isinstance(value, str):  # YAML 1.1 reads a number such as 1e3 (no dot) as text
        try:
            value = float(value.strip())
        except ValueError:
            raise problem from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise problem
    # Compared before any conversion: an integer of 400 digits does not fit a float (NaN fails too).
    if not low <= value <= high or (whole and not float(value).is_integer()):
        raise problem
    return value


def _text(where: str, key: str, value: object, max_length: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise ConfigError(f"{where}: {key} must be text of at most {max_length:,} characters")
    return value


def _language(where: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _LANGUAGE.fullmatch(value):
        raise ConfigError(
            f"{where}: language {reprlib.repr(value)} must be a language tag such as 'en' or 'pt-BR'"
        )
    return value


def _check_settings(where: str, settings: dict[str, Any]) -> None:
    """Check the values a source (or the defaults) sets, beyond id and url."""
    if "kind" in settings:
        kind = settings["kind"]
        if not isinstance(kind, str) or kind.lower() not in KINDS:
            raise ConfigError(f"{where}: kind {reprlib.repr(kind)} is not one of {', '.join(KINDS)}")
    _language(where, settings.get("language"))
    for key in _NUMBER_RANGES:
        if key in settings:
            _number(where, key, settings[key])
    for key in ("name", "notes"):
        _text(where, key, settings.get(key), MAX_TEXT_LENGTH)


def _unknown_keys(mapping: dict[Any, Any], allowed: tuple[str, ...]) -> list[str]:
    return sorted(str(key) for key in mapping if key not in allowed)


def _check_size(document: yaml.Node) -> None:
    """Refuse a document that stands for more than :data:`MAX_CONFIG_NODES` values,
    before any is made.

    YAML aliases and merge keys let a few lines stand for billions of values (or for a
    value that contains itself); counting each use of an alias, with a budget, stops both.
    """
    pending = [document]
    for _ in range(MAX_CONFIG_NODES):
        if not pending:
            return
        node = pending.pop()
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                pending += (key, value)
        elif isinstance(node, yaml.SequenceNode):
            pending.extend(node.value)
    if pending:
        raise ConfigError(
            f"the sources file stands for more than {MAX_CONFIG_NODES:,} values "
            "(YAML aliases used too often?)"
        )


def _load_yaml(text: str) -> object:
    loader = _Loader(text)
    try:
        document = loader.get_single_node()
        if document is None:
            return None
        _check_size(document)
        return loader.construct_document(document)
    finally:
        loader.dispose()


def parse_sources(data: object, base_dir: Path) -> list[Source]:
    if isinstance(data, dict):
        if unknown := _unknown_keys(data, _TOP_LEVEL_KEYS):
            raise ConfigError(
                f"the sources file has unknown top-level keys {unknown}; "
                f"allowed: {', '.join(_TOP_LEVEL_KEYS)}"
            )
        entries = data.get("sources")
        defaults = {} if data.get("defaults") is None else data["defaults"]
    else:
        entries, defaults = data, {}
    if not isinstance(entries, list) or not entries:
        raise ConfigError("the sources file needs a non-empty 'sources:' list")
    if not isinstance(defaults, dict):
        raise ConfigError("'defaults:' must be a mapping of settings shared by every source")
    if unknown := _unknown_keys(defaults, _DEFAULTABLE_KEYS):
        raise ConfigError(
            f"defaults: keys {unknown} cannot be set here; allowed: {', '.join(_DEFAULTABLE_KEYS)}"
        )
    _check_settings("defaults", defaults)
    sources: list[Source] = []
    seen: set[str] = set()
    for position, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise ConfigError(f"source #{position} must be a mapping with at least id and url")
        source_id = entry.get("id")
        if not isinstance(source_id, str) or not _ID.fullmatch(source_id.strip()):
            raise ConfigError(
                f"source #{position}: id {reprlib.repr(source_id)} must be text of 1-64 lower-case "
                "letters, digits, '_', '.', '-'"
            )
        source_id = source_id.strip()
        if source_id in seen:
            raise ConfigError(f"source id {source_id!r} appears twice")
        seen.add(source_id)
        where = f"source {source_id!r}"
        if unknown := _unknown_keys(entry, _SOURCE_KEYS):
            raise ConfigError(f"{where}: unknown keys {unknown}")
        url = entry.get("url")
        if not isinstance(url, str) or not url.strip():
            raise ConfigError(f"{where}: 'url' is required and must be text")
        _check_settings(where, entry)
        settings = {**defaults, **entry}
        sources.append(
            Source(
                id=source_id,
                url=_check_url(source_id, url.strip(), base_dir),
                kind=settings.get("kind", "rss").lower(),
                language=settings.get("language"),
                poll_interval_minutes=int(
                    _number(where, "poll_interval_minutes", settings.get("poll_interval_minutes", 15))
                ),
                politeness_delay_seconds=float(
                    _number(where, "politeness_delay_seconds", settings.get("politeness_delay_seconds", 1.0))
                ),
            )
        )
    return sources


def load_sources(path: str | os.PathLike[str]) -> list[Source]:
    """Read and check a sources file; relative file paths are relative to it."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            # Read one byte past the cap rather than trusting a size (the file may be a pipe).
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError as exc:
        raise ConfigError(f"sources file {path} not found") from exc
    except OSError as exc:
        raise ConfigError(f"sources file {path} cannot be read: {exc.strerror or exc}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"sources file {path} is larger than {MAX_CONFIG_BYTES // 2**20} MB")
    try:
        data = _load_yaml(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"sources file {path} is not UTF-8 text: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"sources file {path} is not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise ConfigError(f"sources file {path} nests too deeply") from exc
    except (ValueError, OverflowError) as exc:  # a number of thousands of digits, a date out of range
        raise ConfigError(f"sources file {path} holds a value that cannot be read: {exc}") from exc
    return parse_sources(data, path.parent.resolve())
