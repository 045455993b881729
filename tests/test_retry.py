"""Site-wide backoff: Retry-After honoured by every slot, exponential backoff, gradual recovery."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

from scrapy import Spider, signals
from scrapy.core.downloader import Slot
from scrapy.http import Request, Response
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from woshipm_crawler import retry
from woshipm_crawler.retry import SiteBackoffMiddleware, retry_after_seconds


def test_retry_after_in_seconds_and_as_an_http_date():
    now = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc)
    assert retry_after_seconds(b"7") == 7.0
    assert retry_after_seconds("Sat, 28 Nov 2026 12:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Sat, 28 Nov 2026 11:00:00 GMT", now=now) == 0.0  # already past
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def middleware(monkeypatch, **settings) -> tuple[SiteBackoffMiddleware, dict[str, Slot], Clock]:
    """The middleware on a crawler whose downloader has two slots of the site, on a fake clock."""
    crawler = get_crawler(Spider, settings_dict={"WOSHIPM_RETRY_BACKOFF_BASE": 0.5, "WOSHIPM_RETRY_BACKOFF_MAX": 8,
                                                 "DOWNLOAD_DELAY": 0.2, "AUTOTHROTTLE_ENABLED": False, **settings})
    crawler.spider = Spider.from_crawler(crawler, name="t")
    slots = {"www.woshipm.com": Slot(4, 0.2, 0), "woshipm.com": Slot(4, 0.2, 0)}
    crawler.engine = SimpleNamespace(downloader=SimpleNamespace(slots=slots))
    clock = Clock()
    monkeypatch.setattr(retry.time, "monotonic", clock)
    return SiteBackoffMiddleware.from_crawler(crawler), slots, clock


def penalty(slot: Slot, now: float) -> float:
    """Seconds before the slot sends its next request (Scrapy's Downloader._process_queue rule)."""
    return slot.download_delay() - now + slot.lastseen if slot.download_delay() else 0.0


def answer(mw, status: int, headers=None, meta=None):
    """An answer as the downloader hands it on: ``response_downloaded`` first, then the middlewares."""
    request = Request("http://www.woshipm.com/pd/1.html", meta=meta or {})
    response = Response(request.url, status=status, headers=headers or {})
    mw.crawler.signals.send_catch_log(signals.response_downloaded, response=response, request=request,
                                      spider=mw.crawler.spider)
    return mw.process_response(request, response)


def test_the_pause_is_in_force_before_the_downloader_takes_its_next_request(monkeypatch):
    # Scrapy's downloader sends response_downloaded, then serves the slot's queue, and only then do the
    # middlewares see the answer: the pause must already hold when the queue is served.
    mw, slots, clock = middleware(monkeypatch)
    request = Request("http://www.woshipm.com/pd/1.html")
    mw.crawler.signals.send_catch_log(signals.response_downloaded, spider=mw.crawler.spider, request=request,
                                      response=Response(request.url, status=429, headers={"Retry-After": "2"}))
    assert all(penalty(slot, clock.now) >= 2.0 for slot in slots.values())


def test_a_429_pauses_every_slot_of_the_site_for_its_retry_after(monkeypatch):
    mw, slots, clock = middleware(monkeypatch)
    retried = answer(mw, 429, {"Retry-After": "3"})
    assert isinstance(retried, Request) and retried.meta["retry_times"] == 1
    for slot in slots.values():
        assert penalty(slot, clock.now) >= 3.0  # nothing leaves any slot inside the window
        assert slot.delay == 1.5  # then half the wait between requests
    clock.now += 3.0
    greedy = answer(mw, 429, {"Retry-After": "3600"})
    assert isinstance(greedy, Request)
    assert 8.0 <= penalty(slots["woshipm.com"], clock.now) <= 8.0 + slots["woshipm.com"].delay  # capped


def test_without_retry_after_the_pause_doubles_per_slow_down_in_a_row(monkeypatch):
    mw, slots, clock = middleware(monkeypatch)
    pauses = []
    for _ in range(6):
        answer(mw, 503)
        pauses.append(mw.paused_until - clock.now)
        answer(mw, 503)  # an answer to a request sent before the pause: the same event
        clock.now = mw.paused_until
    assert pauses == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    answer(mw, 200)
    answer(mw, 503)
    assert mw.paused_until - clock.now == 0.5  # a good answer in between starts over


def test_the_pace_recovers_gradually_after_a_pause(monkeypatch):
    mw, slots, clock = middleware(monkeypatch)
    answer(mw, 429, {"Retry-After": "4"})
    clock.now += 4
    delays = []
    for _ in range(12):
        answer(mw, 200)
        delays.append(round(slots["www.woshipm.com"].delay, 3))
    assert delays[:4] == [1.6, 1.28, 1.024, 0.819]
    assert delays == sorted(delays, reverse=True) and delays[-1] == 0.2  # back to DOWNLOAD_DELAY
    assert mw.floor == 0.0


def test_retries_give_up_and_check_pages_are_no_rate_signal(monkeypatch):
    mw, slots, clock = middleware(monkeypatch, RETRY_TIMES=2)
    request = Request("http://www.woshipm.com/pd/2.html")
    for expected in (1, 2):
        request = mw.process_response(request, Response(request.url, status=500))
        assert request.meta["retry_times"] == expected
    assert isinstance(mw.process_response(request, Response(request.url, status=500)), Response)  # given up
    shown = answer(mw, 503, meta={"dont_retry": True})  # a check page the render stage hands on
    assert isinstance(shown, Response) and mw.paused_until == 0.0
    for _ in range(4):  # a rate-limited request waits longer before it is given up
        request = mw.process_response(request.replace(meta={}), Response(request.url, status=429))
        assert isinstance(request, Request)


def test_settings_name_the_project_and_stay_polite():
    from woshipm_crawler import settings as project

    settings = Settings()
    settings.setmodule(project)
    assert "woshipm_crawler" in settings["USER_AGENT"]
    assert settings.getbool("ROBOTSTXT_OBEY") and settings.getbool("AUTOTHROTTLE_ENABLED")
    assert settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") <= 4 and settings.getfloat("DOWNLOAD_DELAY") >= 1
    assert 429 in settings.getlist("RETRY_HTTP_CODES")
