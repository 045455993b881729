"""The replica's calendar (a site that lives: new articles, growing stats, edits, removals) and the
crawler's clock (``WOSHIPM_CLOCK``)."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone

import pytest

from woshipm_crawler import util
from woshipm_replica import Corpus, ReplicaServer
from woshipm_replica.corpus import Calendar, growth

DAY0 = date(2026, 3, 1)


def corpus_on(day: int, articles: int = 160, rate: float = 4, **shares) -> Corpus:
    return Corpus(articles=articles, seed=5, calendar=Calendar(DAY0, day=day, rate=rate, **shares))


def get(server: ReplicaServer, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_day_zero_holds_the_articles_asked_then_the_rate_a_day():
    day0, day1, day10 = corpus_on(0), corpus_on(1), corpus_on(10)
    assert day0.size == 160
    assert day0.published_at(159) <= day0.now < day0.published_at(160)
    assert day1.size - day0.size == pytest.approx(4, abs=1)
    assert day10.size - day0.size == pytest.approx(40, abs=1)
    # The articles of day 0 are the same articles on day 10, only older.
    for index in (0, 42, 149, 159):
        assert day10.article_id(index) == day0.article_id(index)
        assert day10.published_at(index) == day0.published_at(index)
        assert day10.title(index) == day0.title(index)
    # Everything shown is published by "now", newest first.
    shown = list(day10.newest_first())
    assert all(day10.published_at(i) <= day10.now for i in shown)
    assert shown == sorted(shown, reverse=True)
    # Without a calendar the corpus is the one it always was.
    assert Corpus(160, seed=5).published_at(159) != day0.published_at(159)
    assert Corpus(160, seed=5).size == 160 and Corpus(160, seed=5).now is None


def test_stats_grow_fast_then_flatten_and_never_go_down():
    assert growth(timedelta(0)) == pytest.approx(0)
    assert 0.3 < growth(timedelta(days=1)) < 0.5 < growth(timedelta(days=3)) < 0.9 < growth(timedelta(days=30))
    assert growth(timedelta(days=400)) > 0.999
    days = [corpus_on(d) for d in (0, 1, 3, 8, 40)]
    young = list(range(150, 160))
    for index in young + [0, 100]:
        views = [c.header(index).views for c in days]
        comments = [c.article(index).comments for c in days]
        collects = [c.article(index).collects for c in days]
        for series in (views, comments, collects):
            assert series == sorted(series), (index, series)
    # the young ones gain most of their views in their first days; the old ones barely change
    assert sum(days[-1].header(i).views for i in young) > 1.5 * sum(days[0].header(i).views for i in young)
    assert days[-1].header(0).views - days[0].header(0).views <= 0.01 * days[-1].header(0).views + 1
    # the manifest says what the pages say, as of the day
    record = next(r for r in days[2].manifest() if r["id"] == days[2].article_id(155))
    assert record["stats"]["views"] == days[2].header(155).views


def test_seeded_edits_and_removals_happen_days_after_publication():
    shares = {"edit_share": 0.2, "removal_share": 0.2}
    before, after = corpus_on(0, **shares), corpus_on(90, **shares)
    indices = range(before.size)
    edited = [i for i in indices if after.edited(i)]
    removed = [i for i in indices if after.removed(i)]
    assert 10 < len(edited) < 60 and 10 < len(removed) < 60  # about 20% of 160 (edge cases spared)
    assert {after.removed(i) for i in removed} == {404, 410}
    for index in edited:
        assert not before.edited(index) or before.now - before.published_at(index) >= timedelta(days=1)
        if not before.edited(index):
            assert after.manifest_record(index, "http://x")["content_hash"] != before.manifest_record(
                index, "http://x")["content_hash"]
    shown = set(after.newest_first())
    assert not shown & set(removed)
    manifest_ids = {r["id"] for r in after.manifest()}
    assert manifest_ids == {after.article_id(i) for i in shown}
    assert all(after.article_id(i) not in manifest_ids for i in removed)
    # the edge-case articles (indices of SPECIAL_INDEX) are never touched
    from woshipm_replica.corpus import SPECIAL_INDEX
    assert not set(SPECIAL_INDEX.values()) & (set(edited) | set(removed))


def test_server_clock_advances_and_removed_pages_answer_their_status():
    with ReplicaServer(articles=160, seed=5, today=DAY0, rate=4) as server:
        status, body = get(server, "/__replica__/clock")
        clock = json.loads(body)
        gone = [i for i in range(160) if server.corpus.removed(i)]  # seeded removals before day 0
        assert len(gone) <= 4
        assert status == 200 and clock == {"today": "2026-03-01", "now": "2026-03-01T12:00:00+08:00",
                                            "day": 0, "articles": 160 - len(gone)}
        status, body = get(server, "/__replica__/clock?advance=2")
        clock = json.loads(body)
        assert clock["day"] == 2 and clock["today"] == "2026-03-03"
        assert clock["articles"] == len(server.corpus.newest_first())
        assert clock["articles"] > 160
        newest = server.corpus.newest_first()[0]
        assert get(server, server.corpus.path(newest))[0] == 200
        victim = server.corpus.article_id(150)
        server.set_removals({victim: 410})
        assert get(server, server.corpus.path(150))[0] == 410
        assert victim not in {r["id"] for r in server.corpus.manifest()}
        server.set_removals({})
        assert get(server, server.corpus.path(150))[0] == 200
        assert json.loads(get(server, "/__replica__/clock")[1])["day"] == 2  # kept across other changes
    with ReplicaServer(articles=10) as plain:
        assert get(plain, "/__replica__/clock?advance=1")[0] == 400


def test_cli_manifest_as_of_a_day(tmp_path):
    out = tmp_path / "manifest.jsonl"
    subprocess.run([sys.executable, "-m", "woshipm_replica", "--dump-manifest", str(out), "--articles", "160",
                    "--seed", "5", "--today", "2026-03-01", "--rate", "4", "--day", "3", "--base-url", "http://h"],
                   check=True, timeout=60)
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert records == list(corpus_on(3).manifest("http://h"))
    assert len(records) > 160


# -- the crawler's clock ---------------------------------------------------------------------------


def test_clock_is_now_for_every_stamp_and_runs_on():
    try:
        util.set_clock("2026-03-09T12:00:00+08:00")
        assert util.utc_stamp() in ("2026-03-09T04:00:00Z", "2026-03-09T04:00:01Z")
        first = util.now()
        assert first.tzinfo is not None and abs(first - datetime(2026, 3, 9, 4, tzinfo=timezone.utc)) < timedelta(
            seconds=2)
        time.sleep(0.05)
        assert util.now() > first  # it runs on at the real pace
        for bad in ("2026-03-09T12:00:00", "next tuesday"):
            with pytest.raises(ValueError):
                util.set_clock(bad)
    finally:
        util.set_clock(None)
    assert abs(util.now() - datetime.now(timezone.utc)) < timedelta(seconds=2)
