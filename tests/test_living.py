"""A living archive on the replica's calendar: revisits on a schedule, stats over time, edits,
removals and returns, a site fault that looks like deletions, and a kill in the middle of a revisit run."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
import store_helpers
from conftest import PROJECT_ROOT

from woshipm_crawler.state import StateStore
from woshipm_replica import ReplicaServer
from woshipm_replica.corpus import Calendar
from woshipm_replica.crawls import FAST_SETTINGS, run_crawl, state_rows

pytestmark = pytest.mark.slow
ALL = {"category": "all"}
DAY0 = date(2026, 3, 1)
# The revisit ages, written down here (woshipm_crawler.schedule has its own copy).
DUE_AGES_DAYS = (1, 3, 7, 30, 90, 365)


def calm_replica(**kwargs) -> ReplicaServer:
    """160 articles on 2026-03-01, 4 more a day; no seeded edits or removals (the tests make their own)."""
    return ReplicaServer(articles=160, seed=5, calendar=Calendar(DAY0, rate=4, edit_share=0, removal_share=0),
                         **kwargs)


def crawl_day(server: ReplicaServer, export_dir: Path, args: dict | None = None, **settings):
    """A crawl of the replica's current day, with the crawler's clock set to the replica's."""
    server.reset_stats()
    crawl = run_crawl("category", server.base_url, export_dir, {**ALL, **(args or {})},
                      settings={"WOSHIPM_CLOCK": server.clock()["now"], **settings})
    return crawl, dict(server.path_counts)


def article_requests(paths: dict[str, int]) -> dict[str, int]:
    return {path: count for path, count in paths.items() if path.endswith(".html")}


def stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def observations(export_dir: Path) -> dict[int, list[str]]:
    by_id: dict[int, list[str]] = {}
    for article_id, observed_at in state_rows(export_dir, "SELECT id, observed_at FROM observations WHERE status = 200 "
                                                          "ORDER BY id, observed_at"):
        by_id.setdefault(article_id, []).append(observed_at)
    return by_id


def published(export_dir: Path) -> dict[int, datetime]:
    return {i: datetime.fromisoformat(p) for i, p in state_rows(export_dir, "SELECT id, published FROM articles")}


def ages_passed(born: datetime, after: datetime, until: datetime) -> list[int]:
    """The due ages (days) that fall in (after, until]."""
    return [age for age in DUE_AGES_DAYS if after < born + timedelta(days=age) <= until]


