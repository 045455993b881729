"""JavaScript rendering: plain HTTP by default, Debian's Chromium via scrapy-playwright when a page needs it.

An article page may come back as a JS shell (an empty ``<div id="app">`` plus inline state that a
script turns into the article DOM) or as a JS check (a Cloudflare-like "Just a moment..." page that
sets a ``cf_clearance`` cookie and reloads). A browser costs about ten times a plain request, so:

* ``WOSHIPM_RENDER=auto`` (default): ``RenderMiddleware`` looks at every article response as it
  comes off the wire and, when it lacks the article body but shows a shell or a check, fetches the
  URL again through the browser, once.
* ``always``: article requests go straight to the browser.
* ``never``: such pages are handed to the spider marked with a failure reason (``render_failure``).

Spiders mark article requests with ``meta[META_KIND] = ARTICLE_KIND``; nothing else is rendered.

``LazyPlaywrightDownloadHandler`` is scrapy-playwright's handler started on the first browser
request instead of at engine start, so crawls that never render start neither the Playwright
driver nor Chromium.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from parsel import Selector
from scrapy import Request
from scrapy.http import Response, TextResponse
from scrapy_playwright.handler import ScrapyPlaywrightDownloadHandler
from scrapy_playwright.page import PageMethod

logger = logging.getLogger(__name__)

# ---- meta keys and values shared with the spiders -------------------------------------------

META_KIND = "woshipm_kind"  # spiders set meta[META_KIND] = ARTICLE_KIND on article requests
ARTICLE_KIND = "article"
META_RENDERED = "woshipm_rendered"  # True on a request this module sent to the browser
META_RENDER_REASON = "woshipm_render_reason"  # why it was sent: "js_shell", "interstitial", "always"
# Set when the response handed to the spider (or the failed request seen by an errback) still
# lacks the article: "js_shell", "interstitial", "render_no_article", "render_error".
META_RENDER_FAILURE = "woshipm_render_failure"

RENDER_MODES = ("auto", "always", "never")
ARTICLE_SELECTOR = "div.article--content"
PageKind = Literal["article", "js_shell", "interstitial", "unknown"]

# ---- Chromium --------------------------------------------------------------------------------

# The real binary first: /usr/bin/chromium is Debian's shell wrapper, which also reads
# /etc/chromium.d flags we do not control.
DEBIAN_CHROMIUM_PATHS = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = (
    "--no-sandbox",  # runs as root in containers, where the sandbox cannot start
    "--disable-dev-shm-usage",  # container /dev/shm is tiny; tabs crash without this
    "--disable-background-networking",  # offline machine: otherwise a flood of refused connections
    "--disable-gpu",
    "--disable-component-update",
    "--no-first-run",
)
INSTALL_HINT = "apt-get install -y chromium"


class ChromiumNotFound(RuntimeError):
    """No usable Chromium executable; the message names the fix."""


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_chromium(configured: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """Path of the Chromium to launch: ``configured`` (setting WOSHIPM_CHROMIUM), then the
    WOSHIPM_CHROMIUM environment variable, then Debian's usual paths.

    An explicitly configured path that is not executable is an error rather than silently
    replaced, so a typo does not quietly run a different browser.
    """
    env = os.environ if env is None else env
    for source, path in (
        ("setting WOSHIPM_CHROMIUM", configured),
        ("env WOSHIPM_CHROMIUM", env.get("WOSHIPM_CHROMIUM")),
    ):
        if path:
            if _is_executable(path):
                return path
            raise ChromiumNotFound(
                f"Chromium not found at {path!r} (from {source}); fix the path or `{INSTALL_HINT}`"
            )
    for path in DEBIAN_CHROMIUM_PATHS:
        if _is_executable(path):
            return path
    raise ChromiumNotFound(
        "Chromium is needed to render JavaScript pages but none was found at "
        f"{', '.join(DEBIAN_CHROMIUM_PATHS)}. Install it with `{INSTALL_HINT}` or point setting/env "
        "WOSHIPM_CHROMIUM at a Chromium binary. (`playwright install` cannot download browsers here.)"
    )


# ---- classification --------------------------------------------------------------------------

# Cloudflare puts challenge-platform scripts on ordinary pages too, so these weak markers only
# count in pairs; the strong ones appear on the check page alone.
_TITLE_CHALLENGE_RE = re.compile(r"<title[^>]*>\s*(just a moment|attention required|请稍候)", re.I)
_STRONG_CHALLENGE_RE = re.compile(
    r"""id=["']?(challenge-running|challenge-form|challenge-stage)\b|cf_chl_opt"""
)
_WEAK_CHALLENGE_MARKERS = ("challenge-platform", "cf-chl", "cf_clearance")
_SHELL_STATE_RE = re.compile(r"__INITIAL_STATE__|__NEXT_DATA__|window\.__NUXT__")
_SHELL_MOUNT_RE = re.compile(r"""<div[^>]+id=["']?(app|root|__next|__nuxt)["'\s>]""")
_SHELL_MAX_TEXT = 200  # a mount point with less visible text than this is an empty shell


