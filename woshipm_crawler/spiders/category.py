"""``scrapy crawl category -a category=<slug>[,<slug>…]|all``"""

from __future__ import annotations

from woshipm_crawler import site
from woshipm_crawler.spiders.arguments import ArgumentError
from woshipm_crawler.spiders.base import Listing, ListingSpider


class CategorySpider(ListingSpider):
    name = "category"
    argument_name = "category"

    def listings_from(self, value) -> list[Listing]:
        names = [part.strip().lower() for part in str(value or "").split(",") if part.strip()]
        if not names:
            raise ArgumentError(f"-a category= is required: one or more of {', '.join(site.categories())}, or all")
        if names == ["all"]:
            return [Listing("category", slug) for slug in site.crawlable_categories()]
        unknown = [name for name in names if name not in site.categories()]
        if unknown:
            raise ArgumentError(
                f"-a category={value}: unknown {', '.join(unknown)}; valid: {', '.join(site.categories())}, or all"
            )
        return [Listing("category", slug) for slug in dict.fromkeys(names)]
