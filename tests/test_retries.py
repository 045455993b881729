"""No article abandoned: failed articles are tried again by later runs on a backoff, never dropped,
and an operator can make them due at once (``-a requeue=``)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
import store_helpers

from woshipm_crawler.state import StateStore
from woshipm_replica import ReplicaServer
from woshipm_replica.crawls import run_crawl

pytestmark = pytest.mark.slow
ALL = {"category": "all"}
START = datetime.fromisoformat("2026-12-01T09:00:00+08:00")


def at(hours: float) -> dict:
    """Settings for a run ``hours`` after START (the retry schedule's clock)."""
    return {"WOSHIPM_CLOCK": (START + timedelta(hours=hours)).isoformat()}


def near(stamp: str, hours: float) -> bool:
    """``stamp`` (UTC) is ``hours`` after START, give or take the minutes the runs took: the clock
    runs on from WOSHIPM_CLOCK at the real pace."""
    when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return abs(when - (START + timedelta(hours=hours))) < timedelta(minutes=15)


def requests_for(server, article_id: int) -> int:
    return sum(n for path, n in server.path_counts.items() if path.endswith(f"/{article_id}.html"))


def test_an_article_that_fails_five_runs_in_a_row_is_stored_by_the_sixth(tmp_path):
    with ReplicaServer(articles=30, seed=1) as server:
        manifest = {row["id"]: row for row in server.corpus.manifest(server.base_url)}
        article_id = sorted(manifest)[len(manifest) // 2]
        server.set_faults(f"truncate=ids:{article_id}")
        first = run_crawl("category", server.base_url, tmp_path, ALL, settings=at(0))
        assert first.returncode == 0, first.log[-3000:]  # one odd page of 30
        assert {item["id"] for item in first.items} == set(manifest) - {article_id}
        # An hour's backoff, doubled after each failure: runs before it do not ask for the page.
        early = run_crawl("category", server.base_url, tmp_path, ALL, settings=at(0.5))
        assert early.returncode == 0 and requests_for(server, article_id) == 1
        assert "waiting for their next try" in early.log
        waiting = re.search(r"failed articles waiting for a retry: 1: truncated 1 \(next try (\S+Z)\)", early.log)
        assert waiting and near(waiting[1], 1), early.log[-3000:]
        hours = 0.0
        for attempt in range(2, 6):  # the next four runs, each as soon as it is due: all fail
            hours += 2 ** (attempt - 2)
            # Two minutes a run of slack: the previous run failed it a few seconds after its start.
            crawl = run_crawl("category", server.base_url, tmp_path, ALL, settings=at(hours + attempt / 30))
            assert requests_for(server, article_id) == attempt
            # The run tried one article and read none: FAILED, naming it.
            assert crawl.returncode == 1
            assert f"all 1 articles this run attempted failed: truncated 1 (e.g. {manifest[article_id]['url']})" \
                in crawl.log
        with StateStore(tmp_path / "state.sqlite3") as store:
            assert store._read("SELECT attempts, last_error FROM frontier WHERE id = ?", (article_id,)) == [
                (5, "truncated")]
            [(reason, count, first_try, last_try)] = store.retry_schedule()
            assert (reason, count, first_try) == ("truncated", 1, last_try) and near(first_try, 15 + 16)
        server.set_faults("")  # the cause is fixed
        sixth = run_crawl("category", server.base_url, tmp_path, ALL, settings=at(hours + 16.5))
    assert sixth.returncode == 0, sixth.log[-3000:]
    assert [item["id"] for item in sixth.items] == [article_id]
    assert sixth.items[0]["body_text"] == manifest[article_id]["body_text"]
    assert "waiting for a retry" not in sixth.log
    with StateStore(tmp_path / "state.sqlite3") as store:
        assert store_helpers.known_ids(store) == set(manifest) and store.retry_schedule() == []


def test_requeue_tries_failed_articles_at_once_all_or_by_reason(tmp_path, scrapy_command):
    with ReplicaServer(articles=30, seed=1) as server:
        manifest = {row["id"]: row for row in server.corpus.manifest(server.base_url)}
        cut, undated = sorted(manifest)[3:5], sorted(manifest)[10]
        server.set_faults(f"truncate=ids:{';'.join(map(str, cut))},baddate=ids:{undated}")
        first = run_crawl("category", server.base_url, tmp_path, ALL, settings=at(0))
        assert first.stat("woshipm/failed/truncated") == 2 and first.stat("woshipm/failed/bad_date") == 1
        export = scrapy_command(["export", "--format", "jsonl"], tmp_path)
        assert export.returncode == 0, export.stderr
        card = (tmp_path / "dataset" / "README.md").read_text(encoding="utf-8")
        assert "## Articles not in the dataset yet" in card
        for reason, count in (("truncated", 2), ("bad_date", 1)):
            row = re.search(rf"\| `{reason}` \| {count} \| (\S+Z)( to \S+Z)? \|", card)
            assert row and near(row[1], 1), card
        server.set_faults("")
        # Ten minutes later nothing is due; the operator, who fixed the cause, re-queues one reason.
        by_reason = run_crawl("category", server.base_url, tmp_path, {**ALL, "requeue": "truncated"},
                              settings=at(1 / 6))
        assert by_reason.returncode == 0, by_reason.log[-3000:]
        assert {item["id"] for item in by_reason.items} == set(cut)
        assert "Re-queued 2 failed article(s) whose last failure was truncated" in by_reason.log
        assert "failed articles waiting for a retry: 1: bad_date 1" in by_reason.log
        every = run_crawl("category", server.base_url, tmp_path, {**ALL, "requeue": "all"}, settings=at(1 / 6))
        bad = run_crawl("category", server.base_url, tmp_path, {**ALL, "requeue": "no such;reason"})
    assert {item["id"] for item in every.items} == {undated}
    assert "Re-queued 1 failed article(s): they are tried in this run" in every.log
    assert bad.returncode == 2 and "-a requeue=no such;reason: expected all, or a failure reason" in bad.log
    with StateStore(tmp_path / "state.sqlite3") as store:
        assert store_helpers.known_ids(store) == set(manifest) and store.retry_schedule() == []
