"""Stored articles: reading them, committing an item (its version, listings, near-duplicate group and the
re-flags it causes), and the observations of stored articles (revisits, removals found)."""

from __future__ import annotations

import enum
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from woshipm_crawler import schedule, textmodel
from woshipm_crawler.site import article_id_of
from woshipm_crawler.state import dedupe
from woshipm_crawler.util import dumps, utc_stamp

# Fields of an UNCHANGED item refreshed into the stored item (they change without the body changing
# and are not part of the emission key).
VOLATILE_FIELDS = ("stats", "stats_observed_at")


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


# Removal marks of an observation that found an article gone.
REMOVAL_PENDING, REMOVAL_MARKED, REMOVAL_WITHHELD = "pending", "marked", "withheld"


class Articles:
    """Reading and committing articles (a part of ``StateStore``)."""

    # -- what we have ----------------------------------------------------------------------------

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
                        dumps(item),
                    ),
                )
                conn.execute(
                    "INSERT INTO versions (id, version, content_hash, duplicate_of, seen_at, job) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (article_id, version, item["content_hash"], item["duplicate_of"], seen_at, job),
                )
            elif row[1] != item["content_hash"] or (stored.get("removed_at") and not item.get("removed_at")):
                outcome = Outcome.CHANGED
                item["duplicate_of"] = groups.get(article_id, row[3])
                version = self._new_version(conn, item, (row[0], row[2]), job, seen_at)
            else:
                outcome, version = Outcome.UNCHANGED, row[0]
                restat = self.library and "stats" in item and item["stats"] != stored.get("stats")
                for field in VOLATILE_FIELDS:
                    if field in item:
                        stored[field] = item[field]
                item["duplicate_of"] = stored.get("duplicate_of")
                conn.execute(
                    "UPDATE articles SET last_seen = MAX(last_seen, ?), item_json = ? WHERE id = ?",
                    (seen_at, dumps(stored), article_id),
                )
                if restat and row[4] >= version:  # its header shows the stats: the file is owed again
                    conn.execute(
                        "UPDATE articles SET library_exported = ?, claim_job = ?, claim_pid = ?, claim_host = ?, "
                        "claim_at = ? WHERE id = ? AND (claim_job IS NULL OR claim_job = ?)",
                        (version - 1, *self._claim(job), article_id, job),
                    )
            self._upsert_listings(conn, article_id, item.get("listings") or (), seen_at)
            conn.execute("DELETE FROM frontier WHERE id = ?", (article_id,))
            self._observe(conn, article_id, item.get("published"), observed_at, 200,
                          item.get("stats"), job)
            for other, duplicate_of in groups.items():
                if other != article_id:
                    self._reflag(conn, other, duplicate_of, job)
        return CommitResult(outcome, version, item["duplicate_of"])

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
        row = conn.execute("SELECT version, item_json FROM articles WHERE id = ?", (article_id,)).fetchone()
        item = {**json.loads(row[1]), **changes}
        version = self._new_version(conn, item, row, job)
        return CommitResult(Outcome.CHANGED, version, item.get("duplicate_of"))

    def _new_version(self, conn: sqlite3.Connection, item: dict, previous: tuple[int, str], job: str,
                     seen_at: str | None = None) -> int:
        """Store ``item`` as the next version of a stored article (``previous``: its version and item_json,
        which its version row keeps), pending for every output and claimed by ``job``; returns the version.
        ``seen_at``: when a fetch saw it (a re-flag or a removal is no fetch: last_seen stays)."""
        article_id, version = item["id"], previous[0] + 1
        conn.execute("UPDATE versions SET item_json = ? WHERE id = ? AND version = ?",
                     (previous[1], article_id, previous[0]))
        conn.execute(
            "INSERT INTO versions (id, version, content_hash, duplicate_of, seen_at, job) VALUES (?, ?, ?, ?, ?, ?)",
            (article_id, version, item["content_hash"], item.get("duplicate_of"), seen_at or utc_stamp(), job),
        )
        conn.execute(
            "UPDATE articles SET url = ?, category = ?, published = ?, "
            "last_seen = MAX(last_seen, COALESCE(?, last_seen)), content_hash = ?, duplicate_of = ?, version = ?, "
            "library_exported = MAX(library_exported, ?), "
            "claim_job = ?, claim_pid = ?, claim_host = ?, claim_at = ?, item_json = ? WHERE id = ?",
            (item.get("url"), item.get("category"), item.get("published"), seen_at, item["content_hash"],
             item.get("duplicate_of"), version, self._library_owed(version), *self._claim(job), dumps(item),
             article_id),
        )
        return version

    def _library_owed(self, version: int) -> int:
        """The library mark of a new ``version``: pending (0), or already clear if no library is kept."""
        return 0 if self.library else version

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


class Observations:
    """Revisits, observations and removals (a part of ``StateStore``)."""

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
        Observations._reschedule(conn, article_id, published)

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
