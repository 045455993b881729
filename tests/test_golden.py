"""Golden fixtures, the fundus way: stored pages, each with the result written down beside it.

``tests/fixtures/pages/<name>.html.gz`` is a page (real-site layouts made by hand, and replica pages
frozen by ``tests/fixtures/capture_replica_pages.py``); ``<name>.json`` holds its URL and what the
parser must make of it, field by field (see tests/fixtures/README.md for how each was reviewed).
After a deliberate parser change, ``python tests/fixtures/regen.py`` shows the diff to review.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from woshipm_crawler.parse.article import ArticlePageError, parse_article_response
from woshipm_crawler.parse.listing import parse_listing
from woshipm_crawler.parse.page import parse_page
from woshipm_crawler.textmodel import content_hash, word_count

PAGES = Path(__file__).parent / "fixtures" / "pages"
SPECS = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(PAGES.glob("*.json"))}


def body(name: str) -> bytes:
    return gzip.decompress((PAGES / f"{name}.html.gz").read_bytes())


def test_the_set_spans_enough_pages():
    articles = [name for name, spec in SPECS.items() if "expected" in spec]
    failures = {spec["error"] for spec in SPECS.values() if "error" in spec}
    listings = [name for name, spec in SPECS.items() if spec["kind"] == "listing"]
    assert len(articles) >= 12 and len(listings) >= 3
    assert failures == {"truncated", "js_shell", "interstitial", "layout_changed"}
    assert any(name.startswith("site-") for name in articles)  # real-site layouts, not only the replica's


@pytest.mark.parametrize("name", [name for name, spec in SPECS.items() if spec["kind"] == "article"])
def test_article_page(name):
    spec = SPECS[name]
    if "error" in spec:
        with pytest.raises(ArticlePageError) as error:
            parse_article_response(body(name), spec["url"], "utf-8")
        assert error.value.reason == spec["error"]
        return
    fields = parse_article_response(body(name), spec["url"], "utf-8")
    expected = spec["expected"]
    assert sorted(fields) == sorted(expected)
    for key, value in expected.items():
        assert fields[key] == value, f"{name}: {key}"


@pytest.mark.parametrize("name", [name for name, spec in SPECS.items() if spec["kind"] == "listing"])
def test_listing_page(name):
    spec = SPECS[name]
    cards = parse_listing(parse_page(body(name), "utf-8"), spec["url"], home=spec.get("home", False))
    assert [{"id": c.id, "url": c.url, "title": c.title} for c in cards] == spec["cards"]


def test_str_and_bytes_input_parse_alike():
    name = "site-2019-original-wechat"
    fields = parse_article_response(body(name).decode("utf-8"), SPECS[name]["url"])
    assert fields == SPECS[name]["expected"]


# -- word_count and content_hash: values counted by hand ----------------------------------------------


@pytest.mark.parametrize(("text", "count"), [
    ("", 0),
    ("产品经理", 4),  # one per CJK character
    ("产品经理，你好。", 6),  # punctuation counts nothing
    ("AI 产品经理", 5),  # a Latin word is one
    ("GPT-4o 与 2.0 版本", 5),  # GPT-4o, 2.0: one word each; 与, 版, 本
    ("don't stop", 2),
    ("Ｂ端", 1),  # full-width Latin letters are neither
    ("a\n\nb  c", 3),
])
def test_word_count_literal(text, count):
    assert word_count(text) == count


def test_content_hash_literal_and_blind_to_white_space():
    # Values from `printf 'a b' | sha256sum` and `printf '产品经理 AI' | sha256sum`.
    assert content_hash("a b") == "c8687a08aa5d6ed2044328fa6a697ab8e96dc34291e8c2034ae8c38e6fcc6d65"
    assert content_hash("  a\u00a0\n\n b\t") == content_hash("a b")
    assert content_hash("产品经理\n\nAI") == "29d2d17970a4f2fd0e480ad3054f8b516eda8e0390fcbad316898dca746c9580"
    assert content_hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
