"""The Markdown library: a GitBook-style book of every exported article.

Layout under the library root (``<export dir>/markdown``, see ``LIBRARY_SUBDIR``)::

    SUMMARY.md                             the book's table of contents
    README.md                              counts: articles, per category
    articles/<category>/README.md          years of the category
    articles/<category>/<YYYY>/README.md   months of the year
    articles/<category>/<YYYY>/<MM>/README.md   articles of the month
    articles/<category>/<YYYY>/<MM>/<id>.md     one article

An article's path comes from its id, category slug and publication date only, never from the title.

Format decisions:

- The header block reproduces ``shared/reference/seed-article-000_*.md`` (the prior GitBook export),
  except that every field line ends with two spaces (a hard line break), not only the date's: in a
  built book the fields of the hint block would otherwise run into one line. **Category:** shows
  ``category_name or category``: the Chinese name when the slug is known (创业学院), else the raw
  slug (``aigc``), never a title-cased slug. **Published:** is the date part of ``published`` as
  the page gave it (Beijing time, not converted). A line whose data is missing (author, stats,
  tags, URL) is left out; **Published:** is always there because the path needs it. The summary is
  a blockquote, one ``> `` per line, left out when None. The body follows the ``---`` rule; the
  page's ``## title`` is not repeated.
- Text fields (title, summary, author, category) are one line (white space collapsed) escaped by
  ``inline.escape_text`` as link and cell text, line starts included: plain text in any inline
  context, in CommonMark and in marked-style renderers (HonKit's kramed) alike, GitBook's template
  tags neutralised (``{%`` becomes ``{&#37;``).
- Tags are code spans (as in the sample), fenced with more backticks than they contain; only the
  template neutraliser applies inside them (a code span shows its text verbatim anyway).
- The body gets the template neutraliser too (defence in depth: the converter already did it, and
  the neutraliser is idempotent); it is otherwise written as received.
- Indexes are rebuilt from the files on disk (each article's ``# title`` and **Published:** line), so
  they never list a stale or duplicated entry. Newest first at every level: years descending, months
  12..01, articles by published date then id, descending. Categories follow the site's menu order
  (``seeds/categories.txt``), unknown slugs after them alphabetically.
- Nothing is wiped: an article file is rewritten only when its bytes change (mtime stays otherwise),
  the old file of a moved article is removed, and an index README of a folder left without articles is
  removed with the folder if it is then empty. Other files under the root are never touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from array import array
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath

import numpy as np

from woshipm_crawler import inline, site
from woshipm_crawler.util import TEMP_SUFFIX, AtomicFile, atomic_write, fsync_directory, pid_alive

logger = logging.getLogger(__name__)

LIBRARY_SUBDIR = "markdown"
ARTICLES_DIR = "articles"
SUMMARY_FILE = "SUMMARY.md"
README_FILE = "README.md"
BOOK_TITLE = "人人都是产品经理 (woshipm.com)"

CATEGORY_SLUG_RE = re.compile(site.CATEGORY_SLUG)  # the one rule: an article URL's slug always has a place
# The relative path of an article file, exactly as article_path() builds it (no leading zeros in ids).
ARTICLE_NAME_RE = re.compile(r"[1-9]\d{0,18}\.md")
ARTICLE_RELPATH_RE = re.compile(r"articles/([a-z][a-z0-9-]*)/(\d{4})/(\d{2})/([1-9]\d*)\.md")

_HEADER_PUBLISHED_RE = re.compile(r"^\*\*Published:\*\* (\d{4}-\d{2}-\d{2})", re.MULTILINE)
_HEADER_REMOVED_RE = re.compile(r"^\*\*Removed:\*\* ", re.MULTILINE)
# How SUMMARY.md and the month READMEs mark an article the site no longer shows (``removed_at``).
REMOVED_MARK = " (removed from the site)"
# An article's header is far shorter than this; reading only the head keeps a rebuild cheap.
_HEADER_READ_BYTES = 64 * 1024

VIEWS_ICON = "\U0001f441\ufe0f"  # 👁️ (with the emoji variation selector, as in the sample)
COMMENTS_ICON = "\U0001f4ac"  # 💬
COLLECTS_ICON = "\u2b50"  # ⭐

HINT_OPEN = '{% hint style="info" %}'
HINT_CLOSE = "{% endhint %}"

# -- text neutralising ------------------------------------------------------------------------------

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_WHITESPACE_RE = re.compile(r"\s+")


def _single_line(text: str) -> str:
    """One line of text: runs of white space (newlines included) become a space, controls go."""
    return _CONTROL_RE.sub("", _WHITESPACE_RE.sub(" ", text)).strip()


def escape_inline(text: str) -> str:
    """``text`` as one line of Markdown that renders as exactly that text (white space collapsed).

    Safe in a heading, a link text, a table cell and at the start of a blockquote or list line.
    """
    line = inline.escape_text(_single_line(text), link=True, cell=True)
    if line.endswith("#"):  # kramed takes trailing "#"s out of a heading, escaped or not
        line = line[:-1] + inline.HASH
    return inline.escape_line_start(line)


# -- one article -----------------------------------------------------------------------------------


def published_date(value: object) -> date:
    """The publication day of ``published`` in Beijing time, the site's local day (``site.published_time``)."""
    when = site.published_time(value)
    if when is None:
        raise ValueError(f"invalid published date: {value!r}")
    return when.date()


