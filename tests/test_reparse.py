"""``scrapy reparse``: a parser change applied to the archived pages, with no request to the site.

A crawl of the replica (a few pages in the v2 redesign, which the parser does not know), then one more
furniture selector (``WOSHIPM_EXTRA_FURNITURE``): the articles it touches get a new version, the others
write nothing, the site sees no request. Then the v2 layout given (``WOSHIPM_ARTICLE_LAYOUTS``): the
pages that failed with ``layout_changed`` are stored, field for field as the site has them.
"""

from __future__ import annotations

import json
import re

import pytest
import store_helpers
from lxml import html

from woshipm_crawler.state import StateStore
from woshipm_replica import ReplicaServer
from woshipm_replica.crawls import field_match_rates, run_crawl, state_rows

pytestmark = pytest.mark.slow
FAILED_LINE_RE = re.compile(r"Failed \(layout_changed\): \S+/(\d+)\.html")
# The replica's v2 redesign (replica/pages.py article_wrapper_v2), written down as an operator would.
V2_LAYOUT = {
    "name": "v2",
    "wrapper": "article.post-detail",
    "title": "h1.post-detail__title",
    "content": "section.post-detail__body",
    "meta": "footer.post-detail__meta",
    "time": ".post-detail__date",
    "stats": ".post-detail__counts",
    "authors": ["a.post-detail__author"],
    "tags": "ul.post-tags a",
}


def reparse(server: ReplicaServer, export_dir, *options: str, **settings):
    server.reset_stats()
    done = run_crawl("reparse", server.base_url, export_dir, settings=settings, command=("reparse", *options))
    return done, dict(server.path_counts)


def stored_items(export_dir) -> dict[int, tuple[list[tuple[int, str]], dict]]:
    """Each stored article: its versions (number, content hash), and its current item."""
    with StateStore(export_dir / "state.sqlite3") as store:
        return {article_id: ([(v["version"], v["content_hash"]) for v in store_helpers.versions(store, article_id)],
                             store.get_item(article_id))
                for (article_id,) in state_rows(export_dir, "SELECT id FROM articles")}


def captions(body_html: str) -> list[str]:
    return [element.text_content().strip() for element in html.fragment_fromstring(body_html, create_parent="div")
            .cssselect("figcaption")]


def test_reparse_applies_a_parser_change_to_the_archive_and_stores_pages_of_an_unknown_layout(tmp_path):
    with ReplicaServer(articles=150, seed=1, layout="v2=0.03") as server:
        manifest = {row["id"]: row for row in server.corpus.manifest(server.base_url)}
        v2_ids = {article_id for article_id in manifest if server.layout.hits("v2", article_id, server.corpus.seed)}
        assert 2 <= len(v2_ids) <= 10
        crawl = run_crawl("category", server.base_url, tmp_path, {"category": "all"})
        assert crawl.returncode == 0, crawl.log[-3000:]
        assert {int(i) for i in FAILED_LINE_RE.findall(crawl.log)} == v2_ids
        before = stored_items(tmp_path)
        assert set(before) == set(manifest) - v2_ids
        stored = {article_id: item for article_id, (_, item) in before.items()}
        captioned = {article_id for article_id, row in stored.items() if captions(row["body_html"])}
        assert 0 < len(captioned) < len(stored)

        # one more furniture selector: the captioned articles get a new version, no one else writes
        done, requests = reparse(server, tmp_path, WOSHIPM_EXTRA_FURNITURE="figcaption")
        assert requests == {}  # not even robots.txt
        assert done.returncode == 0, done.log[-3000:]
        assert {item["id"] for item in done.items} == captioned
        after = stored_items(tmp_path)
        for article_id in set(stored) - captioned:
            assert after[article_id] == before[article_id]
        for item in done.items:
            old, new = stored[item["id"]], after[item["id"]][1]
            assert [number for number, _ in after[item["id"]][0]] == [1, 2]
            assert new["content_hash"] == item["content_hash"] != old["content_hash"]
            assert captions(old["body_html"]) and not captions(new["body_html"])
            assert new["body_html"] == item["body_html"] and "<figcaption" not in item["body_html"]
            for caption in captions(old["body_html"]):
                assert caption not in item["body_text"]
            # the same page: every other field as it was, the fetch time that of the archived page
            for name in ("title", "author", "published", "tags", "summary", "stats", "url"):
                assert item[name] == stored[item["id"]][name]
            assert item["crawled_at"] == stored[item["id"]]["crawled_at"]
        assert done.stat("woshipm/failed/layout_changed") == len(v2_ids)  # still unknown to the parser
        assert f"new or changed: {len(captioned)}; unchanged: {len(stored) - len(captioned)}" in done.log

        # the same again: nothing changed, nothing written
        again, requests = reparse(server, tmp_path, WOSHIPM_EXTRA_FURNITURE="figcaption")
        assert requests == {} and again.returncode == 0, again.log[-3000:]
        assert again.items == [] and stored_items(tmp_path) == after

        # the v2 layout known: the pages that failed with layout_changed are stored, as the site has them
        known, requests = reparse(server, tmp_path, WOSHIPM_ARTICLE_LAYOUTS=json.dumps([V2_LAYOUT]))
        assert requests == {}
        assert known.returncode == 0, known.log[-3000:]
        assert "layout_changed" not in known.log
        v2_items = [item for item in known.items if item["id"] in v2_ids]
        assert {item["id"] for item in v2_items} == v2_ids
        rates, mismatches = field_match_rates(v2_items, manifest, lambda key: key.startswith("category:"))
        assert mismatches == {}, mismatches
        # without the extra selector the captions are back: those articles get a third version
        assert {item["id"] for item in known.items} - v2_ids == captioned
        final = stored_items(tmp_path)
        assert all(len(final[article_id][0]) == 1 for article_id in v2_ids)
        assert all(len(final[article_id][0]) == 3 and captions(final[article_id][1]["body_html"])
                   for article_id in captioned)


