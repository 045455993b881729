"""Coverage alarms: a run notices when the site changes its pages, instead of saying ``ok`` over nothing.

A hand-written parser breaks silently when the site changes its layout: a selector matches nothing,
and fields go missing without an error. ``FieldWatch`` (an extension) hears every article page the
spiders parse (signal ``ARTICLE_CHECKED``: the fields read, or the ``ArticlePageError``) and counts,
per checked field, the articles that have it (stats ``woshipm/checked/<field>`` out of
``woshipm/checked/articles``). A ``layout_changed`` page counts as an article lacking the fields its
error names, and the fields read from the body (summary, cover image, body length, furniture).

Two pseudo-fields watch the body itself: ``body_length`` (a body of at least ``WOSHIPM_MIN_BODY_CHARS``
characters) and ``no_furniture`` (no paragraph the cleaner should have removed: the parser's own
furniture patterns); ``woshipm/checked/furniture_strings`` counts the paragraphs found.

When it fires:
* during the run, at once: ``WOSHIPM_FAILURES_TO_STOP`` articles in a row failed, whatever the reasons
  (``ARTICLE_FAILED``, sent by ``summary.count_failure``; finish reason ``layout_changed`` when all of
  them were, else ``articles_failing``; the reasons named), or, after ``WOSHIPM_COVERAGE_MIN_ARTICLES``
  articles, a required field (``REQUIRED_WATCHED``: title, author, date, body) has fallen below half
  its expectation (finish reason ``coverage_collapsed``);
* at the end (``CrawlSummary.outcome``): a field's coverage is below its expectation
  (``WOSHIPM_FIELD_COVERAGE``) by more than ``WOSHIPM_COVERAGE_TOLERANCE``, on at least
  ``WOSHIPM_COVERAGE_MIN_ARTICLES`` articles: a single odd article on a small run never fires. An
  optional field (summary, cover image, tags, body length, furniture) only ever fires here: an older
  era of the archive with fewer summaries never stalls a crawl, it turns the run FAILED at its end.
Either way the run is FAILED, the summary names the fields, and ``scrapy crawl`` exits non-zero.

An operator who has looked accepts a new level with ``WOSHIPM_ACCEPT_COVERAGE``
(``summary=0.4,cover_image=0.3`` or the JSON object): it replaces those fields' expectations, and
the run logs that it was accepted (a WARNING, and a line of the summary).
"""

from __future__ import annotations

import json
import logging
from collections import Counter

from scrapy import signals
from scrapy.utils.defer import deferred_from_coro

from woshipm_crawler.config import Config
from woshipm_crawler.parse.article import (
    CHECKED_FIELDS,
    COPYRIGHT_TEXT_RE,
    FURNITURE_SECTION_RE,
    FURNITURE_TEXT_RE,
    ArticlePageError,
)
from woshipm_crawler.statkeys import (
    ALARM_KEY,
    CHECKED_ARTICLES_KEY,
    CHECKED_PREFIX,
    COVERAGE_ACCEPTED_KEY,
    FURNITURE_KEY,
)

logger = logging.getLogger(__name__)

# Sent by the spiders for every article page they parse: fields=dict or None, error=ArticlePageError or None.
ARTICLE_CHECKED = object()
# Sent for every article that failed, whatever the reason (fetch, parse, pipeline): reason=, url=.
ARTICLE_FAILED = object()

BODY_FIELDS = ("summary", "cover_image", "body_length", "no_furniture")  # read from the body only
# The fields every article must have: their collapse stops a run; any other field's fall fails it at the end.
REQUIRED_WATCHED = ("title", "author", "published", "body")
COLLAPSE_FACTOR = 0.5  # during the run, a field under half its expectation stops it at once


def furniture_paragraphs(body_text: str) -> int:
    """Paragraphs of a cleaned body that are page furniture (what the cleaner should have removed)."""
    return sum(
        1
        for paragraph in body_text.split("\n\n")
        if (text := paragraph.strip())
        and (FURNITURE_TEXT_RE.match(text) or COPYRIGHT_TEXT_RE.match(text) or FURNITURE_SECTION_RE.match(text))
    )


