"""All five benchmarks of docs/benchmarks.md, one after the other, and their table.

    .venv/bin/python bench/run_all.py                  # full sizes (~10 minutes on 2 cores)
    .venv/bin/python bench/run_all.py --quick          # smaller sizes (~3 minutes)
    .venv/bin/python bench/run_all.py --write          # also rewrite the table in docs/benchmarks.md
    .venv/bin/python bench/run_all.py --json out.json  # also keep the raw figures

Every benchmark runs as a script from the checkout, like this one (bench/README.md): this folder is
first on ``sys.path``, so the two below are imported by name.

The benchmarks run one at a time on purpose: on a 2-core machine a crawl running next to the
processing timings (or two crawls side by side) would be measured against each other's load.
Prints figures and a Markdown table; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import bench_crawl
import bench_processing

REPO = Path(__file__).resolve().parents[1]

DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:table:begin -->", "<!-- bench:table:end -->"

# The targets of docs/benchmarks.md.
PROCESSING_MAX = 0.6  # ours / trafilatura, median ms per article, at every size
TRAFILATURA_SPIDER_MIN = 1.2  # ours / bench/trafilatura_spider.py, articles per second
MEMORY_MAX = 1.3  # peak RSS at 10,000 articles / at 1,000
RERUN_MAX = 0.01  # requests of a re-run with 0 new articles / the full crawl's
F1_MIN = 0.995  # body F1, printed with two decimals: 1.00


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def table(processing: list[dict], crawl: dict) -> str:
    rows = ["| # | Benchmark | Ours | Baseline | Ratio | Target | |", "|---|---|---|---|---|---|---|"]
    for r in processing:
        size = f"{r['min_kb']:.0f} KB" if r["pages"] == 1 else f"{r['min_kb']:.0f}–{r['max_kb']:.0f} KB"
        label = f"processing, {r['class']} ({size}, {r['pages']} page{'s' if r['pages'] > 1 else ''})"
        ours = f"{r['ours_median']:.1f} / {r['ours_p95']:.1f} ms"
        rows.append(f"| 1 | {label}, vs trafilatura | {ours} | {r['trafilatura_median']:.1f} / "
                    f"{r['trafilatura_p95']:.1f} ms | {r['ours/trafilatura']:.2f} | ≤ {PROCESSING_MAX} | "
                    f"{verdict(r['ours/trafilatura'] <= PROCESSING_MAX)} |")
        rows.append(f"| 1 | {label}, vs markdownify | {ours} | {r['markdownify_median']:.1f} / "
                    f"{r['markdownify_p95']:.1f} ms | {r['ours/markdownify']:.2f} | – | |")
    t = crawl["throughput"]
    rows.append(f"| 2 | crawl throughput, {t['articles']:,} articles (best of {t['rounds']}) | "
                f"{t['ours_per_s']:.1f} articles/s | {t['bare_per_s']:.1f} /s (bare spider) | {t['ratio']:.2f} | "
                "– | |")  # reported: the bare spider does nothing per page
    rows.append(f"| 2 | crawl throughput vs the trafilatura spider, same replica | {t['ours_per_s']:.1f} articles/s | "
                f"{t['trafilatura_per_s']:.1f} /s (bench/trafilatura_spider.py) | {t['ratio_trafilatura']:.2f} | "
                f"≥ {TRAFILATURA_SPIDER_MIN} | {verdict(t['ratio_trafilatura'] >= TRAFILATURA_SPIDER_MIN)} |")
    m = crawl["memory"]
    rows.append(f"| 3 | peak RSS, {m['large']:,} vs {m['small']:,} articles | {m['large_mb']:.0f} MB | "
                f"{m['small_mb']:.0f} MB | {m['ratio']:.2f} | ≤ {MEMORY_MAX} | {verdict(m['ratio'] <= MEMORY_MAX)} |")
    for run in crawl["incremental"]:
        full = f"{run['full_requests']:,} (full crawl)"
        rows.append(f"| 4 | re-run, 0 new of {run['articles']:,} articles | {run['rerun0_requests']} requests | "
                    f"{full} | {run['rerun0_share']:.2%} | < 1% | {verdict(run['rerun0_share'] < RERUN_MAX)} |")
        rows.append(f"| 4 | re-run, 20 new of {run['articles']:,} articles ({run['rerun20_items']} written) | "
                    f"{run['rerun20_requests']} requests | {full} | {run['rerun20_share']:.2%} | – | |")
    q = crawl["quality"]
    rates = q["field_rates"]
    worst = min(rates, key=rates.get)
    fields = (f"all {len(rates)} fields 100%" if rates[worst] == 1 else
              f"lowest: {worst} {rates[worst]:.1%}")
    rows.append(f"| 5 | field exact match, {q['items']:,} items vs manifest | {fields} | – | – | – | |")
    rows.append(f"| 5 | body P / R / F1 vs manifest `body_text` ({q['items']:,} pages) | "
                f"{q['ours_precision']:.3f} / {q['ours_recall']:.3f} / {q['ours_f1']:.3f} | "
                f"{q['trafilatura_precision']:.3f} / {q['trafilatura_recall']:.3f} / {q['trafilatura_f1']:.3f} "
                f"(trafilatura) | – | F1 1.00 | {verdict(q['ours_f1'] >= F1_MIN)} |")
    return "\n".join(rows)


def machine() -> str:
    import os

    import psutil

    memory = psutil.virtual_memory().total / 2**30
    return (f"{os.cpu_count()} cores, {memory:.1f} GiB RAM, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def write_doc(block: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOC}: no {BEGIN} … {END} section to rewrite")
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    DOC.write_text(pattern.sub(lambda _: f"{BEGIN}\n{block}\n{END}", text), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller replicas and fewer repetitions")
    parser.add_argument("--write", action="store_true", help=f"rewrite the table section of {DOC.relative_to(REPO)}")
    parser.add_argument("--json", type=Path, help="also write the raw figures there")
    args = parser.parse_args()

    started = time.perf_counter()
    print("== 1. per-article processing", flush=True)
    processing = bench_processing.run(repetitions=8 if args.quick else 30)
    bench_processing.print_rows(processing)
    print("== 2–5. crawls of the replica", flush=True)
    crawl = bench_crawl.run(quick=args.quick)
    bench_crawl.print_results(crawl)
    minutes = (time.perf_counter() - started) / 60

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mode = "--quick" if args.quick else "full"
    block = (f"Run {when}, `python bench/run_all.py{' --quick' if args.quick else ''}` ({mode} sizes, "
             f"{minutes:.0f} min), on {machine()}. Processing: median / p95 per article.\n\n"
             + table(processing, crawl))
    print()
    print(block)
    if args.json:
        args.json.write_text(json.dumps({"processing": processing, "crawl": crawl}, indent=1, ensure_ascii=False),
                             encoding="utf-8")
    if args.write:
        write_doc(block)
        print(f"\nwrote {DOC.relative_to(REPO)}")


if __name__ == "__main__":
    main()
