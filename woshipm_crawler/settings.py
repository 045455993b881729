"""Scrapy settings for woshipm_crawler. Each setting is commented once, here.

Project settings are prefixed ``WOSHIPM_``; every one can be overridden with ``-s NAME=value`` or,
under Scrapyd, with ``setting=NAME=value`` in ``schedule.json``.
"""

BOT_NAME = "woshipm_crawler"
SPIDER_MODULES = ["woshipm_crawler.spiders"]
NEWSPIDER_MODULE = "woshipm_crawler.spiders"
# Project commands; ``crawl`` among them exits non-zero when the run FAILED.
COMMANDS_MODULE = "woshipm_crawler.commands"

# -- the site ---------------------------------------------------------------------------------------
# Every URL derives from this base: point it at the replica (http://127.0.0.1:8000) to crawl offline.
WOSHIPM_BASE_URL = "https://www.woshipm.com"

# -- outputs ----------------------------------------------------------------------------------------
# Root of everything a crawl writes (JSONL feeds, the Markdown library, the state store). Relative
# paths are taken from the working directory; give an absolute path under Scrapyd.
WOSHIPM_EXPORT_DIR = "exports"
# Each run writes what it added or changed to <export dir>/jsonl/<spider>-<UTC time>.jsonl.
# The Markdown library under <export dir>/markdown/ (off: items still get body_markdown, no files).
# Formerly WOSHIPM_MARKDOWN_ENABLED: that name still works, with a warning (woshipm_crawler.config).
WOSHIPM_LIBRARY_ENABLED = True
# The SQLite state store; empty means <export dir>/state.sqlite3.
WOSHIPM_STATE_PATH = ""
# Incremental walking: a listing stops after this many pages in a row whose cards are all known.
WOSHIPM_KNOWN_PAGES_TO_STOP = 1
# A listing walk stops after this many pages in a row that failed even after retries; the next run
# resumes it at the first of them.
WOSHIPM_FAILED_PAGES_TO_STOP = 3
# A listing that shows no page count is not walked past this page (a listing that never ends).
WOSHIPM_MAX_LISTING_PAGES = 20000
# A failed article is tried again by a run after this many seconds, doubled per failure up to _MAX:
# hours, then days; never dropped (`-a requeue=all` or `-a requeue=REASON` makes them due now).
WOSHIPM_ARTICLE_RETRY_BASE = 3600
WOSHIPM_ARTICLE_RETRY_MAX = 7 * 86400

# "Now" for the run, an ISO time with offset (2026-03-01T09:00:00+08:00): every stamp it writes and
# the revisit schedule take it, and it runs on at the real pace. Empty: the system clock. For tests
# and replays of another day (the replica's calendar).
WOSHIPM_CLOCK = ""

# -- revisits (woshipm_crawler.schedule): stored articles fetched again at 1, 3, 7, 30, 90 and 365 days
# after publication, then about once a year, after the run's new articles. A run revisits at most
# this share of the stored articles (at least 100; -a revisit=N caps a run at N, revisit=0 turns
# revisits off): a normal day has ~0.5% due, so the cap only spreads a backlog over runs.
WOSHIPM_REVISIT_SHARE = 0.02
# A run whose revisits found more than this share of their articles gone (404, 410, redirected away),
# and at least _MIN_TO_FAIL of them, marks none removed and is FAILED: a site fault, not deletions.
WOSHIPM_REMOVALS_SHARE_TO_FAIL = 0.2
WOSHIPM_REMOVALS_MIN_TO_FAIL = 3

# -- JavaScript rendering (woshipm_crawler.render) ------------------------------------------------------
# The render add-on wires scrapy-playwright up: its download handler, Debian's Chromium and flags in
# PLAYWRIGHT_LAUNCH_OPTIONS, RenderMiddleware, and defaults for the PLAYWRIGHT_* settings (listed in
# woshipm_crawler/render/addon.py; any of them set here or with -s wins).
ADDONS = {
    "woshipm_crawler.config.RenamedSettings": -10,  # first: old setting names to new ones
    "woshipm_crawler.render.addon.RenderAddon": 0,
}
# auto: re-fetch a JS shell or anti-bot check (article or listing) through Chromium once; always:
# every article page through Chromium; never: such pages are counted failures, no browser at all.
WOSHIPM_RENDER = "auto"
# Chromium executable; empty means $WOSHIPM_CHROMIUM or the usual Debian paths.
WOSHIPM_CHROMIUM = ""
# Seconds Chromium waits for the page's content before handing the page back as a failure.
WOSHIPM_RENDER_TIMEOUT = 20

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
# Far above any woshipm page (docs/benchmarks.md, "Measurements behind settings"): a larger answer, a
# gzip bomb's inflated body included, is stopped there and is a counted failure (too_large), before
# it costs memory. Scrapy's defaults are 1 GiB and 32 MiB.
DOWNLOAD_MAXSIZE = 8 * 1024 * 1024
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024

