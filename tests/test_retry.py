"""Backoff that honours Retry-After, and the run report's progress line."""

from __future__ import annotations

from datetime import datetime, timezone

from scrapy.http import Request, Response
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from woshipm_crawler.retry import BackoffRetryMiddleware, retry_after_seconds


def test_retry_after_in_seconds_and_as_an_http_date():
    now = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc)
    assert retry_after_seconds(b"7") == 7.0
    assert retry_after_seconds("Sat, 28 Nov 2026 12:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Sat, 28 Nov 2026 11:00:00 GMT", now=now) == 0.0  # already past
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def middleware(**settings) -> BackoffRetryMiddleware:
    crawler = get_crawler(settings_dict={"WOSHIPM_RETRY_BACKOFF_BASE": 0.5, "WOSHIPM_RETRY_BACKOFF_MAX": 8,
                                         **settings})
    return BackoffRetryMiddleware.from_crawler(crawler)


def test_backoff_doubles_per_retry_up_to_the_cap_and_obeys_the_server():
    mw = middleware()
    request = Request("http://127.0.0.1/x")
    assert [mw.backoff(request.replace(meta={"retry_times": n})) for n in range(6)] == [0.5, 1, 2, 4, 8, 8]
    told = Response("http://127.0.0.1/x", status=429, headers={"Retry-After": "3"})
    assert mw.backoff(request, told) == 3.0
    greedy = Response("http://127.0.0.1/x", status=429, headers={"Retry-After": "3600"})
    assert mw.backoff(request, greedy) == 8  # capped: an hour-long wait would stall the crawl


def test_settings_name_the_project_and_stay_polite():
    from woshipm_crawler import settings as project

    settings = Settings()
    settings.setmodule(project)
    assert "woshipm_crawler" in settings["USER_AGENT"]
    assert settings.getbool("ROBOTSTXT_OBEY") and settings.getbool("AUTOTHROTTLE_ENABLED")
    assert settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") <= 4 and settings.getfloat("DOWNLOAD_DELAY") >= 1
    assert 429 in settings.getlist("RETRY_HTTP_CODES")
