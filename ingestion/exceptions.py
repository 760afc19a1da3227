"""Every error newsroom raises on purpose derives from :class:`NewsroomError`.

Errors about one source carry its ``source_id`` and ``url`` and chain the
underlying cause (``raise ... from exc``), so a message always says which feed
and why.
"""

from __future__ import annotations

from typing import Any


class NewsroomError(Exception):
    """Root of all newsroom errors."""

    #: The command line's exit status for this error.
    exit_status = 2


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
    """Entity extraction cannot go on: a worker process died or overran its time limit, a
    model cannot be loaded, or a partition's file is missing or another run's. Nothing
    of the part being read is recorded."""


class ExtensionError(NewsroomError):
    """A DuckDB extension is not installed as a package for this DuckDB version."""


class ArchiveError(NewsroomError):
    """An archive cannot be loaded: missing, or changed while it was read."""


class QueryError(NewsroomError):
    """A read-only query was refused or hit a limit."""


class QueryFailed(QueryError):
    """The database could not run a query as written (a mistake in it)."""

    exit_status = 1


class PublishError(NewsroomError):
    """A snapshot cannot be published."""


class ValidationFailed(PublishError):
    """Validation failed, so nothing was published; ``report`` says what failed."""

    def __init__(self, report: Any) -> None:
        names = ", ".join(f"{o.suite}: {o.expectation}" for o in report.failures())
        super().__init__(f"validation failed ({names}); the previous snapshot stays published")
        self.report = report


class TransformError(NewsroomError):
    """dbt could not run, or models or tests failed."""


class ValidationError(NewsroomError):
    """Validation could not run: an unknown stage, data not built yet, or a gx/
    folder that no longer matches the declared suites."""


class StepFailed(NewsroomError):
    """A pipeline step run by the scheduler (dbt build, validation, verification,
    freshness) failed; the message says which and why."""


class AirflowCommandError(NewsroomError):
    """An `airflow` command of the local environment failed or did not finish."""


class StoreError(NewsroomError):
    """The event store could not be opened or written."""


class StoreLockedError(StoreError):
    """Another process holds the DuckDB file for writing."""


# Signals between parsing modules; they never reach a caller of the package.


class ItemRejected(Exception):
    """One item of a document cannot become an article; the message says why."""


class DateRefused(ValueError):
    """The text has the shape of a date but names no real moment; the message says why."""
