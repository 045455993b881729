"""Walks and the frontier: where each listing's walk stands, its gaps, the articles found and not
stored yet, and when a failed one is tried again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from woshipm_crawler.site import BadId, article_id_of
from woshipm_crawler.util import now, utc_stamp


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



def card_fate(stored: tuple | None, queued: tuple | None, job: str, live: set[str], *, refetch_known: bool,
              since: str | None, due: str) -> tuple[str, str | None]:
    """What one listing card is for ``job``, and the date it is known by (for ``since``).

    ``stored``: its article row (published, claim_job, stored since the run started), ``queued``: its
    frontier row (state, published, next_try, claim_job), each None when there is none; ``live``: the
    runs that hold their claims, ``due``: now. Fates: 'again' (this run has it already, from another
    listing), 'known' (stored by an earlier run), 'elsewhere' (claimed by another live run), 'older'
    (fetched, dated before ``since``), 'waiting' (failed, its next try has not come) or 'fetch'.
    """
    if stored is not None and (stored[1] == job or (refetch_known and stored[2])):
        return "again", stored[0]  # stored (or refreshed) by this run, from another listing
    if stored is not None and not refetch_known:
        return "known", stored[0]
    if queued is None:
        return "fetch", None
    state, published, next_try, claim = queued
    if claim == job:
        return "again", published  # requested by this run from another listing (in flight, failed or older)
    if claim in live:
        return "elsewhere", published
    if state == "older" and since is not None and published is not None and published[:10] < since:
        return "older", published
    if state == "failed" and next_try is not None and next_try > due:
        return "waiting", None
    return "fetch", None



class Frontier:
    """Walks, gaps and the frontier (a part of ``StateStore``)."""

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
        counts = dict.fromkeys(("known", "again", "new", "elsewhere", "over_budget", "waiting", "older"), 0)
        with self._write() as conn:
            live = self._live_jobs(conn) | {job}
            started = (conn.execute("SELECT started_at FROM runs WHERE job = ?", (job,)).fetchone() or (now,))[0]
            for article_id, url in cards:
                self._upsert_listings(conn, article_id, (listing,), now)
                stored = conn.execute(
                    "SELECT published, claim_job, last_seen >= ? FROM articles WHERE id = ?", (started, article_id)
                ).fetchone()
                queued = conn.execute(
                    "SELECT state, published, next_try, claim_job FROM frontier WHERE id = ?", (article_id,)
                ).fetchone()
                fate, published = card_fate(stored, queued, job, live, refetch_known=refetch_known, since=since,
                                            due=due)
                if fate == "fetch" and queued is None:
                    counts["new"] += stored is None
                    conn.execute(
                        "INSERT INTO frontier (id, url, state, discovered_at) VALUES (?, ?, 'queued', ?)",
                        (article_id, url, now),
                    )
                if fate == "fetch" and budget is not None and len(fetch) >= budget:
                    fate = "over_budget"
                if fate != "fetch":
                    counts[fate] += 1
                    dates[article_id] = published
                    continue
                conn.execute("UPDATE frontier SET claim_job = ? WHERE id = ?", (job, article_id))
                fetch.append((article_id, url))
            if next_page is not None:
                conn.execute(
                    "UPDATE walks SET next_page = ?, updated_at = ? WHERE listing = ?", (next_page, now, listing)
                )
            if page is not None:
                conn.execute("DELETE FROM gaps WHERE listing = ? AND page = ?", (listing, page))
        return CardFate(fetch, dates, counts["known"], counts["again"], counts["new"], counts["elsewhere"],
                        counts["over_budget"], tuple(rejected), counts["waiting"])

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
        """How long a run waits before trying again an article that failed ``attempts`` times: the first
        wait doubled per failure, at most the longest (hours, then days: a failed article is never dropped)."""
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
