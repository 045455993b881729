"""The listing walker every spider shares: walk listings page by page, fetching articles as they are found.

Streaming: a listing page's new articles are requested at once, at a higher priority than listing
pages, so they are fetched before the walk moves on. The first article is written while the first
listing pages are walked, and the scheduler never holds more than a few pages' worth of requests.

Durable: each listing page is recorded in the state in one transaction (memberships, new frontier
rows, the walk's next page: ``StateStore.record_listing_page``); an article leaves the frontier in the
transaction that stores it. A run killed at any moment resumes: each walk at its next page, the
articles from the frontier. Nothing grows with the number of articles: no map of discovered ids,
nothing held for ``since``.

How a walk ends (stat ``woshipm/walks/<reason>``):
  end         a 404 past the last page: the listing was seen to its end, so later walks of it may
              stop at known pages (``WOSHIPM_KNOWN_PAGES_TO_STOP`` pages in a row all stored: ``known``)
  max_pages, limit, since   the run's arguments (with ``since``, a page whose articles are all older;
              cards carry no date, so that page's articles are fetched first)
  failed      a page failed (``WOSHIPM_FAILED_PAGES_TO_STOP`` in a row stop the walk at once): the
              walk is not complete, and the next run resumes it at the first failed page
A failed listing page is a gap in the state (``StateStore.record_gap``), recorded in the transaction
that moves the walk past it: whatever ends the run (an alarm, Ctrl-C, a kill), the next walk of that
listing starts at its first gap, and a walk with an open gap is never complete.
  loop        a page repeated an earlier page's cards, or redirected back to an earlier page
  page_count  past the page count the site shows; ``page_cap``: past ``WOSHIPM_MAX_LISTING_PAGES``
              when it shows none
A listing page fails (``woshipm/failed/listing_*``) when its request fails after retries or is
dropped, its callback raises, or it answers an empty 200, a JS shell or a check page the browser
did not pass. A failed page never ends a walk as "reached the end".
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field

import scrapy
from scrapy import signals
from scrapy.exceptions import CloseSpider, IgnoreRequest
from scrapy.http import Request, Response
from twisted.internet.defer import CancelledError

from woshipm_crawler import site
from woshipm_crawler.alarms import ARTICLE_CHECKED
from woshipm_crawler.config import Config
from woshipm_crawler.handoff import (
    ARTICLE_KIND,
    LISTING_KIND,
    META_FETCHED_AT,
    META_KIND,
    META_REVISIT,
    render_failure,
    response_page,
)
from woshipm_crawler.items import ArticleItem
from woshipm_crawler.parse.article import ArticlePageError, parse_article
from woshipm_crawler.parse.listing import parse_listing_page
from woshipm_crawler.parse.page import classify
from woshipm_crawler.spiders.arguments import (
    OPTIONS,
    REQUEUE_ALL,
    ArgumentError,
    parse_flag,
    parse_positive_int,
    parse_requeue,
    parse_since,
    run_settings,
    unknown_arguments,
)
from woshipm_crawler.spiders.revisits import Revisits
from woshipm_crawler.state.owner import StateOwner
from woshipm_crawler.statkeys import (
    ARTICLES_ATTEMPTED_KEY,
    ARTICLES_FOUND_NEW_KEY,
    ARTICLES_PARSED_KEY,
    CARDS_SEEN_KEY,
    CUT_PREFIX,
    EMPTY_LISTINGS_KEY,
    FRONTIER_RESUMED_KEY,
    LISTING_PAGES_KEY,
    REMOVALS_FOUND_KEY,
    REQUEUED_KEY,
    SKIPPED_PREFIX,
    STOP_MESSAGE_KEY,
    WALKS_PREFIX,
    WALKS_RESUMED_KEY,
)
from woshipm_crawler.summary import count_failure
from woshipm_crawler.util import utc_stamp

try:  # Scrapy 2.19 wraps Twisted's CancelledError in its own; older versions pass it on as it is
    from scrapy.exceptions import DownloadCancelledError
except ImportError:  # pragma: no cover
    DownloadCancelledError = CancelledError

logger = logging.getLogger(__name__)

# A page's articles go before the next listing page: streaming, and a scheduler queue that stays small.
ARTICLE_PRIORITY = 10
LISTING_PRIORITY = 0
BROKEN_LISTING_REASONS = ("loop", "page_count", "page_cap")
# What a stored article answers when the site removed it (a redirect away from it is one too).
REMOVED_STATUSES = (404, 410)


@dataclass(frozen=True)
class Listing:
    kind: str  # "category" | "tag"
    slug: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.slug}"


@dataclass
class Walk:
    """This run's progress through one listing (positions themselves live in the state)."""

    listing: Listing
    mode: str  # "full": every page; "incremental": may stop at known pages
    known_streak: int = 0
    failed_streak: int = 0
    page_count: int | None = None  # the largest page count the site showed
    seen_pages: set[int] = field(default_factory=set)  # hashes of each walked page's card ids
    done: bool = False


