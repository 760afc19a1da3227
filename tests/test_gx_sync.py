"""gx/ is written only by `newsroom gx-sync`; comparing it with the declared suites writes
nothing, so a gx/ that lags behind ``ingestion/_quality/expectations.py`` fails here."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import yaml

from ingestion._quality.expectations import SUITES
from ingestion._quality.validate import GX_DIR, sync_gx

from .conftest import REPO, run_cli


def _tree(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_the_committed_gx_folder_matches_the_declared_suites() -> None:
    before = _tree(GX_DIR)
    assert sync_gx(write=False) == [], "run `newsroom gx-sync` and commit gx/"
    assert _tree(GX_DIR) == before


def test_a_changed_declaration_is_reported_without_writing_and_gx_sync_writes_it(tmp_path: Path) -> None:
    shutil.copytree(GX_DIR, tmp_path / "gx", ignore=shutil.ignore_patterns("uncommitted"))
    first = SUITES[0]
    changed = [dataclasses.replace(first, expectations=first.expectations[:-1]), *SUITES[1:]]
    before = _tree(tmp_path / "gx")

    differences = sync_gx(write=False, project_root=tmp_path, suites=changed)
    assert f"suite {first.name}" in differences
    assert all(first.name in difference for difference in differences), differences
    assert _tree(tmp_path / "gx") == before

    assert sync_gx(write=True, project_root=tmp_path, suites=changed) == differences
    assert _tree(tmp_path / "gx") != before
    assert sync_gx(write=False, project_root=tmp_path, suites=changed) == []
    # Back to the declarations as they are: the copy matches the committed folder again.
    assert sync_gx(write=True, project_root=tmp_path) == differences
    assert sync_gx(write=False, project_root=tmp_path) == []


def test_a_suite_no_longer_declared_is_reported_and_removed(tmp_path: Path) -> None:
    shutil.copytree(GX_DIR, tmp_path / "gx", ignore=shutil.ignore_patterns("uncommitted"))
    dropped = SUITES[-1]
    remaining = list(SUITES[:-1])

    differences = sync_gx(write=False, project_root=tmp_path, suites=remaining)
    assert differences and all(d.startswith("undeclared ") and dropped.name in d for d in differences)
    assert sync_gx(write=True, project_root=tmp_path, suites=remaining) == differences
    assert sync_gx(write=False, project_root=tmp_path, suites=remaining) == []
    assert not any(dropped.name in path for path in _tree(tmp_path / "gx"))
    assert dropped.name not in (tmp_path / "gx" / "great_expectations.yml").read_text()


def test_the_command_checks_without_writing() -> None:
    before = _tree(GX_DIR)
    result = run_cli("gx-sync", "--check", timeout=120)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "matches the declared suites" in result.stdout
    assert _tree(GX_DIR) == before


#: The dbt model each suite's frame reads its columns from, where it reads one model.
SUITE_MODELS = {
    "staging_article_events": "stg_newsroom__article_events",
    "staging_feed_events": "stg_newsroom__feed_events",
    **{suite.name: suite.name.removeprefix("marts_") for suite in SUITES if suite.stage == "marts"},
}
#: Expectations that restate a dbt generic test.
DBT_EQUIVALENT = {
    "ExpectColumnValuesToNotBeNull": "not_null",
    "ExpectColumnValuesToBeUnique": "unique",
    "ExpectColumnValuesToBeInSet": "accepted_values",
}


def _dbt_column_tests() -> set[tuple[str, str, str]]:
    """(model, column, generic test) for every column test declared in dbt_project/models."""
    declared = set()
    for path in sorted((REPO / "dbt_project" / "models").rglob("*.yml")):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models", []):
            for column in model.get("columns", []):
                for test in column.get("data_tests", []):
                    name = test if isinstance(test, str) else next(iter(test))
                    declared.add((model["name"], column["name"], name))
    return declared


def test_no_expectation_repeats_a_dbt_test() -> None:
    dbt_tests = _dbt_column_tests()
    assert ("stg_newsroom__article_events", "article_id", "not_null") in dbt_tests  # the parse works
    repeated = [
        f"{suite.name}: {expect.kind}({expect.kwargs['column']})"
        for suite in SUITES
        if suite.name in SUITE_MODELS
        for expect in suite.expectations
        if expect.kind in DBT_EQUIVALENT
        and (SUITE_MODELS[suite.name], expect.kwargs["column"], DBT_EQUIVALENT[expect.kind]) in dbt_tests
    ]
    assert repeated == [], "dbt already tests these inside the graph"