def _has_article_text(sel: Selector) -> bool:
    return any(t.strip() for t in sel.css(f"{ARTICLE_SELECTOR} ::text").getall())


def _visible_text_length(sel: Selector) -> int:
    texts = sel.xpath(
        "//body//text()[not(ancestor::script) and not(ancestor::style) and not(ancestor::noscript)]"
    )
    return sum(len(t.strip()) for t in texts.getall())


def classify_page(html: str) -> PageKind:
    """What a browser-less client sees: the article, a JS shell, a JS check, or something else."""
    sel: Selector | None = None
    if "article--content" in html:  # substring first: most pages are settled without parsing twice
        sel = Selector(text=html)
        if _has_article_text(sel):
            return "article"
    if _TITLE_CHALLENGE_RE.search(html) or _STRONG_CHALLENGE_RE.search(html):
        return "interstitial"
    if sum(marker in html for marker in _WEAK_CHALLENGE_MARKERS) >= 2:
        return "interstitial"
    if _SHELL_STATE_RE.search(html):
        return "js_shell"
    if _SHELL_MOUNT_RE.search(html):
        sel = sel or Selector(text=html)
        if _visible_text_length(sel) < _SHELL_MAX_TEXT:
            return "js_shell"
    return "unknown"


# Statuses a JS check is served with (Cloudflare: 503 classic, 403 managed, 429 rate limited).
CHALLENGE_STATUSES = frozenset({200, 403, 429, 503})


def needs_render(html: str, status: int = 200) -> Literal["js_shell", "interstitial"] | None:
    """Why a plain-HTTP article response must be fetched by a browser, or None if it need not be."""
    if status not in CHALLENGE_STATUSES:
        return None
    kind = classify_page(html)
    if kind == "interstitial":
        return "interstitial"
    if kind == "js_shell" and status == 200:
        return "js_shell"
    return None


def render_failure(response_or_request: Response | Request) -> str | None:
    """Failure reason for a parser or errback: the page still lacks the article because of this."""
    return response_or_request.meta.get(META_RENDER_FAILURE)


# ---- browser side ----------------------------------------------------------------------------

ABORTED_RESOURCE_TYPES = frozenset({"image", "font", "media"})


def _site_domain(host: str) -> str:
    return host[4:] if host.startswith("www.") else host


def abort_request(request: Any) -> bool:
    """PLAYWRIGHT_ABORT_REQUEST: drop images, fonts, media and anything not from the crawled site.

    "The crawled site" is the host of the page being rendered (its main frame), or a subdomain of
    it without ``www.``, so static.woshipm.com scripts still load for www.woshipm.com pages.
    Main-frame navigations are always allowed: they are the page itself and the check's reload.
    """
    if request.resource_type in ABORTED_RESOURCE_TYPES:
        return True
    url = urlsplit(request.url)
    if url.scheme in ("data", "blob"):
        return False
    try:
        frame = request.frame
        if request.is_navigation_request() and frame.parent_frame is None:
            return False
        page_host = urlsplit(frame.page.main_frame.url).hostname
    except Exception:  # service-worker requests have no frame; nothing on our pages needs them
        return True
    if not page_host:  # about:blank before the first commit: nothing to compare with yet
        return False
    host = url.hostname or ""
    domain = _site_domain(page_host)
    return not (host == page_host or host == domain or host.endswith("." + domain))


