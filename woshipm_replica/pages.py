# ruff: noqa: E501 - the HTML templates keep one element per line, as the site's markup reads.
"""HTML, RSS and JSON of the replica, rendered from the corpus model (site-model §3–§4).

Every function is a pure function of (corpus, request), so the same seed gives byte-identical pages.
Links are absolute on ``base`` like the real site's.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from datetime import datetime
from email.utils import format_datetime
from html import escape
from urllib.parse import quote

from woshipm_crawler import site

from . import vocab
from .blocks import body_html
from .corpus import Article, Corpus

SITE_NAME = "人人都是产品经理"
DEFAULT_THUMB = "https://static.woshipm.com/assets/images/default-thumb.png"
THUMB_SUFFIX = "!/both/236x143"
FEED_PAGE_SIZE = 15
HOME_CARDS = 20
RECOMMEND_CARDS = 6
SIDEBAR_ITEMS = 8


def _e(text: str) -> str:
    return escape(text, quote=True)


def _rng(corpus: Corpus, *parts: object) -> random.Random:
    return random.Random(":".join(map(str, (corpus.seed, "page", *parts))))


def _excerpt(article: Article, length: int = 90) -> str:
    if article.summary:
        return article.summary
    return article.body_text.replace("\n", "")[:length]


def _cover(article: Article) -> str | None:
    images = article.images(site.DEFAULT_BASE_URL)
    return images[0] if images else None


# ---------------------------------------------------------------------------------------------
# page chrome


def _layout(corpus: Corpus, base: str, title: str, body: str, head: str = "", body_class: str = "") -> str:
    nav = "".join(
        f'<li><a href="{base}/category/{slug}">{_e(name)}</a></li>' for slug, name in site.categories().items()
    )
    return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
{head}
<link rel="stylesheet" href="https://static.woshipm.com/assets/css/app.css?v=2026">
</head>
<body class="{body_class}">
<div id="woshipm" v-cloak>
<header class="header">
  <a class="logo" href="{base}/"><img src="https://static.woshipm.com/assets/images/logo.png" alt="{SITE_NAME}"></a>
  <ul class="nav">{nav}</ul>
  <div class="header-user"><a class="vip-entry" href="{base}/vip">{{{{ userInfo.member ? '查看权益' : '开通会员' }}}}</a>
  <span class="user-name" v-if="userInfo.login">{{{{ userInfo.nickname }}}}</span></div>
</header>
<main class="main">
{body}
</main>
<footer class="footer"><p>© 2010-2026 {SITE_NAME} · 产品经理、产品爱好者学习交流平台</p>
<p><a href="https://beian.miit.gov.cn/">粤ICP备14037330号</a></p></footer>
</div>
<script src="https://static.woshipm.com/assets/js/vue.min.js"></script>
</body>
</html>
"""


def _ad(slot: str) -> str:
    return (
        f'<div data-role="ad" class="banner-ad banner-ad--{slot}"><a href="https://ke.qidianla.com/courses/aipm?from={slot}" '
        f'target="_blank"><img src="https://image.woshipm.com/ad/2026/{slot}.png" alt="广告"></a></div>'
    )


def card(corpus: Corpus, base: str, index: int, *, cards_2019: bool = False) -> str:
    """The ``article.postlist-item`` card of listings, home and 推荐 blocks (same markup everywhere).

    ``cards_2019``: the older card (2018–2021, site-model §3): the same item with a ``<time>`` and
    the view count, no Vue mustaches.
    """
    article = corpus.article(index)
    url = f"{base}{article.path()}"
    thumb = (_cover(article) or DEFAULT_THUMB) + THUMB_SUFFIX
    title = _e(article.title)
    if cards_2019:
        return f"""<article class="postlist-item u-clearfix" data-id="{article.id}">
  <div class="post-img"><a href="{url}" target="_blank"><img src="{_e(thumb)}" alt="{title}"></a></div>
  <div class="content">
    <h2 class="post-title"><a href="{url}" title="{title}" target="_blank">{title}</a></h2>
    <div class="des">{_e(_excerpt(article))}</div>
    <div class="stream-list-meta"><time>{article.published:%Y-%m-%d}</time> <span class="author"><a href="{base}/u/{article.author.id}" target="_blank">{_e(article.author.name)}</a></span>
      <span class="views">{_views(article.views)}</span></div>
  </div>
</article>"""
    return f"""<article class="postlist-item u-clearfix" data-id="{article.id}">
  <div class="post-img"><a href="{url}" target="_blank"><img src="{_e(thumb)}" alt="{title}"></a></div>
  <div class="content">
    <h2 class="post-title"><a href="{url}" title="{title}" target="_blank">{title}</a></h2>
    <div class="des">{_e(_excerpt(article))}</div>
    <div class="author"><a class="ui-captionStrong" href="{base}/u/{article.author.id}" target="_blank">{_e(article.author.name)}</a>
      <span class="post-views" v-if="showViews">{{{{ formatViews({article.views}) }}}}</span></div>
  </div>
</article>"""


