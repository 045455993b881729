"""Responses too large to be real are refused early (issue 24): a gzip bomb (~4.7 MB that inflate to
1 GiB) and a chunked body that never ends, served by the replica (faults ``gzipbomb``,
``endlessbody``), are counted failures (``too_large``) with their reason in the line, the other
articles are stored, and the crawl's peak RSS stays under 400 MB."""

from __future__ import annotations

import re

import pytest
from conftest import PROJECT_ROOT

from woshipm_crawler import settings
from woshipm_replica import ReplicaServer
from woshipm_replica.crawls import measured_crawl

pytestmark = pytest.mark.slow


def failure_lines(log: str, reason: str) -> dict[str, str]:
    return dict(re.findall(rf"Failed \({reason}\): (\S+) — (.*)", log))


def test_the_caps_are_the_ones_the_readme_names():
    assert (settings.DOWNLOAD_MAXSIZE, settings.DOWNLOAD_WARNSIZE) == (8 * 2**20, 2 * 2**20)
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert "| `DOWNLOAD_MAXSIZE` | `8388608` (8 MiB)" in readme
    assert "| `DOWNLOAD_WARNSIZE` | `2097152` (2 MiB)" in readme


def test_a_gzip_bomb_and_an_endless_body_are_refused_at_the_cap_in_little_memory(tmp_path):
    with ReplicaServer(articles=12, seed=1) as server:
        manifest = {row["id"]: row for row in server.corpus.manifest(server.base_url)}
        bomb, endless = sorted(manifest)[:2]
        server.set_faults(f"gzipbomb=ids:{bomb},endlessbody=ids:{endless}")
        crawl = measured_crawl(server.base_url, tmp_path / "export")
        assert server.stats["fault:gzipbomb"] >= 1 and server.stats["fault:endlessbody"] >= 1
    assert crawl["returncode"] == 0, crawl["log"][-3000:]
    assert crawl["peak_rss_mb"] < 400, crawl["peak_rss_mb"]
    lines = failure_lines(crawl["log"], "too_large")
    assert sorted(lines) == sorted(manifest[i]["url"] for i in (bomb, endless))
    assert re.search(r"exceeded DOWNLOAD_MAXSIZE \(8388608 B\) during decompression", lines[manifest[bomb]["url"]])
    assert lines[manifest[endless]["url"]] == "more than DOWNLOAD_MAXSIZE (8388608 bytes) received: stopped"
    assert crawl["stats"]["woshipm/failed/too_large"] == 2 and "woshipm/failed/http" not in crawl["stats"]
    assert sorted(crawl["ids"]) == sorted(set(manifest) - {bomb, endless})  # the others are stored


def test_an_answer_announcing_more_than_the_cap_is_refused_before_its_body(tmp_path):
    # The bomb's ~4.7 MB as sent are over a 1 MB cap: refused on its Content-Length.
    with ReplicaServer(articles=12, seed=1) as server:
        manifest = {row["id"]: row for row in server.corpus.manifest(server.base_url)}
        bomb = min(manifest)
        server.set_faults(f"gzipbomb=ids:{bomb}")
        crawl = measured_crawl(server.base_url, tmp_path / "export", {"DOWNLOAD_MAXSIZE": "1000000"})
    lines = failure_lines(crawl["log"], "too_large")
    assert list(lines) == [manifest[bomb]["url"]]
    assert re.match(r"Expected to receive \d+ bytes which is larger than download max size \(1000000\)",
                    lines[manifest[bomb]["url"]])
    assert crawl["stats"]["woshipm/failed/too_large"] == 1
