"""``RenderMiddleware``: plain HTTP by default, the browser for a page that needs it, once.

A page may come back as a JS shell (an empty ``<div id="app">`` plus inline state that a script
turns into the DOM) or as a JS check (a Cloudflare-like "Just a moment..." page that sets a
``cf_clearance`` cookie and reloads). A browser costs about ten times a plain request, so:

* ``WOSHIPM_RENDER=auto`` (default): each article or listing response is parsed once and classified
  (``parse.page.classify``); a JS shell or check page is fetched again through Chromium, once
  (``meta["playwright"] = True``, plus a page method waiting for the content).
* ``always``: article requests go straight to the browser (listings still try plain HTTP first).
* ``never``: such pages are handed to the spider marked with a failure reason.

Requests say what they fetch in ``meta[woshipm_crawler.handoff.META_KIND]``: ``"article"`` or
``"listing"``; nothing else is looked at. A listing counts as fixed when the rendered page shows
article cards, an article when it shows ``div.article--content`` with text. A page that still lacks
them reaches the spider with ``meta.render_failure(response)`` set, so that the spider counts a
failure instead of reading, say, the end of a listing.

The page the middleware parsed travels on in ``meta`` (``meta.take_page``): the spider parses no page
a second time.

Stats: render/shell and render/interstitial (detected on plain responses), render/requests (sent
to the browser), render/succeeded, render/failed, render/skipped (``never``).
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import Request
from scrapy.http import Response, TextResponse
from scrapy_playwright.page import PageMethod

from woshipm_crawler.config import Config
from woshipm_crawler.handoff import (
    ARTICLE_KIND,
    LISTING_KIND,
    META_KIND,
    META_PAGE,
    META_RENDER_FAILURE,
    META_RENDER_REASON,
    META_RENDERED,
    parse_response,
)
from woshipm_crawler.parse.page import ARTICLE_CONTENT, NEEDS_BROWSER, Page, classify
from woshipm_crawler.render.chromium import ChromiumNotFound, find_chromium

logger = logging.getLogger(__name__)

RENDER_MODES = ("auto", "always", "never")
# Between RetryMiddleware (550) and HttpCompressionMiddleware (590): process_response runs from high
# numbers to low, so at 585 it sees the decompressed 503 check page before RetryMiddleware retries it
# (and before MetaRefreshMiddleware at 580 follows a refresh in it).
MIDDLEWARE_PRIORITY = 585
# What the browser waits for, per kind of request: the content the spider reads.
CONTENT_SELECTORS = {ARTICLE_KIND: ARTICLE_CONTENT, LISTING_KIND: "article.postlist-item"}
# Statuses a JS check is served with (Cloudflare: 503 classic, 403 managed, 429 rate limited).
CHALLENGE_STATUSES = frozenset({200, 403, 429, 503})


def render_mode(config: Config) -> str:
    mode = config.render
    if mode not in RENDER_MODES:
        raise ValueError(f"WOSHIPM_RENDER must be one of {', '.join(RENDER_MODES)}, not {mode!r}")
    return mode


def needs_browser(kind: str, status: int = 200) -> str | None:
    """Why a plain-HTTP response of this page kind must be fetched by a browser, or None."""
    if status not in CHALLENGE_STATUSES or kind not in NEEDS_BROWSER:
        return None
    if kind == "js_shell" and status != 200:
        return None
    return kind


async def wait_for_content(page: Any, selector: str, timeout_ms: float) -> dict[str, Any]:
    """Page method: wait for ``selector``, tolerating a timeout, then read the document status.

    A timeout is not raised so that the spider still gets the page and a precise failure reason.
    The status is that of the document finally shown: page.goto() reports the first response,
    which for a JS check is the 503 before the reload.
    """
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import TimeoutError as PlaywrightTimeoutError

    found = True
    try:
        await page.wait_for_selector(selector, timeout=timeout_ms)
    except PlaywrightTimeoutError:
        found = False
    status = None
    try:
        status = await page.evaluate(
            "() => { const e = performance.getEntriesByType('navigation')[0];"
            " return (e && e.responseStatus) || null; }"
        )
    except PlaywrightError:  # navigating at that instant; the status is only a refinement
        pass
    return {"found": found, "status": status}


def render_meta(kind: str, timeout_s: float, reason: str) -> dict[str, Any]:
    """Request meta that sends a request of this kind through the browser and waits for its content."""
    return {
        "playwright": True,
        "playwright_page_methods": [PageMethod(wait_for_content, CONTENT_SELECTORS[kind], timeout_s * 1000)],
        META_RENDERED: True,
        META_RENDER_REASON: reason,
    }


def _final_status(request: Request) -> int | None:
    for method in request.meta.get("playwright_page_methods") or ():
        if getattr(method, "method", None) is wait_for_content and isinstance(method.result, dict):
            return method.result.get("status")
    return None


def _let_spider_see(request: Request, status: int) -> None:
    """Hand a failed page to the spider: no retry (plain HTTP gets the same shell) and no
    HttpErrorMiddleware drop of a 503 check page, so the spider can report the reason."""
    request.meta["dont_retry"] = True
    allowed = list(request.meta.get("handle_httpstatus_list") or ())
    if status not in allowed:
        request.meta["handle_httpstatus_list"] = [*allowed, status]


class RenderMiddleware:
    """Downloader middleware deciding, per article or listing request, between plain HTTP and the browser."""

    def __init__(self, crawler: Any) -> None:
        settings = crawler.settings
        config = Config.from_settings(settings)
        self.mode = render_mode(config)
        self.timeout_s = config.render_timeout
        self.stats = crawler.stats
        self.chromium_missing: ChromiumNotFound | None = None
        if self.mode != "never":
            configured = settings.getdict("PLAYWRIGHT_LAUNCH_OPTIONS").get("executable_path")
            try:
                find_chromium(configured or config.chromium)
            except ChromiumNotFound as error:
                if self.mode == "always":
                    raise  # every article needs the browser: fail before crawling anything
                self.chromium_missing = error
                logger.warning("WOSHIPM_RENDER=auto but no Chromium: pages needing JS will fail: %s", error)

    @classmethod
    def from_crawler(cls, crawler: Any) -> RenderMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Any = None) -> None:
        if (self.mode == "always" and request.meta.get(META_KIND) == ARTICLE_KIND
                and not request.meta.get(META_RENDERED)):
            # In place rather than a new request: the request keeps its place in the downloader.
            request.meta.update(render_meta(ARTICLE_KIND, self.timeout_s, "always"))
            self.stats.inc_value("render/requests")
        return None

    def process_response(self, request: Request, response: Response, spider: Any = None) -> Response | Request:
        kind = request.meta.get(META_KIND)
        if kind not in CONTENT_SELECTORS or not isinstance(response, TextResponse):
            return response
        page = parse_response(response)
        if request.meta.get(META_RENDERED):
            return self._rendered_response(request, response, page, kind)
        reason = needs_browser(classify(page), response.status)
        if reason is None:
            if 200 <= response.status < 300:
                # For the callback only: an error page may be retried, and a retried request's meta
                # must stay picklable (JOBDIR disk queues); the tree is not.
                request.meta[META_PAGE] = page
            return response
        self.stats.inc_value(f"render/{'shell' if reason == 'js_shell' else reason}")
        if self.mode == "never":
            self.stats.inc_value("render/skipped")
            request.meta[META_RENDER_FAILURE] = reason
            _let_spider_see(request, response.status)
            return response
        if self.chromium_missing is not None:
            self.stats.inc_value("render/failed")
            request.meta[META_RENDER_FAILURE] = "render_error"
            raise self.chromium_missing  # to the request's errback, with the install command
        self.stats.inc_value("render/requests")
        logger.debug("Rendering %s in Chromium: plain HTTP got a %s", request.url, reason)
        meta = {key: value for key, value in request.meta.items() if key != META_PAGE}
        return request.replace(meta={**meta, **render_meta(kind, self.timeout_s, reason)}, dont_filter=True)

    def _rendered_response(self, request: Request, response: Response, page: Page, kind: str) -> Response:
        found = classify(page)
        # A page in a layout the parsers do not know: the browser did its part, the parser names it.
        if found == kind or (kind == ARTICLE_KIND and found == "layout_changed"):
            self.stats.inc_value("render/succeeded")
            request.meta[META_PAGE] = page
            if response.status != 200:
                # goto() reports the check's 503; the document shown is what the spider parses.
                response = response.replace(status=_final_status(request) or 200)
            return response
        self.stats.inc_value("render/failed")
        request.meta[META_RENDER_FAILURE] = found if found in NEEDS_BROWSER else "render_no_content"
        logger.warning("Rendered %s still lacks its content (%s)", request.url, request.meta[META_RENDER_FAILURE])
        _let_spider_see(request, response.status)
        return response

    def process_exception(self, request: Request, exception: BaseException, spider: Any = None) -> None:
        if request.meta.get(META_RENDERED) and request.meta.get(META_KIND) in CONTENT_SELECTORS:
            self.stats.inc_value("render/failed")
            request.meta[META_RENDER_FAILURE] = "render_error"
            logger.warning("Rendering %s failed: %r", request.url, exception)
        return None
