"""The library as books: ``scrapy book`` builds ``<export dir>/book/`` with HonKit.

HonKit's build time grows faster than the book (measured here: 25 articles 5 s, 100 articles 16 s,
400 articles 620 s: every page carries the whole table of contents), so the library is built as many
small books plus ``index.html`` linking them: one book per category and year, or, for a year with
more than ``MAX_BOOK_ARTICLES`` articles in the category, one per month (a month that large: one
per day). Books keep their calendar period as new articles arrive, so an incremental run rebuilds
only the newest period's books, and time per article stays flat as the library grows. Layout::

    index.html                    every book by category and period (plain HTML, no HonKit)
    <category>/<period>/          one HonKit website (open its index.html); period YYYY, YYYY-MM or YYYY-MM-DD
    report/                       the dataset report as a book, when ``scrapy report`` has run
    .src/<category>/<period>/     the books' sources: book.json, README.md, SUMMARY.md, articles/MM/<id>.md
    .src/node_modules/            honkit + gitbook-plugin-hints, installed with npm when missing

Articles are the library's files (``library.render_article``); ``gitbook-plugin-hints`` renders their
``{% hint %}`` header. A book is rebuilt only when its inputs changed: the SHA-256 of its sources
is stored beside its output (``.woshipm-book-hash``). One Node process builds every book that needs
it (``honkit_build.js``), so HonKit loads once.

No page content runs in a book (issue 24): the Markdown reads as text under HonKit's kramed as under
CommonMark (``markdown.escape_text``, ``library.escape_inline``), the titles HonKit's theme inserts
unescaped reach it HTML-escaped (``honkit_title``), and every built page's content goes through nh3
(``sanitise_page``), a second wall.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import logging
import re
import shutil
import subprocess
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path

import nh3
from lxml import html as lxml_html

from woshipm_crawler import site
from woshipm_crawler.library import (
    BOOK_TITLE,
    CATEGORY_SLUG_RE,
    LibraryEntry,
    escape_inline,
    published_date,
    render_article,
    render_month_readme,
)
from woshipm_crawler.outputs.dataset import dataset_items
from woshipm_crawler.state import StateStore
from woshipm_crawler.util import atomic_write

logger = logging.getLogger(__name__)

BOOK_SUBDIR = "book"
SOURCE_DIR = ".src"
HASH_FILE = ".woshipm-book-hash"
NPM_PACKAGES = ("honkit@6", "gitbook-plugin-hints@1")
NPM_INSTALL_TIMEOUT_S = 300  # a first install takes ~30 s; a registry out of reach would hang
# Bumped when the sources' layout or book.json changes, so every book is rebuilt once.
LAYOUT_VERSION = "2"  # 2: titles HTML-escaped for the theme, Markdown safe under kramed, pages sanitised
# Above this a book is split into shorter periods (HonKit slows down sharply past ~100 pages).
MAX_BOOK_ARTICLES = 60
BOOKS_PER_PROCESS = 200
PERIOD_RE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
BOOK_JSON = {
    "plugins": ["hints", "-sharing", "-fontsettings"],
    "language": "zh-hans",
}


class BookError(RuntimeError):
    pass


@dataclass
class Slice:
    """One small book: the articles of a category published in a period (YYYY, YYYY-MM or YYYY-MM-DD)."""

    category: str
    period: str
    entries: list[LibraryEntry] = field(default_factory=list)
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    files: set[str] = field(default_factory=set)  # article files written, relative to the source

    @property
    def key(self) -> str:
        return f"{self.category}/{self.period}"

    @property
    def label(self) -> str:
        return f"{site.category_name(self.category) or self.category} {self.period}"


@dataclass
class BookResult:
    built: list[str]
    unchanged: list[str]
    failed: list[str]
    articles: int
    index: Path


def _write_if_changed(path: Path, data: bytes) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.read_bytes() == data:
            return
    atomic_write(path, data)


# What HonKit's theme must not meet raw: "<" (a tag, or "</script>" in its inline JSON), '"' (it ends
# the aria-label attribute) and "&" that starts a reference (it would be decoded).
_HONKIT_RAW_RE = re.compile(r'[<"]|&(?=[#A-Za-z0-9])')
_HONKIT_RAW = {"<": "&lt;", '"': "&quot;", "&": "&amp;"}


def honkit_title(text: str) -> str:
    """A title as HonKit is given it (book.json, and SUMMARY.md after ``escape_inline``).

    HonKit reads a SUMMARY link's text with its references decoded, and its theme inserts that text
    unescaped into ``<title>``, the header, the sidebar, the previous/next ``aria-label`` and an inline
    script's JSON (templates rendered with autoescape off). So the text HonKit reads is the title with
    ``<``, ``"`` and a reference-like ``&`` HTML-escaped: each of those places shows the title as it is.
    (Only the search plugin's result list shows it as text, references and all.)
    """
    return _HONKIT_RAW_RE.sub(lambda m: _HONKIT_RAW[m.group()], text)


def _summary_text(text: str) -> str:
    return escape_inline(honkit_title(text))


def _slice_pages(part: Slice) -> dict[str, str]:
    """README.md, SUMMARY.md and the month READMEs of a book (articles newest first)."""
    months: dict[str, list[LibraryEntry]] = defaultdict(list)
    for entry in part.entries:
        months[entry.month].append(entry)
    summary = ["# Summary", "", f"* [{_summary_text(part.label)}](README.md)"]
    pages: dict[str, str] = {}
    for month in sorted(months, reverse=True):
        entries = sorted(months[month], key=lambda e: e.sort_key, reverse=True)
        year = entries[0].year
        summary.append(f"* [{year}-{month}](articles/{month}/README.md)")
        summary.extend(f"    * [{_summary_text(e.title)}](articles/{month}/{e.id}.md)" for e in entries)
        pages[f"articles/{month}/README.md"] = render_month_readme(part.category, year, month, entries)
    count = len(part.entries)
    pages["README.md"] = (
        f"# {escape_inline(part.label)}\n\n{count} article{'s' if count != 1 else ''}, newest first.\n\n"
        '<a href="../../index.html">← all books</a>\n'
    )
    pages["SUMMARY.md"] = "\n".join(summary) + "\n"
    pages["book.json"] = json.dumps({"title": honkit_title(f"{part.label} · {BOOK_TITLE}"), **BOOK_JSON},
                                    ensure_ascii=False)
    return pages


def ensure_honkit(source_root: Path, log: Callable[[str], None] = print) -> None:
    """Install honkit and gitbook-plugin-hints under ``source_root/node_modules`` when missing."""
    modules = source_root / "node_modules"
    if (modules / "honkit" / "package.json").exists() and (modules / "gitbook-plugin-hints").exists():
        return
    npm = shutil.which("npm")
    if not npm or not shutil.which("node"):
        raise BookError("node and npm are needed to build the book (Debian: apt-get install nodejs npm)")
    log(f"installing {', '.join(NPM_PACKAGES)} into {modules} ...")
    source_root.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [npm, "install", "--prefix", str(source_root), "--no-audit", "--no-fund", "--no-save", "--loglevel=error",
             *NPM_PACKAGES],
            capture_output=True, text=True, timeout=NPM_INSTALL_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise BookError(
            f"npm install did not finish in {NPM_INSTALL_TIMEOUT_S} s: can npm reach its registry (a proxy, or a "
            "certificate authority npm needs, e.g. NODE_EXTRA_CA_CERTS)?"
        ) from None
    if done.returncode != 0:
        raise BookError(f"npm install failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}")


def _add_report(book_dir: Path, report_dir: Path, slices: dict[str, Slice]) -> Slice | None:
    """The dataset report as a one-page book, when ``scrapy report`` has written it."""
    page = report_dir / "report.md"
    if not page.exists():
        return None
    part = Slice("report", "")  # key "report/": the book lives in <book dir>/report
    source = book_dir / SOURCE_DIR / "report"
    files = {"README.md": page.read_bytes()}
    files.update({png.name: png.read_bytes() for png in sorted(report_dir.glob("*.png"))})
    files["SUMMARY.md"] = b"# Summary\n\n* [Dataset report](README.md)\n"
    files["book.json"] = json.dumps({"title": f"Dataset report · {BOOK_TITLE}", **BOOK_JSON}).encode()
    for name, data in files.items():
        _write_if_changed(source / name, data)
        part.digest.update(name.encode() + b"\0" + data)
    slices["report"] = part
    return part


def book_periods(days: Iterable[tuple[str, date]]) -> dict[tuple[str, date], str]:
    """(category, day) -> the period of its book: the year, or the month (or the day) when the
    category has more than MAX_BOOK_ARTICLES articles in the year (or the month)."""
    days = list(days)
    per_year = Counter((category, day.year) for category, day in days)
    per_month = Counter((category, day.year, day.month) for category, day in days)
    periods = {}
    for category, day in set(days):
        if per_year[category, day.year] <= MAX_BOOK_ARTICLES:
            periods[category, day] = f"{day.year:04d}"
        elif per_month[category, day.year, day.month] <= MAX_BOOK_ARTICLES:
            periods[category, day] = f"{day.year:04d}-{day.month:02d}"
        else:
            periods[category, day] = day.isoformat()
    return periods


def _day(item: Mapping, log: Callable[[str], None] | None = None) -> date | None:
    """The article's day, or None for one an older crawler stored with an impossible date (it has no
    place in the library, hence none in a book; ``python -m woshipm_crawler.export`` names it)."""
    try:
        return published_date(item.get("published"))
    except ValueError as error:
        if log:
            log(f"article {item.get('id')} left out of the books: {error}")
        return None


def build_books(state_path: Path, book_dir: Path, categories: Iterable[str] | None = None,
                since: date | None = None, report_dir: Path | None = None,
                progress: Callable[..., None] | None = None, log: Callable[[str], None] = print) -> BookResult:
    """Write every book's sources, build the books whose inputs changed, write the index.

    A build of the whole library (no ``categories``, no ``since``) also removes the books of
    periods that no longer exist (a year split into months once it grew)."""
    wanted = set(categories or ())
    book_dir = Path(book_dir).absolute()  # HonKit runs in another working directory: no relative paths
    source_root = book_dir / SOURCE_DIR
    slices: dict[str, Slice] = {}
    count = 0
    with StateStore(state_path) as store:
        # Periods depend on how many articles a category has in a year: counted over the whole
        # library, so a slice (--category, --since) builds the same books as a full build.
        periods = book_periods((item["category"], day) for item in store.iter_items() if (day := _day(item, log)))
        for item in dataset_items(store):
            day = _day(item)
            if day is None or (wanted and item["category"] not in wanted) or (since and day < since):
                continue
            period, month = periods[item["category"], day], f"{day.month:02d}"
            part = slices.setdefault(f"{item['category']}/{period}", Slice(item["category"], period))
            text = render_article(item).encode("utf-8")
            relative = f"articles/{month}/{item['id']}.md"
            _write_if_changed(source_root / part.key / relative, text)
            part.files.add(relative)
            part.digest.update(relative.encode() + b"\0" + text)
            part.entries.append(LibraryEntry(item["id"], item["category"], f"{day.year:04d}", month,
                                             item["title"] or "", day.isoformat()))
            count += 1
            if progress:
                progress("articles", count)
    for part in slices.values():
        source = source_root / part.key
        for path in (source / "articles").glob("*/*.md"):  # articles that left the book
            relative = path.relative_to(source).as_posix()
            if path.name != "README.md" and relative not in part.files:
                path.unlink()
        for name, text in _slice_pages(part).items():
            data = text.encode("utf-8")
            _write_if_changed(source / name, data)
            part.digest.update(name.encode() + b"\0" + data)
    if report_dir is not None:
        _add_report(book_dir, report_dir, slices)

    stale: list[tuple[Slice, str]] = []
    unchanged: list[str] = []
    for key, part in sorted(slices.items()):
        part.digest.update(LAYOUT_VERSION.encode())
        digest = part.digest.hexdigest()
        stored = book_dir / key / HASH_FILE
        if stored.exists() and stored.read_text().strip() == digest and (book_dir / key / "index.html").exists():
            unchanged.append(key)
        else:
            stale.append((part, digest))
    if not wanted and since is None:
        _remove_stale_books(book_dir, set(slices))
    built, failed = _run_honkit(source_root, book_dir, stale, progress, log)
    index = book_dir / "index.html"
    atomic_write(index, render_index(book_dir).encode("utf-8"))
    return BookResult(built, unchanged, failed, count, index)


def _remove_stale_books(book_dir: Path, live: set[str]) -> None:
    """Books (output and sources) of periods the library no longer has."""
    for marker in list(book_dir.glob(f"*/*/{HASH_FILE}")) + list(book_dir.glob(f"{SOURCE_DIR}/*/*/book.json")):
        folder = marker.parent
        key = f"{folder.parent.name}/{folder.name}"
        if key not in live and CATEGORY_SLUG_RE.fullmatch(folder.parent.name) and PERIOD_RE.fullmatch(folder.name):
            shutil.rmtree(folder)
            logger.info("removed book %s: its period is gone", key)


# The second wall (issue 24): whatever Markdown reached HonKit (an older state's, a renderer's quirk),
# the content part of every page it built goes through nh3 (ammonia): the Markdown's own elements, no
# script, handler, style, frame or form, links and images http(s) or relative. The page around it
# (HonKit's theme and scripts) is left as it is; lxml parses and writes the page once.
CONTENT_XPATH = "//section[contains(concat(' ', normalize-space(@class), ' '), ' markdown-section ')]"
CONTENT_ATTRIBUTES = {
    **nh3.ALLOWED_ATTRIBUTES,
    "*": {"class", "id"},  # the hints block's and highlight.js's classes, heading anchors
    "a": {"href", "hreflang", "target"},
}


def sanitise_page(path: Path) -> None:
    """Replace the content section of a built page by its sanitised self (nh3)."""
    document = lxml_html.document_fromstring(path.read_text(encoding="utf-8"))
    sections = document.xpath(CONTENT_XPATH)
    if not sections:
        return
    for section in sections:
        inner = html.escape(section.text or "", quote=False) + "".join(
            lxml_html.tostring(child, encoding="unicode") for child in section)
        clean = nh3.clean(inner, attributes=CONTENT_ATTRIBUTES, url_schemes={"http", "https"}, link_rel=None)
        section.text = None
        for child in list(section):
            section.remove(child)
        for piece in lxml_html.fragments_fromstring(clean) if clean.strip() else ():
            if isinstance(piece, str):
                section.text = (section.text or "") + piece
            else:
                section.append(piece)
    atomic_write(path, lxml_html.tostring(document, encoding="utf-8", doctype="<!DOCTYPE HTML>"))


def _run_honkit(source_root: Path, book_dir: Path, stale: list[tuple[Slice, str]],
                progress: Callable[..., None] | None, log: Callable[[str], None]) -> tuple[list[str], list[str]]:
    """Build the stale books, ``BOOKS_PER_PROCESS`` per Node process (HonKit loads once per process,
    and a process's memory grows with the books it built); a book's hash is stored once it is built."""
    if not stale:
        return [], []
    ensure_honkit(source_root, log)
    digests = {str(book_dir / part.key): (part.key, digest) for part, digest in stale}
    jobs = [[str(source_root / part.key), str(book_dir / part.key)] for part, _ in stale]
    built: list[str] = []
    failed: list[str] = []
    script = resources.files("woshipm_crawler.outputs").joinpath("honkit_build.js")
    with resources.as_file(script) as script_path, tempfile.TemporaryDirectory(dir=source_root) as work:
        for start in range(0, len(jobs), BOOKS_PER_PROCESS):
            batch = jobs[start:start + BOOKS_PER_PROCESS]
            jobs_file, errors_file = Path(work) / "jobs.json", Path(work) / "stderr.txt"
            jobs_file.write_text(json.dumps(batch))
            with errors_file.open("w") as errors:
                process = subprocess.Popen(["node", str(script_path), str(jobs_file)], stdout=subprocess.PIPE,
                                           stderr=errors, text=True, cwd=source_root)
                for line in process.stdout:
                    status, _, rest = line.rstrip("\n").partition(" ")
                    output, _, reason = rest.partition(": ")
                    if output not in digests:
                        continue
                    key, digest = digests[output]
                    if status == "built":
                        for page in (book_dir / key).rglob("*.html"):
                            sanitise_page(page)
                        atomic_write(book_dir / key / HASH_FILE, digest.encode())
                        built.append(key)
                    else:
                        failed.append(key)
                        log(f"book {key} failed: {reason}")
                    if progress:
                        progress("books", len(built) + len(failed), len(jobs))
                process.wait()
            missing = [digests[out][0] for _, out in batch if digests[out][0] not in built + failed]
            if missing:
                failed.extend(missing)
                log(f"HonKit stopped before building {len(missing)} book(s): {errors_file.read_text()[-500:]}")
    return built, failed


def render_index(book_dir: Path) -> str:
    """Every built book under ``book_dir``, by category (menu order) and period (newest first)."""
    books: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for hash_file in book_dir.glob(f"*/*/{HASH_FILE}"):
        category, period = hash_file.parent.parent.name, hash_file.parent.name
        if category.startswith("."):
            continue
        articles = book_dir / SOURCE_DIR / category / period / "articles"
        books[category].append((period, sum(1 for p in articles.glob("*/*.md") if p.name != "README.md")))
    menu = {slug: n for n, slug in enumerate(site.categories())}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>{html.escape(BOOK_TITLE)}</title>",
        "<style>body{font-family:'Noto Sans CJK SC',sans-serif;max-width:900px;margin:2em auto;padding:0 1em}"
        "li{margin:.2em 0}</style></head><body>",
        f"<h1>{html.escape(BOOK_TITLE)}</h1>",
        f"<p>{sum(n for years in books.values() for _, n in years)} articles in {len(books)} categories, "
        "one book per category and year (or month, for a busy year).</p>",
    ]
    if (book_dir / "report" / HASH_FILE).exists():
        parts.append('<p><a href="report/index.html">Dataset report</a></p>')
    for category in sorted(books, key=lambda slug: (menu.get(slug, len(menu)), slug)):
        name = site.category_name(category) or category
        parts.append(f'<h2 id="{html.escape(category)}">{html.escape(name)}</h2><ul>')
        parts.extend(f'<li><a href="{html.escape(category)}/{period}/index.html">{period}</a> '
                     f'({n} article{"s" if n != 1 else ""})</li>'
                     for period, n in sorted(books[category], reverse=True))
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
