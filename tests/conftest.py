from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingestion._localserver import LocalServer

# Nothing we run phones home.
os.environ.setdefault("DO_NOT_TRACK", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared (real data for tests); skips the test when absent."""
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
