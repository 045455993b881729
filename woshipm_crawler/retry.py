"""Retries that back off: Scrapy's RetryMiddleware re-sends at once, which hammers a site that just
said 429 or 503. This one waits first — ``Retry-After`` when the server gives it, else exponential
backoff — then retries through Scrapy's own machinery (counts, stats, give-up logging).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.http import Request, Response
from scrapy.utils.response import response_status_message


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


class BackoffRetryMiddleware(RetryMiddleware):
    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.backoff_base = settings.getfloat("WOSHIPM_RETRY_BACKOFF_BASE", 1.0)
        self.backoff_max = settings.getfloat("WOSHIPM_RETRY_BACKOFF_MAX", 60.0)

    def backoff(self, request: Request, response: Response | None = None) -> float:
        retries = request.meta.get("retry_times", 0)
        asked = retry_after_seconds(response.headers.get("Retry-After")) if response is not None else None
        if asked is not None:
            return min(asked, self.backoff_max)
        return min(self.backoff_base * (2**retries), self.backoff_max)

    async def process_response(self, request: Request, response: Response):
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        retry = self._retry(request, response_status_message(response.status))
        if retry is None:
            return response
        self.crawler.stats.inc_value(f"retry/backoff/{response.status}")
        await asyncio.sleep(self.backoff(request, response))
        return retry

    async def process_exception(self, request: Request, exception: Exception):
        retry = super().process_exception(request, exception)
        if retry is not None:
            await asyncio.sleep(self.backoff(request))
        return retry
