from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ingestion._demo.localserver import LocalServer

# Nothing we run phones home.
os.environ.setdefault("DO_NOT_TRACK", "1")

REPO = Path(__file__).resolve().parents[1]
#: Real-world samples beside a development checkout; NEWSROOM_SHARED_DIR points elsewhere
#: (a missing folder there shows what a fresh clone runs).
SHARED = Path(os.environ.get("NEWSROOM_SHARED_DIR") or REPO.parent / "shared")

# The tests run in several processes (pytest-xdist). dbt rewrites its manifest and
# partial-parse file in the project's target/ on every run, so each process keeps its
# own (inherited by the Airflow and CLI processes it starts).
if _worker := os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["DBT_TARGET_PATH"] = str(REPO / "dbt_project" / "target" / _worker)
    os.environ["DBT_LOG_PATH"] = str(REPO / "dbt_project" / "logs" / _worker)


#: Whether the test being run carries ``@pytest.mark.shared``: set before its fixtures are built.
_running_a_shared_test = False


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    global _running_a_shared_test
    _running_a_shared_test = item.get_closest_marker("shared") is not None
    if _running_a_shared_test and not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present (../shared is only beside a development checkout)")


def shared_path(*parts: str) -> Path:
    """A path under ../shared (real data for tests); skips the test when absent.

    Only tests marked ``shared`` may call it, so that `-m "not shared"` runs exactly what a
    fresh clone can run."""
    if not _running_a_shared_test:
        pytest.fail("a test reading ../shared must carry @pytest.mark.shared", pytrace=False)
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (../shared is only beside a development checkout)")
    return path


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`newsroom ARGS...` in a fresh process, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "ingestion.cli", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def server():
    with LocalServer() as local:
        yield local


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "newsroom.duckdb"


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory built once per run from the bundled demo feeds, round by round.
    Treat it as read-only: copy it (`copy_data_dir`) before changing anything."""
    from .demo_data import build_demo_db_round_by_round  # dbt and spaCy load only when needed

    data = tmp_path_factory.mktemp("demo") / "data"
    build_demo_db_round_by_round(data / "newsroom.duckdb")
    return data


def copy_data_dir(source: Path, target_parent: Path) -> Path:
    """A private copy of a data directory; returns the path of its working database."""
    target = target_parent / "data"
    shutil.copytree(source, target, symlinks=True)
    return target / "newsroom.duckdb"
