"""When the site changes its pages: layout_changed, coverage alarms, the canary, the second layouts."""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest
from scrapy.settings import Settings

from woshipm_crawler.alarms import fallen_fields, furniture_paragraphs, present_fields
from woshipm_crawler.config import Config
from woshipm_crawler.parse.article import ArticlePageError, parse_article_response
from woshipm_crawler.parse.page import classify, parse_page
from woshipm_replica import ReplicaServer, pages
from woshipm_replica.crawls import field_match_rates, print_rates, run_crawl
from woshipm_replica.server import LayoutSpec

FAILED_LINE_RE = re.compile(r"Failed \(layout_changed\): \S+/(\d+)\.html")


def is_category_listing(key: str) -> bool:
    return key.startswith("category:")


# -- the classifier and the parser -------------------------------------------------------------------


def test_a_redesigned_article_is_layout_changed_not_a_shell_nor_untitled(replica):
    corpus = replica.corpus
    article = corpus.article_by_id(corpus.special["no_summary"])
    url = "https://www.woshipm.com" + article.path()
    v2 = pages.render_article(corpus, "https://www.woshipm.com", article, "v2")
    assert classify(parse_page(v2)) == "layout_changed"
    with pytest.raises(ArticlePageError) as error:
        parse_article_response(v2, url)
    assert error.value.reason == "layout_changed"
    # The author card outside the wrapper and the published_time meta are still there; the rest is not.
    assert error.value.missing == ("title", "body", "tags")
    # The same article's JS shell (no visible text) and a cut v2 page keep their own reasons.
    assert classify(parse_page(pages.render_js_shell(corpus, "https://www.woshipm.com", article))) == "js_shell"
    assert classify(parse_page(v2[: len(v2) // 2])) == "truncated"
    assert classify(parse_page(pages.render_not_found(corpus, "https://www.woshipm.com"))) == "unknown"


def test_a_known_wrapper_without_its_title_or_meta_block_is_layout_changed(replica):
    corpus = replica.corpus
    article = corpus.article_by_id(corpus.special["original"])
    url = "https://www.woshipm.com" + article.path()
    html = pages.render_article(corpus, "https://www.woshipm.com", article)
    for old, new, missing in (
        ('<h2 class="article--title">', '<h2 class="post-title-2027">', "title"),
        ('<div class="meta--sup">', '<div class="post-meta-2027">', "published"),
    ):
        changed = html.replace(old, new)
        assert changed != html
        with pytest.raises(ArticlePageError) as error:
            parse_article_response(changed, url)
        assert error.value.reason == "layout_changed"
        assert error.value.missing == ((missing,) if missing == "title" else ())  # the time meta still dates it
    # A real empty title in the known layout stays no_title.
    with pytest.raises(ArticlePageError) as error:
        parse_article_response(re.sub(r'(<h2 class="article--title">)[^<]*', r"\1", html), url)
    assert error.value.reason == "no_title"


REDESIGN_SEEDS = range(40)


def test_a_redesign_nobody_wrote_reads_as_layout_changed_never_as_a_missing_body(replica):
    # Seeded random redesigns (class names renamed, divs made sections, og:title dropped, each by the
    # seed): every page either parses to the article the model holds or fails as layout_changed.
    corpus, base = replica.corpus, "https://www.woshipm.com"
    outcomes = Counter()
    for seed in REDESIGN_SEEDS:
        for index in (0, 7, 33):
            article = corpus.article(index)
            page = pages.random_redesign(pages.render_article(corpus, base, article), seed)
            assert page != pages.render_article(corpus, base, article)
            try:
                fields = parse_article_response(page, base + article.path())
            except ArticlePageError as error:
                outcomes[error.reason] += 1
                assert error.reason == "layout_changed", (seed, index, str(error))
                assert "an article page without the known layout" in str(error)
            else:
                outcomes["parsed"] += 1
                assert fields["title"] == article.title
    print(dict(outcomes))
    assert outcomes["layout_changed"] >= len(REDESIGN_SEEDS)  # the redesigns do break the parser
    # The same seed is the same redesign on every page; another seed is another one.
    article = corpus.article(0)
    html = pages.render_article(corpus, base, article)
    assert pages.random_redesign(html, 4) == pages.random_redesign(html, 4) != pages.random_redesign(html, 5)


def test_a_listing_shaped_article_page_is_layout_changed():
    # The article's text, a title, and the site's cards beside it (a 推荐 block): not a listing, not
    # "no body", since the article is plainly there.
    text = "这是一篇完整的文章正文，讲述产品经理如何做用户研究。" * 40
    card = '<article class="postlist-item"><h2 class="post-title"><a href="/pd/1.html">卡片</a></h2></article>'
    html = (f"<html><head><title>一篇文章 | 人人都是产品经理</title></head>"
            f"<body><main><p>{text}</p>{card}</main></body></html>")
    assert classify(parse_page(html)) == "listing"
    with pytest.raises(ArticlePageError) as error:
        parse_article_response(html, "https://www.woshipm.com/pd/5.html")
    assert error.value.reason == "layout_changed"
    # Without the text, it is no article: a page with nothing to read stays no_body.
    with pytest.raises(ArticlePageError) as error:
        parse_article_response(html.replace(text, "短"), "https://www.woshipm.com/pd/5.html")
    assert error.value.reason == "no_body"


# -- coverage arithmetic ------------------------------------------------------------------------------


class Stats(dict):
    def get_value(self, key, default=None):
        return self.get(key, default)


def checked(articles: int, **have: int) -> Stats:
    fields = ("title", "author", "published", "body", "tags", "summary", "cover_image", "body_length", "no_furniture")
    return Stats({"woshipm/checked/articles": articles,
                  **{f"woshipm/checked/{name}": have.get(name, articles) for name in fields}})


def test_fallen_fields_need_enough_articles_and_more_than_one_odd_one():
    config = Config.from_settings(Settings())  # settings.py's expectations
    assert fallen_fields(checked(40, author=30), config) == ["author 30/40 (expected 100%)"]
    assert fallen_fields(checked(40, summary=38), config) == []  # 95% ≥ 97% − 5 points
    assert fallen_fields(checked(30, tags=29), config) == []  # one odd article of 30
    assert fallen_fields(checked(20, tags=0, title=0), config) == []  # under WOSHIPM_COVERAGE_MIN_ARTICLES
    assert fallen_fields(checked(200, tags=180, no_furniture=150), config) == [
        "tags 180/200 (expected 100%)", "no_furniture 150/200 (expected 100%)"]


def test_present_fields_and_furniture_left_in_a_body():
    body = "第一段正文。" * 40 + "\n\n题图来自Unsplash，基于CC0协议\n\n正文继续"
    body += "\n\n本文由 @某人 原创发布于人人都是产品经理"
    assert furniture_paragraphs(body) == 2
    fields = {"title": "t", "author": {"name": None, "id": None, "url": None}, "published": "2024-01-01",
              "body_text": body, "tags": ["a"], "summary": None, "cover_image": "https://x/y.png"}
    assert present_fields(fields, 200) == {"title", "published", "body", "tags", "cover_image", "body_length"}


# -- the replica's layouts -----------------------------------------------------------------------------


def test_layout_spec_shares_are_deterministic_and_checked():
    spec = LayoutSpec.parse("v2=0.3")
    picks = [spec.hits("v2", article_id, 1) for article_id in range(1000)]
    assert picks == [LayoutSpec.parse("v2=0.3").hits("v2", article_id, 1) for article_id in range(1000)]
    assert 250 < sum(picks) < 350
    assert all(LayoutSpec.parse("v2").hits("v2", article_id, 1) for article_id in range(50))
    with pytest.raises(ValueError, match="unknown layout"):
        LayoutSpec.parse("v3")
    with pytest.raises(ValueError, match="0..1"):
        LayoutSpec.parse("v2=2")


# -- crawls ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_v2_everywhere_fails_within_50_articles_naming_the_fields(tmp_path):
    with ReplicaServer(articles=150, seed=1, layout="v2") as server:
        crawl = run_crawl("category", server.base_url, tmp_path, {"category": "all"})
    assert crawl.returncode == 1, crawl.log[-3000:]
    assert crawl.stat("finish_reason") == "layout_changed"
    assert 10 <= crawl.stat("woshipm/checked/articles") <= 50
    assert crawl.stat("woshipm/failed/layout_changed") == crawl.stat("woshipm/checked/articles")
    assert crawl.items == [] and crawl.stat("woshipm/jsonl_written") == 0  # nothing incomplete written
    assert crawl.stat("woshipm/articles_parsed") == 0
    failed = re.search(r"woshipm summary: run FAILED: (.*)", crawl.log).group(1)
    for field in ("title 0/", "body 0/", "tags 0/"):
        assert field in failed
    assert "author" not in failed  # the author card outside the article is still where it was
    assert "not found: title, body, tags" in crawl.log
    # The articles it did not reach wait in the frontier for a run with a fixed parser.
    found = crawl.stat("woshipm/articles_found_new")
    assert found >= 50 and crawl.stat("woshipm/frontier/queued") + crawl.stat("woshipm/frontier/failed") == found


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["random:3", "random:11"])
def test_a_random_redesign_everywhere_fails_the_run_naming_layout_changed(tmp_path, layout):
    with ReplicaServer(articles=150, seed=1, layout=layout) as server:
        crawl = run_crawl("category", server.base_url, tmp_path, {"category": "all"})
        served = server.stats["layout:random"]
    assert crawl.returncode == 1, crawl.log[-3000:]
    assert served >= 10
    assert crawl.stat("finish_reason") == "layout_changed"
    assert crawl.stat("woshipm/failed/layout_changed") == crawl.stat("woshipm/articles_attempted") >= 10
    assert crawl.items == [] and "woshipm/failed/no_body" not in crawl.stats
    assert "woshipm summary: FAILED (finish reason: layout_changed)" in crawl.log
    top = re.search(r"woshipm summary: top failures: (.*)", crawl.log).group(1)
    assert re.fullmatch(r"layout_changed \d+ \(e\.g\. http://127\.0\.0\.1:\d+/[a-z-]+/\d+\.html\)", top), top
    assert "run FAILED: layout_changed:" in crawl.log


@pytest.mark.slow
def test_articles_failing_for_any_reason_in_a_row_stop_the_run_naming_it(tmp_path):
    with ReplicaServer(articles=150, seed=1, faults="truncate=1") as server:
        crawl = run_crawl("category", server.base_url, tmp_path, {"category": "all"})
    assert crawl.returncode == 1, crawl.log[-3000:]
    assert crawl.stat("finish_reason") == "articles_failing"
    assert 10 <= crawl.stat("woshipm/failed/truncated") <= 30  # stopped soon, not at the end
    assert crawl.stat("woshipm/articles_attempted") < 150
    failed = re.search(r"woshipm summary: run FAILED: (.*)", crawl.log).group(1)
    assert re.fullmatch(r"articles_failing: 10 articles in a row failed: truncated 10 "
                        r"\(e\.g\. http://127\.0\.0\.1:\d+/[a-z-]+/\d+\.html\)", failed), failed


@pytest.mark.slow
def test_an_era_without_summaries_and_cover_images_is_crawled_to_the_end_then_failed_or_accepted(tmp_path):
    days = sorted(row["published"][:10] for row in ReplicaServer(articles=150, seed=1).corpus.manifest(""))
    plain_before = days[int(len(days) * 0.7)]  # the oldest 70% of the archive: no summaries, no images
    with ReplicaServer(articles=150, seed=1, plain_before=plain_before) as server:
        manifest = {row["id"]: row for row in server.corpus.manifest(server.base_url)}
        plain = {i for i, row in manifest.items() if row["published"][:10] < plain_before}
        assert len(plain) >= 100 and all(manifest[i]["summary"] is None and manifest[i]["cover_image"] is None
                                         for i in plain)
        crawl = run_crawl("category", server.base_url, tmp_path / "first", {"category": "all"})
        accepted = run_crawl("category", server.base_url, tmp_path / "accepted", {"category": "all"},
                             settings={"WOSHIPM_ACCEPT_COVERAGE": "summary=0.25,cover_image=0.25"})
    # Fetching went on to the end: every article is written, as the page has it.
    assert crawl.stat("finish_reason") == "finished", crawl.log[-3000:]
    assert {item["id"] for item in crawl.items} == set(manifest)
    rates, mismatches = field_match_rates(crawl.items, manifest, is_category_listing)
    assert mismatches == {}
    assert crawl.returncode == 1
    have_summary = sum(1 for i in manifest if manifest[i]["summary"])
    have_cover = sum(1 for i in manifest if manifest[i]["cover_image"])
    failed = re.search(r"woshipm summary: run FAILED: (.*)", crawl.log).group(1)
    assert failed == ("field coverage below expectation (has the site changed its pages?): "
                      f"summary {have_summary}/150 (expected 97%), cover_image {have_cover}/150 (expected 100%)")
    # The operator looked, and accepts the era's level: the same crawl is ok, and says why.
    assert accepted.returncode == 0, accepted.log[-3000:]
    assert "woshipm summary: ok" in accepted.log
    line = "summary ≥25% (expected 97%), cover_image ≥25% (expected 100%)"
    assert f"Coverage accepted by WOSHIPM_ACCEPT_COVERAGE: {line}" in accepted.log
    assert f"woshipm summary: coverage accepted by WOSHIPM_ACCEPT_COVERAGE: {line}" in accepted.log
    assert {item["id"] for item in accepted.items} == set(manifest)


def test_a_bad_accepted_coverage_stops_the_run_with_one_line(replica, tmp_path):
    crawl = run_crawl("category", replica.base_url, tmp_path, {"category": "pd"},
                      settings={"WOSHIPM_ACCEPT_COVERAGE": "summery=0.4"})
    assert crawl.returncode == 2
    assert "WOSHIPM_ACCEPT_COVERAGE: summery=0.4 is not a field's share in 0..1" in crawl.log
    assert "Traceback" not in crawl.log


@pytest.mark.slow
def test_collapsed_coverage_stops_the_run_once_enough_articles_were_checked(tmp_path):
    # The layout streak turned off: the coverage check alone must catch v2 after 30 article pages.
    with ReplicaServer(articles=150, seed=1, layout="v2") as server:
        crawl = run_crawl("category", server.base_url, tmp_path, {"category": "all"},
                          settings={"WOSHIPM_FAILURES_TO_STOP": "100000"})
    assert crawl.returncode == 1, crawl.log[-3000:]
    assert crawl.stat("finish_reason") == "coverage_collapsed"
    assert 30 <= crawl.stat("woshipm/checked/articles") <= 50
    assert "run FAILED: coverage_collapsed: field coverage collapsed: title 0/30 (expected 100%)" in crawl.log
    assert crawl.items == []


@pytest.mark.slow
def test_v2_on_one_percent_counts_exactly_those_pages_and_stays_ok(tmp_path):
    with ReplicaServer(articles=150, seed=1, layout="v2=0.01") as server:
        manifest = {row["id"]: row for row in server.corpus.manifest(server.base_url)}
        v2_ids = {row for row in manifest if server.layout.hits("v2", row, server.corpus.seed)}
        assert v2_ids == {5568594}  # 1% of 150: the hash picks one page
        crawl = run_crawl("category", server.base_url, tmp_path, {"category": "all"})
        served_v2 = server.stats["layout:v2"]
    assert crawl.returncode == 0, crawl.log[-3000:]
    assert served_v2 == 1
    assert {int(i) for i in FAILED_LINE_RE.findall(crawl.log)} == v2_ids
    assert crawl.stat("woshipm/failed/layout_changed") == len(v2_ids)
    assert {item["id"] for item in crawl.items} == set(manifest) - v2_ids
    rates, mismatches = field_match_rates(crawl.items, manifest, is_category_listing)
    assert mismatches == {}
    assert "woshipm summary: ok" in crawl.log
    assert "fields checked on 150 article page(s): title 149/150" in crawl.log


@pytest.mark.slow
def test_old_cards_on_a_fifth_of_listing_pages_crawl_exact(replica, tmp_path):
    with ReplicaServer(articles=150, seed=1, layout="cards2019=0.2") as server:
        # The card style is rendering only: the manifest is the default replica's, row for row.
        assert list(server.corpus.manifest(replica.base_url)) == list(replica.corpus.manifest(replica.base_url))
        manifest = {row["id"]: row for row in server.corpus.manifest(server.base_url)}
        crawl = run_crawl("category", server.base_url, tmp_path, {"category": "all"})
        old_style = server.stats["layout:cards2019"]
    assert crawl.returncode == 0, crawl.log[-3000:]
    assert old_style >= 3, "no listing page was served in the old card style"
    ids = [item["id"] for item in crawl.items]
    assert sorted(ids) == sorted(manifest)
    rates, mismatches = field_match_rates(crawl.items, manifest, is_category_listing)
    print_rates(rates)
    assert mismatches == {}
    assert "woshipm summary: ok" in crawl.log


@pytest.mark.slow
def test_a_field_below_its_expectation_fails_the_run_at_its_end(replica, tmp_path):
    # The replica's summaries cover 97.7% of articles: expecting all of them, with no tolerance, must fail.
    crawl = run_crawl("category", replica.base_url, tmp_path, {"category": "all"},
                      settings={"WOSHIPM_COVERAGE_TOLERANCE": "0"})
    assert crawl.returncode == 1
    assert crawl.stat("finish_reason") == "finished"
    assert crawl.stat("woshipm/jsonl_written") == 150  # what was read is written; the run says it is short
    missing = sum(1 for item in crawl.items if item["summary"] is None)
    assert missing >= 1
    assert ("run FAILED: field coverage below expectation (has the site changed its pages?): "
            f"summary {150 - missing}/150 (expected 97%)") in crawl.log


# -- the canary -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_canary_passes_on_the_default_replica_in_three_requests(tmp_path):
    with ReplicaServer(articles=150, seed=1) as server:
        started = time.perf_counter()
        crawl = run_crawl("canary", server.base_url, tmp_path)
        elapsed = time.perf_counter() - started
        requests = sum(server.path_counts.values())
    print(f"bench: canary on the default replica: {crawl.stat('elapsed_time_seconds'):.2f} s from spider open to "
          f"close, {elapsed:.2f} s for the whole `scrapy crawl canary` process, {requests} requests")
    assert crawl.returncode == 0, crawl.log[-3000:]
    assert requests <= 3
    lines = re.findall(r"woshipm canary: (\w+) (ok|FAILED)", crawl.log)
    assert len(lines) == 19 and all(verdict == "ok" for _, verdict in lines)  # the listing, 18 fields
    assert re.search(r"woshipm canary: title ok: \S", crawl.log)
    assert "woshipm summary: ok" in crawl.log
    assert not (tmp_path / "state.sqlite3").exists() and not (tmp_path / "jsonl").exists()


@pytest.mark.slow
def test_canary_fails_on_v2_naming_the_fields(tmp_path):
    with ReplicaServer(articles=150, seed=1, layout="v2") as server:
        crawl = run_crawl("canary", server.base_url, tmp_path)
        requests = sum(server.path_counts.values())
    assert crawl.returncode == 1
    assert requests <= 3
    assert "woshipm canary: title FAILED: not read (layout_changed)" in crawl.log
    assert "woshipm canary: tags FAILED" in crawl.log
    failed = re.search(r"woshipm summary: run FAILED: (.*)", crawl.log).group(1)
    assert failed.startswith("canary: fields failed: id, url, category, title, author")
    assert "not found: title, body, tags" in failed
    assert not (tmp_path / "state.sqlite3").exists()
