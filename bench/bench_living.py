"""A living archive kept for weeks: a replica on its calendar, crawled once, then once a simulated day.

    .venv/bin/python bench/bench_living.py                           # 20,000 articles, 50 a day, 60 days
    .venv/bin/python bench/bench_living.py --articles 2000 --days 15 # smaller: about 3 minutes
    .venv/bin/python bench/bench_living.py --json out.json           # also keep the per-day figures

The replica (``ReplicaServer`` with a ``Calendar``: N articles on day 0, ``--rate`` more a day, its
seeded edits and removals) serves from this process; each run is ``scrapy crawl category -a
category=all`` in a subprocess with ``WOSHIPM_CLOCK`` set to the replica's now, into one export
directory, with woshipm_replica/crawls.py's FAST_SETTINGS (no delay). Then ``scrapy reparse`` of the whole
archive, parser unchanged. Figures:

- upkeep: the replica's own count of requests each day after day 0, split into new article pages,
  stored article pages fetched again (revisits) and the rest (listing pages, robots.txt). The young
  revisits (ages 1, 3, 7, 30, 90 and 365 days) follow the publishing rate, not the archive's size;
  the yearly refresh of older articles is a share of the archive. Since the day-0 crawl saw every
  old article, no yearly visit falls in the window; that share is measured from the state instead:
  the ``next_due`` stamps of articles past their last age a day in the busiest week, per stored
  article past it (evenly spread, 1/365). Extrapolated to 150,000 articles (about 3,000 days of
  publishing at ``--rate``): mean daily new + young revisits + other requests of the last 30
  simulated days (or of all when fewer), plus that daily share x (150,000 - 365 x rate).
- freshness at the end: for each stored article (not removed) under 30 days old, whether its latest
  observation (the state's ``observations``) is at or after the latest of its due ages passed
  (publication when none); the same over every article with the state's ``next_due`` not passed.
- reparse throughput: articles rebuilt per second of ``scrapy reparse`` (Scrapy's
  ``elapsed_time_seconds``) against the day-0 crawl's articles stored per second of its run, both
  in this run on this machine (the crawl's rate includes fetching from the loopback replica).
- archive size: bytes of ``archive/*.warc.gz`` per 1,000 stored articles after day 0 (pages and
  listing pages of one full crawl) and at the end (with every revisit's page).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from woshipm_crawler import statkeys
from woshipm_crawler.schedule import REVISIT_AGES
from woshipm_replica import ReplicaServer
from woshipm_replica.corpus import Calendar
from woshipm_replica.crawls import run_crawl, state_rows

REPO = Path(__file__).resolve().parents[1]

DAY0 = date(2026, 1, 5)
TARGET_ARCHIVE = 150_000
QUIET = {"LOG_LEVEL": "INFO", "WOSHIPM_PROGRESS": "False"}


def stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


def crawl_day(server: ReplicaServer, export_dir: Path):
    server.reset_stats()
    crawl = run_crawl("category", server.base_url, export_dir, {"category": "all"},
                      settings={**QUIET, "WOSHIPM_CLOCK": server.clock()["now"]}, timeout=7200)
    return crawl, dict(server.path_counts)


def stored_ids(export_dir: Path) -> set[int]:
    return {i for (i,) in state_rows(export_dir, "SELECT id FROM articles")}


def split_requests(paths: dict[str, int], known: set[int]) -> Counter:
    kinds: Counter = Counter()
    for path, count in paths.items():
        name = path.rsplit("/", 1)[-1]
        if name.endswith(".html") and name[:-5].isdigit():
            kinds["revisit" if int(name[:-5]) in known else "new"] += count
        else:
            kinds["other"] += count
    return kinds


def freshness(export_dir: Path, now: datetime) -> dict:
    latest = dict(state_rows(export_dir, "SELECT id, MAX(observed_at) FROM observations "
                                         "WHERE status = 200 GROUP BY id"))
    rows = state_rows(export_dir, "SELECT id, published, next_due, json_extract(item_json, '$.removed_at') "
                                  "FROM articles")
    young = young_fresh = due_ok = live = 0
    for article_id, published, next_due, removed_at in rows:
        if removed_at:
            continue
        live += 1
        due_ok += next_due is None or stamp(next_due) > now
        born = datetime.fromisoformat(published).astimezone(timezone.utc)
        if now - born >= timedelta(days=30):
            continue
        young += 1
        passed = [born + age for age in REVISIT_AGES if born + age <= now]
        last_due = max(passed) if passed else born
        young_fresh += article_id in latest and stamp(latest[article_id]) >= last_due
    return {"young": young, "young_fresh": young_fresh, "live": live, "not_overdue": due_ok}


def yearly_share(export_dir: Path, now: datetime) -> tuple[float, float, int]:
    """Of the stored articles past their last age (each next due 6 to 18 months after its last visit):
    the busiest week's mean of next_due stamps a day, and the mean day, per such article; their count."""
    last = REVISIT_AGES[-1]
    days: Counter = Counter()
    old = 0
    for published, next_due in state_rows(export_dir, "SELECT published, next_due FROM articles "
                                                      "WHERE json_extract(item_json, '$.removed_at') IS NULL"):
        born = datetime.fromisoformat(published).astimezone(timezone.utc)
        if next_due is None or now - born < last:
            continue
        old += 1
        days[(stamp(next_due) - now).days] += 1
    if not old:
        return 0.0, 0.0, 0
    span = range(min(days), max(days) + 1)
    week = max(sum(days[d + k] for k in range(7)) / 7 for d in span)
    return week / old, 1 / 365, old


