"""Story-thread quality and speed on the product's own path.

    uv run python benchmarks/threads.py

For each labelled set in ../shared/data/threads/ (uci_dev, giveme5w1h): sort the
archive by published_at (a desk sees a story in time order), load it with
`newsroom backfill`, assign threads, and score the assignments with
../shared/eval/score_threads.py (B-cubed and pairwise P/R/F1 within each day).
Then the cost of assigning 10,000 new headlines on top of 100,000 already
threaded (uci_dev replicated with shifted dates), and peak memory.
"""

from __future__ import annotations

import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from ingestion._derive.threads import assign_threads
from ingestion._log.backfill import backfill

SHARED = Path(__file__).resolve().parents[2] / "shared"
SETS = ("uci_dev", "giveme5w1h")


def sorted_archive(source: Path, target: Path, copies: int = 1, shift_days: int = 11) -> int:
    rows = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    out = []
    for copy in range(copies):
        for row in rows:
            row = dict(row)
            if copy:
                when = datetime.fromisoformat(row["published_at"].replace("Z", "+00:00"))
                row["published_at"] = (when + timedelta(days=shift_days * copy)).isoformat()
                row["guid"] = f"{row['guid']}~{copy}"
                row["url"] = None
            out.append(row)
    out.sort(key=lambda r: (r.get("published_at") or "", r.get("guid") or ""))
    target.write_text("".join(json.dumps(r) + "\n" for r in out))
    return len(out)


def score(name: str, workdir: Path) -> None:
    data = SHARED / "data" / "threads" / name
    db = workdir / name / "newsroom.duckdb"
    archive = workdir / f"{name}.jsonl"
    sorted_archive(data / "articles.jsonl", archive)
    backfill(archive, name, db)
    report = assign_threads(db)
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            """
            SELECT e.payload ->> '$.guid', arg_max(t.thread_id, t.event_seq)
            FROM enrich.thread_assignments t JOIN raw.events e ON e.event_seq = t.event_seq
            GROUP BY 1
            """
        ).fetchall()
    predictions = workdir / f"{name}.pred.csv"
    with predictions.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "thread"])
        writer.writerows(rows)
    result = subprocess.run(
        [sys.executable, str(SHARED / "eval" / "score_threads.py"), str(data / "gold.csv"), str(predictions)],
        capture_output=True,
        text=True,
        check=False,
    )
    print(f"== {name}: {len(rows):,} articles, {report.summary()}")
    print(result.stdout.strip() or result.stderr.strip())


def throughput(workdir: Path) -> None:
    source = SHARED / "data" / "threads" / "uci_dev" / "articles.jsonl"
    db = workdir / "speed" / "newsroom.duckdb"
    archive = workdir / "speed.jsonl"
    total = sorted_archive(source, archive, copies=4)
    lines = archive.read_text().splitlines(keepends=True)
    first, second = workdir / "first.jsonl", workdir / "second.jsonl"
    first.write_text("".join(lines[: total - 10_000]))
    second.write_text("".join(lines[total - 10_000 :]))
    backfill(first, "speed", db)
    base = assign_threads(db)
    backfill(second, "speed", db)
    started = time.perf_counter()
    new = assign_threads(db)
    elapsed = time.perf_counter() - started
    print(f"== throughput: {base.articles:,} threaded first ({base.summary()})")
    print(
        f"assigning {new.articles:,} new on top: {elapsed:.2f} s = {new.articles / elapsed:,.0f} articles/s "
        "(incl. loading the saved state and writing assignments)"
    )


def main() -> None:
    if not (SHARED / "data" / "threads").exists():
        sys.exit(f"{SHARED / 'data' / 'threads'} not found: the labelled sets live beside the repository")
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for name in SETS:
            score(name, workdir)
        throughput(workdir)
    print(f"peak memory (RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
