"""Item pipelines, one job each, in ITEM_PIPELINES order:

ValidatePipeline  an item without a required field is dropped and counted (never written half-filled)
StatePipeline     the SQLite state: new or changed articles go on, unchanged ones stop here
MarkdownPipeline  body_html -> body_markdown
LibraryPipeline   the Markdown library on disk
JsonlPipeline     the run's JSONL feed (what this run added or changed), then marks the item exported
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path

from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem, NotConfigured

from woshipm_crawler.items import ARTICLE_FIELDS, REQUIRED_FIELDS
from woshipm_crawler.markdown import to_markdown

logger = logging.getLogger(__name__)


def export_dir(settings) -> Path:
    return Path(settings.get("WOSHIPM_EXPORT_DIR") or "exports")


def item_json(item) -> str:
    """One JSONL line: keys in ARTICLE_FIELDS order, UTF-8 text as is (no \\u escapes)."""
    data = ItemAdapter(item).asdict()
    ordered = {key: data[key] for key in ARTICLE_FIELDS if key in data}
    return json.dumps(ordered, ensure_ascii=False, separators=(",", ":"))


class _Pipeline:
    @classmethod
    def from_crawler(cls, crawler):
        pipeline = cls(crawler.settings)
        pipeline.crawler = crawler
        return pipeline

    def __init__(self, settings) -> None:
        self.settings = settings


class ValidatePipeline(_Pipeline):
    def process_item(self, item):
        adapter = ItemAdapter(item)
        missing = [name for name in REQUIRED_FIELDS if not adapter.get(name)]
        if missing:
            self.crawler.stats.inc_value("woshipm/failed/missing_field")
            raise DropItem(f"{adapter.get('url')}: missing {', '.join(missing)}")
        return item


class MarkdownPipeline(_Pipeline):
    def process_item(self, item):
        adapter = ItemAdapter(item)
        adapter["body_markdown"] = to_markdown(adapter["body_html"], adapter["url"])
        return item


class LibraryPipeline(_Pipeline):
    def __init__(self, settings) -> None:
        if not settings.getbool("WOSHIPM_MARKDOWN_ENABLED", True):
            raise NotConfigured("WOSHIPM_MARKDOWN_ENABLED is off")
        from woshipm_crawler.library import LIBRARY_SUBDIR, MarkdownLibrary

        super().__init__(settings)
        self.library = MarkdownLibrary(export_dir(settings) / LIBRARY_SUBDIR)
        self.changed = 0

    def process_item(self, item):
        adapter = ItemAdapter(item)
        try:
            if self.library.write(adapter.asdict()):
                self.changed += 1
                self.crawler.stats.inc_value("woshipm/markdown_written")
        except (OSError, ValueError) as error:
            self.crawler.stats.inc_value("woshipm/failed/markdown")
            logger.error("Markdown library: %s not written: %s", adapter.get("url"), error)
        return item

    def close_spider(self):
        if self.changed or not (self.library.root / "SUMMARY.md").exists():
            self.library.rebuild_indexes()


class JsonlPipeline(_Pipeline):
    """Appends each item as one line with a single write() on an O_APPEND descriptor.

    A process killed at any moment leaves whole lines only: the kernel finishes a write() it has
    started, and Python's buffering (which could split a line) is not involved.
    """

    def __init__(self, settings) -> None:
        if not settings.getbool("WOSHIPM_JSONL_ENABLED", True):
            raise NotConfigured("WOSHIPM_JSONL_ENABLED is off")
        super().__init__(settings)
        self.fd: int | None = None
        self.path: Path | None = None

    def open_spider(self):
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.path = export_dir(self.settings) / "jsonl" / f"{self.crawler.spider.name}-{stamp}.jsonl"

    def process_item(self, item):
        if self.fd is None:  # no file for a run that adds nothing
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(self.fd, (item_json(item) + "\n").encode("utf-8"))
        self.crawler.stats.inc_value("woshipm/jsonl_written")
        return item

    def close_spider(self):
        if self.fd is not None:
            os.fsync(self.fd)
            os.close(self.fd)
            logger.info("JSONL feed: %s", self.path)
        else:
            logger.info("JSONL feed: nothing new or changed in this run, no file written")
