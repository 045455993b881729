"""The state store: outcomes and versions, listings, exports and crash recovery, two processes at once."""

from __future__ import annotations

import calendar
import json
import multiprocessing
import os
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import pytest
import store_helpers
from conftest import make_item

from woshipm_crawler import textmodel
from woshipm_crawler.pipelines import jsonl_has
from woshipm_crawler.state import (
    SCHEMA_VERSION,
    BadId,
    Outcome,
    StateError,
    StateStore,
    WalkStart,
    emission_key,
)
from woshipm_crawler.util import set_clock

LARGEST_SQLITE_INTEGER = 2**63 - 1


@pytest.fixture
def store(tmp_path):
    with StateStore(tmp_path / "state.sqlite3") as s:
        yield s


def test_schema_wal_and_reopen(tmp_path):
    path = tmp_path / "state.sqlite3"
    StateStore(path).close()
    with StateStore(path) as store:  # idempotent
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
        assert store._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(RuntimeError, match="newer"):
        StateStore(path)


def test_new_changed_unchanged_and_versions(store):
    first = make_item(7, "第一版正文。")
    result = store.commit_item(first, "job-1")
    assert (result.outcome, result.version, result.emit) == (Outcome.NEW, 1, True)
    assert store.is_known(7) and store_helpers.known_ids(store) == {7} and store.count() == 1

    # same body, white-space noise and new stats: UNCHANGED, stats refreshed, crawled_at kept
    again = make_item(
        7,
        "第一版正文。 ",
        stats={"views": 99, "comments": 2, "collects": 1},
        crawled_at="2024-06-02T00:00:00Z",
    )
    again["content_hash"] = textmodel.content_hash(again["body_text"])
    again["listings"] = ["tag:ai"]
    result = store.commit_item(again, "job-2")
    assert (result.outcome, result.version, result.emit) == (Outcome.UNCHANGED, 1, False)
    stored = store.get_item(7)
    assert stored["stats"]["views"] == 99 and stored["crawled_at"] == "2024-06-01T00:00:00Z"
    assert stored["listings"] == ["category:pd", "tag:ai"]
    row = store_helpers.article_row(store, 7)
    assert (row["first_seen"], row["last_seen"]) == ("2024-06-01T00:00:00Z", "2024-06-02T00:00:00Z")

    # changed body: a new version, the old item kept in versions
    changed = make_item(7, "第二版正文，改了一句。", crawled_at="2024-06-03T00:00:00Z")
    result = store.commit_item(changed, "job-3")
    assert (result.outcome, result.version) == (Outcome.CHANGED, 2)
    assert store.get_item(7)["body_text"] == "第二版正文，改了一句。"
    history = store_helpers.versions(store, 7)
    assert [(v["version"], v["job"]) for v in history] == [(1, "job-1"), (2, "job-3")]
    assert history[0]["item"]["body_text"] == "第一版正文。" and history[1]["item"] is None
    assert history[1]["content_hash"] == changed["content_hash"]
    assert store_helpers.article_row(store, 7)["last_seen"] == "2024-06-03T00:00:00Z"

    # missing content_hash is computed from body_text
    bare = {"id": 8, "body_text": "另一篇"}
    assert store.commit_item(bare, "job-3").outcome is Outcome.NEW
    assert store_helpers.article_row(store, 8)["content_hash"] == textmodel.content_hash("另一篇")


def test_listings_first_and_last_seen(store):
    store_helpers.record_listings(store, 5, ["category:pd", "tag:ue"], "2024-01-02T00:00:00Z")
    store_helpers.record_listings(store, 5, ["category:pd"], "2024-01-05T00:00:00Z")
    store_helpers.record_listings(store, 5, ["category:pd"], "2024-01-01T00:00:00Z")  # an older sighting arriving late
    store.commit_item(make_item(5, listings=["tag:new"], crawled_at="2024-01-03T00:00:00Z"), "job")
    assert store.listings(5) == {
        "category:pd": ("2024-01-01T00:00:00Z", "2024-01-05T00:00:00Z"),
        "tag:ue": ("2024-01-02T00:00:00Z", "2024-01-02T00:00:00Z"),
        "tag:new": ("2024-01-03T00:00:00Z", "2024-01-03T00:00:00Z"),
    }


