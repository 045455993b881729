"""Crawling at the real site's pace and scale, on a replica that answers like a far-away server.

    .venv/bin/python bench/bench_scale.py                # 1,000-article paced runs; memory at 10,000 and 100,000
    .venv/bin/python bench/bench_scale.py --quick        # 300-article paced runs; memory at 1,000 and 10,000
    .venv/bin/python bench/bench_scale.py --only pace,kill,ratelimit,memory

The replica runs in its own process (``python -m woshipm_replica``, ``--latency`` on every
response), the crawl is ``scrapy crawl category -a category=all`` in another, so neither one's
memory or CPU is counted as the other's. What the site saw comes from the replica's own log
(``/__replica__/paths``: every path with its request count, in order of first request).

- pace: a polite budget of ``1 / DOWNLOAD_DELAY`` = 10 requests a second (5–10× the real site's
  pace; AutoThrottle off, two requests in flight to the site and eight in the downloader, as the
  project settings have it, 20 ms latency). Figures: listing pages
  requested before the first article, and the sustained request rate against the budget (the
  replica's arrival times over the middle 80% of the run's requests; the whole run's average too).
- kill: the same crawl killed (SIGKILL) once half the articles are stored, then run again to the
  end. Figure: requests the site saw twice (robots.txt aside), against what can be in flight.
- ratelimit: the replica enforces a rate (``--faults ratelimit=R``) and answers 429 with
  Retry-After beyond it; the crawl runs unpaced (16 in flight, no delay). Figure: the share of the
  site's requests that arrived inside a Retry-After window on a connection that had already carried
  two of its 429s, i.e. sent with a 429 in hand (``ratelimit:ignored``; after one, ``reused``: the
  client may have let it go before the answer reached its code), and whether the crawl is still
  complete.
- memory: peak RSS (``VmHWM`` of the crawl process, sampled) of a full unpaced crawl at two sizes;
  the ratio large / small is the figure (target ≤ 1.15: nothing grows with the number of articles).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from woshipm_crawler import statkeys
from woshipm_replica.crawls import FAST_SETTINGS, stored_articles

REPO = Path(__file__).resolve().parents[1]

UNPACED = {**FAST_SETTINGS, "LOG_LEVEL": "WARNING"}
# No jitter: with Scrapy's ±50% the spacing averages about 1.17 × DOWNLOAD_DELAY (a new draw at each
# wake-up can add to the last), so 1 / DOWNLOAD_DELAY would not be the budget.
PACED = {
    **UNPACED,
    "DOWNLOAD_DELAY": "0.1",
    "DOWNLOAD_DELAY_JITTER": "0",
    "CONCURRENT_REQUESTS": "8",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "2",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Replica:
    """``python -m woshipm_replica`` in its own process."""

    def __init__(self, articles: int, latency: float = 0.0, faults: str = "") -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "woshipm_replica", "--port", str(self.port),
                   "--articles", str(articles), "--latency", str(latency)]
        if faults:
            command += ["--faults", faults]
        self.process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.get("/__replica__/stats")
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the replica did not start")

    def get(self, path: str):
        with urllib.request.urlopen(self.base_url + path, timeout=30) as answer:
            return json.loads(answer.read())

    def paths(self) -> list[tuple[str, int]]:
        return [tuple(row) for row in self.get("/__replica__/paths")]

    def __enter__(self) -> Replica:
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(10)


def crawl_command(base_url: str, export_dir: Path, settings: dict) -> list[str]:
    command = [sys.executable, "-m", "scrapy", "crawl", "category", "-a", "category=all"]
    merged = {**settings, "WOSHIPM_BASE_URL": base_url, "WOSHIPM_EXPORT_DIR": str(export_dir),
              "WOSHIPM_STATS_FILE": str(export_dir / "stats.json")}
    for key, value in merged.items():
        command += ["-s", f"{key}={value}"]
    return command


def crawl(base_url: str, export_dir: Path, settings: dict, peak: dict | None = None) -> dict:
    """Run a crawl to its end; returns its stats. ``peak`` gets the process's peak RSS in MB."""
    process = subprocess.Popen(crawl_command(base_url, export_dir, settings), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if peak is not None:
        sampler = threading.Thread(target=sample_peak, args=(process, peak), daemon=True)
        sampler.start()
    process.wait()
    if peak is not None:
        sampler.join()
    stats = json.loads((export_dir / "stats.json").read_text(encoding="utf-8"))
    stats["returncode"] = process.returncode
    return stats


def sample_peak(process: subprocess.Popen, peak: dict) -> None:
    while process.poll() is None:
        try:
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak["mb"] = max(peak.get("mb", 0), int(line.split()[1]) / 1024)
        except OSError:
            return
        time.sleep(0.2)


def is_article(path: str) -> bool:
    return path.endswith(".html") and path.count("/") == 2


def is_listing(path: str) -> bool:
    return path.startswith(("/category/", "/tag/"))


def bench_pace(articles: int) -> dict:
    with Replica(articles, latency=0.02) as replica, tempfile.TemporaryDirectory() as tmp:
        stats = crawl(replica.base_url, Path(tmp), PACED)
        order = [path for path, _ in replica.paths()]
        arrivals = replica.get("/__replica__/arrivals")
    first = next(i for i, path in enumerate(order) if is_article(path))
    budget = 1 / float(PACED["DOWNLOAD_DELAY"])
    # Sustained: the middle 80% of the site's requests, without start-up and the last stragglers.
    low, high = int(len(arrivals) * 0.1), int(len(arrivals) * 0.9)
    rate = (high - low) / (arrivals[high] - arrivals[low])
    return {
        "articles": articles,
        "listing_pages_before_first_article": sum(1 for path in order[:first] if is_listing(path)),
        "listings": len([p for p in order if is_listing(p) and "/page/" not in p]),
        "budget_rps": budget,
        "rate_rps": round(rate, 2),
        "whole_run_rps": round(stats["downloader/request_count"] / stats["elapsed_time_seconds"], 2),
        "rate_vs_budget": round(rate / budget, 3),
        "articles_per_s": round(stats.get(statkeys.ARTICLES_PARSED_KEY, 0) / stats["elapsed_time_seconds"], 2),
        "written": stats.get(statkeys.JSONL_WRITTEN_KEY),
    }


def bench_kill(articles: int) -> dict:
    with Replica(articles, latency=0.02) as replica, tempfile.TemporaryDirectory() as tmp:
        export_dir = Path(tmp)
        process = subprocess.Popen(crawl_command(replica.base_url, export_dir, PACED), cwd=REPO,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while stored_articles(export_dir) < articles // 2 and process.poll() is None:
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        at_kill = stored_articles(export_dir)
        stats = crawl(replica.base_url, export_dir, PACED)
        paths = replica.paths()
        repeated = {path: n for path, n in paths if n > 1 and path != "/robots.txt"}
        lines = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in (export_dir / "jsonl").glob("*.jsonl"))
    return {
        "articles": articles,
        "stored_at_kill": at_kill,
        "requests_repeated": sum(n - 1 for n in repeated.values()),
        "in_flight_bound": int(PACED["CONCURRENT_REQUESTS"]),
        "repeated_paths": sorted(repeated),
        "jsonl_lines": lines,
        "resume_ok": stats["returncode"] == 0,
    }


def bench_ratelimit(articles: int, rate: int) -> dict:
    with Replica(articles, faults=f"ratelimit={rate}") as replica, tempfile.TemporaryDirectory() as tmp:
        stats = crawl(replica.base_url, Path(tmp), UNPACED)
        seen = replica.get("/__replica__/stats")
    return {
        "articles": articles,
        "limit_rps": rate,
        "requests": seen.get("requests", 0),
        "windows": seen.get("ratelimit:windows", 0),
        "in_flight_in_window": seen.get("ratelimit:in_flight", 0),
        "reused_in_window": seen.get("ratelimit:reused", 0),
        "ignored_window": seen.get("ratelimit:ignored", 0),
        "in_flight_latest_ms": seen.get("ratelimit:in_flight_latest_ms", 0),
        "share_in_window": round(seen.get("ratelimit:ignored", 0) / max(seen.get("requests", 1), 1), 4),
        "written": stats.get(statkeys.JSONL_WRITTEN_KEY),
        "complete": stats.get(statkeys.JSONL_WRITTEN_KEY) == articles,
        "paused_s": stats.get(statkeys.BACKOFF_PAUSED_S_KEY),
        "elapsed_s": round(stats["elapsed_time_seconds"], 1),
    }


def bench_memory(sizes: tuple[int, int]) -> dict:
    out = {}
    for size in sizes:
        with Replica(size) as replica, tempfile.TemporaryDirectory() as tmp:
            peak: dict = {}
            started = time.monotonic()
            stats = crawl(replica.base_url, Path(tmp), UNPACED, peak)
            out[size] = {
                "peak_rss_mb": round(peak.get("mb", 0), 1),
                "written": stats.get(statkeys.JSONL_WRITTEN_KEY),
                "minutes": round((time.monotonic() - started) / 60, 1),
                "articles_per_s": round(stats.get(statkeys.ARTICLES_PARSED_KEY, 0) / stats["elapsed_time_seconds"], 1),
            }
        print(f"memory at {size}: {out[size]}", flush=True)
    small, large = sizes
    out["ratio"] = round(out[large]["peak_rss_mb"] / out[small]["peak_rss_mb"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="pace,kill,ratelimit,memory")
    parser.add_argument("--json", help="also write the figures there")
    args = parser.parse_args()
    paced = 300 if args.quick else 1000
    sizes = (1_000, 10_000) if args.quick else (10_000, 100_000)
    only = set(args.only.split(","))
    figures: dict = {}
    if "pace" in only:
        figures["pace"] = bench_pace(paced)
        print("pace:", figures["pace"], flush=True)
    if "kill" in only:
        figures["kill"] = bench_kill(paced)
        print("kill:", figures["kill"], flush=True)
    if "ratelimit" in only:
        figures["ratelimit"] = bench_ratelimit(paced, 40)
        print("ratelimit:", figures["ratelimit"], flush=True)
    if "memory" in only:
        figures["memory"] = bench_memory(sizes)
        print("memory:", figures["memory"], flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
