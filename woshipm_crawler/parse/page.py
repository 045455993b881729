"""One parse per page, and the one classifier everyone uses (the render middleware, the parsers).

``parse_page(body, content_type=...)`` decodes and parses a response body once: libxml2 reads the bytes
with the encoding ``page_encoding`` decides (``huge_tree``: a 200 KB body is no reason to give up; it
also lifts libxml2's nesting limit from 256 to 2048 levels. A page nested deeper is cut by libxml2:
``Page.parser_limit`` then says so, and the article parser fails it as ``too_deep``).

``page_encoding`` takes the charset, in order, from the Content-Type header, the byte order mark, a
``<meta>`` charset the bytes agree with (they decode strictly with it), else from the bytes: UTF-8
when they are valid UTF-8, GB18030 otherwise. Scrapy's ``response.encoding`` trusts the meta tag
over the bytes (a GBK page labelled UTF-8 comes out as mojibake), so the spiders hand over the
header, not Scrapy's guess. ``classify(page)``
says what a browser-less client got:

article       ``div.article--content`` holding text
listing       article cards (``article.postlist-item``), the shape of category, tag and home pages
interstitial  an anti-bot check ("Just a moment...", Cloudflare's challenge ids or ``cf_chl_opt``)
layout_changed  clearly an article (a title: ``<title>`` or ``og:title``; long visible text) without the
              structure the parsers know: the site changed its layout. Not sent to the browser (it would see the
              same page), not a missing title or body: a failure of its own, loud in the run's outcome
js_shell      a client-rendered shell: inline state (``__INITIAL_STATE__``...) or an empty mount point
truncated     the body stops before ``</html>`` (a cut connection), whatever it holds
unknown       anything else (a 404 page, a listing past its end, an article without its body)

Only article and listing pages carry what the spiders read; a JS shell or check page is what the
render middleware sends to the browser. Cloudflare's ``challenge-platform`` beacon is also injected
into ordinary pages, so it and the other weak markers mean a check page only in pairs; a lone
beacon never does, for the middleware and the parser alike (they both call ``classify``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Literal

from lxml import etree
from lxml.cssselect import CSSSelector
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding, read_bom

PageKind = Literal["article", "listing", "interstitial", "layout_changed", "js_shell", "truncated", "unknown"]
# What the render middleware may send to the browser.
NEEDS_BROWSER: frozenset[str] = frozenset({"interstitial", "js_shell"})

ARTICLE_CONTENT = "div.article--content"
CARD_XPATH = "//article[contains(concat(' ', normalize-space(@class), ' '), ' postlist-item ')]"

_CHALLENGE_TITLE_RE = re.compile(r"^\s*(just a moment|attention required|请稍候)", re.I)
_CHALLENGE_IDS_XPATH = "//*[@id='challenge-running' or @id='challenge-form' or @id='challenge-stage']"
_STRONG_MARKERS = ("cf_chl_opt",)
_WEAK_MARKERS = ("challenge-platform", "cf-chl", "cf_clearance")
_SHELL_STATE_MARKERS = ("__INITIAL_STATE__", "__NEXT_DATA__", "window.__NUXT__")
_SHELL_MOUNT_XPATH = "//div[@id='app' or @id='root' or @id='__next' or @id='__nuxt']"
_VISIBLE_TEXT_XPATH = (
    "//body//text()[not(ancestor::script) and not(ancestor::style) and not(ancestor::noscript)]"
)
_SHELL_MAX_TEXT = 200  # a mount point with less visible text than this is an empty shell
# Visible text of a page that holds an article: far above a JS shell's chrome or a 404 page's, below
# any article page's (docs/benchmarks.md, "Measurements behind settings").
ARTICLE_MIN_TEXT = 800
_OG_TITLE_XPATH = "//meta[@property='og:title' or @name='og:title'][normalize-space(@content)]"
_END_OF_HTML_RE = re.compile(rb"</html\s*>", re.I)
_TAIL_BYTES = 4096  # where a complete page's </html> sits


@dataclass
class Page:
    """A response body and its one parsed tree. ``raw`` is the body as received (bytes) or given (str)."""

    raw: bytes | str
    root: etree._Element
    parser_limit: str | None = None  # libxml2's message when a limit (the nesting depth) cut the tree

    def contains(self, marker: str) -> bool:
        """Whether the raw body holds an ASCII ``marker`` (no decoding, no tree walk)."""
        return (marker.encode() if isinstance(self.raw, bytes) else marker) in self.raw

    @property
    def truncated(self) -> bool:
        tail = self.raw[-_TAIL_BYTES:]
        if isinstance(tail, str):
            tail = tail.encode("utf-8", "replace")
        return _END_OF_HTML_RE.search(tail) is None


@cache
def _parser(encoding: str | None) -> etree.HTMLParser:
    # Plain lxml elements: lxml.html's per-element class lookup costs and buys nothing here.
    return etree.HTMLParser(encoding=encoding, huge_tree=True)


@cache
def css(expression: str) -> CSSSelector:
    """A compiled selector: translating CSS to XPath on every call costs more than the match."""
    return CSSSelector(expression, translator="html")


# The selector forms ``css_any`` matches in Python: a tag, a class, an attribute equal to a value.
_SIMPLE_SELECTOR_RE = re.compile(r"(?P<tag>[a-z][a-z0-9]*)|\.(?P<cls>[\w-]+)|\[(?P<attr>[\w-]+)='(?P<value>[^']*)'\]")


@cache
def css_any(selectors: tuple[str, ...]) -> Callable[[etree._Element], list]:
    """The elements below a node matching any of ``selectors``: tags in one walk of the tree, classes
    and attributes checked on the few elements that carry them. A CSS selector group is a union that
    walks the tree once per selector (most of the time of cleaning a body); other selector forms still
    go through one. Not in document order: a caller removing them may meet one inside another."""
    tags, classes, values, others = [], set(), set(), []
    for selector in selectors:
        match = _SIMPLE_SELECTOR_RE.fullmatch(selector)
        if match is None:
            others.append(selector)
        elif match["tag"]:
            tags.append(match["tag"])
        elif match["cls"]:
            classes.add(match["cls"])
        else:
            values.add((match["attr"], match["value"]))
    names = (["class"] if classes else []) + sorted({name for name, _ in values})
    carriers = etree.XPath(".//*[" + " or ".join(f"@{name}" for name in names) + "]") if names else None
    rest = css(", ".join(others)) if others else None

    def select(node) -> list:
        found = [element for element in node.iter(*tags) if element is not node] if tags else []
        if carriers is not None:
            found.extend(
                element for element in carriers(node)
                if not classes.isdisjoint((element.get("class") or "").split())
                or any(element.get(name) == value for name, value in values)
            )
        if rest is not None:
            found.extend(rest(node))
        return found

    return select


def _decodes(body: bytes, encoding: str) -> bool:
    """Whether ``body`` is text in ``encoding`` (a cut last character aside: truncation is not a charset)."""
    try:
        body.decode(encoding)
    except UnicodeDecodeError as error:
        return error.reason == "unexpected end of data" and error.start >= len(body) - 4
    except LookupError:  # a charset Python does not know
        return False
    return True


def page_encoding(body: bytes, content_type: str | bytes | None = None) -> str:
    """The charset of a page (the module docstring gives the order)."""
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    declared = http_content_type_encoding(content_type) if content_type else None
    if declared:
        return declared
    bom = read_bom(body)[0]
    if bom:
        return bom
    meta = html_body_declared_encoding(body)
    if meta and _decodes(body, meta):
        return meta
    return "utf-8" if meta != "utf-8" and _decodes(body, "utf-8") else "gb18030"


def parse_page(body: bytes | str, encoding: str | None = None, content_type: str | bytes | None = None) -> Page:
    """The page's tree; an empty or unparsable body gives an empty ``<html>``.

    ``encoding`` is the body's charset when the caller knows it; else ``page_encoding`` decides it
    from the bytes and ``content_type`` (the response's Content-Type header).
    """
    if isinstance(body, bytes) and encoding is None and body:
        encoding = page_encoding(body, content_type)
    parser = _parser(encoding if isinstance(body, bytes) else None)
    root = None
    if body and (body.strip() if isinstance(body, str) else body.strip()):
        try:
            root = etree.fromstring(body, parser)
        except (etree.ParserError, ValueError):  # ValueError: an unknown encoding name
            if isinstance(body, bytes):
                parser = _parser(None)
                root = etree.fromstring(body.decode(encoding, "replace") if _known(encoding) else body, parser)
    if root is None:
        return Page(body, etree.Element("html"))
    limit = next((e.message for e in parser.error_log if _is_depth_limit(e)), None)
    return Page(body, root, limit)


# libxml2 2.13+ reports its depth limit as ERR_RESOURCE_LIMIT; older ones (lxml 5.0 bundles 2.12) as
# an internal error: the message is what both share.
_RESOURCE_LIMIT = getattr(etree.ErrorTypes, "ERR_RESOURCE_LIMIT", None)


def _is_depth_limit(error) -> bool:
    return error.type == _RESOURCE_LIMIT or error.message.startswith("Excessive depth in document")


def _known(encoding: str | None) -> bool:
    return bool(encoding) and _decodes(b"", encoding)


def has_article_text(page: Page) -> bool:
    for content in css(ARTICLE_CONTENT)(page.root):
        if any(text.strip() for text in content.itertext()):
            return True
    return False


def has_cards(page: Page) -> bool:
    return bool(page.root.xpath(CARD_XPATH))


def is_interstitial(page: Page) -> bool:
    title = page.root.find(".//title")
    if title is not None and _CHALLENGE_TITLE_RE.match(title.text or ""):
        return True
    if page.root.xpath(_CHALLENGE_IDS_XPATH) or any(page.contains(m) for m in _STRONG_MARKERS):
        return True
    return sum(page.contains(marker) for marker in _WEAK_MARKERS) >= 2


def is_js_shell(page: Page) -> bool:
    if any(page.contains(marker) for marker in _SHELL_STATE_MARKERS):
        return True
    if page.root.xpath(_SHELL_MOUNT_XPATH):
        return visible_text_length(page) < _SHELL_MAX_TEXT
    return False


def visible_text_length(page: Page) -> int:
    return sum(len(text.strip()) for text in page.root.xpath(_VISIBLE_TEXT_XPATH))


def looks_like_article(page: Page) -> bool:
    """A full article whatever its markup: a title (``<title>`` or ``og:title``) and long visible text.
    A redesign may drop either title (``replica.pages.random_redesign`` drops ``og:title``)."""
    title = page.root.find(".//title")
    if (title is None or not (title.text or "").strip()) and not page.root.xpath(_OG_TITLE_XPATH):
        return False
    return visible_text_length(page) >= ARTICLE_MIN_TEXT


def classify(page: Page) -> PageKind:
    """What a browser-less client got (the module docstring lists the kinds and the rules)."""
    if page.truncated:
        return "truncated"
    if has_article_text(page):
        return "article"
    if has_cards(page):
        return "listing"
    if is_interstitial(page):
        return "interstitial"
    if looks_like_article(page):
        return "layout_changed"
    if is_js_shell(page):
        return "js_shell"
    return "unknown"