def test_iter_items_round_trip_chinese(tmp_path):
    path = tmp_path / "state.sqlite3"
    items = [make_item(i, f"第{i}篇：用户体验与“增长”😀") for i in (30, 10, 20)]
    items[0]["author"] = {"name": "青山", "id": None, "url": None}
    with StateStore(path) as store:
        for item in items:
            store.commit_item(item, "job")
    with StateStore(path) as store:
        out = list(store.iter_items(batch=2))
        assert [i["id"] for i in out] == [10, 20, 30]
        assert out == sorted(items, key=lambda i: i["id"])
        assert store.get_item(30)["author"]["name"] == "青山" and store.get_item(31) is None
    raw = sqlite3.connect(path).execute("SELECT item_json FROM articles WHERE id = 30").fetchone()[0]
    assert "用户体验" in raw and "\\u" not in raw  # stored readable, ensure_ascii=False


def test_export_paths_and_mark_exported(store):
    result = store.commit_item(make_item(1), "job-1")
    assert [p.id for p in store_helpers.pending_exports(store)] == [1]
    replaced = store_helpers.mark_exported(store, 1, result.version, {"markdown": "library/pd/1.md"}, job="job-1")
    assert replaced == {} and store_helpers.pending_exports(store) == []
    assert store.export_path(1, "markdown") == "library/pd/1.md" and store.export_path(1, "html") is None
    assert [e[:2] for e in store_helpers.emissions(store, 1)] == [(1, "job-1")]
    row = store_helpers.article_row(store, 1)
    assert (row["exported"], row["claim_job"]) == (1, None)

    # a newer version committed meanwhile stays pending when the older one is marked
    v2 = store.commit_item(make_item(1, "新正文"), "job-2")
    v3 = store.commit_item(make_item(1, "更新的正文"), "job-3")
    store_helpers.mark_exported(store, 1, v2.version, {"markdown": "library/pd/1.md"})
    assert [(p.id, p.version) for p in store_helpers.pending_exports(store)] == [(1, v3.version)]
    assert store_helpers.mark_exported(store, 1, v3.version, {"markdown": "library/ai/1.md"}) == {
        "markdown": "library/pd/1.md"
    }
    assert store_helpers.pending_exports(store) == []
    assert store.set_export_path(1, "markdown", "library/x/1.md") == "library/ai/1.md"
    with pytest.raises(KeyError):
        store_helpers.mark_exported(store, 404, 1)


def test_each_output_has_its_own_pending_mark(store):
    store.commit_item(make_item(1), "job-1")
    store.commit_item(make_item(2), "job-1")
    assert [p.id for p in store.iter_pending("job-1", "jsonl")] == [1, 2]
    assert [p.id for p in store.iter_pending("job-1", "library")] == [1, 2]
    store.mark_exported_many([(1, 1), (2, 1)], "job-1", ("jsonl",))  # the JSONL lines are out, not the files
    assert list(store.iter_pending("job-1", "jsonl")) == []
    assert [p.id for p in store.iter_pending("job-1", "library")] == [1, 2]
    assert [p.id for p in store_helpers.pending_exports(store)] == [1, 2]
    assert store_helpers.article_row(store, 1)["claim_job"] == "job-1"  # the writer holds it until every output is out
    assert store.pending_outputs("job-1") == {"library": (2, [make_item(1)["url"], make_item(2)["url"]])}
    assert store_helpers.emissions(store, 1)[0][:2] == (1, "job-1")  # a JSONL line is an emission
    store.mark_exported_many([(1, 1)], "job-1", ("library",))
    row = store_helpers.article_row(store, 1)
    assert (row["exported"], row["library_exported"], row["claim_job"]) == (1, 1, None)
    assert store.pending_outputs("job-1") == {"library": (1, [make_item(2)["url"]])}
    # a run that ended with an output pending is gone: the next run takes the rest over
    assert [c.id for c in store.claim_pending("job-2")] == [2]
    assert [p.id for p in store.iter_pending("job-2", "library")] == [2]
    assert list(store.iter_pending("job-2", "jsonl")) == []  # its line is written: never twice


def test_a_store_without_a_library_owes_only_the_jsonl(tmp_path):
    with StateStore(tmp_path / "state.sqlite3", library=False) as store:
        store.commit_item(make_item(1), "job-1")
        store_helpers.set_duplicate_of(store, 1, 5, "job-1")
        assert store.pending_outputs("job-1") == {"jsonl": (1, [make_item(1)["url"]])}
        store.mark_exported_many([(1, 2)], "job-1", ("jsonl",))
        assert store_helpers.pending_exports(store) == [] and store_helpers.article_row(store, 1)["claim_job"] is None


