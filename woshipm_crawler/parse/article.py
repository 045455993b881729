"""Every field of an article page (site-model §4): a pure function over (html, url).

The page furniture of site-model §4 (items 1–3 and 5–10) is listed once, in ``FURNITURE_*`` below;
everything the parser removes from a body is named there. A page that is not an article (a JS
shell, an anti-bot check, truncated HTML, no title or no body) raises ``ArticlePageError`` with a
reason, so that the caller counts a failure instead of writing a half-filled item.
"""

from __future__ import annotations

import contextlib
import copy
import re
from datetime import date, datetime
from functools import cache
from urllib.parse import urljoin

from lxml import html as lxml_html
from lxml.cssselect import CSSSelector

from woshipm_crawler import site
from woshipm_crawler.text import content_hash, html_to_text, word_count

# -- page structure ---------------------------------------------------------------------------
WRAPPER = "div.article--wrapper"
TITLE = "h2.article--title"
CONTENT = "div.article--content"

# -- furniture ---------------------------------------------------------------------------------
# Blocks removed wherever they sit in the body (class names a prior scraper removed; ads; scripts).
FURNITURE_SELECTORS = (
    ".author-card", ".article--postmeta", ".relate-post", ".copyright-statement", "[data-role='ad']",
    ".rewards-wrapper", ".woshipm-statement", ".support-author", ".taglist", "script", "style",
    "noscript", "iframe", "form", "button",
)
# Links to the course shop: the 🔗 promo line and the in-body promo card ending in 查看详情 >.
FURNITURE_LINK_HOSTS = ("ke.qidianla.com",)
FURNITURE_IMAGE_HOSTS = ("api.pwmqr.com", "static.woshipm.com/tag/")
# A block whose whole text starts like this is furniture.
FURNITURE_TEXT_RE = re.compile(
    r"^(?:题图来自|该文观点仅代表作者本人|赞赏\s*收藏|更多精彩内容，请关注人人都是产品经理"
    r"|分享到微博|微信扫一扫|分享$|查看详情\s*>|🔗)"
)
# The sections that run from their marker to the next furniture block or the end of the body.
FURNITURE_SECTION_RE = re.compile(r"^#\s*(?:相关阅读|专栏作家)\s*#")

# The copyright line, which says how the post came to the site (site-model §4.7).
COPYRIGHT_RES = (
    ("partner", re.compile(r"本文由人人都是产品经理合作媒体\s*@\s*([^，,。\s]+?)\s*授权发布")),
    ("translated", re.compile(r"本文由\s*@\s*([^，,。\s]+?)\s*翻译发布于人人都是产品经理")),
    ("original", re.compile(r"本文由\s*@\s*([^，,。\s]+?)\s*原创发布于人人都是产品经理")),
    ("authorized", re.compile(r"本文由\s*@\s*([^，,。\s]+?)\s*授权发布于人人都是产品经理")),
    ("original", re.compile(r"本文原创发布于人人都是产品经理()")),
    ("translated", re.compile(r"本文翻译发布于人人都是产品经理()")),
)
COPYRIGHT_TEXT_RE = re.compile(
    r"^本文(?:由.{0,60}?)?(?:原创|授权|翻译)?发布于人人都是产品经理|^本文由人人都是产品经理合作媒体"
)

SUMMARY_PREFIX_RE = re.compile(r"^\s*编辑导语\s*[：:]\s*")
STATS_RES = {
    "comments": re.compile(r"([\d.,]+万?)\s*评论"),
    "views": re.compile(r"([\d.,]+万?)\s*浏览"),
    "collects": re.compile(r"([\d.,]+万?)\s*收藏"),
    "read_minutes": re.compile(r"([\d.,]+)\s*分钟"),
}

# Attributes kept on body elements; everything else (style, class, data-*, ids) is noise.
KEPT_ATTRIBUTES = {"a": ("href",), "img": ("src", "alt"), "td": ("colspan", "rowspan"),
                   "th": ("colspan", "rowspan"), "ol": ("start",)}
LANGUAGE_CLASS_RE = re.compile(r"\b(?:language|lang)-[\w+#-]+")
# Inline wrappers with no meaning of their own once styles are gone.
UNWRAPPED_TAGS = ("span", "font", "o:p")
# Elements that carry content even when they hold no text.
CONTENT_VOID_TAGS = ("img", "hr", "br")
LAZY_IMAGE_ATTRIBUTES = ("data-src", "data-original", "data-actualsrc", "data-lazy-src")

SHELL_MARKERS = ("__INITIAL_STATE__", 'id="app"', "id='app'")
INTERSTITIAL_MARKERS = ("challenge-running", "cf-chl", "challenge-platform", "cf_chl_opt", "Just a moment")


