"""Item pipelines, one job each, in ITEM_PIPELINES order:

ValidatePipeline  an item without a required field is dropped and counted (never written half-filled)
MarkdownPipeline  body_html -> body_markdown
StatePipeline     the SQLite state decides: new or changed articles go on, unchanged ones stop here;
                  near-duplicates get ``duplicate_of``
LibraryPipeline   the Markdown library on disk
JsonlPipeline     the run's JSONL feed: every version this run committed, written when the run ends

Why the feed is written at the end: ``duplicate_of`` names a group's earliest-published article,
and a first crawl meets reposts before their originals (listings are newest first), so an item's
final value is known only once the run has seen everything. Until then the versions wait in the
state as pending exports; a run killed before its end leaves them there, and the next run's
recovery writes them (once: it checks the JSONL files first). Every article thus lands exactly
once in the state, the library and the union of JSONL files, whatever moment a crash picks.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path

from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem, NotConfigured

from woshipm_crawler import dedupe
from woshipm_crawler.items import ARTICLE_FIELDS, REQUIRED_FIELDS
from woshipm_crawler.library import LIBRARY_SUBDIR, MarkdownLibrary, article_path
from woshipm_crawler.markdown import to_markdown
from woshipm_crawler.state import StateStore, jsonl_has

logger = logging.getLogger(__name__)


def export_dir(settings) -> Path:
    return Path(settings.get("WOSHIPM_EXPORT_DIR") or "exports")


def state_path(settings) -> Path:
    return Path(settings.get("WOSHIPM_STATE_PATH") or export_dir(settings) / "state.sqlite3")


def item_json(item) -> str:
    """One JSONL line: keys in ARTICLE_FIELDS order, UTF-8 text as is (no \\u escapes)."""
    data = ItemAdapter(item).asdict()
    ordered = {key: data[key] for key in ARTICLE_FIELDS if key in data}
    return json.dumps(ordered, ensure_ascii=False, separators=(",", ":"))


def job_name(crawler) -> str:
    """Scrapyd's job id when there is one, else spider, start time and pid."""
    spider = crawler.spider
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return getattr(spider, "_job", None) or f"{spider.name}-{stamp}-{os.getpid()}"


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


