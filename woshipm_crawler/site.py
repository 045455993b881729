"""Everything the crawler knows about woshipm.com's URLs, in one place.

Every URL is built from a base URL (setting ``WOSHIPM_BASE_URL``), so the same code crawls the
real site or the offline replica. See ``docs/site-model.md`` §1–§2 for the evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

DEFAULT_BASE_URL = "https://www.woshipm.com"

# /<category-slug>/<numeric id>.html — the only shape of an article URL.
# A category slug as the site writes it, and as the library can file it (a folder name).
CATEGORY_SLUG = r"[a-z][a-z0-9-]{0,63}"
ARTICLE_PATH_RE = re.compile(rf"/({CATEGORY_SLUG})/(\d+)\.html$")
AUTHOR_PATH_RE = re.compile(r"/u/(\d+)/?$")
TAG_PATH_RE = re.compile(r"/tag/([^/?#]+)")
LISTING_PAGE_RE = re.compile(r"/page/(\d{1,9})/?$")
# Article ids are WordPress post ids; the state stores them as SQLite integers (signed 64-bit).
MAX_ARTICLE_ID = (1 << 63) - 1


class BadId(ValueError):
    """An article id that is not an integer in 1..MAX_ARTICLE_ID: refused before it reaches the state."""


def article_id_of(value: Any) -> int:
    """``value`` if it is an article id (the one check: cards, URLs, items, library paths), else ``BadId``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadId(f"article id {value!r} is not an integer")
    if not 0 < value <= MAX_ARTICLE_ID:
        raise BadId(f"article id {value!r} is outside 1..{MAX_ARTICLE_ID} (an SQLite INTEGER)")
    return value

# Listing-only categories: 讲座沙龙 lists events, not articles.
EVENT_CATEGORIES = frozenset({"active"})

CARDS_PER_LISTING_PAGE = 12

# The site's clock: every date it shows is Beijing time.
SITE_TZ = timezone(timedelta(hours=8))


def published_value(when: date | datetime) -> tuple[str, bool]:
    """(``published``, ``published_time_known``) of items.py: always ``YYYY-MM-DDTHH:MM:SS+08:00``.

    A bare date (the page shows no time) becomes 00:00 Beijing time with ``False``; a naive time is
    taken as Beijing time, an aware one converted to it.
    """
    if not isinstance(when, datetime):
        return datetime(when.year, when.month, when.day, tzinfo=SITE_TZ).isoformat(timespec="seconds"), False
    when = when.replace(tzinfo=SITE_TZ) if when.tzinfo is None else when.astimezone(SITE_TZ)
    return when.isoformat(timespec="seconds"), True


def published_time(value: object) -> datetime | None:
    """The one reading of a ``published`` value: a Beijing-time datetime, or None when there is none
    or it is impossible. "YYYY-MM-DD" is 00:00 Beijing time, a naive time is Beijing time, an aware
    one (or "Z") is converted to it; a date or datetime is taken the same way."""
    when = value
    if isinstance(value, str):
        try:
            when = (date.fromisoformat(value) if len(value) == 10
                    else datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    if not isinstance(when, date):
        return None
    if not isinstance(when, datetime):
        return datetime(when.year, when.month, when.day, tzinfo=SITE_TZ)
    return when.replace(tzinfo=SITE_TZ) if when.tzinfo is None else when.astimezone(SITE_TZ)


def _seed_lines(name: str) -> list[list[str]]:
    """Tab-separated rows of a seed list shipped inside the package (works from an egg too)."""
    text = resources.files("woshipm_crawler").joinpath("seeds").joinpath(name).read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines() if line.strip() and not line.startswith("#")]


@cache
def categories() -> dict[str, str]:
    """Category slug -> Chinese name, in the site's menu order."""
    return {row[0]: row[1] for row in _seed_lines("categories.txt")}


def crawlable_categories() -> list[str]:
    """What ``-a category=all`` walks: every article category."""
    return [slug for slug in categories() if slug not in EVENT_CATEGORIES]


@cache
def _tag_table() -> tuple[dict[str, str], dict[str, str]]:
    by_name: dict[str, str] = {}
    by_slug: dict[str, str] = {}
    for row in _seed_lines("tags.txt"):
        name, slug = row[0], row[1]
        by_name.setdefault(name, slug)
        by_slug.setdefault(slug, name)
    return by_name, by_slug


def category_name(slug: str) -> str | None:
    return categories().get(slug)


def tag_slug(name_or_slug: str) -> str:
    """The URL slug of a tag given by name (用户体验), alias (ue) or slug (%e5%88%9d%e7%ba%a7).

    Known tags use the site's own slug (aliases included); an unknown name is slugged the way
    WordPress does it: lower-case, spaces to hyphens, percent-encoded UTF-8 in lower case.
    """
    by_name, by_slug = _tag_table()
    text = name_or_slug.strip()
    if text in by_name:
        return by_name[text]
    lowered = text.lower()
    if lowered in by_slug:
        return lowered
    decoded = unquote(text)
    if decoded in by_name:
        return by_name[decoded]
    return quote(re.sub(r"\s+", "-", decoded.strip()).lower(), safe="-").lower()


