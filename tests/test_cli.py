from __future__ import annotations

from pathlib import Path

import pytest

from ingestion.cli import build_parser, main

from .conftest import run_cli

COMMANDS = ["ingest", "backfill", "verify", "transform", "validate", "gx-sync", "publish", "sql", "demo"]


@pytest.mark.parametrize("command", [[], *[[c] for c in COMMANDS]])
def test_every_command_has_help(command: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: newsroom" in capsys.readouterr().out


def test_parser_knows_every_command() -> None:
    assert set(build_parser()._subparsers._group_actions[0].choices) >= set(COMMANDS)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/feed.xml", "gopher://x"])
def test_non_http_urls_in_config_are_refused_with_a_clear_message(tmp_path: Path, url: str) -> None:
    config = tmp_path / "feeds.yml"
    config.write_text(f"sources:\n  - id: bad\n    url: {url}\n")
    result = run_cli("ingest", "--config", str(config), "--db", str(tmp_path / "x.duckdb"))
    assert result.returncode == 2
    assert "only http(s) URLs and local file paths" in result.stderr
    assert "Traceback" not in result.stderr


def test_ingest_exits_zero_when_feeds_fail(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yml"
    config.write_text("sources:\n  - id: missing\n    url: does-not-exist.xml\n")
    result = run_cli("ingest", "--config", str(config), "--db", str(tmp_path / "x.duckdb"))
    assert result.returncode == 0, result.stderr
    assert "missing" in result.stdout and "failed  1" in result.stdout
