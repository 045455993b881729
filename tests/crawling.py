"""Real crawls of the replica from tests: ``scrapy crawl`` in a subprocess, as a user runs it.

The benchmarks crawl the same way; the one copy of these helpers is theirs (``bench/crawls.py``),
since the package and the benchmarks never import from ``tests/``.
"""

from bench.crawls import (
    FAST_SETTINGS,
    PROJECT_ROOT,
    Crawl,
    field_match_rates,
    print_rates,
    run_crawl,
    state_rows,
    stored_articles,
)

__all__ = ["FAST_SETTINGS", "PROJECT_ROOT", "Crawl", "field_match_rates", "print_rates", "run_crawl", "state_rows",
           "stored_articles"]