def _views(views: int) -> str:
    return f"{views / 10000:.1f}万" if views >= 10000 else str(views)


def _others(corpus: Corpus, shown: set[int], count: int, *salt: object) -> list[int]:
    """``count`` indices not in ``shown``, chosen deterministically (decoys, 推荐, sidebar)."""
    rng = _rng(corpus, "others", *salt)
    picked: list[int] = []
    tries = 0
    while len(picked) < count and tries < count * 20 and corpus.size:
        tries += 1
        index = rng.randrange(corpus.size)
        if index not in shown and index not in picked:
            picked.append(index)
    return picked


def _sidebar(corpus: Corpus, base: str, shown: set[int], *salt: object) -> str:
    items = "".join(
        f'<li><span class="rank">{n + 1}</span><a href="{base}{corpus.path(i)}" target="_blank">'
        f"{_e(corpus.title(i))}</a></li>"
        for n, i in enumerate(_others(corpus, shown, SIDEBAR_ITEMS, "sidebar", *salt))
    )
    return f'<aside class="sidebar"><div class="hot-articles"><h3 class="sidebar-title">热门文章</h3><ul>{items}</ul></div></aside>'


def _decoys(corpus: Corpus, base: str, shown: set[int], *salt: object) -> str:
    out = []
    for index in _others(corpus, shown, 2, "decoy", *salt):
        article = corpus.article(index)
        out.append(
            f'<div class="category-card"><a href="{base}{article.path()}" target="_blank">'
            f'<img src="{_e((_cover(article) or DEFAULT_THUMB) + THUMB_SUFFIX)}" alt="">'
            f"<p>{_e(article.title)}</p></a></div>"
        )
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# listings


