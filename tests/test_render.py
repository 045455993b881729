"""JS rendering: page classification, the middleware, and real Chromium crawls of five pages.

The replica's HTTP server, with its routes swapped for the smallest pages showing each shape, serves
  /a/1.html  a plain article page,
  /a/2.html  a JS shell: empty #app, article data in inline JSON, a script building the DOM,
  /a/3.html  a JS check: 503 "Just a moment..." until a script sets cf_clearance and reloads,
  /a/4.html  a broken shell whose script never builds the article (the browser wait times out),
  /a/5.html  a shell over HTTP whose second fetch (the browser's) gets half a body, then no connection.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from woshipm_crawler import handoff
from woshipm_crawler.parse.article import ArticlePageError, parse_article
from woshipm_crawler.parse.page import classify, parse_page
from woshipm_crawler.render import chromium
from woshipm_crawler.render.abort import abort_request
from woshipm_crawler.render.middleware import RenderMiddleware, needs_browser, render_meta, wait_for_content
from woshipm_replica import ReplicaServer
from woshipm_replica.server import Response

REPO = Path(__file__).resolve().parents[1]

ARTICLE_HTML = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body><div class="article--wrapper"><h1>{title}</h1>
<div class="article--content"><p>{body}</p></div></div></body></html>"""

SHELL_HTML = """<!doctype html><html><head><meta charset="utf-8"><title>woshipm</title></head>
<body><div id="app"></div>
<img src="/logo.png"><script src="http://localhost:{port}/third-party.js"></script>
<script type="application/json" id="__INITIAL_STATE__">{{"article": {{"title": "Shell title",
 "paragraphs": ["Shell body rendered by script.", "Second paragraph."]}}}}</script>
<script>
  const state = JSON.parse(document.getElementById("__INITIAL_STATE__").textContent).article;
  const wrapper = document.createElement("div");
  wrapper.className = "article--wrapper";
  const h1 = document.createElement("h1");
  h1.textContent = state.title;
  const content = document.createElement("div");
  content.className = "article--content";
  for (const text of state.paragraphs) {{
    const p = document.createElement("p");
    p.textContent = text;
    content.appendChild(p);
  }}
  wrapper.append(h1, content);
  setTimeout(() => document.getElementById("app").appendChild(wrapper), 200);
</script></body></html>"""

CHALLENGE_HTML = """<!doctype html><html><head><title>Just a moment...</title></head>
<body><div id="challenge-running">Checking your browser before accessing the site.</div>
<noscript>Enable JavaScript and cookies to continue</noscript>
<script>
  setTimeout(() => {
    document.cookie = "cf_clearance=passed; path=/";
    location.reload();
  }, 300);
</script></body></html>"""


# ---- the page classifier (parse.page.classify), as the middleware uses it ----------------------

BEACON = '<script src="/cdn-cgi/challenge-platform/scripts/jsd/main.js"></script>'


def kind(html: str | bytes) -> str:
    return classify(parse_page(html))


def test_classify_article():
    html = ARTICLE_HTML.format(title="t", body="正文内容")
    assert kind(html) == "article"
    assert needs_browser(kind(html)) is None


def test_classify_js_shell():
    html = SHELL_HTML.format(port=1)
    assert kind(html) == "js_shell"
    assert needs_browser(kind(html), 200) == "js_shell"
    assert kind(html.encode()) == "js_shell"  # bytes, as a response carries them


def test_classify_bare_mount_point_is_shell_but_a_full_page_is_not():
    assert kind('<html><body><div id="app"></div><script src="/app.js"></script></body></html>') == "js_shell"
    long_page = '<html><body><div id="app">' + "<p>listing text</p>" * 40 + "</div></body></html>"
    assert kind(long_page) == "unknown"


def test_classify_interstitial():
    assert kind(CHALLENGE_HTML) == "interstitial"
    assert needs_browser(kind(CHALLENGE_HTML), 503) == "interstitial"
    cloudflare = (
        "<html><head><title>Attention Required! | Cloudflare</title></head><body>"
        '<script>window._cf_chl_opt={cvId:"3"};</script>'
        '<script src="/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1"></script></body></html>'
    )
    assert kind(cloudflare) == "interstitial"


def test_article_with_cloudflare_beacon_is_still_an_article():
    # Cloudflare injects challenge-platform scripts into ordinary pages too.
    html = ARTICLE_HTML.format(title="t", body="正文").replace("</body>", BEACON + "</body>")
    assert kind(html) == "article"


