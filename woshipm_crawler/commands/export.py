"""``scrapy export``: the whole dataset from the state, in the chosen formats (woshipm_crawler.outputs.dataset),
and with ``--library`` the Markdown library brought up to date with the state.

``python -m woshipm_crawler.export`` is a short alias of ``scrapy export --format jsonl --library``.
"""

from __future__ import annotations

from pathlib import Path

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from woshipm_crawler.commands import OutputCommand, Progress, fail
from woshipm_crawler.library import LIBRARY_SUBDIR, MarkdownLibrary
from woshipm_crawler.outputs import dataset
from woshipm_crawler.state import StateError, StateStore


class Command(OutputCommand, ScrapyCommand):
    subdir = dataset.DATASET_SUBDIR

    def syntax(self) -> str:
        return "[--format jsonl,parquet,csv,xlsx] [--library] [--out DIR]"

    def short_desc(self) -> str:
        return "Write the whole dataset from the state (JSONL, Parquet, CSV, XLSX) and its card"

    def add_options(self, parser) -> None:
        super().add_options(parser)
        parser.add_argument("--format", action="append", metavar="FORMAT",
                            help=f"one or more of {', '.join(dataset.FORMATS)}, comma-separated or repeated "
                                 "(default: all)")
        parser.add_argument("--library", action="store_true",
                            help=f"also bring the Markdown library (<export dir>/{LIBRARY_SUBDIR}) up to date")

    def run(self, args, opts) -> None:
        values = opts.format or [",".join(dataset.FORMATS)]
        formats = [f.strip() for value in values for f in value.split(",") if f.strip()]
        unknown = sorted(set(formats) - set(dataset.FORMATS))
        if unknown:
            raise UsageError(f"unknown format {', '.join(unknown)}: choose from {', '.join(dataset.FORMATS)}")
        state, out, progress = self.begin(opts)
        library = self.config.export_dir / LIBRARY_SUBDIR if opts.library else None
        try:
            summary, written = dataset.export(state, out, formats, progress)
            no_place = update_library(state, library, progress) if library is not None else []
        except (StateError, OSError) as error:
            progress.end()
            fail(f"export failed, {out}/ left as it was: {error}")
        progress.end()
        print(f"exported {summary.total} articles to {out}/: {', '.join(p.name for p in written)}"
              + (f"; library up to date in {library}/" if library is not None else ""))
        if no_place:
            fail(f"export FAILED for the library: {len(no_place)} article(s) have no place in it (they are in "
                 f"{out}/): " + "; ".join(no_place[:5]))


def update_library(state: Path, root: Path, progress: Progress) -> list[str]:
    """Write every stored article's library file (those unchanged stay as they are) and the indexes;
    returns "id: why" of the articles the library has no place for."""
    library, no_place = MarkdownLibrary(root), []
    with StateStore(state) as store:
        for done, item in enumerate(dataset.dataset_items(store), 1):
            try:
                library.write(item)
            except ValueError as error:  # no date (an older state's impossible one, migrated to null)
                no_place.append(f"{item.get('id')}: {error}")
            progress("library", done)
    library.rebuild_indexes()
    return no_place
