"""Failing disks and careless operators (issue 14): every run ends with an honest outcome, and no
article is lost once the fault clears.

Faults are real ones, made with mounts: a small tmpfs that fills up, a read-only bind mount. Tests
run as root here, where ``chmod 0555`` does not stop a write; a mount does. Where mounting is not
allowed (no root, no CAP_SYS_ADMIN) those tests skip. The corrupt and newer states need no mount.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, make_item

from woshipm_crawler.state import StateStore
from woshipm_replica.crawls import run_crawl

pytestmark = pytest.mark.slow
PD = {"category": "zhichang"}  # 12 articles in the default replica


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@contextlib.contextmanager
def small_fs(path: Path, size: str):
    """A tmpfs of ``size`` at ``path`` (grown by ``grow``), unmounted at the end."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)):
        pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def grow(path: Path, size: str) -> None:
    assert _mount("-o", f"remount,size={size}", str(path))


@contextlib.contextmanager
def read_only(path: Path):
    """``path`` read-only, even for root (a read-only bind mount of itself), until the block ends."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not _mount("--bind", str(path), str(path)):
        pytest.skip("cannot bind-mount here (needs root with CAP_SYS_ADMIN)")
    try:
        assert _mount("-o", "remount,bind,ro", str(path))
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def jsonl_lines(export_dir: Path) -> list[bytes]:
    return [line for path in sorted((export_dir / "jsonl").glob("*.jsonl")) for line in path.read_bytes().splitlines()]


def stored(export_dir: Path, state: Path | None = None) -> dict[int, dict]:
    with StateStore(state or export_dir / "state.sqlite3") as store:
        return {item["id"]: item for item in store.iter_items()}


def error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if " ERROR: " in line]


def test_a_disk_full_mid_jsonl_fails_the_run_and_the_next_run_writes_each_article_once(replica, manifest, tmp_path):
    with small_fs(tmp_path / "jsonl", "40k") as jsonl_dir:
        full = run_crawl("category", replica.base_url, tmp_path, PD)
        assert full.returncode == 1, full.log[-3000:]
        assert "woshipm summary: FAILED" in full.log
        assert any("JSONL feed: cannot write" in line and "No space left" in line for line in error_lines(full.log))
        articles = stored(tmp_path)
        assert set(articles) == {i for i, row in manifest.items() if row["category"] == "zhichang"}  # all stored ...
        assert len(articles) == 12
        written = full.stat("woshipm/jsonl_written")
        pending = full.stat("woshipm/pending/jsonl")
        assert 0 < written < 12 and written + pending == 12  # ... some lines are out, the rest pending
        assert full.stat("woshipm/pending/library") == 0  # the library's disk was fine
        assert f"articles written: {written} to" in full.log  # what is on disk, not what was meant
        assert "outputs pending (written by the next run): jsonl" in full.log
        lines = jsonl_lines(tmp_path)
        assert len(lines) == written and all(json.loads(line)["id"] in articles for line in lines)
        # The full disk cut the failing line short; the run cut it back at once. A writer killed
        # there (or a cut that failed too) leaves the torn line: the next start must cut it.
        (path,) = (jsonl_dir).glob("*.jsonl")
        assert path.read_bytes().endswith(b"\n")
        missing = sorted(set(articles) - {json.loads(line)["id"] for line in lines})
        torn = json.dumps(articles[missing[0]], ensure_ascii=False).encode()[:300]
        grow(jsonl_dir, "16m")
        with open(path, "ab") as handle:
            handle.write(torn)
        again = run_crawl("category", replica.base_url, tmp_path, PD)
        assert again.returncode == 0, again.log[-3000:]
        assert f"{path} ended in a torn line (a full disk?): cut 300 byte(s)" in again.log
        assert "woshipm summary: ok" in again.log and again.stat("woshipm/pending/jsonl") == 0
        ids = Counter(json.loads(line)["id"] for line in jsonl_lines(tmp_path))  # every line is whole JSON
    assert ids == Counter(set(articles))  # each article exactly once across the JSONL files
    assert {item["id"]: item["title"] for item in again.items} == {i: articles[i]["title"] for i in missing}


def test_a_read_only_library_stays_pending_and_the_next_run_writes_it(replica, tmp_path):
    markdown = tmp_path / "markdown"
    with read_only(markdown):
        failed = run_crawl("category", replica.base_url, tmp_path, PD)
    assert failed.returncode == 1, failed.log[-3000:]
    assert failed.stat("woshipm/jsonl_written") == 12 and failed.stat("woshipm/pending/jsonl") == 0  # JSONL is fine
    assert failed.stat("woshipm/pending/library") == 12 and failed.stat("woshipm/markdown_written") == 0
    errors = error_lines(failed.log)
    assert any(f"12 file(s) not written under {markdown}" in line for line in errors)
    assert any("Read-only file system" in line for line in errors)
    assert "woshipm summary: FAILED" in failed.log
    assert "outputs pending (written by the next run): library 12" in failed.log
    assert "Traceback" not in failed.log
    assert not list(markdown.rglob("*.md"))

    again = run_crawl("category", replica.base_url, tmp_path, PD)
    assert again.returncode == 0, again.log[-3000:]
    assert again.stat("woshipm/markdown_written") == 12 and again.stat("woshipm/jsonl_written") == 0
    assert "woshipm summary: ok" in again.log
    articles = stored(tmp_path)
    files = {int(path.stem): path.read_text(encoding="utf-8") for path in markdown.glob("articles/*/*/*/[0-9]*.md")}
    assert set(files) == set(articles)
    for article_id, text in files.items():
        assert text.startswith(f"# {articles[article_id]['title']}")  # each file is its article
    assert (markdown / "SUMMARY.md").exists()


def test_a_read_only_export_dir_says_failed_and_counts_nothing_written(replica, tmp_path):
    exports, elsewhere = tmp_path / "exports", tmp_path / "elsewhere"
    elsewhere.mkdir()
    settings = {"WOSHIPM_STATE_PATH": str(elsewhere / "state.sqlite3"),
                "WOSHIPM_STATS_FILE": str(elsewhere / "stats.json")}
    with read_only(exports):
        failed = run_crawl("category", replica.base_url, exports, {"category": "ucd"}, settings=settings)
    stats = json.loads((elsewhere / "stats.json").read_text())
    articles = stored(exports, elsewhere / "state.sqlite3")
    assert failed.returncode == 1, failed.log[-3000:]
    assert "articles written: 0; library files written: 0" in failed.log
    assert "woshipm summary: ok" not in failed.log and "woshipm summary: FAILED" in failed.log
    assert any(f"JSONL feed: cannot write {exports / 'jsonl'}" in line for line in error_lines(failed.log))
    assert stats["woshipm/pending/jsonl"] == stats["woshipm/pending/library"] == len(articles) > 0
    assert "Traceback" not in failed.log

    again = run_crawl("category", replica.base_url, exports, {"category": "ucd"}, settings=settings)
    assert again.returncode == 0 and "woshipm summary: ok" in again.log
    assert {item["id"] for item in again.items} == set(articles)
    assert {int(path.stem) for path in (exports / "markdown").glob("articles/*/*/*/[0-9]*.md")} == set(articles)


def _corrupt(path: Path) -> str:
    path.write_bytes(os.urandom(8192))
    return "is corrupt"


def _truncated(path: Path) -> str:
    with StateStore(path) as store:
        for article_id in range(1, 400):
            store.commit_item({"id": article_id, "url": f"u{article_id}", "body_text": "x" * 2000}, "setup")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return "is corrupt"


def _newer(path: Path) -> str:
    StateStore(path).close()
    with contextlib.closing(sqlite3.connect(path)) as raw:
        raw.execute("PRAGMA user_version = 99")
    return "newer than this code"


@pytest.mark.parametrize("damage", [_corrupt, _truncated, _newer])
def test_an_unusable_state_is_one_error_line_and_a_failed_run(replica, tmp_path, damage):
    state = tmp_path / "state.sqlite3"
    said = damage(state)
    crawl = run_crawl("category", replica.base_url, tmp_path, PD)
    assert crawl.returncode == 1, crawl.log[-3000:]
    errors = error_lines(crawl.log)
    assert len(errors) == 2, errors  # the state's line, then the summary's verdict
    assert said in errors[0] and str(state) in errors[0]
    assert "woshipm summary: run FAILED: state_error" in errors[1]
    for cascade in ("Traceback", "AttributeError", "AssertionError"):
        assert cascade not in crawl.log
    assert crawl.stats["finish_reason"] == "state_error" and not crawl.items

    export = subprocess.run([sys.executable, "-m", "woshipm_crawler.export", "--export-dir", str(tmp_path)],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert export.returncode == 1 and said in export.stderr and len(export.stderr.splitlines()) == 1
    scrapy_export = subprocess.run(
        [sys.executable, "-m", "scrapy", "export", "-s", f"WOSHIPM_EXPORT_DIR={tmp_path}"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert scrapy_export.returncode != 0 and said in scrapy_export.stderr and "Traceback" not in scrapy_export.stderr
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]  # no temp file left behind


def test_a_state_on_a_read_only_path_says_what_to_do(replica, tmp_path):
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    settings = {"WOSHIPM_STATE_PATH": str(state_dir / "state.sqlite3")}
    with read_only(state_dir):
        crawl = run_crawl("category", replica.base_url, tmp_path, PD, settings=settings)
    assert crawl.returncode == 1
    errors = error_lines(crawl.log)
    assert len(errors) == 2 and f"cannot write the state file {state_dir / 'state.sqlite3'}" in errors[0]
    assert "set WOSHIPM_STATE_PATH to a writable place" in errors[0]
    assert "Traceback" not in crawl.log and "AttributeError" not in crawl.log



def test_a_category_slug_the_library_refuses_is_a_counted_failure_that_stays_pending(tmp_path, caplog):
    """No retry can make a refused slug a path: the run names the article and fails, every run, until
    the parser (or the slug rule) is fixed; the article is in the state and the JSONL meanwhile."""
    from types import SimpleNamespace

    from scrapy.settings import Settings
    from scrapy.statscollectors import MemoryStatsCollector
    from scrapy.utils.test import get_crawler

    from woshipm_crawler.pipelines import LibraryPipeline, StatePipeline

    def item(article_id: int, category: str) -> dict:
        return make_item(article_id, f"正文{article_id}", url=f"https://www.woshipm.com/{category}/{article_id}.html",
                         category=category, title=f"标题{article_id}", body_markdown=f"正文{article_id}")

    with StateStore(tmp_path / "state.sqlite3") as store:
        state = SimpleNamespace(store=store, job="job-1", usable=True, recovered=[])  # as the StateOwner holds them
        crawler = SimpleNamespace(stats=MemoryStatsCollector(get_crawler()), get_extension=lambda cls: state,
                                  spider=SimpleNamespace(listings=[]))
        library = LibraryPipeline(Settings({"WOSHIPM_EXPORT_DIR": str(tmp_path)}))
        library.crawler = crawler
        gate = StatePipeline(Settings())
        gate.crawler = crawler
        for article in (item(1, "pd"), item(2, "Bad Slug/..")):
            library.process_item({**article, "duplicate_of": store.commit_item(article, "job-1").duplicate_of})
        library.close_spider()
        gate.finish()
        stats = crawler.stats.get_stats()
    assert stats["woshipm/failed/markdown"] == 1 and stats["woshipm/pending/library"] == 1
    # (no JSONL pipeline here: both lines are pending too)
    assert stats["woshipm/pending_outputs"].endswith("; library 1 (https://www.woshipm.com/Bad Slug/../2.html)")
    assert "close_failure" not in str(stats)
    refused = [r.getMessage() for r in caplog.records if r.levelname == "ERROR" and "2.html" in r.getMessage()]
    assert refused and "invalid category slug: 'Bad Slug/..'" in refused[0]
    assert (tmp_path / "markdown/articles/pd/2024/05/1.md").read_text(encoding="utf-8").startswith("# 标题1")


def test_an_export_that_fills_the_disk_fails_in_one_line_and_leaves_no_temp_file(tmp_path):
    with StateStore(tmp_path / "state.sqlite3") as store:
        for article_id in range(1, 41):
            store.commit_item(make_item(article_id, f"正文{article_id}" * 2000, title=f"标题{article_id}"), "job-1")
    with small_fs(tmp_path / "small", "64k") as small:
        (small / "articles.jsonl").write_bytes(b"the previous export\n")
        export = subprocess.run(
            [sys.executable, "-m", "woshipm_crawler.export", "--export-dir", str(tmp_path), "--out", str(small),
             "--no-markdown"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
        )
        left = sorted(path.name for path in small.iterdir())
        previous = (small / "articles.jsonl").read_bytes()
    assert export.returncode == 1, export.stderr
    assert said_beside_progress(export.stderr) == [
        f"export failed, {small}/ left as it was: [Errno 28] No space left on device"]
    assert left == ["articles.jsonl"] and previous == b"the previous export\n"  # the old file, no temp file


def said_beside_progress(stderr: str) -> list[str]:
    """The lines of a command's stderr other than its progress lines ("articles: 1/40")."""
    return [line for line in stderr.splitlines() if not re.fullmatch(r"\w+: \d+(/\d+)?", line)]


