"""Persistent crawl state: one SQLite file, the single source of truth for "have we got this article".

Concurrency: WAL journal, a 30 s busy timeout, and every write in one short ``BEGIN IMMEDIATE``
transaction that reads and writes together, so several processes (Scrapyd jobs) can share the file:
the write lock is taken before the read, so "is it new?" and "store it" cannot interleave across
processes (two jobs committing the same new article: exactly one gets NEW). ``synchronous=FULL``:
a committed NEW/CHANGED survives power loss before its JSONL line is written, so a line is never
emitted for a commit that could be rolled back (which would re-emit the article next run). WAL
needs a local file system (not NFS).

Tables
------
articles   one row per article: the latest item (``item_json``), its ``version``, ``exported`` (the
           highest version whose emission completed) and the claim of whoever is emitting it
versions   one row per version: hash, duplicate_of, job, time; ``item_json`` of superseded versions
           (the current one lives in ``articles``)
listings   (id, listing) first/last seen
exports    (id, kind) -> path of written files ('markdown', ...)
emissions  (id, version) -> job and time the emission completed
walks      listings once walked to their end with every article answered (incremental walks may
           stop at known pages only there: a first crawl killed midway must be walked again in full)
minhash    (id) -> near-duplicate signature (see woshipm_crawler.dedupe), ``seq`` for incremental loads

Emission protocol (crash safety; the pipeline follows it)
---------------------------------------------------------
At spider open, before crawling:
  a. ``store = StateStore(path)``; ``index = dedupe.NearDuplicateIndex.load(store)``.
  b. Re-flags a dead run left undone: ``for id, dup in index.reconcile(store.duplicate_of_map())``:
     ``store.set_duplicate_of(id, dup, job)`` (each CHANGED one is a new pending version).
  c. ``for p in store.claim_pending(job)``: takes over every pending version whose emitter is gone
     (same host and dead pid; a closed crawl of this process; or a claim older than ``stale_after``,
     600 s). ``present = jsonl_has(all_jsonl_files, [p.key for p in pending])``; append the JSONL line
     of ``p.item`` only when ``p.key not in present``; rewrite the Markdown file unconditionally
     (idempotent); ``mark_exported(p.id, p.version, {"markdown": path}, job)``.
Per item:
  1. ``sig = dedupe.signature(body_text)``; ``index.refresh(store)``;
     ``item["duplicate_of"] = index.find_original(id, published, sig)``.
  2. ``result = store.commit_item(item, job, signature=sig)``: NEW or CHANGED makes the version
     *pending* and claims it for this process (job, pid, host, time). UNCHANGED: nothing to emit.
  3. If ``result.emit``: append the JSONL line (one ``os.write`` of the whole line, fsync), write the
     Markdown file (temp file + ``os.replace``), ``mark_exported(id, result.version, paths, job)``.
  4. ``for other, dup in index.add(id, published, sig).items()`` (other != id):
     ``store.set_duplicate_of(other, dup, job)``; emit each CHANGED one as in 3 (item:
     ``store.get_item(other)``).
A kill anywhere leaves either a pending claimed version (redone by c, the key check preventing a
second JSONL line) or a stale duplicate_of (redone by b). Every version thus ends up exactly once
in the union of JSONL files, once in the library, once in state. ``emission_key`` is
(id, content_hash, crawled_at, duplicate_of): it tells apart a re-flag and an A -> B -> A body.

Times are UTC ``YYYY-MM-DDTHH:MM:SSZ``.
"""

from __future__ import annotations

import calendar
import enum
import errno
import json
import os
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple

from woshipm_crawler import text as textmod

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0
STALE_AFTER_S = 600.0
# Fields of an UNCHANGED item refreshed into the stored item (they change without the body changing
# and are not part of the emission key); listings are merged, not replaced.
VOLATILE_FIELDS = ("stats",)

_SCHEMA = """
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
CREATE TABLE IF NOT EXISTS minhash (
    id            INTEGER PRIMARY KEY,
    published     TEXT,
    signature     BLOB,
    params        TEXT NOT NULL,
    seq           INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS minhash_seq ON minhash(seq);
CREATE TABLE IF NOT EXISTS walks (
    listing       TEXT PRIMARY KEY,
    completed_at  TEXT NOT NULL
);
"""

# Future migrations: MIGRATIONS[n] takes a schema at version n to n + 1 (run inside the transaction).
MIGRATIONS: dict[int, str] = {}


