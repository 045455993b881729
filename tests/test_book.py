"""``scrapy book`` on a replica crawl's library (plus one hostile article): one site, every article a
page, every link resolving, the hint header as HonKit drew it, search in Chromium (through ``?q=`` and
typed into the box) served by ``python -m http.server`` on 127.0.0.1, an incremental build that
rewrites only what 20 new articles touch, and builds from a relative export directory and another
working directory. Screenshots go to tests/artifacts/ (git-ignored)."""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import unicodedata
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest
from lxml import html as lxml_html

from woshipm_crawler import site
from woshipm_crawler.library import MarkdownLibrary, article_path
from woshipm_crawler.outputs import book, book_manifest, book_search
from woshipm_crawler.outputs.book_manifest import Row
from woshipm_crawler.outputs.book_render import parse_article, safe_link

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).parent / "artifacts"
HEADER_FIELDS = ["Category:", "Author:", "Published:", "Stats:", "Tags:", "Original:"]
HOSTILE_ID = 9_100_001
HOSTILE_TITLE = '<script>alert(1)</script>"><img src=x onerror=alert(1)> {{ 7*7 }} {% raw %}'
HOSTILE_TAGS = ['<img src=x onerror=alert(2)>', '"><svg onload=alert(3)>', "a`b"]
HOSTILE_AUTHOR = "<b onmouseover=alert(4)>黑客</b>"
# body_markdown as the crawl writes it for a page that shows HTML as text, plus links of other schemes.
HOSTILE_BODY = "\n\n".join([
    "这篇文章讲前端安全，正文里展示了几段代码：",
    r"\<script>alert(5)\</script>",
    r"\<img src=x onerror=alert(6)>",
    r'\<a href="javascript:alert(7)">点我\</a>',
    "[点击这里](javascript:alert(8)) 和 [另一个](JaVaScRiPt:alert(9)) 和 [编码的](&#106;avascript:alert(10))",
    "<javascript:alert(11)> 与 ![图](data:image/png;base64,iVBORw0KGgo=) 与 [数据](data:text/html,<b>x</b>)",
    # Raw HTML in the stored Markdown (an older converter's, a bug's): nh3, the second wall, takes
    # the script and the handler out.
    '原始 HTML：<script>alert(12)</script><img src="https://img.example/y.png" onerror=alert(13)>',
    "模板 {{ 1+1 }} 与 {\\% include 'x' %} 保持原样。唯一标记词：鸢尾花蜂鸟。",
])
HOSTILE_SHOWN = [  # the body's paragraphs as the page shows them
    "这篇文章讲前端安全，正文里展示了几段代码：",
    "<script>alert(5)</script>",
    "<img src=x onerror=alert(6)>",
    '<a href="javascript:alert(7)">点我</a>',
    "[点击这里](javascript:alert(8)) 和 [另一个](JaVaScRiPt:alert(9)) 和 [编码的](javascript:alert(10))",
    # (the <b> of the last link is raw HTML: bold)
    "<javascript:alert(11)> 与 ![图](data:image/png;base64,iVBORw0KGgo=) 与 [数据](data:text/html,x)",
    "原始 HTML：",
    "模板 {{ 1+1 }} 与 {% include 'x' %} 保持原样。唯一标记词：鸢尾花蜂鸟。",
]
HOSTILE_BODY_TEXT = [  # what the page shows of it, exactly
    "<script>alert(5)</script>",
    "<img src=x onerror=alert(6)>",
    '<a href="javascript:alert(7)">点我</a>',
    "<javascript:alert(11)>",
    "模板 {{ 1+1 }} 与 {% include 'x' %} 保持原样。",
]


# -- fixtures ----------------------------------------------------------------------------------------


def hostile_item(manifest: dict) -> dict:
    base = next(row for row in manifest.values() if row["category"] == "ai")
    return {**base, "id": HOSTILE_ID, "url": f"{site.DEFAULT_BASE_URL}/ai/{HOSTILE_ID}.html", "title": HOSTILE_TITLE,
            "tags": HOSTILE_TAGS, "author": {"name": HOSTILE_AUTHOR, "id": 424242,
                                              "url": f"{site.DEFAULT_BASE_URL}/u/424242"},
            "summary": "摘要里也有 <b>标签</b>。", "body_markdown": HOSTILE_BODY,
            "body_text": "\n\n".join(HOSTILE_SHOWN)}


def build(export_dir: Path, *args: str, cwd: Path | None = None, env: dict | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "scrapy", "book", *args, "-s", f"WOSHIPM_EXPORT_DIR={export_dir}"],
                          cwd=cwd or Path(__file__).parents[1], capture_output=True, text=True, timeout=900,
                          env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def export(outputs_crawl, manifest, tmp_path_factory) -> Path:
    """A copy of the shared crawl's export directory with the hostile article in its library, built."""
    export_dir = tmp_path_factory.mktemp("book") / "export"
    shutil.copytree(outputs_crawl.export_dir, export_dir, ignore=shutil.ignore_patterns("book"))
    MarkdownLibrary(export_dir / "markdown").write(hostile_item(manifest))
    last = build(export_dir)
    assert re.fullmatch(r"site of 151 articles: \d+ pages written, 0 unchanged, 0 removed; search: 151 articles "
                        rf"indexed, 1 segment -> {re.escape(str(export_dir / 'book' / 'index.html'))}", last), last
    return export_dir


