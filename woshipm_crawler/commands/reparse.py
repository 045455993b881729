"""``scrapy reparse``: the articles rebuilt from the archived pages with the current parser, no request
sent (woshipm_crawler.spiders.reparse); the exit status as ``scrapy crawl``'s (0 ok, 1 FAILED, 2 a bad
argument)."""

from __future__ import annotations

from woshipm_crawler.commands.crawl import Command as CrawlCommand


class Command(CrawlCommand):
    def syntax(self) -> str:
        return "[--since YYYY-MM-DD] [--category SLUG[,SLUG...]] [--id ID[,ID...]]"

    def short_desc(self) -> str:
        return "Rebuild the articles from the archived pages (WARC) with the current parser, fetching nothing"

    def add_options(self, parser) -> None:
        super().add_options(parser)
        parser.add_argument("--since", metavar="YYYY-MM-DD", help="only pages fetched on or after this day (UTC)")
        parser.add_argument("--category", action="append", metavar="SLUG",
                            help="only articles of these URL categories (comma-separated or repeated)")
        parser.add_argument("--id", action="append", metavar="ID", help="only these articles (comma-separated or "
                            "repeated)")

    def run(self, args, opts) -> None:
        for name in ("since", "category", "id"):
            value = getattr(opts, name)
            if value:
                opts.spargs[name] = ",".join(value) if isinstance(value, list) else value
        super().run(["reparse"], opts)
