"""Retries that slow the whole site down: when the site says 429 or 503, no new request goes to it
until the wait it asked for has passed, and then the pace recovers gradually.

Scrapy's RetryMiddleware re-sends at once, and a sleep inside a middleware holds back only the one
request (the others keep going out). This middleware retries through Scrapy's public
``get_retry_request`` and paces the site through its download slots, the way AutoThrottle does:

- a 429 or 503 pauses every slot until ``Retry-After`` (or an exponential backoff when the header is
  missing) has passed: the slot's next request waits for ``lastseen`` + its delay, and ``lastseen`` is
  set to the end of the pause. Requests already in flight still finish.
- the backoff without ``Retry-After`` is ``WOSHIPM_RETRY_BACKOFF_BASE`` doubled per slow-down in a
  row (answers to requests sent before a pause count once), at most ``WOSHIPM_RETRY_BACKOFF_MAX``.
- after the pause, a *floor* under the slots' delay (half the wait, at least twice DOWNLOAD_DELAY)
  shrinks by ``WOSHIPM_BACKOFF_RECOVERY`` on each good response until it falls under
  ``DOWNLOAD_DELAY`` and is gone: the rate comes back gradually. AutoThrottle still adapts the delay
  above the floor.
- timeouts and connection errors are retried the same way, without pausing the site.

The pace is set on Scrapy's ``response_downloaded`` signal, not in ``process_response``: the downloader
sends it as an answer arrives, before it takes the next request from the slot's queue (AutoThrottle
adjusts its delays there for the same reason), whereas ``process_response`` runs after that queue
was served. A request that left after the 429 had arrived would be one inside its Retry-After.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from scrapy import signals
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import NotConfigured
from scrapy.http import Request, Response
from scrapy.utils.misc import load_object
from scrapy.utils.response import response_status_message

from woshipm_crawler.config import Config
from woshipm_crawler.statkeys import BACKOFF_PAUSED_S_KEY, BACKOFF_SLOW_DOWNS_KEY

logger = logging.getLogger(__name__)

SLOW_DOWN_STATUSES = frozenset({429, 503})
MIN_PAUSED_DELAY = 0.001  # Scrapy's downloader honours lastseen only for a slot with a delay


def retry_after_seconds(value: bytes | str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


class SiteBackoffMiddleware:
    def __init__(self, crawler) -> None:
        settings = crawler.settings
        if not settings.getbool("RETRY_ENABLED"):
            raise NotConfigured
        self.crawler = crawler
        self.retry_codes = frozenset(int(code) for code in settings.getlist("RETRY_HTTP_CODES"))
        self.max_retry_times = settings.getint("RETRY_TIMES")
        self.retry_exceptions = tuple(
            load_object(name) if isinstance(name, str) else name for name in settings.getlist("RETRY_EXCEPTIONS")
        )
        # A rate-limited request is not a broken one: it may wait longer before it is given up.
        self.max_slow_down_retries = 2 * self.max_retry_times
        config = Config.from_settings(settings)
        self.backoff_base = config.retry_backoff_base
        self.backoff_max = config.retry_backoff_max
        self.recovery = config.backoff_recovery
        self.base_delay = settings.getfloat("DOWNLOAD_DELAY")
        self.autothrottle = settings.getbool("AUTOTHROTTLE_ENABLED")
        self.floor = 0.0  # the slots' least delay while the site recovers; 0: no floor
        self.streak = 0  # slow-downs since the last good response (the backoff's exponent)
        self.paused_until = 0.0  # monotonic time the current pause ends

    @classmethod
    def from_crawler(cls, crawler):
        middleware = cls(crawler)
        crawler.signals.connect(middleware.response_downloaded, signal=signals.response_downloaded)
        return middleware

    def response_downloaded(self, response: Response, request: Request, spider=None) -> None:
        """Every answer, as it arrives (before the downloader sends its next request): the pace."""
        if request.meta.get("dont_retry"):  # e.g. a check page handed to the spider: no rate signal
            return
        if response.status in SLOW_DOWN_STATUSES:
            self.slow_down(response, retry_after_seconds(response.headers.get("Retry-After")))
        elif time.monotonic() < self.paused_until:
            self.hold()  # an answer to a request sent before the pause: the pause stays as it is
        elif response.status < 400:
            self.recover()

    # -- retries ---------------------------------------------------------------------------------

    def process_response(self, request: Request, response: Response, spider=None):
        if request.meta.get("dont_retry"):
            return response
        if response.status not in self.retry_codes:
            return response
        limit = self.max_slow_down_retries if response.status in SLOW_DOWN_STATUSES else self.max_retry_times
        retry = self.retry(request, response_status_message(response.status), limit)
        return retry if retry is not None else response

    def process_exception(self, request: Request, exception: Exception, spider=None):
        if request.meta.get("dont_retry") or not isinstance(exception, self.retry_exceptions):
            return None
        return self.retry(request, exception, self.max_retry_times)

    def retry(self, request: Request, reason, limit: int) -> Request | None:
        return get_retry_request(
            request,
            spider=self.crawler.spider,
            reason=reason,
            max_retry_times=request.meta.get("max_retry_times", limit),
        )

    # -- pace ------------------------------------------------------------------------------------

    def slow_down(self, response: Response, asked: float | None) -> None:
        """Pause every slot of the site for the wait asked for (or a backoff), and raise the floor."""
        now = time.monotonic()
        if now >= self.paused_until:  # answers to requests sent before the pause are one event
            self.streak += 1
        backoff = self.backoff_base * 2 ** (self.streak - 1)
        wait = min(asked if asked is not None else backoff, self.backoff_max)
        self.floor = min(max(self.floor, 2 * self.base_delay, wait / 2), self.backoff_max)
        stats = self.crawler.stats
        stats.inc_value(BACKOFF_SLOW_DOWNS_KEY)
        if now + wait > self.paused_until:
            stats.inc_value(BACKOFF_PAUSED_S_KEY, round(now + wait - max(self.paused_until, now), 3))
            self.paused_until = now + wait
            logger.info(
                "The site asked to slow down (HTTP %s): no request for %.1f s, then at least %.2f s "
                "between requests, easing off",
                response.status,
                wait,
                self.floor,
            )
        self.hold()

    def hold(self) -> None:
        """Keep every slot closed until the pause ends (AutoThrottle may have moved a delay since)."""
        for slot in self.crawler.engine.downloader.slots.values():
            # A slot's next request waits for lastseen + its delay (none at all with a zero delay):
            # lastseen is the pause's end.
            slot.lastseen = max(slot.lastseen, self.paused_until)
            slot.delay = max(slot.delay, self.floor, MIN_PAUSED_DELAY)

    def recover(self) -> None:
        self.streak = 0
        if not self.floor:
            return
        self.floor *= self.recovery
        if self.floor <= self.base_delay or self.floor < 0.01:
            self.floor = 0.0
        for slot in self.crawler.engine.downloader.slots.values():
            # AutoThrottle moves the delay by itself; without it the delay is DOWNLOAD_DELAY.
            slot.delay = max(slot.delay if self.autothrottle else self.base_delay, self.floor)
