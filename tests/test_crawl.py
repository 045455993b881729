"""End-to-end crawls of the replica: every article once, every field equal to the manifest."""

from __future__ import annotations

import json

import pytest

from woshipm_crawler import site
from woshipm_crawler.items import REQUIRED_FIELDS
from woshipm_replica import ReplicaServer
from woshipm_replica.crawls import field_match_rates, print_rates, run_crawl

pytestmark = pytest.mark.slow


def listing_ids(corpus, key: str) -> list[int]:
    """Article ids a listing of the replica shows, newest first."""
    return [corpus.article_id(index) for index in corpus.listing(key)]


def is_category_listing(key: str) -> bool:
    return key.startswith("category:")


def assert_exact(crawl, manifest, expected_ids, walked_listings):
    ids = [item["id"] for item in crawl.items]
    assert len(ids) == len(set(ids)), "an article was written twice"
    assert set(ids) == set(expected_ids)
    rates, mismatches = field_match_rates(crawl.items, manifest, walked_listings)
    print_rates(rates)
    assert mismatches == {}
    assert all(rate == 1.0 for rate in rates.values())


def test_category_all_yields_the_manifest_exactly(replica, manifest, tmp_path):
    crawl = run_crawl("category", replica.base_url, tmp_path, {"category": "all"})
    assert crawl.returncode == 0, crawl.log[-3000:]
    assert_exact(crawl, manifest, manifest, is_category_listing)
    special = replica.corpus.special
    by_id = {item["id"]: item for item in crawl.items}
    # The cases the replica plants, spelled out once more by content.
    listed = by_id[special["listed_elsewhere"]]
    assert any(key != f"category:{listed['category']}" for key in listed["listings"])
    assert by_id[special["partner"]]["source"]["type"] == "partner"
    assert by_id[special["translated"]]["source"]["type"] == "translated"
    assert by_id[special["no_summary"]]["summary"] is None
    assert not by_id[special["editor_lead"]]["summary"].startswith("编辑导语")
    assert by_id[special["unnamed_category"]]["category_name"] is None
    assert all(not url.startswith("data:") for item in crawl.items for url in item["images"])
    assert "🚀" in by_id[special["weird_title"]]["title"]
    line = next((crawl.export_dir / "jsonl").glob("category-*.jsonl")).read_text(encoding="utf-8")
    assert "\\u" not in line and "产品" in line  # UTF-8 as is, no escapes
    assert "woshipm summary: ok" in crawl.log and "field coverage: id 150/150" in crawl.log
    cross_listed = sum(1 for row in manifest.values() if sum(k.startswith("category:") for k in row["listings"]) > 1)
    assert cross_listed >= 1
    assert f"in several listings, fetched once: {cross_listed}" in crawl.log


def test_tag_spider_resolves_names_aliases_and_encoded_slugs(replica, manifest, tmp_path):
    tags = ["用户体验", "venture", "%E7%BB%8F%E9%AA%8C%E5%88%86%E4%BA%AB", "产品经理"]
    slugs = {site.tag_slug(tag) for tag in tags}
    assert {"ue", "venture", "pmd", "%e7%bb%8f%e9%aa%8c%e5%88%86%e4%ba%ab"} == slugs
    expected = [i for i, row in manifest.items() if any(f"tag:{slug}" in row["listings"] for slug in slugs)]
    assert len(expected) >= 10
    crawl = run_crawl("tag", replica.base_url, tmp_path, {"tag": ",".join(tags)})
    assert crawl.returncode == 0
    walked = {f"tag:{slug}" for slug in slugs}
    assert_exact(crawl, manifest, expected, lambda key: key in walked)


def test_faults_on_a_fifth_of_pages_lose_nothing(tmp_path):
    # 60 articles: a dozen pages of each fault. Each 429 slows the whole crawl for its Retry-After, so the
    # run waits ~0.8 s an article whatever the size (150 articles took 133 s).
    with ReplicaServer(articles=60, seed=1, faults="429=0.2,503=0.2,slow=0.2,drop=0.2") as server:
        manifest = {row["id"]: row for row in server.corpus.manifest(server.base_url)}
        crawl = run_crawl("category", server.base_url, tmp_path, {"category": "all"}, timeout=600)
        faults = dict(server.stats)
    assert_exact(crawl, manifest, manifest, is_category_listing)
    assert crawl.stat("retry/count") > 0
    assert all(faults.get(f"fault:{name}", 0) > 0 for name in ("429", "503", "slow", "drop")), faults


