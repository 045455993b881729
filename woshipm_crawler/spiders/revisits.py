"""Revisits of stored articles, when a run has nothing else left to do, and the removals they find."""

from __future__ import annotations

import logging
import math

from scrapy.exceptions import DontCloseSpider

from woshipm_crawler.statkeys import (
    REMOVALS_MARKED_KEY,
    REMOVALS_WITHHELD_KEY,
    REVISITS_DUE_LEFT_KEY,
    REVISITS_OBSERVED_BEFORE_KEY,
    REVISITS_REQUESTED_KEY,
)

logger = logging.getLogger(__name__)

# Revisits are claimed this many at a time, when the run has nothing else left to do.
REVISIT_BATCH = 100
# The fewest revisits a run may make by default, however small the archive (WOSHIPM_REVISIT_SHARE).
REVISIT_FLOOR = 100


class Revisits:
    """The revisit part of ``ListingSpider`` (it uses the spider's config, store, job, stats and requests)."""

    def spider_idle(self, spider=None):
        """New articles first; then the stored articles due (``schedule``), a batch at a time, within
        the run's revisit share; last, the removals found are decided."""
        if getattr(self, "store", None) is None:
            return  # stopped before the state was open
        if self.revisits_left is None:
            self.revisits_left = self.revisit_cap()
        batch = self.store.claim_due(self.job, min(REVISIT_BATCH, self.revisits_left))
        if batch:
            self.revisits_left -= len(batch)
            self.stats.inc_value(REVISITS_REQUESTED_KEY, len(batch))
            for article_id, url in batch:
                self.crawler.engine.crawl(self.article_request(article_id, url, revisit=True))
            raise DontCloseSpider
        left = self.store.due_count()
        if left:
            self.stats.set_value(REVISITS_DUE_LEFT_KEY, left)
        if not self.removals_decided:
            self.removals_decided = True
            self.decide_removals()

    def revisit_cap(self) -> int:
        """``-a revisit=N``, else ``WOSHIPM_REVISIT_SHARE`` of the stored articles (at least REVISIT_FLOOR)."""
        if self.revisit is not None:
            return self.revisit
        share = self.config.revisit_share
        return max(REVISIT_FLOOR, math.ceil(share * self.store.count())) if share > 0 else 0

    def removal_rule(self) -> tuple[float, int]:
        return self.config.removals_share_to_fail, self.config.removals_min_to_fail

    def decide_removals(self) -> None:
        decided = self.store.decide_removals(self.job, *self.removal_rule())
        if not decided.found:
            return
        self.stats.set_value(REMOVALS_MARKED_KEY, decided.marked)
        self.stats.set_value(REVISITS_OBSERVED_BEFORE_KEY, decided.revisits)
        if decided.withheld:
            share, _ = self.removal_rule()
            message = (f"{decided.withheld} of {decided.revisits} revisits found the article gone (over "
                       f"{share:.0%}): that looks like a site fault, not deletions; none is marked removed, "
                       "a later run revisits them to confirm")
            self.stats.set_value(REMOVALS_WITHHELD_KEY, message)
            logger.error(message)
        else:
            logger.info("Removals: %d article(s) marked removed (%d found)", decided.marked, decided.found)
