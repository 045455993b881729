"""PLAYWRIGHT_ABORT_REQUEST: what the browser never fetches while it renders a page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

ABORTED_RESOURCE_TYPES = frozenset({"image", "font", "media"})


def _site_domain(host: str) -> str:
    return host[4:] if host.startswith("www.") else host


def abort_request(request: Any) -> bool:
    """Drop images, fonts, media and anything not from the crawled site.

    "The crawled site" is the host of the page being rendered (its main frame), or a subdomain of
    it without ``www.``, so static.woshipm.com scripts still load for www.woshipm.com pages.
    Main-frame navigations are always allowed: they are the page itself and the check's reload.
    """
    if request.resource_type in ABORTED_RESOURCE_TYPES:
        return True
    url = urlsplit(request.url)
    if url.scheme in ("data", "blob"):
        return False
    try:
        frame = request.frame
        if request.is_navigation_request() and frame.parent_frame is None:
            return False
        page_host = urlsplit(frame.page.main_frame.url).hostname
    except Exception:  # service-worker requests have no frame; nothing on our pages needs them
        return True
    if not page_host:  # about:blank before the first commit: nothing to compare with yet
        return False
    host = url.hostname or ""
    domain = _site_domain(page_host)
    return not (host == page_host or host == domain or host.endswith("." + domain))
