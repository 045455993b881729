"""The analysis report: ``scrapy report`` writes ``<export dir>/report/index.html`` and its charts.

Made from the dataset (``dataset.dataset_items``, the state's latest items); only the few metadata
fields the charts need are held, so it runs on any size. Each chart is a PNG beside the page, with
its figures in a table under it, so the page works offline and the numbers can be read exactly.
``report.md`` is the same page in Markdown, for the book. Chinese labels are drawn with a CJK font
(Debian's fonts-noto-cjk); a missing font or glyph is reported, never silently drawn as boxes.
"""

from __future__ import annotations

import html
import statistics
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from woshipm_crawler.outputs.dataset import dataset_items, observation_rows
from woshipm_crawler.state import StateStore
from woshipm_crawler.util import atomic_write, now

REPORT_SUBDIR = "report"
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC")
TOP = 20
TOP_CATEGORIES = 8
# Age buckets of the views-against-age chart: (label, upper bound in days), on the revisit schedule's ages.
AGE_BUCKETS = (("<1d", 1), ("1-3d", 3), ("3-7d", 7), ("7-30d", 30), ("30-90d", 90), ("90d-1y", 365),
               (">1y", float("inf")))


@dataclass
class Facts:
    """What the charts are drawn from, gathered in one pass over the dataset."""

    total: int = 0
    per_month: Counter = field(default_factory=Counter)  # (YYYY-MM, category label) -> articles
    categories: Counter = field(default_factory=Counter)
    tags: Counter = field(default_factory=Counter)
    authors: Counter = field(default_factory=Counter)
    stats: dict[str, list[int]] = field(default_factory=lambda: {"views": [], "comments": [], "collects": []})
    read_minutes: list[int | None] = field(default_factory=list)
    sources: Counter = field(default_factory=Counter)
    source_views: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    duplicate_groups: Counter = field(default_factory=Counter)  # original id -> number of copies
    titles: dict[int, str] = field(default_factory=dict)  # of the originals of duplicate groups
    views_by_age: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # every observation

    def add(self, item: dict) -> None:
        self.total += 1
        label = item.get("category_name") or item.get("category") or "?"
        self.categories[label] += 1
        if item.get("published"):
            self.per_month[(item["published"][:7], label)] += 1
        self.tags.update(item.get("tags") or ())
        author = (item.get("author") or {}).get("name")
        if author:
            self.authors[author] += 1
        stats = item.get("stats") or {}
        for key, values in self.stats.items():
            values.append(int(stats.get(key) or 0))
        self.read_minutes.append(item.get("read_minutes"))
        source = (item.get("source") or {}).get("type") or "unknown"
        self.sources[source] += 1
        self.source_views[source].append(int(stats.get("views") or 0))
        if item.get("duplicate_of") is not None:
            self.duplicate_groups[item["duplicate_of"]] += 1

    def finish(self, store: StateStore) -> None:
        for original in self.duplicate_groups:
            item = store.get_item(original)
            self.titles[original] = (item or {}).get("title") or str(original)
        for row in observation_rows(store):
            if row["age_hours"] is not None and row["views"] is not None:
                label = next(name for name, days in AGE_BUCKETS if row["age_hours"] < days * 24)
                self.views_by_age[label].append(row["views"])


def gather(store: StateStore, progress: Callable[[int], None] | None = None) -> Facts:
    facts = Facts()
    for item in dataset_items(store):
        facts.add(item)
        if progress:
            progress(facts.total)
    facts.finish(store)
    return facts


# -- charts ----------------------------------------------------------------------------------------


class MissingFont(RuntimeError):
    pass


def _cjk_fonts(font_manager) -> list[str]:
    available = {font.name for font in font_manager.fontManager.ttflist}
    return [name for name in CJK_FONTS if name in available]


