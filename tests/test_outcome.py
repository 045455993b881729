"""A run's outcome follows from what it attempted and what it got, whatever the reasons."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from scrapy.settings import Settings

from woshipm_crawler import settings as project_settings
from woshipm_crawler import statkeys
from woshipm_crawler.summary import CrawlSummary

STAT_KEY_RE = re.compile(r"""["']woshipm/""")  # a stat key written as a string (f-strings too)


class Stats(dict):
    def get_value(self, key, default=None):
        return self.get(key, default)

    def get_stats(self):
        return self


def outcome(attempted: int, failed: dict[str, int], reason: str = "finished", **settings) -> tuple[str, str | None]:
    stats = Stats({"woshipm/articles_attempted": attempted, "woshipm/articles_failed": sum(failed.values()),
                   "woshipm/listing_pages": 3})
    for name, count in failed.items():
        stats[f"woshipm/failed/{name}"] = count
        stats[f"woshipm/article_failures/{name}"] = count
        stats[f"woshipm/failed_example/{name}"] = f"http://127.0.0.1/pd/{count}.html"
    stats["woshipm/failed/listing_http"] = 100  # listing pages: not articles, never in the articles' reasons
    merged = Settings()
    merged.setmodule(project_settings)
    merged.setdict(settings)
    return CrawlSummary(SimpleNamespace(stats=stats, settings=merged), progress=False).outcome(reason)


def test_a_run_that_read_no_article_is_failed_whatever_the_reason():
    for reason in ("no_body", "http", "something_new"):
        verdict, why = outcome(64, {reason: 64})
        assert verdict == "FAILED"
        assert why == f"all 64 articles this run attempted failed: {reason} 64 (e.g. http://127.0.0.1/pd/64.html)"
    assert outcome(0, {}) == ("ok", None)  # nothing to fetch (an incremental run) is no failure


@pytest.mark.parametrize(("attempted", "failed", "verdict"), [
    (150, 30, "ok"),  # 20%: at the threshold
    (150, 31, "FAILED"),
    (10, 2, "ok"),  # too few failures to judge by their share
    (10, 3, "FAILED"),
    (140, 48, "FAILED"),  # a listing that never ends (bench/bench_failed_share.py)
    (150, 10, "ok"),  # 10% JS shells without a browser
])
def test_a_large_share_of_failed_articles_fails_the_run(attempted, failed, verdict):
    got, why = outcome(attempted, {"truncated": failed - failed // 3, "http": failed // 3})
    assert got == verdict
    if verdict == "FAILED":
        assert why.startswith(f"{failed} of the {attempted} articles this run attempted failed ")
        assert "more than WOSHIPM_MAX_FAILED_SHARE 20%" in why
        assert why.endswith(f"truncated {failed - failed // 3} (e.g. http://127.0.0.1/pd/{failed - failed // 3}.html); "
                            f"http {failed // 3} (e.g. http://127.0.0.1/pd/{failed // 3}.html)")


def test_the_share_is_a_setting():
    assert outcome(150, {"http": 31}, WOSHIPM_MAX_FAILED_SHARE=0.25)[0] == "ok"
    assert outcome(150, {"http": 31}, WOSHIPM_MAX_FAILED_SHARE=0.1)[0] == "FAILED"


def test_top_failures_name_the_three_most_frequent_reasons_with_an_example():
    stats = Stats({f"woshipm/failed/{name}": count for name, count in
                   {"a": 1, "b": 5, "c": 3, "listing_http": 4}.items()})
    stats["woshipm/failed_example/b"] = "http://x/b"
    report = CrawlSummary(SimpleNamespace(stats=stats, settings=Settings()), progress=False)
    assert report.top_failures() == "b 5 (e.g. http://x/b); listing_http 4; c 3"


def test_the_summary_names_every_skip_reason_from_one_prefix():
    stats = Stats({"woshipm/skipped/unchanged": 149, "woshipm/skipped/known": 12})
    crawler = SimpleNamespace(stats=stats, settings=Settings(), spider=SimpleNamespace(name="category"))
    lines = CrawlSummary(crawler, progress=False).summary_lines("finished", "ok")
    assert "skipped: 12 already in the state; 149 fetched again, unchanged" in lines


def test_stat_keys_are_named_in_statkeys_only():
    package = Path(statkeys.__file__).parent
    literals = [f"{path.relative_to(package.parent)}:{number}"
                for path in sorted(package.rglob("*.py")) if path.name != "statkeys.py"
                for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if STAT_KEY_RE.search(line)]
    assert literals == []
