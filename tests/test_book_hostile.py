"""The library site in which no page content can run (issue 24), in Chromium.

A 12-article replica whose oldest article (fault ``scripttext``) shows HTML, Markdown links and
template syntax as text in its title, author name, tags and body is crawled and built with
``scrapy book``; the site is served on 127.0.0.1 and every page is opened in Chromium. No dialog
opens (the page is loaded, and the site's search is used on a word of the hostile text), no element
carries an event handler or a ``javascript:``/``data:`` URL, the scripts are the generator's own
(none on a page, the search script on the search page), and the page shows the title, author, tags
and body exactly as the site shows them.
"""

from __future__ import annotations

import functools
import re
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
from lxml import html as lxml_html
from test_library import HOSTILE_TITLES
from test_markdown import TEXT_CASES, rendered_text

from woshipm_crawler.library import BOOK_TITLE, LIBRARY_SUBDIR, MarkdownLibrary, escape_inline
from woshipm_crawler.outputs import book, book_search
from woshipm_crawler.outputs.book_render import MARKDOWN
from woshipm_crawler.render.chromium import CHROMIUM_ARGS, find_chromium
from woshipm_crawler.state import StateStore
from woshipm_crawler.textmodel import html_to_text, normalize_ws
from woshipm_replica import ReplicaServer, pages
from woshipm_replica.crawls import run_crawl

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# Everything a page may hold that runs or navigates to script, collected from the live DOM.
DOM_AUDIT = """() => {
  const unsafe = [];
  const urlAttrs = new Set(["href", "src", "action", "formaction", "data", "poster", "xlink:href", "srcdoc"]);
  for (const el of document.querySelectorAll("*")) {
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      const value = attr.value.replace(/[\\u0000-\\u0020]+/g, "").toLowerCase();
      if (name.startsWith("on")) unsafe.push(`${el.tagName} ${name}=${attr.value}`);
      if (urlAttrs.has(name) && /^(javascript|vbscript|data):/.test(value))
        unsafe.push(`${el.tagName} ${name}=${attr.value}`);
      if (name === "srcdoc") unsafe.push(`${el.tagName} srcdoc`);
    }
  }
  return {
    unsafe,
    scripts: [...document.scripts].map((s) => s.getAttribute("src") || "inline"),
    active: [...document.querySelectorAll("iframe, frame, object, embed, form, base, meta[http-equiv]")]
      .map((e) => e.tagName),
  };
}"""
BODY_AFTER_RULE = """() => {
  const section = document.querySelector("main article");
  let html = "";
  for (let node = section.querySelector(":scope > hr"); node && (node = node.nextElementSibling); )
    html += node.outerHTML;
  return html;
}"""


@pytest.fixture(scope="module")
def books(tmp_path_factory, scrapy_command):
    export_dir = tmp_path_factory.mktemp("hostile-book")
    with ReplicaServer(articles=12, seed=1) as server:
        manifest = {row["id"]: row for row in server.corpus.manifest(server.base_url)}
        hostile_id = min(manifest)
        server.set_faults(f"scripttext=ids:{hostile_id}")
        crawl = run_crawl("category", server.base_url, export_dir, {"category": "all"})
    assert crawl.returncode == 0, crawl.log[-3000:]
    # The second wall: an article whose stored Markdown carries raw HTML, as an older converter's
    # (`\<script>`) or a bug's would, still builds into a page without script.
    with StateStore(export_dir / "state.sqlite3") as store:
        item = store.get_item(raw_markdown_id(manifest, hostile_id))
        item["body_markdown"] = RAW_MARKDOWN + item["body_markdown"]
        item["body_text"] = "旧的正文\n\n" + item["body_text"]  # a new version: a changed body
        item["content_hash"] = None
        assert store.commit_item(item, job="test-book-hostile").outcome == "changed"
    MarkdownLibrary(export_dir / LIBRARY_SUBDIR).write(item)  # the site is built from the library
    done = scrapy_command(["book"], export_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    book_dir = export_dir / "book"
    items = {item["id"]: item for item in crawl.items}
    handler = functools.partial(QuietHandler, directory=str(book_dir))
    http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        yield book_dir, f"http://127.0.0.1:{http.server_address[1]}", items, hostile_id
    finally:
        http.shutdown()
        http.server_close()


RAW_MARKDOWN = (
    "\\<script>alert('old')\\</script> <img src=x onerror=alert('raw')>\n\n"
    "<a href=\"javascript:alert('a')\" onmouseover=\"alert('b')\">a</a> <iframe src=\"javascript:alert('c')\"></iframe>"
    " <svg onload=alert('d')></svg> <form action=\"javascript:alert('e')\"><input></form>\n\n"
)


def raw_markdown_id(manifest: dict, hostile_id: int) -> int:
    """The article given RAW_MARKDOWN: the newest, not the hostile one."""
    return max(i for i in manifest if i != hostile_id)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def article_page(book_dir: Path, item: dict) -> Path:
    (page,) = book_dir.glob(f"articles/{item['category']}/*/{item['published'][5:7]}/{item['id']}.html")
    return page


def site_pages(book_dir: Path) -> list[Path]:
    """Every page of the site (not the build's own files, not Pagefind's)."""
    return [path for path in sorted(book_dir.rglob("*.html"))
            if not {book.BUILD_DIR, book_search.BUNDLES_DIR} & set(path.relative_to(book_dir).parts)]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=find_chromium(), args=list(CHROMIUM_ARGS))
        try:
            yield chromium
        finally:
            chromium.close()


