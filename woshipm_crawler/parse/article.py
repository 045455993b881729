"""Every field of an article page (site-model §4): pure functions over the page's one parsed tree.

``parse_article_response(body, url, content_type=...)`` is the spider's entry point: it parses the body once
(``parse.page``), classifies it with the one page classifier, reads every field, cleans the body and
converts the cleaned tree to Markdown, all on that one tree.

The page furniture of site-model §4 (items 1–3 and 5–10) is listed once, in ``FURNITURE_*`` below;
everything the parser removes from a body is named there. A page that is not an article (a JS
shell, an anti-bot check, truncated HTML, no title or no body) raises ``ArticlePageError`` with a
reason, so that the caller counts a failure instead of writing a half-filled item.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import date, datetime

from lxml import etree

from woshipm_crawler import site
from woshipm_crawler.markdown import tree_to_markdown
from woshipm_crawler.parse.page import ARTICLE_CONTENT, Page, classify, css, css_any, looks_like_article, parse_page
from woshipm_crawler.parse.tree import (
    drop_keeping_tail,
    element_text,
    real_image_url,
    strip_attributes,
    unwrap,
)
from woshipm_crawler.textmodel import clean_field, content_hash, html_to_text, strip_invisible, word_count


# -- page structure: one layout's selectors together (fundus's versioned parsers) ----------------
@dataclass(frozen=True)
class ArticleLayout:
    """Where one layout of the site keeps each field. ``LAYOUT_2018`` is the one the parser knows; a
    redesign's is given in ``WOSHIPM_ARTICLE_LAYOUTS`` (``layout_from``) and tried on a page without
    it; a page matching none is ``layout_changed``."""

    name: str
    wrapper: str
    title: str
    content: str
    meta: str  # the block with the shown date and the counts
    time: str
    stats: str
    authors: tuple[str, ...]  # tried in order
    tags: str


# 2018 to today: the 2019 and 2023 pages (golden fixtures site-2019-*, site-2023-*) share it.
LAYOUT_2018 = ArticleLayout(
    name="2018",
    wrapper="div.article--wrapper",
    title="h2.article--title",
    content=ARTICLE_CONTENT,
    meta=".meta--sup",
    time=".meta--sup time",
    stats="div.meta--sup__right",
    authors=("a.ui-captionStrong", ".authorCard--title a"),
    tags="div.taglist a",
)

# -- furniture ---------------------------------------------------------------------------------
# Blocks removed wherever they sit in the body (class names a prior scraper removed; ads; scripts).
FURNITURE_SELECTORS = (
    ".author-card", ".article--postmeta", ".relate-post", ".copyright-statement", "[data-role='ad']",
    ".rewards-wrapper", ".woshipm-statement", ".support-author", ".taglist", "script", "style",
    "noscript", "iframe", "form", "button",
    # Active content and document-level elements: nothing of an article, everything of an attack.
    "frame", "frameset", "applet", "param", "input", "select", "textarea", "base", "link", "meta",
)
# Plugin elements: dropped, their fallback content (and what libxml2 nests in them: it does not close
# an ``<embed>`` and swallows the paragraphs after it) kept.
PLUGIN_TAGS = ("embed", "object")
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
# The credit is any name the site allows (spaces, Latin letters, punctuation: ``@Tom.W``, ``@名字 lee``,
# ``@产品-小王（Kevin）``): everything from the ``@`` to the fixed phrase, within the line.
CREDIT = r"\s*@\s*([^。\n]{1,60}?)\s*"
COPYRIGHT_RES = (
    ("partner", re.compile(rf"本文由人人都是产品经理合作媒体{CREDIT}授权发布")),
    ("translated", re.compile(rf"本文由{CREDIT}翻译发布于人人都是产品经理")),
    ("original", re.compile(rf"本文由{CREDIT}原创发布于人人都是产品经理")),
    ("authorized", re.compile(rf"本文由{CREDIT}授权发布于人人都是产品经理")),
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

# Inline wrappers with no meaning of their own once styles are gone.
UNWRAPPED_TAGS = ("span", "font", "o:p")



class ArticlePageError(ValueError):
    """The page is not a complete article; ``reason`` is the stat key (``failed/<reason>``)."""

    def __init__(self, reason: str, detail: str = "", missing: tuple[str, ...] = ()) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.missing = missing  # layout_changed: the fields the known layouts cannot find on the page


# The fields every article has, and the parts of a layout they are read from.
# Field bounds (README, "Field bounds"). No real title comes near 500 characters (the replica's longest,
# the long_title special, has 300), no author name near 100, no article near 50 tags (the site shows
# 3–10) or a tag near 50 characters. Beyond a bound the field is cut to it and the cut is reported
# (``parse_article``'s ``cuts``: the spider counts and logs it); the article is stored.
MAX_TITLE_CHARS = 500
MAX_AUTHOR_CHARS = 100
MAX_TAGS = 50
MAX_TAG_CHARS = 50


def _bounded(text: str, limit: int, what: str, cuts: list[tuple[str, str]]) -> str:
    if len(text) <= limit:
        return text
    cuts.append((what, f"{len(text)} characters, cut to {limit}"))
    return text[:limit]


CHECKED_FIELDS = ("title", "author", "published", "body", "tags")


def missing_fields(root, layout: ArticleLayout = LAYOUT_2018) -> tuple[str, ...]:
    """The fields of ``CHECKED_FIELDS`` whose part of ``layout`` is nowhere on the page."""
    found = {
        "title": bool(css(layout.title)(root)),
        "author": any(css(selector)(root) for selector in layout.authors),
        "published": bool(css(layout.time)(root) or css(PUBLISHED_META)(root)),
        "body": bool(css(layout.content)(root)),
        "tags": bool(css(layout.tags)(root)),
    }
    return tuple(name for name in CHECKED_FIELDS if not found[name])


def layout_changed(page: Page, what: str) -> ArticlePageError:
    missing = missing_fields(page.root)
    return ArticlePageError(
        "layout_changed",
        f"an article page without the known layout ({what}); not found: {', '.join(missing) or 'nothing'}",
        missing,
    )


def parse_article_response(body: bytes | str, url: str, encoding: str | None = None,
                           page: Page | None = None, content_type: str | bytes | None = None) -> dict:
    """Every field of the article page ``body`` (with ``body_markdown``): the spider's entry point.

    ``page`` is the body already parsed (the render middleware parses each page it looks at once and
    hands the tree on); the body is then not parsed again. ``encoding``/``content_type``: as for
    ``parse_page``. Raises ``ArticlePageError``.
    """
    return parse_article(page if page is not None else parse_page(body, encoding, content_type), url)


def layout_from(spec: dict) -> ArticleLayout:
    """An ``ArticleLayout`` from its fields (``WOSHIPM_ARTICLE_LAYOUTS``); ValueError when one is missing
    or a selector is not CSS."""
    try:
        layout = ArticleLayout(**{**spec, "authors": tuple(spec.get("authors") or ())})
    except TypeError as error:
        raise ValueError(f"a layout needs {', '.join(ArticleLayout.__dataclass_fields__)}: {error}") from None
    for selector in (layout.wrapper, layout.title, layout.content, layout.meta, layout.time, layout.stats,
                     layout.tags, *layout.authors):
        try:
            css(selector)
        except Exception as error:  # noqa: BLE001 - cssselect's errors have no common public base
            raise ValueError(f"{selector!r} is no CSS selector ({error})") from None
    return layout


def parse_article(page: Page | str, url: str, cuts: list[tuple[str, str]] | None = None,
                  extra_furniture: tuple[str, ...] = (), layouts: tuple[ArticleLayout, ...] = ()) -> dict:
    """Every field of an article page, keyed as in ``items.ARTICLE_FIELDS`` (crawl fields aside).

    The page's tree is consumed: the body is cleaned in place. Title, author name and tags are shown
    text (``text.clean_field``: no bidirectional or zero-width controls), within their bounds
    (``MAX_*``); each field cut to its bound adds (field, what was cut) to ``cuts``.
    ``extra_furniture``: CSS selectors of more blocks to remove from the body (``WOSHIPM_EXTRA_FURNITURE``);
    ``layouts``: more layouts, tried on a page without the known one (``WOSHIPM_ARTICLE_LAYOUTS``).
    """
    cuts = [] if cuts is None else cuts
    if isinstance(page, str):
        page = parse_page(page)
    ref = site.article_ref(url)
    if ref is None:
        raise ArticlePageError("not_article_url", url)
    if page.parser_limit:
        raise ArticlePageError("too_deep", f"the HTML parser stopped early ({page.parser_limit}): the body is cut")
    kind = classify(page)
    other = next((layout for layout in layouts if _first(page.root, layout.wrapper) is not None
                  and _first(page.root, layout.content) is not None), None) if kind == "layout_changed" else None
    if kind == "layout_changed" and other is None:
        raise layout_changed(page, "no article content")
    if kind in ("truncated", "interstitial", "js_shell"):
        raise ArticlePageError(kind, "no article content")
    try:
        return _fields(page, url, ref, kind, other or LAYOUT_2018, cuts, extra_furniture)
    except ArticlePageError as error:
        # The general rule: a page that clearly holds an article (a title, long text) but gave none is
        # a layout the parser does not know, whatever step failed (a listing's cards on it, a wrapper
        # without its content, a body the cleaner emptied).
        if error.reason == "no_body" and looks_like_article(page):
            raise layout_changed(page, str(error)) from None
        raise


def _fields(page: Page, url: str, ref: tuple[str, int], kind: str, layout: ArticleLayout,
            cuts: list[tuple[str, str]], extra_furniture: tuple[str, ...]) -> dict:
    if kind not in ("article", "layout_changed"):
        raise ArticlePageError("no_body", f"no article content (the page reads as {kind})")
    root = page.root
    wrapper = _first(root, layout.wrapper)
    if wrapper is None:
        raise ArticlePageError("no_body", "no article wrapper")
    title = clean_field(_text(_first(wrapper, layout.title)))
    if not title:
        if looks_like_article(page) and _first(wrapper, layout.title) is None:
            raise layout_changed(page, "no title element")
        raise ArticlePageError("no_title")
    content = _first(wrapper, layout.content)
    if content is None:
        raise ArticlePageError("no_body", "content outside the article wrapper")
    if _first(wrapper, layout.meta) is None and looks_like_article(page):
        raise layout_changed(page, "no meta block")

    category, article_id = ref
    published, published_time_known = _published(page.root, wrapper, layout)
    # Everything read outside the body first: cleaning below works on the tree in place.
    fields = {
        "id": article_id,
        "url": url,
        "category": category,
        "category_name": site.category_name(category),
        "title": _bounded(title, MAX_TITLE_CHARS, "title", cuts),
        "author": _author(wrapper, url, layout, cuts),
        "published": published,
        "published_time_known": published_time_known,
        "summary": _pop_summary(content),
        "tags": _tags(root, layout, cuts),
    }
    stats_text = _text(_first(wrapper, layout.stats))
    fields["stats"] = {key: _count(STATS_RES[key], stats_text) or 0 for key in ("views", "comments", "collects")}
    fields["read_minutes"] = _count(STATS_RES["read_minutes"], stats_text)
    source = _source(wrapper)
    body = clean_body(content, url, extra_furniture)
    body_text = html_to_text(body)
    if not body_text:
        raise ArticlePageError("no_body")
    body_html = etree.tostring(body, encoding="unicode", method="html")
    images = _images(body)
    fields.update({
        "cover_image": images[0] if images else None,
        "images": images,
        "source": source,
        "body_html": body_html[len("<div>"): -len("</div>")].strip(),
        "body_text": body_text,
        "word_count": word_count(body_text),
        "content_hash": content_hash(body_text),
        # Last: the Markdown stage restructures the cleaned tree in place.
        "body_markdown": tree_to_markdown(body),  # URLs are absolute already: no base needed
    })
    return fields


# -- fields -------------------------------------------------------------------------------------
def _first(element, selector: str):
    found = css(selector)(element)
    return found[0] if found else None


WHITE_SPACE_RE = re.compile(r"\s+")


def _text(element) -> str:
    return WHITE_SPACE_RE.sub(" ", element_text(element)).strip() if element is not None else ""


def _author(wrapper, url: str, layout: ArticleLayout, cuts: list[tuple[str, str]]) -> dict:
    link = None  # lxml elements without children are falsy: no `or` between lookups
    for selector in layout.authors:
        link = _first(wrapper, selector)
        if link is not None:
            break
    if link is None:
        return {"name": None, "id": None, "url": None}
    author_url = site.safe_url(link.get("href"), url)
    name = _bounded(clean_field(_text(link)), MAX_AUTHOR_CHARS, "author", cuts)
    return {"name": name or None, "id": site.author_id(author_url) if author_url else None, "url": author_url}


PUBLISHED_META = "meta[property='article:published_time'], meta[name='article:published_time']"


def _published(root, wrapper, layout: ArticleLayout) -> tuple[str, bool]:
    """(published, published_time_known): ``article:published_time`` when the page has a valid one,
    else the shown date at 00:00 Beijing time (site.published_value).

    A page with neither, or whose shown date does not exist (``2021-02-30``, ``2021-13-01``, text),
    fails as ``bad_date``: every article has a day (the library files it by that day), and a wrong
    one would be stored as fact. It stays in the frontier and is fetched again on the next run.
    """
    for meta in css(PUBLISHED_META)(root):
        with contextlib.suppress(ValueError):  # WordPress writes "Z" and "YYYY-MM-DD HH:MM:SS" too
            return site.published_value(datetime.fromisoformat(meta.get("content", "").strip().replace("Z", "+00:00")))
    time_el = _first(wrapper, layout.time)
    shown = (time_el.get("datetime") or time_el.get("data-time") or _text(time_el)) if time_el is not None else ""
    match = re.search(r"\d{4}-\d{2}-\d{2}", shown)
    if match:
        with contextlib.suppress(ValueError):
            return site.published_value(date.fromisoformat(match.group(0)))
    raise ArticlePageError("bad_date", f"the page shows no valid publication date ({shown.strip()[:40]!r})")


def _count(pattern: re.Pattern, text: str) -> int | None:
    match = pattern.search(text)
    if not match:
        return None
    number = match.group(1).replace(",", "")
    if number.endswith("万"):
        return round(float(number[:-1]) * 10000)
    return int(float(number))


def _tags(root, layout: ArticleLayout, cuts: list[tuple[str, str]]) -> list[str]:
    """The tags in page order, each once, at most MAX_TAGS of at most MAX_TAG_CHARS."""
    names: dict[str, None] = {}  # ordered, and a lookup that stays cheap at any count
    long_tags = 0
    for link in css(layout.tags)(root):
        # a tag chip may show "#name"; no tag of the site starts with "#"
        name = clean_field(_text(link).lstrip("#").strip()
                           or site.tag_name(site.tag_slug_from_url(link.get("href", "")) or "") or "")
        if len(name) > MAX_TAG_CHARS:
            name, long_tags = name[:MAX_TAG_CHARS], long_tags + 1
        if name:
            names.setdefault(name)
    if long_tags:
        cuts.append(("tags", f"{long_tags} tag(s) longer than {MAX_TAG_CHARS} characters, cut to it"))
    if len(names) > MAX_TAGS:
        cuts.append(("tags", f"{len(names)} tags, the first {MAX_TAGS} kept"))
    return list(names)[:MAX_TAGS]


def _pop_summary(content) -> str | None:
    """Remove and return the summary: a blockquote that opens the content, before any text."""
    for child in content:
        if not isinstance(child.tag, str):
            continue
        if child.tag == "blockquote":
            text = html_to_text(child)
            drop_keeping_tail(child)
            return SUMMARY_PREFIX_RE.sub("", text).strip() or None
        if _has_content(child):
            return None
    return None


def _has_content(element) -> bool:
    if element.tag in CONTENT_VOID_TAGS:
        return True
    return bool(element_text(element).strip()) or next(element.iter(*CONTENT_VOID_TAGS), None) is not None


def _source(wrapper) -> dict:
    """How the post came to the site, from the copyright line (inside the content or after it)."""
    text = element_text(wrapper)  # the patterns allow any white space: no need to normalise 100 KB
    for kind, pattern in COPYRIGHT_RES:
        match = pattern.search(text)
        if match:
            return {"type": kind, "credit": (match.group(1) or "").strip() or None}
    return {"type": "unknown", "credit": None}


def _images(body) -> list[str]:
    urls: list[str] = []
    for img in body.iter("img"):
        src = img.get("src")
        if src and src not in urls:
            urls.append(src)
    return urls


# -- body cleaning --------------------------------------------------------------------------------
def clean_body(content, url: str, extra_furniture: tuple[str, ...] = ()):
    """The article body of the ``.article--content`` element (moved out of it), furniture removed.

    Returns a ``div`` holding the body: attributes stripped to ``parse.tree.KEPT_ATTRIBUTES`` (no
    event handlers, no styles), lazy images resolved to their real URL, URLs absolute, inline wrappers
    unwrapped, empty blocks dropped. Nothing active stays: no comments (an IE conditional comment can
    hold a ``<script>``), scripts, frames, forms or plugins, and every URL passes ``site.safe_url``: a
    link to anything but http(s) keeps its text and loses the link; such an image goes, alt text and
    all (as an image without a real URL always has).
    """
    body = etree.Element("div")
    body.text = content.text
    for child in list(content):
        body.append(child)
    # Comments go with what they hold (an IE conditional comment can hold a <script>).
    for node in body.xpath(".//comment() | .//processing-instruction()"):
        drop_keeping_tail(node)
    for element in css_any(FURNITURE_SELECTORS + tuple(extra_furniture))(body):
        drop_keeping_tail(element)
    for element in list(body.iter(*PLUGIN_TAGS)):
        unwrap(element)
    _flatten_deep_wrappers(body)
    for link in list(body.iter("a")):
        href = link.get("href")
        if href is None:
            continue
        if any(host in href for host in FURNITURE_LINK_HOSTS):
            drop_keeping_tail(link)
            continue
        href = site.safe_url(href, url)
        if href:
            link.set("href", href)
        else:  # an unsafe link: its text stays, the link goes
            unwrap(link)
    _drop_furniture_blocks(body)
    for img in list(body.iter("img")):
        real = site.safe_url(real_image_url(img), url)
        if not real or any(host in real for host in FURNITURE_IMAGE_HOSTS):
            drop_keeping_tail(img)  # an image without a safe URL goes, alt text and all
            continue
        img.set("src", real)
    strip_attributes(body)
    for element in list(body.iter(*UNWRAPPED_TAGS)):
        unwrap(element)
    _strip_invisible(body)
    _drop_empty(body)
    return body


def _strip_invisible(body) -> None:
    """Bidirectional and zero-width controls go from the body's text (and images' alt text); a joiner
    inside an emoji or a joining script stays (``text.strip_invisible``)."""
    for element in body.iter():
        if element.text:
            element.text = strip_invisible(element.text)
        if element.tail:
            element.tail = strip_invisible(element.tail)
        alt = element.get("alt") if element.tag == "img" else None
        if alt:
            element.set("alt", strip_invisible(alt))


# Wrappers nested deeper than FLATTEN_DEPTH lose their tag when they hold no text of their own: every
# walk over the body (text, Markdown) recurses, and a body is not deeper than this for a reason. One
# still deeper than MAX_BODY_DEPTH after that is a failure (``too_deep``), never a cut body.
WRAPPER_TAGS = frozenset({"div", "section", "span", "font", "article", "center", "o:p"})
FLATTEN_DEPTH = 32
MAX_BODY_DEPTH = 100


def _depth_walk(body, collect: bool) -> tuple[int, list]:
    """(the body's depth, the text-less wrappers below FLATTEN_DEPTH when ``collect``)."""
    depth = deepest = 0
    wrappers = []
    for event, element in etree.iterwalk(body, events=("start", "end")):
        if event == "end":
            depth -= 1
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
        if collect and depth > FLATTEN_DEPTH and element.tag in WRAPPER_TAGS and not (element.text or "").strip():
            wrappers.append(element)
    return deepest, wrappers


# Whether anything lies FLATTEN_DEPTH levels below the body: libxml2 answers for the ordinary body
# without a Python step per element.
_DEEPER_THAN_FLATTEN = etree.XPath("boolean(" + "/".join(["*"] * FLATTEN_DEPTH) + ")")


def _flatten_deep_wrappers(body) -> None:
    if not _DEEPER_THAN_FLATTEN(body):
        return
    deepest, wrappers = _depth_walk(body, collect=True)
    for element in wrappers:
        unwrap(element)
    deepest = _depth_walk(body, collect=False)[0]
    if deepest > MAX_BODY_DEPTH:
        raise ArticlePageError("too_deep", f"the body nests {deepest} elements deep (at most {MAX_BODY_DEPTH})")


def _drop_furniture_blocks(body) -> None:
    """Drop blocks whose text is furniture; 相关阅读/专栏作家 run until the next furniture block."""
    in_section = False
    for block in _top_blocks(body):
        # Every pattern is anchored at the start and short: a block's first characters decide.
        # str.split and re's \s agree on white space (Py_UNICODE_ISSPACE); split is the cheaper.
        text = " ".join(element_text(block)[:200].split())
        if FURNITURE_SECTION_RE.match(text):
            in_section = True
            drop_keeping_tail(block)
        elif FURNITURE_TEXT_RE.match(text) or COPYRIGHT_TEXT_RE.match(text):
            in_section = False
            drop_keeping_tail(block)
        elif in_section:
            drop_keeping_tail(block)


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


# Elements that carry content without text; and those kept even when empty (a table keeps its grid).
CONTENT_VOID_TAGS = ("img", "hr")
KEPT_WHEN_EMPTY = ("br", "td", "th", "tr")


def _drop_empty(element) -> bool:
    """Drop, below ``element``, elements with neither text nor an image (``<p><br></p>``,
    ``<p>&nbsp;</p>``, bare wrappers); returns whether ``element`` has content. One pass, bottom-up."""
    found = bool(element.text and element.text.strip())
    for child in list(element):
        if child.tail and child.tail.strip():
            found = True
        if not isinstance(child.tag, str):
            continue
        if child.tag in CONTENT_VOID_TAGS:
            found = True
        elif _drop_empty(child):
            found = True
        elif child.tag not in KEPT_WHEN_EMPTY:
            drop_keeping_tail(child)
    return found