def article_id(item: Mapping) -> int:
    return site.article_id_of(item.get("id"))  # BadId (a ValueError) for an id that is none


def category_slug(item: Mapping) -> str:
    value = item.get("category")
    if not isinstance(value, str) or not CATEGORY_SLUG_RE.fullmatch(value):
        raise ValueError(f"invalid category slug: {value!r}")
    return value


def article_path(item: Mapping) -> PurePosixPath:
    """``articles/<category>/<YYYY>/<MM>/<id>.md``: from id, category and date only, never the title."""
    day = published_date(item.get("published"))
    return PurePosixPath(
        ARTICLES_DIR, category_slug(item), f"{day.year:04d}", f"{day.month:02d}", f"{article_id(item)}.md"
    )


HARD_BREAK = "  "


def _header_lines(item: Mapping) -> list[str]:
    lines = []
    category_label = item.get("category_name") or item.get("category")
    if category_label:
        lines.append(f"**Category:** {escape_inline(str(category_label))}")
    author = item.get("author")
    if isinstance(author, Mapping) and author.get("name"):
        name = escape_inline(str(author["name"]))
        author_url = inline.link_destination(author.get("url"))
        lines.append(f"**Author:** [{name}]({author_url})" if author_url else f"**Author:** {name}")
    lines.append(f"**Published:** {published_date(item.get('published')).isoformat()}")
    removed = item.get("removed_at")
    if isinstance(removed, str) and removed:
        lines.append(f"**Removed:** {escape_inline(removed[:10])}, no longer on the site (kept as last seen)")
    stats = item.get("stats")
    if isinstance(stats, Mapping):

        def count(key: str) -> str:
            value = stats.get(key)
            return str(value) if isinstance(value, int) and not isinstance(value, bool) else "?"

        lines.append(
            f"**Stats:** {VIEWS_ICON} {count('views')} views | {COMMENTS_ICON} {count('comments')} comments"
            f" | {COLLECTS_ICON} {count('collects')} collects"
        )
    tags = item.get("tags")
    if isinstance(tags, str):  # never print a list's repr (the prior scraper's fault)
        tags = [tags]
    tag_lines = [_single_line(str(tag)) for tag in tags or () if tag is not None]
    tag_spans = [inline.code_span(inline.neutralise_templates(tag)) for tag in tag_lines if tag]
    if tag_spans:
        lines.append("**Tags:** " + " ".join(tag_spans))
    original_url = inline.link_destination(item.get("url"))
    if original_url:
        lines.append(f"**Original:** [View on woshipm.com]({original_url})")
    return [HINT_OPEN, *(line + HARD_BREAK for line in lines), HINT_CLOSE]