def back_to_schema_4(raw: sqlite3.Connection) -> None:
    """Undo schema 5 (observations, the revisit schedule) on a raw connection."""
    raw.execute("DROP TABLE observations")
    raw.execute("DROP INDEX articles_due")
    raw.execute("ALTER TABLE articles DROP COLUMN next_due")
    raw.execute("ALTER TABLE articles DROP COLUMN revisit_job")
    raw.execute("PRAGMA user_version = 4")


def back_to_schema_3(raw: sqlite3.Connection) -> None:
    """Undo schemas 5 and 4 (no gaps, no retry schedule) on a raw connection."""
    back_to_schema_4(raw)
    raw.execute("DROP TABLE gaps")
    raw.execute("ALTER TABLE frontier DROP COLUMN next_try")
    raw.execute("PRAGMA user_version = 3")


def test_schema_3_is_migrated_and_the_articles_it_gave_up_are_due_again(tmp_path):
    path = tmp_path / "state.sqlite3"
    with StateStore(path) as store:
        store.begin_run("run-1")
        store.record_listing_page("category:pd", "run-1", CARDS, next_page=2)
    with sqlite3.connect(path) as raw:
        back_to_schema_3(raw)
        raw.execute("UPDATE frontier SET state = 'failed', attempts = 3, last_error = 'http' WHERE id = 12")
    raw.close()
    with StateStore(path) as store:
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
        store.begin_run("run-2")
        # Schema 3 gave up after 3 attempts; schema 4 never gives up: 12 is due at once.
        assert [i for i, _ in store.claim_frontier("run-2", ["category:pd"])] == [11, 12, 13]
        assert store.retry_schedule() == [("http", 1, None, None)]
        store.record_gap("category:pd", 2, "http")
        assert store.gaps() == [("category:pd", 2, "http")]


def test_schema_4_is_migrated_with_one_observation_per_article_due_at_once(tmp_path):
    path = tmp_path / "state.sqlite3"
    with StateStore(path) as store:
        store.commit_item({**make_item(1), "stats": {"views": 120, "comments": 3, "collects": 7}}, "job-1")
        store.commit_item(make_item(2), "job-1")
    with sqlite3.connect(path) as raw:
        back_to_schema_4(raw)
    raw.close()
    with StateStore(path) as store:
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        crawled = make_item(1)["crawled_at"]
        assert store_helpers.observations(store, 1) == [{"observed_at": crawled, "status": 200, "views": 120,
                                                         "comments": 3, "collects": 7, "job": None, "removal": None}]
        assert store.due_count() == 2  # an older state's articles are revisited first, within the share
        assert [article_id for article_id, _ in store.claim_due("job-2", 10)] == [1, 2]


def test_card_fate_decides_each_card_from_its_rows_alone():
    from woshipm_crawler.state import card_fate

    live, due = {"me", "other"}, "2024-06-01T00:00:00Z"

    def fate(stored, queued, refetch_known=False, since=None):
        return card_fate(stored, queued, "me", live, refetch_known=refetch_known, since=since, due=due)

    day = "2024-05-01T10:00:00+08:00"
    assert fate(None, None) == ("fetch", None)
    assert fate((day, None, 0), None) == ("known", day)
    assert fate((day, "me", 0), None) == ("again", day)  # stored by this run, from another listing
    assert fate((day, None, 1), None, refetch_known=True) == ("again", day)  # refreshed by this run already
    assert fate((day, None, 0), None, refetch_known=True) == ("fetch", None)
    assert fate(None, ("queued", None, None, "me")) == ("again", None)
    assert fate(None, ("queued", None, None, "other")) == ("elsewhere", None)
    assert fate(None, ("queued", None, None, "gone")) == ("fetch", None)  # a dead run's claim is no claim
    assert fate(None, ("older", day, None, None), since="2024-05-02") == ("older", day)
    assert fate(None, ("older", day, None, None), since="2024-05-01") == ("fetch", None)
    assert fate(None, ("failed", None, "2024-06-02T00:00:00Z", None)) == ("waiting", None)
    assert fate(None, ("failed", None, "2024-05-31T00:00:00Z", None)) == ("fetch", None)


