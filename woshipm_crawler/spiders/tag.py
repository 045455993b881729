"""``scrapy crawl tag -a tag=<name or slug>[,…]`` — 用户体验, ue and %e7%94%a8… name the same tag."""

from __future__ import annotations

from woshipm_crawler import site
from woshipm_crawler.spiders.arguments import ArgumentError
from woshipm_crawler.spiders.base import Listing, ListingSpider


class TagSpider(ListingSpider):
    name = "tag"
    argument_name = "tag"

    def listings_from(self, value) -> list[Listing]:
        names = [part.strip() for part in str(value or "").split(",") if part.strip()]
        if not names:
            raise ArgumentError("-a tag= is required: tag names or slugs, e.g. tag=用户体验,ue (see seeds/tags.txt)")
        return [Listing("tag", slug) for slug in dict.fromkeys(site.tag_slug(name) for name in names)]
