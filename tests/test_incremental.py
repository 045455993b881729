"""State across runs: incremental crawls, growth, edits, crash recovery, concurrent jobs, near-duplicates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import store_helpers
from conftest import PROJECT_ROOT

from woshipm_crawler import site
from woshipm_crawler.export import main as export_main
from woshipm_crawler.state import StateStore
from woshipm_replica import ReplicaServer
from woshipm_replica.crawls import FAST_SETTINGS, field_match_rates, run_crawl, stored_articles

pytestmark = pytest.mark.slow
ALL = {"category": "all"}


def manifest_of(server) -> dict[int, dict]:
    return {row["id"]: row for row in server.corpus.manifest(server.base_url)}


def jsonl_ids(export_dir: Path) -> Counter:
    ids: Counter = Counter()
    for path in (export_dir / "jsonl").glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            ids[json.loads(line)["id"]] += 1  # a partial line would fail here
    return ids


def library_ids(export_dir: Path) -> Counter:
    return Counter(int(p.stem) for p in (export_dir / "markdown" / "articles").rglob("*.md") if p.stem.isdigit())


def library_bytes(export_dir: Path) -> dict[str, bytes]:
    root = export_dir / "markdown"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.md"))}


def test_rerun_fetches_nothing_growth_fetches_only_the_new(tmp_path):
    with ReplicaServer(articles=150, seed=1) as server:
        first = run_crawl("category", server.base_url, tmp_path, ALL)
        assert len(first.items) == 150
        library_before = library_bytes(tmp_path)

        again = run_crawl("category", server.base_url, tmp_path, ALL)
        print(f"re-run requests: {again.stat('downloader/request_count')} "
              f"(first run {first.stat('downloader/request_count')})")
        assert again.items == []
        assert again.stat("woshipm/articles_parsed") == 0
        # WOSHIPM_KNOWN_PAGES_TO_STOP (1) page per listing, all known
        assert again.stat("woshipm/listing_pages") <= len(site.crawlable_categories())
        assert library_bytes(tmp_path) == library_before  # byte-identical, nothing rewritten
        assert "nothing new or changed" in again.log

        walked = run_crawl("category", server.base_url, tmp_path, {**ALL, "full": 1})
        assert walked.stat("woshipm/listing_pages") == first.stat("woshipm/listing_pages")  # every page
        assert walked.stat("woshipm/articles_parsed") == 0 and walked.items == []  # but no known article

        server.set_corpus(articles=157)
        manifest = manifest_of(server)
        grown = run_crawl("category", server.base_url, tmp_path, ALL)
    new_ids = set(manifest) - {item["id"] for item in first.items}
    assert len(new_ids) == 7
    assert {item["id"] for item in grown.items} == new_ids
    assert grown.stat("woshipm/articles_parsed") == 7
    rates, mismatches = field_match_rates(grown.items, manifest, lambda key: key.startswith("category:"),
                                          fields=("title", "body_text", "tags", "author", "published"))
    assert mismatches == {}

    with StateStore(tmp_path / "state.sqlite3") as store:
        assert store.count() == 157
        assert store.listings(next(iter(new_ids)))  # first/last seen recorded
    out = tmp_path / "dataset" / "articles.jsonl"
    given = os.environ.get("SCRAPY_SETTINGS_MODULE")
    assert export_main(["--export-dir", str(tmp_path)]) == 0
    # In-process, the alias leaves the environment as it found it (later subprocesses inherit it).
    assert os.environ.get("SCRAPY_SETTINGS_MODULE") == given
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(row["id"] for row in rows) == sorted(manifest)
    assert all(row["title"] == manifest[row["id"]]["title"] for row in rows)


def test_refresh_records_a_changed_article_as_a_new_version(tmp_path):
    with ReplicaServer(articles=150, seed=1) as server:
        run_crawl("category", server.base_url, tmp_path, ALL)
        before = library_bytes(tmp_path)
        edited = server.corpus.special["headings"]
        server.set_corpus(edits=(edited,))
        manifest = manifest_of(server)
        refreshed = run_crawl("category", server.base_url, tmp_path, {**ALL, "refresh": 1})
    assert [item["id"] for item in refreshed.items] == [edited]
    assert refreshed.items[0]["body_text"] == manifest[edited]["body_text"]
    assert refreshed.stat("woshipm/skipped/unchanged") == 149
    after = library_bytes(tmp_path)
    changed = {path for path in after if before.get(path) != after[path]}
    article_file = next(path for path in changed if path.endswith(f"/{edited}.md"))
    assert changed - {article_file} <= {"SUMMARY.md", "README.md"} | {
        p for p in changed if p.endswith("README.md")}
    with StateStore(tmp_path / "state.sqlite3") as store:
        assert [v["version"] for v in store_helpers.versions(store, edited)] == [1, 2]


def start_crawl(base_url: str, export_dir: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "scrapy", "crawl", "category", "-a", "category=all"]
    settings = {**FAST_SETTINGS, "WOSHIPM_BASE_URL": base_url, "WOSHIPM_EXPORT_DIR": str(export_dir),
                "CONCURRENT_REQUESTS": "2", "CONCURRENT_REQUESTS_PER_DOMAIN": "2", "DOWNLOAD_DELAY": "0.02"}
    for key, value in settings.items():
        command += ["-s", f"{key}={value}"]
    return subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_when(process: subprocess.Popen, ready, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the crawl ended before the kill point"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.parametrize(
    "kill_point",
    [
        pytest.param(lambda d: (d / "state.sqlite3").exists(), id="while-walking-listings"),
        pytest.param(lambda d: stored_articles(d) >= 40, id="mid-articles"),
        pytest.param(lambda d: stored_articles(d) >= 150, id="all-committed-before-export"),
    ],
)
def test_sigkill_then_resume_ends_with_every_article_exactly_once(tmp_path, kill_point):
    with ReplicaServer(articles=150, seed=1) as server:
        manifest = manifest_of(server)
        kill_when(start_crawl(server.base_url, tmp_path), lambda: kill_point(tmp_path))
        resumed = run_crawl("category", server.base_url, tmp_path, ALL)
    assert resumed.returncode == 0
    union = jsonl_ids(tmp_path)
    assert set(union) == set(manifest)
    assert max(union.values()) == 1, "an article was emitted twice"
    assert set(library_ids(tmp_path)) == set(manifest) and max(library_ids(tmp_path).values()) == 1
    assert not list((tmp_path / "markdown").rglob("*.tmp"))
    with StateStore(tmp_path / "state.sqlite3") as store:
        assert store_helpers.known_ids(store) == set(manifest)
        assert store_helpers.pending_exports(store) == []


def test_two_concurrent_crawls_share_one_state(tmp_path):
    with ReplicaServer(articles=150, seed=1) as server:
        manifest = manifest_of(server)
        settings = {**FAST_SETTINGS, "WOSHIPM_BASE_URL": server.base_url, "WOSHIPM_EXPORT_DIR": str(tmp_path)}
        jobs = []
        for spider, arg in (("category", "category=all"), ("category", "category=all")):
            command = [sys.executable, "-m", "scrapy", "crawl", spider, "-a", arg]
            for key, value in settings.items():
                command += ["-s", f"{key}={value}"]
            jobs.append(subprocess.Popen(command, cwd=PROJECT_ROOT, stderr=subprocess.PIPE, text=True))
            time.sleep(1.1)  # distinct feed file names (one per second)
        logs = [job.communicate(timeout=300)[1] for job in jobs]
    assert all(job.returncode == 0 for job in jobs)
    errors = [line for log in logs for line in log.splitlines() if " ERROR: " in line]
    assert errors == []
    union = jsonl_ids(tmp_path)
    assert set(union) == set(manifest) and max(union.values()) == 1


def test_planted_reposts_are_flagged_and_nothing_else(replica, tmp_path):
    crawl = run_crawl("category", replica.base_url, tmp_path, ALL)
    manifest = manifest_of(replica)
    truth = {i for i, row in manifest.items() if row["duplicate_of"] is not None}
    flagged = {item["id"] for item in crawl.items if item["duplicate_of"] is not None}
    precision = len(flagged & truth) / max(len(flagged), 1)
    recall = len(flagged & truth) / max(len(truth), 1)
    print(f"near-duplicates: precision {precision:.2f}, recall {recall:.2f} ({len(truth)} planted)")
    assert len(truth) >= 3
    assert flagged == truth
    original = replica.corpus.special["duplicate_original"]
    assert all(item["duplicate_of"] == original for item in crawl.items if item["id"] in truth)