def test_schema_5_is_migrated_to_one_published_form(tmp_path):
    """Schema 5 -> 6 normalises each stored item's published once: a date-only value of an older form,
    an impossible date an older crawler let through (no date rather than a wrong one), another zone."""
    path = tmp_path / "state.sqlite3"
    old_forms = {
        1: {"published": "2024-05-01"},  # before published_time_known existed
        2: {"published": "2021-02-30T10:00:00+08:00", "published_time_known": True},
        3: {"published": "2024-05-01T10:00:00+08:00", "published_time_known": True},  # already in form
        4: {"published": "2024-05-01T02:00:00Z"},
    }
    with StateStore(path) as store:
        for article_id in old_forms:
            store.commit_item(make_item(article_id, body=f"正文{article_id}"), "old-job")
    with sqlite3.connect(path) as raw:
        for article_id, fields in old_forms.items():
            item = {key: value for key, value in make_item(article_id, body=f"正文{article_id}").items()
                    if key != "published"}
            raw.execute("UPDATE articles SET published = ?, item_json = ? WHERE id = ?",
                        (fields["published"], json.dumps({**item, **fields}, ensure_ascii=False), article_id))
        raw.execute("PRAGMA user_version = 5")
    raw.close()
    with StateStore(path) as store:
        assert store._read("PRAGMA user_version") == [(SCHEMA_VERSION,)] and SCHEMA_VERSION == 6
        got = {i: (store.get_item(i)["published"], store.get_item(i)["published_time_known"]) for i in old_forms}
        columns = dict(store._read("SELECT id, published FROM articles"))
        title = store.get_item(1)["title"]
    assert got == {
        1: ("2024-05-01T00:00:00+08:00", False),
        2: (None, None),
        3: ("2024-05-01T10:00:00+08:00", True),
        4: ("2024-05-01T10:00:00+08:00", True),
    }
    assert columns == {1: "2024-05-01T00:00:00+08:00", 2: None, 3: "2024-05-01T10:00:00+08:00",
                       4: "2024-05-01T10:00:00+08:00"}
    assert title == "产品经理的第1课：“需求”从哪里来"  # the rest of the item as it was


def test_schema_2_is_migrated_with_its_marks_kept(tmp_path):
    path = tmp_path / "state.sqlite3"
    with StateStore(path) as store:
        store.commit_item(make_item(1), "job-1")
        store.commit_item(make_item(2), "job-1")
        store_helpers.mark_exported(store, 1, 1)
    with sqlite3.connect(path) as raw:  # back to schema 2: one mark for both outputs
        back_to_schema_3(raw)
        raw.execute("DROP INDEX articles_library_pending")
        raw.execute("ALTER TABLE articles DROP COLUMN library_exported")
        raw.execute("PRAGMA user_version = 2")
    raw.close()
    with StateStore(path) as store:
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        rows = [store_helpers.article_row(store, i) for i in (1, 2)]
        assert [(r["exported"], r["library_exported"]) for r in rows] == [(1, 1), (0, 0)]
        assert [p.id for p in store_helpers.pending_exports(store)] == [2]


def test_ids_that_do_not_fit_sqlite_are_refused_and_never_poison_the_state(store):
    store.begin_run("job-1")
    store.begin_walk("category:pd", "job-1")
    huge = 2**63
    fate = store.record_listing_page(
        "category:pd", "job-1", [(5, "https://www.woshipm.com/pd/5.html"), (huge, "https://x/huge.html"),
                                 ("12a", "https://x/12a.html")], next_page=2
    )
    assert [card_id for card_id, _ in fate.fetch] == [5]
    assert fate.rejected == ((huge, "https://x/huge.html"), ("12a", "https://x/12a.html"))
    for bad in (huge, 0, -1, "9223372036854775808", None, True, 1.5):
        with pytest.raises(BadId, match="article id"):
            store.commit_item(make_item(1, id=bad), "job-1")
    assert store.commit_item(make_item(LARGEST_SQLITE_INTEGER), "job-1").outcome is Outcome.NEW  # the largest that fits
    store.commit_item(make_item(5), "job-1")
    # what a run's end reads works, every later run too
    assert store.frontier_counts()["waiting"] == 0 and store.cross_listed(["category:pd"]) == 0
    assert [p.id for p in store.iter_pending("job-1")] == [5, LARGEST_SQLITE_INTEGER]
    assert store_helpers.known_ids(store) == {5, LARGEST_SQLITE_INTEGER}


