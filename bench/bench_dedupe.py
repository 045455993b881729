"""Near-duplicate signatures: milliseconds to sign an article, and to index it in the state's graph.

    .venv/bin/python bench/bench_dedupe.py [--articles 1500]

Bodies are the replica's (its planted reposts make the few groups). tests/test_dedupe.py checks
what the index finds; here only the time is measured. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sqlite3
import time

from woshipm_crawler.state import dedupe
from woshipm_replica import Corpus


def texts(count: int) -> list[str]:
    corpus = Corpus(count, seed=1)
    return [corpus.article(index).body_text for index in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=1500)
    args = parser.parse_args()
    bodies = texts(args.articles)
    started = time.perf_counter()
    signatures = [dedupe.signature(text) for text in bodies]
    signing = time.perf_counter() - started
    conn = sqlite3.connect(":memory:")
    conn.executescript(dedupe.SCHEMA)
    graph = dedupe.NearDuplicates(conn)
    started = time.perf_counter()
    for i, signature in enumerate(signatures):
        graph.index(i, "2024-01-01", signature)
    loading = time.perf_counter() - started
    print(f"{len(bodies)} articles: sign {signing / len(bodies) * 1000:.2f} ms/article, "
          f"index {loading / len(bodies) * 1000:.2f} ms/article, groups {len(graph.groups())}")


if __name__ == "__main__":
    main()
