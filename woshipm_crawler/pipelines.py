"""Item pipelines, one job each, in ITEM_PIPELINES order:

ValidatePipeline  an item without a required field is dropped and counted (never written half-filled)
MarkdownPipeline  body_html -> body_markdown
StatePipeline     the owner of the state store: each article committed in one transaction (item,
                  listings, near-duplicate group, frontier row, pending outputs); unchanged ones stop here
LibraryPipeline   the Markdown library on disk
JsonlPipeline     the run's JSONL feed: every version this run committed, written when the run ends

Every component that needs the state asks its owner, the ordinary Scrapy way:
``crawler.get_item_pipeline(StatePipeline).store``. The owner opens the store on first use and closes
it when the engine has stopped, so no component depends on the order pipelines open or close in.

Why the feed is written at the end: ``duplicate_of`` names a group's earliest-published article,
and a first crawl meets reposts before their originals (listings are newest first), so an item's
final value is known only once the run has seen everything; likewise ``listings``, which gains the
listings walked after the article was fetched. Until then the versions wait in the state as pending
outputs; a run killed before its end leaves them there, and the next run's recovery writes them
(once: it checks the JSONL files first). Every article thus lands exactly once in the state, the
library and the union of JSONL files, whatever moment a crash picks.
"""

from __future__ import annotations

import logging
import os
from functools import cached_property
from pathlib import Path

from itemadapter import ItemAdapter
from scrapy import signals
from scrapy.exceptions import DropItem, NotConfigured
from twisted.internet import task

from woshipm_crawler import dedupe
from woshipm_crawler.items import ARTICLE_FIELDS, REQUIRED_FIELDS, field_present, item_json
from woshipm_crawler.library import LIBRARY_SUBDIR, MarkdownLibrary, article_path
from woshipm_crawler.markdown import to_markdown
from woshipm_crawler.state import HEARTBEAT_S, Claimed, Pending, StateStore, jsonl_has
from woshipm_crawler.util import COMPACT_STAMP_FORMAT, utc_stamp

logger = logging.getLogger(__name__)


def export_dir(settings) -> Path:
    return Path(settings.get("WOSHIPM_EXPORT_DIR") or "exports")


def state_path(settings) -> Path:
    return Path(settings.get("WOSHIPM_STATE_PATH") or export_dir(settings) / "state.sqlite3")


class _Pipeline:
    @classmethod
    def from_crawler(cls, crawler):
        pipeline = cls(crawler.settings)
        pipeline.crawler = crawler
        return pipeline

    def __init__(self, settings) -> None:
        self.settings = settings

    @property
    def state(self) -> StatePipeline:
        return self.crawler.get_item_pipeline(StatePipeline)


class ValidatePipeline(_Pipeline):
    def process_item(self, item):
        adapter = ItemAdapter(item)
        missing = [name for name in REQUIRED_FIELDS if not adapter.get(name)]
        if missing:  # counted under its own reason, never written as if complete
            self.crawler.stats.inc_value("woshipm/failed/incomplete")
            raise DropItem(f"Failed (incomplete): {adapter.get('url')} — missing {', '.join(missing)}")
        return item