def test_an_unusable_state_file_is_one_state_error_saying_what_to_do(tmp_path):
    corrupt = tmp_path / "corrupt.sqlite3"
    corrupt.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StateError, match=r"corrupt\.sqlite3 is corrupt .*move it aside"):
        StateStore(corrupt)
    with pytest.raises(StateError, match="cannot write the state file .*set WOSHIPM_STATE_PATH"):
        StateStore(tmp_path / "missing-dir" / "state.sqlite3")
    odd = tmp_path / "odd.sqlite3"  # says schema 1, but is not what schema 1 was
    with sqlite3.connect(odd) as raw:
        raw.execute("CREATE TABLE other (x)")
        raw.execute("PRAGMA user_version = 1")
    raw.close()
    refused = rf"odd\.sqlite3 has schema 1, which cannot be migrated to {SCHEMA_VERSION} .*move it aside"
    with pytest.raises(StateError, match=refused):
        StateStore(odd)
    with sqlite3.connect(odd) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 1  # left as it was
    raw.close()


def test_set_duplicate_of_makes_a_new_pending_version(store):
    store.commit_item(make_item(2), "job-1")
    store_helpers.mark_exported(store, 2, 1)
    assert store_helpers.set_duplicate_of(store, 2, None, "job-2").outcome is Outcome.UNCHANGED
    result = store_helpers.set_duplicate_of(store, 2, 1, "job-2")
    assert (result.outcome, result.version, result.emit) == (Outcome.CHANGED, 2, True)
    assert store.get_item(2)["duplicate_of"] == 1 and store_helpers.duplicate_of_map(store) == {2: 1}
    (pending,) = store_helpers.pending_exports(store)
    assert pending.key == (2, make_item(2)["content_hash"], "2024-06-01T00:00:00Z", 1, None)
    assert pending.key != emission_key(make_item(2))  # the first emission's line does not count
    assert store_helpers.versions(store, 2)[1]["duplicate_of"] == 1
    with pytest.raises(KeyError):
        store_helpers.set_duplicate_of(store, 3, 1, "job")


def _commit_and_die(path: str, article_id: int) -> None:
    """A pipeline killed between commit_item and mark_exported (os._exit skips every cleanup)."""
    store = StateStore(path)
    store.begin_run("dead-job")
    store.commit_item(make_item(article_id), "dead-job")
    os._exit(0)


def _commit_and_wait(path: str, article_id: int, committed, release) -> None:
    store = StateStore(path)
    store.begin_run("live-job")
    store.commit_item(make_item(article_id), "live-job")
    committed.set()
    release.wait(20)
    store.close()


def test_pending_exports_survive_a_crash(tmp_path):
    path = str(tmp_path / "state.sqlite3")
    ctx = multiprocessing.get_context("spawn")
    dead = ctx.Process(target=_commit_and_die, args=(path, 100))
    dead.start()
    dead.join(30)
    assert dead.exitcode == 0

    committed, release = ctx.Event(), ctx.Event()
    live = ctx.Process(target=_commit_and_wait, args=(path, 200, committed, release))
    live.start()
    try:
        assert committed.wait(30)
        with StateStore(path) as store:
            with StateStore(path) as earlier:  # an earlier crawl of this process, closed without marking
                earlier.commit_item(make_item(300), "job-x")
            assert [p.id for p in store_helpers.pending_exports(store)] == [100, 200, 300]
            store.begin_run("recovery-1")
            taken = store.claim_pending("recovery-1")
            # the dead job's version and our own earlier job's are taken; the live job's is not
            assert [(p.id, p.version, p.claim_job) for p in taken] == [
                (100, 1, "dead-job"),
                (300, 1, "job-x"),
            ]
            assert taken[0].key == emission_key(make_item(100))
            assert store.claim_pending("recovery-2") == []  # claimed by a live job (recovery-1, open here)
            release.set()  # the live job's process ends without writing its outputs
            live.join(30)
            store.end_run("recovery-1")
            assert [p.id for p in store.claim_pending("recovery-3")] == [100, 200, 300]

            # the recovery: the JSONL line of 100 landed before the crash, 300's did not
            jsonl = tmp_path / "items-dead-job.jsonl"
            line = json.dumps(make_item(100), ensure_ascii=False) + "\n"
            jsonl.write_text(
                line + '{"id": 300, "content_hash": "' + make_item(300)["content_hash"] + '", "ti'
            )
            keys = [p.key for p in store_helpers.pending_exports(store)]
            assert jsonl_has([jsonl, tmp_path / "missing.jsonl"], keys) == {emission_key(make_item(100))}
            for pending in store_helpers.pending_exports(store):
                store_helpers.mark_exported(store,
                    pending.id, pending.version, {"markdown": f"md/{pending.id}.md"}, "recovery-3"
                )
            assert store_helpers.pending_exports(store) == []
    finally:
        release.set()
        live.join(30)


