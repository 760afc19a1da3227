"""A local Airflow for the demo and the tests: AIRFLOW_HOME under the data
directory, SQLite metadata, our dags/ folder, telemetry off."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ingestion.exceptions import AirflowCommandError
from ingestion.pipeline import WRITER_POOL

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


def airflow_environment(data_dir: Path, db_path: Path, config_path: Path | None = None) -> dict[str, str]:
    """Environment variables for running our DAGs against ``db_path``."""
    home = (data_dir / "airflow").resolve()
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "GX_ANALYTICS_ENABLED": "false",
        "NEWSROOM_DB": str(Path(db_path).resolve()),
    }
    if config_path is not None:
        env["NEWSROOM_CONFIG"] = str(Path(config_path).resolve())
    return env


def run_airflow(args: list[str], env: dict[str, str], *, timeout: float = 900) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "airflow", *args]
    try:
        return subprocess.run(
            command, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AirflowCommandError(f"`airflow {' '.join(args)}` did not finish in {timeout:.0f} s") from exc


def prepare_airflow(env: dict[str, str]) -> None:
    """Create or upgrade the metadata database and the one-slot DuckDB writer pool."""
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    for args in (["db", "migrate"], ["pools", "set", WRITER_POOL, "1", "The single DuckDB writer"]):
        result = run_airflow(args, env)
        if result.returncode != 0:
            raise AirflowCommandError(f"`airflow {' '.join(args)}` failed:\n{result.stderr[-2000:]}")


def run_dag_test(dag_id: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`airflow dags test DAG_ID`: one run of the DAG, every task in this machine's process."""
    return run_airflow(["dags", "test", dag_id], env)
