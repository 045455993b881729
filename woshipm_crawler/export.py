"""``python -m woshipm_crawler.export``: a short alias of ``scrapy export --format jsonl --library`` (the whole
dataset in <export dir>/dataset/articles.jsonl, and the Markdown library brought up to date), for scripts
that call it. ``--export-dir DIR`` and ``--state FILE`` set WOSHIPM_EXPORT_DIR and WOSHIPM_STATE_PATH.
"""

from __future__ import annotations

import argparse
import os
import sys

from scrapy.cmdline import execute


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m woshipm_crawler.export", description=__doc__)
    parser.add_argument("--export-dir", default=os.environ.get("WOSHIPM_EXPORT_DIR"),
                        help="the crawl's export directory (default: exports)")
    parser.add_argument("--state", help="state file (default: <export dir>/state.sqlite3)")
    parser.add_argument("--out", help="directory to write articles.jsonl in (default: <export dir>/dataset)")
    parser.add_argument("--no-markdown", action="store_true", help="leave the Markdown library alone")
    args = parser.parse_args(argv)
    command = ["scrapy", "export", "--format", "jsonl", *(() if args.no_markdown else ("--library",))]
    for option, value in (("--out", args.out), ("-s", args.export_dir and f"WOSHIPM_EXPORT_DIR={args.export_dir}"),
                          ("-s", args.state and f"WOSHIPM_STATE_PATH={args.state}")):
        if value:
            command += [option, value]
    # The project from any directory, for this call only: a caller's later Scrapy runs (its own
    # subprocesses included) must not inherit it.
    given = os.environ.get("SCRAPY_SETTINGS_MODULE")
    os.environ["SCRAPY_SETTINGS_MODULE"] = given or "woshipm_crawler.settings"
    try:
        execute(command)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else int(done.code is not None)
    finally:
        if given is None:
            del os.environ["SCRAPY_SETTINGS_MODULE"]
    return 0


if __name__ == "__main__":
    sys.exit(main())
