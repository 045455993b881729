"""Near-duplicate signatures: milliseconds to sign an article, seconds to bulk-load an index.

    python bench/bench_dedupe.py [--articles 1500]

Bodies are the replica's (its planted reposts make the few groups). tests/test_dedupe.py checks
what the index finds; here only the time is measured. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

from woshipm_crawler import dedupe  # noqa: E402
from woshipm_crawler.dedupe import NearDuplicateIndex  # noqa: E402
from woshipm_crawler.replica import Corpus  # noqa: E402


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
    index = NearDuplicateIndex()
    started = time.perf_counter()
    index._bulk_load([(i, "2024-01-01", s) for i, s in enumerate(signatures)])
    loading = time.perf_counter() - started
    print(f"{len(bodies)} articles: sign {signing / len(bodies) * 1000:.2f} ms/article, "
          f"bulk load {loading:.2f} s, groups {len(index.groups())}")


if __name__ == "__main__":
    main()
