"""``scrapy crawl canary [-a category=pd]``: is the site still the one our parsers know? Three requests.

Fetches one listing page (the category's first) and its first article (plus robots.txt: three requests
at most), checks every field against type and plausibility rules, and logs one line per field:
``woshipm canary: title ok: 如何…`` or ``woshipm canary: tags FAILED: none found``. Any failed field
makes the run FAILED (the summary names the fields) and ``scrapy crawl`` exit 1. No state, no outputs:
its items go through no pipeline. Schedule it daily before the crawl (docs/scrapyd.md).
"""

from __future__ import annotations

import logging
import re
from datetime import date

import scrapy
from scrapy.http import Request, Response

from woshipm_crawler import site
from woshipm_crawler.alarms import furniture_paragraphs
from woshipm_crawler.config import Config
from woshipm_crawler.handoff import ARTICLE_KIND, LISTING_KIND, META_KIND, render_failure, response_page
from woshipm_crawler.parse.article import ArticlePageError, parse_article
from woshipm_crawler.parse.listing import parse_listing_page
from woshipm_crawler.statkeys import ALARM_KEY, ARTICLES_PARSED_KEY, CANARY_FIELDS_OK_KEY, LISTING_PAGES_KEY
from woshipm_crawler.textmodel import word_count

logger = logging.getLogger(__name__)

PREFIX = "woshipm canary:"
SOURCE_TYPES = ("original", "authorized", "partner", "translated", "unknown")
HASH_RE = re.compile(r"^[0-9a-f]{64}$")
DATE_RE = re.compile(r"^(\d{4})-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2})?$")
FIRST_YEAR = 2010  # the site's first posts


def _url(value) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def field_problems(fields: dict, card_id: int, article_url: str, min_body_chars: int) -> dict[str, str | None]:
    """Every article field -> None when plausible, else what is wrong with it."""
    body = fields.get("body_text") or ""
    author = fields.get("author") or {}
    published = fields.get("published") or ""
    match = DATE_RE.match(published)
    tags = fields.get("tags")
    stats = fields.get("stats") or {}
    summary = fields.get("summary")
    minutes = fields.get("read_minutes")
    checks = {
        "id": (fields.get("id") == card_id, f"{fields.get('id')!r} is not the card's id {card_id}"),
        "url": (fields.get("url") == article_url, f"{fields.get('url')!r} is not {article_url}"),
        "category": (site.article_ref(article_url or "") is not None
                     and fields.get("category") == site.article_ref(article_url)[0], "not the URL's category"),
        "title": (isinstance(fields.get("title"), str) and 2 <= len(fields["title"]) <= 200,
                  "missing, or not 2 to 200 characters"),
        "author": (bool(author.get("name")) and (author.get("url") is None or _url(author.get("url"))),
                   "no author name"),
        "published": (bool(match) and FIRST_YEAR <= int(match.group(1)) <= date.today().year + 1,
                      f"{published!r} is no date between {FIRST_YEAR} and next year"),
        "summary": (summary is None or (isinstance(summary, str) and 5 <= len(summary) <= 1000),
                    "not 5 to 1,000 characters"),
        "tags": (isinstance(tags, list) and 1 <= len(tags) <= 30 and all(isinstance(t, str) and t for t in tags),
                 "none found"),
        "stats": (set(stats) == {"views", "comments", "collects"} and all(map(_count, stats.values())),
                  f"{stats!r} is not three counts"),
        "read_minutes": (minutes is None or (_count(minutes) and 1 <= minutes <= 300), f"{minutes!r}"),
        "cover_image": (_url(fields.get("cover_image")), "no cover image"),
        "images": (isinstance(fields.get("images"), list) and all(map(_url, fields["images"])), "not URLs"),
        "source": ((fields.get("source") or {}).get("type") in SOURCE_TYPES, "unknown source type"),
        "body_html": (bool(fields.get("body_html")), "empty"),
        "body_text": (len(body) >= min_body_chars and furniture_paragraphs(body) == 0,
                      f"{len(body)} characters (at least {min_body_chars}), "
                      f"{furniture_paragraphs(body)} furniture paragraph(s) left"),
        "word_count": (fields.get("word_count") == word_count(body) and (fields.get("word_count") or 0) > 0,
                       "not the body's word count"),
        "content_hash": (bool(HASH_RE.match(fields.get("content_hash") or "")), "not a SHA-256"),
        "body_markdown": (bool((fields.get("body_markdown") or "").strip()), "empty"),
    }
    return {name: None if ok else why for name, (ok, why) in checks.items()}


