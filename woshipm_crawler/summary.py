"""What a run did, told twice: a live progress line on a terminal, and one summary block at the end.

The summary block is plain log lines starting with ``woshipm summary:`` so an operator can grep a
Scrapyd job log for it. Its counts are what is on disk: the JSONL lines this run wrote (recovered
ones included), the library files it wrote. A run that failed says ``FAILED`` there, logs an ERROR
line, and ``scrapy crawl`` exits non-zero (``woshipm_crawler.commands.crawl`` reads ``OUTCOME_KEY``).
"""

from __future__ import annotations

import logging
import sys
import time

from scrapy import signals
from twisted.internet import task

from woshipm_crawler.alarms import ARTICLE_FAILED, coverage_line, fallen_fields
from woshipm_crawler.config import Config
from woshipm_crawler.items import ARTICLE_FIELDS
from woshipm_crawler.statkeys import (
    ALARM_KEY,
    ARCHIVE_FAILED_KEY,
    ARTICLE_FAILURES_PREFIX,
    ARTICLES_ATTEMPTED_KEY,
    ARTICLES_CROSS_LISTED_KEY,
    ARTICLES_FAILED_KEY,
    ARTICLES_FOUND_NEW_KEY,
    ARTICLES_PARSED_KEY,
    CLOSE_FAILURE_KEY,
    COVERAGE_ACCEPTED_KEY,
    COVERAGE_PREFIX,
    CUT_PREFIX,
    EXAMPLE_PREFIX,
    EXIT_CODE_KEY,
    FAILED_PREFIX,
    FRONTIER_PREFIX,
    FRONTIER_RESUMED_KEY,
    GAPS_KEY,
    JSONL_PATH_KEY,
    JSONL_WRITTEN_KEY,
    LISTING_PAGES_KEY,
    MARKDOWN_WRITTEN_KEY,
    OUTCOME_KEY,
    PENDING_KEY,
    RECOVERED_KEY,
    REMOVALS_FOUND_KEY,
    REMOVALS_MARKED_KEY,
    REMOVALS_WITHHELD_KEY,
    REPARSE_OLDER_THAN_STORED_KEY,
    REPARSE_PAGES_KEY,
    RETRY_SCHEDULE_KEY,
    REVISITS_DUE_LEFT_KEY,
    REVISITS_REQUESTED_KEY,
    SKIPPED_PREFIX,
    SKIPPED_UNCHANGED_KEY,
    STATE_CHANGED_KEY,
    STATE_NEW_KEY,
    WALKS_PREFIX,
    WALKS_RESUMED_KEY,
)
from woshipm_crawler.util import atomic_write, dumps

logger = logging.getLogger(__name__)

SUMMARY_PREFIX = "woshipm summary:"
SHOWN_GAPS = 5
# Finish reasons that mean the run did its job; "shutdown" (Ctrl-C, SIGTERM) can be resumed.
GOOD_FINISH_REASONS = ("finished",)
INTERRUPTED_REASONS = ("shutdown",)
BAD_ARGUMENT_REASON = "bad_argument"
SKIP_REASONS = {
    "known": "already in the state",
    "unchanged": "fetched again, unchanged",
    "older_than_since": "older than since",
    "over_limit": "over the limit, left for a later run",
    "elsewhere": "being fetched by another run",
    "walk_claimed": "listings another run is walking",
    "waiting": "failed before, waiting for their next try",
}
TOP_REASONS = 3  # failure reasons the summary names with an example
# Fewer failed articles than this never fail a run by their share alone (one odd page of three).
MIN_FAILED_FOR_SHARE = 3


def count_failure(crawler, reason: str, url: str, *, article: bool) -> None:
    """Count one failure under ``reason`` (remembering its first URL); an ``article`` failure also
    counts against the run's articles and is heard by the alarms (``ARTICLE_FAILED``)."""
    stats = crawler.stats
    stats.inc_value(FAILED_PREFIX + reason)
    if stats.get_value(EXAMPLE_PREFIX + reason) is None:
        stats.set_value(EXAMPLE_PREFIX + reason, url)
    if article:
        stats.inc_value(ARTICLES_FAILED_KEY)
        stats.inc_value(ARTICLE_FAILURES_PREFIX + reason)
        crawler.signals.send_catch_log(ARTICLE_FAILED, reason=reason, url=url)


