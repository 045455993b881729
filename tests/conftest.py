"""Shared fixtures, and the helpers several test files use (``from conftest import ...``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from scrapy.utils.reactor import install_reactor, is_reactor_installed

from woshipm_crawler.textmodel import content_hash
from woshipm_crawler.util import set_clock
from woshipm_replica import ReplicaServer
from woshipm_replica.crawls import run_crawl

# The checkout: where the tests run the project's scripts and commands from.
PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Scrapy 2.14's get_crawler() (the lowest version we support) wants an installed reactor: the one
# `scrapy crawl` installs, as the project's settings name it.
if not is_reactor_installed():
    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")


@pytest.fixture(scope="session")
def replica():
    """The default replica (150 articles, seed 1, no faults) on a free 127.0.0.1 port, whole session.

    Read-only: a test that changes the site (set_corpus, set_faults) starts its own ReplicaServer.
    """
    with ReplicaServer(articles=150, seed=1) as server:
        yield server


@pytest.fixture(scope="session")
def outputs_crawl(replica, tmp_path_factory):
    """One crawl of the default replica with ``-o`` feeds (jsonlines and markdown), shared by the tests
    of ``scrapy export | report | book`` (tests/test_dataset.py, test_report.py, test_book.py)."""
    export_dir = tmp_path_factory.mktemp("outputs")
    feeds = ("-o", str(export_dir / "feed.md"), "-o", f"{export_dir / 'feed.jsonl'}:jsonlines")
    result = run_crawl("category", replica.base_url, export_dir, {"category": "all"}, extra=feeds)
    assert result.returncode == 0, result.log[-3000:]
    return result


@pytest.fixture(scope="session")
def scrapy_command():
    """Runs ``scrapy <command>`` on an export directory in a subprocess, as a user does."""
    import subprocess
    import sys

    def run(command: list[str], export_dir, *settings: str) -> subprocess.CompletedProcess:
        args = [sys.executable, "-m", "scrapy", *command, "-s", f"WOSHIPM_EXPORT_DIR={export_dir}"]
        for setting in settings:
            args += ["-s", setting]
        return subprocess.run(args, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)

    return run


@pytest.fixture(scope="session")
def manifest(replica) -> dict[int, dict]:
    """The default replica's manifest by article id: the ground truth of its pages. Read-only."""
    return {row["id"]: row for row in replica.corpus.manifest(replica.base_url)}


@pytest.fixture(autouse=True)
def system_clock():
    """Every test starts and ends on the system clock (``util.set_clock`` is process-wide)."""
    set_clock(None)
    yield
    set_clock(None)


def make_item(article_id: int, body: str = "正文内容", **extra) -> dict:
    """An article item as the state stores it (the spider's fields that the state reads), ``extra`` on top."""
    item = {
        "id": article_id,
        "url": f"https://www.woshipm.com/pd/{article_id}.html",
        "category": "pd",
        "title": f"产品经理的第{article_id}课：“需求”从哪里来",
        "published": "2024-05-01T10:00:00+08:00",
        "body_text": body,
        "content_hash": content_hash(body),
        "stats": {"views": 1, "comments": 0, "collects": 0},
        "listings": ["category:pd"],
        "crawled_at": "2024-06-01T00:00:00Z",
        "duplicate_of": None,
    }
    item.update(extra)
    return item
