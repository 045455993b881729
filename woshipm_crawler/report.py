"""What a run did, told twice: a live progress line on a terminal, and one summary block at the end.

The summary block is plain log lines starting with ``woshipm summary:`` so an operator can grep a
Scrapyd job log for it; a run that failed says ``FAILED`` there and logs an ERROR line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from itemadapter import ItemAdapter
from scrapy import signals
from twisted.internet import task

from woshipm_crawler.items import ARTICLE_FIELDS

logger = logging.getLogger(__name__)

SUMMARY_PREFIX = "woshipm summary:"
# Finish reasons that mean the run did its job.
GOOD_FINISH_REASONS = ("finished",)


def has_value(value) -> bool:
    return value not in (None, "", [], {})


class CrawlReport:
    def __init__(self, crawler, progress: bool) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.coverage = dict.fromkeys(ARTICLE_FIELDS, 0)
        self.items = 0
        self.started = time.monotonic()
        self.progress_loop = task.LoopingCall(self.print_progress) if progress else None

    @classmethod
    def from_crawler(cls, crawler):
        progress = crawler.settings.getbool("WOSHIPM_PROGRESS", sys.stderr.isatty())
        report = cls(crawler, progress)
        crawler.signals.connect(report.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(report.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(report.spider_closed, signal=signals.spider_closed)
        return report

    def spider_opened(self, spider):
        if self.progress_loop is not None:
            self.progress_loop.start(1.0, now=False)

    def item_scraped(self, item, spider):
        self.items += 1
        adapter = ItemAdapter(item)
        for name in ARTICLE_FIELDS:
            if has_value(adapter.get(name)):
                self.coverage[name] += 1

    def failures(self) -> dict[str, int]:
        prefix = "woshipm/failed/"
        return {k[len(prefix):]: v for k, v in sorted(self.stats.get_stats().items()) if k.startswith(prefix)}

    def progress_text(self) -> str:
        get = self.stats.get_value
        elapsed = max(time.monotonic() - self.started, 1e-6)
        done = (get("woshipm/articles_parsed") or 0) + sum(
            v for k, v in self.failures().items() if k != "listing"
        )
        return (
            f"listing pages {get('woshipm/listing_pages') or 0} | articles {done}/"
            f"{get('woshipm/articles_discovered') or 0} | {done / elapsed:.1f}/s | "
            f"written {self.items} | failures {sum(self.failures().values())}"
        )

    def print_progress(self):
        sys.stderr.write("\r\x1b[2K" + self.progress_text())
        sys.stderr.flush()

    def spider_closed(self, spider, reason):
        if self.progress_loop is not None:
            if self.progress_loop.running:
                self.progress_loop.stop()
            self.print_progress()  # the final figures stay on screen
            sys.stderr.write("\n")
        get = self.stats.get_value
        failures = self.failures()
        verdict = "ok" if reason in GOOD_FINISH_REASONS else "FAILED"
        lines = [
            f"{verdict} (finish reason: {reason})",
            f"articles written: {self.items}",
            f"listing pages walked: {get('woshipm/listing_pages') or 0}, "
            f"articles discovered: {get('woshipm/articles_discovered') or 0}",
            f"in several listings, fetched once: {get('woshipm/articles_cross_listed') or 0}",
            f"unchanged since the last run, skipped: {get('woshipm/skipped_unchanged') or 0}",
            "failures: " + (", ".join(f"{k} {v}" for k, v in failures.items()) or "none"),
            "field coverage: " + ", ".join(f"{name} {count}/{self.items}" for name, count in self.coverage.items()),
        ]
        for line in lines:
            logger.info("%s %s", SUMMARY_PREFIX, line)
        stats_file = self.crawler.settings.get("WOSHIPM_STATS_FILE")
        if stats_file:  # for schedulers and tests: the run's stats as JSON, written whole
            data = {**self.stats.get_stats(), "finish_reason": reason,
                    "woshipm/field_coverage": self.coverage}
            tmp = Path(f"{stats_file}.tmp")
            tmp.write_text(json.dumps(data, default=str, ensure_ascii=False, indent=1), encoding="utf-8")
            os.replace(tmp, stats_file)
        if verdict == "FAILED":
            detail = get("woshipm/argument_error") or reason
            logger.error("%s run FAILED: %s", SUMMARY_PREFIX, detail)