async def wait_for_article(page: Any, timeout_ms: float) -> dict[str, Any]:
    """Page method: wait for the article body, tolerating a timeout, then read the document status.

    A timeout is not raised so that the spider still gets the page and a precise failure reason.
    The status is that of the document finally shown: page.goto() reports the first response,
    which for a JS check is the 503 before the reload.
    """
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import TimeoutError as PlaywrightTimeoutError

    found = True
    try:
        await page.wait_for_selector(ARTICLE_SELECTOR, timeout=timeout_ms)
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


def render_meta(timeout_s: float, reason: str) -> dict[str, Any]:
    """Request meta that sends a request through the browser and waits for the article."""
    return {
        "playwright": True,
        "playwright_page_methods": [PageMethod(wait_for_article, timeout_s * 1000)],
        META_RENDERED: True,
        META_RENDER_REASON: reason,
    }


def _final_status(request: Request) -> int | None:
    for method in request.meta.get("playwright_page_methods") or ():
        if getattr(method, "method", None) is wait_for_article and isinstance(method.result, dict):
            return method.result.get("status")
    return None


class LazyPlaywrightDownloadHandler(ScrapyPlaywrightDownloadHandler):
    """scrapy-playwright's handler, started on the first browser request rather than at engine start.

    The parent (0.0.48) starts the Playwright driver (a node process) on ``engine_started`` and
    Chromium on the first browser request; here both wait for the first browser request, and the
    Chromium path is resolved then, so a crawl that never renders needs no Chromium at all.
    Plain requests go through the parent's HTTP/1.1 code unchanged.
    """

    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        self._chromium_setting: str | None = crawler.settings.get("WOSHIPM_CHROMIUM")
        self._start_lock = asyncio.Lock()
        self._started = False

    # The parent connects these to engine_started (which one depends on the Scrapy version).
    async def _maybe_launch_in_thread(self) -> None:
        return None

    def _engine_started(self) -> None:
        return None

    async def _start_once(self) -> None:
        async with self._start_lock:
            if self._started:
                return
            launch_options = self.config.launch_options
            configured = self._chromium_setting or launch_options.get("executable_path")
            launch_options["executable_path"] = find_chromium(configured)
            launch_options.setdefault("args", list(CHROMIUM_ARGS))
            await self._maybe_future_from_coro(self._launch())
            self._started = True

    async def _download_request(self, request: Request, spider: Any = None) -> Response:
        await self._start_once()
        return await super()._download_request(request, spider)


# ---- the middleware --------------------------------------------------------------------------


def is_article_request(request: Request) -> bool:
    return request.meta.get(META_KIND) == ARTICLE_KIND


def _let_spider_see(request: Request, status: int) -> None:
    """Hand a failed page to the spider: no retry (plain HTTP gets the same shell) and no
    HttpErrorMiddleware drop of a 503 check page, so the parser can report the reason."""
    request.meta["dont_retry"] = True
    allowed = list(request.meta.get("handle_httpstatus_list") or ())
    if status not in allowed:
        request.meta["handle_httpstatus_list"] = [*allowed, status]


