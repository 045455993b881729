"""Throughput and memory of rendering article pages through the configured scrapy-playwright handler.

    .venv/bin/python bench/bench_render.py                 # 100 and 500 pages (default)
    .venv/bin/python bench/bench_render.py --pages 50 200  # other sizes

The replica (this process) serves its article pages as JS shells (``--faults jsshell=1``: the
article only exists once a browser has run the page's script); each size is crawled in a fresh
subprocess with WOSHIPM_RENDER=always (every page through Chromium) and, for comparison, with
WOSHIPM_RENDER=never (plain HTTP; its no_article column counts the unrendered shells). Memory is
sampled over the crawler's whole process tree (Scrapy + Playwright driver + Chromium): the RSS sum
counts shared pages once per process, so PSS (shared pages split between sharers) is printed too.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil


def crawl(url_file: str, pages: int, mode: str, stats_path: str, max_pages: int) -> None:
    """Child side: crawl `pages` article URLs with the render settings and dump the stats."""
    import scrapy
    from scrapy.crawler import CrawlerProcess

    from woshipm_crawler import handoff

    class BenchSpider(scrapy.Spider):
        name = "bench_render"

        async def start(self):
            urls = Path(url_file).read_text().split()[:pages]
            for url in urls:
                yield scrapy.Request(url, meta={handoff.META_KIND: handoff.ARTICLE_KIND})

        def parse(self, response):
            if not response.css("div.article--content p"):
                self.crawler.stats.inc_value("bench/no_article")

    process = CrawlerProcess(
        {
            "ADDONS": {"woshipm_crawler.render.addon.RenderAddon": 0},
            "WOSHIPM_RENDER": mode,
            "PLAYWRIGHT_MAX_PAGES_PER_CONTEXT": max_pages,
            "LOG_LEVEL": "WARNING",
            "ROBOTSTXT_OBEY": False,
        }
    )
    crawler = process.create_crawler(BenchSpider)
    process.crawl(crawler)
    process.start()
    Path(stats_path).write_text(json.dumps(crawler.stats.get_stats(), default=str))


def _tree_memory(root: psutil.Process) -> tuple[int, int]:
    rss = pss = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss, pss


def measure(url_file: str, pages: int, mode: str, max_pages: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        stats_path = os.path.join(tmp, "stats.json")
        started = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", url_file, str(pages), mode, stats_path, str(max_pages)],
            cwd=tmp,
        )
        root = psutil.Process(child.pid)
        peak_rss = peak_pss = peak_procs = 0
        while child.poll() is None:
            try:
                rss, pss = _tree_memory(root)
                peak_procs = max(peak_procs, 1 + len(root.children(recursive=True)))
            except psutil.NoSuchProcess:
                break
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(0.25)
        wall = time.monotonic() - started
        if child.wait() != 0:
            raise SystemExit(f"crawl of {pages} pages ({mode}) failed")
        stats = json.loads(Path(stats_path).read_text())
    crawled = stats.get("response_received_count", 0)
    elapsed = float(stats.get("elapsed_time_seconds") or wall)
    return {
        "mode": mode,
        "pages": pages,
        "crawled": crawled,
        "no_article": stats.get("bench/no_article", 0),
        "pages_per_min": crawled / elapsed * 60,
        "crawl_s": elapsed,
        "wall_s": wall,
        "peak_rss_mb": peak_rss / 2**20,
        "peak_pss_mb": peak_pss / 2**20,
        "peak_processes": peak_procs,
        "max_pages_open": stats.get("playwright/page_count/max_concurrent", 0),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        url_file, pages, mode, stats_path, max_pages = sys.argv[2:7]
        crawl(url_file, int(pages), mode, stats_path, int(max_pages))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--modes", nargs="+", default=["always", "never"], choices=["always", "never"])
    parser.add_argument("--max-pages", type=int, help="PLAYWRIGHT_MAX_PAGES_PER_CONTEXT (default: render's)")
    args = parser.parse_args()

    from woshipm_replica import ReplicaServer

    server = ReplicaServer(articles=max(args.pages), seed=1, faults="jsshell=1").start()
    url_file = Path(tempfile.mkdtemp()) / "articles.txt"
    url_file.write_text("\n".join(row["url"] for row in server.corpus.manifest(server.base_url)))

    from woshipm_crawler.render.addon import PLAYWRIGHT_DEFAULTS as settings
    max_pages = args.max_pages or settings["PLAYWRIGHT_MAX_PAGES_PER_CONTEXT"]
    print(
        f"CPUs {os.cpu_count()}; PLAYWRIGHT_MAX_CONTEXTS={settings['PLAYWRIGHT_MAX_CONTEXTS']}, "
        f"PLAYWRIGHT_MAX_PAGES_PER_CONTEXT={max_pages}, "
        "CONCURRENT_REQUESTS=16 (Scrapy default)"
    )
    header = (
        "mode    pages  crawled  no_article  pages/min  crawl_s  peak_RSS_MB  peak_PSS_MB  procs  max_open"
    )
    print(header)
    for pages in args.pages:
        for mode in args.modes:
            r = measure(str(url_file), pages, mode, max_pages)
            print(
                f"{r['mode']:<7} {r['pages']:>5}  {r['crawled']:>7}  {r['no_article']:>10}  "
                f"{r['pages_per_min']:>9.0f}  {r['crawl_s']:>7.1f}  {r['peak_rss_mb']:>11.0f}  "
                f"{r['peak_pss_mb']:>11.0f}  {r['peak_processes']:>5}  {r['max_pages_open']:>8}",
                flush=True,
            )
    server.stop()


if __name__ == "__main__":
    main()
