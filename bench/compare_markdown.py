"""Write every page's ``body_markdown`` to a folder, to compare the Markdown before and after a change.

    python bench/compare_markdown.py /tmp/md_before      # on the old commit
    python bench/compare_markdown.py /tmp/md_after       # on the new one
    diff -r /tmp/md_before /tmp/md_after && echo identical

The pages: every golden fixture article (tests/fixtures/pages), every article page of a 3,000-article
replica (seed 1) and of a 500-article one (seed 2, other bodies), and the first 100 articles of the
seed-1 replica under each hostile fault and ``gbk`` (escaped, nested, oversized and script-like
content). Each page goes through what the crawl calls, ``parse_article_response``; one file per page,
named after the page, holds its ``body_markdown`` (or the parse error). Prints how many pages it wrote.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

from woshipm_crawler.parse.article import ArticlePageError, parse_article_response
from woshipm_replica import ReplicaServer, pages

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "pages"
FAULTED_ARTICLES = 100


def body_markdown(body: bytes, url: str, content_type: str | None) -> str:
    try:
        return parse_article_response(body, url, content_type=content_type)["body_markdown"] or ""
    except ArticlePageError as error:
        return f"[not an article: {type(error).__name__}]\n"


def fixture_pages():
    for meta_path in sorted(FIXTURES.glob("*.json")):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("kind") != "article":
            continue
        body = gzip.decompress(meta_path.with_name(meta_path.stem + ".html.gz").read_bytes())
        yield f"fixture-{meta_path.stem}", body, meta["url"], meta.get("content_type")


def replica_pages(articles: int, seed: int, faults: str = "", limit: int | None = None):
    # Never started: respond() renders pages without a socket; the port only names the URLs.
    server = ReplicaServer(articles=articles, seed=seed, port=8000, faults=faults)
    for index in range(min(limit or articles, len(server.corpus))):
        path = server.corpus.path(index)
        response = server.respond(path)
        if response.status == 200:
            label = f"replica-s{seed}-{faults.partition('=')[0] or 'plain'}-{index:05d}"
            yield label, response.body, server.base_url + path, response.content_type


def all_pages():
    yield from fixture_pages()
    yield from replica_pages(3000, 1)
    yield from replica_pages(500, 2)
    for kind in (*pages.HOSTILE_KINDS, "gbk"):
        yield from replica_pages(3000, 1, faults=f"{kind}=1", limit=FAULTED_ARTICLES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="where the per-page Markdown files go (created)")
    folder = parser.parse_args().folder
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for label, body, url, content_type in all_pages():
        (folder / f"{label}.md").write_text(body_markdown(body, url, content_type), encoding="utf-8")
        count += 1
    print(f"{count} pages written to {folder}")


if __name__ == "__main__":
    main()