@pytest.fixture(scope="module")
def articles(manifest) -> dict[int, dict]:
    rows = {i: {**row, "day": row["published"][:10]} for i, row in manifest.items()}
    hostile = hostile_item(manifest)
    rows[HOSTILE_ID] = {**hostile, "day": hostile["published"][:10]}
    return rows


def page_of(row: dict) -> str:
    return f"articles/{row['category']}/{row['day'][:4]}/{row['day'][5:7]}/{row['id']}.html"


def parse(path: Path):
    return lxml_html.fromstring(path.read_bytes())


def relative_links(path: Path):
    tree = parse(path)
    for element in tree.iter():
        for attribute in ("href", "src"):
            value = element.get(attribute)
            if value and not urlsplit(value).scheme and not value.startswith(("#", "//")):
                yield element, value


def target(page: Path, link: str) -> Path:
    return (page.parent / unquote(urlsplit(link).path)).resolve()


@contextlib.contextmanager
def http_server(folder: Path):
    """``python -m http.server`` serving ``folder`` on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline and server.poll() is None, "http.server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    from woshipm_crawler.render.chromium import CHROMIUM_ARGS, find_chromium

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium(), args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()


# -- navigation ---------------------------------------------------------------------------------------


def test_home_links_every_category_and_each_month_with_its_count(export, articles):
    site_dir = export / "book"
    home = parse(site_dir / "index.html")
    counts = defaultdict(lambda: defaultdict(int))
    for row in articles.values():
        counts[row["category"]][row["day"][:7]] += 1
    links = {a.get("href") for a in home.iter("a")}
    for category, months in counts.items():
        assert f"articles/{category}/index.html" in links
        section = home.get_element_by_id(category)
        heading = section.find("h2").text_content()
        assert heading == f"{site.category_name(category) or category} {sum(months.values())} 篇"
        shown = {a.get("title"): int(a.text_content()) for a in section.iter("a") if a.get("title")}
        assert shown == dict(months)
        for a in section.iter("a"):
            assert target(site_dir / "index.html", a.get("href")).is_file()
    assert len(home.find_class("category")) == len(counts)


def test_every_article_has_a_page_with_its_title_and_header(export, articles):
    site_dir = export / "book"
    pages = sorted(p.relative_to(site_dir).as_posix() for p in (site_dir / "articles").glob("*/*/*/*.html")
                   if p.name != "index.html")
    assert pages == sorted(page_of(row) for row in articles.values())
    for row in articles.values():
        tree = parse(site_dir / page_of(row))
        assert tree.find(".//article/h1").text_content() == row["title"]
        assert tree.find(".//title").text_content() == f"{row['title']} · 人人都是产品经理 (woshipm.com)"
        hint = tree.find_class("hint")[0]
        labels = [strong.text_content() for strong in hint.iter("strong")]
        assert labels == [label for label in HEADER_FIELDS if label != "Tags:" or row["tags"]]
        assert f"Published: {row['day']}" in hint.text_content()


def test_previous_next_month_category_tag_and_author_links_resolve(export, articles):
    site_dir = export / "book"
    by_category = defaultdict(list)
    for row in articles.values():
        by_category[row["category"]].append(row)
    for rows in by_category.values():
        rows.sort(key=lambda row: (row["day"], row["id"]))
        for n, row in enumerate(rows):
            page = site_dir / page_of(row)
            tree = parse(page)
            previous = tree.xpath('//nav[@class="pager"]/a[@rel="prev"]/@href')
            following = tree.xpath('//nav[@class="pager"]/a[@rel="next"]/@href')
            assert [target(page, h) for h in previous] == ([site_dir / page_of(rows[n - 1])] if n else [])
            assert [target(page, h) for h in following] == (
                [site_dir / page_of(rows[n + 1])] if n + 1 < len(rows) else [])
            around = {a.text_content(): target(page, a.get("href")) for a in tree.find_class("around")[0].iter("a")}
            assert around[site.category_name(row["category"]) or row["category"]] == (
                site_dir / "articles" / row["category"] / "index.html")
            assert around["首页"] == site_dir / "index.html"
            month = site_dir / "articles" / row["category"] / row["day"][:4] / row["day"][5:7] / "index.html"
            assert month in around.values()
            assert page.name in {target(month, h).name for h in parse(month).xpath("//ol/li/a/@href")}
            # Tags and the author link to pages listing this article.
            hint = tree.find_class("hint")[0]
            tag_links = {a.text_content(): target(page, a.get("href"))
                         for a in hint.iter("a") if a.find("code") is not None}
            assert sorted(tag_links) == sorted(row["tags"])
            author = [a for a in hint.iter("a") if a.text_content() == row["author"]["name"]]
            for listing in [*tag_links.values(), *(target(page, a.get("href")) for a in author)]:
                assert page in {target(listing, h) for h in parse(listing).xpath("//ol/li/a/@href")}
            assert len(author) == 1 and target(page, author[0].get("href")).parent.name == str(row["author"]["id"])


def test_every_relative_link_of_every_page_resolves(export):
    site_dir = export / "book"
    pages = list(site_dir.rglob("*.html"))
    assert len(pages) > 151
    for page in pages:
        if book_search.BUNDLES_DIR in page.relative_to(site_dir).parts:
            continue
        for element, link in relative_links(page):
            assert target(page, link).exists(), f"{page.relative_to(site_dir)}: {element.tag} {link}"
            assert target(page, link).is_relative_to(site_dir)


def test_tag_and_author_lists_past_a_page_are_split_in_fixed_pages(tmp_path, monkeypatch):
    rows = [Row(i, f"articles/ai/2024/01/{i}.md", 0, 0, "d", "ai", "2024", "01", f"2024-01-{1 + i % 28:02d}",
                f"标题{i}", "7", "作者", None, ("标签",)) for i in range(1, 251)]
    plan = book.SitePlan({row.id: row for row in rows}, tmp_path, None, [], {})
    pages = {page.path: page for page in plan.listing("tags/x", "标签：标签", plan.by_tag["标签"], None)}
    assert sorted(pages) == ["tags/x/index.html", "tags/x/p1.html", "tags/x/p2.html", "tags/x/p3.html"]
    ordered = plan.by_tag["标签"]
    first = lxml_html.fromstring(pages["tags/x/index.html"].render())
    assert [a.text_content() for a in first.xpath("//ol/li/a")] == [r.title for r in ordered[::-1][:book.PAGE_SIZE]]
    third = lxml_html.fromstring(pages["tags/x/p3.html"].render())
    assert [a.text_content() for a in third.xpath("//ol/li/a")] == [r.title for r in ordered[200:][::-1]]
    # A new, newest article changes the first page and the last part only.
    newer = Row(999, "articles/ai/2024/02/999.md", 0, 0, "d", "ai", "2024", "02", "2024-02-01", "新的", "7",
                "作者", None, ("标签",))
    plan2 = book.SitePlan({**{row.id: row for row in rows}, 999: newer}, tmp_path, None, [], {})
    pages2 = {page.path: page for page in plan2.listing("tags/x", "标签：标签", plan2.by_tag["标签"], None)}
    changed = {path for path in pages2 if path not in pages or pages2[path].key != pages[path].key}
    assert changed == {"tags/x/index.html", "tags/x/p3.html"}


def test_search_words_are_spelt_bigrams_and_lower_case_words():
    # 流 U+6D41 = 1·26³ + 15·26² + 9·26 + 19 -> "bpjt"; 程 "bufr", 最 "bnae", 终 "bwai", 一 "bdoa"
    assert book_search.search_words("流程，最终 AI 2026 一") == [
        "qbpjtbufr", "qbufrbnae", "qbnaebwai",  # one run across the comma and the space
        "ai", "2026",
        "qbdoa",  # a lone character stands for itself
    ]
    assert book_search.search_words("流流流") == ["qbpjtbpjt", "qbpjtbpjt"]
    assert book_search.search_words("…") == []


def test_a_first_build_splits_its_articles_over_the_pagefind_processes():
    def first(count: int, workers: int) -> list[list[int]]:
        names = iter(f"s{k}" for k in range(1, 100))
        result = book_search.plan({}, range(count), set(), lambda i: -i, lambda: next(names), workers)
        assert result.drop == [] and result.build == sorted(result.members)
        return [result.members[name] for name in result.build]

    assert first(2000, 1) == [list(range(1999, -1, -1))]  # in the order given (here ids descending)
    assert first(2000, 2) == [list(range(1999, 999, -1)), list(range(999, -1, -1))]
    assert [len(ids) for ids in first(2999, 4)] == [1499, 1500]  # no segment under SPLIT_MIN = 1,000 ...
    assert [len(ids) for ids in first(999, 4)] == [999]  # ... so a small site stays one segment
    assert [len(ids) for ids in first(25_000, 2)] == [8333, 8333, 8334]  # SEALED = 10,000 at most
    assert first(0, 2) == []


# -- what a page may carry ----------------------------------------------------------------------------


@pytest.mark.parametrize("url, safe", [
    ("https://www.woshipm.com/a.html", True), ("HTTP://x", True), ("per_month.png", True), ("../a/b.html", True),
    ("javascript:alert(1)", False), ("JaVaScRiPt:alert(1)", False), (" java\tscript:alert(1)", False),
    ("data:image/png;base64,AAAA", False), ("vbscript:x", False), ("file:///etc/passwd", False),
    ("mailto:a@b", False),
])
def test_safe_link(url, safe):
    assert safe_link(url) is safe


def test_hostile_article_markup_stays_text(export, articles):
    site_dir = export / "book"
    page = site_dir / page_of(articles[HOSTILE_ID])
    text = page.read_text(encoding="utf-8")
    tree = parse(page)
    assert not tree.xpath("//script | //iframe | //object | //embed | //svg | //article//form")
    assert [form.get("action") for form in tree.iter("form")] == ["../../../../search.html"]  # the site's own
    assert not [(e.tag, name) for e in tree.iter() for name in e.attrib if name.lower().startswith("on")]
    for element in tree.iter():
        for name in ("href", "src", "action", "formaction"):
            value = element.get(name)
            if value is not None:
                assert safe_link(value), (element.tag, value)
    assert tree.find(".//article/h1").text_content() == HOSTILE_TITLE
    body = tree.find(".//article").text_content()
    paragraphs = [p.text_content() for p in tree.xpath("//article/p")]
    assert paragraphs[-len(HOSTILE_SHOWN):] == HOSTILE_SHOWN
    for shown in HOSTILE_BODY_TEXT:
        assert shown in body
    assert "\\<" not in body and "{\\%" not in body and "\\%" not in body
    # A link of another scheme is no link: CommonMark shows its source as text (what the page showed).
    assert "[点击这里](javascript:alert(8)) 和 [另一个](JaVaScRiPt:alert(9))" in body
    assert not [a for a in tree.iter("a") if a.text_content() in ("点击这里", "另一个", "编码的", "数据")]
    assert "onerror=alert(2)" in text  # the tag is there, as text
    assert [img.get("src") for img in tree.xpath("//article//img")] == ["https://img.example/y.png"]
    for listing in ("tags/index.html", "authors/index.html"):
        names = [a.text_content() for a in parse(site_dir / listing).xpath("//ul[@class='names']/li/a")]
        assert set(HOSTILE_TAGS if listing.startswith("tags") else [HOSTILE_AUTHOR]) <= set(names)


# -- in Chromium ------------------------------------------------------------------------------------


def squeezed(text: str) -> str:
    """Text as the search matches it: no white space, punctuation or symbols, lower case."""
    return "".join(c for c in text if not c.isspace() and unicodedata.category(c)[0] not in "PSZ").lower()


def searchable(row: dict) -> str:
    """What an article can be found by, from the manifest (the page's ground truth)."""
    return "\n".join(squeezed(part) for part in [row["title"], row.get("summary") or "", row["body_text"],
                                                   row["author"]["name"] or "", *row["tags"]])


def holding(articles: dict, query: str) -> set[str]:
    needle = squeezed(query)
    return {f"/{page_of(row)}" for row in articles.values() if needle in searchable(row)}


def phrases(articles: dict, seed: int = 23) -> tuple[tuple[int, str], str, str]:
    """Seeded picks from the bodies: a phrase of 14 characters as written (punctuation and all) that
    only one article holds; a pair of Chinese characters; a Latin word."""
    rng = random.Random(seed)
    rows = sorted((i, row) for i, row in articles.items() if i != HOSTILE_ID)
    while True:
        article, row = rng.choice(rows)
        start = rng.randrange(len(row["body_text"]) - 14)
        phrase = row["body_text"][start:start + 14]
        if "\n" not in phrase and len(squeezed(phrase)) >= 10 and holding(articles, phrase) == {f"/{page_of(row)}"}:
            break
    while True:
        text = rng.choice(rows)[1]["body_text"]
        start = rng.randrange(len(text) - 2)
        pair = text[start:start + 2]
        if re.fullmatch(r"[\u4e00-\u9fff]{2}", pair):
            break
    words = sorted({w for _, row in rows for w in re.findall(r"[A-Za-z]{3,}", row["body_text"])})
    return (article, phrase), pair, rng.choice(words)


def result_links(page, term: str) -> list[str]:
    """The result links the search page shows once it has searched for ``term``."""
    page.wait_for_function("term => document.body.dataset.searched === term", arg=term, timeout=30_000)
    return [unquote(urlsplit(h).path) for h in
            page.eval_on_selector_all(".search-result-link", "links => links.map(a => a.href)")]


def assert_nothing_runs(page, dialogs: list) -> None:
    assert dialogs == []
    foreign = page.evaluate("""() => {
        const found = [];
        for (const element of document.querySelectorAll("*")) {
            for (const attribute of element.attributes) {
                if (attribute.name.startsWith("on")) found.push(element.tagName + " " + attribute.name);
                if (/^\\s*(javascript|data|vbscript):/i.test(attribute.value))
                    found.push(element.tagName + " " + attribute.value);
            }
        }
        for (const script of document.scripts) {
            const own = script.type === "application/json" || /\\/assets\\/search\\.js$/.test(script.src);
            if (!own) found.push("script " + (script.src || script.textContent.slice(0, 80)));
        }
        return found;
    }""")
    assert foreign == []


@pytest.mark.browser
def test_search_in_chromium_through_q_and_typed_into_the_box(export, articles, chromium):
    site_dir = export / "book"
    ARTIFACTS.mkdir(exist_ok=True)
    (article, phrase), pair, latin = phrases(articles)
    with http_server(site_dir) as base:
        page = chromium.new_page(viewport={"width": 1100, "height": 900})
        dialogs: list = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(f"{base}/search.html?q={quote(phrase)}")
        assert result_links(page, phrase) == [f"/{page_of(articles[article])}"]
        assert page.locator(".search-result-excerpt mark").inner_text() == phrase
        assert_nothing_runs(page, dialogs)

        # Two Chinese characters: every article that holds them, and no other.
        page.goto(f"{base}/search.html?q={pair}")
        truth = holding(articles, pair)
        shown = result_links(page, pair)
        assert page.locator("#search-status").inner_text() == f"找到 {len(truth)} 篇含“{pair}”的文章"
        assert len(shown) == min(10, len(truth)) and set(shown) <= truth
        for mark in page.locator(".search-result-excerpt mark").all_inner_texts():
            assert squeezed(mark) == pair
        page.screenshot(path=str(ARTIFACTS / "book-search.png"))
        while page.locator("#search-more").is_visible():
            page.locator("#search-more").click()
            page.wait_for_function("n => document.querySelectorAll('.search-result').length > n", arg=len(shown))
            shown = page.eval_on_selector_all(".search-result-link", "links => links.map(a => a.pathname)")
        assert {unquote(link) for link in shown} == truth

        # A Latin word typed into the box.
        page.goto(f"{base}/search.html")
        page.locator("#search-input").type(latin, delay=20)
        links = result_links(page, latin)
        truth = holding(articles, latin)
        assert page.locator("#search-status").inner_text() == f"找到 {len(truth)} 篇含“{latin}”的文章"
        assert set(links) <= truth and links
        assert page.evaluate("() => new URLSearchParams(location.search).get('q')") == latin

        # The hostile article: found by its marker word, its title shown as text, nothing runs.
        page.goto(f"{base}/search.html?q=鸢尾花蜂鸟")
        assert result_links(page, "鸢尾花蜂鸟") == [f"/{page_of(articles[HOSTILE_ID])}"]
        assert page.locator(".search-result-link").first.inner_text() == HOSTILE_TITLE
        page.goto(f"{base}/search.html?q=alert")
        assert f"/{page_of(articles[HOSTILE_ID])}" in result_links(page, "alert")
        assert "<script>alert(" in page.locator(".search-result-excerpt").first.inner_text()
        assert_nothing_runs(page, dialogs)
        page.goto(f"{base}/{page_of(articles[HOSTILE_ID])}")
        assert page.locator("article h1").inner_text() == HOSTILE_TITLE
        assert page.title() == f"{HOSTILE_TITLE} · 人人都是产品经理 (woshipm.com)"
        body = page.locator("article").inner_text()
        assert all(shown in body for shown in HOSTILE_BODY_TEXT)
        tags = page.locator(".hint a code").all_inner_texts()
        assert tags == HOSTILE_TAGS
        page.locator(".hint a code").first.click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == f"标签：{HOSTILE_TAGS[0]}"
        assert_nothing_runs(page, dialogs)
        page.close()

    # From file:// the pages work, the search does not (the browser lets no page read the index): the
    # page says so.
    page = chromium.new_page()
    page.goto((site_dir / "search.html").as_uri() + "?q=" + phrase)
    assert page.locator("#search-file-note").is_visible()
    assert page.locator(".search-result").count() == 0
    page.close()


@pytest.mark.browser
def test_home_article_and_tag_page_in_chromium(export, articles, chromium):
    site_dir = export / "book"
    ARTIFACTS.mkdir(exist_ok=True)
    row = next(r for i, r in sorted(articles.items()) if r["tags"] and r["author"]["url"] and i != HOSTILE_ID)
    page = chromium.new_page(viewport={"width": 1100, "height": 900})
    page.goto((site_dir / "index.html").as_uri())
    page.screenshot(path=str(ARTIFACTS / "book-home.png"))
    assert page.locator("h1").inner_text() == "人人都是产品经理 (woshipm.com)"
    page.goto((site_dir / page_of(row)).as_uri())
    page.screenshot(path=str(ARTIFACTS / "book-article.png"))
    text = page.locator("body").inner_text()
    assert "{% hint" not in text and "{% endhint" not in text and "{\\%" not in text
    labels = page.locator(".hint strong")
    assert labels.all_inner_texts() == HEADER_FIELDS
    boxes = [labels.nth(n).bounding_box() for n in range(labels.count())]
    tops = [box["y"] for box in boxes]
    assert all(below > above + box["height"] for above, below, box in zip(tops, tops[1:], boxes, strict=False))
    assert len({round(box["x"]) for box in boxes}) == 1  # each field starts its own line
    assert f"{row['stats']['views']} views" in page.locator(".hint").inner_text()
    session = page.context.new_cdp_session(page)
    session.send("DOM.enable")
    session.send("CSS.enable")
    root = session.send("DOM.getDocument")["root"]["nodeId"]
    title = session.send("DOM.querySelector", {"nodeId": root, "selector": "article h1"})["nodeId"]
    fonts = session.send("CSS.getPlatformFontsForNode", {"nodeId": title})["fonts"]
    assert any("CJK" in font["familyName"] for font in fonts), fonts
    page.locator(".hint a code").first.click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == f"标签：{row['tags'][0]}"
    assert page.locator(f"ol.entries a:text-is('{row['title']}')").count() == 1
    page.screenshot(path=str(ARTIFACTS / "book-tag.png"))
    page.close()


# -- incremental ---------------------------------------------------------------------------------------


def new_items(articles: dict, count: int) -> list[dict]:
    """``count`` new articles, each a day after the newest one, in varied categories with known tags."""
    newest = max(row["day"] for row in articles.values())
    templates = sorted((row for i, row in articles.items() if i != HOSTILE_ID), key=lambda r: r["id"])[:count]
    items = []
    for n, row in enumerate(templates):
        day = date.fromisoformat(newest) + timedelta(days=1 + n // 4)
        article = 9_200_000 + n
        items.append({**row, "id": article, "url": f"{site.DEFAULT_BASE_URL}/{row['category']}/{article}.html",
                      "title": f"新文章 {n}：{row['title']}", "published": f"{day.isoformat()}T08:00:00+08:00",
                      "body_markdown": row.get("body_markdown") or row["body_text"]})
    return items


def expected_touched(articles: dict, added: list[dict]) -> set[str]:
    """The pages 20 new articles change, worked out from the articles themselves."""
    before = defaultdict(list)
    for row in articles.values():
        before[row["category"]].append(row)
    after = defaultdict(list, {k: list(v) for k, v in before.items()})
    new_rows = [{**item, "day": item["published"][:10]} for item in added]
    for row in new_rows:
        after[row["category"]].append(row)

    def neighbours(rows):
        rows = sorted(rows, key=lambda r: (r["day"], r["id"]))
        return {r["id"]: (rows[n - 1]["id"] if n else None, rows[n + 1]["id"] if n + 1 < len(rows) else None)
                for n, r in enumerate(rows)}

    touched = {"index.html", "search.html", "tags/index.html", "authors/index.html"}
    for category in {row["category"] for row in new_rows}:
        old, new = neighbours(before[category]), neighbours(after[category])
        touched |= {page_of(articles[i]) for i in old if old[i] != new[i]}
        touched.add(f"articles/{category}/index.html")
        months = sorted({r["day"][:7] for r in after[category]})
        old_months = sorted({r["day"][:7] for r in before[category]})
        for row in new_rows:
            if row["category"] != category:
                continue
            month = row["day"][:7]
            touched.add(f"articles/{category}/{month[:4]}/{month[5:]}/index.html")
            if month not in old_months:  # a new month: the one before it now links to it
                previous = months[months.index(month) - 1] if months.index(month) else None
                if previous in old_months:
                    touched.add(f"articles/{category}/{previous[:4]}/{previous[5:]}/index.html")
    for row in new_rows:
        touched.add(page_of(row))
        touched |= {f"tags/{book_manifest.tag_key(tag)}/index.html" for tag in row["tags"]}
        touched.add(f"authors/{row['author']['id']}/index.html")
    return touched


def html_times(site_dir: Path) -> dict[str, int]:
    return {p.relative_to(site_dir).as_posix(): p.stat().st_mtime_ns for p in site_dir.rglob("*.html")
            if not {book_search.BUNDLES_DIR, book.BUILD_DIR} & set(p.relative_to(site_dir).parts)}


@pytest.mark.browser
def test_an_incremental_build_after_20_new_articles_rewrites_only_what_they_touch(export, articles, chromium,
                                                                                   tmp_path):
    export_dir = tmp_path / "export"
    shutil.copytree(export, export_dir)
    site_dir = export_dir / "book"
    again = build(export_dir)
    assert again.startswith("site of 151 articles: 0 pages written, ")
    assert " 0 removed; search: 0 articles indexed, 1 segment -> " in again
    before = html_times(site_dir)
    bundles_before = sorted(p.name for p in (site_dir / "pagefind").iterdir())
    added = new_items(articles, 20)
    library = MarkdownLibrary(export_dir / "markdown")
    for item in added:
        library.write(item)
    time.sleep(0.01)
    last = build(export_dir)
    after = html_times(site_dir)
    changed = {path for path in after if before.get(path) != after[path]}
    expected = expected_touched(articles, added)
    assert changed == expected
    assert len(expected) < len(before) / 3
    match = re.fullmatch(r"site of 171 articles: (\d+) pages written, (\d+) unchanged, 0 removed; search: 20 "
                         r"articles indexed, 2 segments -> .*", last)
    assert match, last
    assert int(match.group(1)) == len(expected) + len(added)  # and each new article's search document
    # The old segment is kept as it was, the new articles are a segment of their own.
    bundles = sorted(p.name for p in (site_dir / "pagefind").iterdir())
    assert bundles[0] == bundles_before[0] and len(bundles) == 2
    # An article's own text changed: its page and its segment only.
    target_row = articles[min(i for i in articles if i != HOSTILE_ID)]
    path = export_dir / "markdown" / page_of(target_row).replace(".html", ".md")
    path.write_text(path.read_text(encoding="utf-8") + "\n补充一段：独有的更正说明文字。\n", encoding="utf-8")
    before = html_times(site_dir)
    last = build(export_dir)
    changed = {p for p, t in html_times(site_dir).items() if before.get(p) != t}
    assert changed == {page_of(target_row), "search.html"}
    assert " search: 151 articles indexed, 2 segments" in last  # the old segment, indexed again
    with http_server(site_dir) as base:
        page = chromium.new_page()
        page.goto(f"{base}/search.html?q=独有的更正说明文字")
        assert result_links(page, "独有的更正说明文字")[:1] == [f"/{page_of(target_row)}"]
        term = added[0]["title"]
        page.goto(f"{base}/search.html?q={term}")
        assert result_links(page, term)[0] == f"/{page_of({**added[0], 'day': added[0]['published'][:10]})}"
        page.close()


def site_files(site_dir: Path) -> dict[str, bytes]:
    """What a reader gets (every page and asset) and what search is indexed from; not the index itself,
    whose segments depend on the builds' history, nor the search page that lists them."""
    files = {}
    for path in site_dir.rglob("*"):
        name = path.relative_to(site_dir).as_posix()
        if path.is_file() and name != book.SEARCH_PAGE and not name.startswith(book_search.BUNDLES_DIR + "/") \
                and (not name.startswith(book.BUILD_DIR + "/") or name.startswith(book.SEARCH_DOCUMENTS + "/")):
            files[name] = path.read_bytes()
    return files


def edit_library(rng: random.Random, library: MarkdownLibrary, live: dict[int, dict], pool: list[dict],
                 export_dir: Path) -> list[str]:
    """One seeded day of changes to the library: new, removed, renamed, re-tagged, re-authored, moved
    (category, day, month), re-written and merely touched articles, and the report added or removed."""
    done = []
    days = sorted({row["published"][:10] for row in pool})
    for _ in range(rng.randint(2, 6)):
        kind = rng.choice(["new", "remove", "title", "tags", "author", "category", "day", "body", "touch",
                           "report"])
        article = rng.choice(sorted(live))
        item = dict(live[article])
        if kind == "new":
            article = max(live) + 1
            item = {**rng.choice(pool), "id": article, "title": f"新增 {article}"}
        elif kind == "remove":
            (library.root / article_path(item)).unlink()
            del live[article]
            done.append(f"remove {article}")
            continue
        elif kind == "title":
            item["title"] = f"{item['title']}（修订 {rng.randrange(100)}）"
        elif kind == "tags":
            item["tags"] = sorted({*rng.sample(item["tags"], k=len(item["tags"]) // 2), f"新标签{rng.randrange(5)}"})
        elif kind == "author":
            other = rng.choice(pool)["author"]
            item["author"] = {**other, "name": f"{other['name']}{rng.choice(['', '·改'])}"}
        elif kind == "category":
            item["category"] = rng.choice(sorted({row["category"] for row in pool}))
        elif kind == "day":
            item["published"] = f"{rng.choice(days)}T{rng.randrange(24):02d}:00:00+08:00"
        elif kind == "body":
            item["body_markdown"] = f"{item.get('body_markdown') or item['body_text']}\n\n补充 {rng.randrange(1000)}。"
        elif kind == "touch":
            path = library.root / article_path(item)
            os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
            done.append(f"touch {article}")
            continue
        else:
            report = export_dir / "report" / "report.md"
            if report.exists():
                report.unlink()
            else:
                report.parent.mkdir(exist_ok=True)
                report.write_text("# 数据报告\n\n一份报告。\n", encoding="utf-8")
            done.append("report")
            continue
        item["url"] = f"{site.DEFAULT_BASE_URL}/{item['category']}/{article}.html"
        library.write(item)
        live[article] = item
        done.append(f"{kind} {article}")
    return done


@pytest.mark.parametrize("seed", [1, 2])
def test_incremental_builds_equal_a_build_from_scratch_after_seeded_changes(articles, tmp_path, seed):
    """After every day of seeded changes, the site built on yesterday's equals one built from nothing:
    the pages kept as they were (``book.settled``) are the pages a full build writes."""
    rng = random.Random(seed)
    pool = [{k: v for k, v in row.items() if k != "day"} for i, row in sorted(articles.items()) if i != HOSTILE_ID]
    export_dir = tmp_path / "export"
    library = MarkdownLibrary(export_dir / "markdown")
    live = {row["id"]: row for row in rng.sample(pool, 40)}
    for item in live.values():
        library.write(item)
    site_dir = export_dir / "book"
    book.build_site(export_dir / "markdown", site_dir, report_dir=export_dir / "report")
    for day in range(6):
        done = edit_library(rng, library, live, pool, export_dir)
        result = book.build_site(export_dir / "markdown", site_dir, report_dir=export_dir / "report")
        fresh = tmp_path / f"fresh-{day}"
        book.build_site(export_dir / "markdown", fresh, report_dir=export_dir / "report")
        incremental, scratch = site_files(site_dir), site_files(fresh)
        assert incremental.keys() == scratch.keys(), (done, incremental.keys() ^ scratch.keys())
        assert [name for name in scratch if incremental[name] != scratch[name]] == [], done
        assert result.articles == len(live)
        assert {f"{book.SEARCH_DOCUMENTS}/{page_of({**row, 'day': row['published'][:10]})}"
                for row in live.values()} <= incremental.keys()
        shutil.rmtree(fresh)
    # A month's folder deleted by hand is built again, though none of its articles changed.
    shutil.rmtree(min(p for p in (site_dir / "articles").glob("*/*/*") if p.is_dir()))
    book.build_site(export_dir / "markdown", site_dir, report_dir=export_dir / "report")
    book.build_site(export_dir / "markdown", tmp_path / "fresh", report_dir=export_dir / "report")
    assert site_files(site_dir) == site_files(tmp_path / "fresh")


def test_a_relative_export_dir_from_another_working_directory(export, tmp_path):
    work = tmp_path / "somewhere" / "else"
    work.mkdir(parents=True)
    shutil.copytree(export / "markdown", tmp_path / "somewhere" / "export" / "markdown")
    shutil.copy(export / "state.sqlite3", tmp_path / "somewhere" / "export" / "state.sqlite3")
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "woshipm_crawler.settings"}
    last = build(Path("../export"), cwd=work, env=env)
    site_dir = (tmp_path / "somewhere" / "export" / "book").resolve()
    assert last.endswith(f"-> {site_dir / 'index.html'}") and "site of 151 articles" in last
    last = build(Path("../export"), "--out", "site", cwd=work, env=env)
    assert last.endswith(f"-> {(work / 'site' / 'index.html').resolve()}")
    for folder in (site_dir, work / "site"):
        assert html_times(folder).keys() == html_times(export / "book").keys()
        pages = [folder / p for p in html_times(folder)]
        for page in pages[::25]:
            for _, link in relative_links(page):
                assert target(page, link).exists()


def test_the_library_file_is_read_back_field_by_field(export, articles):
    row = articles[HOSTILE_ID]
    text = (export / "markdown" / page_of(row).replace(".html", ".md")).read_text(encoding="utf-8")
    parsed = parse_article(text)
    assert (parsed.title, parsed.published, parsed.author_name, parsed.author_url, parsed.tags) == (
        HOSTILE_TITLE, row["day"], HOSTILE_AUTHOR, row["author"]["url"], HOSTILE_TAGS)


def test_book_and_report_from_a_fresh_folder_with_the_default_export_dir(tmp_path):
    """A newcomer's folder: the project's scrapy.cfg, the default ``WOSHIPM_EXPORT_DIR=exports`` (a
    relative path), and a matplotlib font cache built before the CJK font was installed."""
    import json
    import os
    import subprocess
    import sys

    from conftest import PROJECT_ROOT

    from woshipm_replica import ReplicaServer
    from woshipm_replica.crawls import run_crawl

    fresh = tmp_path / "newcomer"
    fresh.mkdir()
    shutil.copy(PROJECT_ROOT / "scrapy.cfg", fresh / "scrapy.cfg")
    with ReplicaServer(articles=30, seed=1) as server:
        crawl = run_crawl("category", server.base_url, fresh / "exports", {"category": "all"})
    assert crawl.returncode == 0, crawl.log[-3000:]
    # matplotlib's font cache as it was before fonts-noto-cjk: every font but the CJK ones.
    env = {**{k: v for k, v in os.environ.items() if k != "SCRAPY_SETTINGS_MODULE"},
           "MPLCONFIGDIR": str(tmp_path / "mpl")}
    subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], env=env, check=True)
    (cache,) = (tmp_path / "mpl").glob("fontlist-*.json")
    fonts = json.loads(cache.read_text())
    fonts["ttflist"] = [font for font in fonts["ttflist"] if "CJK" not in font["name"]]
    assert fonts["ttflist"]
    cache.write_text(json.dumps(fonts))

    def scrapy(command: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "scrapy", command, *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=600)

    reported = scrapy("report", fresh)
    assert reported.returncode == 0, reported.stderr[-3000:]
    assert reported.stdout.strip().splitlines()[-1] == (
        "report of 30 articles with 8 charts -> " + str(Path("exports") / "report" / "index.html"))
    assert "warning" not in reported.stderr.lower() and "no CJK font" not in reported.stderr
    made = scrapy("book", fresh)
    assert made.returncode == 0, made.stderr[-3000:]
    assert "site of 30 articles: " in made.stdout, made.stdout + made.stderr[-3000:]
    assert (fresh / "exports" / "book" / "index.html").exists()
    # Another relative path, from another working directory (scrapy finds scrapy.cfg upwards).
    below = fresh / "notes"
    below.mkdir()
    again = scrapy("book", below, "-s", "WOSHIPM_EXPORT_DIR=../exports")
    assert again.returncode == 0 and " 0 pages written, " in again.stdout, again.stdout + again.stderr[-3000:]
