"""Per-article processing time, ours against trafilatura and markdownify, on replica pages.

    .venv/bin/python bench/bench_processing.py            # 2,000-article replica, 30 repetitions per page
    .venv/bin/python bench/bench_processing.py --quick    # fewer repetitions

"Ours" is what the crawl does to one article page: ``parse_article_response(body, url, "utf-8")``
on the response bytes, which parses the page once and returns every field, ``body_markdown``
included. The baselines run on the same pages in the same process, interleaved page by page so
that drift (thermal, other processes) hits all three alike:

- ``trafilatura.extract(html, output_format="markdown")`` on the whole page;
- ``markdownify.markdownify(content_html)`` where ``content_html`` is the page's
  ``div.article--content`` serialised beforehand (the lookup is not timed: this is the floor of a
  "just convert the body" approach, with no cleaning at all).

Pages come from the replica's own renderer (no HTTP), in three size classes: the smallest pages
of the corpus (the replica has no 5 KB article page: its chrome alone is ~8 KB, so the smallest
are ~11 KB), the pages nearest 30 KB, and the ``huge_body`` special (~200 KB). Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import markdownify
import trafilatura
from lxml import html as lxml_html

from woshipm_crawler.parse.article import LAYOUT_2018, parse_article_response
from woshipm_replica import SPECIAL_INDEX, ReplicaServer

REPO = Path(__file__).resolve().parents[1]

PAGES_PER_CLASS = 10


@dataclass
class Page:
    url: str
    html: str
    content_html: str
    body: bytes  # as the response carries it

    @property
    def size(self) -> int:
        return len(self.html.encode("utf-8"))


def ours(page: Page) -> str:
    return parse_article_response(page.body, page.url, "utf-8")["body_markdown"]


def with_trafilatura(page: Page) -> str:
    return trafilatura.extract(page.html, output_format="markdown") or ""


def with_markdownify(page: Page) -> str:
    return markdownify.markdownify(page.content_html)


EXTRACTORS = {"ours": ours, "trafilatura": with_trafilatura, "markdownify": with_markdownify}


def render_page(server: ReplicaServer, index: int) -> Page:
    """One article page as the replica serves it (status 200), with its content div pre-extracted."""
    path = server.corpus.path(index)
    response = server.respond(path)
    if response.status != 200:
        raise RuntimeError(f"{path}: HTTP {response.status}")
    html = response.body.decode("utf-8")
    content = lxml_html.document_fromstring(html).cssselect(LAYOUT_2018.content)[0]
    return Page(server.base_url + path, html, lxml_html.tostring(content, encoding="unicode"), response.body)


def page_classes(articles: int = 2000, seed: int = 1, per_class: int = PAGES_PER_CLASS) -> dict[str, list[Page]]:
    """The three size classes: smallest pages, pages nearest 30 KB, and the huge_body special."""
    # Never started: respond() renders pages without a socket; the port only names the URLs.
    server = ReplicaServer(articles=articles, seed=seed, port=8000)
    pages = [render_page(server, index) for index in range(len(server.corpus))]
    by_size = sorted(pages, key=lambda page: page.size)
    nearest_30k = sorted(pages, key=lambda page: abs(page.size - 30_000))[:per_class]
    huge = render_page(server, SPECIAL_INDEX["huge_body"])
    return {"small": by_size[:per_class], "30 KB": nearest_30k, "huge": [huge]}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def time_class(pages: list[Page], repetitions: int, warmup: int = 3) -> dict[str, list[float]]:
    """Milliseconds per call of each extractor; each page is run ``repetitions`` times per extractor."""
    for page in pages:
        for extractor in EXTRACTORS.values():
            for _ in range(warmup):
                extractor(page)
    timings: dict[str, list[float]] = {name: [] for name in EXTRACTORS}
    # A page with fewer repetitions than 30 per class would give a shaky p95: the huge class (one
    # page) gets as many calls in total as the others.
    rounds = repetitions * max(1, PAGES_PER_CLASS // len(pages))
    for _ in range(rounds):
        for page in pages:
            for name, extractor in EXTRACTORS.items():
                started = time.perf_counter()
                extractor(page)
                timings[name].append((time.perf_counter() - started) * 1000)
    return timings


def run(repetitions: int = 30, articles: int = 2000) -> list[dict]:
    """One row per size class: sizes, median and p95 ms per extractor, ratios of the medians."""
    classes = page_classes(articles)
    rows = []
    gc.collect()
    for label, pages in classes.items():
        timings = time_class(pages, repetitions)
        row = {"class": label, "pages": len(pages), "calls": len(timings["ours"]),
               "min_kb": min(p.size for p in pages) / 1024, "max_kb": max(p.size for p in pages) / 1024}
        for name, values in timings.items():
            row[f"{name}_median"] = statistics.median(values)
            row[f"{name}_p95"] = percentile(values, 0.95)
        row["ours/trafilatura"] = row["ours_median"] / row["trafilatura_median"]
        row["ours/markdownify"] = row["ours_median"] / row["markdownify_median"]
        rows.append(row)
    return rows


def print_rows(rows: list[dict]) -> None:
    print("class     size KB        calls  ours med/p95 ms   trafilatura med/p95  markdownify med/p95  "
          "ours/traf  ours/mdfy")
    for r in rows:
        print(f"{r['class']:<8} {r['min_kb']:6.1f}–{r['max_kb']:6.1f} {r['calls']:6d}  "
              f"{r['ours_median']:6.2f} / {r['ours_p95']:6.2f}   "
              f"{r['trafilatura_median']:6.2f} / {r['trafilatura_p95']:6.2f}   "
              f"{r['markdownify_median']:6.2f} / {r['markdownify_p95']:6.2f}   "
              f"{r['ours/trafilatura']:8.2f}  {r['ours/markdownify']:8.2f}")


def stages(pages: list[Page], repetitions: int = 15) -> dict[str, float]:
    """Milliseconds per page of each step of ``parse_article_response``, 10th percentile over the runs."""
    from lxml import etree

    from woshipm_crawler import textmodel
    from woshipm_crawler.markdown import convert
    from woshipm_crawler.markdown.prepare import prepare
    from woshipm_crawler.parse import article
    from woshipm_crawler.parse import page as page_module

    steps: dict[str, list[float]] = {}
    clock = [0.0]

    def step(name: str) -> None:
        now = time.perf_counter()
        steps.setdefault(name, []).append((now - clock[0]) * 1000)
        clock[0] = now

    for _ in range(repetitions):
        for page in pages:
            clock[0] = time.perf_counter()

            parsed = page_module.parse_page(page.body, "utf-8")
            step("parse")
            page_module.classify(parsed)
            step("classify")
            layout = article.LAYOUT_2018
            wrapper = article._first(parsed.root, layout.wrapper)
            content = article._first(wrapper, layout.content)
            article._author(wrapper, page.url, layout, []), article._published(parsed.root, wrapper, layout)
            article._pop_summary(content), article._tags(parsed.root, layout, []), article._source(wrapper)
            step("fields")
            body = article.clean_body(content, page.url)
            step("clean body")
            body_text = textmodel.html_to_text(body)
            step("text model")
            etree.tostring(body, encoding="unicode", method="html")
            textmodel.word_count(body_text), textmodel.content_hash(body_text)
            step("body_html, count, hash")
            prepare(body)
            step("Markdown pre-pass")
            soup = convert.build_soup(body)
            step("BeautifulSoup tree")
            convert.postprocess(convert.WoshipmConverter().convert_soup(soup))
            step("markdownify walk")
    return {name: percentile(values, 0.1) for name, values in steps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8 repetitions instead of 30")
    parser.add_argument("--repetitions", type=int, help="calls per page and extractor")
    parser.add_argument("--stages", action="store_true", help="where our time goes, step by step, per size class")
    args = parser.parse_args()
    repetitions = args.repetitions or (8 if args.quick else 30)
    if args.stages:
        for label, pages in page_classes().items():
            times = stages(pages)
            print(f"{label:<7} " + ", ".join(f"{name} {ms:.2f}" for name, ms in times.items())
                  + f"; total {sum(times.values()):.2f} ms")
        return
    print_rows(run(repetitions))


if __name__ == "__main__":
    main()
