"""``scrapy report`` on a replica crawl: every chart is there, its figures are the manifest's, and the
Chinese labels were drawn with a CJK font (no missing-glyph warning)."""

from __future__ import annotations

import re
import warnings
from collections import Counter

import pytest

from woshipm_crawler.outputs import report

pytestmark = pytest.mark.slow

EXPECTED_CHARTS = ["per_month", "top_tags", "top_authors", "stats_distribution", "stats_vs_reading_time",
                   "views_by_age", "sources", "duplicates"]


@pytest.fixture(scope="module")
def built(outputs_crawl, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = report.build_report(outputs_crawl.export_dir / "state.sqlite3", out)
    return out, result, [str(w.message) for w in caught]


def test_every_chart_is_drawn_and_on_the_page(built):
    out, result, _ = built
    assert [chart.name for chart in result.charts] == EXPECTED_CHARTS
    page = (out / "index.html").read_text(encoding="utf-8")
    for name in EXPECTED_CHARTS:
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f'<section id="{name}">' in page and f'<img src="{name}.png"' in page
    assert not re.search(r'src="(https?:)?//', page)  # nothing fetched from elsewhere: works offline
    book_page = (out / "report.md").read_text(encoding="utf-8")
    assert all(f"({name}.png)" in book_page for name in EXPECTED_CHARTS)


def test_no_missing_glyph_and_a_cjk_font(built):
    _, result, messages = built
    assert result.glyph_warnings == []
    assert not [m for m in messages if "missing from font" in m or "Glyph" in m]
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    path = font_manager.findfont(font_manager.FontProperties(family=plt.rcParams["font.sans-serif"][0]))
    assert "NotoSansCJK" in path.replace("-", "")


def test_figures_are_the_manifests(built, manifest):
    _, result, _ = built
    charts = {chart.name: chart for chart in result.charts}
    rows = manifest.values()
    tags = Counter(tag for row in rows for tag in row["tags"])
    assert dict(charts["top_tags"].table) == {tag: tags[tag] for tag, _ in charts["top_tags"].table}
    assert [n for _, n in charts["top_tags"].table] == sorted(tags.values(), reverse=True)[:report.TOP]
    authors = Counter(row["author"]["name"] for row in rows)
    assert [n for _, n in charts["top_authors"].table] == sorted(authors.values(), reverse=True)[:report.TOP]
    sources = Counter(row["source"]["type"] for row in rows)
    assert {kind: n for kind, n, _ in charts["sources"].table} == sources
    groups = Counter(row["duplicate_of"] for row in rows if row["duplicate_of"] is not None)
    assert {original: size - 1 for original, _, size in charts["duplicates"].table} == dict(groups)
    assert all(title == manifest[original]["title"] for original, title, _ in charts["duplicates"].table)
    months = Counter(row["published"][:7] for row in rows)
    assert {row[0]: row[-1] for row in charts["per_month"].table} == months


def test_report_command(outputs_crawl, scrapy_command):
    done = scrapy_command(["report"], outputs_crawl.export_dir)
    assert done.returncode == 0, done.stderr
    out = outputs_crawl.export_dir / "report"
    assert done.stdout.strip().splitlines()[-1] == f"report of 150 articles with 8 charts -> {out / 'index.html'}"
    assert "warning" not in done.stderr


def test_views_by_age_are_the_observations_median_and_quartiles(built, manifest, outputs_crawl):
    import statistics
    from datetime import datetime

    _, result, _ = built
    chart = next(chart for chart in result.charts if chart.name == "views_by_age")
    expected: dict[str, list[int]] = {}
    for item in outputs_crawl.items:  # one observation each: the crawl's fetch
        age = (datetime.fromisoformat(item["crawled_at"].replace("Z", "+00:00"))
               - datetime.fromisoformat(item["published"])).total_seconds() / 86400
        label = next(name for name, days in report.AGE_BUCKETS if age < days)
        expected.setdefault(label, []).append(manifest[item["id"]]["stats"]["views"])
    assert sum(n for _, n, *_ in chart.table) == len(outputs_crawl.items) == len(manifest)
    for label, count, q1, median, q3 in chart.table:
        views = expected[label]
        assert count == len(views) and median == round(statistics.median(views))
        assert q1 <= median <= q3