def _committer(path: str, ids: list[int], start, job: str) -> list[tuple[int, str]]:
    store = StateStore(path)
    start.wait(30)
    out = [(i, store.commit_item(make_item(i, f"正文{i}"), job).outcome.value) for i in ids]
    store.close()
    return out


def test_two_processes_commit_the_same_items(tmp_path):
    path = str(tmp_path / "shared.sqlite3")  # fresh: both processes also race to create the schema
    ctx = multiprocessing.get_context("spawn")
    ids = list(range(1, 201))
    with ctx.Manager() as manager:
        start = manager.Event()
        with ctx.Pool(2) as pool:
            jobs = [
                pool.apply_async(_committer, (path, ids, start, "job-a")),
                pool.apply_async(_committer, (path, list(reversed(ids)), start, "job-b")),
            ]
            start.set()
            results = [job.get(60) for job in jobs]
    outcomes: dict[int, list[str]] = {}
    for result in results:
        assert len(result) == 200
        for article_id, outcome in result:
            outcomes.setdefault(article_id, []).append(outcome)
    assert all(sorted(o) == ["new", "unchanged"] for o in outcomes.values()), outcomes
    with StateStore(path) as store:
        assert store.count() == 200 and store_helpers.known_ids(store) == set(ids)
        assert all(len(store_helpers.versions(store, i)) == 1 for i in (1, 100, 200))
        assert len(store_helpers.pending_exports(store)) == 200


def test_jsonl_has_ignores_torn_and_foreign_lines(tmp_path):
    a, b = make_item(1, "甲"), make_item(2, "乙")
    path = tmp_path / "out.jsonl"
    path.write_bytes(
        (json.dumps(a, ensure_ascii=False) + "\n").encode()
        + b"not json\n"
        + (json.dumps({**b, "duplicate_of": 1}) + "\n").encode()  # another version of 2
        + json.dumps(b, ensure_ascii=False).encode()[:40]  # torn last line
    )
    assert jsonl_has([path], [emission_key(a), emission_key(b)]) == {emission_key(a)}
    assert jsonl_has([path], []) == set()


# -- walks, the frontier, runs ---------------------------------------------------------------------

CARDS = [(i, f"http://127.0.0.1/pd/{i}.html") for i in (11, 12, 13)]


def test_a_walk_resumes_where_it_stopped_and_incremental_walks_need_a_complete_one(store):
    store.begin_run("run-1")
    assert store.begin_walk("category:pd", "run-1") == WalkStart(1, "full", False)
    fate = store.record_listing_page("category:pd", "run-1", CARDS, next_page=2)
    assert fate.fetch == CARDS and (fate.new, fate.known, fate.again) == (3, 0, 0)
    assert store.listings(11) and store_helpers.walk(store, "category:pd")["next_page"] == 2
    store.end_run("run-1")  # killed, in effect: the walk is still 'walking'
    store.begin_run("run-2")
    assert store.begin_walk("category:pd", "run-2") == WalkStart(2, "full", True)
    store.end_walk("category:pd", "end", reached_end=True)
    completed = store_helpers.walk(store, "category:pd")["completed_at"]
    store.end_run("run-2")
    store.begin_run("run-3")
    assert store.begin_walk("category:pd", "run-3") == WalkStart(1, "incremental", False)
    assert store.begin_walk("category:pd", "run-3", full=True).mode == "full"
    store.record_gap("category:pd", 4, "http")  # page 4 failed: the walk moves past it, the gap stays
    assert store_helpers.walk(store, "category:pd")["next_page"] == 5
    assert store.end_walk("category:pd", "end", reached_end=True, reason_if_gaps="failed") == "failed"
    walk = store_helpers.walk(store, "category:pd")
    assert (walk["status"], walk["end_reason"]) == ("ended", "failed")
    assert walk["completed_at"] == completed  # from run-2's walk: a walk with a gap never completes
    store.end_run("run-3")
    store.begin_run("run-4")
    assert store.begin_walk("category:pd", "run-4") == WalkStart(4, "full", True)  # the gap first
    store.record_listing_page("category:pd", "run-4", CARDS, next_page=5, page=4)
    assert store.gaps() == []
    assert store.end_walk("category:pd", "end", reached_end=True, reason_if_gaps="failed") == "end"
    walk = store_helpers.walk(store, "category:pd")
    assert walk["end_reason"] == "end" and walk["completed_at"] >= completed