def test_a_lone_beacon_is_no_check_page_for_the_middleware_nor_the_parser():
    # The rule the two used to disagree on: one weak marker proves nothing, two do.
    url = "https://www.woshipm.com/pd/1.html"
    not_found = "<html><body><h1>404</h1><p>Not found</p>" + BEACON + "</body></html>"
    assert kind(not_found) == "unknown"
    with pytest.raises(ArticlePageError) as error:
        parse_article(not_found, url)
    assert error.value.reason == "no_body"
    shell = SHELL_HTML.format(port=1).replace("</body>", BEACON + "</body>")
    assert kind(shell) == "js_shell"
    with pytest.raises(ArticlePageError) as error:
        parse_article(shell, url)
    assert error.value.reason == "js_shell"
    paired = not_found.replace("</body>", '<div class="cf-chl-widget"></div></body>')
    assert kind(paired) == "interstitial"
    with pytest.raises(ArticlePageError) as error:
        parse_article(paired, url)
    assert error.value.reason == "interstitial"


def test_classify_listing_truncated_and_other_pages():
    listing = ('<html><body><article class="postlist-item"><h2 class="post-title">'
               '<a href="/pd/1.html">t</a></h2></article></body></html>')
    assert kind(listing) == "listing"
    assert kind(ARTICLE_HTML.format(title="t", body="正文")[:-20]) == "truncated"
    assert kind(ARTICLE_HTML.format(title="t", body=" ")) == "unknown"
    assert kind("<html><body><h1>404</h1><p>Not found</p></body></html>") == "unknown"
    assert kind("") == "truncated" and kind(b"") == "truncated"  # nothing came: a cut connection
    assert needs_browser(kind(SHELL_HTML.format(port=1)), 404) is None


# ---- Chromium lookup and abort rule ----------------------------------------------------------


