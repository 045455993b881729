"""Request meta keys shared by the spiders and the downloader middlewares, and the one way a
response becomes a parsed page.

Spiders say what a request fetches (``meta[META_KIND]``: ``ARTICLE_KIND`` or ``LISTING_KIND``); the
render middleware (``woshipm_crawler.render.middleware``) then parses the response once
(``parse_response``), and hands the spider both the parsed page (``response_page`` takes it, or
parses a response the middleware did not look at) and, for a page the browser could not (or was
not allowed to) fix, the reason (``render_failure``).
"""

from __future__ import annotations

from typing import Any

from woshipm_crawler.parse.page import Page, parse_page

META_KIND = "woshipm_kind"
ARTICLE_KIND = "article"
LISTING_KIND = "listing"
META_RENDERED = "woshipm_rendered"  # True on a request the middleware sent to the browser
META_RENDER_REASON = "woshipm_render_reason"  # why it was sent: "js_shell", "interstitial", "always"
# Set when the response handed to the spider (or the failed request an errback sees) still lacks
# its content: "js_shell", "interstitial", "render_no_content", "render_error".
META_RENDER_FAILURE = "woshipm_render_failure"
META_PAGE = "woshipm_page"  # the parse.page.Page the middleware made of the response
META_FETCHED_AT = "woshipm_fetched_at"  # the archive's WARC-Date of the response: the item's fetch time
META_REVISIT = "woshipm_revisit"  # True on a scheduled revisit of a stored article


def render_failure(response_or_request: Any) -> str | None:
    """Failure reason for a callback or errback: the page still lacks its content because of this."""
    return response_or_request.meta.get(META_RENDER_FAILURE)


def take_page(response: Any):
    """The response's parsed page (``parse.page.Page``) if the middleware made one, else None.

    Taken out of the meta, so the tree does not outlive the callback.
    """
    return response.meta.pop(META_PAGE, None)


def parse_response(response: Any) -> Page:
    """The response's body parsed, its charset read from the Content-Type header (not Scrapy's guess)."""
    return parse_page(response.body, content_type=response.headers.get("Content-Type"))


def response_page(response: Any) -> Page:
    """The page a callback reads: the one the middleware made (``take_page``), else parsed now."""
    return take_page(response) or parse_response(response)
