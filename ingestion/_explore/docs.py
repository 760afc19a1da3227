"""What the dbt project says about each model: descriptions, keys, references and
how its Parquet files are split.

The model files (``dbt_project/models/**/_*__models.yml``) are the one place the
marts are documented and constrained; the mirror takes its keys from them and
Datasette its descriptions, so neither can drift from dbt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ingestion._derive.transform import DBT_PROJECT


@dataclass(slots=True)
class ModelDocs:
    description: str = ""
    columns: dict[str, str] = field(default_factory=dict)
    #: The key dbt tests as unique: a ``unique_combination`` when one is declared
    #: (the natural key, e.g. article and version), else the ``primary_key`` column.
    primary_key: tuple[str, ...] = ()
    #: Other columns dbt tests as unique.
    unique: tuple[str, ...] = ()
    #: column -> model, from ``relationships`` tests.
    references: dict[str, str] = field(default_factory=dict)
    #: The time column whose month splits the mart's Parquet files (``meta``), if any.
    published_by_month: str = ""


@cache
def model_docs(project_dir: Path = DBT_PROJECT) -> dict[str, ModelDocs]:
    """Every model of the project by name."""
    models: dict[str, ModelDocs] = {}
    for path in sorted((project_dir / "models").rglob("_*__models.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for model in document.get("models") or []:
            models[model["name"]] = _read_model(model)
    return models


def _read_model(model: dict[str, Any]) -> ModelDocs:
    meta = (model.get("config") or {}).get("meta") or {}
    docs = ModelDocs(
        description=_one_line(model.get("description")),
        published_by_month=str(meta.get("published_by_month") or ""),
    )
    combination: tuple[str, ...] = ()
    for test in model.get("data_tests") or []:
        if isinstance(test, dict) and "unique_combination" in test:
            combination = tuple(_arguments(test["unique_combination"]).get("columns") or ())
    single_keys: list[str] = []
    unique: list[str] = []
    for column in model.get("columns") or []:
        name = column["name"]
        docs.columns[name] = _one_line(column.get("description"))
        constraints = {c.get("type") for c in column.get("constraints") or [] if isinstance(c, dict)}
        if "primary_key" in constraints:
            single_keys.append(name)
        for test in column.get("data_tests") or []:
            if test == "unique":
                unique.append(name)
            elif isinstance(test, dict) and "relationships" in test:
                target = str(_arguments(test["relationships"]).get("to", ""))
                if target.startswith("ref(") and target.endswith(")"):
                    docs.references[name] = target[4:-1].strip("'\" ")
    docs.primary_key = combination or tuple(single_keys[:1])
    docs.unique = tuple(name for name in dict.fromkeys(unique + single_keys) if (name,) != docs.primary_key)
    return docs


def _arguments(test: Any) -> dict[str, Any]:
    """A generic test's arguments, whether nested under ``arguments:`` (dbt 1.10+) or not."""
    if not isinstance(test, dict):
        return {}
    return test.get("arguments") or test


def _one_line(text: Any) -> str:
    return " ".join(str(text or "").split())
