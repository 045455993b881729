"""JavaScript pages of the replica through real Chromium: only shells and checks are rendered."""

from __future__ import annotations

import pytest

from woshipm_replica import ReplicaServer
from woshipm_replica.crawls import field_match_rates, print_rates, run_crawl
from woshipm_replica.server import FaultSpec

pytestmark = [pytest.mark.slow, pytest.mark.browser]
FAULTS = "jsshell=0.3,interstitial=0.1"


def faulted_ids(server, name: str) -> set[int]:
    spec = FaultSpec.parse(FAULTS)
    return {row_id for row_id in server.manifest if spec.hits(name, row_id, server.corpus.seed)}


@pytest.fixture(scope="module")
def server():
    with ReplicaServer(articles=150, seed=1, faults=FAULTS) as replica:
        replica.manifest = {row["id"]: row for row in replica.corpus.manifest(replica.base_url)}
        yield replica


def test_auto_renders_exactly_the_shell_and_check_pages(server, tmp_path):
    shells, checks = faulted_ids(server, "jsshell"), faulted_ids(server, "interstitial")
    assert len(shells) >= 30 and len(checks) >= 8
    crawl = run_crawl("category", server.base_url, tmp_path, {"category": "all"}, timeout=900)
    assert crawl.returncode == 0
    assert {item["id"] for item in crawl.items} == set(server.manifest)
    rates, mismatches = field_match_rates(crawl.items, server.manifest, lambda key: key.startswith("category:"))
    print_rates(rates)
    assert mismatches == {}
    rendered = shells | checks
    print(f"rendered {crawl.stat('render/requests')} of {len(server.manifest)} articles "
          f"({len(shells)} shells, {len(checks)} checks)")
    assert crawl.stat("render/requests") == len(rendered)
    assert crawl.stat("render/succeeded") == len(rendered)
    assert crawl.stat("render/shell") + crawl.stat("render/interstitial") == len(rendered)


def test_never_counts_them_as_failures_and_writes_nothing_for_them(server, tmp_path):
    shells, checks = faulted_ids(server, "jsshell"), faulted_ids(server, "interstitial")
    crawl = run_crawl("category", server.base_url, tmp_path, {"category": "all"},
                      settings={"WOSHIPM_RENDER": "never"})
    assert {item["id"] for item in crawl.items} == set(server.manifest) - shells - checks
    failed = crawl.stat("woshipm/failed/js_shell") + crawl.stat("woshipm/failed/interstitial")
    assert failed == len(shells | checks)
    assert crawl.stat("render/requests") == 0
