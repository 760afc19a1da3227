"""Throwaway PostgreSQL and Redis servers on 127.0.0.1 (Debian's packages), for the tests
of the DuckLake deployment: started in a new folder, stopped and removed at the end."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's programs (``apt-get install postgresql``)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


class PostgresServer:
    """``with PostgresServer() as pg:`` then ``pg.create_database(name)`` gives a libpq
    connection string. PostgreSQL refuses to run as root, so as root the server runs as
    the ``postgres`` user the package created."""

    def __init__(self) -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin = bin_dir
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        # Not under pytest's tmp_path: as root that is private to root, out of the server's reach.
        self.root = Path(tempfile.mkdtemp(prefix="newsroom-pg-"))
        self.port = free_port()

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / program), *args], check=True, capture_output=True, timeout=120
        )

    def __enter__(self) -> PostgresServer:
        if self.as_user:
            shutil.chown(self.root, "postgres")
        data = self.root / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "newsroom", "--no-sync", "-E", "UTF8")
        settings = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(data), "-l", str(self.root / "log"), "-o", settings, "-w", "-t", "60", "start"
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "-t", "60", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def conninfo(self, database: str = "postgres") -> str:
        return f"dbname={database} host=127.0.0.1 port={self.port} user=newsroom"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.conninfo(), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.conninfo(name)


class RedisServer:
    """``with RedisServer() as redis:``, ``redis.url`` for Celery's broker; nothing kept on disk."""

    def __init__(self) -> None:
        self.program = shutil.which("redis-server")
        if self.program is None:
            pytest.skip("Redis is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                self.program,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.1)

    def __exit__(self, *exc_info: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def worker_hostname() -> str:
    """Airflow's ``hostname_callable`` for a test's Celery workers: two on one machine, each
    reporting its own name (``NEWSROOM_TEST_WORKER``) as the host of the tasks it runs."""
    return os.environ["NEWSROOM_TEST_WORKER"]