def test_young_articles_are_observed_when_due_and_never_before(tmp_path):
    with calm_replica() as server:
        day0, _ = crawl_day(server, tmp_path)
        assert day0.returncode == 0, day0.log[-3000:]
        clock0 = stamp(server.clock()["now"])
        born = published(tmp_path)
        young = {i for i, when in born.items() if clock0 - when < timedelta(days=7)}
        older = len(born) - len(young)
        assert len(young) >= 8

        server.advance(1)
        clock1 = stamp(server.clock()["now"])
        day1, paths1 = crawl_day(server, tmp_path)
        assert day1.returncode == 0, day1.log[-3000:]
        new1 = day1.stat("woshipm/state/new")
        due_young = [i for i in young if ages_passed(born[i], clock0, clock1)]
        assert due_young  # some reached a day, some three days
        # upkeep on day 1: the new, the young that came due, and the archive's daily share at most
        assert sum(article_requests(paths1).values()) <= new1 + len(due_young) + math.ceil(older / 365)
        assert day1.stat("woshipm/revisits/requested") >= len(due_young)

        server.advance(7)
        clock8 = stamp(server.clock()["now"])
        day8, _ = crawl_day(server, tmp_path)
        assert day8.returncode == 0, day8.log[-3000:]

        seen = observations(tmp_path)
        runs = [(clock0, clock0 + timedelta(hours=1)), (clock1, clock1 + timedelta(hours=1)),
                (clock8, clock8 + timedelta(hours=1))]
        for article_id in young:
            times = [stamp(t) for t in seen[article_id]]
            in_run = [sum(start <= t < end for t in times) for start, end in runs]
            assert in_run[0] == 1 and sum(in_run) == len(times), (article_id, seen[article_id])
            # observed again in a run exactly when a due age fell since its previous observation
            assert in_run[1] == bool(ages_passed(born[article_id], times[0], clock1)), article_id
            previous = max(t for t in times if t < clock8)
            assert in_run[2] == bool(ages_passed(born[article_id], previous, clock8)), article_id
        # every article of the site on day 8 is stored, each with its observations
        manifest = {row["id"]: row for row in server.corpus.manifest(server.base_url)}
        assert set(manifest) == set(published(tmp_path))

        # stats over time: article_stats.parquet, views never going down for one article
        done = subprocess.run([sys.executable, "-m", "scrapy", "export", "--format", "parquet", "-s",
                               f"WOSHIPM_EXPORT_DIR={tmp_path}"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        stats = pd.read_parquet(tmp_path / "dataset" / "article_stats.parquet")
        assert list(stats.columns) == ["id", "observed_at", "age_hours", "views", "comments", "collects"]
        assert len(stats) == sum(len(v) for v in seen.values())
        for _, rows in stats.sort_values("observed_at").groupby("id"):
            assert rows["views"].is_monotonic_increasing
        revisited = stats.groupby("id").size()
        some = int(revisited[revisited >= 3].index[0])
        rows = stats[stats.id == some].sort_values("observed_at")
        assert rows["views"].iloc[-1] == manifest[some]["stats"]["views"] > rows["views"].iloc[0]
        hours = (stamp(seen[some][0]) - born[some]).total_seconds() / 3600
        assert rows["age_hours"].iloc[0] == pytest.approx(hours, abs=0.01)
        articles = pd.read_parquet(tmp_path / "dataset" / "articles.parquet").set_index("id")
        assert articles.loc[some, "stats"]["views"] == manifest[some]["stats"]["views"]
        assert articles.loc[some, "stats_observed_at"] == pd.Timestamp(seen[some][-1])
        card = (tmp_path / "dataset" / "README.md").read_text(encoding="utf-8")
        assert "article_stats.parquet" in card and "`age_hours`" in card

        # an unchanged body with new stats: no new version, no JSONL line, the library header updated
        with StateStore(tmp_path / "state.sqlite3") as store:
            assert len(store_helpers.versions(store, some)) == 1
            path = store.export_path(some, "markdown")
        assert some not in {item["id"] for item in day8.items} | {item["id"] for item in day1.items}
        header = (tmp_path / "markdown" / path).read_text(encoding="utf-8")
        assert f"{manifest[some]['stats']['views']} views" in header

        # revisit=0: no stored article is fetched, only the new ones
        server.advance(1)
        off, paths = crawl_day(server, tmp_path, {"revisit": 0})
        assert off.returncode == 0, off.log[-3000:]
        assert sum(article_requests(paths).values()) == off.stat("woshipm/state/new") > 0
        assert not off.stat("woshipm/revisits/requested")


def item_lines(export_dir: Path) -> list[dict]:
    return [json.loads(line) for path in sorted((export_dir / "jsonl").glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()]


def test_an_edit_a_removal_and_its_return(tmp_path):
    with calm_replica() as server:
        day0, _ = crawl_day(server, tmp_path)
        assert day0.returncode == 0, day0.log[-3000:]
        corpus = server.corpus
        edited, removed = corpus.article_id(157), corpus.article_id(159)  # young: due within the week
        server.advance(8)
        server.set_corpus(edits=[edited], removals={removed: 410})
        day8, _ = crawl_day(server, tmp_path)
        assert day8.returncode == 0, day8.log[-3000:]
        # a stored article answering 410 is a removal, its own line of the summary, not a failure (nor `http`)
        assert "removals found: 1, marked: 1" in day8.log
        assert "woshipm summary: failures: none" in day8.log
        assert not {key for key in day8.stats if key.startswith("woshipm/failed/")}
        lines = {item["id"]: item for item in day8.items}
        with StateStore(tmp_path / "state.sqlite3") as store:
            assert [v["version"] for v in store_helpers.versions(store, edited)] == [1, 2]
            assert lines[edited]["content_hash"] == server.corpus.manifest_record(157, server.base_url)[
                "content_hash"] != store_helpers.versions(store, edited)[0]["content_hash"]
            gone = store.get_item(removed)
            assert gone["removed_at"] is not None and gone["removed_at"] >= server.clock()["today"]
            assert lines[removed]["removed_at"] == gone["removed_at"]  # the JSONL line says so
            # kept as it was
            assert lines[removed]["content_hash"] == store_helpers.versions(store, removed)[0]["content_hash"]
            path = tmp_path / "markdown" / store.export_path(removed, "markdown")
        assert "**Removed:** " in path.read_text(encoding="utf-8")
        summary = (tmp_path / "markdown" / "SUMMARY.md").read_text(encoding="utf-8")
        line = next(x for x in summary.splitlines() if f"/{removed}.md" in x)
        assert "(removed from the site)" in line
        assert sum("(removed from the site)" in x for x in summary.splitlines()) == 1

        # it comes back: the next fetch clears the mark
        server.set_removals({})
        back, _ = crawl_day(server, tmp_path, {"refresh": 1, "max_pages": 1})
        assert back.returncode == 0, back.log[-3000:]
        returned = next(item for item in back.items if item["id"] == removed)
        assert returned["removed_at"] is None
        with StateStore(tmp_path / "state.sqlite3") as store:
            assert store.get_item(removed)["removed_at"] is None
            assert len(store_helpers.versions(store, removed)) == 3  # stored, removed, back
        assert "**Removed:**" not in path.read_text(encoding="utf-8")
        assert "(removed from the site)" not in (tmp_path / "markdown" / "SUMMARY.md").read_text(encoding="utf-8")
        # every version exactly once in the JSONL files
        keys = [(i["id"], i["content_hash"], i["crawled_at"], i["removed_at"]) for i in item_lines(tmp_path)]
        assert len(keys) == len(set(keys))


def test_half_the_revisits_answering_404_is_a_failed_run_that_marks_nothing(tmp_path):
    with calm_replica() as server:
        day0, _ = crawl_day(server, tmp_path)
        assert day0.returncode == 0, day0.log[-3000:]
        server.advance(8)
        due = [i for (i,) in state_rows(tmp_path, f"SELECT id FROM articles WHERE next_due <= "
                                                  f"'{stamp(server.clock()['now']):%Y-%m-%dT%H:%M:%SZ}' ORDER BY id")]
        assert len(due) >= 8
        faulty = due[::2]
        server.set_removals({article_id: 404 for article_id in faulty})
        fault, _ = crawl_day(server, tmp_path)
        assert fault.returncode == 1
        assert "looks like a site fault" in fault.log and "run FAILED" in fault.log
        assert fault.stat("woshipm/removals/found") == len(faulty)
        assert f"removals found: {len(faulty)}, marked: 0" in fault.log
        assert not {key for key in fault.stats if key.startswith("woshipm/failed/")}  # removals, not failures
        assert all(item.get("removed_at") is None for item in item_lines(tmp_path))
        with StateStore(tmp_path / "state.sqlite3") as store:
            assert all(store.get_item(i)["removed_at"] is None for i in faulty)
        # the site is back: a later run revisits them (their marks waited) and marks nothing
        server.set_removals({})
        later, paths = crawl_day(server, tmp_path)
        assert later.returncode == 0, later.log[-3000:]
        asked = {int(p.rsplit("/", 1)[1][:-5]) for p in article_requests(paths)}
        assert set(faulty) <= asked
        assert not later.stat("woshipm/removals/found")


def test_a_kill_in_the_middle_of_a_revisit_run_loses_and_repeats_nothing(tmp_path):
    with calm_replica(latency=0.03) as server:
        day0, _ = crawl_day(server, tmp_path)
        assert day0.returncode == 0, day0.log[-3000:]
        stored = {i for (i,) in state_rows(tmp_path, "SELECT id FROM articles")}
        versions = dict(state_rows(tmp_path, "SELECT id, version FROM articles"))
        edited = sorted(stored)[:12]
        server.set_corpus(edits=edited)  # some revisits find a new version
        later = stamp(server.clock()["now"]) + timedelta(days=800)  # everything is due
        clock = later.astimezone(timezone.utc).isoformat()
        settings = {**FAST_SETTINGS, "WOSHIPM_BASE_URL": server.base_url, "WOSHIPM_EXPORT_DIR": str(tmp_path),
                    "CONCURRENT_REQUESTS": "2", "CONCURRENT_REQUESTS_PER_DOMAIN": "2", "WOSHIPM_CLOCK": clock}
        # revisit=500: the share a run may take is not under test here
        command = [sys.executable, "-m", "scrapy", "crawl", "category", "-a", "category=all", "-a", "revisit=500"]
        for key, value in settings.items():
            command += ["-s", f"{key}={value}"]
        server.reset_stats()
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        window = later.strftime("%Y-%m-%dT%H:%M:%SZ")[:10]

        def revisited() -> int:
            rows = state_rows(tmp_path, f"SELECT COUNT(*) FROM observations WHERE observed_at >= '{window}'")
            return rows[0][0] if rows else 0

        deadline = time.monotonic() + 120
        while revisited() < len(stored) // 3 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        first = dict(server.path_counts)
        assert 0 < revisited() < len(stored)  # killed in the middle

        server.reset_stats()
        again = run_crawl("category", server.base_url, tmp_path, {**ALL, "revisit": 500},
                          settings={"WOSHIPM_CLOCK": clock})
        assert again.returncode == 0, again.log[-3000:]
        second = dict(server.path_counts)
    # nothing lost: every stored article observed once in the revisit window; nothing repeated but
    # the few requests in flight at the kill
    with sqlite3.connect(tmp_path / "state.sqlite3") as conn:
        counts = dict(conn.execute(f"SELECT id, COUNT(*) FROM observations WHERE observed_at >= '{window}' "
                                   "GROUP BY id").fetchall())
    assert set(counts) == stored and set(counts.values()) == {1}
    repeated = set(article_requests(first)) & set(article_requests(second))
    assert len(repeated) <= 2 + 2  # in flight (2) when killed, and requests sent but not yet stored
    # every version exactly once: the edited ones got one more, in the state and the JSONL files
    after = dict(state_rows(tmp_path, "SELECT id, version FROM articles"))
    assert {i: after[i] - versions[i] for i in stored} == {i: int(i in edited) for i in stored}
    lines = item_lines(tmp_path)
    keys = [(i["id"], i["content_hash"], i["duplicate_of"]) for i in lines]
    assert len(keys) == len(set(keys))
    with StateStore(tmp_path / "state.sqlite3") as store:
        for article_id in edited:  # the new version's line, once
            assert sum(i["id"] == article_id and i["content_hash"] == store.get_item(article_id)["content_hash"]
                       for i in lines) == 1
    library = list((tmp_path / "markdown" / "articles").rglob("*.md"))
    assert len([p for p in library if p.stem.isdigit()]) == len(stored)