def archive_bytes(export_dir: Path) -> int:
    return sum(path.stat().st_size for path in (export_dir / "archive").glob("*.warc.gz"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=20_000, help="articles on day 0 (default 20,000)")
    parser.add_argument("--rate", type=float, default=50, help="articles published a day (default 50)")
    parser.add_argument("--days", type=int, default=60, help="simulated days after day 0 (default 60)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the figures (and every day's) here")
    parser.add_argument("--dir", type=Path, help="export directory (default: a temporary one)")
    args = parser.parse_args()

    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-living-"))
    figures: dict = {"articles": args.articles, "rate": args.rate, "days": args.days, "export_dir": str(work)}
    started = time.monotonic()
    calendar = Calendar(DAY0, rate=args.rate)
    with ReplicaServer(articles=args.articles, seed=args.seed, calendar=calendar) as server:
        day0, paths = crawl_day(server, work)
        crawl_stored = day0.stat("item_scraped_count")
        crawl_seconds = day0.stat("elapsed_time_seconds")
        figures["day0"] = {"returncode": day0.returncode, "requests": sum(paths.values()), "stored": crawl_stored,
                           "seconds": crawl_seconds, "archive_bytes": archive_bytes(work)}
        print(f"day 0: exit {day0.returncode}, {crawl_stored} stored, {sum(paths.values())} requests, "
              f"{crawl_seconds:.0f} s", flush=True)
        per_day = []
        for day in range(1, args.days + 1):
            server.advance(1)
            known = stored_ids(work)
            crawl, paths = crawl_day(server, work)
            kinds = split_requests(paths, known)
            row = {"day": day, "returncode": crawl.returncode, "requests": sum(paths.values()), **kinds,
                   "stored": len(stored_ids(work)), "removals_marked": crawl.stat(statkeys.REMOVALS_MARKED_KEY),
                   "seconds": crawl.stat("elapsed_time_seconds")}
            per_day.append(row)
            print(f"day {day}: exit {crawl.returncode}, requests {row['requests']} (new {kinds['new']}, revisits "
                  f"{kinds['revisit']}, other {kinds['other']}), stored {row['stored']}", flush=True)
        now = stamp(server.clock()["now"])
        figures["per_day"] = per_day
        figures["freshness"] = fresh = freshness(work, now)
        peak_share, mean_share, old = yearly_share(work, now)
        figures["yearly"] = {"old_articles": old, "peak_share_per_day": peak_share, "mean_share_per_day": mean_share}
        figures["archive_bytes_end"] = archive_bytes(work)
        figures["stored_end"] = stored = len(stored_ids(work))

    # the replica is closed: a reparse must not need it (its base URL is only the state's site check)
    reparse = run_crawl("reparse", server.base_url, work, settings=QUIET, command=("reparse",), timeout=7200)
    pages = reparse.stat(statkeys.REPARSE_PAGES_KEY)
    reparse_seconds = reparse.stat("elapsed_time_seconds")
    figures["reparse"] = {"returncode": reparse.returncode, "pages": pages, "seconds": reparse_seconds,
                          "written": len(reparse.items)}

    window = per_day[-30:] or [{"new": 0, "revisit": 0, "other": 0}]
    mean = {kind: sum(row.get(kind, 0) for row in window) / len(window) for kind in ("new", "revisit", "other")}
    old_at_target = max(TARGET_ARCHIVE - 365 * args.rate, 0)
    at_target = mean["new"] + mean["revisit"] + mean["other"] + peak_share * old_at_target
    figures["upkeep"] = {"window_days": len(window), **{f"mean_{k}": v for k, v in mean.items()},
                         "yearly_at_target_peak": peak_share * old_at_target, "per_day_at_150000": at_target}
    crawl_rate = crawl_stored / crawl_seconds if crawl_seconds else 0
    reparse_rate = pages / reparse_seconds if reparse_seconds else 0

    print()
    print(f"replica: {args.articles} articles on day 0, {args.rate:g} a day, {args.days} days; {stored} stored at "
          f"the end; whole benchmark {time.monotonic() - started:.0f} s")
    print(f"upkeep, mean of the last {len(window)} days: {mean['new']:.1f} new + {mean['revisit']:.1f} revisits + "
          f"{mean['other']:.1f} other requests a day")
    print(f"yearly refresh: {old} articles past their last age; next_due in the busiest week {peak_share:.3%} of "
          f"them a day (evenly: {mean_share:.3%})")
    print(f"upkeep at {TARGET_ARCHIVE:,} articles: {at_target:.0f} requests a day (target <= 1,000)")
    print(f"freshness: {fresh['young_fresh']}/{fresh['young']} articles under 30 days observed within the schedule; "
          f"{fresh['not_overdue']}/{fresh['live']} of all not overdue")
    print(f"reparse: {pages} pages in {reparse_seconds:.1f} s = {reparse_rate:.1f} articles/s (exit "
          f"{reparse.returncode}, {len(reparse.items)} written) vs the day-0 crawl {crawl_stored} in "
          f"{crawl_seconds:.1f} s = {crawl_rate:.1f} articles/s: ratio {reparse_rate / max(crawl_rate, 1e-9):.2f}")
    print(f"archive: {figures['day0']['archive_bytes'] / max(crawl_stored, 1) * 1000 / 2**20:.2f} MiB per 1,000 "
          f"articles after day 0; {figures['archive_bytes_end'] / max(stored, 1) * 1000 / 2**20:.2f} MiB at the end")
    failed = [row["day"] for row in per_day if row["returncode"]]
    print(f"runs FAILED: day 0 {'yes' if day0.returncode else 'no'}; later days: {failed or 'none'}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
