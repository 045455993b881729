"""Shared fixtures."""

from __future__ import annotations

import pytest
from scrapy.utils.reactor import install_reactor, is_reactor_installed

from woshipm_crawler.util import set_clock
from woshipm_replica import ReplicaServer

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
    from crawling import run_crawl

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

    from crawling import PROJECT_ROOT

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
