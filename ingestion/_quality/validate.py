"""Running the Great Expectations suites of ``expectations.py`` on frames read
from DuckDB (GX validates pandas frames; its SQL path does not work on DuckDB).

Validation only reads gx/ and refuses to run when it no longer matches the declarations;
`newsroom gx-sync` is the one thing that writes it."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingestion._derive.transform import read_build_record
from ingestion._log.store import connect
from ingestion._quality.expectations import STAGES, SUITES, Expect, Suite
from ingestion.exceptions import ValidationError

GX_DIR = Path(__file__).resolve().parents[2] / "gx"
#: Validation results kept per suite, with their Data Docs pages: the newest runs'. All kept,
#: they grew with every run, and each validation rendered every page again (27 s after 300).
KEPT_RESULTS_PER_SUITE = 30
DATASOURCE = "newsroom_frames"
BATCH = "whole_frame"


@dataclass(slots=True)
class ExpectationOutcome:
    suite: str
    expectation: str  # e.g. expect_column_values_to_be_in_set(status_matches_last_version)
    severity: str
    success: bool
    unexpected_count: int | None = None
    examples: list[Any] = field(default_factory=list)


@dataclass(slots=True)
class SuiteOutcome:
    suite: str
    stage: str
    rows: int
    outcomes: list[ExpectationOutcome] = field(default_factory=list)

    @property
    def success(self) -> bool:
        """A suite passes when every critical expectation passes (warnings are reported)."""
        return all(o.success for o in self.outcomes if o.severity == "critical")

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity != "critical"]


@dataclass(slots=True)
class ValidationReport:
    since: int
    suites: list[SuiteOutcome]
    docs_index: Path | None = None
    #: The log's last event when the raw stage read it: the raw suites covered
    #: ``since`` < event_seq <= ``up_to`` (None: no raw stage).
    up_to: int | None = None
    #: The id of the marts' build the staging and marts stages read (None: none
    #: validated, or built before builds were recorded).
    build_id: str | None = None

    @property
    def success(self) -> bool:
        return all(suite.success for suite in self.suites)

    def failures(self) -> list[ExpectationOutcome]:
        return [o for s in self.suites for o in s.outcomes if not o.success and o.severity == "critical"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (an XCom between scheduler tasks)."""
        return {
            "since": self.since,
            "up_to": self.up_to,
            "build_id": self.build_id,
            "suites": [
                {
                    "suite": s.suite,
                    "stage": s.stage,
                    "rows": s.rows,
                    "outcomes": [dataclasses.asdict(o) for o in s.outcomes],
                }
                for s in self.suites
            ],
        }

    @classmethod
    def merged(cls, parts: list[dict[str, Any]]) -> ValidationReport:
        """One report from the per-stage reports of ``to_dict``."""
        since = {part["since"] for part in parts}
        if len(since) != 1:
            raise ValidationError(f"stage reports disagree on the starting event: {sorted(since)}")
        suites = [
            SuiteOutcome(s["suite"], s["stage"], s["rows"], [ExpectationOutcome(**o) for o in s["outcomes"]])
            for part in parts
            for s in part["suites"]
        ]
        # The raw stage runs before the build (on the scheduler), the others after it.
        # (.get: a report of a run from before builds were recorded has neither key.)
        built = {part.get("build_id") for part in parts if any(s["stage"] != "raw" for s in part["suites"])}
        if len(built) > 1:
            raise ValidationError("stage reports are of different builds of the marts: validate again")
        up_to = [part["up_to"] for part in parts if part.get("up_to") is not None]
        return cls(
            since=since.pop(),
            suites=suites,
            up_to=min(up_to) if up_to else None,
            build_id=built.pop() if built else None,
        )

    def lines(self) -> list[str]:
        lines = []
        for suite in self.suites:
            verdict = "PASS" if suite.success else "FAIL"
            passed = sum(o.success for o in suite.outcomes)
            lines.append(
                f"{verdict} {suite.stage:<8} {suite.suite:<24} "
                f"{passed}/{len(suite.outcomes)} expectations, {suite.rows} rows"
            )
            for outcome in suite.outcomes:
                if not outcome.success:
                    label = "FAILED" if outcome.severity == "critical" else "warning"
                    lines.append(
                        f"       {label}: {outcome.expectation}: {outcome.unexpected_count} "
                        f"unexpected, e.g. {outcome.examples[:3]}"
                    )
        return lines


