"""The owner of a run's state store: a Scrapy extension, found with ``crawler.get_extension(StateOwner)``.

It opens the store on first use (and begins the run), holds the run's job id, runs recovery (the
pending outputs of runs that are gone), beats while the run lives, and closes the store when the
engine has stopped, so no component depends on the order pipelines or extensions open or close in.

A state that cannot be used (corrupt, read-only, of a newer schema) is one ERROR line when the run
opens, and the crawl stops there (finish reason ``state_error``); no component touches it after.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from functools import cached_property

from scrapy import signals
from scrapy.exceptions import CloseSpider
from twisted.internet import task

from woshipm_crawler.config import Config
from woshipm_crawler.state.outputs import Claimed
from woshipm_crawler.state.runs import HEARTBEAT_S
from woshipm_crawler.state.schema import StateError, state_error
from woshipm_crawler.state.store import StateStore
from woshipm_crawler.statkeys import RECOVERED_KEY, STOP_MESSAGE_KEY
from woshipm_crawler.util import COMPACT_STAMP_FORMAT, utc_stamp

logger = logging.getLogger(__name__)

STATE_ERROR_REASON = "state_error"  # the finish reason of a run whose state cannot be used


class StateOwner:
    """Opens, holds and closes the run's ``StateStore``."""

    failure: str | None = None  # why the state cannot be used (said once, when the run opened)

    def __init__(self, crawler) -> None:
        self.crawler = crawler
        self.settings = crawler.settings
        self.heartbeat = task.LoopingCall(lambda: self.store.heartbeat())
        crawler.signals.connect(self.engine_stopped, signal=signals.engine_stopped)

    @classmethod
    def from_crawler(cls, crawler) -> StateOwner:
        return cls(crawler)

    @cached_property
    def run_name(self) -> str:
        """``<spider>-<UTC start>-<Scrapyd job id or pid>``: names the run's JSONL feed (the pid keeps two
        runs started in the same second apart)."""
        spider = self.crawler.spider
        run = getattr(spider, "_job", None) or str(os.getpid())
        return f"{spider.name}-{utc_stamp(COMPACT_STAMP_FORMAT)}-{run}"

    @cached_property
    def job(self) -> str:
        """The run's id in the state: Scrapyd's job id when there is one, else ``run_name``."""
        return getattr(self.crawler.spider, "_job", None) or self.run_name

    @property
    def usable(self) -> bool:
        """False when the state could not be opened: the run is stopping, nothing is written."""
        return self.failure is None

    @cached_property
    def store(self) -> StateStore:
        """The open store; ``CloseSpider('state_error')`` for everyone if it cannot be opened."""
        if self.failure is not None:
            raise CloseSpider(STATE_ERROR_REASON)
        config = Config.from_settings(self.settings)
        path = config.state_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            store = StateStore(path, library=config.library_enabled, retry_base_s=config.article_retry_base,
                               retry_max_s=config.article_retry_max)
            try:
                store.begin_run(self.job)
            except sqlite3.Error as error:
                with contextlib.suppress(sqlite3.Error):
                    store.close()
                raise state_error(str(path), error) from error
        except (StateError, OSError) as error:
            self.failure = str(error) if isinstance(error, StateError) else str(state_error(path, error))
            logger.error("State: %s", self.failure)
            self.crawler.stats.set_value(STOP_MESSAGE_KEY, self.failure)
            raise CloseSpider(STATE_ERROR_REASON) from None
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
            self.crawler.stats.set_value(RECOVERED_KEY, len(recovered))
        return recovered

    def engine_stopped(self) -> None:
        if "store" in self.__dict__:
            if self.heartbeat.running:
                self.heartbeat.stop()
            self.store.close()  # ends the run: its claims are released