_UNSET: Any = object()
# Jobs that an open StateStore of this process has committed or claimed for, with open-store counts:
# a claim by this pid is live only while its job is here (a closed or crashed crawl's claims are not).
_LIVE_JOBS: dict[str, int] = {}
_LIVE_LOCK = threading.Lock()


class Outcome(str, enum.Enum):
    NEW = "new"
    CHANGED = "changed"
    UNCHANGED = "unchanged"


class CommitResult(NamedTuple):
    outcome: Outcome
    version: int

    @property
    def emit(self) -> bool:
        """Whether this version must now be emitted (JSONL + Markdown) and then mark_exported."""
        return self.outcome is not Outcome.UNCHANGED


class Pending(NamedTuple):
    id: int
    version: int
    item: dict
    key: tuple
    claim_job: str | None


def utcnow() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def emission_key(item: Mapping[str, Any]) -> tuple:
    """What identifies one emitted version in a JSONL file: (id, content_hash, crawled_at, duplicate_of).

    ``content_hash`` alone is not enough: a body that changes A -> B -> A repeats a hash (the fetch
    time tells them apart), and a re-flag (``set_duplicate_of``) keeps the hash and the fetch time.
    """
    return (int(item["id"]), item.get("content_hash"), item.get("crawled_at"), item.get("duplicate_of"))


_HASH_RE = re.compile(rb'"content_hash"\s*:\s*"([0-9a-f]{64})"')


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


def _dumps(item: Mapping[str, Any]) -> str:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM  # exists, owned by someone else
    return True


def _age_s(stamp: str | None) -> float:
    if not stamp:
        return float("inf")
    try:
        then = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return float("inf")
    return time.time() - then


