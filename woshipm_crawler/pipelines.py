"""Item pipelines, one job each, in ITEM_PIPELINES order:

ValidatePipeline  an item without a required field is dropped and counted (never written half-filled)
StatePipeline     the gate: each article committed in one transaction (item, listings, near-duplicate
                  group, frontier row, pending outputs); unchanged ones stop here
LibraryPipeline   the Markdown library on disk
JsonlPipeline     the run's JSONL feed: every version this run committed, written when the run ends

Every component that needs the state asks its owner, an extension, the ordinary Scrapy way:
``crawler.get_extension(StateOwner).store`` (woshipm_crawler.state.owner: it opens the store on first
use, holds the job id, runs recovery and closes the store when the engine has stopped).

Why the feed is written at the end: ``duplicate_of`` names a group's earliest-published article,
and a first crawl meets reposts before their originals (listings are newest first), so an item's
final value is known only once the run has seen everything; likewise ``listings``, which gains the
listings walked after the article was fetched. Until then the versions wait in the state as pending
outputs; a run killed before its end leaves them there, and the next run's recovery writes them
(once: it checks the JSONL files first). Every article thus lands exactly once in the state, the
library and the union of JSONL files, whatever moment a crash picks.

Each output has its own pending mark (``woshipm_crawler.state``: 'jsonl', 'library'), cleared only
once that output is written and synced. An output that fails (a full disk, a read-only directory)
stays pending: the run says FAILED and names it, and the next run writes it. A JSONL file whose
last line a full disk cut short is cut back to its last whole line when the next run starts.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
from collections.abc import Iterable

from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem, NotConfigured

from woshipm_crawler.config import Config
from woshipm_crawler.items import ARTICLE_FIELDS, REQUIRED_FIELDS, field_present, item_json
from woshipm_crawler.library import LIBRARY_SUBDIR, MarkdownLibrary, article_path
from woshipm_crawler.state import BadId, Pending, dedupe, emission_key
from woshipm_crawler.state.owner import StateOwner
from woshipm_crawler.statkeys import (
    ARTICLES_CROSS_LISTED_KEY,
    CLOSE_FAILURE_KEY,
    COVERAGE_PREFIX,
    FAILED_PREFIX,
    FRONTIER_PREFIX,
    GAPS_KEY,
    JSONL_PATH_KEY,
    JSONL_WRITTEN_KEY,
    MARKDOWN_WRITTEN_KEY,
    PENDING_KEY,
    PENDING_PREFIX,
    RETRY_SCHEDULE_KEY,
    SKIPPED_UNCHANGED_KEY,
    STATE_PREFIX,
)
from woshipm_crawler.summary import count_failure
from woshipm_crawler.util import write_all

logger = logging.getLogger(__name__)


class _Pipeline:
    @classmethod
    def from_crawler(cls, crawler):
        pipeline = cls(crawler.settings)
        pipeline.crawler = crawler
        return pipeline

    def __init__(self, settings) -> None:
        self.config = Config.from_settings(settings)

    @property
    def state(self) -> StateOwner:
        return self.crawler.get_extension(StateOwner)

    def close_spider(self):
        """``finish``, with an error there logged and failing the run (Scrapy would log it and carry
        on, and the summary would say ok)."""
        try:
            self.finish()
        except Exception as error:
            logger.exception("%s could not finish: %s", type(self).__name__, error)
            self.crawler.stats.set_value(CLOSE_FAILURE_KEY, f"{type(self).__name__}: {error}")

    def finish(self) -> None:
        """What the pipeline does when the spider closes."""

    @property
    def state_usable(self) -> bool:
        return self.state.usable


class ValidatePipeline(_Pipeline):
    def process_item(self, item):
        adapter = ItemAdapter(item)
        missing = [name for name in REQUIRED_FIELDS if not adapter.get(name)]
        if missing:  # counted under its own reason, never written as if complete; tried again later
            count_failure(self.crawler, "incomplete", adapter.get("url"), article=True)
            if self.state_usable:
                self.state.store.article_failed(adapter["id"], "incomplete")
            raise DropItem(f"Failed (incomplete): {adapter.get('url')} — missing {', '.join(missing)}")
        return item


class StatePipeline(_Pipeline):
    """The gate: each article committed to the run's store (``StateOwner``); only new or changed versions
    go on."""

    def open_spider(self):
        # Claimed before any new version, so the count is the dead run's. A state that cannot be
        # opened stops the crawl here (CloseSpider), before the spider asks for it.
        self.state.recovered  # noqa: B018

    def process_item(self, item):
        adapter = ItemAdapter(item)
        signature = dedupe.signature(adapter["body_text"])
        store = self.state.store
        try:
            # A shallow copy: ``asdict`` would also copy every list, value by value, for nothing.
            result = store.commit_item(dict(adapter), self.state.job, signature=signature)
        except BadId as error:
            count_failure(self.crawler, "bad_id", adapter.get("url"), article=True)
            raise DropItem(f"Failed (bad_id): {adapter.get('url')} — {error}") from None
        adapter["duplicate_of"] = result.duplicate_of
        adapter["listings"] = sorted(store.listings(adapter["id"]))
        if not result.emit:
            self.crawler.stats.inc_value(SKIPPED_UNCHANGED_KEY)
            raise DropItem(f"unchanged: {adapter['url']}", log_level="DEBUG")
        self.crawler.stats.inc_value(STATE_PREFIX + result.outcome.value)
        return item

    def finish(self):
        if "store" not in self.state.__dict__:
            return  # the run stopped before it used the state (a bad argument, an unusable state)
        store, job = self.state.store, self.state.job
        keys = [listing.key for listing in getattr(self.crawler.spider, "listings", [])]
        stats = self.crawler.stats
        if keys:
            stats.set_value(ARTICLES_CROSS_LISTED_KEY, store.cross_listed(keys))
        for state, count in store.frontier_counts().items():
            stats.set_value(FRONTIER_PREFIX + state, count)
        schedule = store.retry_schedule()
        if schedule:
            stats.set_value(RETRY_SCHEDULE_KEY, [list(row) for row in schedule])
        gaps = store.gaps()
        if gaps:
            stats.set_value(GAPS_KEY, [list(row) for row in gaps])
        # Runs after the output pipelines close (Scrapy closes pipelines in reverse order).
        owed = store.pending_outputs(job)
        for kind, (count, _) in owed.items():
            stats.set_value(PENDING_PREFIX + kind, count)
        if owed:
            stats.set_value(
                PENDING_KEY,
                "; ".join(f"{kind} {count} ({', '.join(urls)}{', …' if count > len(urls) else ''})"
                          for kind, (count, urls) in owed.items()),
            )


class LibraryPipeline(_Pipeline):
    """Each article's library file as it comes; at the end, the versions still pending (recovered from
    a gone run, re-flagged), then their library marks cleared once the files are synced."""

    def __init__(self, settings) -> None:
        super().__init__(settings)
        if not self.config.library_enabled:
            raise NotConfigured("WOSHIPM_LIBRARY_ENABLED is off")
        # The state gives each article's previous path: no scan of the library (it grows with it).
        # Files are synced once, before their marks are cleared (finish).
        self.library = MarkdownLibrary(self.config.export_dir / LIBRARY_SUBDIR, find_old_copies=False, durable=False)
        self.changed = 0
        # hash(emission key) of the files this run wrote, and of those it could not write: an int
        # per article, not the key's strings (a first crawl has them all).
        self.written: set[int] = set()
        self.failed: set[int] = set()

    def process_item(self, item):
        self.write(dict(ItemAdapter(item)))
        return item

    def write(self, item: dict) -> bool:
        """Write one article's file; a failure is counted and logged (the first one in full), and its
        library mark stays pending."""
        store = self.state.store
        try:
            previous = store.export_path(item["id"], "markdown")
            if self.library.write(item, previous_path=previous):
                self.changed += 1
                self.crawler.stats.inc_value(MARKDOWN_WRITTEN_KEY)
            store.set_export_path(item["id"], "markdown", str(article_path(item)))
        except (OSError, ValueError) as error:
            self.failed.add(hash(emission_key(item)))
            self.crawler.stats.inc_value(FAILED_PREFIX + "markdown")
            log = logger.error if len(self.failed) == 1 or isinstance(error, ValueError) else logger.debug
            log("Markdown library: %s not written under %s: %s", item.get("url"), self.library.root, error)
            return False
        self.written.add(hash(emission_key(item)))
        return True

    def open_spider(self):
        if not self.state_usable:
            return
        try:
            swept = self.library.sweep_temp_files()
        except OSError:
            swept = 0  # an unreadable library: the writes say so
        if swept:
            logger.warning("Markdown library: removed %d temp file(s) a killed run left behind", swept)

    def finish(self):
        """Write what is still pending (recovered versions, re-flags), sync, clear the library marks.
        A file that failed in this run is not tried again before the next run."""
        if not self.state_usable:
            return
        store, job = self.state.store, self.state.job
        done = [
            (pending.id, pending.version)
            for pending in store.pending_keys(job, "library")
            if hash(pending.key) in self.written
            or (hash(pending.key) not in self.failed and self.write(store.get_item(pending.id)))
        ]
        if self.failed:
            logger.error(
                "Markdown library: %d file(s) not written under %s: they stay pending for the next run",
                len(self.failed), self.library.root,
            )
        if done:
            os.sync()  # the files reach the disk before their marks are cleared
            for start in range(0, len(done), MARK_BATCH):
                store.mark_exported_many(done[start : start + MARK_BATCH], job, ("library",))
        if self.changed or self.state.recovered or not (self.library.root / "SUMMARY.md").exists():
            try:
                self.library.rebuild_indexes()
            except OSError as error:
                self.crawler.stats.inc_value(FAILED_PREFIX + "markdown_index")
                logger.error("Markdown library: indexes not rebuilt under %s: %s", self.library.root, error)


MARK_BATCH = 500  # versions marked written per transaction at the end of a run


class JsonlPipeline(_Pipeline):
    """Writes the versions this run committed to ``jsonl/<spider>-<UTC time>-<job>.jsonl`` (the owner's
    ``run_name``) when it ends.

    Each line goes out in a single write() on an O_APPEND descriptor: a process killed at any
    moment leaves whole lines only (the kernel finishes a write() it has started; no Python buffer
    can split a line). A full disk can cut a line short: the rest of the run's lines stay pending,
    the file is cut back to its last whole line at once, or, if that fails too, when the next run
    starts (``cut_torn_tails``). A version's JSONL mark is cleared only after its line is synced.
    """

    def open_spider(self):
        self.dir = self.config.export_dir / "jsonl"
        self.path = self.dir / f"{self.state.run_name}.jsonl"
        if self.state_usable and self.dir.is_dir():
            cut_torn_tails(sorted(self.dir.glob("*.jsonl")))

    def process_item(self, item):
        return item  # written at the end, from the state (see the module docstring)

    def finish(self):
        if not self.state_usable:
            return
        store, job = self.state.store, self.state.job
        recovered = {pending.key for pending in self.state.recovered}
        # A recovered version whose line a killed run did write must not get a second one.
        present = jsonl_has(sorted(self.dir.glob("*.jsonl")), recovered) if recovered else set()
        os.sync()  # the state's commits reach the disk before any line of theirs is marked written
        fd, written, unsynced, batch, whole = None, 0, 0, [], 0
        try:
            for pending in store.iter_pending(job, "jsonl"):
                if pending.key not in present:
                    if fd is None:
                        self.dir.mkdir(parents=True, exist_ok=True)
                        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                        fcntl.flock(fd, fcntl.LOCK_EX)  # no other run's start cuts this file's tail meanwhile
                    write_all(fd, (item_json(pending.item) + "\n").encode("utf-8"))
                    whole = os.lseek(fd, 0, os.SEEK_CUR)
                    written += 1
                    unsynced += 1
                    for name in ARTICLE_FIELDS:  # coverage of what is on disk, for the summary
                        if field_present(pending.item.get(name)):
                            self.crawler.stats.inc_value(COVERAGE_PREFIX + name)
                batch.append(pending)
                if len(batch) >= MARK_BATCH:
                    self.mark_written(fd, batch)
                    unsynced = 0
            self.mark_written(fd, batch)
        except OSError as error:
            self.crawler.stats.inc_value(FAILED_PREFIX + "jsonl")
            logger.error("JSONL feed: cannot write %s: %s; the run's remaining articles stay pending for the "
                         "next run", self.path if fd is not None else self.dir, error)
            if fd is not None:
                try:  # keep the whole lines written before the failure; no torn line is left behind
                    os.ftruncate(fd, whole)
                    self.mark_written(fd, batch)
                except OSError:  # they stay pending; the next run finds the lines (jsonl_has) or the torn tail
                    written -= unsynced
        finally:
            if fd is not None:
                os.close(fd)
        self.crawler.stats.set_value(JSONL_WRITTEN_KEY, written)
        if written:
            self.crawler.stats.set_value(JSONL_PATH_KEY, str(self.path))
            logger.info("JSONL feed: %d article(s) in %s", written, self.path)
        else:
            logger.info("JSONL feed: nothing new or changed in this run, no file written")

    def mark_written(self, fd: int | None, batch: list[Pending]) -> None:
        """Their lines are on disk (fsync), then the versions are marked written in one transaction."""
        if fd is not None:
            os.fsync(fd)
        self.state.store.mark_exported_many([(pending.id, pending.version) for pending in batch], self.state.job,
                                            ("jsonl",))
        batch.clear()


def jsonl_has(paths: Iterable[str | os.PathLike], keys: Iterable[tuple]) -> set[tuple]:
    """The subset of ``keys`` (``emission_key`` tuples) present in the given JSONL files.

    Lines are pre-filtered by their content_hash bytes so only candidate lines are parsed; a torn
    last line (a crash mid-write) or any undecodable line is ignored. Missing files are skipped.
    """
    wanted = set(keys)
    hashes = {k[1].encode() for k in wanted if k[1]}
    found: set[tuple] = set()
    for path in paths:
        try:
            handle = open(path, "rb")
        except FileNotFoundError:
            continue
        with handle:
            for line in handle:
                m = _HASH_RE.search(line)
                if m is None or m.group(1) not in hashes:
                    continue
                try:
                    obj = json.loads(line)
                    key = emission_key(obj)
                except (ValueError, KeyError, TypeError):
                    continue
                if key in wanted:
                    found.add(key)
                    if len(found) == len(wanted):
                        return found
    return found


_HASH_RE = re.compile(rb'"content_hash"\s*:\s*"([0-9a-f]{64})"')


def cut_torn_tails(paths, tail: int = 1 << 16) -> None:
    """Cut each JSONL file whose last line is torn (no newline at its end) back to its last whole line.
    A file a live run is writing (it holds its lock) is left alone."""
    for path in paths:
        try:
            with open(path, "rb+") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                size = handle.seek(0, os.SEEK_END)
                if not size:
                    continue
                handle.seek(size - 1)
                if handle.read(1) == b"\n":
                    continue
                keep = 0
                for start in range(size - 1, -1, -tail):  # back from the end, a chunk at a time
                    handle.seek(max(0, start - tail))
                    chunk = handle.read(start - max(0, start - tail))
                    if b"\n" in chunk:
                        keep = max(0, start - tail) + chunk.rindex(b"\n") + 1
                        break
                handle.truncate(keep)
                os.fsync(handle.fileno())
        except OSError as error:
            logger.error("JSONL feed: cannot check the end of %s: %s", path, error)
            continue
        logger.warning("JSONL feed: %s ended in a torn line (a full disk?): cut %d byte(s) back to its last "
                       "whole line; those articles are still pending and are written again", path, size - keep)