def tag_name(slug: str) -> str | None:
    """The display name of a known tag slug, or None."""
    return _tag_table()[1].get(slug.lower())


def known_tags() -> dict[str, str]:
    """Tag name -> slug for every tag in ``seeds/tags.txt``."""
    return dict(_tag_table()[0])


@dataclass(frozen=True)
class Site:
    """URL builders for one base URL (the real site or a replica)."""

    base_url: str = DEFAULT_BASE_URL

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    def url(self, path: str) -> str:
        return urljoin(self.base_url + "/", path.lstrip("/"))

    def category_url(self, slug: str, page: int = 1) -> str:
        return self.url(f"/category/{slug}" + (f"/page/{page}" if page > 1 else ""))

    def tag_url(self, slug: str, page: int = 1) -> str:
        return self.url(f"/tag/{slug}" + (f"/page/{page}" if page > 1 else ""))

    def article_url(self, category: str, article_id: int) -> str:
        return self.url(f"/{category}/{article_id}.html")

    def author_url(self, author_id: int | str) -> str:
        return self.url(f"/u/{author_id}")

    def owns(self, url: str) -> bool:
        """Whether ``url`` is on this site: same host (``www.`` or not) and port as the base URL."""
        there, here = urlsplit(url), urlsplit(self.base_url)
        return site_key(url) == site_key(self.base_url) and _port(there) == _port(here)

    def redirect_failure(self, url: str, article_id: int) -> str | None:
        """Why an article answered from ``url`` cannot be stored under ``article_id``, or None.

        A response that ended off the site, or under another article's id, is not this article:
        storing it would put foreign content under its id (or take another's), so it is a failure.
        """
        if not self.owns(url):
            return "redirected_off_site"
        ref = article_ref(url)
        if ref is None or ref[1] != article_id:
            return "redirected_to_other_page"
        return None

    def canonical(self, url: str) -> str:
        """The article URL on this base: scheme/host of the base, no query or fragment.

        Article links on the page may name the other host (``woshipm.com`` vs ``www``) or carry
        tracking queries; one article has exactly one canonical URL.
        """
        parsed = article_ref(url)
        if parsed is None:
            return url
        return self.article_url(*parsed)


def site_key(base_url: str) -> str:
    """What makes two base URLs the same site for the state: the host, without ``www.`` (the bare
    host serves the same site) and without the port (a replica on another free port is the same
    replica)."""
    host = (urlsplit(base_url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


def _port(parts) -> int | None:
    try:
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:  # a port that is not a number
        return None


# What a browser strips from a URL before reading its scheme (WHATWG URL: C0 controls and space at
# the ends, tab and newline anywhere): ``" java\tscript:"`` is a javascript: URL.
_URL_EDGE_CHARS = "".join(map(chr, range(0x21)))
_URL_TAB_NEWLINE_RE = re.compile(r"[\t\n\r]")
SAFE_SCHEMES = ("http", "https")


def safe_url(url: str | None, base: str | None = None) -> str | None:
    """``url`` as an absolute http(s) URL (resolved against ``base``), or None for anything else.

    The one rule for every URL an output carries (links, images, the item's URL fields): a
    ``javascript:``, ``vbscript:``, ``data:``… URL in any case, with white space or control characters
    before it, is None; so is a relative URL without a base, or one that does not parse.
    """
    if not url:
        return None
    url = _URL_TAB_NEWLINE_RE.sub("", url).strip(_URL_EDGE_CHARS)
    if not url.startswith(("https://", "http://")) or "/." in url:  # most URLs are absolute already
        if url.startswith("//"):
            url = "https:" + url if base is None else urljoin(base, url)
        elif base is not None:
            url = urljoin(base, url)
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a malformed IPv6 host
        return None
    if parts.scheme not in SAFE_SCHEMES or not parts.netloc:
        return None
    return parts.scheme + url[len(parts.scheme):]  # urlsplit lower-cases the scheme: so does the URL


def article_ref(url: str) -> tuple[str, int] | None:
    """(category slug, id) of an article URL, or None when the URL is not an article (not http(s),
    not an article path, or an id that is not a positive integer fitting SQLite)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in (*SAFE_SCHEMES, ""):
        return None
    match = ARTICLE_PATH_RE.search(parts.path)
    if not match or len(match.group(2)) > 19:
        return None
    try:
        return match.group(1), article_id_of(int(match.group(2)))
    except BadId:
        return None


def listing_page_number(url: str) -> int:
    """The page number of a listing URL (``/page/N``); 1 for a listing's first page."""
    match = LISTING_PAGE_RE.search(urlsplit(url).path)
    return int(match.group(1)) if match else 1


def author_id(url: str) -> int | None:
    match = AUTHOR_PATH_RE.search(urlsplit(url).path)
    return int(match.group(1)) if match else None


def tag_slug_from_url(url: str) -> str | None:
    match = TAG_PATH_RE.search(urlsplit(url).path)
    return match.group(1).lower() if match else None
