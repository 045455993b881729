"""The pure parsers on replica pages, without a crawl: (html, url) in, plain data out."""

from __future__ import annotations

import pytest
from lxml import etree

from woshipm_crawler import site
from woshipm_crawler.items import MANIFEST_FIELDS
from woshipm_crawler.parse.article import ArticlePageError, parse_article
from woshipm_crawler.parse.listing import parse_listing
from woshipm_crawler.parse.page import css, css_any
from woshipm_crawler.textmodel import normalize_ws
from woshipm_replica import ReplicaServer

PAGE_FIELDS = [f for f in MANIFEST_FIELDS if f not in ("listings", "duplicate_of")]  # facts of the crawl


def page(server, path: str) -> str:
    response = server.respond(path)
    assert response.status == 200, path
    return response.body.decode("utf-8")


def test_every_article_page_parses_to_its_manifest_record(replica, manifest):
    for article_id, row in manifest.items():
        fields = parse_article(page(replica, row["url"][len(replica.base_url):]), row["url"])
        for name in PAGE_FIELDS:
            got, want = fields[name], row[name]
            if name == "body_text":
                got, want = normalize_ws(got), normalize_ws(want)
            assert got == want, (article_id, name)


def test_special_pages_field_by_field(replica, manifest):
    special = replica.corpus.special

    def parsed(name):
        row = manifest[special[name]]
        return parse_article(page(replica, row["url"][len(replica.base_url):]), row["url"])

    assert parsed("editor_lead")["summary"] == manifest[special["editor_lead"]]["summary"]
    assert not parsed("editor_lead")["summary"].startswith("编辑导语")
    assert parsed("no_summary")["summary"] is None
    assert parsed("no_time_meta")["published"] == manifest[special["no_time_meta"]]["published"]
    no_time = parsed("no_time_meta")
    assert no_time["published"].endswith("T00:00:00+08:00") and no_time["published_time_known"] is False
    assert parsed("editor_lead")["published_time_known"] is manifest[special["editor_lead"]]["published_time_known"]
    assert parsed("partner")["source"] == {"type": "partner", "credit": manifest[special["partner"]]["author"]["name"]}
    assert parsed("unknown_source")["source"] == {"type": "unknown", "credit": None}
    lazy = parsed("lazy_data_src")
    assert lazy["images"] and not any(url.startswith("data:") for url in lazy["images"])
    assert "data-src" not in lazy["body_html"] and "style=" not in parsed("wechat_sections")["body_html"]
    for name in ("promo_card", "related_reading", "columnist_bio", "copyright_inline", "copyright_block"):
        body = parsed(name)["body_text"]
        for furniture in ("查看详情", "#相关阅读#", "#专栏作家#", "发布于人人都是产品经理", "题图来自"):
            assert furniture not in body, (name, furniture)
    assert "<script>" in parsed("template_literals")["body_text"]  # text that looks like markup stays text


def test_category_page_cards_come_from_the_latest_list_only(replica):
    for slug in site.crawlable_categories():
        key = f"category:{slug}"
        expected = [replica.corpus.article_id(i) for i in replica.corpus.listing(key)[:12]]
        if not expected:
            continue
        url = site.Site(replica.base_url).category_url(slug)
        cards = parse_listing(page(replica, f"/category/{slug}"), url)
        assert [card.id for card in cards] == expected, slug  # not the decoys, 推荐 or sidebar
        assert all(card.url == site.Site(replica.base_url).canonical(card.url) for card in cards)


def test_home_page_reads_the_all_tab(replica):
    cards = parse_listing(page(replica, "/"), replica.base_url + "/", home=True)
    newest = [replica.corpus.article_id(i) for i in list(replica.corpus.newest_first())[:20]]
    assert [card.id for card in cards] == newest


def test_listing_past_the_end_is_empty_or_404(replica):
    response = replica.respond("/category/pd/page/999")
    assert response.status == 404 or parse_listing(response.body.decode(), "http://x/category/pd/page/999") == []


@pytest.mark.parametrize(("fault", "reason"), [("truncate", "truncated"), ("jsshell", "js_shell"),
                                               ("interstitial", "interstitial")])
def test_pages_that_are_not_articles_raise_with_a_reason(manifest, fault, reason):
    article_id = sorted(manifest)[0]
    with ReplicaServer(articles=150, seed=1, faults=f"{fault}=ids:{article_id}") as server:
        url = manifest[article_id]["url"]
        path = url.split("/", 3)[3]
        response = server.respond("/" + path)
        with pytest.raises(ArticlePageError) as error:
            parse_article(response.body.decode("utf-8"), server.base_url + "/" + path)
    assert error.value.reason == reason


def test_css_any_matches_tags_classes_and_attributes_like_the_css_group():
    root = etree.fromstring(
        '<div><p class="x author-card y">卡片<b class="relate-post">内</b></p><p class="author-cards">留下</p>'
        '<div data-role="ad">广告</div><div data-role="adx">留下2</div><script>s()</script>'
        '<section><form><input/></form>尾</section><p>正文</p></div>'
    )
    selectors = (".author-card", ".relate-post", "[data-role='ad']", "script", "form", "input", "section > p")
    assert sorted(etree.tostring(e, encoding=str, with_tail=False) for e in css_any(selectors)(root)) == sorted(
        etree.tostring(e, encoding=str, with_tail=False) for e in css(", ".join(selectors))(root)
    )
    assert sorted(e.text or e.tag for e in css_any(selectors)(root)) == sorted(
        ["卡片", "内", "广告", "s()", "form", "input"]
    )
