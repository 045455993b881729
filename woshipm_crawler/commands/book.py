"""``scrapy book``: the Markdown library as one static site with search (woshipm_crawler.outputs.book)."""

from __future__ import annotations

import sys
from datetime import date

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from woshipm_crawler.commands import OutputCommand
from woshipm_crawler.library import LIBRARY_SUBDIR
from woshipm_crawler.outputs import book
from woshipm_crawler.outputs.report import REPORT_SUBDIR


class Command(OutputCommand, ScrapyCommand):
    subdir = book.BOOK_SUBDIR

    def syntax(self) -> str:
        return "[--category SLUG[,SLUG...]] [--since YYYY-MM-DD] [--out DIR]"

    def short_desc(self) -> str:
        return "Build the library as one site: navigation by category, month, tag and author, and search"

    def add_options(self, parser) -> None:
        super().add_options(parser)
        parser.add_argument("--category", action="append", metavar="SLUG",
                            help="only these categories (comma-separated or repeated)")
        parser.add_argument("--since", metavar="YYYY-MM-DD", help="only articles published on or after this day")

    def run(self, args, opts) -> None:
        categories = [c.strip() for value in opts.category or () for c in value.split(",") if c.strip()]
        try:
            since = date.fromisoformat(opts.since) if opts.since else None
        except ValueError:
            raise UsageError(f"--since wants YYYY-MM-DD, not {opts.since!r}", print_help=False) from None
        _, out, progress = self.begin(opts)
        root = self.config.export_dir
        try:
            result = book.build_site(root / LIBRARY_SUBDIR, out, categories, since, root / REPORT_SUBDIR, progress,
                                     log=lambda line: print(line, file=sys.stderr))
        except book.BookError as exc:
            raise UsageError(str(exc), print_help=False) from None
        progress.end()
        for line in result.failed:
            print(f"not read: {line}", file=sys.stderr)
        failed = f"; FAILED: {len(result.failed)} article files not read" if result.failed else ""
        print(f"site of {result.articles} articles: {result.written} pages written, {result.unchanged} unchanged, "
              f"{result.removed} removed; search: {result.indexed} articles indexed, {result.segments} "
              f"segment{'s' if result.segments != 1 else ''}{failed} -> {result.index}")
        if result.failed:
            self.exitcode = 1
