"""Cards of a listing page's 最新 list (site-model §3): pure functions over the page's parsed tree.

Category and tag pages carry both tabs in the HTML, each in a Vue ``<template>``: the 最新 list is
``<template v-if="homeTab == 'latest'">``; the home page swaps the markers (``'all'`` is 最新). Two
``.category-card`` decoys, the 推荐 block and the sidebar 热门 list hold other articles and must
not be read. lxml sees inside ``<template>``, which BeautifulSoup does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin

from woshipm_crawler import site
from woshipm_crawler.parse.page import CARD_XPATH, Page, css, parse_page
from woshipm_crawler.textmodel import clean_inline

# Two layouts, tried in order (the replica serves both: ``--layout cards2019``):
# 2022-: the 最新 list's template: its v-if names the tab; spaces and quotes vary between templates.
# translate() drops spaces and turns double quotes into single ones before comparing.
LATEST_TEMPLATE_XPATH = """//template[contains(translate(@v-if, '" ', "'"), "homeTab=='{tab}'")]"""
# 2018-2021: cards (with ``<time>`` and view counts) outside any tab template, unless they sit in the
# 推荐 tab or a sidebar.
UNTEMPLATED_CARD_XPATH = (
    f"{CARD_XPATH}[not(ancestor::template)][not(ancestor::aside)]"
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
    # Links of 最新 cards that are no article URL (an id that is not 1..2^63-1, another scheme): the
    # spider counts each as a failure.
    rejected: tuple[str, ...] = ()


def parse_listing_page(page: Page | str, url: str, *, home: bool = False) -> ListingPage:
    """The cards of the 最新 list and the page count the pagination shows."""
    page = parse_page(page) if isinstance(page, str) else page
    numbers = [int(text) for text in page.root.xpath(PAGE_NUMBER_XPATH) if text.strip().isdigit()]
    rejected: list[str] = []
    cards = parse_listing(page, url, home=home, rejected=rejected)
    return ListingPage(cards, max(numbers) if numbers else None, tuple(rejected))


def parse_listing(page: Page | str, url: str, *, home: bool = False, rejected: list[str] | None = None) -> list[Card]:
    """The cards of the 最新 list, in page order, each article once; the links of cards that are no
    article URL go to ``rejected``."""
    root = (parse_page(page) if isinstance(page, str) else page).root
    latest_tab = "all" if home else "latest"
    templates = root.xpath(LATEST_TEMPLATE_XPATH.format(tab=latest_tab))
    if templates:
        cards = [card for template in templates for card in template.xpath("." + CARD_XPATH)]
    else:
        cards = root.xpath(UNTEMPLATED_CARD_XPATH)
    found: dict[int, Card] = {}
    for card in cards:
        links = css("h2.post-title a, .post-title a")(card)
        href = links[0].get("href") if links else None
        ref = site.article_ref(urljoin(url, href)) if href else None
        if ref is None:
            if rejected is not None:
                rejected.append(href or "(no link)")
            continue
        link = links[0]
        title = link.get("title") or clean_inline("".join(link.itertext()))
        found.setdefault(ref[1], Card(id=ref[1], url=urljoin(url, href), title=title))
    return list(found.values())
