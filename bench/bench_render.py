"""Throughput and memory of rendering article pages through the configured scrapy-playwright handler.

    python bench/bench_render.py                 # 100 and 500 pages (default)
    python bench/bench_render.py --pages 50 200  # other sizes

A local server (this process) serves N JS-shell article pages; each size is crawled in a fresh
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
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from a checkout, package not installed

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>bench</title></head>
<body><div id="app"></div><img src="/cover-{n}.jpg">
<script type="application/json" id="__INITIAL_STATE__">{{"title": "Article {n}",
 "paragraphs": {paragraphs}}}</script>
<script>
  const state = JSON.parse(document.getElementById("__INITIAL_STATE__").textContent);
  const wrapper = document.createElement("div");
  wrapper.className = "article--wrapper";
  const content = document.createElement("div");
  content.className = "article--content";
  for (const text of state.paragraphs) {{
    const p = document.createElement("p");
    p.textContent = text;
    content.appendChild(p);
  }}
  wrapper.appendChild(content);
  document.getElementById("app").appendChild(wrapper);
</script></body></html>"""

# Roughly a real article's size: ~40 paragraphs of Chinese text.
PARAGRAPHS = json.dumps(
    ["产品经理需要理解用户的真实需求，而不是表面的功能请求。" * 4] * 40, ensure_ascii=False
)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        name = self.path.rsplit("/", 1)[-1]
        body = PAGE.format(n=name, paragraphs=PARAGRAPHS).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def crawl(base: str, pages: int, mode: str, stats_path: str, max_pages: int) -> None:
    """Child side: crawl `pages` article URLs with the render settings and dump the stats."""
    import scrapy
    from scrapy.crawler import CrawlerProcess

    from woshipm_crawler import render

    class BenchSpider(scrapy.Spider):
        name = "bench_render"

        async def start(self):
            for n in range(pages):
                yield scrapy.Request(f"{base}/a/{n}.html", meta={render.META_KIND: render.ARTICLE_KIND})

        def parse(self, response):
            if not response.css("div.article--content p"):
                self.crawler.stats.inc_value("bench/no_article")

    process = CrawlerProcess(
        {
            **render.scrapy_settings(),
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


def measure(base: str, pages: int, mode: str, max_pages: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        stats_path = os.path.join(tmp, "stats.json")
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        started = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", base, str(pages), mode, stats_path, str(max_pages)],
            cwd=tmp,
            env=env,
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
        base, pages, mode, stats_path, max_pages = sys.argv[2:7]
        crawl(base, int(pages), mode, stats_path, int(max_pages))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--modes", nargs="+", default=["always", "never"], choices=["always", "never"])
    parser.add_argument("--max-pages", type=int, help="PLAYWRIGHT_MAX_PAGES_PER_CONTEXT (default: render's)")
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    from woshipm_crawler import render

    settings = render.scrapy_settings()
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
            r = measure(base, pages, mode, max_pages)
            print(
                f"{r['mode']:<7} {r['pages']:>5}  {r['crawled']:>7}  {r['no_article']:>10}  "
                f"{r['pages_per_min']:>9.0f}  {r['crawl_s']:>7.1f}  {r['peak_rss_mb']:>11.0f}  "
                f"{r['peak_pss_mb']:>11.0f}  {r['peak_processes']:>5}  {r['max_pages_open']:>8}",
                flush=True,
            )
    server.shutdown()


if __name__ == "__main__":
    main()