def scripts_of(audit: dict) -> list[str]:
    """The page's scripts, their paths from the site's root (pages sit at several depths)."""
    return [src.rpartition("assets/")[1] + src.rpartition("assets/")[2] for src in audit["scripts"]]


def watched_page(browser):
    """A new page, and the messages of the dialogs (``alert``...) it opened, each dismissed."""
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    return page, dialogs


def open_page(browser, url: str):
    page, dialogs = watched_page(browser)
    page.goto(url)
    page.wait_for_load_state("networkidle")
    return page, dialogs


def test_the_hostile_article_was_stored_as_the_site_shows_it(books):
    _, _, items, hostile_id = books
    item = items[hostile_id]
    assert item["title"] == pages.SCRIPT_TITLE
    assert item["author"]["name"] == pages.SCRIPT_AUTHOR
    assert item["tags"] == list(pages.SCRIPT_TAGS)
    assert item["body_text"].startswith(pages.HOSTILE_TEXT["scripttext"] + "\n\n")


def test_no_page_of_the_site_runs_or_carries_script_beyond_the_generators(books, browser):
    book_dir, base, items, hostile_id = books
    hostile = items[hostile_id]
    benign = items[min(i for i in items if i not in (hostile_id, raw_markdown_id(items, hostile_id)))]
    page, dialogs = open_page(browser, f"{base}/{article_page(book_dir, benign).relative_to(book_dir).as_posix()}")
    generator = page.evaluate(DOM_AUDIT)
    page.close()
    # A page of ours has no script and a search form; the search page has the search script only.
    assert generator == {"unsafe": [], "scripts": [], "active": ["FORM"]} and dialogs == []
    search_page = {"unsafe": [], "scripts": ["inline", "assets/search.js"], "active": ["FORM"]}
    urls = [f"{base}/{path.relative_to(book_dir).as_posix()}" for path in site_pages(book_dir)]
    assert len(urls) >= 3 * len(items)  # every article, its months, tags, authors, the lists
    # One tab for them all, each page audited once loaded: what could run before "load" (inline
    # scripts, handlers of images) has, and the audit finds no script or handler left to run later.
    page, dialogs = watched_page(browser)
    for url in urls:
        page.goto(url)
        audit = page.evaluate(DOM_AUDIT)
        expected = search_page if url.endswith("/search.html") else generator
        assert {**audit, "scripts": scripts_of(audit)} == expected, (url, audit)
        assert dialogs == [], (url, dialogs)
    page.close()
    # The search, on words of the hostile text: the results, snippets and all, carry no markup that runs.
    for query in ("alert", pages.SCRIPT_TITLE, "script"):
        page, dialogs = open_page(browser, f"{base}/search.html?q={quote(query)}")
        page.wait_for_selector("#search-results li", timeout=15_000)
        page.wait_for_timeout(300)
        audit = page.evaluate(DOM_AUDIT)
        assert audit["unsafe"] == [] and dialogs == [], (query, audit, dialogs)
        assert scripts_of(audit) == search_page["scripts"], audit
        titles = page.locator("#search-results li a").all_inner_texts()
        if query == pages.SCRIPT_TITLE:
            assert titles[0] == hostile["title"], titles
        page.close()


def test_the_page_shows_title_author_tags_and_body_as_the_site_does(books, browser):
    book_dir, base, items, hostile_id = books
    item = items[hostile_id]
    path = article_page(book_dir, item)
    page, dialogs = open_page(browser, f"{base}/{path.relative_to(book_dir).as_posix()}")
    title = pages.SCRIPT_TITLE
    assert page.title() == f"{title} · {BOOK_TITLE}"
    assert page.locator("main article h1").first.inner_text() == title
    assert page.locator(".crumbs .here").inner_text() == title
    hint = page.locator(".hint")
    assert hint.locator("a").first.inner_text() == pages.SCRIPT_AUTHOR
    assert hint.locator("code").all_inner_texts() == list(pages.SCRIPT_TAGS)
    body = normalize_ws(html_to_text(page.evaluate(BODY_AFTER_RULE)))
    assert body == normalize_ws(item["body_text"])
    assert body.startswith(normalize_ws(pages.HOSTILE_TEXT["scripttext"]))
    # The neighbour's previous/next link names it, as text.
    neighbour = page.locator(".pager a").first.get_attribute("href")
    page.goto(page.url.rsplit("/", 1)[0] + "/" + neighbour)
    links = page.locator(".pager a").all_inner_texts()
    assert any(link.endswith(("→\n" + title, "→ " + title)) for link in links), links
    assert dialogs == []
    page.close()


# The site's Markdown renderer over what the converter and the library write: it must read as text
# exactly what the text is, with no tag but the ones the Markdown asks for.
def test_the_site_renderer_reads_every_escape_as_text():
    sources = [md for _, md in TEXT_CASES] + [
        f"# {escape_inline(title)}\n" for title in [*HOSTILE_TITLES, pages.SCRIPT_TITLE, pages.SCRIPT_AUTHOR]
    ]
    for md in sources:
        html = str(book.sanitise_content(MARKDOWN.render(md)))
        assert normalize_ws(html_to_text(html)) == rendered_text(md), (md, html)
        assert not re.search(r"<(?!/?(?:p|strong|em|code|br|a|h[1-3]|table|thead|tbody|tr|th|td)\b)", html), html
        links = lxml_html.fragment_fromstring(html, create_parent="div").xpath("//@href | //@src")
        assert all(url.startswith("https://") for url in links), html
