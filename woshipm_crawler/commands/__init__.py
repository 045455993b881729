"""Scrapy commands of the project (``COMMANDS_MODULE``): ``scrapy export``, ``scrapy report``, ``scrapy book``.

They read the project settings as ``scrapy crawl`` does (``WOSHIPM_EXPORT_DIR``, ``WOSHIPM_STATE_PATH``,
``-s NAME=VALUE``), show progress on long work, and end with one line saying what they wrote and where.
"""

from __future__ import annotations

import sys
import time
from functools import cached_property
from pathlib import Path
from typing import NoReturn

from scrapy.exceptions import UsageError

from woshipm_crawler.config import Config
from woshipm_crawler.state import StateError, StateStore
from woshipm_crawler.util import set_clock


def fail(line: str) -> NoReturn:
    """End the command with one line on stderr and exit status 1 (a failure, not a usage error)."""
    print(line, file=sys.stderr)
    raise SystemExit(1)


class Progress:
    """``stage: n/total`` on stderr: redrawn in place on a terminal, a line every 10 s otherwise."""

    def __init__(self, total: int, stream=None):
        self.total, self.stream = total, stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last = 0.0
        self.shown = False

    def __call__(self, stage: str, done: int, total: int | None = None) -> None:
        total = self.total if total is None else total
        now = time.monotonic()
        if now - self.last < (0.2 if self.tty else 10.0) and done != total:
            return
        self.last = now
        text = f"{stage}: {done}/{total}" if total else f"{stage}: {done}"
        self.stream.write(f"\r{text}\033[K" if self.tty else text + "\n")
        self.stream.flush()
        self.shown = True

    def end(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\n")


class OutputCommand:
    """Mixin of a command that reads the state store and writes under the export directory
    (``class Command(OutputCommand, ScrapyCommand)``: Scrapy lists every ScrapyCommand subclass of this
    package as a command, so the mixin itself is not one)."""

    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_LEVEL": "WARNING"}
    subdir = ""

    @cached_property
    def config(self) -> Config:
        return Config.from_settings(self.settings)

    def add_options(self, parser) -> None:
        super().add_options(parser)
        parser.add_argument("--out", metavar="DIR", help=f"output directory (default: <export dir>/{self.subdir})")

    def begin(self, opts) -> tuple[Path, Path, Progress]:
        """(state file, output directory, progress over its articles); no state, or one that cannot be
        used, is one line and exit status 1."""
        try:
            set_clock(self.config.clock or None)
        except ValueError as error:
            raise UsageError(f"-s WOSHIPM_CLOCK: {error}", print_help=False) from None
        state = self.config.state_path
        if not state.exists():
            fail(f"no state at {state}: crawl first (scrapy crawl category -a category=all)")
        try:  # a corrupt, read-only or newer state: one line, before any output is begun
            with StateStore(state) as store:
                progress = Progress(store.count())
        except StateError as error:
            fail(str(error))
        return state, Path(opts.out) if opts.out else self.config.export_dir / self.subdir, progress