def test_reparse_takes_only_the_articles_asked_for(tmp_path):
    with ReplicaServer(articles=40, seed=2) as server:
        crawl = run_crawl("category", server.base_url, tmp_path, {"category": "all"})
        assert crawl.returncode == 0, crawl.log[-3000:]
        stored = {item["id"]: item for item in crawl.items}
        captioned = sorted(article_id for article_id, item in stored.items() if captions(item["body_html"]))
        assert len(captioned) >= 2
        one = captioned[0]
        done, requests = reparse(server, tmp_path, "--id", str(one), WOSHIPM_EXTRA_FURNITURE="figcaption")
        assert requests == {} and done.returncode == 0, done.log[-3000:]
        assert [item["id"] for item in done.items] == [one]
        assert "reparsed from the archive, no request sent: 1 page(s)" in done.log

        category = stored[captioned[1]]["url"].split("/")[-2]
        in_category = {i for i in captioned[1:] if stored[i]["url"].split("/")[-2] == category}
        done, _ = reparse(server, tmp_path, "--category", category, WOSHIPM_EXTRA_FURNITURE="figcaption")
        assert done.returncode == 0, done.log[-3000:]
        assert {item["id"] for item in done.items} == in_category

        # no page fetched on or after tomorrow: nothing read, nothing written
        later, _ = reparse(server, tmp_path, "--since", "2999-01-01", WOSHIPM_EXTRA_FURNITURE="figcaption")
        assert later.returncode == 0 and later.items == [], later.log[-3000:]
        assert "reparsed from the archive, no request sent: 0 page(s)" in later.log

        bad, _ = reparse(server, tmp_path, "--since", "yesterday")
        assert bad.returncode == 2, bad.log[-3000:]
        assert "-a since=yesterday: expected a date as YYYY-MM-DD" in bad.log


def test_a_layout_needs_every_field_and_css_selectors():
    from scrapy.settings import Settings

    from woshipm_crawler.config import Config
    from woshipm_crawler.parse.article import layout_from
    from woshipm_crawler.spiders.arguments import run_settings

    def read(values):
        return run_settings(Config.from_settings(Settings(values)))

    assert layout_from(V2_LAYOUT).authors == ("a.post-detail__author",)
    with pytest.raises(ValueError, match="a layout needs name, wrapper"):
        layout_from({k: v for k, v in V2_LAYOUT.items() if k != "tags"})
    with pytest.raises(ValueError, match="'h1\\[\\[' is no CSS selector"):
        layout_from({**V2_LAYOUT, "title": "h1[["})
    _, layouts, error = read({"WOSHIPM_ARTICLE_LAYOUTS": json.dumps([V2_LAYOUT])})
    assert error is None and [layout.name for layout in layouts] == ["v2"]
    _, _, error = read({"WOSHIPM_ARTICLE_LAYOUTS": "[{"})
    assert error.startswith("-s WOSHIPM_ARTICLE_LAYOUTS: ")
    _, _, error = read({"WOSHIPM_EXTRA_FURNITURE": "div[["})
    assert "'div[[' is no CSS selector" in error
