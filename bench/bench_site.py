"""Benchmark of ``scrapy book``, the library as one site (issue 23), against HonKit in the same run.

    .venv/bin/python bench/bench_site.py [--sizes 2000 20000] [--honkit 100] [--write]

For each size N: a Markdown library of N replica articles (``bench_outputs.manifest_items``; above
10,000 the rows repeat with new ids and titles) is written with ``MarkdownLibrary.write``, then

- **full build**: ``scrapy book`` in a child process on the empty site folder (time, peak RSS);
- **incremental**: 20 newer articles are added to the library and ``scrapy book`` runs again, three
  times (three days' articles); the median time, as a share of the full build's, and each run's;
- **index**: the size of ``pagefind/`` (all segments) and of the whole site;
- **search in Chromium**: the site served by ``python -m http.server`` on 127.0.0.1, Debian's
  Chromium opens ``search.html?q=<14 characters from one article's body>``; the time from the
  navigation to the results shown (``document.body.dataset.searched``), and then for a second
  phrase typed into the box on the loaded page (median of 5 phrases each).

The baseline, once per run: HonKit 6 with gitbook-plugin-hints (the former ``scrapy book``'s
generator, ``bench/honkit_build.js``) building the first ``--honkit`` articles of the library as one
book (one Node process, HonKit's load included). npm installs HonKit under bench/out/site/npm the
first time (not timed). Before each timed build the file system is synced (``os.sync``), so a build
is not charged with writing back the files of the one before. ``--write`` puts the table into
docs/benchmarks.md between the ``bench:site`` markers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_outputs import manifest_items, run_child, scrapy

from woshipm_crawler.library import LIBRARY_SUBDIR, MarkdownLibrary
from woshipm_crawler.render.chromium import CHROMIUM_ARGS, find_chromium
from woshipm_crawler.state import StateStore

ROOT = Path(__file__).resolve().parents[1]

OUT = ROOT / "bench" / "out" / "site"
DOC = ROOT / "docs" / "benchmarks.md"
ADDED = 20
DAYS = 3  # incremental builds, each after ADDED new articles
NPM_PACKAGES = ("honkit@6", "gitbook-plugin-hints@1")
HONKIT_BOOK_JSON = {"plugins": ["hints", "-sharing", "-fontsettings"], "language": "zh-hans"}


def write_library(export_dir: Path, items: list[dict]) -> None:
    library = MarkdownLibrary(export_dir / LIBRARY_SUBDIR)
    for item in items:
        library.write(item)


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


# -- HonKit, the baseline -----------------------------------------------------------------------------


def honkit_modules() -> Path:
    modules = OUT / "npm" / "node_modules"
    if not (modules / "honkit" / "package.json").exists() or not (modules / "gitbook-plugin-hints").exists():
        print("installing HonKit with npm (not timed) ...", file=sys.stderr)
        subprocess.run(["npm", "install", "--prefix", str(OUT / "npm"), "--no-audit", "--no-fund", "--no-save",
                        "--loglevel=error", *NPM_PACKAGES], check=True, timeout=600)
    return modules


def bench_honkit(export_dir: Path, count: int) -> dict:
    """HonKit building the first ``count`` library files as one book: seconds and ms per article."""
    work = OUT / "honkit"
    shutil.rmtree(work, ignore_errors=True)
    source = work / "src"
    (source / "articles").mkdir(parents=True)
    (work / "node_modules").symlink_to(honkit_modules())
    files = sorted((export_dir / LIBRARY_SUBDIR / "articles").rglob("*.md"))[:count]
    summary = ["# Summary", "", "* [首页](README.md)"]
    for path in files:
        shutil.copy(path, source / "articles" / path.name)
        title = path.read_text(encoding="utf-8").split("\n", 1)[0].removeprefix("# ")
        summary.append(f"* [{title}](articles/{path.name})")
    (source / "README.md").write_text(f"# HonKit baseline\n\n{count} articles.\n", encoding="utf-8")
    (source / "SUMMARY.md").write_text("\n".join(summary) + "\n", encoding="utf-8")
    (source / "book.json").write_text(json.dumps({"title": "baseline", **HONKIT_BOOK_JSON}), encoding="utf-8")
    jobs = work / "jobs.json"
    jobs.write_text(json.dumps([[str(source), str(work / "out")]]), encoding="utf-8")
    seconds, rss, out = run_child(["node", str(ROOT / "bench" / "honkit_build.js"), str(jobs)])
    assert "built " in out, out
    pages = len(list((work / "out" / "articles").glob("*.html")))
    assert pages == count, (pages, count)
    return {"articles": count, "seconds": seconds, "rss_mib": rss, "per_article_ms": seconds / count * 1000}


# -- search in Chromium ---------------------------------------------------------------------------------


def phrases(items: list[dict], count: int, seed: int) -> list[str]:
    """``count`` seeded 14-character phrases from the bodies (no line break)."""
    rng = random.Random(seed)
    found = []
    while len(found) < count:
        text = rng.choice(items)["body_text"]
        start = rng.randrange(max(1, len(text) - 14))
        phrase = text[start:start + 14]
        if "\n" not in phrase and len(phrase) == 14:
            found.append(phrase)
    return found


def bench_search(site_dir: Path, items: list[dict]) -> dict:
    from playwright.sync_api import sync_playwright

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", str(site_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    loaded, typed, hits = [], [], []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=find_chromium(), args=list(CHROMIUM_ARGS))
            for n, (first, second) in enumerate(zip(phrases(items, 5, 1), phrases(items, 5, 2), strict=True)):
                page = browser.new_context().new_page()  # a fresh cache each time
                start = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/search.html?q={first}")
                page.wait_for_function("t => document.body.dataset.searched === t", arg=first, timeout=60_000)
                loaded.append(time.perf_counter() - start)
                hits.append(page.locator(".search-result-link").count())
                start = time.perf_counter()
                page.fill("#search-input", second)
                page.wait_for_function("t => document.body.dataset.searched === t", arg=second, timeout=60_000)
                typed.append(time.perf_counter() - start)
                page.context.close()
                print(f"search {n}: {loaded[-1]:.2f} s, typed {typed[-1]:.2f} s, {hits[-1]} results", file=sys.stderr)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert all(hits), hits  # each phrase comes from an article: it must be found
    return {"search_open_s": statistics.median(loaded), "search_typed_s": statistics.median(typed)}


# -- the run -------------------------------------------------------------------------------------------------


def timed_book(export_dir: Path) -> tuple[float, float, str]:
    os.sync()
    seconds, rss, out = run_child(scrapy(["book"], export_dir))
    return seconds, rss, out.strip().splitlines()[-1]


def bench_size(n: int) -> dict:
    export_dir = OUT / f"site-{n}"
    shutil.rmtree(export_dir, ignore_errors=True)
    export_dir.mkdir(parents=True)
    StateStore(export_dir / "state.sqlite3").close()
    items = manifest_items(n + ADDED * DAYS, corpus_size=n + ADDED * DAYS)
    days, library = items[:ADDED * DAYS][::-1], items[ADDED * DAYS:]  # the manifest is newest first
    start = time.perf_counter()
    write_library(export_dir, library)
    print(f"{n}: library written in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    seconds, rss, summary = timed_book(export_dir)
    row = {"articles": n, "seconds": seconds, "rss_mib": rss, "per_article_ms": seconds / n * 1000,
           "summary": summary}
    print(json.dumps(row, ensure_ascii=False), file=sys.stderr)
    incremental = []
    for day in range(DAYS):
        write_library(export_dir, days[day * ADDED:(day + 1) * ADDED])
        seconds, _, summary = timed_book(export_dir)
        incremental.append(seconds)
        print(f"{n}: incremental {day + 1}: {seconds:.2f} s, {summary}", file=sys.stderr)
    row.update(incremental_runs=incremental, incremental_s=statistics.median(incremental),
               incremental_share=statistics.median(incremental) / row["seconds"], incremental_summary=summary)
    site_dir = export_dir / "book"
    row.update(index_mb=folder_mb(site_dir / "pagefind"), site_mb=folder_mb(site_dir) - folder_mb(site_dir / ".build"),
               index_files=sum(1 for p in (site_dir / "pagefind").rglob("*") if p.is_file()))
    row.update(bench_search(site_dir, library))
    print(json.dumps(row, ensure_ascii=False), file=sys.stderr)
    return row, export_dir


def table(rows: list[dict], honkit: dict) -> str:
    lines = [
        f"HonKit baseline, same run: {honkit['articles']} of the same articles as one book, "
        f"{honkit['seconds']:.1f} s = **{honkit['per_article_ms']:.0f} ms per article** (peak RSS "
        f"{honkit['rss_mib']:.0f} MiB).",
        "",
        "| articles | full build s | ms per article | × HonKit's per article | peak RSS MiB "
        f"| incremental (+{ADDED}) s, median of {DAYS} (each) | incremental share | search index MB (files) | site MB "
        "| search shown, opened with ?q= | search shown, typed |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['articles']:,} | {r['seconds']:.1f} | {r['per_article_ms']:.1f} | "
            f"{r['per_article_ms'] / honkit['per_article_ms']:.3f} | {r['rss_mib']:.0f} | {r['incremental_s']:.1f} "
            f"({', '.join(f'{x:.1f}' for x in r['incremental_runs'])}) | "
            f"{r['incremental_share']:.1%} | {r['index_mb']:.1f} ({r['index_files']:,}) | {r['site_mb']:.0f} | "
            f"{r['search_open_s'] * 1000:.0f} ms | {r['search_typed_s'] * 1000:.0f} ms |")
    lines.append("")
    for r in rows:
        lines.append(f"- {r['articles']:,}: full `{r['summary'].split(' -> ')[0]}`; last incremental "
                     f"`{r['incremental_summary'].split(' -> ')[0]}`")
    return "\n".join(lines)


SECTION = "## The library site: `scrapy book` (bench/bench_site.py)"


def write_doc(text_table: str) -> None:
    begin, end = "<!-- bench:site:begin -->", "<!-- bench:site:end -->"
    text = DOC.read_text(encoding="utf-8")
    if begin not in text:
        text = (text.rstrip("\n") + f"\n\n{SECTION}\n\nMethod: the docstring of bench/bench_site.py.\n\n"
                f"{begin}\n{end}\n")
    head, rest = text.split(begin, 1)
    DOC.write_text(f"{head}{begin}\n{text_table}\n{end}{rest.split(end, 1)[1]}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--honkit", type=int, default=100, help="articles in HonKit's one book")
    parser.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rows, honkit = [], None
    for n in args.sizes:
        row, export_dir = bench_size(n)
        rows.append(row)
        if honkit is None:
            honkit = bench_honkit(export_dir, args.honkit)
            print(json.dumps(honkit), file=sys.stderr)
        shutil.rmtree(export_dir, ignore_errors=True)
    text_table = table(rows, honkit)
    print(text_table)
    if args.write:
        write_doc(text_table)


if __name__ == "__main__":
    main()
