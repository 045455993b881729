"""Bounded fields without invisible controls (issue 24).

Titles, author names and tags are cut to documented bounds (parse.article.MAX_*) with a counted
warning, the article stored; bidirectional controls and zero-width characters are gone from them,
and from bodies but where a joiner is content (an emoji sequence, a joining script). Replica pages:
faults ``hugefields`` (a 1 MB title, a 400-character author, 20,001 tags) and ``bidi``.
"""

from __future__ import annotations

import json
import re

import pytest

from woshipm_crawler.parse.article import MAX_AUTHOR_CHARS, MAX_TAG_CHARS, MAX_TAGS, MAX_TITLE_CHARS, parse_article
from woshipm_crawler.parse.page import parse_page
from woshipm_crawler.textmodel import INVISIBLE_RE, clean_field, strip_invisible
from woshipm_replica import ReplicaServer, pages
from woshipm_replica.crawls import run_crawl

BIDI_TITLE = "产品经理的一天x 👩\u200d💻"  # what pages.BIDI_FIELDS["title"] shows


@pytest.mark.parametrize(("text", "expected"), [
    ("A\u202eB\u202cC", "ABC"),  # an override that would show "CB"
    ("\u2066x\u2069 \u2067y\u2069 \u2068z\u2069", "x y z"),  # isolates
    ("a\u200eb\u200fc\u061cd", "abcd"),  # direction marks
    ("产\u200b品\u200d经\u2060理\ufeff", "产品经理"),  # zero-width space, joiner, word joiner, BOM
    ("👩\u200d💻 程序员", "👩\u200d💻 程序员"),  # a joiner inside an emoji sequence is content
    ("🏳\ufe0f\u200d🌈", "🏳\ufe0f\u200d🌈"),
    ("🙂\u200d产品", "🙂产品"),  # ... not between an emoji and a letter
    ("می\u200cخواهم", "می\u200cخواهم"),  # ZWNJ in Persian: content
    ("क्\u200dष", "क्\u200dष"),  # ZWJ in Devanagari: content
    ("\u200dA\u200c", "A"),
])
def test_strip_invisible(text, expected):
    assert strip_invisible(text) == expected


def test_clean_field_also_drops_control_characters_and_edge_space():
    assert clean_field(" \u200b标题\x01\x7f  二\u202e ") == "标题 二"


def parse_replica_page(server, manifest, article_id: int) -> tuple[dict, list]:
    url = manifest[article_id]["url"]
    response = server.respond("/" + url.split("/", 3)[3])
    cuts: list = []
    return parse_article(parse_page(response.body, content_type=response.content_type), url, cuts), cuts


@pytest.fixture(scope="module")
def hostile():
    with ReplicaServer(articles=12, seed=1) as server:
        manifest = {row["id"]: row for row in server.corpus.manifest(server.base_url)}
        huge, bidi = sorted(manifest)[:2]
        server.set_faults(f"hugefields=ids:{huge},bidi=ids:{bidi}")
        yield server, manifest, huge, bidi


def test_a_1_mb_title_400_character_author_and_20001_tags_are_cut_to_their_bounds(hostile):
    server, manifest, huge, _ = hostile
    fields, cuts = parse_replica_page(server, manifest, huge)
    assert (MAX_TITLE_CHARS, MAX_AUTHOR_CHARS, MAX_TAGS, MAX_TAG_CHARS) == (500, 100, 50, 50)
    assert len(pages.HUGE_FIELDS["title"]) == 1_000_000 and len(pages.HUGE_FIELDS["tags"]) == 20_001
    assert fields["title"] == pages.HUGE_FIELDS["title"][:500]
    assert fields["author"]["name"] == "作者" * 50
    assert fields["tags"] == [f"标签{n}" for n in range(50)]
    assert cuts == [
        ("title", "1000000 characters, cut to 500"),
        ("author", "400 characters, cut to 100"),
        ("tags", "1 tag(s) longer than 50 characters, cut to it"),
        ("tags", "20001 tags, the first 50 kept"),
    ]
    assert fields["body_text"] == manifest[huge]["body_text"]  # the rest of the article as it is


def test_bidi_and_zero_width_characters_are_gone_from_title_author_tags_and_body(hostile):
    server, manifest, _, bidi = hostile
    fields, cuts = parse_replica_page(server, manifest, bidi)
    assert fields["title"] == BIDI_TITLE
    assert fields["author"]["name"] == "Alice"
    assert fields["tags"] == ["用户体验", "数据分析", "AI"]
    assert fields["body_text"] == pages.HOSTILE_TEXT["bidi"] + "\n\n" + manifest[bidi]["body_text"]
    assert fields["body_markdown"].startswith(pages.HOSTILE_TEXT["bidi"] + "\n\n")
    for text in (fields["title"], fields["body_text"], fields["body_html"], fields["body_markdown"]):
        assert {m.group() for m in INVISIBLE_RE.finditer(text)} <= {"\u200d", "\u200c"}
    assert cuts == []


@pytest.mark.slow
def test_a_crawl_stores_them_bounded_counts_the_cuts_and_exports_them_whole(hostile, tmp_path, scrapy_command):
    server, manifest, huge, bidi = hostile
    crawl = run_crawl("category", server.base_url, tmp_path, {"category": "all"})
    assert crawl.returncode == 0, crawl.log[-3000:]
    items = {item["id"]: item for item in crawl.items}
    assert sorted(items) == sorted(manifest)  # nothing lost
    assert len(items[huge]["title"]) == 500 and len(items[huge]["tags"]) == 50
    assert items[bidi]["title"] == BIDI_TITLE
    url = manifest[huge]["url"]
    assert re.findall(rf"WARNING: Cut \((\w+)\): {re.escape(url)} — (.*)", crawl.log) == [
        ("title", "1000000 characters, cut to 500"), ("author", "400 characters, cut to 100"),
        ("tags", "1 tag(s) longer than 50 characters, cut to it"), ("tags", "20001 tags, the first 50 kept"),
    ]
    assert {k: v for k, v in crawl.stats.items() if k.startswith("woshipm/cut/")} == {
        "woshipm/cut/title": 1, "woshipm/cut/author": 1, "woshipm/cut/tags": 2}
    assert "woshipm summary: fields cut to their bounds (stored cut): author 1, tags 2, title 1" in crawl.log
    # The library's index and the spreadsheets carry the bounded title, whole (XLSX cut nothing).
    summary = (tmp_path / "markdown" / "SUMMARY.md").read_text(encoding="utf-8")
    assert pages.HUGE_FIELDS["title"][:500] in summary.replace("\\-", "-")
    assert pages.HUGE_FIELDS["title"][:501] not in summary.replace("\\-", "-")
    done = scrapy_command(["export", "--format", "jsonl,xlsx"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    import openpyxl

    rows = [row for sheet in openpyxl.load_workbook(tmp_path / "dataset" / "articles.xlsx").worksheets
            for row in sheet.iter_rows(min_row=2, values_only=True)]
    titles = {row[0]: row[1] for row in rows}
    assert titles[huge] == items[huge]["title"] and titles[bidi] == BIDI_TITLE
    exported = [json.loads(line) for line in (tmp_path / "dataset" / "articles.jsonl").read_text().splitlines()]
    assert {item["id"]: item["title"] for item in exported}[huge] == items[huge]["title"]