def _pyplot():
    """matplotlib with a CJK font first (the Latin fallback after it) and no display."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    cjk = _cjk_fonts(font_manager)
    if not cjk:
        # A font installed after matplotlib built its font cache is not in that cache: add the
        # system's CJK font files to the font list (public API), then look again.
        for path in font_manager.findSystemFonts():
            if "CJK" in Path(path).name:
                font_manager.fontManager.addfont(path)
        cjk = _cjk_fonts(font_manager)
    if not cjk:
        raise MissingFont("no CJK font found (install Debian's fonts-noto-cjk): Chinese labels would show as boxes")
    plt.rcParams.update({
        "font.family": "sans-serif",
        "font.sans-serif": [cjk[0], "DejaVu Sans"],
        "axes.unicode_minus": False,
        "figure.dpi": 100,
        "figure.constrained_layout.use": True,  # suptitles and rotated labels do not overlap
        "savefig.bbox": "tight",
    })
    return plt


@dataclass
class Chart:
    name: str  # file stem
    title: str
    table: list[tuple]  # (label, value...) rows shown under the chart
    columns: tuple[str, ...]


def _months(facts: Facts) -> list[str]:
    return sorted({month for month, _ in facts.per_month})


def chart_per_month(plt, facts: Facts, out: Path) -> Chart:
    months = _months(facts)
    top = [label for label, _ in facts.categories.most_common(TOP_CATEGORIES)]
    series = {label: [facts.per_month.get((m, label), 0) for m in months] for label in top}
    other = [sum(n for (m2, label), n in facts.per_month.items() if m2 == m and label not in top) for m in months]
    if any(other):
        series["其他"] = other
    fig, ax = plt.subplots(figsize=(10, 4.5))
    bottom = [0] * len(months)
    for label, values in series.items():
        ax.bar(months, values, bottom=bottom, label=label, width=0.8)
        bottom = [a + b for a, b in zip(bottom, values, strict=True)]
    ax.set_title("每月文章数（按分类）Articles per month by category")
    ax.set_ylabel("文章数 articles")
    step = max(1, len(months) // 12)
    ax.set_xticks(range(0, len(months), step), [months[i] for i in range(0, len(months), step)], rotation=45)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8, ncol=2)
    _save(plt, fig, out / "per_month.png")
    rows = [(m, *[series[label][i] for label in series], bottom[i]) for i, m in enumerate(months)]
    return Chart("per_month", "Articles per month by category", rows, ("month", *series, "total"))


def _barh(plt, counts: list[tuple[str, int]], title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(counts) + 1.2))
    labels = [label for label, _ in counts][::-1]
    ax.barh(labels, [n for _, n in counts][::-1], color="#3b7dd8")
    ax.set_title(title)
    ax.set_xlabel("文章数 articles")
    _save(plt, fig, path)


def chart_top_tags(plt, facts: Facts, out: Path) -> Chart:
    counts = facts.tags.most_common(TOP)
    _barh(plt, counts, f"热门标签 Top {TOP} tags", out / "top_tags.png")
    return Chart("top_tags", f"Top {TOP} tags", counts, ("tag", "articles"))


def chart_top_authors(plt, facts: Facts, out: Path) -> Chart:
    counts = facts.authors.most_common(TOP)
    _barh(plt, counts, f"高产作者 Top {TOP} authors", out / "top_authors.png")
    return Chart("top_authors", f"Top {TOP} authors", counts, ("author", "articles"))


STAT_LABELS = {"views": "浏览 views", "comments": "评论 comments", "collects": "收藏 collects"}


def chart_stats_distribution(plt, facts: Facts, out: Path) -> Chart:
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    rows = []
    for ax, (key, values) in zip(axes, facts.stats.items(), strict=True):
        ax.hist([v for v in values], bins=30, color="#e07b39")
        ax.set_yscale("log")
        ax.set_title(STAT_LABELS[key])
        ax.set_ylabel("文章数 articles")
        rows.append((key, min(values, default=0), int(statistics.median(values or [0])), max(values, default=0)))
    fig.suptitle("浏览、评论、收藏的分布 Distribution of views, comments, collects")
    _save(plt, fig, out / "stats_distribution.png")
    return Chart("stats_distribution", "Views, comments and collects: distribution", rows,
                 ("stat", "min", "median", "max"))


def chart_stats_vs_reading_time(plt, facts: Facts, out: Path) -> Chart:
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    known = [i for i, minutes in enumerate(facts.read_minutes) if minutes is not None]
    minutes = [facts.read_minutes[i] for i in known]
    rows = []
    for ax, (key, values) in zip(axes, facts.stats.items(), strict=True):
        ax.scatter(minutes, [values[i] for i in known], s=6, alpha=0.4, color="#5a9e5a")
        ax.set_xlabel("阅读时间（分钟）reading minutes")
        ax.set_title(STAT_LABELS[key])
        by_minutes: dict[int, list[int]] = defaultdict(list)
        for m, i in zip(minutes, known, strict=True):
            by_minutes[m].append(values[i])
        rows.extend((key, m, len(v), int(statistics.median(v))) for m, v in sorted(by_minutes.items()))
    fig.suptitle("与阅读时间的关系 Against reading time")
    _save(plt, fig, out / "stats_vs_reading_time.png")
    return Chart("stats_vs_reading_time", "Views, comments and collects against reading time", rows,
                 ("stat", "reading minutes", "articles", "median"))


SOURCE_LABELS = {"original": "原创 original", "partner": "合作转载 partner", "authorized": "授权 authorized",
                 "translated": "翻译 translated", "unknown": "未知 unknown"}


def chart_sources(plt, facts: Facts, out: Path) -> Chart:
    kinds = [kind for kind, _ in facts.sources.most_common()]
    labels = [SOURCE_LABELS.get(kind, kind) for kind in kinds]
    medians = [int(statistics.median(facts.source_views[kind])) for kind in kinds]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    left.bar(labels, [facts.sources[k] for k in kinds], color="#8064a2")
    left.set_title("文章数 articles")
    right.bar(labels, medians, color="#4bacc6")
    right.set_title("浏览中位数 median views")
    for ax in (left, right):
        ax.tick_params(axis="x", labelrotation=20)
    fig.suptitle("合作转载与原创 Partner reposts against original posts")
    _save(plt, fig, out / "sources.png")
    rows = [(kind, facts.sources[kind], median) for kind, median in zip(kinds, medians, strict=True)]
    return Chart("sources", "Partner reposts against original posts", rows, ("source", "articles", "median views"))


def chart_duplicates(plt, facts: Facts, out: Path) -> Chart:
    sizes = Counter(copies + 1 for copies in facts.duplicate_groups.values())
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.bar([str(size) for size in sorted(sizes)], [sizes[size] for size in sorted(sizes)], color="#c0504d")
    ax.set_title(f"近似重复组 Near-duplicate groups: {len(facts.duplicate_groups)}")
    ax.set_xlabel("组内文章数 articles in the group")
    ax.set_ylabel("组数 groups")
    _save(plt, fig, out / "duplicates.png")
    rows = [(original, facts.titles.get(original, ""), copies + 1)
            for original, copies in facts.duplicate_groups.most_common(TOP)]
    return Chart("duplicates", "Near-duplicate groups", rows, ("original id", "original title", "articles"))


def _quartiles(values: list[int]) -> tuple[float, float, float]:
    if len(values) < 2:
        value = float(values[0]) if values else 0.0
        return value, value, value
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def chart_views_by_age(plt, facts: Facts, out: Path) -> Chart:
    """Every observation of an article's views (article_stats), by its age then: median and quartiles."""
    labels = [name for name, _ in AGE_BUCKETS if facts.views_by_age.get(name)]
    figures = [_quartiles(facts.views_by_age[name]) for name in labels]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    x = range(len(labels))
    ax.fill_between(x, [f[0] for f in figures], [f[2] for f in figures], color="#9dc3e6", alpha=0.6,
                    label="四分位 quartiles (25%-75%)")
    ax.plot(x, [f[1] for f in figures], marker="o", color="#2e75b6", label="中位数 median")
    ax.set_xticks(list(x), labels)
    ax.set_xlabel("文章发布后的时间 article age at the fetch")
    ax.set_ylabel("浏览 views")
    ax.set_title("浏览随文章年龄的变化 Views against article age")
    ax.legend(fontsize=8)
    _save(plt, fig, out / "views_by_age.png")
    rows = [(name, len(facts.views_by_age[name]), round(q1), round(median), round(q3))
            for name, (q1, median, q3) in zip(labels, figures, strict=True)]
    return Chart("views_by_age", "Views against article age (every observation: article_stats.parquet)", rows,
                 ("age", "observations", "25%", "median", "75%"))