class RenderMiddleware:
    """Downloader middleware deciding, per article request, between plain HTTP and the browser.

    Its priority must be between RetryMiddleware (550) and HttpCompressionMiddleware (590):
    process_response runs from high numbers to low, so at 585 it sees the decompressed 503 check
    page before RetryMiddleware retries it (and before MetaRefreshMiddleware at 580 follows a
    refresh in it).

    Stats: render/shell and render/interstitial (detected on plain responses), render/requests
    (sent to the browser), render/succeeded, render/failed, render/skipped (``never``).
    """

    def __init__(self, crawler: Any) -> None:
        settings = crawler.settings
        self.mode = (settings.get("WOSHIPM_RENDER") or "auto").strip().lower()
        if self.mode not in RENDER_MODES:
            raise ValueError(f"WOSHIPM_RENDER must be one of {', '.join(RENDER_MODES)}, not {self.mode!r}")
        self.timeout_s = settings.getfloat("WOSHIPM_RENDER_TIMEOUT", 20.0)
        self.stats = crawler.stats
        if self.mode != "never":
            try:
                find_chromium(settings.get("WOSHIPM_CHROMIUM"))
            except ChromiumNotFound:
                if self.mode == "always":
                    raise  # every article needs the browser: fail before crawling anything
                logger.warning(
                    "WOSHIPM_RENDER=auto but no Chromium: pages needing JS will fail", exc_info=True
                )

    @classmethod
    def from_crawler(cls, crawler: Any) -> RenderMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Any = None) -> None:
        if self.mode == "always" and is_article_request(request) and not request.meta.get(META_RENDERED):
            # In place rather than a new request: the request keeps its place in the downloader.
            request.meta.update(render_meta(self.timeout_s, "always"))
            self.stats.inc_value("render/requests")
        return None

    def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Response | Request:
        if not is_article_request(request) or not isinstance(response, TextResponse):
            return response
        if request.meta.get(META_RENDERED):
            return self._rendered_response(request, response)
        reason = needs_render(response.text, response.status)
        if reason is None:
            return response
        self.stats.inc_value(f"render/{'shell' if reason == 'js_shell' else reason}")
        if self.mode == "never":
            self.stats.inc_value("render/skipped")
            request.meta[META_RENDER_FAILURE] = reason
            _let_spider_see(request, response.status)
            return response
        self.stats.inc_value("render/requests")
        logger.debug("Rendering %s in Chromium: plain HTTP got a %s", request.url, reason)
        return request.replace(meta={**request.meta, **render_meta(self.timeout_s, reason)}, dont_filter=True)

    def _rendered_response(self, request: Request, response: Response) -> Response:
        kind = classify_page(response.text)
        if kind == "article":
            self.stats.inc_value("render/succeeded")
            if response.status != 200:
                # goto() reports the check's 503; the document shown is what the spider parses.
                response = response.replace(status=_final_status(request) or 200)
            return response
        self.stats.inc_value("render/failed")
        request.meta[META_RENDER_FAILURE] = (
            kind if kind in ("js_shell", "interstitial") else "render_no_article"
        )
        logger.warning(
            "Rendered %s still lacks the article (%s)", request.url, request.meta[META_RENDER_FAILURE]
        )
        _let_spider_see(request, response.status)
        return response

    def process_exception(self, request: Request, exception: BaseException, spider: Any = None) -> None:
        if request.meta.get(META_RENDERED) and is_article_request(request):
            self.stats.inc_value("render/failed")
            request.meta[META_RENDER_FAILURE] = "render_error"
            logger.warning("Rendering %s failed: %r", request.url, exception)
        return None


# What a crawl that renders needs, besides the middleware entry; settings.py is their one home.
RENDER_SETTINGS = (
    "TWISTED_REACTOR", "DOWNLOAD_HANDLERS", "PLAYWRIGHT_BROWSER_TYPE", "PLAYWRIGHT_LAUNCH_OPTIONS",
    "PLAYWRIGHT_ABORT_REQUEST", "PLAYWRIGHT_MAX_CONTEXTS", "PLAYWRIGHT_MAX_PAGES_PER_CONTEXT",
    "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT", "WOSHIPM_RENDER", "WOSHIPM_RENDER_TIMEOUT",
)


def scrapy_settings() -> dict[str, Any]:
    """This module's settings from the project's settings module, for spiders run outside the project."""
    from woshipm_crawler import settings as project

    chosen = {name: copy.deepcopy(getattr(project, name)) for name in RENDER_SETTINGS}
    middleware = f"{__name__}.RenderMiddleware"
    chosen["DOWNLOADER_MIDDLEWARES"] = {middleware: project.DOWNLOADER_MIDDLEWARES[middleware]}
    return chosen