def test_find_chromium_prefers_configured_then_env(tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert chromium.find_chromium(str(fake), env={}) == str(fake)
    assert chromium.find_chromium(None, env={"WOSHIPM_CHROMIUM": str(fake)}) == str(fake)
    with pytest.raises(chromium.ChromiumNotFound, match="apt-get install -y chromium"):
        chromium.find_chromium(str(tmp_path / "missing"), env={})


def test_find_chromium_error_names_the_install_command(monkeypatch):
    monkeypatch.setattr(chromium, "DEBIAN_CHROMIUM_PATHS", ("/nonexistent/chromium",))
    with pytest.raises(chromium.ChromiumNotFound, match=r"apt-get install -y chromium"):
        chromium.find_chromium(None, env={})


class _FakeFrame:
    def __init__(self, page_url, parent=None):
        self.parent_frame = parent
        self.page = type("P", (), {"main_frame": type("F", (), {"url": page_url})()})()


class _FakeRequest:
    def __init__(
        self, url, resource_type="script", navigation=False, page_url="https://www.woshipm.com/a/1.html"
    ):
        self.url, self.resource_type, self._nav = url, resource_type, navigation
        self.frame = _FakeFrame(page_url)

    def is_navigation_request(self):
        return self._nav


def test_abort_request_rule():
    abort = abort_request
    assert abort(_FakeRequest("https://www.woshipm.com/logo.png", "image"))
    assert abort(_FakeRequest("https://www.woshipm.com/f.woff2", "font"))
    assert abort(_FakeRequest("https://hm.baidu.com/hm.js"))
    assert not abort(_FakeRequest("https://www.woshipm.com/app.js"))
    assert not abort(_FakeRequest("https://static.woshipm.com/app.js"))
    assert not abort(_FakeRequest("https://www.woshipm.com/a/1.html", "document", navigation=True))
    assert not abort(_FakeRequest("http://127.0.0.1:8000/x.js", page_url="http://127.0.0.1:8000/a/1.html"))
    assert abort(_FakeRequest("http://localhost:8000/x.js", page_url="http://127.0.0.1:8000/a/1.html"))


# ---- the middleware without a browser --------------------------------------------------------


def _middleware(mode):
    crawler = get_crawler(settings_dict={"WOSHIPM_RENDER": mode})
    crawler.stats.open_spider()
    return RenderMiddleware.from_crawler(crawler), crawler.stats


def _response(request, status, html):
    return HtmlResponse(request.url, status=status, body=html.encode(), encoding="utf-8", request=request)


def test_middleware_auto_rerequests_a_503_check_once_and_leaves_plain_pages_alone():
    mw, stats = _middleware("auto")
    article = Request("https://www.woshipm.com/a/1.html", meta={handoff.META_KIND: handoff.ARTICLE_KIND})
    plain = _response(article, 200, ARTICLE_HTML.format(title="t", body="b"))
    assert mw.process_response(article, plain) is plain
    retry = mw.process_response(article, _response(article, 503, CHALLENGE_HTML))
    assert isinstance(retry, Request) and retry.meta["playwright"] and retry.dont_filter
    assert retry.meta[handoff.META_RENDER_REASON] == "interstitial"
    # The rendered page still shows the check: no third attempt, handed to the spider with a reason.
    rendered = _response(retry, 503, CHALLENGE_HTML)
    assert mw.process_response(retry, rendered) is rendered
    assert handoff.render_failure(rendered) == "interstitial"
    assert rendered.meta["dont_retry"] and 503 in rendered.meta["handle_httpstatus_list"]
    assert stats.get_value("render/interstitial") == 1
    assert stats.get_value("render/requests") == 1
    assert stats.get_value("render/failed") == 1


def test_middleware_ignores_non_article_requests_and_never_mode_marks_failures():
    mw, stats = _middleware("never")
    listing = Request("https://www.woshipm.com/category/ai")
    shell = _response(listing, 200, SHELL_HTML.format(port=1))
    assert mw.process_response(listing, shell) is shell and handoff.render_failure(shell) is None
    article = Request("https://www.woshipm.com/a/2.html", meta={handoff.META_KIND: handoff.ARTICLE_KIND})
    shell = _response(article, 200, SHELL_HTML.format(port=1))
    assert mw.process_response(article, shell) is shell
    assert handoff.render_failure(shell) == "js_shell"
    assert stats.get_value("render/shell") == 1 and stats.get_value("render/requests") is None


def test_middleware_always_sends_articles_to_the_browser_directly():
    mw, stats = _middleware("always")
    article = Request("https://www.woshipm.com/a/1.html", meta={handoff.META_KIND: handoff.ARTICLE_KIND})
    listing = Request("https://www.woshipm.com/category/ai")
    assert mw.process_request(article) is None and mw.process_request(listing) is None
    assert article.meta["playwright"] and "playwright" not in listing.meta
    assert stats.get_value("render/requests") == 1


def test_middleware_renders_a_listing_answered_by_a_shell_and_hands_the_parsed_page_on():
    mw, stats = _middleware("auto")
    listing = Request("https://www.woshipm.com/category/ai", meta={handoff.META_KIND: handoff.LISTING_KIND})
    cards = ('<html><body><article class="postlist-item"><h2 class="post-title">'
             '<a href="/ai/7.html">卡片</a></h2></article></body></html>')
    plain = _response(listing, 200, cards)
    assert mw.process_response(listing, plain) is plain
    page = handoff.take_page(plain)  # parsed once, here; the spider reads this tree
    assert page is not None and classify(page) == "listing" and handoff.take_page(plain) is None
    # An error page (the retry middleware may send it again) keeps its meta picklable: no tree.
    error = _response(listing, 500, "<html><body>Internal error</body></html>")
    assert mw.process_response(listing, error) is error and handoff.META_PAGE not in listing.meta
    retry = mw.process_response(listing, _response(listing, 200, SHELL_HTML.format(port=1)))
    assert isinstance(retry, Request) and retry.meta["playwright"]
    assert retry.meta["playwright_page_methods"][0].args == ("article.postlist-item", 20_000)
    assert handoff.META_PAGE not in retry.meta
    rendered = _response(retry, 200, cards)
    assert mw.process_response(retry, rendered) is rendered and handoff.render_failure(rendered) is None
    assert stats.get_value("render/succeeded") == 1 and stats.get_value("render/shell") == 1
    # Still no cards after the browser: the spider is told, rather than reading the end of a listing.
    retry = mw.process_response(listing, _response(listing, 503, CHALLENGE_HTML))
    failed = _response(retry, 503, CHALLENGE_HTML)
    mw.process_response(retry, failed)
    assert handoff.render_failure(failed) == "interstitial"


def test_bad_mode_is_rejected():
    with pytest.raises(ValueError, match="WOSHIPM_RENDER"):
        _middleware("sometimes")


# ---- real Chromium ---------------------------------------------------------------------------


class RenderSite(ReplicaServer):
    """The replica's HTTP server (the one server the tests use) answering five pages of its own."""

    def __init__(self) -> None:
        super().__init__(articles=0)
        self.hits: Counter = Counter()
        self.cookies: list = []  # (path, Cookie header) per request

    def respond(self, raw_path: str, cookie_header: str = "") -> Response:
        path = urlsplit(raw_path).path
        self.hits[path] += 1
        self.cookies.append((path, cookie_header or None))
        shell = SHELL_HTML.format(port=self.port)
        if path == "/a/1.html":
            return _html(200, ARTICLE_HTML.format(title="Plain", body="Plain body served as HTML."))
        if path == "/a/2.html":
            return _html(200, shell)
        if path == "/a/4.html":
            return _html(200, shell.replace("JSON.parse", "JSON.broken"))
        if path == "/a/5.html":
            if self.hits[path] == 1:
                return _html(200, shell)
            # The browser's fetch: the replica's "drop" fault, half the body and the connection gone.
            return Response(200, shell.encode(), headers={"X-Replica-Drop": "1"})
        if path == "/a/3.html":
            if "cf_clearance=passed" in cookie_header:
                return _html(200, ARTICLE_HTML.format(title="Checked", body="Body behind the JS check."))
            # Cloudflare sets a cookie on the check page too: Scrapy's cookie jar then holds one.
            return _html(503, CHALLENGE_HTML, {"Set-Cookie": "__cf_bm=from-check; Path=/"})
        return super().respond(raw_path, cookie_header)


def _html(status: int, html: str, headers: dict | None = None) -> Response:
    return Response(status, html.encode(), headers=dict(headers or {}))


@pytest.fixture
def site():
    with RenderSite() as server:
        yield server.base_url, server


SPIDER = textwrap.dedent(
    """
    import json

    import scrapy

    from woshipm_crawler import handoff


    class RenderProbe(scrapy.Spider):
        name = "render_probe"
        custom_settings = {
            "ADDONS": {"woshipm_crawler.render.addon.RenderAddon": 0},
            "ROBOTSTXT_OBEY": False,
            "WOSHIPM_RENDER_TIMEOUT": 10,
            "LOG_LEVEL": "INFO",
        }

        paths = "/a/1.html,/a/2.html,/a/3.html"

        async def start(self):
            for path in self.paths.split(","):
                yield scrapy.Request(
                    self.base + path, meta={handoff.META_KIND: handoff.ARTICLE_KIND}, errback=self.failed
                )

        def parse(self, response):
            yield {
                "path": response.url[len(self.base):],
                "status": response.status,
                "text": " ".join(t.strip() for t in response.css("div.article--content ::text").getall()),
                "rendered": "playwright" in response.flags,
                "failure": handoff.render_failure(response),
            }

        def failed(self, failure):
            request = failure.request
            yield {"path": request.url[len(self.base):], "status": None, "text": "", "rendered": False,
                   "failure": handoff.render_failure(request), "error": repr(failure.value)}

        def closed(self, reason):
            with open(self.stats_path, "w") as f:
                json.dump(self.crawler.stats.get_stats(), f, default=str)
    """
)


def _crawl(tmp_path, base, mode, *settings, paths=None):
    spider = tmp_path / "probe.py"
    spider.write_text(SPIDER)
    out, stats = tmp_path / f"{mode}.jsonl", tmp_path / f"{mode}-stats.json"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    # Run outside the project directory: this tests the render add-on, not what settings.py holds.
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "runspider", str(spider), "-o", str(out),
         "-a", f"base={base}", "-a", f"stats_path={stats}", "-s", f"WOSHIPM_RENDER={mode}",
         "-s", f"WOSHIPM_BASE_URL={base}",
         *(["-a", f"paths={paths}"] if paths else []), *(arg for s in settings for arg in ("-s", s))],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    items = {item["path"]: item for item in map(json.loads, out.read_text().splitlines())}
    return items, json.loads(stats.read_text()), proc.stderr