def _summary_lines(summary: object) -> list[str]:
    """The summary as blockquote lines: one per source line, blank runs kept as one ``>`` line."""
    if not isinstance(summary, str) or not summary.strip():
        return []
    lines: list[str] = []
    for raw_line in summary.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        text = escape_inline(raw_line)
        if text:
            lines.append(f"> {text}")
        elif lines and lines[-1] != ">":
            lines.append(">")
    while lines and lines[-1] == ">":
        lines.pop()
    return lines


def _body(markdown: object) -> str:
    if not isinstance(markdown, str):
        return ""
    text = markdown.replace("\r\n", "\n").replace("\r", "\n")
    return inline.neutralise_templates(text).lstrip("\n").rstrip()


def render_article(item: Mapping) -> str:
    """The text of an article's file: ``# title``, the hint header, the summary, ``---``, the body."""
    title = escape_inline(str(item.get("title") or ""))
    if not title:
        raise ValueError(f"article {item.get('id')!r} has no title")
    lines = [f"# {title}", *_header_lines(item), *_summary_lines(item.get("summary")), "", "---"]
    text = "\n".join(lines) + "\n"
    body = _body(item.get("body_markdown"))
    return text + "\n" + body + "\n" if body else text


# -- reading articles back ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LibraryEntry:
    """An article file on disk, as the indexes list it."""

    id: int
    category: str
    year: str
    month: str
    title: str  # plain text (unescaped)
    published: str  # "YYYY-MM-DD"; "YYYY-MM-00" when the header has no readable date
    removed: bool = False  # the header says the site removed it

    @property
    def path(self) -> PurePosixPath:
        return PurePosixPath(ARTICLES_DIR, self.category, self.year, self.month, f"{self.id}.md")

    @property
    def sort_key(self) -> tuple[str, int]:
        return self.published, self.id


def parse_article_header(text: str) -> tuple[str | None, str | None]:
    """(title, "YYYY-MM-DD") read from an article file's head; None for what is not there."""
    first_line, _, rest = text.partition("\n")
    title = inline.unescape_text(first_line[2:]) if first_line.startswith("# ") else None
    header = rest.partition("\n" + HINT_CLOSE)[0]
    match = _HEADER_PUBLISHED_RE.search(header)
    return (title or None), (match.group(1) if match else None)


def header_says_removed(text: str) -> bool:
    """Whether an article file's header marks it removed from the site (**Removed:**)."""
    return bool(_HEADER_REMOVED_RE.search(text.partition("\n" + HINT_CLOSE)[0]))


# -- the library ----------------------------------------------------------------------------------


