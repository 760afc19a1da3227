"""Every error newsroom raises on purpose derives from :class:`NewsroomError`.

Errors about one source carry its ``source_id`` and ``url`` and chain the
underlying cause (``raise ... from exc``), so a message always says which feed
and why.
"""

from __future__ import annotations


class NewsroomError(Exception):
    """Root of all newsroom errors."""


class ConfigError(NewsroomError):
    """The sources file (feeds.yml) or an option is invalid."""


class SourceError(NewsroomError):
    """Something went wrong with one source; carries its id and URL."""

    def __init__(self, message: str, *, source_id: str = "", url: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.source_id = source_id
        self.url = url

    def __str__(self) -> str:
        where = " ".join(part for part in (self.source_id, f"<{self.url}>" if self.url else "") if part)
        return f"{where}: {self.message}" if where else self.message


class ParseError(SourceError):
    """The body was fetched but is not a feed or wire item we can read."""


class BlobError(SourceError):
    """A raw body kept in the blob store cannot be read back (damaged or missing)."""


class EntityExtractionError(NewsroomError):
    """A named-entity worker process died or overran its time limit; nothing of the
    run was recorded."""


class StoreError(NewsroomError):
    """The event store could not be opened or written."""


class StoreLockedError(StoreError):
    """Another process holds the DuckDB file for writing."""
