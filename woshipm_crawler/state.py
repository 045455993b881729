"""Persistent crawl state: one SQLite file, the single source of truth for what a crawl has done.

Concurrency: WAL journal, a 30 s busy timeout, and every write in one short ``BEGIN IMMEDIATE``
transaction that reads and writes together, so several processes (Scrapyd jobs, a cron line firing
while a job still runs) can share the file: the write lock is taken before the read, so "is it new?"
and "store it" cannot interleave. WAL needs a local file system (not NFS).

Durability: ``synchronous=NORMAL``, so a commit survives a killed process without an fsync per
article (a power cut may roll back the last transactions, in order: their articles are simply still
in the frontier). Before a run marks versions written, it syncs the disk (``os.sync()``, in the JSONL
pipeline), so no output is ever marked written for a commit that could still be rolled back.

Tables
------
meta          the site the state was built from (``site``): a crawl of another base URL is refused
runs          every crawl that opened the state: job, pid, host, heartbeat; a claim is held only
              while its run is alive (same host: its pid runs and it has not ended; another host:
              a heartbeat within ``RUN_STALE_S``)
walks         one row per listing: where its walk stands (``walking`` at ``next_page``, or ``ended``
              with a reason), its mode, when a walk last reached the listing's end, the run that
              walks it now (``claim_job``) and the run that walked it last (``run``: a walk ended by
              a run that was then killed is not walked again by the run that resumes it)
frontier      articles found in a listing but not stored yet: ``queued``, ``failed`` (with attempts,
              the last error and ``next_try``: when a later run may try it again, on a backoff of hours
              then days with no limit, see ``retry_delay_s``) or ``older`` (fetched, dated before a
              ``since``), and the run that claimed it; a row leaves the frontier in the transaction
              that stores its article
gaps          (listing, page) of every listing page that failed, recorded in the transaction that moves
              the walk past it (``record_gap``) and deleted in the one that records the page
              (``record_listing_page``): a walk with an open gap is never complete, and the next walk
              of that listing starts at its first gap, however the run that left it ended
articles      one row per article: the latest item (``item_json``), its ``version``, one mark per
              output: ``exported`` (the highest version whose JSONL line was written) and
              ``library_exported`` (... whose library file was written), and the run writing them
versions      one row per version: hash, duplicate_of, job, time; ``item_json`` of superseded versions
listings      (id, listing) first/last seen: recorded as each listing page is parsed, and the one
              source of an item's ``listings`` in every output
exports       (id, kind) -> path of written files ('markdown', ...)
emissions     (id, version) -> job and time the JSONL line of that version was written
observations  (id, observed_at) -> what a fetch of a stored article saw: status 200 with views, comments
              and collects (every fetch of an article adds one), or the 404/410/redirect of a removal
              found (``removal``: 'pending' until its run decides, then 'marked' or 'withheld');
              ``articles.next_due`` (``schedule.next_due`` of the latest) and ``revisit_job`` (the
              run revisiting it now) come from them
minhash...    the near-duplicate graph (``woshipm_crawler.dedupe.SCHEMA``)

One transaction per listing page (``record_listing_page``: memberships, new frontier rows, the walk's
next page) and one per article (``commit_item``: the item, its version, listings, its near-duplicate
group and the re-flags it causes, its frontier row, the pending outputs). A run killed at any moment
resumes where it stopped: walks at their next page, the frontier's unclaimed rows, pending outputs.

Outputs protocol (crash safety; the pipelines follow it)
--------------------------------------------------------
- Each output kind (``OUTPUT_KINDS``: the JSONL line, the library file) has its own pending mark.
  ``commit_item`` makes a NEW or CHANGED version pending for both, claimed by this run (a store
  opened with ``library=False`` owes no library file); ``mark_exported_many(versions, job, kinds)``
  clears a kind once that output is fully written and synced. The claim ends when both are clear.
- At the end of a run, ``iter_pending(job, kind)`` gives every version this run must still write;
  what is left is counted by ``pending_outputs(job)`` (a failed output: the run is FAILED).
- At the start, ``claim_pending(job)`` takes over pending versions of runs that are gone (killed, or
  ended with an output that failed); a JSONL line a killed run did write is found by ``jsonl_has``
  (``emission_key``), so none is written twice.

Ids are SQLite INTEGERs: a value outside 1..2**63-1 is refused (``BadId``) before any write, so it
can never reach the file (nor come back as a REAL that breaks later runs).

Times are UTC ``YYYY-MM-DDTHH:MM:SSZ`` (``woshipm_crawler.util.utc_stamp``).
"""

from __future__ import annotations

import calendar
import enum
import json
import os
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

from woshipm_crawler import dedupe, schedule, textmodel
from woshipm_crawler.site import MAX_ARTICLE_ID
from woshipm_crawler.util import now, pid_alive, utc_stamp