def present_fields(fields: dict, min_body_chars: int) -> set[str]:
    """The checked fields (and pseudo-fields) an article's parsed fields have."""
    body = fields.get("body_text") or ""
    found = {
        "title": bool(fields.get("title")),
        "author": bool((fields.get("author") or {}).get("name")),
        "published": bool(fields.get("published")),
        "body": bool(body.strip()),
        "tags": bool(fields.get("tags")),
        "summary": bool(fields.get("summary")),
        "cover_image": bool(fields.get("cover_image")),
        "body_length": len(body) >= min_body_chars,
        "no_furniture": furniture_paragraphs(body) == 0,
    }
    return {name for name, ok in found.items() if ok}


def default_expectations(config: Config) -> dict[str, float]:
    """``WOSHIPM_FIELD_COVERAGE`` and the pseudo-fields at 100%."""
    return {**config.field_coverage, "body_length": 1.0, "no_furniture": 1.0}


def expectations(config: Config) -> dict[str, float]:
    """Expected share per watched field: the defaults, and what ``WOSHIPM_ACCEPT_COVERAGE`` accepted instead."""
    try:
        accepted = accepted_coverage(config)
    except ValueError:  # said once, when the run opened: it stops as a bad argument
        accepted = {}
    return {**default_expectations(config), **accepted}


def accepted_coverage(config: Config) -> dict[str, float]:
    """``WOSHIPM_ACCEPT_COVERAGE`` as ``{field: share}``; ``ValueError`` naming what is wrong."""
    value = config.accept_coverage
    if isinstance(value, str) and not value.lstrip().startswith("{"):
        pairs = [part.partition("=") for part in value.split(",") if part.strip()]
        value = {name.strip(): share.strip() for name, _, share in pairs}
    elif isinstance(value, str):  # a JSON object, as -s gives it
        value = json.loads(value)
    known = tuple(default_expectations(config))
    accepted = {}
    for name, share in value.items():
        try:
            accepted[name] = float(share)
        except (TypeError, ValueError):
            accepted[name] = -1.0
        if name not in known or not 0 <= accepted[name] <= 1:
            raise ValueError(f"WOSHIPM_ACCEPT_COVERAGE: {name}={share} is not a field's share in 0..1 "
                             f"(fields: {', '.join(known)}; e.g. summary=0.4,cover_image=0.3)")
    return accepted


def fallen_fields(stats, config: Config, *, factor: float = 1.0, tolerance: float | None = None,
                  only: tuple[str, ...] | None = None) -> list[str]:
    """Fields (of ``only``, or all) whose coverage this run is under ``factor`` × expectation − tolerance,
    on enough articles; each as ``name 12/40 (expected 100%)``."""
    checked = stats.get_value(CHECKED_ARTICLES_KEY) or 0
    if checked < config.coverage_min_articles:
        return []
    if tolerance is None:
        tolerance = config.coverage_tolerance
    fallen = []
    for name, expected in expectations(config).items():
        if only is not None and name not in only:
            continue
        have = stats.get_value(CHECKED_PREFIX + name) or 0
        if have / checked < expected * factor - tolerance:
            fallen.append(f"{name} {have}/{checked} (expected {expected:.0%})")
    return fallen


def coverage_line(stats, config: Config) -> str | None:
    """The summary's line: each watched field's coverage against its expectation."""
    checked = stats.get_value(CHECKED_ARTICLES_KEY) or 0
    if not checked:
        return None
    parts = [
        f"{name} {stats.get_value(CHECKED_PREFIX + name) or 0}/{checked} (≥{expected:.0%})"
        for name, expected in expectations(config).items()
    ]
    return (
        f"fields checked on {checked} article page(s): " + ", ".join(parts)
        + f"; furniture strings found: {stats.get_value(FURNITURE_KEY) or 0}"
    )


