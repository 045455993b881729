"""Scrapy settings for woshipm_crawler. Each setting is commented once, here.

Project settings are prefixed ``WOSHIPM_``; every one can be overridden with ``-s NAME=value`` or,
under Scrapyd, with ``setting=NAME=value`` in ``schedule.json``.
"""

BOT_NAME = "woshipm_crawler"
SPIDER_MODULES = ["woshipm_crawler.spiders"]
NEWSPIDER_MODULE = "woshipm_crawler.spiders"

# -- the site ---------------------------------------------------------------------------------------
# Every URL derives from this base: point it at the replica (http://127.0.0.1:8000) to crawl offline.
WOSHIPM_BASE_URL = "https://www.woshipm.com"

# -- outputs ----------------------------------------------------------------------------------------
# Root of everything a crawl writes (JSONL feeds, the Markdown library, the state store). Relative
# paths are taken from the working directory; give an absolute path under Scrapyd.
WOSHIPM_EXPORT_DIR = "exports"
# Each run writes what it added or changed to <export dir>/jsonl/<spider>-<UTC time>.jsonl.
# The Markdown library under <export dir>/markdown/.
WOSHIPM_MARKDOWN_ENABLED = True
# The SQLite state store; empty means <export dir>/state.sqlite3.
WOSHIPM_STATE_PATH = ""
# Incremental walking: a listing stops after this many pages in a row whose cards are all known.
WOSHIPM_KNOWN_PAGES_TO_STOP = 1
# A listing walk gives up after this many pages in a row that failed even after retries.
WOSHIPM_FAILED_PAGES_TO_STOP = 3

# -- JavaScript rendering (woshipm_crawler.render) ------------------------------------------------------
# auto: re-fetch a JS shell or anti-bot check through Chromium once; always: every article page
# through Chromium; never: such pages are counted failures.
WOSHIPM_RENDER = "auto"
# Chromium executable; empty means $WOSHIPM_CHROMIUM or the usual Debian paths.
WOSHIPM_CHROMIUM = ""
# Seconds Chromium waits for div.article--content before handing the page back as a failure.
WOSHIPM_RENDER_TIMEOUT = 20
# scrapy-playwright's handler, started on the first browser request only; plain requests use HTTP/1.1.
DOWNLOAD_HANDLERS = {
    "http": "woshipm_crawler.render.LazyPlaywrightDownloadHandler",
    "https": "woshipm_crawler.render.LazyPlaywrightDownloadHandler",
}
PLAYWRIGHT_BROWSER_TYPE = "chromium"
# The executable and the flags for Debian's Chromium (no sandbox as root, no background traffic)
# are added when the browser starts: woshipm_crawler.render.CHROMIUM_ARGS. Give "args" here to replace them.
PLAYWRIGHT_LAUNCH_OPTIONS = {"headless": True}
# Images, fonts, media and other hosts are never fetched by the browser.
PLAYWRIGHT_ABORT_REQUEST = "woshipm_crawler.render.abort_request"
# A browser page costs ~10x a plain request: keep few of them open.
PLAYWRIGHT_MAX_CONTEXTS = 1
PLAYWRIGHT_MAX_PAGES_PER_CONTEXT = 4
PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT = 30_000

# -- politeness ---------------------------------------------------------------------------------
# An honest User-Agent naming the project, so the site can tell who we are.
USER_AGENT = "woshipm_crawler/0.1 (+https://github.com/woshipm-crawler; research dataset crawler)"
ROBOTSTXT_OBEY = True
# At most 4 requests in flight to the site; 1 s between requests, adapted by AutoThrottle.
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_DELAY = 1.0
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
DOWNLOAD_TIMEOUT = 30

# -- retries --------------------------------------------------------------------------------------
# 429 and 5xx are retried with exponential backoff, honouring Retry-After (woshipm_crawler.retry).
RETRY_ENABLED = True
RETRY_TIMES = 4
RETRY_HTTP_CODES = [429, 500, 502, 503, 504, 522, 524, 408]
WOSHIPM_RETRY_BACKOFF_BASE = 1.0
WOSHIPM_RETRY_BACKOFF_MAX = 60.0
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "woshipm_crawler.retry.BackoffRetryMiddleware": 550,
    # Sees a JS shell or anti-bot check (even a 503 one) before the retry middleware does.
    "woshipm_crawler.render.RenderMiddleware": 585,
}

# -- pipeline -------------------------------------------------------------------------------------
ITEM_PIPELINES = {
    "woshipm_crawler.pipelines.ValidatePipeline": 100,
    "woshipm_crawler.pipelines.MarkdownPipeline": 200,
    "woshipm_crawler.pipelines.StatePipeline": 300,
    "woshipm_crawler.pipelines.LibraryPipeline": 500,
    "woshipm_crawler.pipelines.JsonlPipeline": 600,
}
EXTENSIONS = {
    "woshipm_crawler.report.CrawlReport": 500,
}
# Plain log lines under Scrapyd; a live progress line on a terminal (WOSHIPM_PROGRESS forces it on/off).
LOGSTATS_INTERVAL = 60.0
LOG_LEVEL = "INFO"
# When set, the run's stats are written there as JSON at the end (for schedulers and tests).
WOSHIPM_STATS_FILE = ""

# -- outputs made after a crawl (issue 16) --------------------------------------------------------
# scrapy export | report | book (woshipm_crawler/commands).
COMMANDS_MODULE = "woshipm_crawler.commands"
# -o articles.md (or FEEDS format "markdown"): the run's articles in the library's Markdown format.
FEED_EXPORTERS = {
    "markdown": "woshipm_crawler.outputs.feeds.MarkdownItemExporter",
    "md": "woshipm_crawler.outputs.feeds.MarkdownItemExporter",  # what -o infers from the .md extension
}

# -- Scrapy defaults we pin ---------------------------------------------------------------------
FEED_EXPORT_ENCODING = "utf-8"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
TELNETCONSOLE_ENABLED = False