class ArticlePageError(ValueError):
    """The page is not a complete article; ``reason`` is the stat key (``failed/<reason>``)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def parse_article(html: str, url: str) -> dict:
    """Every field of an article page, keyed as in ``items.ARTICLE_FIELDS`` (crawl fields aside)."""
    ref = site.article_ref(url)
    if ref is None:
        raise ArticlePageError("not_article_url", url)
    if not re.search(r"</html\s*>", html[-4096:], re.IGNORECASE):
        raise ArticlePageError("truncated", "no </html>")
    root = lxml_html.document_fromstring(html)
    wrapper = _first(root, WRAPPER)
    if wrapper is None:
        raise ArticlePageError(_why_no_article(html), "no article wrapper")
    title_el = _first(wrapper, TITLE)
    title = _text(title_el) if title_el is not None else ""
    if not title:
        raise ArticlePageError("no_title")
    content = _first(wrapper, CONTENT)
    if content is None:
        raise ArticlePageError(_why_no_article(html), "no article content")

    category, article_id = ref
    content = copy.deepcopy(content)
    summary = _pop_summary(content)
    source = _source(wrapper, content)
    body = clean_body(content, url)
    body_text = html_to_text(body)
    if not body_text:
        raise ArticlePageError("no_body")
    body_html = lxml_html.tostring(body, encoding="unicode", method="html")
    body_html = body_html[len("<div>"): -len("</div>")].strip()
    images = _images(body)
    stats_text = _text(_first(wrapper, "div.meta--sup__right"))
    published, published_time_known = _published(root, wrapper)

    return {
        "id": article_id,
        "url": url,
        "category": category,
        "category_name": site.category_name(category),
        "title": title,
        "author": _author(wrapper, url),
        "published": published,
        "published_time_known": published_time_known,
        "summary": summary,
        "tags": _tags(root),
        "stats": {key: _count(STATS_RES[key], stats_text) or 0 for key in ("views", "comments", "collects")},
        "read_minutes": _count(STATS_RES["read_minutes"], stats_text),
        "cover_image": images[0] if images else None,
        "images": images,
        "source": source,
        "body_html": body_html,
        "body_text": body_text,
        "word_count": word_count(body_text),
        "content_hash": content_hash(body_text),
    }


def _why_no_article(html: str) -> str:
    if any(marker in html for marker in INTERSTITIAL_MARKERS):
        return "interstitial"
    if any(marker in html for marker in SHELL_MARKERS):
        return "js_shell"
    return "no_body"


# -- fields -------------------------------------------------------------------------------------
@cache
def _css(expression: str) -> CSSSelector:
    """A compiled selector: translating CSS to XPath on every call costs more than the match."""
    return CSSSelector(expression, translator="html")


def _first(element, css: str):
    found = _css(css)(element)
    return found[0] if found else None


def _text(element) -> str:
    return re.sub(r"\s+", " ", element.text_content()).strip() if element is not None else ""


def _author(wrapper, url: str) -> dict:
    link = _first(wrapper, "a.ui-captionStrong")
    if link is None:  # lxml elements without children are falsy: no `or` between lookups
        link = _first(wrapper, ".authorCard--title a")
    if link is None:
        return {"name": None, "id": None, "url": None}
    href = link.get("href")
    author_url = urljoin(url, href) if href else None
    return {"name": _text(link) or None, "id": site.author_id(author_url) if author_url else None,
            "url": author_url}


def _published(root, wrapper) -> tuple[str | None, bool | None]:
    """(published, published_time_known): ``article:published_time`` when the page has it, else the
    shown date at 00:00 Beijing time (site.published_value); (None, None) without either."""
    for meta in _css("meta[property='article:published_time'], meta[name='article:published_time']")(root):
        with contextlib.suppress(ValueError):  # WordPress writes "Z" and "YYYY-MM-DD HH:MM:SS" too
            return site.published_value(datetime.fromisoformat(meta.get("content", "").strip().replace("Z", "+00:00")))
    time_el = _first(wrapper, ".meta--sup time")
    match = re.search(r"\d{4}-\d{2}-\d{2}", time_el.get("datetime") or _text(time_el)) if time_el is not None else None
    with contextlib.suppress(ValueError):
        return site.published_value(date.fromisoformat(match.group(0))) if match else (None, None)
    return None, None


def _count(pattern: re.Pattern, text: str) -> int | None:
    match = pattern.search(text)
    if not match:
        return None
    number = match.group(1).replace(",", "")
    if number.endswith("万"):
        return round(float(number[:-1]) * 10000)
    return int(float(number))


def _tags(root) -> list[str]:
    names: list[str] = []
    for link in _css("div.taglist a")(root):
        name = _text(link) or site.tag_name(site.tag_slug_from_url(link.get("href", "")) or "")
        if name and name not in names:
            names.append(name)
    return names


def _pop_summary(content) -> str | None:
    """Remove and return the summary: a blockquote that opens the content, before any text."""
    for child in content:
        if not isinstance(child.tag, str):
            continue
        if child.tag == "blockquote":
            text = html_to_text(child)
            child.drop_tree()
            return SUMMARY_PREFIX_RE.sub("", text).strip() or None
        if _has_content(child):
            return None
    return None


def _source(wrapper, content) -> dict:
    """How the post came to the site, from the copyright line (inside the content or after it)."""
    text = _text(wrapper)
    for kind, pattern in COPYRIGHT_RES:
        match = pattern.search(text)
        if match:
            return {"type": kind, "credit": match.group(1) or None}
    return {"type": "unknown", "credit": None}


def _images(body) -> list[str]:
    urls: list[str] = []
    for img in body.iter("img"):
        src = img.get("src")
        if src and src not in urls:
            urls.append(src)
    return urls


# -- body cleaning --------------------------------------------------------------------------------
def clean_body(content, url: str):
    """The article body of a (copied) ``.article--content`` element, furniture removed.

    Returns a ``div`` holding the body: attributes stripped to ``KEPT_ATTRIBUTES``, lazy images
    resolved to their real URL, URLs absolute, inline wrappers unwrapped, empty blocks dropped.
    """
    body = lxml_html.Element("div")
    body.text = content.text
    for child in list(content):
        body.append(child)
    for selector in FURNITURE_SELECTORS:
        for element in _css(selector)(body):
            _drop(element)
    for link in list(body.iter("a")):
        if any(host in (link.get("href") or "") for host in FURNITURE_LINK_HOSTS):
            _drop(link)
    _drop_furniture_blocks(body)
    for img in list(body.iter("img")):
        real = _real_image_url(img)
        if not real or any(host in real for host in FURNITURE_IMAGE_HOSTS):
            _drop(img)
            continue
        img.set("src", urljoin(url, real))
    for link in body.iter("a"):
        if link.get("href"):
            link.set("href", urljoin(url, link.get("href").strip()))
    _strip_attributes(body)
    for tag in UNWRAPPED_TAGS:
        for element in list(body.iter(tag)):
            element.drop_tag()
    _drop_empty(body)
    return body


def _real_image_url(img) -> str | None:
    src = (img.get("src") or "").strip()
    if not src or src.startswith("data:"):
        for attribute in LAZY_IMAGE_ATTRIBUTES:
            lazy = (img.get(attribute) or "").strip()
            if lazy and not lazy.startswith("data:"):
                return lazy
        return None
    return src


def _drop_furniture_blocks(body) -> None:
    """Drop blocks whose text is furniture; 相关阅读/专栏作家 run until the next furniture block."""
    in_section = False
    for block in _top_blocks(body):
        text = _text(block)
        if FURNITURE_SECTION_RE.match(text):
            in_section = True
            _drop(block)
        elif FURNITURE_TEXT_RE.match(text) or COPYRIGHT_TEXT_RE.match(text):
            in_section = False
            _drop(block)
        elif in_section:
            _drop(block)


def _top_blocks(body):
    """The body's blocks in order, looking through WeChat's wrapper sections to the paragraphs."""
    for child in list(body):
        if not isinstance(child.tag, str):
            continue
        if child.tag in ("section", "div") and any(
            isinstance(c.tag, str) and c.tag in ("p", "section", "div", "h2", "h3", "ul", "ol") for c in child
        ):
            yield from _top_blocks(child)
        else:
            yield child


def _strip_attributes(body) -> None:
    for element in body.iter():
        if not isinstance(element.tag, str):
            continue
        kept = KEPT_ATTRIBUTES.get(element.tag, ())
        language = None
        if element.tag in ("code", "pre"):
            match = LANGUAGE_CLASS_RE.search(element.get("class", ""))
            language = match.group(0) if match else None
        for name in list(element.attrib):
            if name not in kept:
                del element.attrib[name]
        if language:
            element.set("class", language)


def _has_content(element) -> bool:
    if element.tag in CONTENT_VOID_TAGS and element.tag != "br":
        return True
    if (element.text_content() or "").replace("\u00a0", " ").strip():
        return True
    return any(el.tag in ("img", "hr") for el in element.iter() if isinstance(el.tag, str))


def _drop_empty(body) -> None:
    """Drop elements with neither text nor an image: ``<p><br></p>``, ``<p>&nbsp;</p>``, bare wrappers."""
    for element in reversed(list(body.iter())):
        if element is body or not isinstance(element.tag, str):
            continue
        if element.tag in CONTENT_VOID_TAGS or element.tag in ("td", "th", "tr"):
            continue
        if not _has_content(element):
            _drop(element)


def _drop(element) -> None:
    """Remove an element but keep its tail text."""
    if element.getparent() is not None:
        element.drop_tree()