def stats_with_prefix(stats, prefix: str) -> dict[str, int]:
    return {k[len(prefix) :]: v for k, v in sorted(stats.get_stats().items()) if k.startswith(prefix)}


def retry_line(schedule) -> str:
    """The failed articles that wait for a retry: how many, why, when they are next tried."""
    parts = []
    for reason, count, first, last in schedule:
        when = "due now" if first is None else f"next try {first}" + (f" to {last}" if last != first else "")
        parts.append(f"{reason} {count} ({when})")
    total = sum(row[1] for row in schedule)
    return (f"failed articles waiting for a retry: {total}: " + ", ".join(parts)
            + "; to try them at once: -a requeue=all, or -a requeue=REASON")


class CrawlSummary:
    def __init__(self, crawler, progress: bool | None = None) -> None:
        """``progress``: a line a second on stderr; by default WOSHIPM_PROGRESS, else when stderr is a terminal."""
        self.crawler = crawler
        self.config = Config.from_settings(crawler.settings)
        self.stats = crawler.stats
        self.started = time.monotonic()
        if progress is None:
            progress = sys.stderr.isatty() if self.config.progress is None else self.config.progress
        self.progress_loop = task.LoopingCall(self.print_progress) if progress else None

    @classmethod
    def from_crawler(cls, crawler):
        report = cls(crawler)
        crawler.signals.connect(report.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(report.spider_closed, signal=signals.spider_closed)
        return report

    def spider_opened(self, spider):
        if self.progress_loop is not None:
            self.progress_loop.start(1.0, now=False)

    def failures(self) -> dict[str, int]:
        return stats_with_prefix(self.stats, FAILED_PREFIX)

    def top_failures(self, prefix: str = FAILED_PREFIX) -> str:
        """The most frequent failure reasons (of articles only: ``ARTICLE_FAILURES_PREFIX``), each with
        its count and first URL."""
        counts = stats_with_prefix(self.stats, prefix)
        ranked = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))[:TOP_REASONS]
        return "; ".join(
            f"{reason} {count}" + (f" (e.g. {url})" if (url := self.stats.get_value(EXAMPLE_PREFIX + reason)) else "")
            for reason, count in ranked
        )

    def progress_text(self) -> str:
        get = self.stats.get_value
        elapsed = max(time.monotonic() - self.started, 1e-6)
        failures = self.failures()
        done = (get(ARTICLES_PARSED_KEY) or 0) + sum(
            v for k, v in failures.items() if not k.startswith("listing")
        )
        return (
            f"listing pages {get(LISTING_PAGES_KEY) or 0} | articles fetched {done} | "
            f"{done / elapsed:.1f}/s | stored {get('item_scraped_count') or 0} | failures {sum(failures.values())}"
        )

    def print_progress(self):
        sys.stderr.write("\r\x1b[2K" + self.progress_text())
        sys.stderr.flush()

    def outcome(self, reason: str) -> tuple[str, str | None]:
        """("ok" or "FAILED", why it failed)."""
        get = self.stats.get_value
        if get(ALARM_KEY):  # a coverage alarm or a failed canary: it names the fields
            return "FAILED", get(ALARM_KEY) if reason in GOOD_FINISH_REASONS else f"{reason}: {get(ALARM_KEY)}"
        if get(REMOVALS_WITHHELD_KEY):  # a site fault that looks like mass deletion
            return "FAILED", get(REMOVALS_WITHHELD_KEY)
        if get(ARCHIVE_FAILED_KEY):  # the raw pages must be whole for a reparse to be trusted
            return "FAILED", f"{get(ARCHIVE_FAILED_KEY)} response(s) not written to the archive (a full disk?)"
        if get(CLOSE_FAILURE_KEY):
            return "FAILED", f"the run could not finish its outputs: {get(CLOSE_FAILURE_KEY)}"
        if get(PENDING_KEY):
            return "FAILED", (
                f"outputs not written, pending for the next run (fix the cause: a full disk? a read-only "
                f"directory? then run again): {get(PENDING_KEY)}"
                + ("" if reason in GOOD_FINISH_REASONS else f"; finish reason: {reason}")
            )
        if reason not in GOOD_FINISH_REASONS:
            return "FAILED", reason  # the spider logged its own line for a stop it decided
        attempted, failed = get(ARTICLES_ATTEMPTED_KEY) or 0, get(ARTICLES_FAILED_KEY) or 0
        if attempted and failed >= attempted:
            return "FAILED", (f"all {attempted} articles this run attempted failed: "
                              f"{self.top_failures(ARTICLE_FAILURES_PREFIX)}")
        share = self.config.max_failed_share
        if failed >= MIN_FAILED_FOR_SHARE and failed > share * attempted:
            return "FAILED", (
                f"{failed} of the {attempted} articles this run attempted failed ({failed / attempted:.0%}, more "
                f"than WOSHIPM_MAX_FAILED_SHARE {share:.0%}): {self.top_failures(ARTICLE_FAILURES_PREFIX)}"
            )
        fallen = fallen_fields(self.stats, self.config)
        if fallen:
            return "FAILED", "field coverage below expectation (has the site changed its pages?): " + ", ".join(fallen)
        listing_failures = sum(v for k, v in self.failures().items() if k.startswith("listing"))
        if listing_failures and not get(LISTING_PAGES_KEY):
            return "FAILED", f"no listing page could be read ({listing_failures} failed): is the site reachable?"
        return "ok", None

    def summary_lines(self, reason: str, verdict: str) -> list[str]:
        get = self.stats.get_value
        written = get(JSONL_WRITTEN_KEY) or 0
        recovered = get(RECOVERED_KEY) or 0
        lines = [f"{verdict} (finish reason: {reason})"]
        where = f" to {get(JSONL_PATH_KEY)}" if written else ""
        lines.append(
            f"articles written: {written}{where}"
            + (f" ({recovered} recovered from an interrupted run)" if recovered else "")
            + f"; library files written: {get(MARKDOWN_WRITTEN_KEY) or 0}"
        )
        walks = stats_with_prefix(self.stats, WALKS_PREFIX)
        lines.append(
            f"listing pages walked: {get(LISTING_PAGES_KEY) or 0}; walks ended: "
            + (", ".join(f"{k} {v}" for k, v in walks.items()) or "none")
            + (f"; resumed: {get(WALKS_RESUMED_KEY)}" if get(WALKS_RESUMED_KEY) else "")
        )
        lines.append(
            f"articles fetched: {get(ARTICLES_PARSED_KEY) or 0}; new found in listings: "
            f"{get(ARTICLES_FOUND_NEW_KEY) or 0}; in several listings, fetched once: "
            f"{get(ARTICLES_CROSS_LISTED_KEY) or 0}"
            + (f"; from an earlier run's frontier: {get(FRONTIER_RESUMED_KEY)}" if get(FRONTIER_RESUMED_KEY) else "")
        )
        skipped = stats_with_prefix(self.stats, SKIPPED_PREFIX)
        parts = [f"{count} {SKIP_REASONS.get(name, name)}" for name, count in skipped.items() if count]
        lines.append("skipped: " + ("; ".join(parts) or "nothing"))
        lines.append("failures: " + (", ".join(f"{k} {v}" for k, v in self.failures().items()) or "none"))
        cut = stats_with_prefix(self.stats, CUT_PREFIX)
        if cut:
            lines.append("fields cut to their bounds (stored cut): " + ", ".join(f"{k} {v}" for k, v in cut.items()))
        if self.failures():
            lines.append(f"top failures: {self.top_failures()}")
        attempted = get(ARTICLES_ATTEMPTED_KEY) or 0
        if attempted:
            failed = get(ARTICLES_FAILED_KEY) or 0
            lines.append(f"articles attempted: {attempted}; read: {attempted - failed}; failed: {failed} "
                         f"({failed / attempted:.0%})")
        if get(REPARSE_PAGES_KEY) is not None or self.crawler.spider.name == "reparse":
            changed = (get(STATE_NEW_KEY) or 0) + (get(STATE_CHANGED_KEY) or 0)
            lines.append(
                f"reparsed from the archive, no request sent: {get(REPARSE_PAGES_KEY) or 0} page(s); "
                f"new or changed: {changed}; unchanged: {get(SKIPPED_UNCHANGED_KEY) or 0}; pages older "
                f"than the stored version, left: {get(REPARSE_OLDER_THAN_STORED_KEY) or 0}"
            )
        if get(REVISITS_REQUESTED_KEY) or get(REMOVALS_FOUND_KEY):
            lines.append(
                f"revisits: {get(REVISITS_REQUESTED_KEY) or 0} stored article(s) fetched again as due; "
                f"still due, left for later runs: {get(REVISITS_DUE_LEFT_KEY) or 0}; removals found: "
                f"{get(REMOVALS_FOUND_KEY) or 0}, marked: {get(REMOVALS_MARKED_KEY) or 0}"
            )
        if get(PENDING_KEY):
            lines.append(f"outputs pending (written by the next run): {get(PENDING_KEY)}")
        frontier = stats_with_prefix(self.stats, FRONTIER_PREFIX)
        if frontier.get("queued", 0) + frontier.get("failed", 0):
            lines.append(
                f"left for a later run: {frontier.get('queued', 0) + frontier.get('failed', 0)} article(s) in the "
                f"frontier ({frontier.get('queued', 0)} queued, {frontier.get('failed', 0)} failed)"
            )
        schedule = get(RETRY_SCHEDULE_KEY)
        if schedule:
            lines.append(retry_line(schedule))
        gaps = get(GAPS_KEY)
        if gaps:
            shown = ", ".join(f"{listing} page {page} ({reason})" for listing, page, reason in gaps[:SHOWN_GAPS])
            lines.append(f"listing gaps open: {len(gaps)}, the next run starts there: {shown}"
                         + (", …" if len(gaps) > SHOWN_GAPS else ""))
        if written:
            coverage = stats_with_prefix(self.stats, COVERAGE_PREFIX)
            lines.append(
                "field coverage: " + ", ".join(f"{name} {coverage.get(name, 0)}/{written}" for name in ARTICLE_FIELDS)
            )
        checked = coverage_line(self.stats, self.config)
        if checked:
            lines.append(checked)
        if get(COVERAGE_ACCEPTED_KEY):
            lines.append(f"coverage accepted by WOSHIPM_ACCEPT_COVERAGE: {get(COVERAGE_ACCEPTED_KEY)}")
        if reason in INTERRUPTED_REASONS:
            lines.append("interrupted: run the same command again to resume where this run stopped")
        return lines

    def spider_closed(self, spider, reason):
        if self.progress_loop is not None:
            if self.progress_loop.running:
                self.progress_loop.stop()
            self.print_progress()  # the final figures stay on screen
            sys.stderr.write("\n")
        verdict, why = self.outcome(reason)
        self.stats.set_value(OUTCOME_KEY, verdict)
        self.stats.set_value(EXIT_CODE_KEY, 0 if verdict == "ok" else 2 if reason == BAD_ARGUMENT_REASON else 1)
        for line in self.summary_lines(reason, verdict):
            logger.info("%s %s", SUMMARY_PREFIX, line)
        stats_file = self.config.stats_file
        if stats_file:  # for schedulers and tests: the run's stats as JSON, written whole
            data = {**self.stats.get_stats(), "finish_reason": reason}
            try:
                atomic_write(stats_file, dumps(data, indent=1, default=str).encode("utf-8"))
            except OSError as error:
                logger.error("%s stats file %s not written: %s", SUMMARY_PREFIX, stats_file, error)
        if verdict == "FAILED":
            logger.error("%s run FAILED: %s", SUMMARY_PREFIX, why)