def test_cards_go_to_one_run_only_and_leave_the_frontier_when_stored(tmp_path):
    path = tmp_path / "state.sqlite3"
    with StateStore(path) as first, StateStore(path) as second:
        first.begin_run("run-a")
        second.begin_run("run-b")
        assert second.begin_walk("category:pd", "run-b") is not None
        assert first.begin_walk("category:pd", "run-a") is None  # walked by a live run
        fate_a = first.record_listing_page("tag:ue", "run-a", CARDS[:2], next_page=None)
        fate_b = second.record_listing_page("category:pd", "run-b", CARDS, next_page=2)
        assert [i for i, _ in fate_a.fetch] == [11, 12]
        assert [i for i, _ in fate_b.fetch] == [13] and fate_b.elsewhere == 2
        again = first.record_listing_page("category:ai", "run-a", CARDS[:1], next_page=None)
        assert again.fetch == [] and again.again == 1
        first.commit_item(make_item(11), "run-a")
        assert first.frontier_counts().get("queued") == 2  # 12 and 13 still to store
        assert first.article_failed(12, "truncated") is not None
        first.end_run("run-a")  # 12 failed: a later run may try it again, once its backoff has passed
        assert second.claim_frontier("run-b", ["tag:ue", "category:pd"]) == []
        set_clock(utc_in(2 * 3600))
        assert [i for i, _ in second.claim_frontier("run-b", ["tag:ue", "category:pd"])] == [12]
        assert sorted(first.listings(11)) == ["category:ai", "category:pd", "tag:ue"]


def utc_in(seconds: float) -> str:
    """A WOSHIPM_CLOCK value ``seconds`` from now, in Beijing time (any offset will do)."""
    return (datetime.now(timezone(timedelta(hours=8))) + timedelta(seconds=seconds)).isoformat(timespec="seconds")


def test_failed_articles_wait_hours_then_days_and_are_never_given_up(store):
    store.begin_run("run-1")
    store.record_listing_page("category:pd", "run-1", CARDS, next_page=2)
    assert [store.retry_delay_s(n) / 3600 for n in (1, 2, 3, 4, 5, 8, 9, 50)] == [1, 2, 4, 8, 16, 128, 168, 168]
    waits = []
    for attempt in range(1, 31):  # a month of failures: still in the frontier, tried weekly
        set_clock(utc_in(sum(waits)))
        next_try = store.article_failed(12, "http")
        waits.append(store.retry_delay_s(attempt))
        assert abs(calendar.timegm(time.strptime(next_try, "%Y-%m-%dT%H:%M:%SZ")) - time.time() - sum(waits)) <= 2
    store.end_run("run-1")
    store.begin_run("run-2")
    set_clock(utc_in(sum(waits) - 60))
    assert [i for i, _ in store.claim_frontier("run-2", ["category:pd"])] == [11, 13]
    set_clock(utc_in(sum(waits) + 60))
    assert [i for i, _ in store.claim_frontier("run-2", ["category:pd"])] == [12]
    assert store._read("SELECT attempts FROM frontier WHERE id = 12") == [(30,)]


def test_requeue_makes_failed_articles_due_now_all_or_by_reason(store):
    store.begin_run("run-1")
    store.record_listing_page("category:pd", "run-1", CARDS, next_page=2)
    for article_id, reason in ((11, "http"), (12, "truncated"), (13, "truncated")):
        store.article_failed(article_id, reason)
    store.end_run("run-1")
    [(reason, count, first, last), (other, one, _, _)] = store.retry_schedule()
    assert (reason, count, other, one) == ("truncated", 2, "http", 1) and first <= last
    store.begin_run("run-2")
    assert store.claim_frontier("run-2", ["category:pd"]) == []
    assert store.requeue("truncated") == 2
    assert [i for i, _ in store.claim_frontier("run-2", ["category:pd"])] == [12, 13]
    assert store.requeue() == 3
    assert store.retry_schedule() == [("truncated", 2, None, None), ("http", 1, None, None)]


