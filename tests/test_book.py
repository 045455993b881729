"""``scrapy book`` on a replica crawl: HonKit builds one book per (category, year) and an index;
headless Chromium opens the index and an article, where the hint block is rendered by the plugin,
each header field sits on its own line and the Chinese is drawn in a CJK font. Screenshots go to
tests/artifacts/ (git-ignored)."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from woshipm_crawler.outputs import book, report
from woshipm_crawler.render.chromium import CHROMIUM_ARGS, find_chromium
from woshipm_crawler.state import StateStore

pytestmark = [pytest.mark.slow, pytest.mark.npm]

ARTIFACTS = Path(__file__).parent / "artifacts"
HEADER_FIELDS = ["Category:", "Author:", "Published:", "Stats:", "Tags:", "Original:"]


@pytest.mark.parametrize("counts, expected", [
    ({"2024-03-01": 60}, {"2024"}),  # up to MAX_BOOK_ARTICLES: one book for the year
    ({"2024-03-01": 30, "2024-04-02": 31}, {"2024-03", "2024-04"}),  # more: one per month
    ({"2024-03-01": 61, "2024-04-02": 1}, {"2024-03-01", "2024-04"}),  # a month that large: per day
])
def test_book_periods(counts, expected):
    days = [("pd", date.fromisoformat(day)) for day, n in counts.items() for _ in range(n)]
    assert book.MAX_BOOK_ARTICLES == 60
    assert set(book.book_periods(days + [("ai", date(2024, 3, 1))]).values()) == expected | {"2024"}
    assert book.book_periods([("ai", date(2024, 3, 1))]) == {("ai", date(2024, 3, 1)): "2024"}


@pytest.fixture(scope="module")
def built(outputs_crawl, scrapy_command):
    export_dir = outputs_crawl.export_dir
    report.build_report(export_dir / "state.sqlite3", export_dir / "report")
    done = scrapy_command(["book"], export_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    return export_dir / "book", done


def article_page(book_dir: Path, row: dict) -> Path:
    year, month = row["published"][:4], row["published"][5:7]
    (page,) = book_dir.glob(f"{row['category']}/{year}*/articles/{month}/{row['id']}.html")
    return page


def slices_of(manifest: dict) -> Counter:
    return Counter((row["category"], row["published"][:4]) for row in manifest.values())


def test_one_book_per_category_and_year(built, manifest):
    book_dir, done = built
    expected = slices_of(manifest)
    last = done.stdout.strip().splitlines()[-1]
    assert last == (f"book of 150 articles: {len(expected) + 1} books built, 0 unchanged, 0 failed -> "
                    f"{book_dir / 'index.html'}")  # + the report
    for (category, year), count in expected.items():
        pages = [p for p in (book_dir / category / year / "articles").glob("*/*.html") if p.name != "index.html"]
        assert sorted(int(p.stem) for p in pages) == sorted(
            i for i, row in manifest.items() if (row["category"], row["published"][:4]) == (category, year)
        )
        assert len(pages) == count
        config = json.loads((book_dir / book.SOURCE_DIR / category / year / "book.json").read_text())
        assert "hints" in config["plugins"]
    index = (book_dir / "index.html").read_text(encoding="utf-8")
    assert sorted(re.findall(r'href="([a-z-]+)/(\d{4})/index.html"', index)) == sorted(expected)
    assert 'href="report/index.html"' in index and (book_dir / "report" / "per_month.png").exists()


def test_unchanged_books_are_not_rebuilt_and_a_changed_one_is(built, outputs_crawl, manifest, scrapy_command,
                                                               tmp_path):
    book_dir, _ = built
    again = scrapy_command(["book"], outputs_crawl.export_dir)
    books = len(slices_of(manifest)) + 1
    assert again.stdout.strip().splitlines()[-1].startswith(f"book of 150 articles: 0 books built, {books} unchanged")
    # Change one article in a copy of the export directory: the other test modules share the crawl.
    export_dir = tmp_path / "export"
    shutil.copytree(outputs_crawl.export_dir, export_dir, ignore=shutil.ignore_patterns("node_modules"))
    (export_dir / "book" / book.SOURCE_DIR / "node_modules").symlink_to(book_dir / book.SOURCE_DIR / "node_modules")
    target = max(manifest, key=lambda i: manifest[i]["published"])
    with StateStore(export_dir / "state.sqlite3") as store:
        item = store.get_item(target)
        item["body_text"] += "\n\n补充一段。"
        item["body_markdown"] += "\n\n补充一段。"
        item["content_hash"] = None
        store.commit_item(item, job="test-book")
    changed = scrapy_command(["book", "--category", item["category"]], export_dir)
    assert changed.returncode == 0, changed.stderr
    assert " 1 books built, " in changed.stdout.splitlines()[-1]
    assert "补充一段。" in article_page(export_dir / "book", item).read_text(encoding="utf-8")
    assert "补充一段。" not in article_page(book_dir, item).read_text(encoding="utf-8")


@pytest.mark.browser
def test_chromium_sees_the_hint_rendered_fields_on_their_own_lines_and_a_cjk_font(built, manifest):
    from playwright.sync_api import sync_playwright

    book_dir, _ = built
    ARTIFACTS.mkdir(exist_ok=True)
    # An article with every header field: tags, an author and stats.
    article_id = next(i for i, row in sorted(manifest.items()) if row["tags"] and row["author"]["url"])
    row = manifest[article_id]
    page_path = article_page(book_dir, row)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium(), args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto((book_dir / "index.html").as_uri())
            page.screenshot(path=str(ARTIFACTS / "book-index.png"), full_page=False)
            assert page.locator("h1").inner_text() == "人人都是产品经理 (woshipm.com)"
            assert page.locator("a[href$='/index.html']").count() == len(slices_of(manifest)) + 1

            page.goto(page_path.as_uri())
            page.wait_for_selector(".hints-alert")
            page.screenshot(path=str(ARTIFACTS / "book-article.png"), full_page=False)
            text = page.locator("body").inner_text()
            assert "{% hint" not in text and "{% endhint" not in text and "{\\%" not in text
            assert page.locator("h1").first.inner_text() == row["title"]
            labels = page.locator(".hints-alert strong")
            assert labels.all_inner_texts() == HEADER_FIELDS
            boxes = [labels.nth(n).bounding_box() for n in range(labels.count())]
            tops = [box["y"] for box in boxes]
            assert all(below > above + box["height"] for above, below, box in zip(tops, tops[1:], boxes, strict=False))
            assert len({round(box["x"]) for box in boxes}) == 1  # each field starts its own line
            assert f"{row['stats']['views']} views" in page.locator(".hints-alert").inner_text()

            session = page.context.new_cdp_session(page)
            session.send("DOM.enable")
            session.send("CSS.enable")
            root = session.send("DOM.getDocument")["root"]["nodeId"]
            title = session.send("DOM.querySelector", {"nodeId": root, "selector": ".page-inner h1"})["nodeId"]
            fonts = session.send("CSS.getPlatformFontsForNode", {"nodeId": title})["fonts"]
            assert any("CJK" in font["familyName"] for font in fonts), fonts
        finally:
            browser.close()


def test_book_and_report_from_a_fresh_folder_with_the_default_export_dir(built, tmp_path):
    """A newcomer's folder: the project's scrapy.cfg, the default ``WOSHIPM_EXPORT_DIR=exports`` (a
    relative path), and a matplotlib font cache built before the CJK font was installed."""
    import os
    import subprocess
    import sys

    from crawling import PROJECT_ROOT, run_crawl

    from woshipm_crawler.replica import ReplicaServer

    fresh = tmp_path / "newcomer"
    fresh.mkdir()
    shutil.copy(PROJECT_ROOT / "scrapy.cfg", fresh / "scrapy.cfg")
    with ReplicaServer(articles=30, seed=1) as server:
        crawl = run_crawl("category", server.base_url, fresh / "exports", {"category": "all"})
    assert crawl.returncode == 0, crawl.log[-3000:]
    # HonKit is installed once per book folder by npm: take the one the other tests installed.
    sources = fresh / "exports" / book.BOOK_SUBDIR / book.SOURCE_DIR
    sources.mkdir(parents=True)
    (sources / "node_modules").symlink_to(built[0] / book.SOURCE_DIR / "node_modules")
    # matplotlib's font cache as it was before fonts-noto-cjk: every font but the CJK ones.
    env = {**{k: v for k, v in os.environ.items() if k != "SCRAPY_SETTINGS_MODULE"},
           "MPLCONFIGDIR": str(tmp_path / "mpl")}
    subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], env=env, check=True)
    (cache,) = (tmp_path / "mpl").glob("fontlist-*.json")
    fonts = json.loads(cache.read_text())
    fonts["ttflist"] = [font for font in fonts["ttflist"] if "CJK" not in font["name"]]
    assert fonts["ttflist"]
    cache.write_text(json.dumps(fonts))

    def scrapy(command: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "scrapy", command, *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=600)

    reported = scrapy("report", fresh)
    assert reported.returncode == 0, reported.stderr[-3000:]
    assert reported.stdout.strip().splitlines()[-1] == (
        "report of 30 articles with 8 charts -> " + str(Path("exports") / "report" / "index.html"))
    assert "warning" not in reported.stderr.lower() and "no CJK font" not in reported.stderr
    made = scrapy("book", fresh)
    assert made.returncode == 0, made.stderr[-3000:]
    assert re.search(r"book of 30 articles: \d+ books built, 0 unchanged, 0 failed", made.stdout), made.stdout
    assert (fresh / "exports" / "book" / "index.html").exists()
    # Another relative path, from another working directory (scrapy finds scrapy.cfg upwards).
    below = fresh / "notes"
    below.mkdir()
    again = scrapy("book", below, "-s", "WOSHIPM_EXPORT_DIR=../exports")
    assert re.search(r"0 books built, \d+ unchanged, 0 failed", again.stdout), again.stdout + again.stderr