def test_truncated_and_interstitial_pages_are_counted_failures(replica, manifest, tmp_path):
    ids = sorted(manifest)
    truncated, challenged = ids[:3], ids[3:5]
    faults = f"truncate=ids:{';'.join(map(str, truncated))},interstitial=ids:{';'.join(map(str, challenged))}"
    with ReplicaServer(articles=150, seed=1, faults=faults) as server:
        crawl = run_crawl("category", server.base_url, tmp_path, {"category": "all"},
                          settings={"WOSHIPM_RENDER": "never"})
    written = {item["id"] for item in crawl.items}
    assert written == set(ids) - set(truncated) - set(challenged)
    assert crawl.stat("woshipm/failed/truncated") == 3
    assert crawl.stat("woshipm/failed/interstitial") == 2
    for item in crawl.items:
        assert all(item[name] for name in REQUIRED_FIELDS)
    for article_id in truncated + challenged:
        assert f"/{article_id}.html" in crawl.log  # the failure names the page
    assert "failures: interstitial 2, truncated 3" in crawl.log


def test_max_pages_limits_each_listing(replica, manifest, tmp_path):
    crawl = run_crawl("category", replica.base_url, tmp_path, {"category": "pd,ai", "max_pages": 1})
    first_pages = set()
    for slug in ("pd", "ai"):
        first_pages |= {card for card in listing_ids(replica.corpus, f"category:{slug}")[:12]}
    assert {item["id"] for item in crawl.items} == first_pages
    assert crawl.stat("woshipm/listing_pages") == 2


def test_limit_caps_articles(replica, manifest, tmp_path):
    crawl = run_crawl("category", replica.base_url, tmp_path, {"category": "all", "limit": 7})
    assert len(crawl.items) == 7
    assert all(item["title"] == manifest[item["id"]]["title"] for item in crawl.items)


def test_since_stops_after_a_page_of_older_articles(tmp_path):
    with ReplicaServer(articles=800, seed=1) as server:  # listings long enough to stop early in
        manifest = {row["id"]: row for row in server.corpus.manifest(server.base_url)}
        slug = max(site.crawlable_categories(), key=lambda s: len(server.corpus.listing(f"category:{s}")))
        ordered = listing_ids(server.corpus, f"category:{slug}")
        assert len(ordered) > 4 * 12
        since = manifest[ordered[15]]["published"][:10]  # inside page 2; page 3 is all older
        crawl = run_crawl("category", server.base_url, tmp_path, {"category": slug, "since": since})
    expected = {i for i in ordered if manifest[i]["published"][:10] >= since}
    assert {item["id"] for item in crawl.items} == expected
    assert all(item["published"][:10] >= since for item in crawl.items)
    assert crawl.stat("woshipm/listing_pages") == 3  # pages 1-2, then page 3 of older articles only
    assert crawl.stat("woshipm/skipped/older_than_since") >= 12
    assert crawl.stat("woshipm/walks/since") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"category": "nosuch"}, "unknown nosuch; valid: pmd, pd"),
        ({"category": "pd", "since": "2026-13-01"}, "expected a date as YYYY-MM-DD"),
        ({"category": "pd", "limit": "-3"}, "expected a whole number"),
        ({"category": "pd", "max_page": "1"}, "-a max_page: unknown argument (did you mean max_pages?)"),
    ],
)
def test_bad_arguments_stop_the_run_with_one_clear_line(replica, tmp_path, args, message):
    crawl = run_crawl("category", replica.base_url, tmp_path, args)
    errors = [line for line in crawl.log.splitlines() if " ERROR: " in line]
    assert any(message in line for line in errors), errors
    assert crawl.items == []
    assert crawl.stats["finish_reason"] == "bad_argument"
    assert crawl.returncode == 2 and "woshipm summary: FAILED" in crawl.log
    assert json.dumps(crawl.stats.get("woshipm/stop_message", "")).count("\\n") == 0


def test_scrapy_feed_option_and_the_progress_line(replica, manifest, tmp_path):
    out = tmp_path / "out.jsonl"
    crawl = run_crawl("category", replica.base_url, tmp_path / "exports", {"category": "pd,ai", "max_pages": 1},
                      settings={"WOSHIPM_PROGRESS": "True"}, extra=("-O", str(out)))
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(row["id"] for row in lines) == sorted(item["id"] for item in crawl.items)
    assert all(row["title"] == manifest[row["id"]]["title"] for row in lines)
    # The live line, redrawn in place (\r, which text-mode capture turns into a newline, then
    # erase-line); its last state stays on screen.
    progress = f"\x1b[2Klisting pages 2 | articles fetched {len(crawl.items)} |"
    assert progress in crawl.log


def test_a_tag_with_no_articles_is_named_in_a_warning(replica, tmp_path):
    crawl = run_crawl("tag", replica.base_url, tmp_path, {"tag": "没有这个标签"})
    assert crawl.returncode == 0 and crawl.items == []
    assert crawl.stat("woshipm/empty_listings") == 1
    assert any("WARNING" in line and "has no articles" in line for line in crawl.log.splitlines())
