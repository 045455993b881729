"""Runs and liveness: every crawl that opens the state registers a run, beats while it runs, and holds
its claims (walks, frontier rows, pending outputs, revisits) only while it is alive."""

from __future__ import annotations

import calendar
import os
import socket
import sqlite3
import threading
import time

from woshipm_crawler.util import now, pid_alive, utc_stamp

# A run on another host whose heartbeat is older than this is gone (its claims may be taken).
RUN_STALE_S = 600.0
HEARTBEAT_S = 30.0

# Runs begun by open stores of this process: a claim of this pid is held only while its run is here.
_OPEN_RUNS: dict[str, int] = {}
_OPEN_RUNS_LOCK = threading.Lock()


def _age_s(stamp: str | None) -> float:
    if not stamp:
        return float("inf")
    try:
        then = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return float("inf")
    return now().timestamp() - then



class Runs:
    """The runs of a ``StateStore`` (a part of it: it uses the store's ``_write``)."""

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

    @staticmethod
    def _claim(job: str) -> tuple[str, int, str, str]:
        return job, os.getpid(), socket.gethostname(), utc_stamp()
