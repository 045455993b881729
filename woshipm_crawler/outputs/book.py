"""The library as one site: ``scrapy book`` builds ``<export dir>/book/`` from the Markdown library.

Every article file of the library (``library.render_article``'s format) becomes one page; around
them, the pages a reader finds their way with, all linked relatively (the folder can be moved or
served under any path)::

    index.html                               categories, each by year and month, with counts
    articles/<category>/index.html           a category by year and month, and its newest articles
    articles/<category>/<YYYY>/<MM>/index.html   a month's articles; the months before and after
    articles/<category>/<YYYY>/<MM>/<id>.html    an article; its month, category, home; the articles
                                             before and after it in its category; its tags, its author
    tags/index.html, tags/<key>/…            every tag; a tag's articles
    authors/index.html, authors/<key>/…      every author; an author's articles
    search.html                              search over every article (Pagefind; book_search)
    report/index.html                        the dataset report, when ``scrapy report`` has run
    assets/                                  the stylesheet and the search page's script
    pagefind/<segment>/                      the search index, in segments
    .build/                                  what the next build compares with (site.sqlite3)

The pages are rendered by markdown-it-py and Jinja2 templates that escape every value
(``book_render``): no text of an article becomes markup, a script or a link of another scheme.
A second wall (issue 24): the HTML rendered from a file (an article's header and body, the report)
goes through nh3 (``sanitise_content``) before it enters a template, whatever reached the Markdown.

**Incremental.** A build stats every article file; only new or changed files (size or mtime) are
read. Each page's inputs (its article's bytes, the titles and links it lists, the templates) are
hashed and kept in ``.build/site.sqlite3``; a page is rendered only when that hash changed, and a
page whose reason is gone (an article removed, a tag no longer used) is deleted. An article whose
file and neighbours are as last built is not even hashed (``settled``): its page is taken as it is,
unless its month's folder is gone (delete ``.build/`` to have every page checked and built again). The search index is
re-built only for the segments that changed (``book_search``). A list longer than ``PAGE_SIZE``
(a tag's, an author's) is cut into pages of fixed place, counted from the oldest article, so a new
article changes the list's first page and its newest part only.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import hashlib
import os
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path

import jinja2
import markupsafe
import nh3

from woshipm_crawler import site
from woshipm_crawler.library import ARTICLES_DIR, BOOK_TITLE, category_label
from woshipm_crawler.outputs import book_search
from woshipm_crawler.outputs.book_manifest import Manifest, Row, read_row, scan_library, tag_key
from woshipm_crawler.outputs.book_render import MARKDOWN, parse_article
from woshipm_crawler.util import atomic_write

BOOK_SUBDIR = "book"
BUILD_DIR = ".build"
MANIFEST = "site.sqlite3"
LAYOUT_VERSION = "site-3"  # bumped when what a page holds changes beyond its templates
# (2: nh3 over content; 3: no strikethrough, and a page is keyed only when its inputs may have changed)
PAGE_SIZE = 100  # articles on one page of a tag's or an author's list
CATEGORY_NEWEST = 20
TEMPLATES = "book_templates"
SEARCH_PAGE = "search.html"
SEARCH_DOCUMENTS = f"{BUILD_DIR}/search"  # what each article is indexed from (book_search)
ASSETS = ("site.css", "search.js")
# What the HonKit books of earlier versions left in the same folder: removed on the first build.
HONKIT_HASH_FILE, HONKIT_SOURCES = ".woshipm-book-hash", ".src"


class BookError(RuntimeError):
    pass


@dataclass
class BookResult:
    articles: int
    written: int  # pages (and assets) written
    unchanged: int
    removed: int
    indexed: int  # articles indexed for search in this build
    segments: int  # search segments of the site
    index: Path
    failed: list[str]  # "path: why" of article files that could not be read


# -- the second wall -------------------------------------------------------------------------------

# The Markdown's own elements only: no script, handler, style, frame or form; links and images
# http(s) or relative (nh3's defaults, plus the attributes book_render sets).
CONTENT_ATTRIBUTES = {
    **nh3.ALLOWED_ATTRIBUTES,
    "*": {"class", "id"},
    "a": {"href", "hreflang", "title"},
    "img": {*nh3.ALLOWED_ATTRIBUTES.get("img", ()), "loading", "referrerpolicy"},
}


def sanitise_content(html: str) -> markupsafe.Markup:
    """HTML rendered from a library file, as a template may insert it (nh3, issue 24's second wall)."""
    return markupsafe.Markup(nh3.clean(html, attributes=CONTENT_ATTRIBUTES, url_schemes={"http", "https"},
                                       link_rel=None))


# -- pages -------------------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("woshipm_crawler.outputs", TEMPLATES),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )


def _templates_digest() -> str:
    digest = hashlib.sha256(LAYOUT_VERSION.encode())
    folder = resources.files("woshipm_crawler.outputs").joinpath(TEMPLATES)
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_file():
            digest.update(entry.name.encode() + b"\0" + entry.read_bytes())
    return digest.hexdigest()


def _root(page: str) -> str:
    """The relative path from ``page`` to the site's root folder."""
    return "../" * page.count("/")


@dataclass
class Page:
    path: str
    key: object  # everything the page shows, hashed to decide whether to render it; None: as last built
    render: Callable[[], bytes] | None


class SitePlan:
    """Every page of the site for these rows: path, the inputs' key, and how to render it."""

    def __init__(self, rows: dict[int, Row], library_root: Path, report_dir: Path | None,
                 bundles: list[str], texts: dict[int, str]):
        self.rows = rows
        self.library_root = library_root
        self.report_dir = report_dir
        self.bundles = bundles
        self.texts = texts  # article texts already read in this build
        self._parsed: tuple | None = None
        self._entry_keys: dict[int, tuple] = {}
        # Articles whose page and search document have the inputs of the last build (``settled``):
        # not keyed again, their pages keep the manifest's hash (``Page.key`` None).
        self.settled: set[int] = set()
        self.env = _environment()
        self.has_report = report_dir is not None and (report_dir / "report.md").is_file()
        menu = {slug: n for n, slug in enumerate(site.categories())}
        self.by_category: dict[str, list[Row]] = defaultdict(list)
        self.by_month: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
        self.by_tag: dict[str, list[Row]] = defaultdict(list)
        self.by_author: dict[str, list[Row]] = defaultdict(list)
        for row in sorted(rows.values(), key=lambda r: r.sort_key):
            self.by_category[row.category].append(row)
            self.by_month[row.category, row.year, row.month].append(row)
            for tag in row.tags:
                self.by_tag[tag].append(row)
            if row.author_key:
                self.by_author[row.author_key].append(row)
        self.categories = sorted(self.by_category, key=lambda slug: (menu.get(slug, len(menu)), slug))

    # -- helpers --

    def _html(self, template: str, page: str, **context) -> bytes:
        context.setdefault("crumbs", [])
        context.setdefault("here", "")
        text = self.env.get_template(template).render(
            root=_root(page), site_title=BOOK_TITLE, has_report=self.has_report, **context)
        return text.encode("utf-8")

    @staticmethod
    def _entry(row: Row, page: str, category: bool = True, author: bool = True) -> dict:
        return {"title": row.title, "href": _root(page) + row.page, "published": row.published.removesuffix("-00"),
                "category": category_label(row.category) if category else None,
                "author": row.author_name if author else None}

    def _entry_key(self, row: Row) -> tuple:
        """What a list of articles shows of ``row``, part of the key of every page that lists it."""
        key = self._entry_keys.get(row.id)
        if key is None:  # once per row: an article is in four to six lists
            key = self._entry_keys[row.id] = (row.id, row.title, row.published, row.category, row.year, row.month,
                                              row.author_name)
        return key

    def _years(self, rows: list[Row]) -> list[dict]:
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for row in rows:
            counts[row.year][row.month] += 1
        return [{"year": year, "count": sum(counts[year].values()),
                 "months": [{"month": f"{m:02d}", "count": counts[year].get(f"{m:02d}", 0)} for m in range(1, 13)]}
                for year in sorted(counts, reverse=True)]

    # -- the pages --

    def pages(self) -> Iterator[Page]:
        yield self.home()
        for category in self.categories:
            yield self.category(category)
            months = sorted({(row.year, row.month) for row in self.by_category[category]})
            for n, (year, month) in enumerate(months):
                before = months[n - 1] if n else None
                after = months[n + 1] if n + 1 < len(months) else None
                yield self.month(category, year, month, before, after)
            articles = self.by_category[category]
            for n, row in enumerate(articles):
                yield from self.article(row, articles[n - 1] if n else None,
                                        articles[n + 1] if n + 1 < len(articles) else None)
        yield self.names("tags", "全部标签", {tag_key(tag): (tag, len(rows)) for tag, rows in self.by_tag.items()})
        for tag, rows in self.by_tag.items():
            yield from self.listing(f"tags/{tag_key(tag)}", f"标签：{tag}", rows, None)
        yield self.names("authors", "全部作者", {key: (rows[-1].author_name or key, len(rows))
                                                 for key, rows in self.by_author.items()})
        for key, rows in self.by_author.items():
            yield from self.listing(f"authors/{key}", f"作者：{rows[-1].author_name or key}", rows,
                                    rows[-1].author_url)
        yield self.search()
        if self.has_report:
            yield from self.report()
        folder = resources.files("woshipm_crawler.outputs").joinpath(TEMPLATES)
        for name in ASSETS:
            data = folder.joinpath(name).read_bytes()
            yield Page(f"assets/{name}", hashlib.sha256(data).hexdigest(), lambda data=data: data)

    def home(self) -> Page:
        page = "index.html"
        categories = [{"slug": slug, "label": category_label(slug), "count": len(self.by_category[slug]),
                       "href": f"{ARTICLES_DIR}/{slug}/index.html", "folder": f"{ARTICLES_DIR}/{slug}/",
                       "years": self._years(self.by_category[slug])} for slug in self.categories]
        return Page(page, ("home", categories, self.has_report), lambda: self._html(
            "home.html", page, title="首页", categories=categories, total=len(self.rows)))

    def category(self, slug: str) -> Page:
        page = f"{ARTICLES_DIR}/{slug}/index.html"
        rows = self.by_category[slug]
        newest = rows[::-1][:CATEGORY_NEWEST]
        years = self._years(rows)
        key = ("category", slug, len(rows), years, [self._entry_key(r) for r in newest], self.has_report)
        label = category_label(slug)
        return Page(page, key, lambda: self._html(
            "category.html", page, title=label, heading=label, count=len(rows), years=years,
            newest=[self._entry(r, page, category=False) for r in newest],
            crumbs=[("首页", _root(page) + "index.html")], here=label))

    def month(self, slug: str, year: str, month: str, before, after) -> Page:
        page = f"{ARTICLES_DIR}/{slug}/{year}/{month}/index.html"
        rows = self.by_month[slug, year, month][::-1]
        label = category_label(slug)

        def neighbour(other, direction):
            if other is None:
                return None
            return {"href": f"{_root(page)}{ARTICLES_DIR}/{slug}/{other[0]}/{other[1]}/index.html",
                    "title": f"{other[0]}-{other[1]}", "label": direction}

        key = ("month", slug, year, month, [self._entry_key(r) for r in rows], before, after, self.has_report)
        return Page(page, key, lambda: self._html(
            "month.html", page, title=f"{label} {year}-{month}", heading=f"{label} {year}-{month}", count=len(rows),
            items=[self._entry(r, page, category=False) for r in rows],
            previous=neighbour(before, "上个月"), next=neighbour(after, "下个月"),
            crumbs=[("首页", _root(page) + "index.html"), (label, "../../index.html")], here=f"{year}-{month}"))

    def _parse(self, row: Row) -> tuple:
        """(parsed file, body HTML, plain text) of an article, for its page and its search document
        (rendered one after the other: the last one is kept)."""
        if self._parsed is None or self._parsed[0] != row.id:
            text = self.texts.get(row.id)
            if text is None:
                text = (self.library_root / row.path).read_bytes().decode("utf-8", errors="replace")
            parsed = parse_article(text)
            self._parsed = (row.id, parsed, *parsed.body())
        return self._parsed[1:]

    def article(self, row: Row, before: Row | None, after: Row | None) -> Iterator[Page]:
        """An article's page, and the document its search words are indexed from (book_search)."""
        page = row.page
        if row.id in self.settled:
            yield Page(page, None, None)
            yield Page(f"{SEARCH_DOCUMENTS}/{page}", None, None)
            return

        def neighbour(other, direction):
            if other is None:
                return None
            return {"href": _root(page) + other.page, "title": other.title, "label": direction}

        key = ("article", row.digest, row.page, [self._entry_key(r) if r else None for r in (before, after)],
               self.has_report)

        def render() -> bytes:
            parsed, body_html, _ = self._parse(row)
            root = _root(page)
            label = category_label(row.category)
            author = f"{root}authors/{row.author_key}/index.html" if row.author_key else None
            header = parsed.header_html(lambda tag: f"{root}tags/{tag_key(tag)}/index.html", author)
            return self._html(
                "article.html", page, title=row.title, category=label, month=f"{row.year}-{row.month}",
                header_html=sanitise_content(header), body_html=sanitise_content(body_html),
                previous=neighbour(before, "上一篇（更早）"), next=neighbour(after, "下一篇（更新）"),
                month_href="index.html", category_href="../../index.html",
                crumbs=[("首页", root + "index.html"), (label, "../../index.html"),
                        (f"{row.year}-{row.month}", "index.html")],
                here=row.title)

        def document() -> bytes:
            _, _, text = self._parse(row)
            sections = [row.title, text, row.author_name or "", *row.tags]
            words = " ".join(" ".join(book_search.search_words(section)) for section in sections)
            return self.env.get_template("search_document.html").render(
                title=row.title, text=text, words=words, language=book_search.LANGUAGE).encode("utf-8")

        yield Page(page, key, render)
        yield Page(f"{SEARCH_DOCUMENTS}/{page}", ("document", row.digest, row.title, row.author_name, row.tags),
                   document)

    def names(self, folder: str, heading: str, names: dict[str, tuple[str, int]]) -> Page:
        page = f"{folder}/index.html"
        ordered = sorted(names.items(), key=lambda item: (-item[1][1], item[1][0]))
        items = [{"href": f"{key}/index.html", "label": label, "count": count} for key, (label, count) in ordered]
        return Page(page, (folder, ordered, self.has_report), lambda: self._html(
            "names.html", page, title=heading, heading=heading, names=items,
            crumbs=[("首页", "../index.html")], here=heading))

    def listing(self, folder: str, heading: str, rows: list[Row], external: str | None) -> Iterator[Page]:
        """A tag's or an author's articles: one page, or, past PAGE_SIZE, the newest PAGE_SIZE on
        ``index.html`` and every article on ``p<k>.html`` pages of PAGE_SIZE counted from the oldest."""
        chunks = [rows[k:k + PAGE_SIZE] for k in range(0, len(rows), PAGE_SIZE)] if len(rows) > PAGE_SIZE else []
        # A page is named by where it starts, which a newer article does not move.
        labels = [chunk[0].published.removesuffix("-00") for chunk in chunks]
        crumbs_root = "../../"
        top = "标签" if folder.startswith("tags/") else "作者"

        def one(page: str, shown: list[Row], current: int | None) -> Page:
            pages = [{"href": f"p{k + 1}.html", "label": f"第 {k + 1} 页（{label} 起）", "current": k == current}
                     for k, label in enumerate(labels)]
            count = len(rows) if current is None else None  # a fixed page does not change with the total
            key = ("listing", page, heading, count, [self._entry_key(r) for r in shown], labels, current,
                   external, self.has_report)
            return Page(page, key, lambda: self._html(
                "listing.html", page, title=heading, heading=heading, count=count,
                items=[self._entry(r, page) for r in shown[::-1]], pages=pages, external=external,
                crumbs=[("首页", crumbs_root + "index.html"), (top, "../index.html")], here=heading))

        yield one(f"{folder}/index.html", rows[-PAGE_SIZE:], None)
        for k, chunk in enumerate(chunks):
            yield one(f"{folder}/p{k + 1}.html", chunk, k)

    def search(self) -> Page:
        page = SEARCH_PAGE
        bundles = [f"{book_search.BUNDLES_DIR}/{name}/" for name in self.bundles]
        return Page(page, ("search", bundles, len(self.rows), self.has_report), lambda: self._html(
            "search.html", page, title="搜索", bundles=bundles, total=len(self.rows),
            crumbs=[("首页", "index.html")], here="搜索"))

    def report(self) -> Iterator[Page]:
        assert self.report_dir is not None
        text = (self.report_dir / "report.md").read_text(encoding="utf-8")
        page = "report/index.html"
        yield Page(page, ("report", hashlib.sha256(text.encode()).hexdigest()), lambda: self._html(
            "page.html", page, title="数据报告", body_html=sanitise_content(MARKDOWN.render(text)),
            crumbs=[("首页", "../index.html")], here="数据报告"))
        for png in sorted(self.report_dir.glob("*.png")):
            data = png.read_bytes()
            yield Page(f"report/{png.name}", hashlib.sha256(data).hexdigest(), lambda data=data: data)


# -- the build ---------------------------------------------------------------------------------------


def _digest(key: object, templates: str) -> str:
    return hashlib.sha256((templates + repr(key)).encode("utf-8")).hexdigest()


def _save_pages(conn, built: dict[str, str], live: dict[str, str]) -> list[str]:
    """Record the pages' hashes (in ``conn``'s transaction); return the pages no longer part of the site."""
    old_pages = [path for path in built if path not in live]
    conn.executemany("INSERT OR REPLACE INTO pages VALUES (?, ?)",
                     ((path, digest) for path, digest in live.items() if built.get(path) != digest))
    conn.executemany("DELETE FROM pages WHERE path = ?", ((path,) for path in old_pages))
    return old_pages


def _neighbours(rows: Iterable[Row]) -> dict[int, tuple[int | None, int | None]]:
    """Each article's previous and next article in its category (``SitePlan.pages``' order)."""
    by_category: dict[str, list[int]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r.sort_key):
        by_category[row.category].append(row.id)
    found = {}
    for ids in by_category.values():
        for n, article in enumerate(ids):
            found[article] = (ids[n - 1] if n else None, ids[n + 1] if n + 1 < len(ids) else None)
    return found


def settled(old_rows: dict[int, Row], rows: dict[int, Row], fresh: set[int]) -> set[int]:
    """The articles whose page and search document cannot have changed since the build that saved
    ``old_rows``: the same file (not in ``fresh``, the rows read again), and the same neighbours, none
    of them read again. Everything else such a page shows is its own file's."""
    before, now = _neighbours(old_rows.values()), _neighbours(rows.values())
    return {article for article, pair in now.items()
            if article not in fresh and before.get(article) == pair and fresh.isdisjoint(pair)}


def _remove_honkit_books(site_dir: Path) -> None:
    """The HonKit books an earlier version built here (each marked by its hash file) and their sources."""
    for marker in [*site_dir.glob(f"*/*/{HONKIT_HASH_FILE}"), *site_dir.glob(f"*/{HONKIT_HASH_FILE}")]:
        shutil.rmtree(marker.parent, ignore_errors=True)
    shutil.rmtree(site_dir / HONKIT_SOURCES, ignore_errors=True)


def _remove_page(site_dir: Path, page: str) -> None:
    path = site_dir / page
    path.unlink(missing_ok=True)
    folder = path.parent
    while folder != site_dir:  # folders left empty (a month, a tag)
        try:
            folder.rmdir()
        except OSError:
            break
        folder = folder.parent


@contextlib.contextmanager
def _build_lock(site_dir: Path) -> Iterator[None]:
    (site_dir / BUILD_DIR).mkdir(parents=True, exist_ok=True)
    with open(site_dir / BUILD_DIR / "lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BookError(f"another scrapy book is building {site_dir}: wait for it to end") from None
        yield


def build_site(library_root: Path, site_dir: Path, categories: Iterable[str] | None = None,
               since: date | None = None, report_dir: Path | None = None,
               progress: Callable[..., None] | None = None, log: Callable[[str], None] = print) -> BookResult:
    """Bring the site in ``site_dir`` up to date with the library in ``library_root``.

    ``categories``/``since``: only these categories / articles published on or after this day (the
    site then holds only those)."""
    library_root, site_dir = Path(library_root).resolve(), Path(site_dir).resolve()
    if not (library_root / ARTICLES_DIR).is_dir():
        raise BookError(f"no Markdown library at {library_root}: crawl first (scrapy crawl category -a "
                        "category=all), or write it from the state (python -m woshipm_crawler.export)")
    wanted = set(categories or ())
    with _build_lock(site_dir):
        manifest = Manifest(site_dir / BUILD_DIR / MANIFEST)
        try:
            return _build(manifest, library_root, site_dir, wanted, since, report_dir, progress, log)
        finally:
            gc.unfreeze()
            manifest.close()


def _build(manifest: Manifest, library_root: Path, site_dir: Path, wanted: set[str], since: date | None,
           report_dir: Path | None, progress, log) -> BookResult:
    templates = _templates_digest()
    same_layout = manifest.meta("templates") == templates
    if not same_layout:  # pages may index differently: search from scratch
        manifest.conn.execute("UPDATE articles SET segment = NULL, indexed = NULL")
    if manifest.meta("built") is None:
        _remove_honkit_books(site_dir)
    files = scan_library(library_root, wanted, since)
    old_rows = manifest.rows()
    # They live through the build: frozen, the collector stops walking them at every collection
    # (build_site unfreezes them).
    gc.freeze()
    current: dict[str, list[int]] = defaultdict(list)  # the search segments as last indexed
    for row in old_rows.values():
        if row.segment is not None:
            current[row.segment].append(row.id)
    rows: dict[int, Row] = {}
    texts: dict[int, str] = {}
    failed: list[str] = []
    changed: list[Row] = []
    for n, (article, sig) in enumerate(files.items()):
        old = old_rows.get(article)
        if old is not None and (old.path, old.mtime_ns, old.size) == (sig.path, sig.mtime_ns, sig.size):
            rows[article] = old
            continue
        try:
            row, text = read_row(library_root, article, sig)
        except OSError as error:
            failed.append(f"{sig.path}: {error}")
            continue
        if since is not None and row.published < since.isoformat():
            continue
        if old is not None:  # where it is indexed stays known until it is indexed again
            row.segment, row.indexed = old.segment, old.indexed
        rows[article] = row
        texts[article] = text
        changed.append(row)
        if progress:
            progress("articles read", n + 1, len(files))
    # Rows of articles gone from the library leave the manifest only once the search no longer has them.
    gone = [article for article in old_rows if article not in rows]

    # The search segments: planned first (the search page lists them), indexed once the pages exist.
    stale = {row.id for row in rows.values() if row.indexed != row.digest}
    counter = int(manifest.meta("segments") or 0)

    def new_name() -> str:
        nonlocal counter
        counter += 1
        return f"s{counter:06d}"

    order = {row.id: row.sort_key for row in rows.values()}
    search_plan = book_search.plan(current, rows, stale, order.__getitem__, new_name,
                                      book_search.index_workers())

    plan = SitePlan(rows, library_root, report_dir, sorted(search_plan.members), texts)
    built = manifest.pages()
    site_prefix = f"{site_dir}{os.sep}"
    if same_layout and manifest.meta("report") == str(plan.has_report):
        month_folders: dict[str, bool] = {}  # a folder deleted by hand is built again

        def on_disk(row: Row) -> bool:
            folder = row.month_page.rpartition("/")[0]
            if folder not in month_folders:
                month_folders[folder] = os.path.isdir(site_prefix + folder)
            return month_folders[folder]

        plan.settled = {article for article in settled(old_rows, rows, {row.id for row in changed})
                        if rows[article].page in built and f"{SEARCH_DOCUMENTS}/{rows[article].page}" in built
                        and on_disk(rows[article])}
    live: dict[str, str] = {}
    later: list[Page] = []
    written = unchanged = 0

    def write(page: Page) -> None:
        nonlocal written, unchanged
        # os.path on a string, not Path: this runs for every page keyed, changed or not
        if page.render is None or (built.get(page.path) == live[page.path]
                                   and os.path.exists(site_prefix + page.path)):
            unchanged += 1
            return
        atomic_write(site_dir / page.path, page.render(), durable=False)
        written += 1
        if progress:
            progress("pages", written + unchanged, len(pages))

    pages = list(plan.pages())
    for page in pages:
        live[page.path] = built[page.path] if page.key is None else _digest(page.key, templates)
        if page.path == SEARCH_PAGE:  # it lists the new segments: written once they exist
            later.append(page)
        else:
            write(page)
    # Search: index the new segments, then record them. A failure leaves the search page and the
    # segments as they were; the next build plans the same again.
    try:
        book_search.index_segments(site_dir, site_dir / SEARCH_DOCUMENTS, site_dir / BUILD_DIR,
                                   {name: [rows[i].page for i in search_plan.members[name]]
                                    for name in search_plan.build})
    except book_search.SearchError as error:
        live[SEARCH_PAGE] = built.get(SEARCH_PAGE, "")  # the old search page stays, and is redone next time
        with manifest.transaction() as conn:  # the rows are not saved: their files are read again
            _save_pages(conn, built, live)
        raise BookError(str(error)) from None
    for page in later:
        write(page)
    # One transaction: rows saved with the pages built from them (``settled`` relies on it).
    with manifest.transaction() as conn:
        manifest.save_rows(conn, changed, ())
        old_pages = _save_pages(conn, built, live)
        for name in search_plan.build:
            conn.executemany("UPDATE articles SET segment = ?, indexed = digest WHERE id = ?",
                             ((name, i) for i in search_plan.members[name]))
        conn.executemany("DELETE FROM articles WHERE id = ?", ((i,) for i in gone))
        for key, value in (("segments", str(counter)), ("templates", templates), ("built", "1"),
                           ("report", str(plan.has_report))):
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
    for path in old_pages:
        _remove_page(site_dir, path)
    book_search.drop_segments(site_dir, search_plan.members)
    return BookResult(len(rows), written, unchanged, len(old_pages), search_plan.indexed, len(search_plan.members),
                      site_dir / "index.html", failed)

