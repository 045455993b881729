"""The baseline of bench_crawl.py: fetch a list of article URLs and do nothing with the responses.

    scrapy runspider bench/bare_spider.py -a urls_file=urls.txt -s WOSHIPM_STATS_FILE=stats.json

Run from the project root, so it gets the project's settings and therefore the same downloader
stack as our spiders (download handler, retry and render middlewares, robots.txt); bench_crawl.py
passes the same concurrency and FAST_SETTINGS. Its stats are written by the project's CrawlSummary
extension, like a real crawl's.
"""

from __future__ import annotations

from pathlib import Path

import scrapy


class BareSpider(scrapy.Spider):
    name = "bare"

    def __init__(self, urls_file: str = "", **kwargs):
        super().__init__(**kwargs)
        self.urls = Path(urls_file).read_text(encoding="utf-8").split()

    async def start(self):
        for url in self.urls:
            yield scrapy.Request(url, callback=self.parse)

    def parse(self, response):
        # Counted by Scrapy's core stats (response_received_count); nothing else to do on purpose.
        return None