def _expectation_label(kind: str, kwargs: dict[str, Any]) -> str:
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in kind).lstrip("_")
    return f"{snake}({kwargs.get('column', '')})"


def _context(data_dir: Path, project_root: Path = GX_DIR.parent):
    """The file context in gx/ (under ``project_root``), with results and Data Docs under the
    data directory."""
    os.environ["NEWSROOM_GX_RESULTS_DIR"] = str((data_dir / "gx" / "validations").resolve())
    os.environ["NEWSROOM_GX_DOCS_DIR"] = str((data_dir / "docs" / "gx").resolve())
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx

    return gx.get_context(mode="file", project_root_dir=str(project_root))


def _prune_results(data_dir: Path) -> None:
    """Remove the results of each suite but the newest ``KEPT_RESULTS_PER_SUITE`` runs', and
    their Data Docs pages (``<suite>/<run name>/<run time>/``: run times sort by time)."""
    for root in (data_dir / "gx" / "validations", data_dir / "docs" / "gx" / "validations"):
        for runs in root.glob("*/*"):
            if runs.is_dir():
                for old in sorted(run for run in runs.iterdir() if run.is_dir())[:-KEPT_RESULTS_PER_SUITE]:
                    shutil.rmtree(old, ignore_errors=True)


def _build_suite(suite: Suite):
    import great_expectations as gx

    gx_suite = gx.ExpectationSuite(name=suite.name, meta={"stage": suite.stage, "notes": suite.description})
    for expect in suite.expectations:
        gx_suite.add_expectation(
            getattr(gx.expectations, expect.kind)(**expect.kwargs, severity=expect.severity)
        )
    return gx_suite


def _declared(expect: Expect) -> tuple:
    return (_expectation_label(expect.kind, expect.kwargs), sorted(expect.kwargs.items()), expect.severity)


def _stored(config: Any) -> tuple:
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    kind = "".join(part.title() for part in config.type.split("_"))
    return (
        _expectation_label(kind, kwargs),
        sorted(kwargs.items()),
        str(config.severity.value if hasattr(config.severity, "value") else config.severity),
    )


def sync(context, *, write: bool, suites: Sequence[Suite] = SUITES) -> list[str]:
    """What in gx/ differs from the declared ``suites``. With ``write``, make gx/ match by
    writing only that (`newsroom gx-sync`); without, touch nothing (validation, tests)."""
    import great_expectations as gx

    differences = []
    try:
        source = context.data_sources.get(DATASOURCE)
    except (KeyError, ValueError):
        differences.append(f"datasource {DATASOURCE}")
        if not write:
            return differences
        source = context.data_sources.add_pandas(name=DATASOURCE)
    for suite in suites:
        try:
            asset = source.get_asset(suite.name)
        except LookupError:
            differences.append(f"asset {suite.name}")
            if not write:
                continue
            asset = source.add_dataframe_asset(name=suite.name)
        try:
            batch = asset.get_batch_definition(BATCH)
        except KeyError:
            differences.append(f"batch definition {suite.name}")
            if not write:
                continue
            batch = asset.add_batch_definition_whole_dataframe(BATCH)
        try:
            stored = context.suites.get(suite.name)
            same = sorted(map(_stored, stored.expectation_configurations)) == sorted(
                map(_declared, suite.expectations)
            )
        except Exception:  # not there yet (GX raises its own not-found errors)
            stored, same = None, False
        if not same:
            differences.append(f"suite {suite.name}")
            if write:
                if stored is not None:
                    context.suites.delete(suite.name)
                stored = context.suites.add(_build_suite(suite))
        try:
            definition = context.validation_definitions.get(suite.name)
        except Exception:
            definition = None
        if definition is None or not same:
            differences.append(f"validation definition {suite.name}")
            if write:
                if definition is not None:
                    context.validation_definitions.delete(suite.name)
                definition = context.validation_definitions.add(
                    gx.ValidationDefinition(name=suite.name, data=batch, suite=stored)
                )
        try:
            context.checkpoints.get(suite.name)
            has_checkpoint = same
        except Exception:
            has_checkpoint = False
        if not has_checkpoint:
            differences.append(f"checkpoint {suite.name}")
            if write:
                with contextlib.suppress(Exception):  # nothing to delete
                    context.checkpoints.delete(suite.name)
                context.checkpoints.add(gx.Checkpoint(name=suite.name, validation_definitions=[definition]))
    differences += _undeclared(context, source, {suite.name for suite in suites}, write=write)
    return differences