class StatePipeline(_Pipeline):
    """The owner of the run's state store, and the gate: only new or changed versions go on."""

    @classmethod
    def from_crawler(cls, crawler):
        pipeline = super().from_crawler(crawler)
        crawler.signals.connect(pipeline.engine_stopped, signal=signals.engine_stopped)
        pipeline.heartbeat = task.LoopingCall(lambda: pipeline.store.heartbeat())
        return pipeline

    @cached_property
    def job(self) -> str:
        """Scrapyd's job id when there is one, else spider, start time and pid."""
        spider = self.crawler.spider
        return getattr(spider, "_job", None) or f"{spider.name}-{utc_stamp(COMPACT_STAMP_FORMAT)}-{os.getpid()}"

    @cached_property
    def store(self) -> StateStore:
        path = state_path(self.settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        store = StateStore(path)
        store.begin_run(self.job)
        signed = store.sign_unsigned()
        if signed:
            logger.info("State: signed %d stored article(s) for near-duplicate detection", signed)
        self.heartbeat.start(HEARTBEAT_S, now=False)
        return store

    @cached_property
    def recovered(self) -> list[Claimed]:
        """Versions a previous run committed but whose outputs it did not finish: this run writes them."""
        recovered = self.store.claim_pending(self.job)
        if recovered:
            logger.warning("Recovering %d article(s) a previous run committed but did not write out", len(recovered))
            self.crawler.stats.set_value("woshipm/recovered", len(recovered))
        return recovered

    def open_spider(self):
        self.recovered  # noqa: B018 - claimed before any new version, so the count is the dead run's

    def process_item(self, item):
        adapter = ItemAdapter(item)
        signature = dedupe.signature(adapter["body_text"])
        # A shallow copy: ``asdict`` would also copy every list, value by value, for nothing.
        result = self.store.commit_item(dict(adapter), self.job, signature=signature)
        adapter["duplicate_of"] = result.duplicate_of
        adapter["listings"] = sorted(self.store.listings(adapter["id"]))
        if not result.emit:
            self.crawler.stats.inc_value("woshipm/skipped_unchanged")
            raise DropItem(f"unchanged: {adapter['url']}", log_level="DEBUG")
        self.crawler.stats.inc_value(f"woshipm/state/{result.outcome.value}")
        return item

    def close_spider(self):
        if "store" not in self.__dict__:
            return  # the run stopped before it used the state (a bad argument)
        keys = [listing.key for listing in getattr(self.crawler.spider, "listings", [])]
        stats = self.crawler.stats
        if keys:
            stats.set_value("woshipm/articles_cross_listed", self.store.cross_listed(keys))
        for state, count in self.store.frontier_counts().items():
            stats.set_value(f"woshipm/frontier/{state}", count)

    def engine_stopped(self):
        if "store" in self.__dict__:
            if self.heartbeat.running:
                self.heartbeat.stop()
            self.store.close()  # ends the run: its claims are released


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
        # The state gives each article's previous path: no scan of the library (it grows with it).
        # Files are synced once, before the run marks its versions written (JsonlPipeline).
        self.library = MarkdownLibrary(export_dir(settings) / LIBRARY_SUBDIR, find_old_copies=False, durable=False)
        self.changed = 0

    def process_item(self, item):
        adapter = ItemAdapter(item)
        try:
            self.write(dict(adapter))
        except (OSError, ValueError) as error:
            self.crawler.stats.inc_value("woshipm/failed/markdown")
            logger.error("Markdown library: %s not written: %s", adapter.get("url"), error)
        return item

    def write(self, item: dict) -> None:
        store = self.state.store
        previous = store.export_path(item["id"], "markdown")
        if self.library.write(item, previous_path=previous):
            self.changed += 1
            self.crawler.stats.inc_value("woshipm/markdown_written")
        store.set_export_path(item["id"], "markdown", str(article_path(item)))

    def open_spider(self):
        swept = self.library.sweep_temp_files()
        if swept:
            logger.warning("Markdown library: removed %d temp file(s) a killed run left behind", swept)
        # A previous run's committed-but-unwritten versions: their files may be missing or stale. They
        # are this run's pending versions until it commits its first article.
        if self.state.recovered:
            for pending in self.state.store.iter_pending(self.state.job):
                self.write(pending.item)

    def close_spider(self):
        if self.changed or self.state.recovered or not (self.library.root / "SUMMARY.md").exists():
            self.library.rebuild_indexes()


MARK_BATCH = 500  # versions marked written per transaction at the end of a run


class JsonlPipeline(_Pipeline):
    """Writes the versions this run committed to ``jsonl/<spider>-<UTC time>-<job>.jsonl`` when it ends.

    Each line goes out in a single write() on an O_APPEND descriptor: a process killed at any
    moment leaves whole lines only (the kernel finishes a write() it has started; no Python buffer
    can split a line). A version is marked exported only after its line is written.
    """

    def open_spider(self):
        stamp = utc_stamp(COMPACT_STAMP_FORMAT)
        self.dir = export_dir(self.settings) / "jsonl"
        # Scrapyd's job id (or the pid) keeps two jobs started in the same second apart.
        run = getattr(self.crawler.spider, "_job", None) or str(os.getpid())
        self.path = self.dir / f"{self.crawler.spider.name}-{stamp}-{run}.jsonl"

    def process_item(self, item):
        return item  # written at the end, from the state (see the module docstring)

    def close_spider(self):
        store, job = self.state.store, self.state.job
        recovered = {pending.key for pending in self.state.recovered}
        # A recovered version whose line a killed run did write must not get a second one.
        present = jsonl_has(sorted(self.dir.glob("*.jsonl")), recovered) if recovered else set()
        os.sync()  # the library files this run wrote reach the disk before any version is marked written
        fd, written, batch = None, 0, []
        try:
            for pending in store.iter_pending(job):
                if pending.key not in present:
                    if fd is None:
                        self.dir.mkdir(parents=True, exist_ok=True)
                        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                    os.write(fd, (item_json(pending.item) + "\n").encode("utf-8"))
                    written += 1
                    for name in ARTICLE_FIELDS:  # coverage of what is on disk, for the summary
                        if field_present(pending.item.get(name)):
                            self.crawler.stats.inc_value(f"woshipm/coverage/{name}")
                batch.append(pending)
                if len(batch) >= MARK_BATCH:
                    self.mark_written(fd, batch)
            self.mark_written(fd, batch)
        finally:
            if fd is not None:
                os.close(fd)
        self.crawler.stats.set_value("woshipm/jsonl_written", written)
        if written:
            self.crawler.stats.set_value("woshipm/jsonl_path", str(self.path))
            logger.info("JSONL feed: %d article(s) in %s", written, self.path)
        else:
            logger.info("JSONL feed: nothing new or changed in this run, no file written")

    def mark_written(self, fd: int | None, batch: list[Pending]) -> None:
        """Their lines are on disk (fsync), then the versions are marked written in one transaction."""
        if fd is not None:
            os.fsync(fd)
        self.state.store.mark_exported_many([(pending.id, pending.version) for pending in batch], self.state.job)
        batch.clear()