SCHEMA_VERSION = 5
BUSY_TIMEOUT_S = 30.0
# A run on another host whose heartbeat is older than this is gone (its claims may be taken).
RUN_STALE_S = 600.0
HEARTBEAT_S = 30.0
# A failed article is tried again after RETRY_BASE_S, doubled per failure, at most RETRY_MAX_S: hours,
# then days, and never dropped (WOSHIPM_ARTICLE_RETRY_BASE, _MAX).
RETRY_BASE_S = 3600.0
RETRY_MAX_S = 7 * 86400.0
# Fields of an UNCHANGED item refreshed into the stored item (they change without the body changing
# and are not part of the emission key).
VOLATILE_FIELDS = ("stats", "stats_observed_at")

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS articles (
    id            INTEGER PRIMARY KEY,
    url           TEXT,
    category      TEXT,
    published     TEXT,
    first_seen    TEXT NOT NULL,
    last_seen     TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    duplicate_of  INTEGER,
    version       INTEGER NOT NULL,
    exported      INTEGER NOT NULL DEFAULT 0,
    library_exported INTEGER NOT NULL DEFAULT 0,
    claim_job     TEXT,
    claim_pid     INTEGER,
    claim_host    TEXT,
    claim_at      TEXT,
    item_json     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS articles_pending ON articles(id) WHERE exported < version;
CREATE TABLE IF NOT EXISTS versions (
    id            INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    content_hash  TEXT NOT NULL,
    duplicate_of  INTEGER,
    seen_at       TEXT NOT NULL,
    job           TEXT,
    item_json     TEXT,
    PRIMARY KEY (id, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS listings (
    id            INTEGER NOT NULL,
    listing       TEXT NOT NULL,
    first_seen    TEXT NOT NULL,
    last_seen     TEXT NOT NULL,
    PRIMARY KEY (id, listing)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS exports (
    id            INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    path          TEXT NOT NULL,
    PRIMARY KEY (id, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS emissions (
    id            INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    job           TEXT,
    emitted_at    TEXT NOT NULL,
    PRIMARY KEY (id, version)
) WITHOUT ROWID;
"""
    + dedupe.SCHEMA
    + """;
CREATE TABLE IF NOT EXISTS meta (
    key           TEXT PRIMARY KEY,
    value         TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    job           TEXT PRIMARY KEY,
    pid           INTEGER,
    host          TEXT,
    started_at    TEXT NOT NULL,
    heartbeat_at  TEXT NOT NULL,
    ended_at      TEXT
);
CREATE TABLE IF NOT EXISTS walks (
    listing       TEXT PRIMARY KEY,
    status        TEXT NOT NULL,
    mode          TEXT NOT NULL,
    next_page     INTEGER NOT NULL,
    end_reason    TEXT,
    completed_at  TEXT,
    claim_job     TEXT,
    run           TEXT,
    updated_at    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS frontier (
    id            INTEGER PRIMARY KEY,
    url           TEXT NOT NULL,
    state         TEXT NOT NULL,
    published     TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    claim_job     TEXT,
    discovered_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS frontier_by_claim ON frontier(claim_job);
CREATE INDEX IF NOT EXISTS listings_by_listing ON listings(listing, id);
"""
)

# Kept apart from _SCHEMA: a schema-1 file gets _SCHEMA (1 -> 2) before it has the column.
_LIBRARY_PENDING_INDEX = (
    "CREATE INDEX IF NOT EXISTS articles_library_pending ON articles(id) WHERE library_exported < version"
)
# Schema 4: listing gaps, and when a failed article is next tried (kept apart from _SCHEMA, which the
# 1 -> 2 step also runs).
_GAPS_AND_RETRIES = """
CREATE TABLE IF NOT EXISTS gaps (
    listing       TEXT NOT NULL,
    page          INTEGER NOT NULL,
    reason        TEXT,
    failed_at     TEXT NOT NULL,
    PRIMARY KEY (listing, page)
) WITHOUT ROWID;
ALTER TABLE frontier ADD COLUMN next_try TEXT
"""
OUTPUT_KINDS = ("jsonl", "library")
_DONE_COLUMN = {"jsonl": "exported", "library": "library_exported"}
_ANY_PENDING = "(exported < version OR library_exported < version)"

# MIGRATIONS[n] takes a schema at version n to n + 1 (run inside the transaction).
MIGRATIONS: dict[int, str] = {
    # 1 -> 2: walk positions, the frontier, runs and the site; the near-duplicate graph moves into the
    # file (signatures are recomputed from the stored bodies by ``sign_unsigned``).
    1: """
DROP INDEX IF EXISTS minhash_seq;
DROP TABLE IF EXISTS minhash;
ALTER TABLE walks RENAME TO walks_v1;
"""
    + _SCHEMA
    + """;
INSERT INTO walks (listing, status, mode, next_page, end_reason, completed_at, updated_at)
    SELECT listing, 'ended', 'incremental', 1, 'end', completed_at, completed_at FROM walks_v1;
DROP TABLE walks_v1;
""",
    # 2 -> 3: one pending mark per output; a schema-2 mark covered both outputs.
    2: """
ALTER TABLE articles ADD COLUMN library_exported INTEGER NOT NULL DEFAULT 0;
UPDATE articles SET library_exported = exported;
"""
    + _LIBRARY_PENDING_INDEX,
    # 3 -> 4: listing gaps; failed articles on a backoff (those given up after 3 attempts are due now).
    3: _GAPS_AND_RETRIES,
    # 4 -> 5: observations (stats over time, removals found) and the revisit schedule. Each stored
    # article gets one observation, its stored stats at its fetch; it is due at once (next_due NULL
    # sorts first), so the schedule of an older state starts with a revisit of what it holds, within
    # the revisit share of each run.
    4: """
CREATE TABLE IF NOT EXISTS observations (
    id            INTEGER NOT NULL,
    observed_at   TEXT NOT NULL,
    status        INTEGER NOT NULL,
    views         INTEGER,
    comments      INTEGER,
    collects      INTEGER,
    job           TEXT,
    removal       TEXT,
    PRIMARY KEY (id, observed_at)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS observations_by_job ON observations(job) WHERE status != 200;
ALTER TABLE articles ADD COLUMN next_due TEXT;
ALTER TABLE articles ADD COLUMN revisit_job TEXT;
CREATE INDEX IF NOT EXISTS articles_due ON articles(next_due);
INSERT OR IGNORE INTO observations (id, observed_at, status, views, comments, collects)
    SELECT id, COALESCE(json_extract(item_json, '$.crawled_at'), last_seen), 200,
           json_extract(item_json, '$.stats.views'), json_extract(item_json, '$.stats.comments'),
           json_extract(item_json, '$.stats.collects') FROM articles
""",
}
# Removal marks of an observation that found an article gone.
REMOVAL_PENDING, REMOVAL_MARKED, REMOVAL_WITHHELD = "pending", "marked", "withheld"

# Runs begun by open stores of this process: a claim of this pid is held only while its run is here.
_OPEN_RUNS: dict[str, int] = {}
_OPEN_RUNS_LOCK = threading.Lock()


class Outcome(str, enum.Enum):
    NEW = "new"
    CHANGED = "changed"
    UNCHANGED = "unchanged"


_UNSET: Any = object()


class CommitResult(NamedTuple):
    outcome: Outcome
    version: int
    duplicate_of: int | None = None

    @property
    def emit(self) -> bool:
        """Whether this version's outputs must now be written (then mark_exported)."""
        return self.outcome is not Outcome.UNCHANGED


class RemovalDecision(NamedTuple):
    """What ``decide_removals`` did with one run's removals found."""

    found: int
    revisits: int  # fetches of articles observed before, in that run
    marked: int  # new versions with removed_at (the others were marked already)
    withheld: int  # found, not marked: too large a share of the revisits


class Pending(NamedTuple):
    id: int
    version: int
    item: dict
    key: tuple
    claim_job: str | None


class Claimed(NamedTuple):
    """A pending version taken over from a run that is gone (``claim_pending``)."""

    id: int
    version: int
    key: tuple  # its emission_key
    claim_job: str | None  # who held it


class WalkStart(NamedTuple):
    """Where a run starts walking a listing: ``page``, ``mode`` ('full' walks every page,
    'incremental' may stop at known pages), whether it resumes an interrupted walk, and whether
    an interrupted run had already finished it (then there is nothing to walk)."""

    page: int
    mode: str
    resumed: bool
    finished: bool = False


class CardFate(NamedTuple):
    """What a listing page's cards mean for this run (``record_listing_page``)."""

    fetch: list[tuple[int, str]]  # claimed for this run now: request them
    dates: dict[int, str | None]  # not to fetch: known or dated articles, with their ``published``
    known: int  # stored by an earlier run
    again: int  # this run has it already, from another listing
    new: int  # never seen before
    elsewhere: int  # claimed by another live run
    over_budget: int  # left queued for a later run: the run's limit is reached
    rejected: tuple[tuple[Any, str], ...] = ()  # cards whose id is no SQLite INTEGER (``BadId``): skipped
    waiting: int = 0  # failed before, and their next try has not come


def emission_key(item: Mapping[str, Any]) -> tuple:
    """What identifies one written version in a JSONL file: (id, content_hash, crawled_at, duplicate_of,
    removed_at).

    ``content_hash`` alone is not enough: a body that changes A -> B -> A repeats a hash (the fetch
    time tells them apart), and a re-flag or a removal keeps the hash and the fetch time.
    """
    return (int(item["id"]), item.get("content_hash"), item.get("crawled_at"), item.get("duplicate_of"),
            item.get("removed_at"))


# The emission key's columns, for queries that do not load the items.
_KEY_COLUMNS = ("id, content_hash, json_extract(item_json, '$.crawled_at'), duplicate_of, "
                "json_extract(item_json, '$.removed_at')")


def jsonl_has(paths: Iterable[str | os.PathLike], keys: Iterable[tuple]) -> set[tuple]:
    """The subset of ``keys`` (``emission_key`` tuples) present in the given JSONL files.

    Lines are pre-filtered by their content_hash bytes so only candidate lines are parsed; a torn
    last line (a crash mid-write) or any undecodable line is ignored. Missing files are skipped.
    """
    wanted = set(keys)
    hashes = {k[1].encode() for k in wanted if k[1]}
    found: set[tuple] = set()
    for path in paths:
        try:
            handle = open(path, "rb")
        except FileNotFoundError:
            continue
        with handle:
            for line in handle:
                m = _HASH_RE.search(line)
                if m is None or m.group(1) not in hashes:
                    continue
                try:
                    obj = json.loads(line)
                    key = emission_key(obj)
                except (ValueError, KeyError, TypeError):
                    continue
                if key in wanted:
                    found.add(key)
                    if len(found) == len(wanted):
                        return found
    return found


_HASH_RE = re.compile(rb'"content_hash"\s*:\s*"([0-9a-f]{64})"')


def _dumps(item: Mapping[str, Any]) -> str:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


def _age_s(stamp: str | None) -> float:
    if not stamp:
        return float("inf")
    try:
        then = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return float("inf")
    return now().timestamp() - then


class StateError(RuntimeError):
    """The state file cannot be used as it is; the message is the one line the operator sees."""


class BadId(ValueError):
    """An article id that is not an integer in 1..site.MAX_ARTICLE_ID: refused before it reaches the file."""


def article_id_of(value: Any) -> int:
    """``value`` as a storable article id, or ``BadId``."""
    try:
        if isinstance(value, bool):
            raise TypeError
        article_id = int(value)
    except (TypeError, ValueError):
        raise BadId(f"article id {value!r} is not an integer") from None
    if not 0 < article_id <= MAX_ARTICLE_ID or (isinstance(value, float) and value != article_id):
        raise BadId(f"article id {value!r} is outside 1..{MAX_ARTICLE_ID} (an SQLite INTEGER)")
    return article_id


def state_error(path: str, error: Exception) -> StateError:
    """The operator's line for a state file SQLite cannot use: what is wrong and what to do."""
    text = str(error)
    if isinstance(error, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
        return StateError(
            f"the state file {path} is corrupt ({text}): move it aside (or restore a backup) and run again; "
            "a new state starts from scratch and crawls everything again"
        )
    if isinstance(error, OSError) or "unable to open" in text or "readonly" in text:
        return StateError(
            f"cannot write the state file {path} ({text}): make it and its directory writable, "
            "or set WOSHIPM_STATE_PATH to a writable place"
        )
    return StateError(f"cannot use the state file {path} ({type(error).__name__}: {text})")


class StateStore:
    """The crawl state in one SQLite file; safe to share between processes and threads.

    >>> with StateStore("state.sqlite3") as store:
    ...     result = store.commit_item(item, job="job-1")
    """

    def __init__(self, path: str | os.PathLike, busy_timeout: float = BUSY_TIMEOUT_S, *, library: bool = True,
                 retry_base_s: float = RETRY_BASE_S,
                 retry_max_s: float = RETRY_MAX_S) -> None:
        """Opens (creates, migrates) the file; ``StateError`` with the operator's line if it cannot.

        ``library``: the runs of this store write library files (off: no library mark is pending).
        ``retry_base_s``, ``retry_max_s``: a failed article's first wait, and the longest.
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
            self._set_wal(busy_timeout)
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except (sqlite3.Error, StateError) as error:
            self._conn.close()
            if isinstance(error, StateError):
                raise
            raise state_error(self.path, error) from error

    def _set_wal(self, busy_timeout: float) -> None:
        # Switching a fresh file to WAL needs an exclusive lock; two processes opening it together can
        # see SQLITE_BUSY here despite the busy handler, so retry within the timeout.
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode.lower() == "wal":
                    return
                raise sqlite3.OperationalError(f"cannot use WAL journal for {self.path} (got {mode})")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _migrate(self) -> None:
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"{self.path} has schema {version}, newer than this code ({SCHEMA_VERSION}): "
                    "upgrade woshipm_crawler, or point WOSHIPM_STATE_PATH elsewhere"
                )
            fresh = _SCHEMA + ";" + _LIBRARY_PENDING_INDEX + ";" + _GAPS_AND_RETRIES + ";" + MIGRATIONS[4]
            steps = [fresh] if version == 0 else [MIGRATIONS[step] for step in range(version, SCHEMA_VERSION)]
            try:
                for script in steps:
                    # Statement by statement: executescript() would COMMIT our transaction first.
                    for statement in script.split(";"):
                        if statement.strip():
                            conn.execute(statement)
            except sqlite3.OperationalError as error:  # rolled back: the file is as it was
                raise StateError(
                    f"{self.path} has schema {version}, which cannot be migrated to {SCHEMA_VERSION} ({error}): "
                    "move it aside and run again (a new state crawls everything again), or use the "
                    "woshipm_crawler version that wrote it"
                ) from error
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

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

    # -- the site and the runs ---------------------------------------------------------------------

    def bind_site(self, base_url: str) -> str:
        """Record the site this state is built from, once; returns the site it was built from."""
        with self._write() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'site'").fetchone()
            if row is not None:
                return row[0]
            conn.execute("INSERT INTO meta (key, value) VALUES ('site', ?)", (base_url,))
            return base_url

    def begin_run(self, job: str) -> None:
        """Register a crawl: its claims are held while it runs (``_live_jobs``)."""
        now = utc_stamp()
        with _OPEN_RUNS_LOCK:
            _OPEN_RUNS[job] = _OPEN_RUNS.get(job, 0) + 1
        self._runs.add(job)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs (job, pid, host, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (job) DO UPDATE SET pid = excluded.pid, host = excluded.host, "
                "heartbeat_at = excluded.heartbeat_at, ended_at = NULL",
                (job, os.getpid(), socket.gethostname(), now, now),
            )

    def end_run(self, job: str) -> None:
        """Release every claim of ``job`` (walks, frontier rows) and mark the run ended."""
        if job not in self._runs:
            return
        with self._write() as conn:
            conn.execute("UPDATE walks SET claim_job = NULL WHERE claim_job = ?", (job,))
            conn.execute("UPDATE frontier SET claim_job = NULL WHERE claim_job = ?", (job,))
            conn.execute("UPDATE articles SET revisit_job = NULL WHERE revisit_job = ?", (job,))
            conn.execute("UPDATE runs SET ended_at = ? WHERE job = ?", (utc_stamp(), job))
        self._runs.discard(job)
        with _OPEN_RUNS_LOCK:
            _OPEN_RUNS[job] -= 1
            if not _OPEN_RUNS[job]:
                del _OPEN_RUNS[job]

    def heartbeat(self) -> None:
        if self._runs:
            with self._write():
                pass  # _write beats

    def _beat(self, conn: sqlite3.Connection) -> None:
        if self._runs and time.monotonic() - self._heartbeat_at > HEARTBEAT_S:
            self._heartbeat_at = time.monotonic()
            conn.executemany(
                "UPDATE runs SET heartbeat_at = ? WHERE job = ?", [(utc_stamp(), job) for job in self._runs]
            )

    @staticmethod
    def _live_jobs(conn: sqlite3.Connection) -> set[str]:
        """Runs that hold their claims: not ended, and alive (see the module docstring)."""
        host, pid = socket.gethostname(), os.getpid()
        live = set()
        for job, rpid, rhost, beat in conn.execute(
            "SELECT job, pid, host, heartbeat_at FROM runs WHERE ended_at IS NULL"
        ):
            if rhost == host:
                # A pid that runs but has not beaten for long is a reused pid, not the crawl.
                alive = job in _OPEN_RUNS if rpid == pid else (rpid is not None and pid_alive(rpid))
                alive = alive and _age_s(beat) <= RUN_STALE_S
            else:
                alive = _age_s(beat) <= RUN_STALE_S
            if alive:
                live.add(job)
        return live

    @staticmethod
    def _interrupted(conn: sqlite3.Connection, job: str | None, live: set[str]) -> bool:
        """Whether ``job`` was a run that stopped without ending (killed), as opposed to one that
        ended (its walks are history: a new run walks them again) or one still running."""
        if job is None or job in live:
            return False
        row = conn.execute("SELECT ended_at FROM runs WHERE job = ?", (job,)).fetchone()
        return row is not None and row[0] is None

    # -- what we have ----------------------------------------------------------------------------

    def known_ids(self) -> set[int]:
        return {row[0] for row in self._read("SELECT id FROM articles")}

    def is_known(self, article_id: int) -> bool:
        return bool(self._read("SELECT 1 FROM articles WHERE id = ?", (article_id,)))

    def count(self) -> int:
        return self._read("SELECT COUNT(*) FROM articles")[0][0]

    def get_item(self, article_id: int) -> dict | None:
        rows = self._read("SELECT id, item_json FROM articles WHERE id = ?", (article_id,))
        return self._items(rows)[0] if rows else None

    def iter_items(self, batch: int = 500) -> Iterator[dict]:
        """Every latest item, ordered by id; read in batches so no read transaction stays open."""
        last = -(1 << 63)
        while True:
            rows = self._read("SELECT id, item_json FROM articles WHERE id > ? ORDER BY id LIMIT ?", (last, batch))
            if not rows:
                return
            yield from self._items(rows)
            last = rows[-1][0]

    def _items(self, rows: Sequence[tuple[int, str]]) -> list[dict]:
        """Items from ``(id, item_json)`` rows, ``listings`` taken from the listings table.

        Memberships are recorded as listing pages are parsed, so a listing found after the article was
        stored (another listing walked later, a later run) is in every output written afterwards.
        """
        ids = [row[0] for row in rows]
        memberships: dict[int, list[str]] = {i: [] for i in ids}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for article_id, listing in self._read(
                f"SELECT id, listing FROM listings WHERE id IN ({','.join('?' * len(chunk))})", chunk
            ):
                memberships[article_id].append(listing)
        items = []
        for article_id, blob in rows:
            item = json.loads(blob)
            item["listings"] = sorted(set(item.get("listings") or ()) | set(memberships[article_id]))
            items.append(item)
        return items

    def versions(self, article_id: int) -> list[dict]:
        """Version history, oldest first (``item`` is None for the current version: see get_item)."""
        rows = self._read(
            "SELECT version, content_hash, duplicate_of, seen_at, job, item_json FROM versions "
            "WHERE id = ? ORDER BY version",
            (article_id,),
        )
        return [
            {
                "version": v,
                "content_hash": h,
                "duplicate_of": d,
                "seen_at": s,
                "job": j,
                "item": json.loads(i) if i else None,
            }
            for v, h, d, s, j, i in rows
        ]

    def article_row(self, article_id: int) -> dict | None:
        """The bookkeeping columns of an article (first/last seen, version, output marks, claim)."""
        with self._lock:
            cur = self._conn.execute(
                "SELECT id, url, category, published, first_seen, last_seen, content_hash, duplicate_of, "
                "version, exported, library_exported, claim_job, claim_pid, claim_host, claim_at "
                "FROM articles WHERE id = ?",
                (article_id,),
            )
            row = cur.fetchone()
            return dict(zip([d[0] for d in cur.description], row, strict=True)) if row else None

    @staticmethod
    def _upsert_listings(conn: sqlite3.Connection, article_id: int, listings: Iterable[str], seen_at: str) -> None:
        conn.executemany(
            "INSERT INTO listings (id, listing, first_seen, last_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (id, listing) DO UPDATE SET "
            "first_seen = MIN(first_seen, excluded.first_seen), "
            "last_seen = MAX(last_seen, excluded.last_seen)",
            [(article_id, listing, seen_at, seen_at) for listing in set(listings or ())],
        )

    def listings(self, article_id: int) -> dict[str, tuple[str, str]]:
        """``{listing: (first_seen, last_seen)}``."""
        rows = self._read("SELECT listing, first_seen, last_seen FROM listings WHERE id = ?", (article_id,))
        return {listing: (first, last) for listing, first, last in rows}

    def record_listings(self, article_id: int, listings: Iterable[str], seen_at: str | None = None) -> None:
        with self._write() as conn:
            self._upsert_listings(conn, article_id, listings, seen_at or utc_stamp())

    def duplicate_of_map(self) -> dict[int, int | None]:
        return dict(self._read("SELECT id, duplicate_of FROM articles"))

    def near_duplicate_groups(self) -> list[list[int]]:
        with self._lock:
            return dedupe.NearDuplicates(self._conn).groups()

    # -- committing items ------------------------------------------------------------------------

    def commit_item(
        self, item: Mapping[str, Any], job: str, *, signature: Any = _UNSET, seen_at: str | None = None
    ) -> CommitResult:
        """Store an item in one transaction and say whether its outputs must be written.

        NEW: never seen, stored as version 1. CHANGED: ``content_hash`` differs, or the stored article was
        marked removed and is back (an item without ``removed_at``), stored as the next version. Both are
        pending output, claimed by ``job``. UNCHANGED: same hash; last_seen, listings and VOLATILE_FIELDS
        refreshed, no new version; when the stats changed, the library file (whose header shows them) is
        pending again. In the same transaction: the item's listings, its near-duplicate group
        (``duplicate_of`` is decided here: ``CommitResult.duplicate_of``), a new pending version of every
        other member whose ``duplicate_of`` changes, its frontier row removed, and the observation of its
        stats (at ``stats_observed_at``: a reparse of an archived page repeats an observation, which is kept
        once) with the next time it is due (``schedule.next_due``). ``signature``: a precomputed
        ``dedupe.signature(body_text)`` (computed when omitted).
        """
        item = dict(item)
        article_id = item["id"] = article_id_of(item.get("id"))
        if not item.get("content_hash"):
            item["content_hash"] = textmodel.content_hash(item.get("body_text") or "")
        if signature is _UNSET:
            signature = dedupe.signature(item.get("body_text") or "")
        seen_at = seen_at or item.get("crawled_at") or utc_stamp()
        observed_at = item.get("stats_observed_at") or item.get("crawled_at") or seen_at
        with self._write() as conn:
            row = conn.execute(
                "SELECT version, content_hash, item_json, duplicate_of, library_exported FROM articles WHERE id = ?",
                (article_id,),
            ).fetchone()
            stored = json.loads(row[2]) if row is not None else None
            groups = dedupe.NearDuplicates(conn).index(article_id, item.get("published"), signature)
            if row is None:
                outcome, version = Outcome.NEW, 1
                item["duplicate_of"] = groups.get(article_id)
                conn.execute(
                    "INSERT INTO articles (id, url, category, published, first_seen, last_seen, content_hash, "
                    "duplicate_of, version, exported, library_exported, claim_job, claim_pid, claim_host, claim_at, "
                    "item_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, 0, ?, ?, ?, ?, ?, ?)",
                    (
                        article_id,
                        item.get("url"),
                        item.get("category"),
                        item.get("published"),
                        seen_at,
                        seen_at,
                        item["content_hash"],
                        item["duplicate_of"],
                        self._library_owed(1),
                        *self._claim(job),
                        _dumps(item),
                    ),
                )
            elif row[1] != item["content_hash"] or (stored.get("removed_at") and not item.get("removed_at")):
                outcome, version = Outcome.CHANGED, row[0] + 1
                item["duplicate_of"] = groups.get(article_id, row[3])
                conn.execute(
                    "UPDATE versions SET item_json = ? WHERE id = ? AND version = ?", (row[2], article_id, row[0])
                )
                conn.execute(
                    "UPDATE articles SET url = ?, category = ?, published = ?, last_seen = MAX(last_seen, ?), "
                    "content_hash = ?, duplicate_of = ?, version = ?, library_exported = MAX(library_exported, ?), "
                    "claim_job = ?, claim_pid = ?, claim_host = ?, claim_at = ?, item_json = ? WHERE id = ?",
                    (
                        item.get("url"),
                        item.get("category"),
                        item.get("published"),
                        seen_at,
                        item["content_hash"],
                        item["duplicate_of"],
                        version,
                        self._library_owed(version),
                        *self._claim(job),
                        _dumps(item),
                        article_id,
                    ),
                )
            else:
                outcome, version = Outcome.UNCHANGED, row[0]
                restat = self.library and "stats" in item and item["stats"] != stored.get("stats")
                for field in VOLATILE_FIELDS:
                    if field in item:
                        stored[field] = item[field]
                item["duplicate_of"] = stored.get("duplicate_of")
                conn.execute(
                    "UPDATE articles SET last_seen = MAX(last_seen, ?), item_json = ? WHERE id = ?",
                    (seen_at, _dumps(stored), article_id),
                )
                if restat and row[4] >= version:  # its header shows the stats: the file is owed again
                    conn.execute(
                        "UPDATE articles SET library_exported = ?, claim_job = ?, claim_pid = ?, claim_host = ?, "
                        "claim_at = ? WHERE id = ? AND (claim_job IS NULL OR claim_job = ?)",
                        (version - 1, *self._claim(job), article_id, job),
                    )
            if outcome is not Outcome.UNCHANGED:
                conn.execute(
                    "INSERT INTO versions (id, version, content_hash, duplicate_of, seen_at, job) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (article_id, version, item["content_hash"], item["duplicate_of"], seen_at, job),
                )
            self._upsert_listings(conn, article_id, item.get("listings") or (), seen_at)
            conn.execute("DELETE FROM frontier WHERE id = ?", (article_id,))
            self._observe(conn, article_id, item.get("published"), observed_at, 200,
                          item.get("stats"), job)
            for other, duplicate_of in groups.items():
                if other != article_id:
                    self._reflag(conn, other, duplicate_of, job)
        return CommitResult(outcome, version, item["duplicate_of"])

    @staticmethod
    def _observe(conn: sqlite3.Connection, article_id: int, published: str | None, observed_at: str, status: int,
                 stats: Mapping | None, job: str, removal: str | None = None) -> None:
        """One observation, and the article's next revisit (``schedule.next_due``) from the latest one."""
        stats = stats if isinstance(stats, Mapping) else {}
        conn.execute(
            "INSERT OR IGNORE INTO observations (id, observed_at, status, views, comments, collects, job, removal) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (article_id, observed_at, status, stats.get("views"), stats.get("comments"), stats.get("collects"),
             job, removal),
        )
        StateStore._reschedule(conn, article_id, published)

    @staticmethod
    def _reschedule(conn: sqlite3.Connection, article_id: int, published: str | None) -> None:
        """``next_due`` from the latest observation that counts (a withheld removal does not), and the
        revisit claim released."""
        latest = conn.execute(
            "SELECT MAX(observed_at) FROM observations WHERE id = ? AND (removal IS NULL OR removal != ?)",
            (article_id, REMOVAL_WITHHELD),
        ).fetchone()[0]
        due = schedule.next_due(published, latest, article_id) if latest else None
        conn.execute("UPDATE articles SET next_due = ?, revisit_job = NULL WHERE id = ?", (due, article_id))

    def set_duplicate_of(self, article_id: int, duplicate_of: int | None, job: str) -> CommitResult:
        """Re-flag a stored article: a new pending version if the value differs (see ``_reflag``)."""
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM articles WHERE id = ?", (article_id,)).fetchone() is None:
                raise KeyError(article_id)
            return self._reflag(conn, article_id, duplicate_of, job)

    def _reflag(self, conn: sqlite3.Connection, article_id: int, duplicate_of: int | None, job: str) -> CommitResult:
        """The group's original changed: a new version that keeps body, hash and crawl time.

        Its ``emission_key`` differs from the previous version's, so it is written like any other
        CHANGED version. An article not stored (yet) has nothing to re-flag.
        """
        row = conn.execute("SELECT version, duplicate_of FROM articles WHERE id = ?", (article_id,)).fetchone()
        if row is None or row[1] == duplicate_of:
            return CommitResult(Outcome.UNCHANGED, row[0] if row else 0, duplicate_of)
        return self._revise(conn, article_id, job, duplicate_of=duplicate_of)

    def _revise(self, conn: sqlite3.Connection, article_id: int, job: str, **changes: Any) -> CommitResult:
        """A new version of a stored article with ``changes`` to its item (``duplicate_of``,
        ``removed_at``): same body, hash and crawl time; pending for every output, claimed by ``job``."""
        row = conn.execute(
            "SELECT version, content_hash, item_json FROM articles WHERE id = ?", (article_id,)
        ).fetchone()
        version = row[0] + 1
        item = json.loads(row[2])
        item.update(changes)
        conn.execute("UPDATE versions SET item_json = ? WHERE id = ? AND version = ?", (row[2], article_id, row[0]))
        conn.execute(
            "INSERT INTO versions (id, version, content_hash, duplicate_of, seen_at, job) VALUES (?, ?, ?, ?, ?, ?)",
            (article_id, version, row[1], item.get("duplicate_of"), utc_stamp(), job),
        )
        conn.execute(
            "UPDATE articles SET duplicate_of = ?, version = ?, library_exported = MAX(library_exported, ?), "
            "claim_job = ?, claim_pid = ?, claim_host = ?, claim_at = ?, item_json = ? WHERE id = ?",
            (item.get("duplicate_of"), version, self._library_owed(version), *self._claim(job), _dumps(item),
             article_id),
        )
        return CommitResult(Outcome.CHANGED, version, item.get("duplicate_of"))

    # -- revisits, observations and removals -------------------------------------------------------

    def claim_due(self, job: str, limit: int) -> list[tuple[int, str]]:
        """Claim up to ``limit`` stored articles due for a revisit now (``next_due`` passed, the most
        overdue first), that no live run is revisiting: (id, url)."""
        if limit <= 0:
            return []
        with self._write() as conn:
            live = sorted(self._live_jobs(conn) | {job})
            marks = ",".join("?" * len(live))
            rows = conn.execute(
                "SELECT id, url FROM articles WHERE (next_due IS NULL OR next_due <= ?) "
                f"AND (revisit_job IS NULL OR revisit_job NOT IN ({marks})) ORDER BY next_due, id LIMIT ?",
                (utc_stamp(), *live, limit),
            ).fetchall()
            conn.executemany("UPDATE articles SET revisit_job = ? WHERE id = ?", [(job, i) for i, _ in rows])
        return rows

    def due_count(self) -> int:
        """Stored articles due for a revisit now (claimed or not)."""
        return self._read("SELECT COUNT(*) FROM articles WHERE next_due IS NULL OR next_due <= ?", (utc_stamp(),))[0][0]

    def release_revisit(self, article_id: int) -> None:
        """A revisit that failed (not a removal): the article stays due, for a later run."""
        with self._write() as conn:
            conn.execute("UPDATE articles SET revisit_job = NULL WHERE id = ?", (article_id,))

    def removal_found(self, article_id: int, status: int, job: str) -> bool:
        """A fetch of a stored article found it gone (404, 410, a redirect away): an observation whose
        removal ``decide_removals`` marks or withholds when the run ends. False: not stored."""
        with self._write() as conn:
            row = conn.execute("SELECT published FROM articles WHERE id = ?", (article_id,)).fetchone()
            if row is None:
                return False
            self._observe(conn, article_id, row[0], utc_stamp(), status, None, job, REMOVAL_PENDING)
            conn.execute("DELETE FROM frontier WHERE id = ?", (article_id,))
        return True

    def decide_removals(self, job: str, share: float, minimum: int, *, by: str | None = None) -> RemovalDecision:
        """Mark or withhold the removals ``job`` found, in one transaction.

        Withheld when at least ``minimum`` were found and they are more than ``share`` of the run's
        revisits (fetches of articles observed before): that looks like a site fault, not deletions.
        Their observations then no longer count, so the articles are due again and a later run
        confirms. Marked otherwise: a new version with ``removed_at`` (the time it was found) for each
        article not marked already, pending for every output, claimed by ``by`` (default ``job``).
        """
        with self._write() as conn:
            pending = conn.execute(
                "SELECT o.id, o.observed_at, a.published, json_extract(a.item_json, '$.removed_at') "
                "FROM observations o JOIN articles a ON a.id = o.id WHERE o.job = ? AND o.removal = ? "
                "AND o.status != 200 ORDER BY o.id",
                (job, REMOVAL_PENDING),
            ).fetchall()
            revisits = conn.execute(
                "SELECT COUNT(*) FROM observations o WHERE o.job = ? AND EXISTS "
                "(SELECT 1 FROM observations p WHERE p.id = o.id AND p.observed_at < o.observed_at)",
                (job,),
            ).fetchone()[0]
            withhold = len(pending) >= minimum and len(pending) > share * revisits
            marked = 0
            for article_id, observed_at, published, removed_at in pending:
                conn.execute(
                    "UPDATE observations SET removal = ? WHERE id = ? AND observed_at = ?",
                    (REMOVAL_WITHHELD if withhold else REMOVAL_MARKED, article_id, observed_at),
                )
                if withhold:
                    self._reschedule(conn, article_id, published)
                elif removed_at is None:
                    self._revise(conn, article_id, by or job, removed_at=observed_at)
                    marked += 1
        return RemovalDecision(len(pending), revisits, marked, len(pending) if withhold else 0)

    def undecided_runs(self, job: str) -> list[str]:
        """Runs other than ``job``, no longer live, that found removals they did not decide (killed)."""
        with self._write() as conn:
            live = self._live_jobs(conn) | {job}
            jobs = [row[0] for row in conn.execute(
                "SELECT DISTINCT job FROM observations WHERE status != 200 AND removal = ?", (REMOVAL_PENDING,))]
        return sorted(j for j in jobs if j not in live)

    def observations(self, article_id: int) -> list[dict]:
        """An article's observations, oldest first."""
        with self._lock:
            cur = self._conn.execute(
                "SELECT observed_at, status, views, comments, collects, job, removal FROM observations "
                "WHERE id = ? ORDER BY observed_at", (article_id,))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def iter_observations(self, batch: int = 5000) -> Iterator[tuple[int, str, str | None, int, int, int]]:
        """Every observation of stats (status 200), by id then time: (id, observed_at, published,
        views, comments, collects); read in batches, no read transaction stays open."""
        last = (-(1 << 63), "")
        while True:
            rows = self._read(
                "SELECT o.id, o.observed_at, a.published, o.views, o.comments, o.collects FROM observations o "
                "JOIN articles a ON a.id = o.id WHERE o.status = 200 AND (o.id, o.observed_at) > (?, ?) "
                "ORDER BY o.id, o.observed_at LIMIT ?",
                (*last, batch),
            )
            yield from rows
            if len(rows) < batch:
                return
            last = (rows[-1][0], rows[-1][1])

    def _library_owed(self, version: int) -> int:
        """The library mark of a new ``version``: pending (0), or already clear if no library is kept."""
        return 0 if self.library else version

    @staticmethod
    def _claim(job: str) -> tuple[str, int, str, str]:
        return job, os.getpid(), socket.gethostname(), utc_stamp()

    def sign_unsigned(self, batch: int = 200) -> int:
        """Index stored articles that have no current signature (an older state, new parameters).

        Re-flags follow as in ``commit_item``, under the job ``"resign"``. Returns how many were signed.
        """
        done = 0
        while True:
            rows = self._read(
                "SELECT id, item_json FROM articles WHERE id NOT IN "
                "(SELECT id FROM minhash WHERE params = ?) ORDER BY id LIMIT ?",
                (dedupe.SIGNATURE_PARAMS, batch),
            )
            if not rows:
                return done
            with self._write() as conn:
                for article_id, blob in rows:
                    item = json.loads(blob)
                    sig = dedupe.signature(item.get("body_text") or "")
                    groups = dedupe.NearDuplicates(conn).index(article_id, item.get("published"), sig)
                    for other, duplicate_of in groups.items():
                        self._reflag(conn, other, duplicate_of, "resign")
            done += len(rows)

    # -- outputs ---------------------------------------------------------------------------------

    def mark_exported(
        self, article_id: int, version: int, paths: Mapping[str, str] | None = None, job: str | None = None
    ) -> dict[str, str]:
        """Record that every output of ``version`` was emitted (JSONL line + files at ``paths``, kind -> path).

        Returns ``{kind: old_path}`` for paths that replaced a different earlier one (the pipeline may
        delete those files). Marking an older version than the current one records it, but the
        current version stays pending (another process committed a newer one meanwhile).
        """
        replaced: dict[str, str] = {}
        with self._write() as conn:
            row = conn.execute("SELECT version FROM articles WHERE id = ?", (article_id,)).fetchone()
            if row is None:
                raise KeyError(article_id)
            for kind, path in (paths or {}).items():
                replaced.update(self._set_export_path(conn, article_id, kind, path))
            self._mark(conn, [(article_id, version)], job, OUTPUT_KINDS)
        return replaced

    def mark_exported_many(
        self, versions: Sequence[tuple[int, int]], job: str | None = None, kinds: Sequence[str] = OUTPUT_KINDS
    ) -> None:
        """Clear the pending marks of ``kinds`` for many versions in one transaction (no paths)."""
        if versions:
            with self._write() as conn:
                self._mark(conn, versions, job, kinds)

    @staticmethod
    def _mark(
        conn: sqlite3.Connection, versions: Sequence[tuple[int, int]], job: str | None, kinds: Sequence[str]
    ) -> None:
        """Clear the marks of ``kinds`` (a JSONL line is an emission); the writer's claim ends once the
        current version has every output written."""
        if "jsonl" in kinds:
            now = utc_stamp()
            conn.executemany(
                "INSERT OR IGNORE INTO emissions (id, version, job, emitted_at) VALUES (?, ?, ?, ?)",
                [(article_id, version, job, now) for article_id, version in versions],
            )
        sets = ", ".join(f"{_DONE_COLUMN[kind]} = MAX({_DONE_COLUMN[kind]}, :version)" for kind in kinds)
        conn.executemany(
            f"UPDATE articles SET {sets} WHERE id = :id",
            [{"id": article_id, "version": version} for article_id, version in versions],
        )
        conn.executemany(
            "UPDATE articles SET claim_job = NULL, claim_pid = NULL, claim_host = NULL, claim_at = NULL "
            f"WHERE id = ? AND claim_job IS NOT NULL AND NOT {_ANY_PENDING}",
            [(article_id,) for article_id, _ in versions],
        )

    def pending_exports(self) -> list[Pending]:
        """Every article whose current version has an output not yet written, by id (claimed or not)."""
        return self._pending(
            self._read(f"SELECT id, version, claim_job, item_json FROM articles WHERE {_ANY_PENDING} ORDER BY id")
        )

    def iter_pending(self, job: str, kind: str = "jsonl", batch: int = 200) -> Iterator[Pending]:
        """The versions ``job`` holds whose ``kind`` output is pending, by id, read in batches (a first
        crawl has them all)."""
        for rows in self._paged(
            f"SELECT id, version, claim_job, item_json FROM articles WHERE {_DONE_COLUMN[kind]} < version "
            "AND claim_job = ?", (job,), batch
        ):
            yield from self._pending(rows)

    def pending_keys(self, job: str, kind: str, batch: int = 1000) -> Iterator[Claimed]:
        """``iter_pending`` without loading the items: (id, version, emission key), by id."""
        for rows in self._paged(
            f"SELECT id, version, {_KEY_COLUMNS} "
            f"FROM articles WHERE {_DONE_COLUMN[kind]} < version AND claim_job = ?", (job,), batch
        ):
            yield from (Claimed(row[0], row[1], tuple(row[2:]), job) for row in rows)

    def _paged(self, sql: str, params: tuple, batch: int) -> Iterator[list[tuple]]:
        """The rows of ``sql`` (a SELECT of articles with a WHERE, the id first) a page at a time, by id:
        no read transaction stays open."""
        last = -(1 << 63)
        while True:
            rows = self._read(f"{sql} AND id > ? ORDER BY id LIMIT ?", (*params, last, batch))
            if rows:
                yield rows
            if len(rows) < batch:
                return
            last = rows[-1][0]

    def _pending(self, rows: Sequence[tuple[int, int, str | None, str]]) -> list[Pending]:
        items = self._items([(row[0], row[3]) for row in rows])
        return [Pending(i, v, item, emission_key(item), c) for (i, v, c, _), item in zip(rows, items, strict=True)]

    def claim_pending(self, job: str) -> list[Claimed]:
        """Take over the pending versions whose writer is gone; returns them (id, version, key), by id.

        Gone: no claim, or a run that is no longer live (``_live_jobs``). Versions held by a live run
        (another job running now, or ``job`` itself) are left alone. Items are not loaded: a first
        crawl killed late can leave tens of thousands (``iter_pending`` reads them in batches).
        """
        with self._write() as conn:
            live = self._live_jobs(conn) | {job}
            rows = [
                Claimed(row[0], row[1], tuple(row[3:]), row[2])
                for row in conn.execute(
                    f"SELECT id, version, claim_job, {_KEY_COLUMNS} FROM articles WHERE {_ANY_PENDING} ORDER BY id"
                )
                if row[2] not in live
            ]
            conn.executemany(
                "UPDATE articles SET claim_job = ?, claim_pid = ?, claim_host = ?, claim_at = ? WHERE id = ?",
                [(*self._claim(job), row.id) for row in rows],
            )
        return rows

    def pending_outputs(self, job: str, sample: int = 5) -> dict[str, tuple[int, list[str]]]:
        """What ``job`` still owes, by output kind: (count, the urls of the first ``sample``)."""
        owed = {}
        for kind, column in _DONE_COLUMN.items():
            count = self._read(f"SELECT COUNT(*) FROM articles WHERE {column} < version AND claim_job = ?", (job,))
            if count[0][0]:
                urls = self._read(
                    f"SELECT COALESCE(url, id) FROM articles WHERE {column} < version AND claim_job = ? "
                    "ORDER BY id LIMIT ?",
                    (job, sample),
                )
                owed[kind] = (count[0][0], [str(row[0]) for row in urls])
        return owed

    def set_export_path(self, article_id: int, kind: str, path: str) -> str | None:
        """Record where ``kind`` of an article was written; returns the different old path, if any."""
        with self._write() as conn:
            return self._set_export_path(conn, article_id, kind, path).get(kind)

    @staticmethod
    def _set_export_path(conn: sqlite3.Connection, article_id: int, kind: str, path: str) -> dict[str, str]:
        old = conn.execute("SELECT path FROM exports WHERE id = ? AND kind = ?", (article_id, kind)).fetchone()
        conn.execute(
            "INSERT INTO exports (id, kind, path) VALUES (?, ?, ?) "
            "ON CONFLICT (id, kind) DO UPDATE SET path = excluded.path",
            (article_id, kind, os.fspath(path)),
        )
        return {kind: old[0]} if old and old[0] != os.fspath(path) else {}

    def export_path(self, article_id: int, kind: str) -> str | None:
        rows = self._read("SELECT path FROM exports WHERE id = ? AND kind = ?", (article_id, kind))
        return rows[0][0] if rows else None

    def emissions(self, article_id: int) -> list[tuple[int, str | None, str]]:
        """``[(version, job, emitted_at)]`` of completed emissions, oldest first."""
        return self._read("SELECT version, job, emitted_at FROM emissions WHERE id = ? ORDER BY version", (article_id,))

    # -- walks and the frontier ------------------------------------------------------------------

    def begin_walk(self, listing: str, job: str, *, full: bool = False) -> WalkStart | None:
        """Claim a listing's walk for ``job``: resume it where a gone run left it, or start at page 1.

        A listing with an open gap is resumed at its first gap, whatever ended the run that left it.
        A new walk is 'incremental' (it may stop at known pages) only when an earlier walk reached the
        listing's end and ``full`` is not asked. None: another live run is walking it.
        """
        now = utc_stamp()
        with self._write() as conn:
            row = conn.execute(
                "SELECT status, mode, next_page, completed_at, claim_job, run FROM walks WHERE listing = ?",
                (listing,),
            ).fetchone()
            live = self._live_jobs(conn)
            if row is not None and row[4] not in (None, job) and row[4] in live:
                return None
            gap = conn.execute("SELECT MIN(page) FROM gaps WHERE listing = ?", (listing,)).fetchone()[0]
            if row is not None and gap is not None:
                start = WalkStart(min(gap, row[2]) if row[0] == "walking" else gap, "full" if full else row[1], True)
            elif row is not None and row[0] == "ended" and not full and self._interrupted(conn, row[5], live):
                # The run that ended this walk was killed before it finished: this run carries on
                # from where it stopped, so the walk is done; this run takes it over.
                conn.execute("UPDATE walks SET run = ?, updated_at = ? WHERE listing = ?", (job, now, listing))
                return WalkStart(row[2], row[1], True, finished=True)
            elif row is not None and row[0] == "walking":
                start = WalkStart(row[2], "full" if full else row[1], True)
            else:
                start = WalkStart(1, "incremental" if row is not None and row[3] and not full else "full", False)
            conn.execute(
                "INSERT INTO walks (listing, status, mode, next_page, claim_job, run, updated_at) "
                "VALUES (?, 'walking', ?, ?, ?, ?, ?) ON CONFLICT (listing) DO UPDATE SET status = 'walking', "
                "mode = excluded.mode, next_page = excluded.next_page, end_reason = NULL, "
                "claim_job = excluded.claim_job, run = excluded.run, updated_at = excluded.updated_at",
                (listing, start.mode, start.page, job, job, now),
            )
        return start

    def record_listing_page(
        self,
        listing: str,
        job: str,
        cards: Sequence[tuple[int, str]],
        *,
        next_page: int | None,
        page: int | None = None,
        refetch_known: bool = False,
        budget: int | None = None,
        since: str | None = None,
    ) -> CardFate:
        """One listing page, in one transaction: memberships, new frontier rows, the walk's next page,
        and the page's gap closed if it had one (``page``).

        Cards not stored and not claimed by a live run are claimed for ``job`` (at most ``budget`` of
        them; the rest stay queued for a later run) and returned to fetch; a failed article only once
        its ``next_try`` has come (``waiting`` counts the others). ``refetch_known`` fetches
        stored articles too (refresh). With ``since``, a card already fetched and dated before it is
        not fetched again; its date comes back in ``dates``, as do stored articles' dates. A card whose
        id is no SQLite INTEGER is left out (``rejected``).
        """
        rejected = []
        valid = []
        for card_id, url in cards:
            try:
                valid.append((article_id_of(card_id), url))
            except BadId:
                rejected.append((card_id, url))
        cards = valid
        now = utc_stamp()
        due = self._now_stamp()
        fetch: list[tuple[int, str]] = []
        dates: dict[int, str | None] = {}
        known = again = new = elsewhere = over_budget = waiting = 0
        with self._write() as conn:
            live = self._live_jobs(conn) | {job}
            started = (conn.execute("SELECT started_at FROM runs WHERE job = ?", (job,)).fetchone() or (now,))[0]
            for article_id, url in cards:
                self._upsert_listings(conn, article_id, (listing,), now)
                stored = conn.execute(
                    "SELECT published, claim_job, last_seen >= ? FROM articles WHERE id = ?", (started, article_id)
                ).fetchone()
                if stored is not None and (stored[1] == job or (refetch_known and stored[2])):
                    again += 1  # stored (or refreshed) by this run, from another listing
                    dates[article_id] = stored[0]
                    continue
                if stored is not None and not refetch_known:
                    known += 1
                    dates[article_id] = stored[0]
                    continue
                row = conn.execute(
                    "SELECT state, published, next_try, claim_job FROM frontier WHERE id = ?", (article_id,)
                ).fetchone()
                if row is None:
                    new += stored is None
                    conn.execute(
                        "INSERT INTO frontier (id, url, state, discovered_at) VALUES (?, ?, 'queued', ?)",
                        (article_id, url, now),
                    )
                elif row[3] == job:
                    again += 1  # requested by this run from another listing (in flight, failed or older)
                    dates[article_id] = row[1]
                    continue
                elif row[3] in live:
                    elsewhere += 1
                    dates[article_id] = row[1]
                    continue
                elif row[0] == "older" and since is not None and row[1] is not None and row[1][:10] < since:
                    dates[article_id] = row[1]
                    continue
                elif row[0] == "failed" and row[2] is not None and row[2] > due:
                    waiting += 1
                    dates[article_id] = None
                    continue
                if budget is not None and len(fetch) >= budget:
                    over_budget += 1
                    dates[article_id] = None
                    continue
                conn.execute("UPDATE frontier SET claim_job = ? WHERE id = ?", (job, article_id))
                fetch.append((article_id, url))
            if next_page is not None:
                conn.execute(
                    "UPDATE walks SET next_page = ?, updated_at = ? WHERE listing = ?", (next_page, now, listing)
                )
            if page is not None:
                conn.execute("DELETE FROM gaps WHERE listing = ? AND page = ?", (listing, page))
        return CardFate(fetch, dates, known, again, new, elsewhere, over_budget, tuple(rejected), waiting)

    def record_gap(self, listing: str, page: int, reason: str) -> None:
        """A listing page failed: its gap, and the walk moved past it, in one transaction."""
        now = utc_stamp()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO gaps (listing, page, reason, failed_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (listing, page) DO UPDATE SET reason = excluded.reason, failed_at = excluded.failed_at",
                (listing, page, reason, now),
            )
            conn.execute(
                "UPDATE walks SET next_page = MAX(next_page, ?), updated_at = ? WHERE listing = ?",
                (page + 1, now, listing),
            )

    def gaps(self, listing: str | None = None) -> list[tuple[str, int, str]]:
        """Open gaps ``(listing, page, reason)``, of one listing or all, in order."""
        where, params = ("WHERE listing = ?", (listing,)) if listing is not None else ("", ())
        return self._read(f"SELECT listing, page, reason FROM gaps {where} ORDER BY listing, page", params)

    def end_walk(self, listing: str, reason: str, *, reached_end: bool, end_page: int | None = None,
                 reason_if_gaps: str | None = None) -> str:
        """A walk stops; returns the reason recorded: ``reason_if_gaps`` (when given) if it leaves a gap
        open, else ``reason``. A walk with an open gap is not complete: the next walk starts at the
        first gap. ``reached_end``: it saw the listing's last page, ``end_page`` (a 404: gaps from
        there on are no gaps), and later walks may stop at known pages."""
        now = utc_stamp()
        with self._write() as conn:
            if end_page is not None:
                conn.execute("DELETE FROM gaps WHERE listing = ? AND page >= ?", (listing, end_page))
            gaps = conn.execute("SELECT COUNT(*) FROM gaps WHERE listing = ?", (listing,)).fetchone()[0]
            reason = (reason_if_gaps or reason) if gaps else reason
            conn.execute(
                "UPDATE walks SET status = 'ended', end_reason = ?, updated_at = ?, "
                "completed_at = CASE WHEN ? THEN ? ELSE completed_at END WHERE listing = ?",
                (reason, now, reached_end and not gaps, now, listing),
            )
        return reason

    def walk(self, listing: str) -> dict | None:
        """A listing's walk row (status, mode, next_page, end_reason, completed_at, claim_job)."""
        with self._lock:
            cur = self._conn.execute(
                "SELECT status, mode, next_page, end_reason, completed_at, claim_job FROM walks WHERE listing = ?",
                (listing,),
            )
            row = cur.fetchone()
            return dict(zip([d[0] for d in cur.description], row, strict=True)) if row else None

    def claim_frontier(self, job: str, listings: Sequence[str], batch: int = 100) -> list[tuple[int, str]]:
        """Claim up to ``batch`` frontier articles of these listings that no live run holds (left by a
        killed run, over an earlier limit, failed and due again)."""
        marks = ",".join("?" * len(listings))
        with self._write() as conn:
            live = self._live_jobs(conn) | {job}
            rows = [
                (article_id, url)
                for article_id, url, claim in conn.execute(
                    "SELECT f.id, f.url, f.claim_job FROM frontier f WHERE f.state != 'older' "
                    "AND (f.next_try IS NULL OR f.next_try <= ?) "
                    f"AND EXISTS (SELECT 1 FROM listings l WHERE l.id = f.id AND l.listing IN ({marks})) "
                    "AND (f.claim_job IS NULL OR f.claim_job != ?) ORDER BY f.id",
                    (self._now_stamp(), *listings, job),
                )
                if claim not in live
            ][:batch]
            conn.executemany("UPDATE frontier SET claim_job = ? WHERE id = ?", [(job, i) for i, _ in rows])
        return rows

    def _now_stamp(self, later_s: float = 0.0) -> str:
        return utc_stamp(when=now().timestamp() + later_s)

    def retry_delay_s(self, attempts: int) -> float:
        """How long a run waits before trying again an article that failed ``attempts`` times."""
        return min(self.retry_base_s * 2.0 ** max(attempts - 1, 0), self.retry_max_s)

    def article_failed(self, article_id: int, reason: str) -> str | None:
        """A fetch failed: the article stays in the frontier, tried again by a run after its backoff;
        returns when (None: no frontier row)."""
        with self._write() as conn:
            row = conn.execute("SELECT attempts FROM frontier WHERE id = ?", (article_id,)).fetchone()
            if row is None:
                return None
            next_try = self._now_stamp(self.retry_delay_s(row[0] + 1))
            conn.execute(
                "UPDATE frontier SET state = 'failed', attempts = attempts + 1, last_error = ?, next_try = ? "
                "WHERE id = ?",
                (reason, next_try, article_id),
            )
        return next_try

    def requeue(self, reason: str | None = None) -> int:
        """Make failed articles (all, or those whose last failure was ``reason``) due now, their
        attempts forgotten; returns how many."""
        where, params = ("AND last_error = ?", (reason,)) if reason is not None else ("", ())
        with self._write() as conn:
            return conn.execute(
                f"UPDATE frontier SET attempts = 0, next_try = NULL WHERE state = 'failed' {where}", params
            ).rowcount

    def retry_schedule(self) -> list[tuple[str, int, str | None, str | None]]:
        """Failed articles waiting for a retry, by reason: ``(reason, count, next, last)`` with the first
        and last ``next_try`` (None: due now), most first."""
        return self._read(
            "SELECT COALESCE(last_error, '?'), COUNT(*), MIN(next_try), MAX(next_try) FROM frontier "
            "WHERE state = 'failed' GROUP BY 1 ORDER BY 2 DESC, 1"
        )

    def article_older(self, article_id: int, published: str | None) -> None:
        """Fetched, but dated before the run's ``since``: kept out of the state, its date remembered."""
        with self._write() as conn:
            conn.execute("UPDATE frontier SET state = 'older', published = ? WHERE id = ?", (published, article_id))

    def reparse_targets(self) -> dict[int, tuple[str | None, str | None]]:
        """The articles a reparse may rebuild: every stored one, (crawled_at, removed_at) of its item,
        and every frontier article whose page failed (None, None)."""
        targets: dict[int, tuple[str | None, str | None]] = {
            article_id: (None, None)
            for (article_id,) in self._read("SELECT id FROM frontier WHERE state = 'failed'")
        }
        for article_id, crawled_at, removed_at in self._read(
            "SELECT id, json_extract(item_json, '$.crawled_at'), json_extract(item_json, '$.removed_at') FROM articles"
        ):
            targets[article_id] = (crawled_at, removed_at)
        return targets

    def frontier_counts(self) -> dict[str, int]:
        """Frontier rows by state; 'waiting' counts the failed ones whose next try has not come."""
        counts = dict(self._read("SELECT state, COUNT(*) FROM frontier GROUP BY state"))
        counts["waiting"] = self._read(
            "SELECT COUNT(*) FROM frontier WHERE state = 'failed' AND next_try > ?", (self._now_stamp(),)
        )[0][0]
        return counts

    def cross_listed(self, listings: Sequence[str]) -> int:
        """Articles shown by more than one of these listings."""
        marks = ",".join("?" * len(listings))
        return self._read(
            f"SELECT COUNT(*) FROM (SELECT id FROM listings WHERE listing IN ({marks}) "
            "GROUP BY id HAVING COUNT(*) > 1)",
            listings,
        )[0][0]