class StatePipeline(_Pipeline):
    """The state store's gate: commits each item and lets only new or changed versions through.

    It owns the run's ``StateStore`` (``crawler.woshipm_state``), which later pipelines share, and
    tells the spider which articles are known (incremental walking).
    """

    def open_spider(self):
        path = state_path(self.settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.store = StateStore(path)
        self.crawler.woshipm_state = self.store
        self.job = self.crawler.woshipm_job = job_name(self.crawler)
        self.index = dedupe.NearDuplicateIndex.load(self.store)
        self.update_duplicates(self.index.reconcile(self.store.duplicate_of_map()))
        recovered = self.crawler.woshipm_recovered = self.store.claim_pending(self.job)
        if recovered:
            logger.warning("Recovering %d article(s) a previous run committed but did not export",
                           len(recovered))
            self.crawler.stats.set_value("woshipm/recovered", len(recovered))
        self.crawler.spider.state = self.store

    def process_item(self, item):
        adapter = ItemAdapter(item)
        signature = dedupe.signature(adapter["body_text"])
        self.update_duplicates(self.index.refresh(self.store))  # what other jobs added meanwhile
        adapter["duplicate_of"] = self.index.find_original(adapter["id"], adapter["published"], signature)
        result = self.store.commit_item(adapter.asdict(), self.job, signature=signature)
        self.store.record_listings(adapter["id"], adapter["listings"])
        self.update_duplicates(self.index.add(adapter["id"], adapter["published"], signature),
                               skip=adapter["id"])
        if not result.emit:
            self.crawler.stats.inc_value("woshipm/skipped_unchanged")
            raise DropItem(f"unchanged: {adapter['url']}", log_level="DEBUG")
        self.crawler.stats.inc_value(f"woshipm/state/{result.outcome.value}")
        return item

    def update_duplicates(self, changes: dict, skip: int | None = None) -> None:
        """Re-flag stored articles whose group's original changed: a new version, exported at the end."""
        for article_id, duplicate_of in changes.items():
            if article_id != skip and self.store.is_known(article_id):
                self.store.set_duplicate_of(article_id, duplicate_of, self.job)

    def close_spider(self):
        # Listings seen this run, fetched or not: first/last seen per article.
        spider = self.crawler.spider
        for article_id, (_url, listings) in spider.discovered.items():
            if self.store.is_known(article_id):
                self.store.record_listings(article_id, listings)
        self.store.mark_walks_complete(spider.walks_completed())
        self.store.close()


class MarkdownPipeline(_Pipeline):
    def process_item(self, item):
        adapter = ItemAdapter(item)
        if not adapter.get("body_markdown"):  # the article parser converts its cleaned tree already
            adapter["body_markdown"] = to_markdown(adapter["body_html"], adapter["url"])
        return item


class LibraryPipeline(_Pipeline):
    def __init__(self, settings) -> None:
        if not settings.getbool("WOSHIPM_LIBRARY_ENABLED", True):
            raise NotConfigured("WOSHIPM_LIBRARY_ENABLED is off")
        super().__init__(settings)
        self.library = MarkdownLibrary(export_dir(settings) / LIBRARY_SUBDIR)
        self.changed = 0

    def process_item(self, item):
        adapter = ItemAdapter(item)
        try:
            self.write(adapter.asdict())
        except (OSError, ValueError) as error:
            self.crawler.stats.inc_value("woshipm/failed/markdown")
            logger.error("Markdown library: %s not written: %s", adapter.get("url"), error)
        return item

    def write(self, item: dict) -> None:
        store = self.crawler.woshipm_state
        previous = store.export_path(item["id"], "markdown")
        if self.library.write(item, previous_path=previous):
            self.changed += 1
            self.crawler.stats.inc_value("woshipm/markdown_written")
        store.set_export_path(item["id"], "markdown", str(article_path(item)))

    def open_spider(self):
        swept = self.library.sweep_temp_files()
        if swept:
            logger.warning("Markdown library: removed %d temp file(s) a killed run left behind", swept)
        # A previous run's committed-but-unexported versions: their files may be missing or stale.
        for pending in self.crawler.woshipm_recovered:
            self.write(pending.item)

    def close_spider(self):
        if self.changed or self.crawler.woshipm_recovered or not (self.library.root / "SUMMARY.md").exists():
            self.library.rebuild_indexes()


class JsonlPipeline(_Pipeline):
    """Writes the versions this run committed to ``jsonl/<spider>-<UTC time>-<job>.jsonl`` when it ends.

    Each line goes out in a single write() on an O_APPEND descriptor: a process killed at any
    moment leaves whole lines only (the kernel finishes a write() it has started; no Python buffer
    can split a line). A version is marked exported only after its line is written.
    """

    def open_spider(self):
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.dir = export_dir(self.settings) / "jsonl"
        # Scrapyd's job id (or the pid) keeps two jobs started in the same second apart.
        run = getattr(self.crawler.spider, "_job", None) or str(os.getpid())
        self.path = self.dir / f"{self.crawler.spider.name}-{stamp}-{run}.jsonl"

    def process_item(self, item):
        return item  # written at the end, from the state (see the module docstring)

    def close_spider(self):
        store, job = self.crawler.woshipm_state, self.crawler.woshipm_job
        recovered = {pending.key for pending in self.crawler.woshipm_recovered}
        # A recovered version whose line a killed run did write must not get a second one.
        present = jsonl_has(sorted(self.dir.glob("*.jsonl")), recovered) if recovered else set()
        fd, written = None, 0
        try:
            for pending in store.iter_pending(job):
                if pending.key not in present:
                    if fd is None:
                        self.dir.mkdir(parents=True, exist_ok=True)
                        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                    os.write(fd, (item_json(pending.item) + "\n").encode("utf-8"))
                    written += 1
                store.mark_exported(pending.id, pending.version, job=job)
        finally:
            if fd is not None:
                os.fsync(fd)
                os.close(fd)
        self.crawler.stats.set_value("woshipm/jsonl_written", written)
        if written:
            logger.info("JSONL feed: %d article(s) in %s", written, self.path)
        else:
            logger.info("JSONL feed: nothing new or changed in this run, no file written")
