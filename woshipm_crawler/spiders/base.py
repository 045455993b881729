"""The listing walker every spider shares: walk listings page by page, then fetch each article once.

Why listings first: an article's item names every listing it was seen in (``listings``), and one
article can sit in several listings (a ``/pd/`` article under data-analysis, tags). Walking every
listing before fetching articles makes that list complete without holding items in memory; listing
pages are a twelfth of the requests. Article requests then leave ``start()`` one at a time, as the
downloader has room, so a crawl of 100,000 articles never queues 100,000 requests in memory.

With ``since`` the walk needs article dates to know where to stop (cards carry none), so articles are
fetched page by page and their items are held until the walks end — ``since`` crawls are small by
design.

Stop rules for one listing: a page with no cards or a 404 (the site has no reliable "next" link);
``max_pages``; ``limit`` articles found; in incremental mode, ``WOSHIPM_KNOWN_PAGES_TO_STOP`` pages in
a row whose cards are all known; with ``since``, a full page of articles older than ``since``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import scrapy
from scrapy import signals
from scrapy.exceptions import CloseSpider
from scrapy.http import Request, Response

from woshipm_crawler import site
from woshipm_crawler.items import ArticleItem
from woshipm_crawler.meta import ARTICLE_KIND, LISTING_KIND, META_KIND, render_failure, take_page
from woshipm_crawler.parse.article import ArticlePageError, parse_article_response
from woshipm_crawler.parse.listing import parse_listing

logger = logging.getLogger(__name__)

LISTING_PRIORITY = 10  # listing pages before articles, so discovery finishes early


class ArgumentError(ValueError):
    """A spider argument that cannot be used; the message is the one line the operator sees."""


@dataclass(frozen=True)
class Listing:
    kind: str  # "category" | "tag"
    slug: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.slug}"


@dataclass
class Walk:
    """Progress of one listing walk."""

    listing: Listing
    known_streak: int = 0
    failed_streak: int = 0
    done: bool = False
    reached_end: bool = False  # an empty page or a 404: every card of the listing was seen


@dataclass
class PageWait:
    """A listing page (``since`` mode) waiting for its articles' dates before the walk goes on."""

    walk: Walk
    page: int
    pending: set[int]
    dates: list[str | None] = field(default_factory=list)


def parse_flag(name: str, value) -> bool:
    if value is None or value is False:
        return False
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on", ""):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ArgumentError(f"-a {name}={value}: expected 1 or 0")


def parse_positive_int(name: str, value) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise ArgumentError(f"-a {name}={value}: expected a whole number of at least 1")
    return number