class MarkdownLibrary:
    """The Markdown library under ``root``: writes articles, rebuilds the indexes from disk."""

    def __init__(self, root: Path | str, *, find_old_copies: bool = True, durable: bool = True):
        self.root = Path(root).resolve()
        self.durable = durable  # off: the caller syncs the files it wrote at once (util.AtomicFile)
        # id -> relative paths of its files on disk; read once, on the first write. A caller that
        # always passes ``previous_path`` (the crawl, from its state) turns it off: it grows with the
        # library.
        self.find_old_copies = find_old_copies
        self._paths_by_id: dict[int, set[PurePosixPath]] | None = None

    # -- articles --

    def write(self, item: Mapping, previous_path: PurePosixPath | str | None = None) -> bool:
        """Write one article; True when anything on disk changed (its file, or an old copy removed).

        ``previous_path`` (relative to the root) is where the caller last exported the article; the
        library also knows every article file present when it first wrote. Either way, an article
        whose date or category changed leaves no copy at its old path. ValueError for an item whose
        id, category or date cannot make a path.
        """
        relative = article_path(item)
        identifier = article_id(item)
        data = render_article(item).encode("utf-8")
        old_paths = set(self._known_paths().get(identifier, ())) if self.find_old_copies else set()
        if previous_path is not None and ARTICLE_RELPATH_RE.fullmatch(str(previous_path)):
            old_paths.add(PurePosixPath(str(previous_path)))
        changed = self._write_file(relative, data)
        # The new file is in place before the old one goes: a crash in between loses nothing.
        for old in sorted(old_paths - {relative}):
            if self._remove_file(old):
                logger.info("article %s moved from %s to %s", identifier, old, relative)
                changed = True
        if self.find_old_copies:
            self._known_paths()[identifier] = {relative}
        return changed

    def _known_paths(self) -> dict[int, set[PurePosixPath]]:
        if self._paths_by_id is None:
            self._paths_by_id = defaultdict(set)
            for category, year, month, names in self.month_folders():
                for name in names:
                    self._paths_by_id[int(name[:-3])].add(PurePosixPath(ARTICLES_DIR, category, year, month, name))
        return self._paths_by_id

    # -- indexes --

    def rebuild_indexes(self) -> int:
        """Rebuild SUMMARY.md and every README.md from the article files; return how many changed.

        One month folder is read at a time and SUMMARY.md is written as it goes, so memory stays flat
        however large the library: a few bytes per article for the duplicate check, no more.
        """
        tree, chosen = self._month_tree()
        changed = 0
        indexes: set[PurePosixPath] = {PurePosixPath(SUMMARY_FILE), PurePosixPath(README_FILE)}
        with AtomicFile(self._inside_root(PurePosixPath(SUMMARY_FILE)), durable=self.durable) as summary:
            summary.write(SUMMARY_HEAD.encode("utf-8"))
            for category, years in tree:
                folder = PurePosixPath(ARTICLES_DIR, category)
                summary.write(summary_category_line(category).encode("utf-8"))
                changed += self._write_index(folder / README_FILE, render_category_readme(category, years), indexes)
                for year, months in years:
                    summary.write(summary_year_line(category, year).encode("utf-8"))
                    text = render_year_readme(category, year, months)
                    changed += self._write_index(folder / year / README_FILE, text, indexes)
                    for month, _count in months:
                        articles = self._month_entries(category, year, month, chosen)
                        summary.write(summary_month_lines(category, year, month, articles).encode("utf-8"))
                        text = render_month_readme(category, year, month, articles)
                        changed += self._write_index(folder / year / month / README_FILE, text, indexes)
        changed += summary.changed
        changed += self._write_index(PurePosixPath(README_FILE), render_book_readme(tree), indexes)
        return changed + self._remove_stale_indexes(indexes)

    def _write_index(self, relative: PurePosixPath, text: str, written: set[PurePosixPath]) -> int:
        written.add(relative)
        return int(self._write_file(relative, text.encode("utf-8")))

    def _month_tree(self) -> tuple[Tree, dict[int, PurePosixPath]]:
        """Every month folder with its article count, sorted as the indexes list them; and, for an
        id with two files (a crash between writing a moved article and removing its old file), the
        one to list: the one written last."""
        counts: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
        ids = array("q")
        for category, year, month, names in self.month_folders():
            counts[category][year][month] = len(names)
            ids.extend(int(name[:-3]) for name in names)
        ordered = np.sort(np.frombuffer(ids, dtype=np.int64))  # 8 bytes an article, no Python ints
        twice = set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())
        del ids, ordered
        chosen: dict[int, PurePosixPath] = {}
        if twice:
            copies: dict[int, list[PurePosixPath]] = defaultdict(list)
            for category, year, month, names in self.month_folders():
                for name in names:
                    if int(name[:-3]) in twice:
                        copies[int(name[:-3])].append(PurePosixPath(ARTICLES_DIR, category, year, month, name))
            for article_id, paths in copies.items():
                newest = max(paths, key=lambda p: ((self.root / p).stat().st_mtime_ns, str(p)))
                logger.warning("article %s has two files: %s", article_id, ", ".join(map(str, sorted(paths))))
                chosen[article_id] = newest
                for path in paths:
                    if path != newest:
                        counts[path.parts[1]][path.parts[2]][path.parts[3]] -= 1
        menu_order = {slug: index for index, slug in enumerate(site.categories())}
        tree: Tree = [
            (
                category,
                [
                    (
                        year,
                        [
                            (month, counts[category][year][month])
                            for month in sorted(counts[category][year], key=int, reverse=True)
                        ],
                    )
                    for year in sorted(counts[category], key=int, reverse=True)
                ],
            )
            for category in sorted(counts, key=lambda slug: (menu_order.get(slug, len(menu_order)), slug))
        ]
        return tree, chosen

    def month_folders(self):
        """``(category, year, month, [article file names])`` of every month folder on disk."""
        articles = self.root / ARTICLES_DIR
        for category in _subfolders(articles, r"[a-z][a-z0-9-]*"):
            for year in _subfolders(articles / category, r"\d{4}"):
                for month in _subfolders(articles / category / year, r"\d{2}"):
                    folder = articles / category / year / month
                    if not folder.resolve().is_relative_to(self.root):
                        logger.warning("ignoring %s: it points outside the library", folder)
                        continue
                    names = [
                        entry.name
                        for entry in os.scandir(folder)
                        if ARTICLE_NAME_RE.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink()
                    ]
                    if names:
                        yield category, year, month, names

    def _month_entries(
        self, category: str, year: str, month: str, chosen: dict[int, PurePosixPath]
    ) -> list[LibraryEntry]:
        """The entries of one month folder, newest first."""
        entries = []
        folder = self.root / ARTICLES_DIR / category / year / month
        for entry in os.scandir(folder):
            if not (ARTICLE_NAME_RE.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink()):
                continue
            relative = PurePosixPath(ARTICLES_DIR, category, year, month, entry.name)
            article = int(entry.name[:-3])
            if chosen.get(article, relative) != relative:
                continue
            with open(entry.path, "rb") as handle:
                head = handle.read(_HEADER_READ_BYTES).decode("utf-8", errors="replace")
            title, published = parse_article_header(head)
            if title is None or published is None:
                logger.warning("article file %s has no readable title or date", relative)
            if published is None or published[:7] != f"{year}-{month}":
                published = f"{year}-{month}-00"  # the path decides where it is listed
            entries.append(LibraryEntry(article, category, year, month, title or str(article), published,
                                        header_says_removed(head)))
        return sorted(entries, key=lambda e: e.sort_key, reverse=True)

    def _remove_stale_indexes(self, live: set[PurePosixPath]) -> int:
        """Remove the README of every article folder that no longer holds articles, then the folder
        when it is empty. Only folders named like our categories, years and months are touched."""
        removed = 0
        articles = self.root / ARTICLES_DIR
        if not articles.is_dir():
            return 0
        patterns = (r"[a-z][a-z0-9-]*/\d{4}/\d{2}", r"[a-z][a-z0-9-]*/\d{4}", r"[a-z][a-z0-9-]*")
        for depth, pattern in zip((3, 2, 1), patterns, strict=True):  # deepest first: rmdir bottom-up
            for folder in sorted(articles.glob("/".join("*" * depth))):
                relative = PurePosixPath(ARTICLES_DIR, folder.relative_to(articles).as_posix())
                name = str(relative)[len(ARTICLES_DIR) + 1 :]
                if not folder.is_dir() or folder.is_symlink() or not re.fullmatch(pattern, name):
                    continue
                readme = relative / README_FILE
                if readme not in live and self._remove_file(readme):
                    removed += 1
                with contextlib.suppress(OSError):  # not empty: something else lives there
                    folder.rmdir()
        return removed

    # -- files --

    def _inside_root(self, relative: PurePosixPath) -> Path:
        """The path of ``relative`` under the root; ValueError if it resolves outside the root."""
        path = self.root / relative
        if not path.resolve().is_relative_to(self.root):
            raise ValueError(f"{relative} resolves outside the library root {self.root}")
        return path

    def _write_file(self, relative: PurePosixPath, data: bytes) -> bool:
        """Write ``data`` atomically unless the file already holds exactly these bytes."""
        return atomic_write(self._inside_root(relative), data, durable=self.durable)

    def sweep_temp_files(self) -> int:
        """Remove temp files of writers that died mid-write (killed between write and rename).

        Only files whose writer pid no longer runs on this machine: a live writer (another job on
        the same library) keeps its temp file. Returns how many were removed.
        """
        removed = 0
        for temp in self.root.rglob(f".*{TEMP_SUFFIX}"):
            match = _TEMP_PID_RE.search(temp.name)
            if match and not pid_alive(int(match.group(1))):
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()
                    removed += 1
        return removed

    def _remove_file(self, relative: PurePosixPath) -> bool:
        path = self._inside_root(relative)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        fsync_directory(path.parent)
        return True


