"""The state file's schema and its migrations, and the errors an operator sees about the file.

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
minhash...    the near-duplicate graph (``woshipm_crawler.state.dedupe.SCHEMA``)

"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable

from woshipm_crawler import site
from woshipm_crawler.state import dedupe
from woshipm_crawler.util import dumps

SCHEMA_VERSION = 6
BUSY_TIMEOUT_S = 30.0

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
# MIGRATIONS[n] takes a schema at version n to n + 1 (run inside the transaction).
MIGRATIONS: dict[int, str | Callable[[sqlite3.Connection], None]] = {
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


def _published_in_one_form(conn: sqlite3.Connection) -> None:
    """5 -> 6: every stored item's ``published``/``published_time_known`` in items.py's one form, once, so
    that no output reads it in another: states written before that form held "YYYY-MM-DD" for a page
    without a time, and an older crawler let impossible dates through (no date rather than a wrong one)."""
    last = -(1 << 63)
    while rows := conn.execute("SELECT id, item_json FROM articles WHERE id > ? ORDER BY id LIMIT 500",
                               (last,)).fetchall():  # a page at a time: the items of a large state
        for article_id, blob in rows:
            stored = json.loads(blob)
            item, value = dict(stored), stored.get("published")
            if isinstance(value, str):
                when = site.published_time(value)
                if when is None:
                    item["published"] = item["published_time_known"] = None
                elif "published_time_known" not in item:
                    item["published"], item["published_time_known"] = site.published_value(
                        when.date() if len(value) == 10 else when)
            item.setdefault("published_time_known", None)
            if item != stored:
                conn.execute("UPDATE articles SET published = ?, item_json = ? WHERE id = ?",
                             (item["published"], dumps(item), article_id))
        last = rows[-1][0]


MIGRATIONS[5] = _published_in_one_form
REMOVAL_PENDING, REMOVAL_MARKED, REMOVAL_WITHHELD = "pending", "marked", "withheld"


class StateError(RuntimeError):
    """The state file cannot be used as it is; the message is the one line the operator sees."""



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



def set_wal(conn: sqlite3.Connection, path: str, busy_timeout: float) -> None:
    # Switching a fresh file to WAL needs an exclusive lock; two processes opening it together can
    # see SQLITE_BUSY here despite the busy handler, so retry within the timeout.
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() == "wal":
                return
            raise sqlite3.OperationalError(f"cannot use WAL journal for {path} (got {mode})")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the schema of ``conn`` (inside a write transaction) to ``SCHEMA_VERSION``."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StateError(
            f"{path} has schema {version}, newer than this code ({SCHEMA_VERSION}): "
            "upgrade woshipm_crawler, or point WOSHIPM_STATE_PATH elsewhere"
        )
    fresh = _SCHEMA + ";" + _LIBRARY_PENDING_INDEX + ";" + _GAPS_AND_RETRIES + ";" + MIGRATIONS[4]
    steps = [fresh] if version == 0 else [MIGRATIONS[step] for step in range(version, SCHEMA_VERSION)]
    try:
        for script in steps:
            if callable(script):  # a step SQL alone cannot take
                script(conn)
                continue
            # Statement by statement: executescript() would COMMIT our transaction first.
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
    except sqlite3.OperationalError as error:  # rolled back: the file is as it was
        raise StateError(
            f"{path} has schema {version}, which cannot be migrated to {SCHEMA_VERSION} ({error}): "
            "move it aside and run again (a new state crawls everything again), or use the "
            "woshipm_crawler version that wrote it"
        ) from error
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
