"""Entity extraction spread over worker processes on the DuckLake deployment.

    uv run python benchmarks/lake_ner.py [--docs N] [--editions 3] [--workers 1 2]

Starts a PostgreSQL server on 127.0.0.1 (Debian's package, started and removed as the
tests do) and, for each worker count, makes a lake of its own (catalog in that server,
data files in a temporary folder shared by the workers) and loads the same articles into
it: the documents of CoNLL-2003 ``eng.train`` (../shared/data/entities; ~200k words of
news text, one article body each, never seen by the extraction before; ``--editions``
copies of each, told apart by a closing line, so every text is new). Then extracts
their entities the way the transform DAG's mapped tasks do: ``plan_partitions`` once,
``extract_partition`` for each partition in a process of its own, all at once (the lake
only read; each writes its partition file to the shared folder), then
``merge_partitions``, the one writer.

Reports, for each worker count: the wall time from starting the workers to the last
one's end (interpreter start and model load included, as a mapped task pays them), each
worker's own extraction time, the merge, words/s and the speed-up over one worker, and
whether the merged rows (``enrich.texts``, ``enrich.mentions``) equal the one-worker
run's. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from entities import CONLL_TRAIN, read_conll, write_archive  # noqa: E402 (benchmarks/entities.py)

from ingestion._derive.entities import merge_partitions, plan_partitions  # noqa: E402
from ingestion._log.backfill import backfill  # noqa: E402
from ingestion._log.store import connect  # noqa: E402
from tests.services import PostgresServer  # noqa: E402

_WORKER = """
import json, sys
from pathlib import Path
from ingestion._derive.entities import extract_partition
lake, part, parts, through, out_dir = sys.argv[1:]
report = extract_partition(Path(lake), int(part), int(parts), Path(out_dir), through=int(through))
print(json.dumps({"seconds": report.seconds}))
"""

ROWS = {
    "enrich.texts": "SELECT text_hash, status, detail FROM enrich.texts ORDER BY ALL",
    "enrich.mentions": "SELECT * FROM enrich.mentions ORDER BY ALL",
}


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def run(postgres: PostgresServer, archive: Path, folder: Path, workers: int) -> dict:
    lake = folder / "newsroom.lake"
    folder.mkdir(parents=True)
    catalog = postgres.create_database(f"ner_{workers}")
    lake.write_text(json.dumps({"catalog": catalog, "data_path": "lake-files"}))
    backfill(archive, "conll", lake)
    through = plan_partitions(lake)
    shared = folder / "partitions"
    load = load_average()
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(lake), str(part), str(workers), str(through), str(shared)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        for part in range(workers)
    ]
    own = []
    for process in processes:
        out, _ = process.communicate(timeout=3600)
        if process.returncode != 0:
            raise SystemExit(f"a worker failed (exit {process.returncode})")
        own.append(json.loads(out.strip().splitlines()[-1]))
    extracted = time.monotonic() - started
    started = time.monotonic()
    merged = merge_partitions(lake, workers, through, shared)
    merge_seconds = time.monotonic() - started
    with connect(lake, read_only=True) as con:
        rows = {table: con.execute(sql).fetchall() for table, sql in ROWS.items()}
    return {
        "workers": workers,
        "extract_seconds": extracted,
        "worker_seconds": [round(o["seconds"], 1) for o in own],
        "merge_seconds": merge_seconds,
        "texts": merged.texts_new,
        "mentions": len(rows["enrich.mentions"]),
        "rows": rows,
        "load_before": load,
        "load_after": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=None, help="the first N documents only")
    parser.add_argument("--editions", type=int, default=3, help="copies of each document")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    if not CONLL_TRAIN.exists():
        raise SystemExit(f"{CONLL_TRAIN} is missing (../shared/data/entities beside the repository)")
    docs = [
        replace(doc, guid=f"{doc.guid}-{edition}", text=f"{doc.text}\nEdition {edition}.")
        for doc in read_conll(CONLL_TRAIN)[: args.docs]
        for edition in range(1, args.editions + 1)
    ]
    words = sum(len(doc.text.split()) for doc in docs)
    print(f"{len(docs):,} documents, {words:,} words; {os.cpu_count()} cores", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp, PostgresServer() as postgres:
        archive = Path(tmp) / "conll.jsonl"
        write_archive(archive, docs, "conll")
        for workers in args.workers:
            result = run(postgres, archive, Path(tmp) / f"workers{workers}", workers)
            results.append(result)
            print(
                f"{workers} worker(s): extraction {result['extract_seconds']:.1f} s wall "
                f"(each worker's own: {result['worker_seconds']} s), merge {result['merge_seconds']:.1f} s; "
                f"{result['texts']:,} texts, {result['mentions']:,} mentions; "
                f"load average {result['load_before']} before, {result['load_after']} after",
                flush=True,
            )
    first = results[0]
    header = "workers | extraction s (wall, start-up in) | words/s | speed-up | merge s"
    print(f"\n| {header} | rows as with {first['workers']} |")
    print("|---:|---:|---:|---:|---:|---|")
    for result in results:
        seconds = result["extract_seconds"]
        same = "yes" if result["rows"] == first["rows"] else "NO"
        print(
            f"| {result['workers']} | {seconds:.1f} | {words / seconds:,.0f} | "
            f"{first['extract_seconds'] / seconds:.2f}x | {result['merge_seconds']:.1f} | {same} |"
        )


if __name__ == "__main__":
    main()
