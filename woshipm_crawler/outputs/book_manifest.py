"""What a build of the site knows of each article, and how it learns it: the manifest
(``.build/site.sqlite3``: each article's row and each page's input hash, as last built) and the
reading of the library's files (``scan_library`` stats them, ``read_row`` reads a new or changed one)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from woshipm_crawler import site
from woshipm_crawler.library import ARTICLES_DIR, MarkdownLibrary
from woshipm_crawler.outputs.book_render import parse_article

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,
    digest TEXT NOT NULL, category TEXT NOT NULL, year TEXT NOT NULL, month TEXT NOT NULL,
    published TEXT NOT NULL, title TEXT NOT NULL, author_key TEXT, author_name TEXT, author_url TEXT,
    tags TEXT NOT NULL, segment TEXT, indexed TEXT
);
CREATE TABLE IF NOT EXISTS pages (path TEXT PRIMARY KEY, digest TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""
_COLUMNS = ("id", "path", "mtime_ns", "size", "digest", "category", "year", "month", "published", "title",
            "author_key", "author_name", "author_url", "tags", "segment", "indexed")


@dataclass
class Row:
    """One article as the site knows it (a row of the manifest)."""

    id: int
    path: str  # the library file, relative to the library root
    mtime_ns: int
    size: int
    digest: str  # SHA-256 of the file
    category: str
    year: str
    month: str
    published: str  # YYYY-MM-DD; YYYY-MM-00 when the header has no date of the file's month
    title: str
    author_key: str | None
    author_name: str | None
    author_url: str | None
    tags: tuple[str, ...]
    segment: str | None = None  # the search segment it is indexed in
    indexed: str | None = None  # the digest it had when indexed

    @property
    def sort_key(self) -> tuple[str, int]:
        return self.published, self.id

    @property
    def page(self) -> str:
        return f"{ARTICLES_DIR}/{self.category}/{self.year}/{self.month}/{self.id}.html"

    @property
    def month_page(self) -> str:
        return f"{ARTICLES_DIR}/{self.category}/{self.year}/{self.month}/index.html"

    def values(self) -> tuple:
        return tuple(json.dumps(self.tags, ensure_ascii=False) if name == "tags" else getattr(self, name)
                     for name in _COLUMNS)


def tag_key(tag: str) -> str:
    """A tag's folder name: tag names hold any character, so a digest, never the name."""
    return hashlib.sha1(tag.encode("utf-8")).hexdigest()[:12]


def author_key(name: str | None, url: str | None) -> str | None:
    """An author's folder name: the site's user id from the profile URL, else a digest of the name."""
    if url and (match := site.AUTHOR_PATH_RE.search(url.split("?")[0].split("#")[0])):
        return match.group(1)
    return "n" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:12] if name else None


# -- the manifest ---------------------------------------------------------------------------------


class Manifest:
    """``.build/site.sqlite3``: each article's row and each page's input hash, as last built."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.executescript(_SCHEMA)

    def close(self) -> None:
        self.conn.close()

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def rows(self) -> dict[int, Row]:
        rows = {}
        for values in self.conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM articles"):
            fields = dict(zip(_COLUMNS, values, strict=True))
            fields["tags"] = tuple(json.loads(fields["tags"]))
            rows[fields["id"]] = Row(**fields)
        return rows

    def pages(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT path, digest FROM pages"))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def save_rows(self, conn: sqlite3.Connection, rows: Iterable[Row], removed: Iterable[int]) -> None:
        """In ``conn``'s open transaction (``transaction``)."""
        conn.executemany("DELETE FROM articles WHERE id = ?", ((i,) for i in removed))
        conn.executemany(f"INSERT OR REPLACE INTO articles VALUES ({', '.join('?' * len(_COLUMNS))})",
                         (row.values() for row in rows))


# -- reading the library ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSig:
    path: str
    mtime_ns: int
    size: int


def scan_library(root: Path, categories: set[str], since: date | None) -> dict[int, FileSig]:
    """Every article file (id -> its path and stat) of the wanted categories and months. An id with
    two files (a crash between writing a moved article and removing its old copy): the newer one."""
    found: dict[int, FileSig] = {}
    for category, year, month, names in MarkdownLibrary(root).month_folders():
        if categories and category not in categories:
            continue
        if since is not None and (int(year), int(month)) < (since.year, since.month):
            continue
        folder = f"{ARTICLES_DIR}/{category}/{year}/{month}"
        for name in names:
            stat = os.stat(root / folder / name)
            sig = FileSig(f"{folder}/{name}", stat.st_mtime_ns, stat.st_size)
            article = int(name[:-3])
            if article in found:
                logger.warning("article %s has two files: %s, %s", article, found[article].path, sig.path)
                if found[article].mtime_ns >= sig.mtime_ns:
                    continue
            found[article] = sig
    return found


def read_row(root: Path, article: int, sig: FileSig) -> tuple[Row, str]:
    """The manifest row of an article file, and its text."""
    data = (root / sig.path).read_bytes()
    text = data.decode("utf-8", errors="replace")
    parsed = parse_article(text)
    _, category, year, month, _ = sig.path.split("/")
    published = parsed.published if parsed.published and parsed.published[:7] == f"{year}-{month}" else None
    row = Row(
        id=article, path=sig.path, mtime_ns=sig.mtime_ns, size=len(data), digest=hashlib.sha256(data).hexdigest(),
        category=category, year=year, month=month, published=published or f"{year}-{month}-00",
        title=parsed.title or str(article), author_key=author_key(parsed.author_name, parsed.author_url),
        author_name=parsed.author_name, author_url=parsed.author_url, tags=tuple(dict.fromkeys(parsed.tags)),
    )
    return row, text
