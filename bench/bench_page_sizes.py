"""How large a woshipm page can be: the figures DOWNLOAD_MAXSIZE and DOWNLOAD_WARNSIZE are chosen from.

Renders, without sockets, every page of a replica (default 2,000 articles, seed 1) in each form the
crawler may get it (the current layout, the v2 redesign, the JS shell, the hostile ``deep`` page of
1,000 nested levels), every listing page of every category (both card styles), and reads the golden
fixture pages (real-site layouts). Prints the largest and the 99th percentile of each, in bytes as
sent (uncompressed), and the caps against the largest page. Not part of run_all.py (a minute).

``--crawl`` also crawls a 12-article replica whose two oldest articles answer a gzip bomb (~4.7 MB
inflating to 1 GiB) and an endless chunked body, under Scrapy's default caps (1 GiB / 32 MiB) and
under the project's, and prints each crawl's peak RSS (the crawl process's ``ru_maxrss``, measured
from a fresh parent whose only child it is) and how the two articles ended. The default-caps crawl
takes ~4 GB for ~30 s.

    .venv/bin/python bench/bench_page_sizes.py [--articles 2000] [--crawl]
"""

from __future__ import annotations

import argparse
import gzip
import re
import statistics
import tempfile
from pathlib import Path

from woshipm_crawler import settings, site
from woshipm_replica import ReplicaServer, pages
from woshipm_replica.crawls import measured_crawl

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "pages"


def figures(name: str, sizes: list[int]) -> tuple[str, int]:
    sizes = sorted(sizes)
    p99 = sizes[min(len(sizes) - 1, int(len(sizes) * 0.99))]
    print(f"{name:<34} {len(sizes):>6} pages  median {statistics.median(sizes) / 1024:8.1f} KB  "
          f"p99 {p99 / 1024:8.1f} KB  largest {sizes[-1] / 1024:8.1f} KB")
    return name, sizes[-1]


def crawl_bombs() -> None:
    with ReplicaServer(articles=12, seed=1) as server:
        ids = sorted(row["id"] for row in server.corpus.manifest(server.base_url))
        server.set_faults(f"gzipbomb=ids:{ids[0]},endlessbody=ids:{ids[1]}")
        for label, caps in (("Scrapy's default caps (1 GiB / 32 MiB)", {"DOWNLOAD_MAXSIZE": str(2**30),
                                                                        "DOWNLOAD_WARNSIZE": str(32 * 2**20)}),
                            ("the project's caps (8 MiB / 2 MiB)", {})):
            with tempfile.TemporaryDirectory() as out:
                result = measured_crawl(server.base_url, Path(out), caps)
            endings = re.findall(r"Failed \((\w+)\): \S+/(\d+)\.html — (.{0,60})", result["log"])
            print(f"{label}: peak RSS {result['peak_rss_mb']:.0f} MB, {len(result['ids'])} of 12 articles stored; "
                  + "; ".join(f"{article} {reason}: {detail!r}" for reason, article, detail in endings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--crawl", action="store_true",
                        help="also measure crawls meeting a gzip bomb and an endless body")
    args = parser.parse_args()
    server = ReplicaServer(articles=args.articles, seed=1, port=8000)  # never started: respond() only
    corpus, base = server.corpus, server.base_url
    articles = [corpus.article(index) for index in range(args.articles)]
    largest = [
        figures("article page", [len(pages.render_article(corpus, base, a).encode()) for a in articles]),
        figures("article page, v2 layout", [len(pages.render_article(corpus, base, a, "v2").encode())
                                            for a in articles]),
        figures("article page, JS shell", [len(pages.render_js_shell(corpus, base, a).encode()) for a in articles]),
        figures("article page, 1,000 levels deep", [
            len(pages.render_hostile(corpus, base, a, "deep").encode()) for a in articles[:50]]),
    ]
    for style in ("current", "cards2019"):
        server.layout = type(server.layout).parse(style if style != "current" else "")
        sizes = []
        for slug in site.categories():
            page = 1
            while (response := server.respond(f"/category/{slug}/page/{page}")).status == 200:
                sizes.append(len(response.body))
                page += 1
        largest.append(figures(f"listing page ({style})", sizes))
    largest.append(figures("golden fixture page", [len(gzip.decompress(p.read_bytes()))
                                                   for p in FIXTURES.glob("*.html.gz")]))
    name, size = max(largest, key=lambda pair: pair[1])
    print(f"largest of all: {size / 1024:.1f} KB ({name})")
    for setting in ("DOWNLOAD_WARNSIZE", "DOWNLOAD_MAXSIZE"):
        cap = getattr(settings, setting)
        print(f"{setting} = {cap / 2**20:.0f} MiB: {cap / size:.0f} x the largest page")
    if args.crawl:
        crawl_bombs()


if __name__ == "__main__":
    main()
