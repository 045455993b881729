"""What tests read from (and a few marks they set in) a ``StateStore`` that the crawler itself never needs.

They use the store's one transaction rule (``_write``/``_read``), as its own parts do.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from woshipm_crawler.state import OUTPUT_KINDS, CommitResult, Pending, StateStore
from woshipm_crawler.state.dedupe import NearDuplicates
from woshipm_crawler.util import utc_stamp

_ANY_PENDING = "(exported < version OR library_exported < version)"


def _dicts(store: StateStore, columns: str, rest: str, params: Iterable = ()) -> list[dict]:
    names = [name.strip() for name in columns.split(",")]
    return [dict(zip(names, row, strict=True)) for row in store._read(f"SELECT {columns} {rest}", params)]


def known_ids(store: StateStore) -> set[int]:
    return {row[0] for row in store._read("SELECT id FROM articles")}


def versions(store: StateStore, article_id: int) -> list[dict]:
    """Version history, oldest first (``item`` is None for the current version: see get_item)."""
    rows = _dicts(store, "version, content_hash, duplicate_of, seen_at, job, item_json",
                  "FROM versions WHERE id = ? ORDER BY version", (article_id,))
    for row in rows:
        blob = row.pop("item_json")
        row["item"] = json.loads(blob) if blob else None
    return rows


def article_row(store: StateStore, article_id: int) -> dict | None:
    """The bookkeeping columns of an article (first/last seen, version, output marks, claim)."""
    rows = _dicts(store, "id, url, category, published, first_seen, last_seen, content_hash, duplicate_of, version, "
                  "exported, library_exported, claim_job, claim_pid, claim_host, claim_at",
                  "FROM articles WHERE id = ?", (article_id,))
    return rows[0] if rows else None


def record_listings(store: StateStore, article_id: int, listings: Iterable[str], seen_at: str | None = None) -> None:
    with store._write() as conn:
        store._upsert_listings(conn, article_id, listings, seen_at or utc_stamp())


def duplicate_of_map(store: StateStore) -> dict[int, int | None]:
    return dict(store._read("SELECT id, duplicate_of FROM articles"))


def near_duplicate_groups(store: StateStore) -> list[list[int]]:
    with store._write() as conn:
        return NearDuplicates(conn).groups()


def set_duplicate_of(store: StateStore, article_id: int, duplicate_of: int | None, job: str) -> CommitResult:
    """Re-flag a stored article: a new pending version if the value differs (see ``_reflag``)."""
    with store._write() as conn:
        if conn.execute("SELECT 1 FROM articles WHERE id = ?", (article_id,)).fetchone() is None:
            raise KeyError(article_id)
        return store._reflag(conn, article_id, duplicate_of, job)


def observations(store: StateStore, article_id: int) -> list[dict]:
    """An article's observations, oldest first."""
    return _dicts(store, "observed_at, status, views, comments, collects, job, removal",
                  "FROM observations WHERE id = ? ORDER BY observed_at", (article_id,))


def mark_exported(store: StateStore, article_id: int, version: int, paths: Mapping[str, str] | None = None,
                  job: str | None = None) -> dict[str, str]:
    """Every output of ``version`` written (files at ``paths``, kind -> path); returns ``{kind: old_path}`` of
    the paths that replaced a different one."""
    replaced: dict[str, str] = {}
    with store._write() as conn:
        if conn.execute("SELECT version FROM articles WHERE id = ?", (article_id,)).fetchone() is None:
            raise KeyError(article_id)
        for kind, path in (paths or {}).items():
            replaced.update(store._set_export_path(conn, article_id, kind, path))
        store._mark(conn, [(article_id, version)], job, OUTPUT_KINDS)
    return replaced


def pending_exports(store: StateStore) -> list[Pending]:
    """Every article whose current version has an output not yet written, by id (claimed or not)."""
    return store._pending(
        store._read(f"SELECT id, version, claim_job, item_json FROM articles WHERE {_ANY_PENDING} ORDER BY id")
    )


def emissions(store: StateStore, article_id: int) -> list[tuple[int, str | None, str]]:
    """``[(version, job, emitted_at)]`` of completed emissions, oldest first."""
    return store._read("SELECT version, job, emitted_at FROM emissions WHERE id = ? ORDER BY version", (article_id,))


def walk(store: StateStore, listing: str) -> dict | None:
    """A listing's walk row (status, mode, next_page, end_reason, completed_at, claim_job)."""
    rows = _dicts(store, "status, mode, next_page, end_reason, completed_at, claim_job",
                  "FROM walks WHERE listing = ?", (listing,))
    return rows[0] if rows else None
