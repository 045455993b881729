"""The outputs protocol: pending marks per output kind, emissions, and where files were written.

Outputs protocol (crash safety; the pipelines follow it)
--------------------------------------------------------
- Each output kind (``OUTPUT_KINDS``: the JSONL line, the library file) has its own pending mark.
  ``commit_item`` makes a NEW or CHANGED version pending for both, claimed by this run (a store
  opened with ``library=False`` owes no library file); ``mark_exported_many(versions, job, kinds)``
  clears a kind once that output is fully written and synced. The claim ends when both are clear.
- At the end of a run, ``iter_pending(job, kind)`` gives every version this run must still write;
  what is left is counted by ``pending_outputs(job)`` (a failed output: the run is FAILED).
- At the start, ``claim_pending(job)`` takes over pending versions of runs that are gone (killed, or
  ended with an output that failed); a JSONL line a killed run did write is found by the JSONL pipeline (``jsonl_has``)
  (``emission_key``), so none is written twice.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from woshipm_crawler.util import utc_stamp

OUTPUT_KINDS = ("jsonl", "library")
_DONE_COLUMN = {"jsonl": "exported", "library": "library_exported"}
_ANY_PENDING = "(exported < version OR library_exported < version)"


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


class Outputs:
    """Pending outputs and export paths (a part of ``StateStore``)."""

    # -- outputs ---------------------------------------------------------------------------------

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