def test_torn_tails_are_cut_back_to_the_last_whole_line_unless_a_live_run_writes_the_file(tmp_path, caplog):
    import fcntl

    from woshipm_crawler.pipelines import cut_torn_tails

    line = b'{"id":1,"title":"' + "长".encode() * 40000 + b'"}\n'  # longer than the chunk read back
    torn, whole, only_torn, live = (tmp_path / f"{name}.jsonl" for name in ("torn", "whole", "only", "live"))
    torn.write_bytes(line + line + b'{"id":3,"ti')
    whole.write_bytes(line)
    only_torn.write_bytes(b'{"id":3,"ti')
    live.write_bytes(line + b'{"id":3,"ti')
    with open(live, "rb") as writer:
        fcntl.flock(writer, fcntl.LOCK_EX)  # as the JSONL pipeline holds it while it writes
        cut_torn_tails([torn, whole, only_torn, live])
    assert torn.read_bytes() == line + line and whole.read_bytes() == line and only_torn.read_bytes() == b""
    assert live.read_bytes() == line + b'{"id":3,"ti'
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [f"JSONL feed: {path} ended in a torn line (a full disk?): cut 11 byte(s) back to its last "
                        "whole line; those articles are still pending and are written again"
                        for path in (torn, only_torn)]


def test_a_pipeline_that_cannot_finish_turns_the_summary_to_failed(caplog):
    """Scrapy logs an error raised when a pipeline closes and carries on: the summary would say ok."""
    from types import SimpleNamespace

    from scrapy.settings import Settings
    from scrapy.statscollectors import MemoryStatsCollector
    from scrapy.utils.test import get_crawler

    from woshipm_crawler.pipelines import StatePipeline
    from woshipm_crawler.summary import CrawlSummary

    crawler = SimpleNamespace(stats=MemoryStatsCollector(get_crawler()), settings=Settings())
    owner = StatePipeline(Settings())
    owner.crawler = crawler
    owner.finish = lambda: (_ for _ in ()).throw(OverflowError("Python int too large to convert to SQLite INTEGER"))
    owner.close_spider()
    verdict, why = CrawlSummary(crawler, progress=False).outcome("finished")
    assert verdict == "FAILED"
    assert why == ("the run could not finish its outputs: StatePipeline: Python int too large to convert to "
                   "SQLite INTEGER")
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "StatePipeline could not finish: Python int too large to convert to SQLite INTEGER"
    ]