_TEMP_PID_RE = re.compile(r"\.(\d+)\.[^.]*\.tmp$")


def _subfolders(folder: Path, pattern: str) -> list[str]:
    """Names of ``folder``'s sub-folders that match ``pattern`` (not links), sorted."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    return sorted(e.name for e in entries if re.fullmatch(pattern, e.name) and e.is_dir(follow_symlinks=False))


# -- indexes (pure) -----------------------------------------------------------------------------------

Months = list[tuple[str, int]]  # (month, article count)
Years = list[tuple[str, Months]]
Tree = list[tuple[str, Years]]


def category_label(slug: str) -> str:
    return site.category_name(slug) or slug


def _count_text(count: int) -> str:
    return f"{count} article" if count == 1 else f"{count} articles"


def _year_count(months: Months) -> int:
    return sum(count for _, count in months)


def _category_count(years: Years) -> int:
    return sum(_year_count(months) for _, months in years)


SUMMARY_HEAD = f"# Summary\n\n* [Introduction]({README_FILE})\n"


def summary_category_line(category: str) -> str:
    """SUMMARY.md (GitBook's table of contents): category → year → month → article, newest first."""
    return f"* [{escape_inline(category_label(category))}]({ARTICLES_DIR}/{category}/{README_FILE})\n"


def summary_year_line(category: str, year: str) -> str:
    return f"    * [{year}]({ARTICLES_DIR}/{category}/{year}/{README_FILE})\n"


def summary_month_lines(category: str, year: str, month: str, articles: list[LibraryEntry]) -> str:
    folder = f"{ARTICLES_DIR}/{category}/{year}/{month}"
    lines = [f"        * [{year}-{month}]({folder}/{README_FILE})"]
    lines.extend(f"            * [{escape_inline(entry.title)}{REMOVED_MARK if entry.removed else ''}]({entry.path})"
                 for entry in articles)
    return "\n".join(lines) + "\n"


def render_book_readme(tree: Tree) -> str:
    total = sum(_category_count(years) for _, years in tree)
    lines = [
        f"# {escape_inline(BOOK_TITLE)}",
        "",
        f"{_count_text(total)} in {len(tree)} {'category' if len(tree) == 1 else 'categories'}.",
    ]
    if tree:
        lines += ["", "| Category | Articles |", "| --- | ---: |"]
        lines.extend(
            f"| [{escape_inline(category_label(category))}]({ARTICLES_DIR}/{category}/{README_FILE}) "
            f"| {_category_count(years)} |"
            for category, years in tree
        )
    return "\n".join(lines) + "\n"


def render_category_readme(category: str, years: Years) -> str:
    lines = [
        f"# {escape_inline(category_label(category))}",
        "",
        f"{_count_text(_category_count(years))}.",
        "",
    ]
    lines.extend(f"* [{year}]({year}/{README_FILE}): {_count_text(_year_count(months))}" for year, months in years)
    return "\n".join(lines) + "\n"


def render_year_readme(category: str, year: str, months: Months) -> str:
    lines = [
        f"# {escape_inline(category_label(category))} {year}",
        "",
        f"{_count_text(_year_count(months))}.",
        "",
    ]
    lines.extend(f"* [{year}-{month}]({month}/{README_FILE}): {_count_text(count)}" for month, count in months)
    return "\n".join(lines) + "\n"


def render_month_readme(category: str, year: str, month: str, articles: list[LibraryEntry]) -> str:
    lines = [
        f"# {escape_inline(category_label(category))} {year}-{month}",
        "",
        f"{_count_text(len(articles))}.",
        "",
    ]
    for entry in articles:
        day = "" if entry.published.endswith("-00") else f" {entry.published}"  # -00: no readable date
        lines.append(f"* [{escape_inline(entry.title)}]({entry.id}.md){day}{REMOVED_MARK if entry.removed else ''}")
    return "\n".join(lines) + "\n"
