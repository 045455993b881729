"""``scrapy reparse [--since YYYY-MM-DD] [--category SLUG,...] [--id ID,...]`` (or ``scrapy crawl reparse
-a since=...``): the articles rebuilt from the archive (woshipm_crawler.archive) with the current parser.

No request is sent: the spider's ``start`` yields items, not requests. For each article the state holds,
and each whose page failed to parse when it was fetched (a frontier row in ``failed``: a changed layout,
no body), the latest archived 200 page of its URL is parsed again, exactly as a crawl parses one
(``parse_article`` with ``WOSHIPM_EXTRA_FURNITURE`` and ``WOSHIPM_ARTICLE_LAYOUTS``), and the item goes
through the same pipelines: a changed body is a new version written to the JSONL feed and the library,
an unchanged one writes nothing. The item keeps the fetch time of its page (``crawled_at``,
``stats_observed_at``: its observation is the one already recorded) and any removal mark. A page older
than the stored version (fetched while the archive was off) is left alone, as is a page that still fails
(counted, as a crawl counts it).

``since``: pages fetched on or after that day (UTC); ``category``: article URL categories; ``id``: articles.
"""

from __future__ import annotations

import logging
import re
from datetime import date

import scrapy

from woshipm_crawler import site
from woshipm_crawler.alarms import ARTICLE_CHECKED
from woshipm_crawler.archive import archive_dir, index_responses, read_response
from woshipm_crawler.config import Config
from woshipm_crawler.parse.article import ArticlePageError, parse_article
from woshipm_crawler.parse.page import parse_page
from woshipm_crawler.spiders.arguments import ArgumentError, parse_since, run_settings
from woshipm_crawler.spiders.base import article_item
from woshipm_crawler.state.owner import StateOwner
from woshipm_crawler.statkeys import (
    FAILED_PREFIX,
    REPARSE_DAMAGED_SEGMENTS_KEY,
    REPARSE_OLDER_THAN_STORED_KEY,
    REPARSE_PAGES_KEY,
    REPARSE_PARSED_KEY,
    STOP_MESSAGE_KEY,
)

logger = logging.getLogger(__name__)

OPTIONS = ("since", "category", "id")


def _ids(value) -> set[int] | None:
    if value in (None, ""):
        return None
    try:
        return {int(part) for part in str(value).split(",") if part.strip()}
    except ValueError:
        raise ArgumentError(f"-a id={value}: expected article ids, comma-separated") from None


def _categories(value) -> set[str] | None:
    if value in (None, ""):
        return None
    names = {part.strip().lower() for part in str(value).split(",") if part.strip()}
    unknown = sorted(name for name in names if not re.fullmatch(site.CATEGORY_SLUG, name))
    if unknown:
        raise ArgumentError(f"-a category={value}: {', '.join(unknown)} is no category slug")
    return names


class ReparseSpider(scrapy.Spider):
    name = "reparse"

    def __init__(self, *args, **kwargs):
        options = {name: kwargs.pop(name, None) for name in OPTIONS}
        unknown = sorted(name for name in kwargs if not name.startswith("_"))
        super().__init__(*args, **kwargs)
        self.argument_error: str | None = None
        self.listings = []  # no walk: the summary has no listing to report
        try:
            if unknown:
                raise ArgumentError(f"-a {', '.join(unknown)}: unknown argument; valid: {', '.join(OPTIONS)}")
            self.since: date | None = parse_since(options["since"])
            self.categories = _categories(options["category"])
            self.ids = _ids(options["id"])
        except ArgumentError as error:
            self.argument_error = str(error)

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.config = Config.from_settings(crawler.settings)
        spider.archive = archive_dir(crawler.settings)
        spider.extra_furniture, spider.layouts, error = run_settings(spider.config)
        spider.argument_error = spider.argument_error or error
        return spider

    def stop(self, reason: str, message: str):
        logger.error(message)
        self.crawler.stats.set_value(STOP_MESSAGE_KEY, message)
        raise scrapy.exceptions.CloseSpider(reason)

    def wanted(self, url: str, fetched_at: str, targets) -> int | None:
        """The article id of an archived response this reparse rebuilds, or None."""
        ref = site.article_ref(url)
        if ref is None or ref[1] not in targets:
            return None
        if self.categories is not None and ref[0] not in self.categories:
            return None
        if self.ids is not None and ref[1] not in self.ids:
            return None
        if self.since is not None and fetched_at[:10] < self.since.isoformat():
            return None
        return ref[1]

    async def start(self):
        if self.argument_error:
            self.stop("bad_argument", f"Bad argument, nothing reparsed: {self.argument_error}")
        owner = self.crawler.get_extension(StateOwner)
        if owner is None:
            self.stop("no_state", "StateOwner is not in EXTENSIONS: a reparse goes through the state")
        store = owner.store
        base = site.Site(store.bind_site(self.config.base_url))
        targets = store.reparse_targets()
        stats = self.crawler.stats
        latest = {}  # article id -> the latest archived 200 page of it
        for ref in index_responses(self.archive, on_torn=self.torn):
            article_id = self.wanted(ref.url, ref.fetched_at, targets)
            if article_id is not None and ref.status == 200:
                latest[article_id] = ref
        if not latest:
            logger.warning("Reparse: no archived page under %s for the articles asked", self.archive)
        handles = {}
        try:
            for article_id, ref in sorted(latest.items(), key=lambda kv: (str(kv[1].warc), kv[1].offset)):
                crawled_at, removed_at = targets[article_id]
                if crawled_at is not None and ref.fetched_at < crawled_at:
                    stats.inc_value(REPARSE_OLDER_THAN_STORED_KEY)
                    continue
                if ref.warc not in handles:
                    for handle in handles.values():
                        handle.close()
                    handles = {ref.warc: open(ref.warc, "rb")}  # noqa: SIM115 - closed below
                try:
                    response = read_response(handles[ref.warc], ref)
                except Exception as error:  # noqa: BLE001 - a record damaged since it was indexed
                    self.torn(ref.warc, f"{type(error).__name__}: {error}")
                    continue
                stats.inc_value(REPARSE_PAGES_KEY)
                item = self.rebuild(response, base, removed_at)
                if item is not None:
                    yield item
        finally:
            for handle in handles.values():
                handle.close()

    def rebuild(self, response, base: site.Site, removed_at: str | None):
        stats = self.crawler.stats
        url = base.canonical(response.url)
        try:
            page = parse_page(response.body, content_type=response.header("Content-Type"))
            fields = parse_article(page, url, extra_furniture=self.extra_furniture, layouts=self.layouts)
        except ArticlePageError as error:
            self.crawler.signals.send_catch_log(ARTICLE_CHECKED, fields=None, error=error)
            stats.inc_value(FAILED_PREFIX + error.reason)
            logger.warning("Failed (%s): %s — %s (archived %s)", error.reason, url, error, response.fetched_at)
            return None
        self.crawler.signals.send_catch_log(ARTICLE_CHECKED, fields=fields, error=None)
        stats.inc_value(REPARSE_PARSED_KEY)
        return article_item(fields, response.fetched_at, removed_at)

    def torn(self, path, reason: str) -> None:
        self.crawler.stats.inc_value(REPARSE_DAMAGED_SEGMENTS_KEY)
        logger.warning("Archive: %s is damaged (%s): read up to its last whole record", path, reason)
