"""Benchmarks of ``scrapy export`` (issue 16): time and peak memory per format at 10,000 and 100,000
articles. (``scrapy book``, the library site: bench/bench_site.py.)

    .venv/bin/python bench/bench_outputs.py export [--sizes 10000 100000] [--write]

No crawl: the state store is filled directly from the replica's manifest (``Corpus(articles=N)``;
above 10,000 the first 10,000 rows are repeated with new ids, titles and URLs), with ``body_html``
made from the manifest's paragraphs and ``body_markdown`` = ``body_text``. Each command runs as
``scrapy <command>`` in a child process, as a user runs it; its peak RSS is the largest VmHWM of
the child and its descendants, polled every 0.1 s. The export baseline is a child that only reads every article from the
state (``dataset_items``): the floor every format pays. ``--write`` puts the table into
docs/benchmarks.md between the ``bench:outputs`` markers.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from woshipm_crawler.outputs.dataset import FORMATS
from woshipm_crawler.state import StateStore
from woshipm_replica.corpus import Corpus

ROOT = Path(__file__).resolve().parents[1]

OUT = ROOT / "bench" / "out" / "outputs"
BASE_URL = "http://127.0.0.1:8000"
REPEAT_ABOVE = 10_000
DOC = ROOT / "docs" / "benchmarks.md"


def manifest_items(n: int, start: int = 0, corpus_size: int | None = None) -> list[dict]:
    """Items ``start..n`` of a replica of ``corpus_size or n`` articles, newest first in the manifest."""
    base = min(corpus_size or n, REPEAT_ABOVE)
    rows = list(Corpus(articles=base, seed=1).manifest(BASE_URL))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    items = []
    for k in range(start, n):
        row, copy = dict(rows[k % base]), k // base
        if copy:
            offset = copy * 100_000_000
            row["id"] += offset
            row["title"] += f"（{copy}）"
            row["url"] = row["url"].replace(".html", f"-{copy}.html")
            row["duplicate_of"] = row["duplicate_of"] + offset if row["duplicate_of"] is not None else None
        paragraphs = row["body_text"].split("\n\n")
        row["body_html"] = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
        row["body_markdown"] = row["body_text"]
        row["crawled_at"] = stamp
        items.append(row)
    return items


def fill_state(path: Path, items: list[dict]) -> None:
    with StateStore(path) as store:
        # Bench only: filling 100,000 articles with an fsync per commit would take longer than the
        # measurements; durability of the fill is not what is measured.
        store._conn.execute("PRAGMA synchronous = OFF")
        for item in items:
            store.commit_item(item, job="bench")


def _peak_rss_mib(pid: int) -> float:
    """VmHWM of a process and its descendants (the book's Node process), MiB; 0 once gone."""
    total = 0.0
    try:
        processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for process in processes:
        with contextlib.suppress(OSError, psutil.Error):
            status = Path(f"/proc/{process.pid}/status").read_text()
            if "VmHWM:" in status:  # a zombie has no memory lines
                total = max(total, int(status.split("VmHWM:")[1].split()[0]) / 1024)
    return total


def run_child(args: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, stdout) of one child process.

    The peak is the largest VmHWM of the child or any descendant, read every 0.1 s (not the
    child's ru_maxrss: Linux carries the parent's RSS at fork over into it).
    """
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.DEVNULL, text=True)
        peak = 0.0
        while process.poll() is None:
            peak = max(peak, _peak_rss_mib(process.pid))
            time.sleep(0.1)
        elapsed = time.perf_counter() - start
        out.seek(0)
        text = out.read()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {text[-2000:]}")
    return elapsed, peak, text


def scrapy(command: list[str], export_dir: Path) -> list[str]:
    return [sys.executable, "-m", "scrapy", *command, "-s", f"WOSHIPM_EXPORT_DIR={export_dir}"]


READ_ONLY = (
    "import sys; from woshipm_crawler.state import StateStore; "
    "from woshipm_crawler.outputs.dataset import dataset_items\n"
    "with StateStore(sys.argv[1]) as s: print(sum(1 for _ in dataset_items(s)))"
)


def bench_export(sizes: list[int]) -> list[dict]:
    rows = []
    for n in sizes:
        export_dir = OUT / f"export-{n}"
        shutil.rmtree(export_dir, ignore_errors=True)
        export_dir.mkdir(parents=True)
        start = time.perf_counter()
        fill_state(export_dir / "state.sqlite3", manifest_items(n))
        print(f"{n}: state filled in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        seconds, rss, out = run_child([sys.executable, "-c", READ_ONLY, str(export_dir / "state.sqlite3")])
        assert int(out.strip()) == n, out
        rows.append({"articles": n, "format": "read only (baseline)", "seconds": seconds, "rss_mib": rss,
                     "ratio": 1.0, "mb": None})
        baseline = seconds
        for fmt in FORMATS:
            target = export_dir / f"out-{fmt}"
            seconds, rss, out = run_child(scrapy(["export", "--format", fmt, "--out", str(target)], export_dir))
            assert f"exported {n} articles" in out, out
            size = sum(p.stat().st_size for p in target.iterdir() if p.name != "README.md") / 1e6
            rows.append({"articles": n, "format": fmt, "seconds": seconds, "rss_mib": rss,
                         "ratio": seconds / baseline, "mb": size})
            print(json.dumps(rows[-1]), file=sys.stderr)
        shutil.rmtree(export_dir, ignore_errors=True)
    return rows


def export_table(rows: list[dict]) -> str:
    lines = ["| articles | format | seconds | × read-only | peak RSS MiB | output MB |",
             "| ---: | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        mb = f"{r['mb']:.0f}" if r["mb"] is not None else ""
        lines.append(f"| {r['articles']:,} | {r['format']} | {r['seconds']:.1f} | {r['ratio']:.1f} | "
                     f"{r['rss_mib']:.0f} | {mb} |")
    return "\n".join(lines)


SECTION = "## Outputs: `scrapy export` and `scrapy book` (bench/bench_outputs.py)"
PART_TITLES = {"export": "### Export: time and peak memory per format"}


def write_doc(part: str, table: str) -> None:
    """Replace this part's table in docs/benchmarks.md (between its own markers; added once at the end)."""
    begin, end = f"<!-- bench:outputs-{part}:begin -->", f"<!-- bench:outputs-{part}:end -->"
    text = DOC.read_text(encoding="utf-8")
    if SECTION not in text:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\nMethod: the docstring of bench/bench_outputs.py.\n"
    if begin not in text:
        text = text.rstrip("\n") + f"\n\n{PART_TITLES[part]}\n\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    DOC.write_text(f"{head}{begin}\n{table}\n{end}{tail}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("export",))
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    table = export_table(bench_export(args.sizes or [10_000, 100_000]))
    print(table)
    if args.write:
        write_doc(args.what, table)


if __name__ == "__main__":
    main()
