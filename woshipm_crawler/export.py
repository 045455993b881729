"""The whole dataset, from the state store: ``python -m woshipm_crawler.export``.

A crawl's JSONL feed holds only what that run added or changed (an incremental run that finds
nothing new writes none). ``scrapy export`` writes the same JSONL and the other formats
(woshipm_crawler.outputs.dataset); this module stays for scripts that call it. This command writes
every article the state holds — its latest version — to one JSONL file, replaced atomically, and
brings the Markdown library up to date with the state.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NamedTuple

from woshipm_crawler.items import item_json
from woshipm_crawler.library import LIBRARY_SUBDIR, MarkdownLibrary
from woshipm_crawler.outputs.dataset import dataset_items
from woshipm_crawler.state import StateError, StateStore
from woshipm_crawler.util import AtomicFile


class Exported(NamedTuple):
    count: int  # articles in the JSONL file
    no_place: list[str]  # "id: why" of articles the library has no place for (an old state's bad date)


def export_dataset(state_path: Path, out: Path, library_root: Path | None) -> Exported:
    """Write every stored article to ``out`` (and the library)."""
    library = MarkdownLibrary(library_root) if library_root is not None else None
    count, no_place = 0, []
    # AtomicFile: a failure (a full disk, a bad item) leaves the old file and no temp file behind.
    with StateStore(state_path) as store, AtomicFile(out) as handle:
        for item in dataset_items(store):
            handle.write((item_json(item) + "\n").encode("utf-8"))
            if library is not None:
                try:
                    library.write(item)
                except ValueError as error:  # stored by an older crawler, which let an impossible date through
                    no_place.append(f"{item.get('id')}: {error}")
            count += 1
    if library is not None:
        library.rebuild_indexes()
    return Exported(count, no_place)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m woshipm_crawler.export", description=__doc__)
    parser.add_argument("--export-dir", default=os.environ.get("WOSHIPM_EXPORT_DIR", "exports"),
                        help="the crawl's export directory (default: exports)")
    parser.add_argument("--state", help="state file (default: <export dir>/state.sqlite3)")
    parser.add_argument("--out", help="JSONL file to write (default: <export dir>/dataset.jsonl)")
    parser.add_argument("--no-markdown", action="store_true", help="leave the Markdown library alone")
    args = parser.parse_args(argv)
    export_dir = Path(args.export_dir)
    state = Path(args.state) if args.state else export_dir / "state.sqlite3"
    if not state.exists():
        print(f"no state at {state}: crawl first (scrapy crawl category -a category=all)", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else export_dir / "dataset.jsonl"
    library = None if args.no_markdown else export_dir / LIBRARY_SUBDIR
    try:
        count, no_place = export_dataset(state, out, library)
    except (StateError, OSError) as error:
        print(f"export failed, {out} left as it was: {error}", file=sys.stderr)
        return 1
    print(f"{count} articles -> {out}" + (f" and {library}/" if library else ""))
    if no_place:
        print(f"export FAILED for the library: {len(no_place)} article(s) have no place in it (they are in "
              f"{out}): " + "; ".join(no_place[:5]),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
