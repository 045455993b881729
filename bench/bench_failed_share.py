"""The share of attempted articles that fail, on replica runs that should end ok and on runs that should not.

    .venv/bin/python bench/bench_failed_share.py

``WOSHIPM_MAX_FAILED_SHARE`` (a run with a larger share of failed articles is FAILED) is chosen from
these figures: above every run that read the site as it is (odd pages included), below the runs
where something is broken. Each run is a whole ``scrapy crawl`` of a replica with the alarms that
stop a run early turned off (``WOSHIPM_FAILURES_TO_STOP``), so the share is the whole run's.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from woshipm_crawler import statkeys
from woshipm_replica import ReplicaServer
from woshipm_replica.crawls import run_crawl

ALL = {"category": "all"}
NO_EARLY_STOP = {"WOSHIPM_FAILURES_TO_STOP": "1000000", "WOSHIPM_MAX_FAILED_SHARE": "1"}
# (what, should it end ok, replica arguments, spider arguments, settings)
CASES = [
    ("the replica as it is", True, {}, ALL, {}),
    ("faults on a fifth of pages (429, 503, slow, drop: retried)", True,
     {"faults": "429=0.2,503=0.2,slow=0.2,drop=0.2"}, ALL, {}),
    ("hostile pages: 2 of 6 kinds are failures by design", True, {"articles": 30, "faults": "HOSTILE"}, ALL, {}),
    ("1% of pages in a redesign", True, {"layout": "v2=0.01"}, ALL, {}),
    ("5% truncated pages", True, {"faults": "truncate=0.05"}, ALL, {}),
    ("10% JS shells, no browser", True, {"faults": "jsshell=0.1"}, ALL, {"WOSHIPM_RENDER": "never"}),
    ("a listing that never ends (404 cards past its end)", False,
     {"articles": 600, "quirks": {"category:operate": "endless"}}, {"category": "operate"},
     {"WOSHIPM_MAX_LISTING_PAGES": "12"}),
    ("30% JS shells, no browser", False, {"faults": "jsshell=0.3"}, ALL, {"WOSHIPM_RENDER": "never"}),
    ("a third of pages truncated (a bad proxy)", False, {"faults": "truncate=0.33"}, ALL, {}),
    ("a random redesign of every article page", False, {"layout": "random:3"}, ALL, {}),
]


def hostile_faults(server) -> str:
    ids = sorted(row["id"] for row in server.corpus.manifest(server.base_url))
    kinds = ("unsafe", "embed", "deep", "toodeep", "baddate", "gbk")
    return ",".join(f"{kind}=ids:{article_id}" for kind, article_id in zip(kinds, ids, strict=False))


def main() -> None:
    print(f"{'run':58} {'ok?':>4} {'attempted':>9} {'failed':>6} {'share':>6}")
    for what, should_be_ok, replica_args, args, settings in CASES:
        replica_args = {"articles": 150, "seed": 1, **replica_args}
        faults = replica_args.pop("faults", "")
        with ReplicaServer(**replica_args) as server, tempfile.TemporaryDirectory() as export_dir:
            server.set_faults(hostile_faults(server) if faults == "HOSTILE" else faults)
            crawl = run_crawl("category", server.base_url, Path(export_dir), args,
                              settings={**NO_EARLY_STOP, **settings}, timeout=600)
        attempted = crawl.stat(statkeys.ARTICLES_ATTEMPTED_KEY)
        failed = crawl.stat(statkeys.ARTICLES_FAILED_KEY)
        share = failed / attempted if attempted else 0.0
        print(f"{what:58} {'yes' if should_be_ok else 'no':>4} {attempted:9} {failed:6} {share:6.1%}")


if __name__ == "__main__":
    main()