@pytest.mark.browser
def test_auto_renders_shell_and_check_but_not_plain_pages(tmp_path, site):
    base, server = site
    items, stats, log = _crawl(tmp_path, base, "auto")
    assert items["/a/1.html"]["text"] == "Plain body served as HTML."
    assert not items["/a/1.html"]["rendered"]
    assert items["/a/2.html"]["text"] == "Shell body rendered by script. Second paragraph."
    assert items["/a/3.html"]["text"] == "Body behind the JS check."
    assert items["/a/3.html"]["status"] == 200  # the document the browser ended on, not the 503
    assert all(item["failure"] is None for item in items.values())
    assert items["/a/2.html"]["rendered"] and items["/a/3.html"]["rendered"]
    assert stats["render/requests"] == 2
    assert stats["render/shell"] == 1 and stats["render/interstitial"] == 1
    assert stats["render/succeeded"] == 2 and "render/failed" not in stats
    assert stats.get("retry/count") is None  # the 503 check was rendered, not retried over HTTP
    # Every page closed; images and the third-party host (localhost != 127.0.0.1) never fetched.
    assert stats["playwright/page_count"] == stats["playwright/page_count/closed"] == 2
    assert server.hits["/logo.png"] == 0 and server.hits["/third-party.js"] == 0
    assert stats["playwright/request_count/aborted"] >= 2
    # The check's reload carried the cookie its script set in the browser.
    assert any(
        path == "/a/3.html" and "cf_clearance=passed" in (cookie or "") for path, cookie in server.cookies
    )