def test_an_article_an_older_crawler_stored_with_an_impossible_date_does_not_break_the_export(tmp_path):

    with StateStore(tmp_path / "state.sqlite3") as store:
        store.commit_item(make_item(11, body="好的正文"), "old-job")
        store.commit_item(make_item(12, body="坏日期的正文", published="2021-02-30T10:00:00+08:00"), "old-job")
    with sqlite3.connect(tmp_path / "state.sqlite3") as raw:
        raw.execute("PRAGMA user_version = 5")  # as the older crawler left it: the export migrates it
    raw.close()
    done = subprocess.run([sys.executable, "-m", "woshipm_crawler.export", "--export-dir", str(tmp_path)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    said = said_beside_progress(done.stderr)
    assert len(said) == 1 and "FAILED for the library: 1 article(s)" in said[0]
    assert "12: invalid published date: None" in done.stderr
    lines = [json.loads(line) for line in (tmp_path / "dataset" / "articles.jsonl").read_text(encoding="utf-8")
             .splitlines()]
    assert [(item["id"], item["published"]) for item in lines] == [
        (11, "2024-05-01T10:00:00+08:00"), (12, None)]  # no date rather than an impossible one
    library = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "markdown").rglob("*.md"))
    assert "markdown/articles/pd/2024/05/11.md" in library
    assert not [p for p in library if p.endswith("/12.md")]
    assert not list(tmp_path.rglob("*.tmp"))
