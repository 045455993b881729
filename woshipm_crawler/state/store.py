"""Persistent crawl state: one SQLite file, the single source of truth for what a crawl has done.

Concurrency: WAL journal, a 30 s busy timeout, and every write in one short ``BEGIN IMMEDIATE``
transaction that reads and writes together, so several processes (Scrapyd jobs, a cron line firing
while a job still runs) can share the file: the write lock is taken before the read, so "is it new?"
and "store it" cannot interleave. WAL needs a local file system (not NFS).

Durability: ``synchronous=NORMAL``, so a commit survives a killed process without an fsync per
article (a power cut may roll back the last transactions, in order: their articles are simply still
in the frontier). Before a run marks versions written, it syncs the disk (``os.sync()``, in the JSONL
pipeline), so no output is ever marked written for a commit that could still be rolled back.

One transaction per listing page (``record_listing_page``: memberships, new frontier rows, the walk's
next page) and one per article (``commit_item``: the item, its version, listings, its near-duplicate
group and the re-flags it causes, its frontier row, the pending outputs). A run killed at any moment
resumes where it stopped: walks at their next page, the frontier's unclaimed rows, pending outputs.

Ids are SQLite INTEGERs: a value outside 1..2**63-1 is refused (``BadId``) before any write, so it
can never reach the file (nor come back as a REAL that breaks later runs).

Times are UTC ``YYYY-MM-DDTHH:MM:SSZ`` (``woshipm_crawler.util.utc_stamp``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from woshipm_crawler import settings as project_settings
from woshipm_crawler.state.articles import Articles, Observations
from woshipm_crawler.state.frontier import Frontier
from woshipm_crawler.state.outputs import Outputs
from woshipm_crawler.state.runs import Runs
from woshipm_crawler.state.schema import BUSY_TIMEOUT_S, StateError, migrate, set_wal, state_error


class StateStore(Runs, Articles, Observations, Frontier, Outputs):
    """The crawl state in one SQLite file; safe to share between processes and threads.

    >>> with StateStore("state.sqlite3") as store:
    ...     result = store.commit_item(item, job="job-1")
    """

    def __init__(self, path: str | os.PathLike, busy_timeout: float = BUSY_TIMEOUT_S, *, library: bool = True,
                 retry_base_s: float = project_settings.WOSHIPM_ARTICLE_RETRY_BASE,
                 retry_max_s: float = project_settings.WOSHIPM_ARTICLE_RETRY_MAX) -> None:
        """Opens (creates, migrates) the file; ``StateError`` with the operator's line if it cannot.

        ``library``: the runs of this store write library files (off: no library mark is pending).
        ``retry_base_s``, ``retry_max_s``: a failed article's first wait, and the longest (a run passes
        its ``Config``'s; the defaults are settings.py's).
        """
        self.path = os.fspath(path)
        self.library = library
        self.retry_base_s, self.retry_max_s = retry_base_s, retry_max_s
        self._lock = threading.RLock()  # one connection, serialised: pipelines may use threads
        self._runs: set[str] = set()
        self._heartbeat_at = 0.0
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as error:
            raise state_error(self.path, error) from error
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            set_wal(self._conn, self.path, busy_timeout)
            self._conn.execute("PRAGMA synchronous = NORMAL")
            with self._write() as conn:
                migrate(conn, self.path)
        except (sqlite3.Error, StateError) as error:
            self._conn.close()
            if isinstance(error, StateError):
                raise
            raise state_error(self.path, error) from error

    # -- plumbing --------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; the write lock is taken up front (no upgrade deadlocks)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._beat(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, params: Iterable = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        for job in list(self._runs):
            self.end_run(job)
        with self._lock:
            self._conn.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
