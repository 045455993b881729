"""Shared fixtures."""

from __future__ import annotations

import pytest
from scrapy.utils.reactor import install_reactor, is_reactor_installed

from woshipm_crawler.replica import ReplicaServer

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
def manifest(replica) -> dict[int, dict]:
    """The default replica's manifest by article id: the ground truth of its pages. Read-only."""
    return {row["id"]: row for row in replica.corpus.manifest(replica.base_url)}