class StateStore:
    """The crawl state in one SQLite file; safe to share between processes and threads.

    >>> with StateStore("state.sqlite3") as store:
    ...     result = store.commit_item(item, job="job-1")
    """

    def __init__(self, path: str | os.PathLike, busy_timeout: float = BUSY_TIMEOUT_S) -> None:
        self.path = os.fspath(path)
        self._lock = threading.RLock()  # one connection, serialised: pipelines may use threads
        self._jobs: set[str] = set()
        self._conn = sqlite3.connect(
            self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        self._set_wal(busy_timeout)
        self._conn.execute("PRAGMA synchronous = FULL")
        self._migrate()

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
                raise RuntimeError(
                    f"{self.path} has schema {version}, newer than this code ({SCHEMA_VERSION})"
                )
            if version == 0:
                # Statement by statement: executescript() would COMMIT our transaction first.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            else:
                for step in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[step].split(";"):
                        if statement.strip():
                            conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- plumbing --------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; the write lock is taken up front (no upgrade deadlocks)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, params: Iterable = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
        with _LIVE_LOCK:
            for job in self._jobs:
                _LIVE_JOBS[job] -= 1
                if not _LIVE_JOBS[job]:
                    del _LIVE_JOBS[job]
            self._jobs.clear()

    def _register(self, job: str) -> None:
        if job not in self._jobs:
            with _LIVE_LOCK:
                self._jobs.add(job)
                _LIVE_JOBS[job] = _LIVE_JOBS.get(job, 0) + 1

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- what we have ----------------------------------------------------------------------------

    def known_ids(self) -> set[int]:
        return {row[0] for row in self._read("SELECT id FROM articles")}

    def is_known(self, article_id: int) -> bool:
        return bool(self._read("SELECT 1 FROM articles WHERE id = ?", (article_id,)))

    def count(self) -> int:
        return self._read("SELECT COUNT(*) FROM articles")[0][0]

    def get_item(self, article_id: int) -> dict | None:
        rows = self._read("SELECT item_json FROM articles WHERE id = ?", (article_id,))
        return json.loads(rows[0][0]) if rows else None

    def iter_items(self, batch: int = 500) -> Iterator[dict]:
        """Every latest item, ordered by id; read in batches so no read transaction stays open."""
        last = -1 << 62
        while True:
            rows = self._read(
                "SELECT id, item_json FROM articles WHERE id > ? ORDER BY id LIMIT ?", (last, batch)
            )
            if not rows:
                return
            for _, blob in rows:
                yield json.loads(blob)
            last = rows[-1][0]

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
        """The bookkeeping columns of an article (first/last seen, version, exported, claim)."""
        with self._lock:
            cur = self._conn.execute(
                "SELECT id, url, category, published, first_seen, last_seen, content_hash, duplicate_of, "
                "version, exported, claim_job, claim_pid, claim_host, claim_at FROM articles WHERE id = ?",
                (article_id,),
            )
            row = cur.fetchone()
            return dict(zip([d[0] for d in cur.description], row, strict=True)) if row else None

    def duplicate_of_map(self) -> dict[int, int | None]:
        return dict(self._read("SELECT id, duplicate_of FROM articles"))

    # -- listings --------------------------------------------------------------------------------

    def record_listings(self, article_id: int, listings: Iterable[str], seen_at: str | None = None) -> None:
        seen_at = seen_at or utcnow()
        with self._write() as conn:
            self._upsert_listings(conn, article_id, listings, seen_at)

    @staticmethod
    def _upsert_listings(
        conn: sqlite3.Connection, article_id: int, listings: Iterable[str], seen_at: str
    ) -> None:
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

    # -- committing items ------------------------------------------------------------------------

    def commit_item(
        self, item: Mapping[str, Any], job: str, *, signature: Any = _UNSET, seen_at: str | None = None
    ) -> CommitResult:
        """Store an item atomically and say whether it must be emitted (see the module docstring).

        NEW: never seen, stored as version 1. CHANGED: ``content_hash`` differs, stored as the next
        version. Both are pending export, claimed by this process. UNCHANGED: same hash; last_seen,
        listings and VOLATILE_FIELDS refreshed, nothing to emit. A missing ``content_hash`` is
        computed from ``body_text``. ``signature`` (a dedupe signature, or None for "too short") is
        stored in the same transaction when given; when not given, a NEW/CHANGED body drops any
        stored signature, so ``NearDuplicateIndex.load`` recomputes it from the stored body.
        """
        item = dict(item)
        article_id = int(item["id"])
        self._register(job)
        if not item.get("content_hash"):
            item["content_hash"] = textmod.content_hash(item.get("body_text") or "")
        seen_at = seen_at or item.get("crawled_at") or utcnow()
        now = utcnow()
        claim = (job, os.getpid(), socket.gethostname(), now)
        with self._write() as conn:
            row = conn.execute(
                "SELECT version, content_hash, item_json FROM articles WHERE id = ?", (article_id,)
            ).fetchone()
            if row is None:
                outcome, version = Outcome.NEW, 1
                conn.execute(
                    "INSERT INTO articles (id, url, category, published, first_seen, last_seen, "
                    "content_hash, duplicate_of, version, exported, claim_job, claim_pid, claim_host, "
                    "claim_at, item_json) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, 0, ?, ?, ?, ?, ?)",
                    (
                        article_id,
                        item.get("url"),
                        item.get("category"),
                        item.get("published"),
                        seen_at,
                        seen_at,
                        item["content_hash"],
                        item.get("duplicate_of"),
                        *claim,
                        _dumps(item),
                    ),
                )
            elif row[1] != item["content_hash"]:
                outcome, version = Outcome.CHANGED, row[0] + 1
                conn.execute(
                    "UPDATE versions SET item_json = ? WHERE id = ? AND version = ?",
                    (row[2], article_id, row[0]),
                )
                conn.execute(
                    "UPDATE articles SET url = ?, category = ?, published = ?, "
                    "last_seen = MAX(last_seen, ?), content_hash = ?, duplicate_of = ?, version = ?, "
                    "claim_job = ?, claim_pid = ?, "
                    "claim_host = ?, claim_at = ?, item_json = ? WHERE id = ?",
                    (
                        item.get("url"),
                        item.get("category"),
                        item.get("published"),
                        seen_at,
                        item["content_hash"],
                        item.get("duplicate_of"),
                        version,
                        *claim,
                        _dumps(item),
                        article_id,
                    ),
                )
            else:
                outcome, version = Outcome.UNCHANGED, row[0]
                stored = json.loads(row[2])
                for field in VOLATILE_FIELDS:
                    if field in item:
                        stored[field] = item[field]
                stored["listings"] = sorted(
                    set(stored.get("listings") or ()) | set(item.get("listings") or ())
                )
                conn.execute(
                    "UPDATE articles SET last_seen = MAX(last_seen, ?), item_json = ? WHERE id = ?",
                    (seen_at, _dumps(stored), article_id),
                )
            if outcome is not Outcome.UNCHANGED:
                conn.execute(
                    "INSERT INTO versions (id, version, content_hash, duplicate_of, seen_at, job) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (article_id, version, item["content_hash"], item.get("duplicate_of"), seen_at, job),
                )
            self._upsert_listings(conn, article_id, item.get("listings") or (), seen_at)
            if signature is not _UNSET:
                self._put_signature(conn, article_id, item.get("published"), signature)
            elif outcome is not Outcome.UNCHANGED:
                conn.execute("DELETE FROM minhash WHERE id = ?", (article_id,))
        return CommitResult(outcome, version)

    def set_duplicate_of(self, article_id: int, duplicate_of: int | None, job: str) -> CommitResult:
        """Re-flag a stored article (its group's original changed): a new pending version if it differs.

        The new version keeps the body, hash and crawl time; only ``duplicate_of`` changes, so its
        ``emission_key`` differs from the previous version's. CHANGED means: emit it like any other.
        """
        now = utcnow()
        self._register(job)
        with self._write() as conn:
            row = conn.execute(
                "SELECT version, duplicate_of, content_hash, item_json FROM articles WHERE id = ?",
                (article_id,),
            ).fetchone()
            if row is None:
                raise KeyError(article_id)
            if row[1] == duplicate_of:
                return CommitResult(Outcome.UNCHANGED, row[0])
            version = row[0] + 1
            item = json.loads(row[3])
            item["duplicate_of"] = duplicate_of
            conn.execute(
                "UPDATE versions SET item_json = ? WHERE id = ? AND version = ?", (row[3], article_id, row[0])
            )
            conn.execute(
                "INSERT INTO versions (id, version, content_hash, duplicate_of, seen_at, job) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (article_id, version, row[2], duplicate_of, now, job),
            )
            conn.execute(
                "UPDATE articles SET duplicate_of = ?, version = ?, claim_job = ?, claim_pid = ?, "
                "claim_host = ?, claim_at = ?, item_json = ? WHERE id = ?",
                (
                    duplicate_of,
                    version,
                    job,
                    os.getpid(),
                    socket.gethostname(),
                    now,
                    _dumps(item),
                    article_id,
                ),
            )
        return CommitResult(Outcome.CHANGED, version)

    # -- exports ---------------------------------------------------------------------------------

    def mark_exported(
        self, article_id: int, version: int, paths: Mapping[str, str] | None = None, job: str | None = None
    ) -> dict[str, str]:
        """Record that ``version`` was emitted (JSONL line + files at ``paths``, kind -> path).

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
            conn.execute(
                "INSERT OR IGNORE INTO emissions (id, version, job, emitted_at) VALUES (?, ?, ?, ?)",
                (article_id, version, job, utcnow()),
            )
            conn.execute(
                "UPDATE articles SET exported = MAX(exported, ?) WHERE id = ?", (version, article_id)
            )
            if version >= row[0]:
                conn.execute(
                    "UPDATE articles SET claim_job = NULL, claim_pid = NULL, claim_host = NULL, "
                    "claim_at = NULL WHERE id = ?",
                    (article_id,),
                )
        return replaced

    def pending_exports(self) -> list[Pending]:
        """Every article whose current version is not yet marked exported, by id (claimed or not)."""
        rows = self._read(
            "SELECT id, version, item_json, claim_job FROM articles WHERE exported < version ORDER BY id"
        )
        return [Pending(i, v, it := json.loads(j), emission_key(it), c) for i, v, j, c in rows]

    def iter_pending(self, job: str, batch: int = 200) -> Iterator[Pending]:
        """The pending versions ``job`` holds, by id, read in batches (a first crawl has them all)."""
        last = -1
        while True:
            rows = self._read(
                "SELECT id, version, item_json, claim_job FROM articles "
                "WHERE exported < version AND claim_job = ? AND id > ? ORDER BY id LIMIT ?",
                (job, last, batch),
            )
            for i, v, j, c in rows:
                yield Pending(i, v, it := json.loads(j), emission_key(it), c)
            if len(rows) < batch:
                return
            last = rows[-1][0]

    def claim_pending(self, job: str, stale_after: float = STALE_AFTER_S) -> list[Pending]:
        """Atomically take over the pending versions whose emitter is gone; returns them, by id.

        Gone: no claim; this process, but a job no open StateStore here works for (a crawl of this
        process that closed or failed); the same host and a dead pid; or a claim older than
        ``stale_after`` seconds (a claimant on another host, or a reused pid). Versions claimed by a
        live emitter (another job running now) are left alone.
        """
        host, pid = socket.gethostname(), os.getpid()
        taken: list[Pending] = []
        self._register(job)
        with self._write() as conn:
            rows = conn.execute(
                "SELECT id, version, item_json, claim_job, claim_pid, claim_host, claim_at FROM articles "
                "WHERE exported < version ORDER BY id"
            ).fetchall()
            for article_id, version, blob, cjob, cpid, chost, cat in rows:
                if cjob == job and cpid == pid:
                    continue  # ours, in progress
                gone = (
                    cjob is None
                    or (chost == host and cpid == pid and cjob not in _LIVE_JOBS)
                    or (chost == host and cpid != pid and (cpid is None or not _pid_alive(cpid)))
                    or _age_s(cat) > stale_after
                )
                if not gone:
                    continue
                conn.execute(
                    "UPDATE articles SET claim_job = ?, claim_pid = ?, claim_host = ?, claim_at = ? "
                    "WHERE id = ?",
                    (job, pid, host, utcnow(), article_id),
                )
                item = json.loads(blob)
                taken.append(Pending(article_id, version, item, emission_key(item), cjob))
        return taken

    def set_export_path(self, article_id: int, kind: str, path: str) -> str | None:
        """Record where ``kind`` of an article was written; returns the different old path, if any."""
        with self._write() as conn:
            return self._set_export_path(conn, article_id, kind, path).get(kind)

    @staticmethod
    def _set_export_path(conn: sqlite3.Connection, article_id: int, kind: str, path: str) -> dict[str, str]:
        old = conn.execute(
            "SELECT path FROM exports WHERE id = ? AND kind = ?", (article_id, kind)
        ).fetchone()
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
        return self._read(
            "SELECT version, job, emitted_at FROM emissions WHERE id = ? ORDER BY version", (article_id,)
        )

    # -- near-duplicate signatures ---------------------------------------------------------------

    def put_signature(self, article_id: int, published: str | None, signature: Any) -> None:
        """Store an article's dedupe signature (numpy array or bytes; None: too short to sign)."""
        with self._write() as conn:
            self._put_signature(conn, article_id, published, signature)

    @staticmethod
    def _put_signature(
        conn: sqlite3.Connection, article_id: int, published: str | None, signature: Any
    ) -> None:
        from woshipm_crawler import dedupe  # numpy/datasketch only when signatures are used

        blob = (
            None
            if signature is None
            else (
                bytes(signature)
                if isinstance(signature, (bytes, bytearray, memoryview))
                else dedupe.to_bytes(signature)
            )
        )
        old = conn.execute(
            "SELECT published, signature, params FROM minhash WHERE id = ?", (article_id,)
        ).fetchone()
        if old == (published, blob, dedupe.SIGNATURE_PARAMS):
            return  # unchanged: keep seq, so other processes' refresh() has nothing to reload
        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM minhash").fetchone()[0]
        conn.execute(
            "INSERT INTO minhash (id, published, signature, params, seq) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET published = excluded.published, signature = excluded.signature, "
            "params = excluded.params, seq = excluded.seq",
            (article_id, published, blob, dedupe.SIGNATURE_PARAMS, seq),
        )

    def iter_signatures(self, since: int = 0) -> Iterator[tuple[int, str | None, bytes | None, str, int]]:
        """``(id, published, signature, params, seq)`` of signatures stored after ``seq`` ``since``."""
        yield from self._read(
            "SELECT id, published, signature, params, seq FROM minhash WHERE seq > ? ORDER BY seq", (since,)
        )

    # -- listing walks ---------------------------------------------------------------------------

    def mark_walks_complete(self, listings: Iterable[str]) -> None:
        """Listings walked to their end with every article answered: incremental walks may stop early."""
        now = utcnow()
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO walks (listing, completed_at) VALUES (?, ?) "
                "ON CONFLICT (listing) DO UPDATE SET completed_at = excluded.completed_at",
                [(listing, now) for listing in listings],
            )

    def complete_walks(self) -> set[str]:
        return {row[0] for row in self._read("SELECT listing FROM walks")}

    def signature_seq(self) -> int:
        return self._read("SELECT COALESCE(MAX(seq), 0) FROM minhash")[0][0]
