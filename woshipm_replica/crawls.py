"""Real crawls of the replica, for the tests and the benchmarks: ``scrapy crawl`` in a subprocess.

The crawl runs in its export directory with the project's settings module named in the environment
(as Scrapyd runs a job), so it needs no checkout: only the installed packages.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from woshipm_crawler.items import MANIFEST_FIELDS
from woshipm_crawler.textmodel import normalize_ws

SETTINGS_MODULE = "woshipm_crawler.settings"

# The replica is ours and on loopback: no politeness delays, quick backoff.
FAST_SETTINGS = {
    "DOWNLOAD_DELAY": "0",
    "AUTOTHROTTLE_ENABLED": "False",
    "CONCURRENT_REQUESTS": "16",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "16",
    "WOSHIPM_RETRY_BACKOFF_BASE": "0.05",
    "WOSHIPM_PROGRESS": "False",
}


@dataclass
class Crawl:
    returncode: int
    log: str
    stats: dict
    items: list[dict]
    export_dir: Path

    def stat(self, key: str, default=0):
        return self.stats.get(key, default)


def run_crawl(spider: str, base_url: str, export_dir: Path, args: dict | None = None,
              settings: dict | None = None, timeout: float = 300, extra: tuple[str, ...] = (),
              command: tuple[str, ...] | None = None) -> Crawl:
    """``scrapy crawl`` against ``base_url`` (or ``scrapy <command...>``, e.g. ``("reparse", "--id", "7")``);
    returns its items (this run's JSONL) and stats."""
    export_dir = Path(export_dir)
    export_dir.mkdir(parents=True, exist_ok=True)
    stats_file = export_dir / f"stats-{spider}-{len(list(export_dir.glob('stats-*')))}.json"
    before = set((export_dir / "jsonl").glob("*.jsonl")) if (export_dir / "jsonl").exists() else set()
    command = [sys.executable, "-m", "scrapy", *(command or ("crawl", spider))]
    for key, value in (args or {}).items():
        command += ["-a", f"{key}={value}"]
    merged = {**FAST_SETTINGS, "WOSHIPM_BASE_URL": base_url, "WOSHIPM_EXPORT_DIR": str(export_dir),
              "WOSHIPM_STATS_FILE": str(stats_file), **(settings or {})}
    for key, value in merged.items():
        command += ["-s", f"{key}={value}"]
    command += list(extra)
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": SETTINGS_MODULE}
    done = subprocess.run(command, cwd=export_dir, capture_output=True, text=True, timeout=timeout, env=env)
    stats = json.loads(stats_file.read_text(encoding="utf-8")) if stats_file.exists() else {}
    new_files = sorted(set((export_dir / "jsonl").glob("*.jsonl")) - before) if (export_dir / "jsonl").exists() else []
    items = [json.loads(line) for path in new_files for line in path.read_text(encoding="utf-8").splitlines()]
    return Crawl(done.returncode, done.stderr + done.stdout, stats, items, export_dir)


# A fresh interpreter whose only child is `scrapy crawl`: RUSAGE_CHILDREN's ru_maxrss is then that
# crawl's peak RSS, nothing else's (Linux carries ru_maxrss across execve, so not the caller's child).
_MEASURED_CRAWL = """
import json, resource, sys
from pathlib import Path
from woshipm_replica.crawls import run_crawl
base, out, settings = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
crawl = run_crawl("category", base, out, {"category": "all"}, settings=settings)
print(json.dumps({"returncode": crawl.returncode, "log": crawl.log, "stats": crawl.stats,
                  "ids": [item["id"] for item in crawl.items],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def measured_crawl(base_url: str, export_dir: Path, settings: dict | None = None, timeout: float = 300) -> dict:
    """``scrapy crawl category -a category=all`` and its peak RSS: a dict of ``returncode``, ``log``,
    ``stats``, the ``ids`` it wrote and ``peak_rss_mb``."""
    command = [sys.executable, "-c", _MEASURED_CRAWL, base_url, str(export_dir), json.dumps(settings or {})]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)
    return json.loads(done.stdout)


def field_match_rates(items: list[dict], manifest: dict[int, dict], walked_listings=None,
                      fields=MANIFEST_FIELDS) -> tuple[dict[str, float], dict[str, list]]:
    """Per-field share of items equal to the manifest, and the first mismatches of each field.

    ``body_text`` is compared after white-space normalisation; ``listings`` against the manifest's
    listings that this crawl walked (``walked_listings(key) -> bool``).
    """
    matches: Counter = Counter()
    mismatches: dict[str, list] = {}
    for item in items:
        expected = manifest[item["id"]]
        for name in fields:
            want, got = expected[name], item.get(name)
            if name == "body_text":
                want, got = normalize_ws(want), normalize_ws(got or "")
            if name == "listings" and walked_listings is not None:
                want = [key for key in want if walked_listings(key)]
            if want == got:
                matches[name] += 1
            else:
                mismatches.setdefault(name, []).append((item["id"], want, got))
    total = max(len(items), 1)
    return {name: matches[name] / total for name in fields}, mismatches


def print_rates(rates: dict[str, float]) -> None:
    print("per-field match rate: " + ", ".join(f"{name} {rate:.1%}" for name, rate in rates.items()))


def state_rows(export_dir: Path, sql: str) -> list[tuple]:
    """Rows of a query on a crawl's state, read while the crawl may still write it ([] until it exists)."""
    try:
        with sqlite3.connect(f"file:{Path(export_dir) / 'state.sqlite3'}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.Error:
        return []


def stored_articles(export_dir: Path) -> int:
    """How many articles a crawl's state holds so far."""
    rows = state_rows(export_dir, "SELECT COUNT(*) FROM articles")
    return rows[0][0] if rows else 0
