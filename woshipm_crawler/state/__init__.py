"""Persistent crawl state: one SQLite file, the single source of truth for what a crawl has done.

One ``StateStore`` (store.py: the connection and the one transaction rule) composes the parts:
schema.py (tables and migrations), runs.py (runs, liveness, heartbeats), articles.py (commit,
versions, re-flags; observations, revisits, removals), frontier.py (walks, gaps, the frontier, the
retry schedule, ``card_fate``), outputs.py (pending marks, emissions, export paths) and dedupe.py
(the near-duplicate graph); owner.py is the Scrapy extension that opens it for a run.
"""

from woshipm_crawler.site import BadId, article_id_of
from woshipm_crawler.state.articles import (
    REMOVAL_MARKED,
    REMOVAL_PENDING,
    REMOVAL_WITHHELD,
    VOLATILE_FIELDS,
    CommitResult,
    Outcome,
    RemovalDecision,
)
from woshipm_crawler.state.frontier import CardFate, WalkStart, card_fate
from woshipm_crawler.state.outputs import OUTPUT_KINDS, Claimed, Pending, emission_key
from woshipm_crawler.state.owner import STATE_ERROR_REASON
from woshipm_crawler.state.runs import HEARTBEAT_S, RUN_STALE_S
from woshipm_crawler.state.schema import BUSY_TIMEOUT_S, MIGRATIONS, SCHEMA_VERSION, StateError, state_error
from woshipm_crawler.state.store import StateStore

__all__ = [
    "BUSY_TIMEOUT_S", "HEARTBEAT_S", "MIGRATIONS", "OUTPUT_KINDS", "REMOVAL_MARKED", "REMOVAL_PENDING",
    "REMOVAL_WITHHELD", "RUN_STALE_S", "SCHEMA_VERSION", "STATE_ERROR_REASON",
    "VOLATILE_FIELDS", "BadId", "CardFate", "Claimed", "CommitResult", "Outcome", "Pending", "RemovalDecision",
    "StateError", "StateStore", "WalkStart", "article_id_of", "card_fate", "emission_key", "state_error",
]