def test_limit_leaves_the_rest_queued_and_since_remembers_older_dates(store):
    store.begin_run("run-1")
    fate = store.record_listing_page("category:pd", "run-1", CARDS, next_page=2, budget=1)
    assert [i for i, _ in fate.fetch] == [11] and fate.over_budget == 2
    store.article_older(11, "2020-01-01")
    store.end_run("run-1")
    store.begin_run("run-2")
    fate = store.record_listing_page("category:pd", "run-2", CARDS, next_page=2, since="2024-01-01")
    assert [i for i, _ in fate.fetch] == [12, 13] and fate.dates[11] == "2020-01-01"
    for _ in range(3):
        store.article_failed(12, "http")
    store.end_run("run-2")
    store.begin_run("run-3")
    assert store.claim_frontier("run-3", ["category:pd"]) == [(13, CARDS[2][1])]  # 12 waits, 11 older
    assert store.frontier_counts()["waiting"] == 1


def test_the_state_remembers_its_site(store):
    assert store.bind_site("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    assert store.bind_site("https://www.woshipm.com") == "http://127.0.0.1:8000"


def test_a_schema_1_state_is_migrated_and_its_walks_kept(tmp_path):
    path = tmp_path / "old.sqlite3"
    raw = sqlite3.connect(path)
    raw.executescript(
        "CREATE TABLE articles (id INTEGER PRIMARY KEY, url TEXT, category TEXT, published TEXT, "
        "first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, content_hash TEXT NOT NULL, duplicate_of INTEGER, "
        "version INTEGER NOT NULL, exported INTEGER NOT NULL DEFAULT 0, claim_job TEXT, claim_pid INTEGER, "
        "claim_host TEXT, claim_at TEXT, item_json TEXT NOT NULL);"
        "CREATE TABLE minhash (id INTEGER PRIMARY KEY, published TEXT, signature BLOB, params TEXT NOT NULL, "
        "seq INTEGER NOT NULL);"
        "CREATE TABLE walks (listing TEXT PRIMARY KEY, completed_at TEXT NOT NULL);"
        "INSERT INTO walks VALUES ('category:pd', '2026-01-01T00:00:00Z');"
        "PRAGMA user_version = 1;"
    )
    raw.close()
    with StateStore(path) as store:
        assert store_helpers.walk(store, "category:pd")["completed_at"] == "2026-01-01T00:00:00Z"
        store.begin_run("run")
        assert store.begin_walk("category:pd", "run").mode == "incremental"


def test_a_walk_a_killed_run_finished_is_not_walked_again_by_the_run_that_resumes(tmp_path):
    path = tmp_path / "state.sqlite3"
    with StateStore(path) as killed:
        killed.begin_run("run-1")
        killed.begin_walk("category:pd", "run-1")
        killed.record_listing_page("category:pd", "run-1", CARDS, next_page=2)
        killed.end_walk("category:pd", "end", reached_end=True)
        killed._conn.execute("UPDATE runs SET pid = 2147483647")  # its process is gone, never ended
        killed._runs.clear()  # (so closing this handle does not end the run)
    with StateStore(path) as store:
        store.begin_run("run-2")
        start = store.begin_walk("category:pd", "run-2")
        assert start.finished and start.resumed
        assert [i for i, _ in store.claim_frontier("run-2", ["category:pd"])] == [11, 12, 13]
        store.end_run("run-2")
        store.begin_run("run-3")  # a later run, after one that ended: a new, incremental walk
        assert store.begin_walk("category:pd", "run-3") == WalkStart(1, "incremental", False)


def test_next_due_counts_ages_from_the_published_time_in_utc_stamps():
    from woshipm_crawler.schedule import next_due

    # 10:00 Beijing time is 02:00 UTC: the first revisit is a day later, written as a UTC stamp
    assert next_due("2024-05-01T10:00:00+08:00", "2024-05-01T03:00:00Z", 1) == "2024-05-02T02:00:00Z"
    assert next_due("2024-05-01T10:00:00+08:00", "2024-05-02T03:00:00Z", 1) == "2024-05-04T02:00:00Z"
    assert next_due("2024-05-01", "2024-05-01T03:00:00Z", 1) == "2024-05-01T16:00:00Z"  # 00:00 Beijing time