class FieldWatch:
    def __init__(self, crawler) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.config = Config.from_settings(crawler.settings)
        self.min_body_chars = self.config.min_body_chars
        self.stop_after = self.config.failures_to_stop
        self.streak: Counter[str] = Counter()  # the reasons of the articles that failed in a row
        self.streak_examples: dict[str, str] = {}
        self.stopping = False

    @classmethod
    def from_crawler(cls, crawler):
        watch = cls(crawler)
        crawler.signals.connect(watch.article_checked, signal=ARTICLE_CHECKED)
        crawler.signals.connect(watch.article_failed, signal=ARTICLE_FAILED)
        crawler.signals.connect(watch.spider_opened, signal=signals.spider_opened)
        return watch

    def spider_opened(self, spider=None) -> None:
        try:
            accepted = accepted_coverage(self.config)
        except ValueError as error:
            self.stopping = True
            logger.error("%s", error)
            deferred_from_coro(self.crawler.engine.close_spider_async(reason="bad_argument"))
            return
        if accepted:
            default = default_expectations(self.config)
            line = ", ".join(f"{name} ≥{share:.0%} (expected {float(default[name]):.0%})"
                             for name, share in accepted.items())
            self.stats.set_value(COVERAGE_ACCEPTED_KEY, line)
            logger.warning("Coverage accepted by WOSHIPM_ACCEPT_COVERAGE: %s", line)

    def article_failed(self, reason: str, url: str, **_) -> None:
        self.streak[reason] += 1
        self.streak_examples.setdefault(reason, url)
        self.check()

    def article_checked(self, fields: dict | None = None, error: ArticlePageError | None = None, **_) -> None:
        if fields is not None:
            present = present_fields(fields, self.min_body_chars)
            self.stats.inc_value(FURNITURE_KEY, furniture_paragraphs(fields.get("body_text") or ""))
            self.streak.clear()
            self.streak_examples.clear()
        elif error is not None and error.reason == "layout_changed":
            present = set(CHECKED_FIELDS) - set(error.missing) - {"body"}  # nothing of the body was read
        else:
            return  # not an article page (a shell, a check page, a cut body): counted by its own reason
        self.stats.inc_value(CHECKED_ARTICLES_KEY)
        for name in present:
            self.stats.inc_value(CHECKED_PREFIX + name)
        self.check()

    def check(self) -> None:
        if self.stopping:
            return
        failed = sum(self.streak.values())
        if failed >= self.stop_after:
            reasons = ", ".join(f"{reason} {count} (e.g. {self.streak_examples[reason]})"
                                for reason, count in self.streak.most_common())
            if set(self.streak) == {"layout_changed"}:
                self.stop("layout_changed", f"{failed} article pages in a row hold an article but not the "
                          "layout the parsers know: the site changed its pages")
            else:
                self.stop("articles_failing", f"{failed} articles in a row failed: {reasons}", fields=False)
            return
        collapsed = fallen_fields(self.stats, self.config, factor=COLLAPSE_FACTOR, tolerance=0.0,
                                  only=REQUIRED_WATCHED)
        if collapsed:
            self.stop("coverage_collapsed", "field coverage collapsed: " + ", ".join(collapsed))

    def stop(self, reason: str, message: str, *, fields: bool = True) -> None:
        self.stopping = True
        fallen = fields and (fallen_fields(self.stats, self.config, tolerance=0.0) or _all_lacking(self.stats))
        line = f"{message}; fields that fell: {', '.join(fallen)}" if fallen else message
        self.stats.set_value(ALARM_KEY, line)
        logger.error("Stopping the run: %s", line)
        deferred_from_coro(self.crawler.engine.close_spider_async(reason=reason))


def _all_lacking(stats) -> list[str]:
    """Fields some checked article lacked (the alarm's list before the minimum count is reached)."""
    checked = stats.get_value(CHECKED_ARTICLES_KEY) or 0
    return [
        f"{name} {stats.get_value(CHECKED_PREFIX + name) or 0}/{checked}"
        for name in (*CHECKED_FIELDS, *BODY_FIELDS)
        if (stats.get_value(CHECKED_PREFIX + name) or 0) < checked
    ]