def listing_pages(corpus: Corpus, key: str) -> int:
    return max(1, -(-len(corpus.listing(key)) // site.CARDS_PER_LISTING_PAGE))


def render_listing(corpus: Corpus, base: str, kind: str, slug: str, page: int, *,
                   cards_2019: bool = False) -> str | None:
    """``/category/<slug>[/page/N]`` or ``/tag/<slug>[/page/N]``; None (404) past the last page.

    ``cards_2019``: the page as the site served it in 2018–2021: older cards, no tab templates (the
    推荐 block sits in the sidebar), WordPress pagination on category pages too.
    """
    key = f"{kind}:{slug}"
    indices = corpus.listing(key)
    per = site.CARDS_PER_LISTING_PAGE
    if page < 1 or page > listing_pages(corpus, key):
        return None
    if kind == "tag" and not indices:
        return None
    on_page = indices[(page - 1) * per : page * per]
    member = set(indices)
    name = site.category_name(slug) if kind == "category" else corpus.tag_name(slug)
    name = name or slug
    latest = "\n".join(card(corpus, base, i) for i in on_page)
    recommended = "\n".join(card(corpus, base, i) for i in _others(corpus, member, RECOMMEND_CARDS, key, page))
    pagination = ""
    if kind == "tag":
        pagination = _wp_pagination(base, f"/tag/{slug}", page, listing_pages(corpus, key))
    heading = f"{_e(name)}" if kind == "category" else f"标签：{_e(name)}"
    title = f"{name}{' - 第' + str(page) + '页' if page > 1 else ''} | {SITE_NAME}"
    if cards_2019:
        latest = "\n".join(card(corpus, base, i, cards_2019=True) for i in on_page)
        recommended = "\n".join(
            card(corpus, base, i, cards_2019=True) for i in _others(corpus, member, RECOMMEND_CARDS, key, page)
        )
        path = f"/{kind}/{slug}"
        body = f"""<div class="container category-page">
<section class="category-head"><h1 class="category-title">{heading}</h1></section>
<div class="postlist">
{latest}
</div>
{_wp_pagination(base, path, page, listing_pages(corpus, key))}
<aside class="sidebar"><div class="recommend"><h3 class="sidebar-title">推荐阅读</h3>
{recommended}
</div></aside>
</div>"""
        return _layout(corpus, base, title, body, body_class=f"{kind}-listing archive")
    body = f"""{_ad("listing-top")}
<div class="container category-page">
<section class="category-head"><h1 class="category-title">{heading}</h1>
  <div class="category-tabs"><span :class="{{active: homeTab == 'latest'}}" @click="homeTab = 'latest'">最新</span>
  <span :class="{{active: homeTab == 'all'}}" @click="homeTab = 'all'">推荐</span></div></section>
<div class="category-cards">
{_decoys(corpus, base, member, key, page)}
</div>
<div class="postlist">
<template v-if="homeTab == 'latest'">
{latest}
</template>
<template v-else>
{recommended}
</template>
</div>
{pagination}
<div class="load-more" v-if="hasMore" @click="loadMore">{{{{ loading ? '加载中…' : '加载更多' }}}}</div>
{_sidebar(corpus, base, member, key, page)}
</div>"""
    return _layout(corpus, base, title, body, body_class=f"{kind}-listing")


def _wp_pagination(base: str, path: str, page: int, pages: int) -> str:
    """The older WordPress pagination (``nav.navigation.pagination a.next.page-numbers``)."""
    links = []
    if page > 1:
        prev = f"{base}{path}" + (f"/page/{page - 1}" if page > 2 else "")
        links.append(f'<a class="prev page-numbers" href="{prev}">上一页</a>')
    links.append(f'<span aria-current="page" class="page-numbers current">{page}</span>')
    if page < pages:
        links.append(f'<a class="page-numbers" href="{base}{path}/page/{pages}">{pages}</a>')
        links.append(f'<a class="next page-numbers" href="{base}{path}/page/{page + 1}">下一页</a>')
    return f'<nav class="navigation pagination" role="navigation"><div class="nav-links">{"".join(links)}</div></nav>'


def render_home(corpus: Corpus, base: str) -> str:
    """Home: markers swapped — ``homeTab == 'all'`` holds the 最新 list, ``'latest'`` the 推荐 cards."""
    newest = list(corpus.newest_first()[:HOME_CARDS])
    shown = set(newest)
    latest = "\n".join(card(corpus, base, i) for i in newest)
    recommended = "\n".join(card(corpus, base, i) for i in _others(corpus, shown, RECOMMEND_CARDS, "home"))
    body = f"""{_ad("home-top")}
<div class="container home-page">
<div class="home-tabs"><span @click="homeTab = 'all'">最新</span><span @click="homeTab = 'latest'">推荐</span></div>
<div class="postlist">
<template v-if="homeTab == 'latest'">
{recommended}
</template>
<template v-if="homeTab == 'all'">
{latest}
</template>
</div>
{_sidebar(corpus, base, shown, "home")}
</div>"""
    return _layout(corpus, base, f"{SITE_NAME} | 产品经理、产品爱好者学习交流平台", body, body_class="home")


def render_author(corpus: Corpus, base: str, author_id: int) -> str | None:
    key = (author_id - 30_000) // 9_973
    if (author_id - 30_000) % 9_973 or not 0 <= key < 200:
        return None
    indices = corpus.listing(f"author:{author_id}")
    if not indices:
        return None
    author = corpus.author(key)
    cards = "\n".join(card(corpus, base, i) for i in indices[: site.CARDS_PER_LISTING_PAGE])
    body = f"""<div class="container author-page">
<div class="author-head"><img class="avatar" src="{_e(author.avatar)}" alt="">
<h1 class="author-name">{_e(author.name)}</h1><p class="author-bio">{_e(author.bio)}</p>
<p class="author-stats">{len(indices)} 篇文章</p></div>
<div class="postlist">{cards}</div>
</div>"""
    return _layout(corpus, base, f"{author.name}的个人主页 | {SITE_NAME}", body, body_class="author")


# ---------------------------------------------------------------------------------------------
# article


def _head(article: Article, base: str) -> str:
    url = f"{base}{article.path()}"
    description = _e(_excerpt(article, 120))
    cover = _cover(article)
    lines = [
        f'<meta name="description" content="{description}">',
        f'<meta name="keywords" content="{_e(",".join(article.tags))}">',
        f'<link rel="canonical" href="{url}">',
        '<meta property="og:type" content="article">',
        f'<meta property="og:url" content="{url}">',
        f'<meta property="og:title" content="{_e(article.title)}">',
        f'<meta property="og:description" content="{description}">',
        f'<meta property="og:site_name" content="{SITE_NAME}">',
    ]
    if cover:
        lines.append(f'<meta property="og:image" content="{_e(cover)}">')
    if article.has_time_meta:
        lines.append(
            f'<meta property="article:published_time" content="{article.published.isoformat(timespec="seconds")}">'
        )
    return "\n".join(lines)


def _promo_card(article: Article) -> str:
    slug, title, description = vocab.PROMO_COURSES[article.promo_card or 0]
    image = f"https://image.woshipm.com/2023/08/02/course-{slug}.png"
    if article.id % 2:
        return (
            f'<div class="article--course"><a href="https://ke.qidianla.com/courses/{slug}" target="_blank">'
            f'<img src="{image}" alt=""><div class="course-title">{_e(title)}</div>'
            f'<div class="course-desc">{_e(description)}</div><span class="course-more">查看详情 &gt;</span></a></div>'
        )
    # The variant without any class: only the link target and the 查看详情 text give it away.
    return (
        f'<p><a href="https://ke.qidianla.com/courses/{slug}" target="_blank"><img src="{image}" alt=""><br>'
        f"<strong>{_e(title)}</strong><br>{_e(description)}<br>查看详情 &gt;</a></p>"
    )


def _content(corpus: Corpus, article: Article, base: str, opening: str = '<div class="article--content grap">',
             closing: str = "</div>") -> tuple[str, str]:
    """``div.article--content`` (or ``opening``…``closing``) and the furniture block that may follow it."""
    parts: list[str] = []
    if article.summary is not None:
        summary = ("编辑导语：" if article.editor_lead else "") + article.summary
        inner = f"<p>{_e(summary)}</p>" if article.summary_in_p else _e(summary)
        parts.append(f"<blockquote>{inner}</blockquote>")
    blocks = article.blocks
    at = article.promo_card_at if article.promo_card is not None else len(blocks) + 1
    parts.append(body_html(blocks[:at]))
    if article.promo_card is not None:
        parts.append(_promo_card(article))
        parts.append(body_html(blocks[at:]))
    if article.related:
        items = "".join(
            f'<li><a href="{base}{corpus.path(i)}" target="_blank">{_e(corpus.title(i))}</a></li>'
            for i in article.related
        )
        parts.append(f"<p><strong>#相关阅读#</strong></p><ul>{items}</ul>")
    if article.columnist_bio:
        parts.append("<p><strong>#专栏作家#</strong></p>")
        parts.append(f"<p>{_e(article.author.name)}，人人都是产品经理专栏作家。{_e(article.author.bio)}</p>")
    statement = []
    if article.copyright_line:
        statement.append(f"<p>{_e(article.copyright_line)}</p>")
    statement.append("<p>题图来自Unsplash，基于CC0协议</p>")
    disclaimer = "该文观点仅代表作者本人，人人都是产品经理平台仅提供信息存储空间服务。"
    after = ""
    if article.copyright_block:
        after = f'<div class="copyright-statement">{"".join(statement)}</div>'
        if article.disclaimer:
            after += f'\n<div class="woshipm-statement"><p>{disclaimer}</p></div>'
    else:
        parts += statement
        if article.disclaimer:
            parts.append(f"<p>{disclaimer}</p>")
    return opening + "\n" + "\n".join(parts) + "\n" + closing, after


def article_wrapper(corpus: Corpus, article: Article, base: str) -> str:
    """``div.article--wrapper`` with the furniture in the site's reading order (site-model §4)."""
    url = f"{base}{article.path()}"
    author = article.author
    author_url = f"{base}/u/{author.id}"
    badges = "".join(f'<img class="author-badge" src="{b}" alt="">' for b in author.badges)
    promo = ""
    if article.promo_line is not None:
        course = vocab.PROMO_COURSES[article.promo_line % len(vocab.PROMO_COURSES)][0]
        promo = (
            f'<div class="article--promotion"><a href="https://ke.qidianla.com/courses/{course}" target="_blank">'
            f"🔗 {_e(vocab.PROMO_LINES[article.promo_line])}</a></div>"
        )
    content, after = _content(corpus, article, base)
    likes = max(article.likes, 0)
    if article.plain_furniture:
        actions = f"<p>赞赏 收藏<span>已收藏</span>{article.collects or ''} 点赞<span>已赞</span>{likes or ''}</p>"
        more = "<p>更多精彩内容，请关注人人都是产品经理微信公众号或下载App</p>"
    else:
        actions = (
            f'<div class="article--postmeta"><div class="support-author rewards-wrapper"><a class="reward-btn">赞赏</a></div>'
            f'<div class="article--actions"><a class="collect">收藏<span class="done">已收藏</span>{article.collects}</a> '
            f'<a class="like">点赞<span class="done">已赞</span>{likes}</a></div></div>'
        )
        more = '<div class="article--app"><p>更多精彩内容，请关注人人都是产品经理微信公众号或下载App</p></div>'
    tags = "".join(f'<a href="{base}/tag/{corpus.tag_slug(t)}" rel="tag">{_e(t)}</a>' for t in article.tags)
    cover = _cover(article) or ""
    weibo = (
        "https://service.weibo.com/share/share.php?appkey=2775287854"
        f"&title={quote(article.title)}&url={quote(url, safe=':/')}&pic={quote(cover, safe=':/')}"
    )
    return f"""<div class="article--wrapper">
<div class="article--header">
<h2 class="article--title">{_e(article.title)}</h2>
<div class="article--authorInfo">
  <a class="author-avatar" href="{author_url}" target="_blank"><img src="{_e(author.avatar)}" alt=""></a>
  <a class="ui-captionStrong" href="{author_url}" target="_blank">{_e(author.name)}</a>{badges}
  <span class="follow-btn">关注</span>
</div>
<div class="meta--sup"><time>{article.published:%Y-%m-%d}</time>
<div class="meta--sup__right">{article.comments} 评论 {article.views} 浏览 {article.collects} 收藏 {article.read_minutes} 分钟</div></div>
{promo}
</div>
{content}
{after}
{actions}
{more}
<div class="taglist">{tags}</div>
<div class="article--share"><a class="share-weibo" href="{_e(weibo)}" target="_blank">分享到微博</a>
<div class="share-wechat"><p>微信扫一扫</p><img src="https://api.pwmqr.com/qrcode/create/?url={_e(url)}" alt="微信二维码"></div>
<span class="share-label">分享</span></div>
</div>"""


def _outside(corpus: Corpus, article: Article, base: str) -> str:
    """What surrounds the wrapper: author card, related posts, 专题, comments."""
    author = article.author
    related = _others(corpus, {article.index}, 4, "related", article.index)
    rng = _rng(corpus, "comments", article.index)
    comments = "".join(
        f'<li class="comment"><span class="comment-author">{_e(rng.choice(vocab.PERSON_NAMES))}</span>'
        f"<p>{_e(rng.choice(vocab.OUTCOMES))}，{_e(rng.choice(vocab.CONNECTORS))}值得一试。</p></li>"
        for _ in range(min(article.comments, 5))
    )
    related_html = "".join(
        f'<li><a href="{base}{corpus.path(i)}" target="_blank">{_e(corpus.title(i))}</a></li>' for i in related
    )
    return f"""<div class="author-card">
  <img src="{_e(author.avatar)}" alt="">
  <div class="authorCard--title"><a href="{base}/u/{author.id}" target="_blank">{_e(author.name)}</a></div>
  <p class="authorCard--bio">{_e(author.bio)}</p>
</div>
{_ad("article-bottom")}
<div class="relate-post"><h3>相关推荐</h3><ul>{related_html}</ul></div>
<div class="special-card"><a href="{base}/special/ai-product" target="_blank"><h4>专题：AI产品经理成长路线</h4></a></div>
<div class="comments" id="comments"><h3>{article.comments} 条评论</h3><ul class="comment-list">{comments}</ul></div>"""


def article_wrapper_v2(corpus: Corpus, article: Article, base: str) -> str:
    """A plausible redesign (``--layout v2``): the same article, every class renamed, the meta block
    (author, date, counts) moved under the body, tags as a list of ``#name`` chips."""
    author = article.author
    author_url = f"{base}/u/{author.id}"
    content, after = _content(corpus, article, base, '<section class="post-detail__body rich-text">', "</section>")
    tags = "".join(
        f'<li class="post-tag"><a href="{base}/tag/{corpus.tag_slug(t)}">#{_e(t)}</a></li>' for t in article.tags
    )
    return f"""<article class="post-detail">
<header class="post-detail__header"><h1 class="post-detail__title">{_e(article.title)}</h1></header>
{content}
{after}
<footer class="post-detail__meta">
  <a class="post-detail__author" href="{author_url}" target="_blank"><img src="{_e(author.avatar)}" alt="">{_e(author.name)}</a>
  <span class="post-detail__date" data-time="{article.published:%Y-%m-%d}">{article.published:%Y年%m月%d日}</span>
  <span class="post-detail__counts">{article.comments} 评论 · {article.views} 浏览 · {article.collects} 收藏 · {article.read_minutes} 分钟</span>
</footer>
<ul class="post-tags">{tags}</ul>
</article>"""


ARTICLE_LAYOUTS = {"current": article_wrapper, "v2": article_wrapper_v2}
_CLASS_ATTR_RE = re.compile(r'class="([^"]*)"')
_OG_TITLE_RE = re.compile(r'<meta property="og:title"[^>]*>\n?')


def random_redesign(html: str, seed: object) -> str:
    """The page in a redesign nobody wrote by hand (``--layout random:SEED``): seeded, the same for
    every page of a seed. A share of the class names (50–100%, drawn from the seed) renamed to random
    ones, the ``<div>``s made ``<section>``s or not, the ``og:title`` meta dropped or not; the text,
    the ``<title>`` and the links stay."""
    rng = random.Random(f"redesign:{seed}")
    renamed_share = rng.uniform(0.5, 1.0)
    sections, drop_og_title = rng.random() < 0.5, rng.random() < 0.5

    def rename(token: str) -> str:
        draw = random.Random(f"redesign:{seed}:{token}")
        if draw.random() >= renamed_share:
            return token
        return "".join(draw.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(draw.randint(2, 6))) + (
            f"-{draw.randrange(1000)}")

    head, end, body = html.partition("</head>")
    body = _CLASS_ATTR_RE.sub(lambda m: 'class="' + " ".join(map(rename, m.group(1).split())) + '"', body)
    if sections:
        body = re.sub(r"<(/?)div\b", r"<\1section", body)
    if drop_og_title:
        head = _OG_TITLE_RE.sub("", head)
    return head + end + body


def render_article(corpus: Corpus, base: str, article: Article, layout: str = "current") -> str:
    body = f"""{_ad("article-top")}
<div class="container article-page">
<div class="article-main">
{ARTICLE_LAYOUTS[layout](corpus, article, base)}
{_outside(corpus, article, base)}
</div>
{_sidebar(corpus, base, {article.index}, "article", article.index)}
</div>"""
    return _layout(corpus, base, f"{article.title} | {SITE_NAME}", body, _head(article, base), "single")


def render_js_shell(corpus: Corpus, base: str, article: Article) -> str:
    """The article as a client-rendered shell: only a browser running the script sees the wrapper."""
    state = {"article": {"id": article.id, "title": article.title, "html": article_wrapper(corpus, article, base)}}
    # "</" would end the script element early; JSON allows "\/" in its place.
    data = json.dumps(state, ensure_ascii=False).replace("</", "<\\/")
    body = f"""<div class="container article-page"><div id="app"></div></div>
<script type="application/json" id="__INITIAL_STATE__">{data}</script>
<script>
(function () {{
  var state = JSON.parse(document.getElementById('__INITIAL_STATE__').textContent);
  document.getElementById('app').innerHTML = state.article.html;
  try {{ fetch('/__replica__/beacon?kind=shell&id=' + state.article.id); }} catch (e) {{}}
}})();
</script>"""
    return _layout(corpus, base, f"{article.title} | {SITE_NAME}", body, _head(article, base), "single")


def render_interstitial(token: str, host: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en-US"><head><meta charset="UTF-8"><title>Just a moment...</title>
<meta name="robots" content="noindex,nofollow"></head>
<body><div class="main-wrapper"><h1>{_e(host)}</h1>
<div id="challenge-running">Checking if the site connection is secure</div>
<noscript>Enable JavaScript and cookies to continue</noscript></div>
<script>
setTimeout(function () {{
  document.cookie = "cf_clearance={token}; path=/; max-age=3600";
  location.reload();
}}, 200);
</script></body></html>
"""


def render_not_found(corpus: Corpus, base: str) -> str:
    body = '<div class="container not-found"><h1>404</h1><p>抱歉，您访问的页面不存在</p></div>'
    return _layout(corpus, base, f"页面未找到 | {SITE_NAME}", body, body_class="error404")


# ---------------------------------------------------------------------------------------------
# feeds, API, robots


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _rfc822(when: datetime) -> str:
    return format_datetime(when)


def render_feed(corpus: Corpus, base: str, category: str | None, paged: int) -> str | None:
    """RSS 2.0, 15 items a page, partner reposts left out (as on the real site)."""
    indices = corpus.listing(f"feed:{category or 'all'}")
    if category and not corpus.listing(f"category:{category}"):
        return None
    pages = max(1, -(-len(indices) // FEED_PAGE_SIZE))
    if paged < 1 or paged > pages:
        return None
    items = []
    for index in indices[(paged - 1) * FEED_PAGE_SIZE : paged * FEED_PAGE_SIZE]:
        article = corpus.article(index)
        url = f"{base}{article.path()}"
        categories = [site.category_name(c) or c for c in article.header.listed] + list(article.tags)
        cats = "".join(f"<category>{_cdata(c)}</category>" for c in categories)
        items.append(f"""<item>
<title>{escape(article.title, quote=False)}</title>
<link>{url}</link>
<comments>{url}#comments</comments>
<dc:creator>{_cdata(article.author.name)}</dc:creator>
<pubDate>{_rfc822(article.published)}</pubDate>
{cats}
<guid isPermaLink="false">{base}/?p={article.id}</guid>
<description>{_cdata(_excerpt(article, 120))}</description>
<content:encoded>{_cdata(body_html(article.blocks))}</content:encoded>
<wfw:commentRss>{url}/feed</wfw:commentRss>
<slash:comments>{article.comments}</slash:comments>
</item>""")
    self_url = f"{base}/category/{category}/feed" if category else f"{base}/feed"
    last = corpus.article(indices[0]).published if indices else None
    title = f"{SITE_NAME} » {site.category_name(category) or category}" if category else SITE_NAME
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:wfw="http://wellformedweb.org/CommentAPI/" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/" xmlns:slash="http://purl.org/rss/1.0/modules/slash/">
<channel>
<title>{escape(title, quote=False)}</title>
<atom:link href="{self_url}" rel="self" type="application/rss+xml" />
<link>{base}</link>
<description>产品经理、产品爱好者学习交流平台</description>
<lastBuildDate>{_rfc822(last) if last else ""}</lastBuildDate>
<language>zh-CN</language>
<sy:updatePeriod>hourly</sy:updatePeriod>
<sy:updateFrequency>1</sy:updateFrequency>
{"".join(items)}
</channel>
</rss>
"""


POPULAR_WINDOWS = {"daily": 30, "weekly": 100, "monthly": 300}
API_ERROR = {"RESULT": {}, "CODE": 500, "MESSAGE": "服务器异常,稍后再试"}


def render_popular(corpus: Corpus, window: str) -> str:
    """``/api2/app/article/popular/<window>``: top 10 by views of the newest articles."""
    if window not in POPULAR_WINDOWS:
        return json.dumps(API_ERROR, ensure_ascii=False)
    recent = list(corpus.newest_first()[: POPULAR_WINDOWS[window]])
    top = sorted(recent, key=lambda i: (-corpus.header(i).views, i))[:10]
    result = []
    for index in top:
        article = corpus.article(index)
        result.append(
            {
                "data": {
                    "id": article.id,
                    "type": 1,
                    "articleTitle": article.title,
                    "articleSummary": _excerpt(article, 120),
                    "articleAuthor": article.author.name,
                    "imageUrl": _cover(article) or DEFAULT_THUMB,
                    "publishTime": int(article.published.timestamp() * 1000),
                },
                "scores": round(article.views / 100.0, 2),
            }
        )
    return json.dumps({"CODE": 200, "MESSAGE": "", "RESULT": result}, ensure_ascii=False)


ROBOTS_TXT = """User-agent: *
Disallow: /wp-admin/
Disallow: /api2/
Disallow: /__replica__/
Allow: /wp-admin/admin-ajax.php
"""


# -- hostile and malformed article pages (server faults ``unsafe``, ``embed``, ``deep``…) -------------
# Each one changes a rendered article page the way an attacker or a broken editor would, adding no
# text but what ``HOSTILE_TEXT`` names (the paragraphs a parser must keep), so that the article's
# manifest record stays what the model says, with these exceptions: ``HOSTILE_TEXT`` opens the body
# text; ``unsafe`` gives the author link a ``javascript:`` URL (the item's ``author.url`` is then
# null); ``baddate`` shows an impossible date and no ``article:published_time`` (``published`` null);
# ``scripttext`` and ``formula`` show other fields (HOSTILE_FIELDS).
HOSTILE_KINDS = ("unsafe", "embed", "deep", "toodeep", "baddate", "scripttext", "formula", "hugefields", "bidi")
DEEP_LEVELS = {"deep": 1000, "toodeep": 3000}  # libxml2 stops at 2048 levels even with huge_tree
HOSTILE_TEXT = {
    "unsafe": "甲乙丙丁戊己庚辛壬",
    "embed": "嵌入之前\n\n嵌入之后\n\n对象之后\n\n未闭合对象之后",
    "deep": "深处的段落\n\n深处之后的段落",
    "toodeep": "深处的段落\n\n深处之后的段落",
    "baddate": "",
    "formula": "",
    "hugefields": "",
    # As a reader sees it: the controls gone, the joiners inside the emoji and the Persian word kept.
    "bidi": "正文反转与 👨\u200d👩\u200d👧 家庭表情，ZWSP 和 می\u200cخواهم",
    "scripttext": (
        '<script>alert("body")</script> 和 <img src=x onerror=alert(5)>\n\n'
        '<a href="javascript:alert(6)">链接</a> [点我](javascript:alert(7)) \\[x](javascript:alert(8)) [^1]\n\n'
        "[y]: javascript:alert(9)\n\n"
        "<script>alert(10)</script> &lt;b&gt; <javascript:alert(11)> {% raw %}{{ 12 }}{% endraw %} {{ 13 }}\n\n"
        '{#x" onclick="alert(14)} 标题\n\n'
        "a|b </td><script>alert(15)</script>\n\n"
        "===\n\n"
        "第一行\n第二行"
    ),
}
# ``scripttext`` also shows these as the title, the author's name and tags: text that looks like HTML,
# Markdown and template syntax, as a page about front-end work (or a compromised editor) would.
SCRIPT_TITLE = '<script>alert("title")</script>"><img src=x onerror=alert(1)> {% raw %}{{ 2 }} [t](javascript:alert(3)) &amp; AT&T'
SCRIPT_AUTHOR = '<img src=x onerror=alert("author")>'
SCRIPT_TAGS = ('<script>alert("tag")</script>', '"><svg onload=alert(4)>')
# ``formula``: fields a spreadsheet would compute (a formula, a DDE call), the author also the credit.
FORMULA_FIELDS = {
    "title": '=HYPERLINK("http://evil.example","点我")',
    "author": "=cmd|' /C calc'!A0",
    "tags": ("+1+1", "-2+3", "@SUM(1+1)"),
    "summary": "=1+1 开头的摘要",
}
# ``hugefields``: a 1 MB title and 20,000 tags (as a broken or hostile CMS could serve them).
HUGE_FIELDS = {
    "title": "LongTitle-" * 100_000,
    "author": "作者" * 200,
    "tags": tuple(f"标签{n}" for n in range(20_000)) + ("长" * 80,),
}
# ``bidi``: bidirectional controls (an override that shows text reversed, isolates, marks) and
# zero-width characters in the title, author and tags, next to joiners that are content.
BIDI_FIELDS = {
    "title": "产品\u202e经理\u202c的\u200b一天\u2066x\u2069\ufeff\u200e 👩\u200d💻",
    "author": "A\u200dli\u2060ce\u200f\u061c",
    "tags": ("\u202e用户体验\u202c", "数据\u200b分析", "\u2067AI\u2069"),
}
# The fields a kind replaces: title, author (name; the credit of the copyright line too), tags, summary.
HOSTILE_FIELDS = {
    "scripttext": {"title": SCRIPT_TITLE, "author": SCRIPT_AUTHOR, "tags": SCRIPT_TAGS},
    "formula": FORMULA_FIELDS,
    "hugefields": HUGE_FIELDS,
    "bidi": BIDI_FIELDS,
}
IMPOSSIBLE_DATE = "2021-02-30"


def _hostile_block(kind: str, levels: int = 0) -> str:
    if kind == "unsafe":
        return (
            '<!--[if IE]><script>alert("ie")</script><![endif]--><script>alert("script")</script>'
            '<style>p{background:url("javascript:alert(1)")}</style>'
            '<p onclick="alert(1)" onmouseover="alert(2)" style="color:red">甲<a href="JavaScript:alert(3)">乙</a>丙'
            '<a href=" javascript:alert(4)">丁</a><a href="&#106;avascript:alert(5)">戊</a>'
            '<a href="VBScript:msgbox(6)">己</a><a href="DATA:text/html;base64,PHNjcmlwdD5hbGVydCg3KTwvc2NyaXB0Pg==">庚</a>'
            '<a href="/pd/1.html" onclick="alert(8)">辛</a><a href="&#9;java&#10;script:alert(9)">壬</a>'
            '<img src="JAVASCRIPT:alert(10)" alt="坏图一" onerror="alert(11)">'
            '<img src="DATA:image/svg+xml;base64,PHN2Zz48L3N2Zz4=" alt="坏图二"></p>'
            '<iframe src="javascript:alert(12)"></iframe>'
            '<form action="javascript:alert(13)"><input type="text" value="x"></form>'
        )
    if kind == "embed":
        return (
            '<p>嵌入之前</p><embed src="https://v.example.com/a.swf" type="application/x-shockwave-flash">'
            '<p>嵌入之后</p><object data="https://v.example.com/b.swf"><param name="movie" value="b.swf"></object>'
            '<p>对象之后</p><object data="https://v.example.com/c.swf"><param name="movie" value="c.swf">'
            "<p>未闭合对象之后</p>"
        )
    if kind in DEEP_LEVELS:
        half = (levels or DEEP_LEVELS[kind]) // 2
        return "<div><span>" * half + "<p>深处的段落</p>" + "</span></div>" * half + "<p>深处之后的段落</p>"
    if kind == "bidi":
        return ("<p>正文\u202e反转\u202c与 👨\u200d👩\u200d👧 家庭\u2060表情，\ufeffZW\u200bSP 和 "
                "می\u200cخواهم\u200f</p>")
    if kind == "scripttext":
        return (
            "<p>&lt;script&gt;alert(\"body\")&lt;/script&gt; 和 &lt;img src=x onerror=alert(5)&gt;</p>"
            '<p>&lt;a href="javascript:alert(6)"&gt;链接&lt;/a&gt; [点我](javascript:alert(7)) '
            "\\[x](javascript:alert(8)) [^1]</p>"
            "<p>[y]: javascript:alert(9)</p>"
            "<p>&lt;<span>script</span>&gt;alert(10)&lt;/<span>script</span>&gt; &amp;lt;b&amp;gt; "
            "&lt;javascript:alert(11)&gt; {% raw %}{{ 12 }}{% endraw %} {<span>{</span> 13 }}</p>"
            '<h3>{#x" onclick="alert(14)} 标题</h3>'
            "<table><tr><td>a|b</td><td>&lt;/td&gt;&lt;script&gt;alert(15)&lt;/script&gt;</td></tr></table>"
            "<p>===</p>"
            "<p>第一行<br>第二行</p>"
        )
    return ""


def with_fields(article: Article, fields: dict) -> Article:
    """A copy of ``article`` showing other ``title``, ``author`` (name), ``tags`` or ``summary``."""
    changes: dict = {key: fields[key] for key in ("title", "summary") if key in fields}
    if "author" in fields:
        name = fields["author"]
        changes["author"] = dataclasses.replace(article.author, name=name)
        if article.credit == article.author.name and article.copyright_line:
            changes["credit"] = name
            changes["copyright_line"] = article.copyright_line.replace(f"@{article.author.name}", f"@{name}")
    if "tags" in fields:
        changes["header"] = dataclasses.replace(article.header, tags=tuple(fields["tags"]))
    return dataclasses.replace(article, **changes)


def render_hostile(corpus: Corpus, base: str, article: Article, kind: str, levels: int = 0) -> str:
    """The article page with the hostile change ``kind`` (``levels``: how deep ``deep`` nests)."""
    if kind in HOSTILE_FIELDS:
        article = with_fields(article, HOSTILE_FIELDS[kind])
    text = render_article(corpus, base, article)
    if kind == "baddate":
        text = re.sub(r'<meta property="article:published_time"[^>]*>\n?', "", text)
        return re.sub(r"<time>[^<]*</time>", f"<time>{IMPOSSIBLE_DATE}</time>", text, count=1)
    if kind == "unsafe":
        text = text.replace(
            f'<a class="ui-captionStrong" href="{base}/u/{article.author.id}"',
            '<a class="ui-captionStrong" href=" JavaScript:alert(document.cookie)"',
        )
    # Right after the summary (or the opening of the content): the body's first paragraphs.
    opening = '<div class="article--content grap">\n'
    at = text.index(opening) + len(opening)
    if article.summary is not None:
        at = text.index("</blockquote>", at) + len("</blockquote>")
    return text[:at] + _hostile_block(kind, levels) + text[at:]
