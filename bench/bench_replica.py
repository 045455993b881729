"""Replica start-up time (20,000 vs 150 articles) and RSS while serving random pages.

.venv/bin/python bench/bench_replica.py [--pages 2000,10000] — prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import http.client
import random
import resource
import time

from woshipm_replica import ReplicaServer


def rss_mb() -> float:
    """Current resident set size (Linux /proc), in MB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def timed_start(articles: int) -> tuple[ReplicaServer, float, float]:
    """Server start, and the first listing page (which builds the listing index)."""
    started = time.perf_counter()
    server = ReplicaServer(articles=articles, seed=1).start()
    startup = time.perf_counter() - started
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    started = time.perf_counter()
    conn.request("GET", "/category/pd")
    conn.getresponse().read()
    conn.close()
    return server, startup, time.perf_counter() - started


def random_paths(server: ReplicaServer, count: int, rng: random.Random) -> list[str]:
    corpus = server.corpus
    keys = corpus.listing_keys()
    paths = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.8:
            paths.append(corpus.path(rng.randrange(len(corpus))))
        else:
            key = rng.choice(keys)
            kind, slug = key.split(":")
            last = max(1, -(-len(corpus.listing(key)) // 12))
            paths.append(f"/{kind}/{slug}/page/{rng.randint(1, last)}")
    return paths


def serve(server: ReplicaServer, paths: list[str]) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    started = time.perf_counter()
    for path in paths:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", default="2000,10000", help="cumulative checkpoints of pages served")
    args = parser.parse_args()
    checkpoints = [int(v) for v in args.pages.split(",")]

    small, small_start, small_first = timed_start(150)
    small.stop()
    big, big_start, big_first = timed_start(20_000)
    print(
        f"start-up   150 articles: {small_start * 1000:7.1f} ms"
        f"   first listing page {small_first * 1000:7.1f} ms"
    )
    print(
        f"start-up 20000 articles: {big_start * 1000:7.1f} ms   first listing page {big_first * 1000:7.1f} ms"
    )
    print(
        f"ratio 20000/150: start-up {big_start / small_start:.2f}x,"
        f" first listing {big_first / small_first:.1f}x"
    )

    rng = random.Random(42)
    served = 0
    print(f"RSS before serving: {rss_mb():7.1f} MB")
    for checkpoint in checkpoints:
        paths = random_paths(big, checkpoint - served, rng)
        elapsed = serve(big, paths)
        served = checkpoint
        print(
            f"RSS after {served:6d} random pages: {rss_mb():7.1f} MB   ({len(paths) / elapsed:6.0f} pages/s)"
        )
    big.stop()


if __name__ == "__main__":
    main()
