"""The alternative a user would write in an hour: walk the category listings, run trafilatura on
every article page, write JSONL. bench_crawl.py measures our crawl's throughput against it.

    scrapy runspider bench/trafilatura_spider.py -a base=http://127.0.0.1:8000 -O articles.jsonl

Plain Scrapy (run outside the project: none of our settings, middlewares or pipelines), the
categories copied from the site, listing pages followed until one has no cards or answers 404,
every card link followed (Scrapy's duplicate filter fetches each article once), and
``trafilatura.extract(html, output_format="markdown")`` on each article. ``stats_path`` (optional)
receives the run's stats as JSON.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import scrapy
import trafilatura

CATEGORIES = ("pmd", "pd", "ucd", "operate", "rp", "evaluating", "it", "zhichang", "chuangye", "ai",
              "blockchain", "marketing", "data-analysis", "user-research")
ARTICLE_RE = re.compile(r"/[a-z-]+/(\d+)\.html$")


class TrafilaturaSpider(scrapy.Spider):
    name = "trafilatura"
    custom_settings = {"FEED_EXPORT_ENCODING": "utf-8"}

    def __init__(self, base: str = "https://www.woshipm.com", stats_path: str = "", **kwargs):
        super().__init__(**kwargs)
        self.base = base.rstrip("/")
        self.stats_path = stats_path

    async def start(self):
        for slug in CATEGORIES:
            yield scrapy.Request(f"{self.base}/category/{slug}", self.parse_listing,
                                 cb_kwargs={"slug": slug, "page": 1})

    def parse_listing(self, response, slug: str, page: int):
        links = response.css("article.postlist-item h2.post-title a::attr(href)").getall()
        if not links:
            return
        for href in links:
            if ARTICLE_RE.search(href):
                yield response.follow(href, self.parse_article)
        yield scrapy.Request(f"{self.base}/category/{slug}/page/{page + 1}", self.parse_listing,
                             cb_kwargs={"slug": slug, "page": page + 1})

    def parse_article(self, response):
        yield {
            "id": int(ARTICLE_RE.search(response.url).group(1)),
            "url": response.url,
            "title": (response.css("h2.article--title::text").get() or "").strip(),
            "markdown": trafilatura.extract(response.text, output_format="markdown", url=response.url),
        }

    def closed(self, reason):
        if self.stats_path:
            stats = self.crawler.stats.get_stats()
            # Scrapy sets elapsed_time_seconds after this runs: the same span, from its start_time.
            stats["elapsed_time_seconds"] = (datetime.now(timezone.utc) - stats["start_time"]).total_seconds()
            with open(self.stats_path, "w", encoding="utf-8") as handle:
                json.dump(stats, handle, default=str)
