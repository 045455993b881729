"""The Article item: one definition of the keys every output (JSONL, Markdown, state, manifest) shares.

Field meanings (the replica's manifest uses the same keys, computed from its own model):

id            int, the WordPress post id
url           canonical article URL on the crawled base: ``<base>/<category>/<id>.html``
category      slug from the URL (may differ from the listing that showed the card)
category_name Chinese name of ``category`` from seeds/categories.txt, None when unknown
title         ``h2.article--title`` as shown (no bidirectional or zero-width controls), at most 500
              characters (``parse.article.MAX_TITLE_CHARS``: a longer one is cut, with a warning)
author        {"name": str (at most 100 characters), "id": int | None, "url": str | None}; every URL of an
              item (``url``, ``author.url``, ``cover_image``, ``images``, links in the bodies) is http(s)
              or null (``site.safe_url``)
published     always "YYYY-MM-DDTHH:MM:SS+08:00" (Beijing time, the site's clock); a page that shows
              only the date gives 00:00:00 of that day (see published_time_known)
published_time_known  bool: True when the page gave the time of day, False when ``published`` is the
              date at 00:00 (so it loads as one timestamp type; filter on this before using the hour)
summary       first blockquote of the body without the ``编辑导语：`` prefix; None when absent
tags          [tag display names], page order, at most 50 of at most 50 characters
stats         {"views": int, "comments": int, "collects": int}, the latest the page showed
stats_observed_at  UTC time of the fetch that showed ``stats``, "YYYY-MM-DDTHH:MM:SSZ": compare like with
              like (every fetch is an observation: ``scrapy export``'s article_stats.parquet has them all)
read_minutes  int | None
cover_image   URL of the first image of the body (the cover), None when there is none
images        [absolute real URLs of every body image, cover included], document order, no repeats
source        {"type": "original"|"authorized"|"partner"|"translated"|"unknown", "credit": str | None}
body_html     the body with all page furniture removed, inline styles and empty wrappers dropped
body_text     plain text of the body (see woshipm_crawler.textmodel.html_to_text), paragraphs split by "\\n\\n"
word_count    woshipm_crawler.textmodel.word_count(body_text)
listings      ["category:pd", "tag:ue", ...] listings (kind:slug as in the URL) the article was seen
              in, sorted; the manifest lists every listing of the replica that shows it
crawled_at    UTC time of the fetch of this version's page, "YYYY-MM-DDTHH:MM:SSZ"
removed_at    UTC time a revisit found the article gone from the site (404, 410, a redirect away), or
              None; the article is kept as last seen, and the mark cleared when it comes back
content_hash  woshipm_crawler.textmodel.content_hash(body_text)
body_markdown the body as CommonMark (woshipm_crawler.markdown)
duplicate_of  for a near-duplicate body: id of the group's earliest-published article (ties: lowest
              id), on every other member of the group; else None
"""

from __future__ import annotations

import scrapy
from itemadapter import ItemAdapter

from woshipm_crawler.util import dumps

ARTICLE_FIELDS = (
    "id",
    "url",
    "category",
    "category_name",
    "title",
    "author",
    "published",
    "published_time_known",
    "summary",
    "tags",
    "stats",
    "stats_observed_at",
    "read_minutes",
    "cover_image",
    "images",
    "source",
    "body_html",
    "body_text",
    "word_count",
    "listings",
    "crawled_at",
    "removed_at",
    "content_hash",
    "body_markdown",
    "duplicate_of",
)

# Fields an item must have non-empty to be written at all (a page without them is a failure).
REQUIRED_FIELDS = ("id", "url", "title", "body_html", "body_text")

# Fields of the replica's manifest: every fact of the page, none of the crawl's or our renderings.
MANIFEST_FIELDS = tuple(
    f for f in ARTICLE_FIELDS
    if f not in ("body_html", "crawled_at", "body_markdown", "stats_observed_at", "removed_at")
)

ArticleItem = type("ArticleItem", (scrapy.Item,), {name: scrapy.Field() for name in ARTICLE_FIELDS})
ArticleItem.__doc__ = "One woshipm article; the keys are ARTICLE_FIELDS, described in this module's docstring."


def field_present(value) -> bool:
    """Whether a field has a value (what field coverage counts): not None, "", [] or {}."""
    return value not in (None, "", [], {})


def item_json(item) -> str:
    """One JSONL line: keys in ARTICLE_FIELDS order, UTF-8 text as is (no \\u escapes)."""
    data = ItemAdapter(item).asdict()
    ordered = {key: data[key] for key in ARTICLE_FIELDS if key in data}
    return dumps(ordered)
