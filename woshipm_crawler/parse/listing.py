"""Cards of a listing page's 最新 list (site-model §3): pure functions over (html, url).

Category and tag pages carry both tabs in the HTML, each in a Vue ``<template>``: the 最新 list is
``<template v-if="homeTab == 'latest'">``; the home page swaps the markers (``'all'`` is 最新). Two
``.category-card`` decoys, the 推荐 block and the sidebar 热门 list hold other articles and must
not be read. lxml (under parsel) sees inside ``<template>``, which BeautifulSoup does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin

from parsel import Selector

from woshipm_crawler import site

CARD_XPATH = ".//article[contains(concat(' ', normalize-space(@class), ' '), ' postlist-item ')]"
# The 最新 list's template: its v-if names the tab; spaces and quotes vary between templates.
# translate() drops spaces and turns double quotes into single ones before comparing.
LATEST_TEMPLATE_XPATH = """//template[contains(translate(@v-if, '" ', "'"), "homeTab=='{tab}'")]"""
# Cards outside any tab template (pre-2022 pages) still count, unless they sit in the 推荐 tab
# or a sidebar.
UNTEMPLATED_CARD_XPATH = (
    "//article[contains(concat(' ', normalize-space(@class), ' '), ' postlist-item ')]"
    "[not(ancestor::template)][not(ancestor::aside)]"
    "[not(ancestor::*[contains(@class, 'sidebar')])]"
)


# WordPress pagination (tag pages, older pages): the highest page number it links or shows.
PAGE_NUMBER_XPATH = (
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' pagination ')]"
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' page-numbers ')]/text()"
)


@dataclass(frozen=True)
class Card:
    """One article as a listing shows it. Cards carry no publish date (site-model §3)."""

    id: int
    url: str
    title: str


@dataclass(frozen=True)
class ListingPage:
    cards: list[Card]
    page_count: int | None  # the number of pages the site says the listing has; None when not shown


def parse_listing_page(html: str, url: str, *, home: bool = False) -> ListingPage:
    """The cards of the 最新 list and the page count the pagination shows, from one parse."""
    selector = Selector(text=html)
    numbers = [int(text) for text in selector.xpath(PAGE_NUMBER_XPATH).getall() if text.strip().isdigit()]
    return ListingPage(_cards(selector, url, home), max(numbers) if numbers else None)


def parse_listing(html: str, url: str, *, home: bool = False) -> list[Card]:
    """The cards of the 最新 list, in page order, each article once."""
    return _cards(Selector(text=html), url, home)


def _cards(selector: Selector, url: str, home: bool) -> list[Card]:
    latest_tab = "all" if home else "latest"
    templates = selector.xpath(LATEST_TEMPLATE_XPATH.format(tab=latest_tab))
    cards = templates.xpath(CARD_XPATH) if templates else selector.xpath(UNTEMPLATED_CARD_XPATH)
    found: dict[int, Card] = {}
    for card in cards:
        link = card.css("h2.post-title a, .post-title a")
        href = link.attrib.get("href") if link else None
        ref = site.article_ref(urljoin(url, href)) if href else None
        if ref is None:
            continue
        article_id = ref[1]
        title = link.attrib.get("title") or " ".join(link.css("::text").getall()).strip()
        found.setdefault(article_id, Card(id=article_id, url=urljoin(url, href), title=title))
    return list(found.values())