# -- retries and backoff ----------------------------------------------------------------------------
# 429 and 5xx are retried (woshipm_crawler.retry). A 429 or 503 pauses the whole site for its
# Retry-After (or an exponential backoff from WOSHIPM_RETRY_BACKOFF_BASE, at most _MAX seconds) and
# raises a floor under the delay between requests, which shrinks by WOSHIPM_BACKOFF_RECOVERY per good
# response: the pace comes back gradually.
RETRY_ENABLED = True
RETRY_TIMES = 4
RETRY_HTTP_CODES = [429, 500, 502, 503, 504, 522, 524, 408]
WOSHIPM_RETRY_BACKOFF_BASE = 1.0
WOSHIPM_RETRY_BACKOFF_MAX = 60.0
WOSHIPM_BACKOFF_RECOVERY = 0.8
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "woshipm_crawler.retry.SiteBackoffMiddleware": 550,
    # Every article and listing response as served, into WARC files (woshipm_crawler.archive).
    "woshipm_crawler.archive.WarcArchiveMiddleware": 950,
}
# The raw pages, kept: <export dir>/archive/*.warc.gz, so a parser fix needs no refetch (scrapy
# reparse); their size on disk is in docs/benchmarks.md. Segments are closed at this size (1 GB, the
# size web archives use: one file a backup medium takes whole).
WOSHIPM_ARCHIVE_ENABLED = True
WOSHIPM_ARCHIVE_SEGMENT_MB = 1024

# -- pipeline -------------------------------------------------------------------------------------
ITEM_PIPELINES = {
    "woshipm_crawler.pipelines.ValidatePipeline": 100,
    "woshipm_crawler.pipelines.StatePipeline": 300,
    "woshipm_crawler.pipelines.LibraryPipeline": 500,
    "woshipm_crawler.pipelines.JsonlPipeline": 600,
}
EXTENSIONS = {
    "woshipm_crawler.state.owner.StateOwner": 100,
    "woshipm_crawler.summary.CrawlSummary": 500,
    "woshipm_crawler.alarms.FieldWatch": 510,
}
# Plain log lines under Scrapyd, a live progress line on a terminal; True or False forces it on or off.
WOSHIPM_PROGRESS = None
LOGSTATS_INTERVAL = 60.0
LOG_LEVEL = "INFO"
# When set, the run's stats are written there as JSON at the end (for schedulers and tests).
WOSHIPM_STATS_FILE = ""

# -- outputs made after a crawl --------------------------------------------------------------------
# scrapy export | report | book: COMMANDS_MODULE, above.
# -o articles.md (or FEEDS format "markdown"): the run's articles in the library's Markdown format.
FEED_EXPORTERS = {
    "markdown": "woshipm_crawler.outputs.feeds.MarkdownItemExporter",
    "md": "woshipm_crawler.outputs.feeds.MarkdownItemExporter",  # what -o infers from the .md extension
}

# CSS selectors of more page furniture to remove from bodies, beside the parser's own list
# (parse/article.py): a block the site added, removed at once; ``scrapy reparse`` applies it to the
# pages already fetched (the archive), with no request.
WOSHIPM_EXTRA_FURNITURE = []
# More article page layouts (each the fields of parse/article.py's ArticleLayout; with -s, a JSON
# list), tried on a page without the known one: a redesign read at once, its pages fetched while the
# parser did not know it (layout_changed) stored by ``scrapy reparse``.
WOSHIPM_ARTICLE_LAYOUTS = []

# -- coverage alarms (woshipm_crawler.alarms): notice when the site changes its pages ---------------
# Expected share of article pages having each field: every article has title, author, date, body,
# tags and a cover image; a few have no summary (no editor's lead). A field further below than
# WOSHIPM_COVERAGE_TOLERANCE makes the run FAILED, once at least WOSHIPM_COVERAGE_MIN_ARTICLES
# article pages were checked (a single odd article on a small run is no alarm).
WOSHIPM_FIELD_COVERAGE = {
    "title": 1.0, "author": 1.0, "published": 1.0, "body": 1.0, "tags": 1.0, "summary": 0.97, "cover_image": 1.0,
}
WOSHIPM_COVERAGE_TOLERANCE = 0.05
WOSHIPM_COVERAGE_MIN_ARTICLES = 30
# Only the required fields (title, author, date, body) stop a run when they collapse; a fall in any
# other field fails the run at its end. An operator who has looked at such a fall (an older era of
# the archive with fewer summaries) accepts the new level here, e.g. "summary=0.4,cover_image=0.3" or
# a dict; the run logs that it was accepted.
WOSHIPM_ACCEPT_COVERAGE = {}
# A body shorter than this is a short body; every article's body is expected longer.
WOSHIPM_MIN_BODY_CHARS = 200
# This many articles in a row that failed, whatever the reasons, stop the run at once (FAILED, the
# reasons named). Formerly WOSHIPM_LAYOUT_CHANGED_TO_STOP, which counted layout_changed pages only.
WOSHIPM_FAILURES_TO_STOP = 10
# A run in which more than this share of the articles it attempted failed is FAILED at its end
# (whatever the reasons; at least 3 failed). A run that attempted articles and read none always is.
WOSHIPM_MAX_FAILED_SHARE = 0.2

# -- per-article CPU ----------------------------------------------------------------------------
# Scrapy starts CONCURRENT_ITEMS tasks for the output of every response, however little it yields: an
# article page yields one item and a listing page about a dozen requests, all handled synchronously.
CONCURRENT_ITEMS = 16
# On by default, this parses each callback's source (ast) on every response: Scrapy's cache of the
# answer is keyed weakly by the bound method, which is gone as soon as the call returns.
WARN_ON_GENERATOR_RETURN_VALUE = False

# -- Scrapy settings we change ------------------------------------------------------------------
FEED_EXPORT_ENCODING = "utf-8"
TELNETCONSOLE_ENABLED = False
