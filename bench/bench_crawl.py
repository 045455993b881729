"""Crawl throughput, memory, incremental cost and extraction quality, on the replica.

    .venv/bin/python bench/bench_crawl.py            # 2,000 / 1,000 / 10,000 articles
    .venv/bin/python bench/bench_crawl.py --quick    # 300 / 200 / 1,000 articles

Every crawl is ``scrapy crawl category -a category=all`` in a subprocess (woshipm_replica/crawls.py's
``run_crawl``, FAST_SETTINGS: no delay, no AutoThrottle, 16 concurrent requests) against a
``ReplicaServer`` in this process, so the replica's own serving cost (Python, one GIL, on the same
2 cores) is part of every figure, ours and the baseline's alike.

- throughput: article pages per second over the whole run (Scrapy's ``elapsed_time_seconds``, from
  engine start to close). Our crawl walks every listing first and then fetches the articles, so its
  time includes the listing pages (~1 per 12 articles) and the per-item pipeline (parse, Markdown,
  SQLite state, library files, JSONL). The baseline is bench/bare_spider.py under ``scrapy
  runspider`` with the same settings: it requests the same article URLs (from the manifest) and
  does nothing with them. Best of ``rounds`` runs each, alternated, so that neither always runs
  on a cold or warm replica.
- memory: peak RSS (``VmHWM``, see ``PeakMemory``) of the ``scrapy crawl`` process over a full crawl
  of 1,000 and of 10,000 articles.
- incremental: ``downloader/request_count`` of a re-run into the same export directory (same state
  store) with 0 and then 20 new articles, against the full crawl's; after both memory crawls.
- quality: per-field exact-match rate of the throughput crawl's items against the replica's
  manifest, and body-text precision/recall/F1 (a bag of non-white-space characters) of our
  ``body_text`` and of ``trafilatura.extract(html)`` against the manifest's ``body_text``.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psutil

from woshipm_crawler import statkeys
from woshipm_replica import ReplicaServer
from woshipm_replica.crawls import FAST_SETTINGS, field_match_rates, run_crawl

REPO = Path(__file__).resolve().parents[1]

SEED = 1
CRAWL_TIMEOUT = 3600


def is_category_listing(key: str) -> bool:
    return key.startswith("category:")


class PeakMemory:
    """The crawl subprocess's peak RSS, from /proc/<pid>/status ``VmHWM``, read every 0.2 s.

    Not Scrapy's ``memusage/max``: that is ``ru_maxrss``, which Linux carries across ``execve``, so a
    ``scrapy crawl`` started from this process (holding a replica, ~200 MB) starts with this
    process's peak as its own. ``VmHWM`` belongs to the new address space; being a high-water mark,
    sampling misses at most the growth of the last 0.2 s.
    """

    def __init__(self) -> None:
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return max(self.peaks.values(), default=0) / 2**10  # VmHWM is in kB

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            for child in psutil.Process().children(recursive=True):
                try:
                    status = Path(f"/proc/{child.pid}/status").read_text()
                except OSError:
                    continue  # exited between the listing and the read
                match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
                if match:
                    self.peaks[child.pid] = max(self.peaks.get(child.pid, 0), int(match.group(1)))


def crawl_all(server: ReplicaServer, export_dir: Path, settings: dict | None = None):
    # run_crawl names its stats file with len(<int>) when the directory does not exist yet.
    export_dir.mkdir(parents=True, exist_ok=True)
    with PeakMemory() as memory:
        crawl = run_crawl("category", server.base_url, export_dir, {"category": "all"},
                          settings=settings, timeout=CRAWL_TIMEOUT)
    if crawl.returncode != 0 or not crawl.stats:
        raise RuntimeError(f"crawl failed ({crawl.returncode}):\n{crawl.log[-3000:]}")
    crawl.stats["bench/peak_rss_mb"] = memory.peak_mb
    return crawl


def run_bare(server: ReplicaServer, urls: list[str], work_dir: Path) -> dict:
    """bench/bare_spider.py over ``urls`` with FAST_SETTINGS; its stats."""
    work_dir.mkdir(parents=True, exist_ok=True)
    urls_file = work_dir / "urls.txt"
    urls_file.write_text("\n".join(urls), encoding="utf-8")
    stats_file = work_dir / f"stats-bare-{time.monotonic_ns()}.json"
    command = [sys.executable, "-m", "scrapy", "runspider", str(REPO / "bench" / "bare_spider.py"),
               "-a", f"urls_file={urls_file}"]
    settings = {**FAST_SETTINGS, "WOSHIPM_BASE_URL": server.base_url,
                "WOSHIPM_EXPORT_DIR": str(work_dir), "WOSHIPM_STATS_FILE": str(stats_file)}
    for key, value in settings.items():
        command += ["-s", f"{key}={value}"]
    env = {k: v for k, v in os.environ.items() if k != "SCRAPY_SETTINGS_MODULE"}
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=CRAWL_TIMEOUT, env=env)
    if done.returncode != 0 or not stats_file.exists():
        raise RuntimeError(f"bare spider failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(stats_file.read_text(encoding="utf-8"))


def run_trafilatura(server: ReplicaServer, work_dir: Path) -> dict:
    """bench/trafilatura_spider.py, outside the project (plain Scrapy), with our crawl's concurrency."""
    work_dir.mkdir(parents=True, exist_ok=True)
    stats_file = work_dir / "stats.json"
    command = [sys.executable, "-m", "scrapy", "runspider", str(REPO / "bench" / "trafilatura_spider.py"),
               "-a", f"base={server.base_url}", "-a", f"stats_path={stats_file}",
               "-O", str(work_dir / "articles.jsonl")]
    settings = {key: FAST_SETTINGS[key] for key in ("DOWNLOAD_DELAY", "AUTOTHROTTLE_ENABLED",
                                                    "CONCURRENT_REQUESTS", "CONCURRENT_REQUESTS_PER_DOMAIN")}
    for key, value in {**settings, "LOG_LEVEL": "INFO"}.items():
        command += ["-s", f"{key}={value}"]
    env = {k: v for k, v in os.environ.items() if k != "SCRAPY_SETTINGS_MODULE"}
    done = subprocess.run(command, cwd=work_dir, capture_output=True, text=True, timeout=CRAWL_TIMEOUT, env=env)
    if done.returncode != 0 or not stats_file.exists():
        raise RuntimeError(f"trafilatura spider failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(stats_file.read_text(encoding="utf-8"))


def throughput(articles: int, rounds: int, work: Path) -> tuple[dict, list[dict], dict[int, dict], ReplicaServer]:
    """Our crawl against the bare spider on one replica; also returns our first crawl's items."""
    server = ReplicaServer(articles=articles, seed=SEED).start()
    manifest = {row["id"]: row for row in server.corpus.manifest(server.base_url)}
    urls = [row["url"] for row in manifest.values()]
    ours_rates, bare_rates, trafilatura_rates, items = [], [], [], None
    ours_runs = []
    for number in range(rounds):
        # Rotate who goes first, so that a warming replica or machine favours no side.
        sides = ("bare", "ours", "trafilatura")
        order = sides[number % 3:] + sides[:number % 3]
        for who in order:
            if who == "ours":
                crawl = crawl_all(server, work / f"ours-{number}")
                articles_done = crawl.stat(statkeys.ARTICLES_PARSED_KEY)
                ours_rates.append(articles_done / crawl.stat("elapsed_time_seconds"))
                ours_runs.append(crawl.stats)
                items = items if items is not None else crawl.items
            elif who == "trafilatura":
                stats = run_trafilatura(server, work / f"trafilatura-{number}")
                trafilatura_rates.append(stats.get("item_scraped_count", 0) / stats["elapsed_time_seconds"])
            else:
                stats = run_bare(server, urls, work / f"bare-{number}")
                # Every response but robots.txt is an article page.
                pages = stats.get("response_received_count", 0) - stats.get("robotstxt/response_count", 0)
                bare_rates.append(pages / stats["elapsed_time_seconds"])
    result = {
        "articles": articles,
        "rounds": rounds,
        "ours_per_s": max(ours_rates),
        "bare_per_s": max(bare_rates),
        "trafilatura_per_s": max(trafilatura_rates),
        "ours_runs_per_s": ours_rates,
        "bare_runs_per_s": bare_rates,
        "trafilatura_runs_per_s": trafilatura_rates,
        "ours_requests": ours_runs[0].get("downloader/request_count"),
        "ours_listing_pages": ours_runs[0].get(statkeys.LISTING_PAGES_KEY),
    }
    result["ratio"] = result["ours_per_s"] / result["bare_per_s"]
    result["ratio_trafilatura"] = result["ours_per_s"] / result["trafilatura_per_s"]
    return result, items, manifest, server


def full_and_reruns(articles: int, work: Path) -> dict:
    """A full crawl of ``articles``, then re-runs into the same export directory (hence the same state
    store) with 0 and with 20 new articles; peak RSS and request counts of each."""
    with ReplicaServer(articles=articles, seed=SEED) as server:
        export = work / f"full-{articles}"
        started = time.perf_counter()
        full = crawl_all(server, export)
        seconds = time.perf_counter() - started
        again = crawl_all(server, export)
        server.set_corpus(articles=articles + 20)
        grown = crawl_all(server, export)
    return {
        "articles": articles,
        "seconds": seconds,
        "items": len(full.items),
        "peak_mb": full.stat("bench/peak_rss_mb"),
        "scrapy_memusage_max_mb": full.stat("memusage/max") / 2**20,
        "full_requests": full.stat("downloader/request_count"),
        "rerun0_requests": again.stat("downloader/request_count"),
        "rerun0_items": len(again.items),
        "rerun20_requests": grown.stat("downloader/request_count"),
        "rerun20_items": len(grown.items),
    }


def char_bag(text: str) -> Counter:
    return Counter(char for char in text if not char.isspace())


def prf(candidate: str, truth: str) -> tuple[float, float, float]:
    """Precision, recall and F1 of ``candidate``'s characters against ``truth``'s (multisets)."""
    got, want = char_bag(candidate), char_bag(truth)
    overlap = sum((got & want).values())
    precision = overlap / max(sum(got.values()), 1)
    recall = overlap / max(sum(want.values()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def quality(items: list[dict], manifest: dict[int, dict], server: ReplicaServer) -> dict:
    """Field match rates of the crawl's items; body P/R/F1 of ours and trafilatura's (page mean)."""
    import trafilatura

    rates, mismatches = field_match_rates(items, manifest, is_category_listing)
    scores: dict[str, list[tuple[float, float, float]]] = {"ours": [], "trafilatura": []}
    for item in items:
        truth = manifest[item["id"]]["body_text"]
        html = server.respond(item["url"].removeprefix(server.base_url)).body.decode("utf-8")
        scores["ours"].append(prf(item["body_text"], truth))
        scores["trafilatura"].append(prf(trafilatura.extract(html) or "", truth))
    result = {"items": len(items), "manifest": len(manifest), "field_rates": rates,
              "mismatched_fields": {name: len(rows) for name, rows in mismatches.items()}}
    for name, values in scores.items():
        for position, measure in enumerate(("precision", "recall", "f1")):
            result[f"{name}_{measure}"] = statistics.fmean(value[position] for value in values)
        result[f"{name}_f1_min"] = min(value[2] for value in values)
    return result


def sizes(quick: bool) -> dict:
    if quick:
        return {"throughput": 300, "rounds": 1, "memory_small": 200, "memory_large": 1000}
    return {"throughput": 2000, "rounds": 2, "memory_small": 1000, "memory_large": 10_000}


def run(quick: bool = False, work: Path | None = None) -> dict:
    size = sizes(quick)
    with tempfile.TemporaryDirectory(prefix="woshipm-bench-") as tmp:
        work = Path(work or tmp)
        print(f"-- throughput ({size['throughput']} articles)", flush=True)
        crawl, items, manifest, server = throughput(size["throughput"], size["rounds"], work)
        print("-- quality", flush=True)
        try:
            measured_quality = quality(items, manifest, server)
        finally:
            server.stop()
        runs = []
        for key in ("memory_small", "memory_large"):
            print(f"-- memory and incremental ({size[key]} articles)", flush=True)
            runs.append(full_and_reruns(size[key], work))
    small, large = runs
    memory = {"small": small["articles"], "large": large["articles"], "small_mb": small["peak_mb"],
              "large_mb": large["peak_mb"], "large_seconds": large["seconds"],
              "ratio": large["peak_mb"] / small["peak_mb"]}
    for run_ in runs:
        run_["rerun0_share"] = run_["rerun0_requests"] / run_["full_requests"]
        run_["rerun20_share"] = run_["rerun20_requests"] / run_["full_requests"]
    return {"throughput": crawl, "memory": memory, "incremental": runs, "quality": measured_quality}


def print_throughput(t: dict) -> None:
    print(f"throughput, {t['articles']} articles (best of {t['rounds']}): ours {t['ours_per_s']:.1f} articles/s "
          f"(runs {', '.join(f'{v:.1f}' for v in t['ours_runs_per_s'])}), bare spider {t['bare_per_s']:.1f}/s "
          f"(runs {', '.join(f'{v:.1f}' for v in t['bare_runs_per_s'])}), ratio {t['ratio']:.2f}")
    print(f"  against the trafilatura spider: {t['trafilatura_per_s']:.1f}/s "
          f"(runs {', '.join(f'{v:.1f}' for v in t['trafilatura_runs_per_s'])}), "
          f"ratio {t['ratio_trafilatura']:.2f}")


def print_results(results: dict) -> None:
    m, i, q = results["memory"], results["incremental"], results["quality"]
    print_throughput(results["throughput"])
    print(f"memory: peak RSS {m['small']} articles {m['small_mb']:.0f} MB, {m['large']} articles "
          f"{m['large_mb']:.0f} MB, "
          f"ratio {m['ratio']:.2f}")
    for run_ in i:
        print(f"incremental, {run_['articles']} articles: full crawl {run_['full_requests']} requests; re-run "
              f"with 0 new {run_['rerun0_requests']} ({run_['rerun0_share']:.2%}, {run_['rerun0_items']} items); "
              f"with 20 new {run_['rerun20_requests']} ({run_['rerun20_share']:.2%}, {run_['rerun20_items']} items)")
    print(f"quality, {q['items']}/{q['manifest']} items: " +
          ", ".join(f"{name} {rate:.1%}" for name, rate in q["field_rates"].items()))
    for name in ("ours", "trafilatura"):
        print(f"  body {name:<11} P {q[f'{name}_precision']:.3f} R {q[f'{name}_recall']:.3f} "
              f"F1 {q[f'{name}_f1']:.3f} (worst page {q[f'{name}_f1_min']:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller replicas")
    parser.add_argument("--json", type=Path, help="also write the results there")
    parser.add_argument("--throughput", type=int, metavar="N",
                        help="only the throughput comparison, on an N-article replica (e.g. under eatmydata)")
    args = parser.parse_args()
    if args.throughput:
        with tempfile.TemporaryDirectory(prefix="woshipm-bench-") as tmp:
            result, _items, _manifest, server = throughput(args.throughput, sizes(args.quick)["rounds"], Path(tmp))
            server.stop()
        print_throughput(result)
        return
    results = run(args.quick)
    print_results(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