def _undeclared(context, source, declared: set[str], *, write: bool) -> list[str]:
    """What gx/ still holds of suites no longer declared; with ``write``, removed."""
    kinds = (
        ("checkpoint", context.checkpoints),
        ("validation definition", context.validation_definitions),
        ("suite", context.suites),
    )
    differences = []
    for kind, store in kinds:
        for name in sorted({item.name for item in store.all()} - declared):
            differences.append(f"undeclared {kind} {name}")
            if write:
                store.delete(name)
    for name in sorted({asset.name for asset in source.assets} - declared):
        differences.append(f"undeclared asset {name}")
        if write:
            source.delete_asset(name)
    return differences


def sync_gx(
    *, write: bool, project_root: Path = GX_DIR.parent, suites: Sequence[Suite] = SUITES
) -> list[str]:
    """`newsroom gx-sync`: compare gx/ under ``project_root`` with the declarations, and
    with ``write`` regenerate what differs. Returns what differed (empty: up to date)."""
    with tempfile.TemporaryDirectory(prefix="newsroom-gx-") as scratch:
        # Results and Data Docs paths must be set to open the context; nothing is validated here.
        return sync(_context(Path(scratch), project_root), write=write, suites=suites)


def validate(
    db_path: Path, *, stages: tuple[str, ...] = STAGES, since: int = 0, build_docs: bool = True
) -> ValidationReport:
    """Run each selected stage's checkpoints; ``since`` limits row checks to newer events."""
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValidationError(f"unknown stage(s) {sorted(unknown)}; choose from {', '.join(STAGES)}")
    selected = [suite for suite in SUITES if suite.stage in stages]
    # Read before the marts: a build that starts meanwhile changes the record first.
    build = read_build_record(Path(db_path))
    con = connect(Path(db_path), read_only=True)
    try:
        [(up_to,)] = con.execute("SELECT coalesce(max(event_seq), 0) FROM raw.events").fetchall()
        frames = {}
        for suite in selected:
            try:
                frames[suite.name] = con.execute(suite.sql.format(since=int(since))).df()
            except Exception as exc:  # a missing schema/table: the stage was never built
                raise ValidationError(
                    f"cannot read the data for suite {suite.name} ({suite.stage}): {exc}. "
                    "Run `newsroom transform` before validating staging or marts."
                ) from exc
    finally:
        con.close()

    context = _context(Path(db_path).parent)
    stale = sync(context, write=False)
    if stale:
        raise ValidationError(
            f"gx/ does not match the suites declared in ingestion/_quality/expectations.py "
            f"({', '.join(stale[:3])}"
            f"{', ...' if len(stale) > 3 else ''}); run `newsroom gx-sync` and commit gx/"
        )
    report = ValidationReport(
        since=int(since),
        suites=[],
        up_to=int(up_to) if "raw" in stages else None,
        build_id=build["id"] if build and set(stages) - {"raw"} else None,
    )
    for suite in selected:
        result = context.checkpoints.get(suite.name).run(batch_parameters={"dataframe": frames[suite.name]})
        outcome = SuiteOutcome(suite.name, suite.stage, len(frames[suite.name]))
        for run_result in result.run_results.values():
            for item in run_result.results:
                config = item.expectation_config
                details = item.result or {}
                kind = "".join(part.title() for part in config.type.split("_"))
                outcome.outcomes.append(
                    ExpectationOutcome(
                        suite=suite.name,
                        expectation=_expectation_label(kind, config.kwargs),
                        severity=str(getattr(config.severity, "value", config.severity)),
                        success=bool(item.success),
                        unexpected_count=details.get("unexpected_count"),
                        examples=list(details.get("partial_unexpected_list") or [])[:5],
                    )
                )
        report.suites.append(outcome)
    _prune_results(Path(db_path).parent)
    if build_docs:
        context.build_data_docs()
        index = Path(os.environ["NEWSROOM_GX_DOCS_DIR"]) / "index.html"
        report.docs_index = index if index.exists() else None
    return report