CHARTS = (chart_per_month, chart_top_tags, chart_top_authors, chart_stats_distribution,
          chart_stats_vs_reading_time, chart_views_by_age, chart_sources, chart_duplicates)


def _save(plt, fig, path: Path) -> None:
    temp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(temp)
    plt.close(fig)
    temp.replace(path)


# -- the page --------------------------------------------------------------------------------------


@dataclass
class ReportResult:
    charts: list[Chart]
    paths: list[Path]
    glyph_warnings: list[str]
    total: int


def render_html(charts: Iterable[Chart], facts: Facts) -> str:
    made = f"{now():%Y-%m-%d %H:%M} UTC"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        "<title>woshipm.com dataset report</title>",
        "<style>body{font-family:'Noto Sans CJK SC',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "img{max-width:100%}table{border-collapse:collapse;font-size:13px;margin-bottom:2em}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}details{margin:.5em 0 2em}</style>",
        "</head><body>",
        "<h1>人人都是产品经理 (woshipm.com): dataset report</h1>",
        f"<p>{facts.total} articles in {len(facts.categories)} categories; made {made}.</p>",
    ]
    for chart in charts:
        parts.append(f'<section id="{chart.name}"><h2>{html.escape(chart.title)}</h2>')
        parts.append(f'<img src="{chart.name}.png" alt="{html.escape(chart.title)}">')
        parts.append("<details><summary>figures</summary><table><tr>")
        parts.extend(f"<th>{html.escape(str(c))}</th>" for c in chart.columns)
        parts.append("</tr>")
        for row in chart.table:
            parts.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>")
        parts.append("</table></details></section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_markdown(charts: Iterable[Chart], facts: Facts, image_prefix: str = "") -> str:
    lines = ["# Dataset report", "", f"{facts.total} articles in {len(facts.categories)} categories.", ""]
    for chart in charts:
        lines += [f"## {chart.title}", "", f"![{chart.title}]({image_prefix}{chart.name}.png)", ""]
    return "\n".join(lines)


def build_report(state_path: Path, out: Path, progress: Callable[[int], None] | None = None) -> ReportResult:
    """Gather the facts, draw every chart, write index.html and report.md; glyph warnings are returned."""
    out.mkdir(parents=True, exist_ok=True)
    with StateStore(state_path) as store:
        facts = gather(store, progress)
    plt = _pyplot()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        charts = [draw(plt, facts, out) for draw in CHARTS]
    glyphs = [str(w.message) for w in caught if "missing from font" in str(w.message) or "Glyph" in str(w.message)]
    for w in caught:
        if str(w.message) not in glyphs:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    atomic_write(out / "index.html", render_html(charts, facts).encode("utf-8"))
    atomic_write(out / "report.md", render_markdown(charts, facts).encode("utf-8"))
    paths = [out / "index.html", out / "report.md", *(out / f"{chart.name}.png" for chart in charts)]
    return ReportResult(charts, paths, glyphs, facts.total)
