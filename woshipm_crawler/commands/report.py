"""``scrapy report``: the analysis report with charts (woshipm_crawler.outputs.report)."""

from __future__ import annotations

import sys

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from woshipm_crawler.commands import OutputCommand
from woshipm_crawler.outputs import report


class Command(OutputCommand, ScrapyCommand):
    subdir = report.REPORT_SUBDIR

    def syntax(self) -> str:
        return "[--out DIR]"

    def short_desc(self) -> str:
        return "Write the dataset report (charts, index.html) from the state"

    def run(self, args, opts) -> None:
        state, out, progress = self.begin(opts)
        try:
            result = report.build_report(state, out, lambda n: progress("articles", n))
        except report.MissingFont as exc:
            raise UsageError(str(exc), print_help=False) from None
        progress.end()
        for message in result.glyph_warnings:
            print(f"warning: {message}", file=sys.stderr)
        print(f"report of {result.total} articles with {len(result.charts)} charts -> {out / 'index.html'}"
              + (f" ({len(result.glyph_warnings)} missing-glyph warnings)" if result.glyph_warnings else ""))
        if result.glyph_warnings:
            self.exitcode = 1