def parse_since(value) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ArgumentError(f"-a since={value}: expected a date as YYYY-MM-DD, e.g. since=2026-01-31") from None


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ListingSpider(scrapy.Spider):
    """Shared walker; subclasses turn their arguments into ``Listing`` objects in ``listings_from``."""

    listing_kind = ""
    argument_name = ""

    def __init__(self, *args, max_pages=None, limit=None, since=None, full=None, refresh=None, **kwargs):
        listing_arg = kwargs.pop(self.argument_name, None)
        super().__init__(*args, **kwargs)  # Scrapyd adds _job and friends: Spider keeps them as attributes
        self.argument_error: str | None = None
        try:
            self.listings = self.listings_from(listing_arg)
            self.max_pages = parse_positive_int("max_pages", max_pages)
            self.limit = parse_positive_int("limit", limit)
            self.since = parse_since(since)
            self.full = parse_flag("full", full)
            self.refresh = parse_flag("refresh", refresh)
        except ArgumentError as error:
            self.listings = []
            self.argument_error = str(error)
        self.discovered: dict[int, tuple[str, set[str]]] = {}  # id -> (canonical URL, listing keys)
        self.requested: set[int] = set()
        self.answered: set[int] = set()
        self.known_ids: set[int] = set()
        self.complete_walks: set[str] = set()
        self.walks: dict[Listing, Walk] = {}
        self.page_waits: dict[int, list[PageWait]] = {}  # article id -> pages waiting for its date
        self.article_dates: dict[int, str | None] = {}
        self.held_items: list[ArticleItem] = []
        self.discovery_done = asyncio.Event()  # every walk ended (default mode): articles may go out

    def listings_from(self, value) -> list[Listing]:
        raise NotImplementedError

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.site = site.Site(crawler.settings.get("WOSHIPM_BASE_URL") or site.DEFAULT_BASE_URL)
        spider.known_pages_to_stop = crawler.settings.getint("WOSHIPM_KNOWN_PAGES_TO_STOP", 1)
        spider.failed_pages_to_stop = crawler.settings.getint("WOSHIPM_FAILED_PAGES_TO_STOP", 3)
        return spider

    # -- start ----------------------------------------------------------------------------------
    async def start(self):
        if self.argument_error:
            logger.error("Bad argument, nothing crawled: %s", self.argument_error)
            self.crawler.stats.set_value("woshipm/argument_error", self.argument_error)
            raise CloseSpider("bad_argument")
        state = getattr(self, "state", None)  # set by StatePipeline
        if state is not None:
            if not self.refresh:  # refresh fetches known articles again
                self.known_ids = state.known_ids()
            if not (self.full or self.refresh):  # full and refresh walk every page
                self.complete_walks = state.complete_walks()
        for listing in self.listings:
            self.walks[listing] = Walk(listing)
            yield self.listing_request(listing, 1)
        if self.since is not None:
            return  # articles go out page by page from the listing callbacks
        await self.discovery_done.wait()
        for request in self.article_requests(self.to_fetch()):
            if self.crawler.engine.needs_backout():  # lazily: see Scrapy's "start-requests-lazy"
                await self.crawler.signals.wait_for(signals.scheduler_empty)
            yield request

    # -- listings --------------------------------------------------------------------------------
    def listing_url(self, listing: Listing, page: int) -> str:
        if listing.kind == "category":
            return self.site.category_url(listing.slug, page)
        return self.site.tag_url(listing.slug, page)

    def listing_request(self, listing: Listing, page: int) -> Request:
        return Request(
            self.listing_url(listing, page),
            callback=self.parse_listing_page,
            errback=self.listing_failed,
            priority=LISTING_PRIORITY,
            meta={META_KIND: LISTING_KIND, "handle_httpstatus_list": [404]},
            cb_kwargs={"listing": listing, "page": page},
        )

    def parse_listing_page(self, response: Response, listing: Listing, page: int):
        walk = self.walks[listing]
        walk.failed_streak = 0
        stats = self.crawler.stats
        stats.inc_value("woshipm/listing_pages")
        cards = [] if response.status == 404 else parse_listing(take_page(response) or response.text, response.url)
        if not cards:
            if page == 1:  # most often a misspelt tag or category: say so rather than finish empty
                logger.warning("%s has no articles (%s): check the name", listing.key, response.url)
                stats.inc_value("woshipm/empty_listings")
            logger.debug("%s ends at page %d (%s)", listing.key, page, response.status)
            walk.reached_end = True
            yield from self.end_walk(walk)
            return
        fresh: list[int] = []
        for card in cards:
            url = self.site.canonical(card.url)
            entry = self.discovered.get(card.id)
            if entry is None:
                entry = self.discovered[card.id] = (url, set())
                stats.inc_value("woshipm/articles_discovered")
            if listing.key not in entry[1] and len(entry[1]) == 1:
                stats.inc_value("woshipm/articles_cross_listed")  # seen again elsewhere: still one fetch
            entry[1].add(listing.key)
            if card.id not in self.known_ids:
                fresh.append(card.id)
        walk.known_streak = 0 if fresh else walk.known_streak + 1

        if self.since is not None:
            yield from self.fetch_page_then_decide(walk, page, [c.id for c in cards])
        elif self.walk_goes_on(walk, page):
            yield self.listing_request(listing, page + 1)
        else:
            yield from self.end_walk(walk)

    def walk_goes_on(self, walk: Walk, page: int) -> bool:
        if self.max_pages is not None and page >= self.max_pages:
            return False
        if self.limit is not None and len(self.to_fetch()) >= self.limit:
            return False
        # Known pages prove nothing older is missing only if an earlier walk reached the end.
        if walk.listing.key in self.complete_walks and walk.known_streak >= self.known_pages_to_stop:
            self.crawler.stats.inc_value("woshipm/listings_stopped_known")
            return False
        return True

    def listing_failed(self, failure):
        request = failure.request
        listing, page = request.cb_kwargs["listing"], request.cb_kwargs["page"]
        walk = self.walks[listing]
        walk.failed_streak += 1
        self.count_failure("listing", request.url, failure.getErrorMessage())
        if walk.failed_streak < self.failed_pages_to_stop and (self.max_pages is None or page < self.max_pages):
            yield self.listing_request(listing, page + 1)  # one bad page must not hide the rest
        else:
            yield from self.end_walk(walk)

    def end_walk(self, walk: Walk):
        """Close one walk; when it was the last, fetch what discovery found (or release held items)."""
        if walk.done:
            return
        walk.done = True
        if any(not w.done for w in self.walks.values()):
            return
        if self.since is None:
            self.discovery_done.set()
        else:
            yield from self.held_items
            self.held_items.clear()

    # -- articles --------------------------------------------------------------------------------
    def to_fetch(self) -> list[int]:
        ids = [i for i in self.discovered if i not in self.known_ids]
        return ids[: self.limit] if self.limit is not None else ids

    def article_requests(self, ids):
        for article_id in ids:
            if article_id in self.requested:
                continue
            self.requested.add(article_id)
            yield Request(
                self.discovered[article_id][0],
                callback=self.parse_article_page,
                errback=self.article_failed,
                meta={META_KIND: ARTICLE_KIND, "article_id": article_id},
            )

    def parse_article_page(self, response: Response):
        article_id = response.meta["article_id"]
        try:
            failure = render_failure(response)  # a shell or check the browser did not (or may not) pass
            if failure:
                raise ArticlePageError(failure, f"HTTP {response.status}")
            fields = parse_article_response(response.body, self.site.canonical(response.url), response.encoding,
                                            page=take_page(response))
        except ArticlePageError as error:
            self.count_failure(error.reason, response.url, str(error))
            yield from self.article_done(article_id, None)
            return
        listings = self.discovered.get(article_id, ("", set()))[1]
        item = ArticleItem(**fields, listings=sorted(listings), crawled_at=utc_now(), duplicate_of=None)
        self.crawler.stats.inc_value("woshipm/articles_parsed")
        self.answered.add(article_id)
        if self.since is not None:
            if (fields["published"] or "")[:10] < self.since.isoformat():
                self.crawler.stats.inc_value("woshipm/skipped_older_than_since")
            else:
                self.held_items.append(item)
            yield from self.article_done(article_id, fields["published"])
        else:
            yield item

    def article_failed(self, failure):
        request = failure.request
        self.count_failure(render_failure(request) or "http", request.url, failure.getErrorMessage())
        yield from self.article_done(request.meta["article_id"], None)

    def count_failure(self, reason: str, url: str, detail: str) -> None:
        self.crawler.stats.inc_value(f"woshipm/failed/{reason}")
        logger.warning("Failed (%s): %s — %s", reason, url, detail)

    # -- since: one page at a time ------------------------------------------------------------------
    def fetch_page_then_decide(self, walk: Walk, page: int, ids: list[int]):
        wait = PageWait(walk, page, pending=set())
        for article_id in ids:
            if article_id in self.article_dates:
                wait.dates.append(self.article_dates[article_id])
            else:
                wait.pending.add(article_id)
                self.page_waits.setdefault(article_id, []).append(wait)
        budget = None if self.limit is None else max(0, self.limit - len(self.requested))
        new_ids = [i for i in ids if i not in self.requested and i not in self.known_ids][:budget]
        unfetched = wait.pending - set(new_ids) - self.requested
        for article_id in unfetched:  # known or over the limit: no date to wait for
            self.page_waits[article_id].remove(wait)
            wait.pending.discard(article_id)
            wait.dates.append(self.known_published(article_id))
        yield from self.article_requests(new_ids)
        if not wait.pending:
            yield from self.decide_after_page(wait)

    def known_published(self, article_id: int) -> str | None:
        state = getattr(self, "state", None)
        return (state.get_item(article_id) or {}).get("published") if state is not None else None

    def walks_completed(self) -> list[str]:
        """Listings this run walked to the end and whose every article was answered."""
        if not self.requested <= self.answered:
            return []
        return [walk.listing.key for walk in self.walks.values() if walk.reached_end]

    def article_done(self, article_id: int, published: str | None):
        self.answered.add(article_id)
        self.article_dates[article_id] = published
        for wait in self.page_waits.pop(article_id, []):
            wait.pending.discard(article_id)
            wait.dates.append(published)
            if not wait.pending:
                yield from self.decide_after_page(wait)

    def decide_after_page(self, wait: PageWait):
        since = self.since.isoformat()
        all_older = all(d is not None and d[:10] < since for d in wait.dates)
        over_limit = self.limit is not None and len(self.requested) >= self.limit
        if all_older or over_limit or not self.walk_goes_on(wait.walk, wait.page):
            yield from self.end_walk(wait.walk)
        else:
            yield self.listing_request(wait.walk.listing, wait.page + 1)
