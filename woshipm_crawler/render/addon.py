"""``RenderAddon``: scrapy-playwright wired up at settings time, through its public settings only.

Enabled in settings.py (``ADDONS``). When Scrapy loads the settings it

* adds ``RenderMiddleware`` (downloader middleware, priority 585; see its docstring for why);
* unless ``WOSHIPM_RENDER=never``, or no Chromium is installed: makes scrapy-playwright's download
  handler serve the scheme of ``WOSHIPM_BASE_URL`` (plain requests still go through Scrapy's HTTP/1.1 code; the browser
  is launched on the first request that asks for it) and puts Debian's Chromium and the flags this
  machine needs into ``PLAYWRIGHT_LAUNCH_OPTIONS`` (``executable_path``, ``args``; either one given
  in the settings is kept);
* gives scrapy-playwright's own settings the defaults below, at add-on priority, so a value in
  settings.py or ``-s`` wins.

With ``never`` (or no Chromium) the handler is not installed, so such a crawl starts neither the
Playwright driver nor a browser.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from scrapy.settings import SETTINGS_PRIORITIES

from woshipm_crawler.config import Config
from woshipm_crawler.render.chromium import CHROMIUM_ARGS, ChromiumNotFound, find_chromium
from woshipm_crawler.render.middleware import MIDDLEWARE_PRIORITY, RenderMiddleware, render_mode

PLAYWRIGHT_HANDLER = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
PLAYWRIGHT_DEFAULTS = {
    "PLAYWRIGHT_BROWSER_TYPE": "chromium",
    # Images, fonts, media and other hosts are never fetched by the browser.
    "PLAYWRIGHT_ABORT_REQUEST": "woshipm_crawler.render.abort.abort_request",
    # A browser page costs ~10x a plain request: keep few of them open.
    "PLAYWRIGHT_MAX_CONTEXTS": 1,
    "PLAYWRIGHT_MAX_PAGES_PER_CONTEXT": 4,
    "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT": 30_000,
}
ADDON_PRIORITY = SETTINGS_PRIORITIES["addon"]


class RenderAddon:
    def update_settings(self, settings: Any) -> None:
        config = Config.from_settings(settings)
        mode = render_mode(config)
        settings.setdefault_in_component_priority_dict(
            "DOWNLOADER_MIDDLEWARES", RenderMiddleware, MIDDLEWARE_PRIORITY
        )
        for name, value in PLAYWRIGHT_DEFAULTS.items():
            settings.set(name, value, priority="addon")
        if mode == "never":
            return
        options = dict(settings.getdict("PLAYWRIGHT_LAUNCH_OPTIONS"))
        options.setdefault("headless", True)
        options.setdefault("args", list(CHROMIUM_ARGS))
        if not options.get("executable_path"):
            try:
                options["executable_path"] = find_chromium(config.chromium)
            except ChromiumNotFound:
                return  # RenderMiddleware says so and fails the pages that need a browser
        _set_keeping_priority(settings, "PLAYWRIGHT_LAUNCH_OPTIONS", options)
        # The site's scheme only: each scheme's handler starts its own Playwright driver when the
        # engine starts (a fifth of a crawl's CPU for two; docs/benchmarks.md), and a page answered
        # on another scheme is off the site anyway (``Site.owns``).
        scheme = urlsplit(config.base_url).scheme.lower() or "https"
        handlers = dict(settings.getdict("DOWNLOAD_HANDLERS"))
        handlers.setdefault(scheme, PLAYWRIGHT_HANDLER)
        _set_keeping_priority(settings, "DOWNLOAD_HANDLERS", handlers)


def _set_keeping_priority(settings: Any, name: str, value: Any) -> None:
    """Set ``name`` even over a project value (which the add-on completes rather than replaces)."""
    settings.set(name, value, priority=max(settings.getpriority(name) or 0, ADDON_PRIORITY))