@pytest.mark.browser
def test_never_hands_shell_and_check_to_the_spider_as_failures(tmp_path, site):
    base, server = site
    items, stats, log = _crawl(tmp_path, base, "never")
    assert items["/a/1.html"]["text"] == "Plain body served as HTML."
    assert items["/a/2.html"]["failure"] == "js_shell" and items["/a/2.html"]["text"] == ""
    assert items["/a/3.html"]["failure"] == "interstitial" and items["/a/3.html"]["status"] == 503
    assert not any(item["rendered"] for item in items.values())
    assert "render/requests" not in stats and stats["render/skipped"] == 2
    # Lazy handler: a crawl that renders nothing starts neither the Playwright driver nor Chromium.
    assert "playwright/browser_count" not in stats
    assert "Starting download handler" not in log
    assert server.hits["/a/3.html"] == 1  # not retried: plain HTTP would get the same check


@pytest.mark.browser
def test_always_renders_every_article(tmp_path, site):
    base, server = site
    items, stats, log = _crawl(tmp_path, base, "always")
    assert items["/a/1.html"]["rendered"] and items["/a/1.html"]["text"] == "Plain body served as HTML."
    assert items["/a/2.html"]["text"] == "Shell body rendered by script. Second paragraph."
    assert items["/a/3.html"]["text"] == "Body behind the JS check."
    assert stats["render/requests"] == 3 and "render/shell" not in stats  # no plain fetch first
    assert server.hits["/a/1.html"] == 1


@pytest.mark.browser
def test_timeout_and_error_paths_close_their_pages_and_report_a_reason(tmp_path, site):
    base, server = site
    items, stats, log = _crawl(
        tmp_path, base, "auto", "WOSHIPM_RENDER_TIMEOUT=1", paths="/a/4.html,/a/5.html"
    )
    # Timed out waiting for the article: the spider still gets the page, with the reason.
    assert items["/a/4.html"]["failure"] == "js_shell" and items["/a/4.html"]["text"] == ""
    # The browser's fetch failed: the errback sees the reason on the request.
    assert items["/a/5.html"]["failure"] == "render_error" and "Error" in items["/a/5.html"]["error"]
    assert stats["render/requests"] == 2 and stats["render/failed"] == 2
    assert stats["playwright/page_count"] == stats["playwright/page_count/closed"] == 2
    assert server.hits["/a/4.html"] == 2  # once over HTTP, once in the browser: rendered once only


def test_missing_chromium_fails_the_render_with_the_install_command(tmp_path, site):
    base, server = site
    items, stats, log = _crawl(
        tmp_path, base, "auto", "WOSHIPM_CHROMIUM=/nonexistent/chromium", paths="/a/1.html,/a/2.html"
    )
    assert items["/a/1.html"]["text"] == "Plain body served as HTML."
    assert items["/a/2.html"]["failure"] == "render_error"
    assert "apt-get install -y chromium" in items["/a/2.html"]["error"]
    assert "apt-get install -y chromium" in log


def test_render_meta_survives_a_disk_queue():
    # JOBDIR queues pickle request meta; a page method must reference a module-level function.
    rendered = pickle.loads(pickle.dumps(render_meta("article", 5, "js_shell")))
    assert rendered["playwright"] and rendered["playwright_page_methods"][0].method is wait_for_content