def _shown(value) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "…"


class CanarySpider(scrapy.Spider):
    name = "canary"
    # No state store, no outputs: the canary only reads and judges.
    custom_settings = {"ITEM_PIPELINES": {}}

    def __init__(self, *args, category: str = "pd", **kwargs):
        kwargs = {key: value for key, value in kwargs.items() if not key.startswith("_")}  # Scrapyd's _job...
        super().__init__(*args, **kwargs)
        self.category = category

    async def start(self):
        self.config = Config.from_settings(self.settings)
        self.site = base = site.Site(self.config.base_url)
        if self.category not in site.categories():
            self.fail(f"-a category={self.category}: unknown category; valid: {', '.join(site.categories())}")
            return
        yield Request(base.category_url(self.category), callback=self.parse_listing, errback=self.failed_request,
                      meta={META_KIND: LISTING_KIND}, dont_filter=True)

    def fail(self, why: str) -> None:
        logger.error("%s FAILED: %s", PREFIX, why)
        self.crawler.stats.set_value(ALARM_KEY, f"canary: {why}")

    def failed_request(self, failure):
        self.fail(f"{failure.request.url}: {failure.getErrorMessage()}")

    def parse_listing(self, response: Response):
        page = response_page(response)
        cards = parse_listing_page(page, response.url).cards
        if not cards:
            self.fail(f"listing {response.url}: no article cards (HTTP {response.status}, "
                      f"{render_failure(response) or 'no cards found'})")
            return
        self.crawler.stats.inc_value(LISTING_PAGES_KEY)  # the summary's counts, as the crawl's
        logger.info("%s listing ok: %d cards on %s", PREFIX, len(cards), response.url)
        first = cards[0]
        yield Request(self.site.canonical(first.url), callback=self.parse_article, errback=self.failed_request,
                      meta={META_KIND: ARTICLE_KIND}, cb_kwargs={"card_id": first.id}, dont_filter=True)

    def parse_article(self, response: Response, card_id: int):
        url = self.site.canonical(response.url)
        try:
            failure = render_failure(response)
            if failure:
                raise ArticlePageError(failure, f"HTTP {response.status}")
            fields = parse_article(response_page(response), url)
        except ArticlePageError as error:
            # Nothing was read: every field fails with the page. A changed layout names the parts it lacks.
            logger.error("%s article %s not parsed: %s", PREFIX, url, error)
            problems = {name: f"not read ({error.reason})" for name in field_problems({}, card_id, url, 0)}
            self.report(problems, {}, reason=str(error))
            return
        self.crawler.stats.inc_value(ARTICLES_PARSED_KEY)
        self.report(field_problems(fields, card_id, url, self.config.min_body_chars), fields)
        yield fields  # for -o, should someone want to look; no pipeline touches it

    def report(self, problems: dict[str, str | None], fields: dict, reason: str | None = None) -> None:
        for name, why in problems.items():
            if why is None:
                value = _shown(fields.get(name))
                logger.info("%s %s ok: %s", PREFIX, name, value)
            else:
                logger.error("%s %s FAILED: %s", PREFIX, name, why)
        failed = [name for name, why in problems.items() if why]
        self.crawler.stats.set_value(CANARY_FIELDS_OK_KEY, len(problems) - len(failed))
        if failed or reason:
            self.fail(f"fields failed: {', '.join(failed)}" + (f" (page: {reason})" if reason else ""))