@dataclass
class PageWait:
    """A listing page (``since`` mode) waiting for its articles' dates before the walk goes on."""

    walk: Walk
    page: int
    pending: set[int]
    dates: list[str | None] = field(default_factory=list)


def article_item(fields: dict, fetched_at: str, removed_at: str | None = None) -> ArticleItem:
    """The item of a parsed article page fetched at ``fetched_at`` (a crawl's, or an archived one's)."""
    return ArticleItem(**fields, listings=[], crawled_at=fetched_at, stats_observed_at=fetched_at,
                       removed_at=removed_at, duplicate_of=None)


def guarded(on_error):
    """Run a callback to its end; if it raises, log it and hand the request to ``on_error`` instead.

    A callback that raises would otherwise leave its walk without a next page (and in the past, the
    whole run waiting for it).
    """

    def decorate(callback):
        @functools.wraps(callback)
        def run(self, response: Response, **kwargs):
            try:
                out = list(callback(self, response, **kwargs))
            except Exception as error:  # noqa: BLE001 - any parser bug becomes a counted failure
                logger.exception("Callback error on %s", response.url)
                out = list(on_error(self, response.request, f"{type(error).__name__}: {error}", "error"))
            yield from out

        return run

    return decorate


class ListingSpider(Revisits, scrapy.Spider):
    """Shared walker; subclasses turn their argument into ``Listing`` objects in ``listings_from``."""

    listing_kind = ""
    argument_name = ""

    def __init__(self, *args, **kwargs):
        listing_arg = kwargs.pop(self.argument_name, None)
        options = {name: kwargs.pop(name, None) for name in OPTIONS}
        # Scrapyd adds arguments of its own (_job, _version): they start with "_".
        unknown = sorted(name for name in kwargs if not name.startswith("_"))
        super().__init__(*args, **kwargs)
        self.argument_error: str | None = None
        try:
            if unknown:
                raise ArgumentError(unknown_arguments(unknown, [self.argument_name, *OPTIONS]))
            self.listings = self.listings_from(listing_arg)
            self.max_pages = parse_positive_int("max_pages", options["max_pages"])
            self.limit = parse_positive_int("limit", options["limit"])
            self.since = parse_since(options["since"])
            self.full = parse_flag("full", options["full"])
            self.refresh = parse_flag("refresh", options["refresh"])
            self.requeue = parse_requeue(options["requeue"])
            self.revisit = parse_positive_int("revisit", options["revisit"], least=0)  # 0: no revisit
        except ArgumentError as error:
            self.listings = []
            self.argument_error = str(error)
        self.walks: dict[Listing, Walk] = {}
        self.requested = 0  # article requests this run made (for limit)
        self.in_flight: set[int] = set()  # article ids requested and not answered yet: bounded
        self.page_waits: dict[int, list[PageWait]] = {}  # article id -> since-pages waiting for its date
        self.revisits_left: int | None = None  # revisits this run may still claim (set when it starts them)
        self.removals_decided = False

    def listings_from(self, value) -> list[Listing]:
        raise NotImplementedError

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.config = config = Config.from_settings(crawler.settings)
        spider.site = site.Site(config.base_url)
        spider.known_pages_to_stop = config.known_pages_to_stop
        spider.failed_pages_to_stop = config.failed_pages_to_stop
        spider.max_listing_pages = config.max_listing_pages
        spider.extra_furniture, spider.layouts, error = run_settings(config)
        spider.argument_error = spider.argument_error or error
        crawler.signals.connect(spider.request_dropped, signal=signals.request_dropped)
        crawler.signals.connect(spider.spider_idle, signal=signals.spider_idle)
        return spider

    @property
    def stats(self):
        return self.crawler.stats

    # -- start ----------------------------------------------------------------------------------

    async def start(self):
        if self.argument_error:
            self.stop("bad_argument", f"Bad argument, nothing crawled: {self.argument_error}")
        owner = self.crawler.get_extension(StateOwner)
        if owner is None:
            self.stop("no_state", "StateOwner is not in EXTENSIONS: the walker keeps its frontier in the state")
        self.store, self.job = owner.store, owner.job
        built_from = self.store.bind_site(self.site.base_url)
        if site.site_key(built_from) != site.site_key(self.site.base_url):
            self.stop(
                "state_of_another_site",
                f"The state {self.store.path} was built from {built_from}, not {self.site.base_url}: "
                "crawl into another WOSHIPM_EXPORT_DIR (or WOSHIPM_STATE_PATH) so the data never mix",
            )
        if self.requeue:
            count = self.store.requeue(None if self.requeue == REQUEUE_ALL else self.requeue)
            logger.info("Re-queued %d failed article(s)%s: they are tried in this run", count,
                        "" if self.requeue == REQUEUE_ALL else f" whose last failure was {self.requeue}")
            self.stats.set_value(REQUEUED_KEY, count)
        for gone in self.store.undecided_runs(self.job):  # killed before it decided its removals
            decided = self.store.decide_removals(gone, *self.removal_rule(), by=self.job)
            logger.warning("Removals found by the interrupted run %s: %d marked, %d withheld (of %d revisits)",
                           gone, decided.marked, decided.withheld, decided.revisits)
        for listing in self.listings:
            begun = self.store.begin_walk(listing.key, self.job, full=self.full or self.refresh)
            if begun is None:
                logger.info("%s is being walked by another run now: left to it", listing.key)
                self.stats.inc_value(SKIPPED_PREFIX + "walk_claimed")
                continue
            if begun.finished:
                logger.info("%s: walked to its end by the interrupted run; only its articles are left", listing.key)
                self.walks[listing] = Walk(listing, begun.mode, done=True)
                continue
            if begun.resumed:
                logger.info("%s: resuming an interrupted walk at page %d", listing.key, begun.page)
                self.stats.inc_value(WALKS_RESUMED_KEY)
            self.walks[listing] = Walk(listing, begun.mode)
            yield self.listing_request(listing, begun.page)
        # Articles an interrupted run, an earlier limit or a failed fetch left in the frontier.
        keys = [listing.key for listing in self.walks]
        while keys and self.budget() != 0:
            batch = self.store.claim_frontier(self.job, keys, batch=min(100, self.budget() or 100))
            if not batch:
                break
            self.stats.inc_value(FRONTIER_RESUMED_KEY, len(batch))
            for article_id, url in batch:
                if self.crawler.engine.needs_backout():  # lazily: see Scrapy's "start-requests-lazy"
                    await self.crawler.signals.wait_for(signals.scheduler_empty)
                yield self.article_request(article_id, url)

    def stop(self, reason: str, message: str):
        logger.error(message)
        self.stats.set_value(STOP_MESSAGE_KEY, message)
        raise CloseSpider(reason)

    def budget(self) -> int | None:
        """How many more articles this run may request (None: no limit)."""
        return None if self.limit is None else max(0, self.limit - self.requested)

    # -- listings --------------------------------------------------------------------------------

    def listing_url(self, listing: Listing, page: int) -> str:
        if listing.kind == "category":
            return self.site.category_url(listing.slug, page)
        return self.site.tag_url(listing.slug, page)

    def listing_request(self, listing: Listing, page: int) -> Request:
        return Request(
            self.listing_url(listing, page),
            callback=self.parse_listing_page,
            errback=self.listing_errback,
            priority=LISTING_PRIORITY,
            dont_filter=True,  # a repeat is the walk's to judge (a loop), not the duplicate filter's
            meta={META_KIND: LISTING_KIND, "handle_httpstatus_list": [404]},
            cb_kwargs={"listing": listing, "page": page},
        )

    def listing_failed(self, request: Request, detail: str, reason: str):
        listing, page = request.cb_kwargs["listing"], request.cb_kwargs["page"]
        walk = self.walks[listing]
        walk.failed_streak += 1
        self.store.record_gap(listing.key, page, reason)
        self.count_failure(f"listing_{reason}", request.url, detail)
        if walk.failed_streak < self.failed_pages_to_stop and not self.past_max_pages(page):
            yield self.listing_request(listing, page + 1)  # one bad page must not hide the rest
        else:
            self.end_walk(walk, "failed")

    def listing_errback(self, failure):
        reason, detail = self.download_failure(failure)
        yield from self.listing_failed(failure.request, detail, reason)

    @guarded(listing_failed)
    def parse_listing_page(self, response: Response, listing: Listing, page: int):
        walk = self.walks[listing]
        if response.status == 404:
            if page == 1:  # most often a misspelt tag or category: say so rather than finish empty
                logger.warning("%s has no articles (%s): check the name", listing.key, response.url)
                self.stats.inc_value(EMPTY_LISTINGS_KEY)
            self.end_walk(walk, "end", reached_end=True, end_page=page)
            return
        if not self.site.owns(response.url):
            yield from self.listing_failed(response.request, f"answered from {response.url}", "redirected_off_site")
            return
        page_tree = response_page(response)
        parsed = parse_listing_page(page_tree, response.url)
        for href in parsed.rejected:  # an id past SQLite's integers, another scheme: never a crash
            self.count_failure("bad_card", response.url, f"a card links {href[:200]!r}, which is no article URL")
        if not parsed.cards:
            kind = classify(page_tree)
            reason = render_failure(response) or (kind if kind in ("interstitial", "js_shell") else "empty")
            yield from self.listing_failed(response.request, f"HTTP {response.status}, no cards", reason)
            return
        self.stats.inc_value(LISTING_PAGES_KEY)
        walk.failed_streak = 0
        fingerprint = hash(tuple(card.id for card in parsed.cards))
        if fingerprint in walk.seen_pages or site.listing_page_number(response.url) < page:
            self.count_failure("listing_loop", response.url, f"page {page} repeats an earlier page")
            self.end_walk(walk, "loop")
            return
        walk.seen_pages.add(fingerprint)
        walk.page_count = max(walk.page_count or 0, parsed.page_count or 0) or None

        cards = [(card.id, self.site.canonical(card.url)) for card in parsed.cards]
        fate = self.store.record_listing_page(
            listing.key,
            self.job,
            cards,
            next_page=page + 1,
            page=page,
            refetch_known=self.refresh,
            budget=self.budget(),
            since=self.since.isoformat() if self.since else None,
        )
        self.stats.inc_value(CARDS_SEEN_KEY, len(cards))
        for card_id, url in fate.rejected:  # an id no SQLite INTEGER holds: never stored
            self.count_failure("bad_id", url, f"article id {card_id} is outside 1..2**63-1")
        self.stats.inc_value(ARTICLES_FOUND_NEW_KEY, fate.new)
        if not self.refresh:
            self.stats.inc_value(SKIPPED_PREFIX + "known", fate.known)
        self.stats.inc_value(SKIPPED_PREFIX + "elsewhere", fate.elsewhere)
        self.stats.inc_value(SKIPPED_PREFIX + "over_limit", fate.over_budget)
        self.stats.inc_value(SKIPPED_PREFIX + "waiting", fate.waiting)
        walk.known_streak = walk.known_streak + 1 if fate.known == len(cards) else 0
        for article_id, url in fate.fetch:
            yield self.article_request(article_id, url)

        if self.since is not None:
            ids = [card_id for card_id, _ in cards]
            yield from self.wait_for_dates(walk, page, ids, fate.dates)
        else:
            yield from self.next_page_or_end(walk, page)

    def next_page_or_end(self, walk: Walk, page: int):
        reason = self.stop_reason(walk, page)
        if reason is None:
            yield self.listing_request(walk.listing, page + 1)
        else:
            self.end_walk(walk, reason)

    def past_max_pages(self, page: int) -> bool:
        return self.max_pages is not None and page >= self.max_pages

    def stop_reason(self, walk: Walk, page: int) -> str | None:
        """Why the walk stops after ``page`` (a page with cards), or None to go on."""
        if self.past_max_pages(page):
            return "max_pages"
        if self.budget() == 0:
            return "limit"
        # Known pages prove nothing older is missing only if an earlier walk reached the end.
        if walk.mode == "incremental" and walk.known_streak >= self.known_pages_to_stop:
            return "known"
        if walk.page_count is not None and page > walk.page_count:
            self.count_failure(
                "listing_page_count",
                self.listing_url(walk.listing, page),
                f"page {page} is past the {walk.page_count} pages the site shows",
            )
            return "page_count"
        if walk.page_count is None and page >= self.max_listing_pages:
            self.count_failure(
                "listing_page_cap",
                self.listing_url(walk.listing, page),
                f"{page} pages and no page count shown (WOSHIPM_MAX_LISTING_PAGES)",
            )
            return "page_cap"
        return None

    def end_walk(self, walk: Walk, reason: str, *, reached_end: bool = False, end_page: int | None = None):
        """Close a walk. One with an open gap is not complete (``failed``, unless the listing itself
        misbehaves): the next run resumes at its first gap."""
        if walk.done:
            return
        walk.done = True
        reason = self.store.end_walk(walk.listing.key, reason, reached_end=reached_end, end_page=end_page,
                                     reason_if_gaps=None if reason in BROKEN_LISTING_REASONS else "failed")
        self.stats.inc_value(WALKS_PREFIX + reason)
        logger.debug("%s: walk ends (%s)", walk.listing.key, reason)

    def request_dropped(self, request: Request, spider=None):
        """A request the scheduler refused gets neither callback nor errback: fail it here."""
        if request.callback == self.parse_listing_page:
            for follow_up in self.listing_failed(request, "request dropped", "dropped"):
                self.crawler.engine.crawl(follow_up)
        elif request.callback == self.parse_article_page:
            for follow_up in self.article_failed(request, "request dropped", "dropped"):
                self.crawler.engine.crawl(follow_up)

    # -- articles --------------------------------------------------------------------------------

    def article_request(self, article_id: int, url: str, *, revisit: bool = False) -> Request:
        if not revisit:  # a revisit is not one of the articles ``limit`` counts
            self.requested += 1
        self.in_flight.add(article_id)
        return Request(
            self.site.canonical(url),  # on this run's base URL (a frontier row may be older)
            callback=self.parse_article_page,
            errback=self.article_errback,
            priority=ARTICLE_PRIORITY,
            dont_filter=True,  # the frontier's claims already make each article one request
            meta={META_KIND: ARTICLE_KIND, "article_id": article_id, META_REVISIT: revisit},
        )

    def article_failed(self, request: Request, detail: str, reason: str):
        article_id = request.meta["article_id"]
        asked = request.meta.get("redirect_urls", [request.url])[0]  # the article's URL, not a redirect's
        self.count_failure(reason, asked, detail, article=True)
        self.store.article_failed(article_id, reason)
        if request.meta.get(META_REVISIT):
            self.store.release_revisit(article_id)  # still due: a later run tries again
        yield from self.article_done(article_id, None)

    def article_gone(self, request: Request, status: int, detail: str):
        """The page answered 404 or 410, or redirected away: a stored article was removed (decided when
        the run ends: ``decide_removals``); an article never stored is a failure counted as such."""
        article_id = request.meta["article_id"]
        if self.store.removal_found(article_id, status, self.job):
            self.stats.inc_value(REMOVALS_FOUND_KEY)
            logger.info("Removed from the site? %s — %s (marked when the run ends)", request.url, detail)
            yield from self.article_done(article_id, None)
        else:
            yield from self.article_failed(request, detail, "not_found" if status == 404 else f"gone_{status}")

    def article_errback(self, failure):
        status = getattr(getattr(failure.value, "response", None), "status", None)
        if status in REMOVED_STATUSES:
            yield from self.article_gone(failure.request, status, f"HTTP {status}")
            return
        reason, detail = self.download_failure(failure)
        yield from self.article_failed(failure.request, detail, render_failure(failure.request) or reason)

    def download_failure(self, failure) -> tuple[str, str]:
        """(reason, detail) of a request that got no response: ``too_large`` when the size cap stopped
        it (its announced length, the bytes received, or its body inflating past DOWNLOAD_MAXSIZE),
        else ``http``; the detail is never empty."""
        error = failure.value
        cap = failure.request.meta.get("download_maxsize", self.settings.getint("DOWNLOAD_MAXSIZE"))
        if isinstance(error, (DownloadCancelledError, CancelledError)) or (
            isinstance(error, IgnoreRequest) and "DOWNLOAD_MAXSIZE" in str(error)
        ):
            # Scrapy cancels a download only at the cap; the bytes-received case carries no message.
            return "too_large", str(error) or f"more than DOWNLOAD_MAXSIZE ({cap} bytes) received: stopped"
        return "http", failure.getErrorMessage() or failure.type.__name__

    @guarded(article_failed)
    def parse_article_page(self, response: Response):
        article_id = response.meta["article_id"]
        try:
            failure = render_failure(response)  # a shell or check the browser did not (or may not) pass
            if failure:
                raise ArticlePageError(failure, f"HTTP {response.status}")
            redirected = self.site.redirect_failure(response.url, article_id)
            if redirected and self.store.is_known(article_id):  # away from a stored article: removed
                status = (response.meta.get("redirect_reasons") or [302])[0]
                yield from self.article_gone(response.request, status if isinstance(status, int) else 302,
                                             f"redirected to {response.url}")
                return
            if redirected:
                raise ArticlePageError(redirected, f"answered from {response.url}")
            cuts: list[tuple[str, str]] = []
            fields = parse_article(response_page(response), self.site.canonical(response.url), cuts,
                                   self.extra_furniture, self.layouts)
        except ArticlePageError as error:
            self.crawler.signals.send_catch_log(ARTICLE_CHECKED, fields=None, error=error)
            yield from self.article_failed(response.request, str(error), error.reason)
            return
        for name, detail in cuts:  # a field past its bound (parse.article.MAX_*): stored cut, and said so
            self.stats.inc_value(CUT_PREFIX + name)
            logger.warning("Cut (%s): %s — %s", name, fields["url"], detail)
        self.crawler.signals.send_catch_log(ARTICLE_CHECKED, fields=fields, error=None)
        self.stats.inc_value(ARTICLES_PARSED_KEY)
        published = fields["published"]
        if self.since is not None and (published or "")[:10] < self.since.isoformat():
            self.stats.inc_value(SKIPPED_PREFIX + "older_than_since")
            self.store.article_older(article_id, published)
        else:
            yield article_item(fields, response.meta.get(META_FETCHED_AT) or utc_stamp())
        yield from self.article_done(article_id, published)

    def count_failure(self, reason: str, url: str, detail: str, *, article: bool = False) -> None:
        count_failure(self.crawler, reason, url, article=article)
        logger.warning("Failed (%s): %s — %s", reason, url, detail)

    def article_done(self, article_id: int, published: str | None):
        """An article was answered; release any ``since`` page that waited for its date."""
        self.in_flight.discard(article_id)
        self.stats.inc_value(ARTICLES_ATTEMPTED_KEY)
        for wait in self.page_waits.pop(article_id, []):
            wait.pending.discard(article_id)
            wait.dates.append(published)
            if not wait.pending:
                yield from self.decide_after_page(wait)

    # -- since: one page at a time ------------------------------------------------------------------

    def wait_for_dates(self, walk: Walk, page: int, ids: list[int], dates: dict[int, str | None]):
        """Go on to the next page only when every article of this one has a date."""
        wait = PageWait(walk, page, pending={i for i in ids if i in self.in_flight})
        wait.dates = [dates.get(i) for i in ids if i not in wait.pending]
        for article_id in wait.pending:
            self.page_waits.setdefault(article_id, []).append(wait)
        if not wait.pending:
            yield from self.decide_after_page(wait)

    def decide_after_page(self, wait: PageWait):
        since = self.since.isoformat()
        if all(d is not None and d[:10] < since for d in wait.dates):
            self.end_walk(wait.walk, "since")
        else:
            yield from self.next_page_or_end(wait.walk, wait.page)
