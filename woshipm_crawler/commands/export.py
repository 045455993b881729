"""``scrapy export``: the whole dataset from the state, in the chosen formats (woshipm_crawler.outputs.dataset)."""

from __future__ import annotations

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from woshipm_crawler.commands import OutputCommand
from woshipm_crawler.outputs import dataset


class Command(OutputCommand, ScrapyCommand):
    subdir = dataset.DATASET_SUBDIR

    def syntax(self) -> str:
        return "[--format jsonl,parquet,csv,xlsx] [--out DIR]"

    def short_desc(self) -> str:
        return "Write the whole dataset from the state (JSONL, Parquet, CSV, XLSX) and its card"

    def add_options(self, parser) -> None:
        super().add_options(parser)
        parser.add_argument("--format", action="append", metavar="FORMAT",
                            help=f"one or more of {', '.join(dataset.FORMATS)}, comma-separated or repeated "
                                 "(default: all)")

    def run(self, args, opts) -> None:
        values = opts.format or [",".join(dataset.FORMATS)]
        formats = [f.strip() for value in values for f in value.split(",") if f.strip()]
        unknown = sorted(set(formats) - set(dataset.FORMATS))
        if unknown:
            raise UsageError(f"unknown format {', '.join(unknown)}: choose from {', '.join(dataset.FORMATS)}")
        state, out, progress = self.begin(opts)
        summary, written = dataset.export(state, out, formats, progress)
        progress.end()
        print(f"exported {summary.total} articles to {out}/: {', '.join(p.name for p in written)}")
