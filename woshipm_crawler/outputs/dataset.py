"""The whole dataset, from the state store, in the formats analysts load: ``scrapy export``.

Files under the dataset directory (``<export dir>/dataset`` by default):

articles.jsonl            every article's latest item, keys of items.ARTICLE_FIELDS, one per line
articles.parquet          one row per article, metadata only (schema: ARTICLES_SCHEMA)
article_bodies.parquet    id + body_text, body_markdown, body_html: bodies apart, so metadata loads at once
article_tags.parquet      (id, position, tag): one row per tag of an article
article_listings.parquet  (id, listing, kind, slug, first_seen, last_seen): one row per listing membership
article_stats.parquet     (id, observed_at, age_hours, views, comments, collects): one row per fetch that saw
                          an article's counts (the state's observations), long form: stats over time
articles.csv              the flat columns (FLAT_COLUMNS), UTF-8 with a BOM so Excel keeps the Chinese;
                          text that would compute gets a leading ' (csv_cell)
articles.xlsx             the flat columns, one sheet per category, newest first; text as string cells
README.md                 the dataset card: schema, counts, date range, how it was collected, load examples

An article's ``listings`` come from the state's listings table (every membership ever recorded,
also those found after the article was stored), never from the stored item: ``dataset_items`` is
the one place that reads them. Every file is written to a temp file and renamed into place, and
Parquet is written in batches of ``BATCH`` articles, so memory stays flat at any size.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from pathlib import Path

import jinja2
import pyarrow as pa
import pyarrow.parquet as pq

from woshipm_crawler import site
from woshipm_crawler.items import ARTICLE_FIELDS
from woshipm_crawler.state import StateStore
from woshipm_crawler.util import atomic_path, dumps, now

DATASET_SUBDIR = "dataset"
FORMATS = ("jsonl", "parquet", "csv", "xlsx")
BATCH = 2000
CARD_FILE = "README.md"

Progress = Callable[[str, int], None]

# -- one article as the dataset has it ---------------------------------------------------------------


def dataset_items(store: StateStore, ids: Iterable[int] | None = None) -> Iterator[dict]:
    """Every stored article (or those of ``ids``, in that order) as the dataset has it: the latest
    item, ``listings`` from the state's listings table."""
    items = store.iter_items() if ids is None else (store.get_item(i) for i in ids)
    for item in items:
        if item is None:
            continue
        item["listings"] = sorted(store.listings(item["id"]))
        yield {key: item.get(key) for key in ARTICLE_FIELDS}


def _timestamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _published_date(item: Mapping) -> date | None:
    published = site.published_time(item.get("published"))
    return published.date() if published else None


# -- Parquet ---------------------------------------------------------------------------------------

BEIJING = "+08:00"


def _field(name: str, type_: pa.DataType, meaning: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"description": meaning})


def _nullable_ints_for_pandas(schema: pa.Schema) -> pa.Schema:
    """Tell pandas (through the metadata its Parquet reader honours) to load nullable integer columns
    as ``Int64``: without it a null turns ``duplicate_of`` into float64."""
    columns = [
        {"name": f.name, "field_name": f.name, "pandas_type": "int64", "numpy_type": "Int64", "metadata": None}
        for f in schema
        if f.nullable and pa.types.is_integer(f.type)
    ]
    meta = {"index_columns": [], "column_indexes": [], "columns": columns,
            "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.0.0"}
    return schema.with_metadata({b"pandas": json.dumps(meta).encode()}) if columns else schema


ARTICLES_SCHEMA = pa.schema([
    _field("id", pa.int64(), "WordPress post id (unique)", nullable=False),
    _field("url", pa.string(), "canonical article URL"),
    _field("category", pa.string(), "category slug from the URL (pd, ai, ...)"),
    _field("category_name", pa.string(), "Chinese name of the category; null when unknown"),
    _field("title", pa.string(), "article title"),
    _field("author", pa.struct([("name", pa.string()), ("id", pa.int64()), ("url", pa.string())]),
           "author name, numeric id and profile URL (id/url null when the page names no profile)"),
    _field("published", pa.timestamp("ms", tz=BEIJING),
           "publication time, Beijing time (+08:00); 00:00 of the day when published_time_known is false"),
    _field("published_date", pa.date32(), "publication day in Beijing time, always present"),
    _field("published_time_known", pa.bool_(), "whether the page gave the time of day"),
    _field("summary", pa.string(), "editor's lead (the body's first quote), null when absent"),
    _field("tags", pa.list_(pa.string()), "tag names, page order (long form: article_tags.parquet)"),
    _field("stats", pa.struct([("views", pa.int64()), ("comments", pa.int64()), ("collects", pa.int64())]),
           "views, comments and collects the page showed at its latest fetch (stats_observed_at)"),
    _field("stats_observed_at", pa.timestamp("ms", tz="UTC"),
           "when the stats were observed: compare articles at the same age (all observations: article_stats)"),
    _field("read_minutes", pa.int64(), "reading time the page shows, minutes"),
    _field("cover_image", pa.string(), "URL of the body's first image"),
    _field("images", pa.list_(pa.string()), "URLs of every body image, document order"),
    _field("source", pa.struct([("type", pa.string()), ("credit", pa.string())]),
           "type: original, authorized, partner (a repost), translated or unknown; credit: who is credited"),
    _field("word_count", pa.int64(), "words of the body (a CJK character counts as one)"),
    _field("listings", pa.list_(pa.string()),
           "listings the article was seen in, kind:slug (long form: article_listings.parquet)"),
    _field("crawled_at", pa.timestamp("ms", tz="UTC"), "when the page of this version (its body) was fetched"),
    _field("removed_at", pa.timestamp("ms", tz="UTC"),
           "when a revisit found the article gone from the site (404, 410, a redirect away); null while it is "
           "there. A removed article is kept as last seen"),
    _field("content_hash", pa.string(), "SHA-256 of the normalised body text"),
    _field("duplicate_of", pa.int64(), "near-duplicate body: id of the group's earliest article; else null"),
])
ARTICLES_SCHEMA = _nullable_ints_for_pandas(ARTICLES_SCHEMA)
BODIES_SCHEMA = pa.schema([
    _field("id", pa.int64(), "article id", nullable=False),
    _field("body_text", pa.string(), "plain text of the body, paragraphs split by a blank line"),
    _field("body_markdown", pa.string(), "the body as CommonMark"),
    _field("body_html", pa.string(), "the body's cleaned HTML"),
])
TAGS_SCHEMA = pa.schema([
    _field("id", pa.int64(), "article id", nullable=False),
    _field("position", pa.int32(), "0-based position of the tag on the page", nullable=False),
    _field("tag", pa.string(), "tag name", nullable=False),
])
LISTINGS_SCHEMA = pa.schema([
    _field("id", pa.int64(), "article id", nullable=False),
    _field("listing", pa.string(), "kind:slug, as in articles.listings", nullable=False),
    _field("kind", pa.string(), "category or tag", nullable=False),
    _field("slug", pa.string(), "the listing's URL slug", nullable=False),
    _field("first_seen", pa.timestamp("ms", tz="UTC"), "first crawl that saw the article there"),
    _field("last_seen", pa.timestamp("ms", tz="UTC"), "latest crawl that saw the article there"),
])
PARQUET_FILES = {
    "articles.parquet": ARTICLES_SCHEMA,
    "article_bodies.parquet": BODIES_SCHEMA,
    "article_tags.parquet": TAGS_SCHEMA,
    "article_listings.parquet": LISTINGS_SCHEMA,
}
STATS_FILE = "article_stats.parquet"
STATS_SCHEMA = _nullable_ints_for_pandas(pa.schema([
    _field("id", pa.int64(), "article id", nullable=False),
    _field("observed_at", pa.timestamp("ms", tz="UTC"), "when the page was fetched", nullable=False),
    _field("age_hours", pa.float64(), "the article's age then: hours since published (null without a date)"),
    _field("views", pa.int64(), "views the page showed"),
    _field("comments", pa.int64(), "comments the page showed"),
    _field("collects", pa.int64(), "collects the page showed"),
]))


def observation_rows(store: StateStore) -> Iterator[dict]:
    """The rows of ``article_stats.parquet``: every observation of an article's counts, by id and time."""
    for article_id, observed_at, published, views, comments, collects in store.iter_observations():
        observed = _timestamp(observed_at)
        born = site.published_time(published)
        yield {"id": article_id, "observed_at": observed,
               "age_hours": (observed - born).total_seconds() / 3600 if born else None,
               "views": views, "comments": comments, "collects": collects}


def write_stats(store: StateStore, path: Path) -> int:
    """``article_stats.parquet`` (at ``path``, a temp file the caller renames) from the state's
    observations, in batches; returns the rows written."""
    rows: list[dict] = []
    count = 0
    with pq.ParquetWriter(path, STATS_SCHEMA, compression="zstd") as writer:
        for row in observation_rows(store):
            rows.append(row)
            count += 1
            if len(rows) >= BATCH * 5:
                writer.write_batch(pa.RecordBatch.from_pylist(rows, schema=STATS_SCHEMA))
                rows.clear()
        if rows:
            writer.write_batch(pa.RecordBatch.from_pylist(rows, schema=STATS_SCHEMA))
    return count


def _article_row(item: Mapping) -> dict:
    row = dict(item)
    row["published"] = _timestamp(item.get("published"))
    row["published_date"] = _published_date(item)
    for name in ("crawled_at", "stats_observed_at", "removed_at"):
        row[name] = _timestamp(item.get(name))
    return row


def _listing_rows(store: StateStore, article_id: int) -> list[dict]:
    rows = []
    for listing, (first_seen, last_seen) in sorted(store.listings(article_id).items()):
        kind, _, slug = listing.partition(":")
        rows.append({"id": article_id, "listing": listing, "kind": kind, "slug": slug,
                     "first_seen": _timestamp(first_seen), "last_seen": _timestamp(last_seen)})
    return rows


class _ParquetSink:
    """The four Parquet files, written batch by batch (zstd); ``targets`` maps file name -> temp path."""

    def __init__(self, targets: Mapping[str, Path], store: StateStore):
        self.store = store
        self.writers = {
            name: pq.ParquetWriter(targets[name], schema, compression="zstd") for name, schema in PARQUET_FILES.items()
        }
        self.pending: list[dict] = []

    def add(self, item: dict) -> None:
        self.pending.append(item)
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        items, self.pending = self.pending, []
        tables = {
            "articles.parquet": [_article_row(item) for item in items],
            "article_bodies.parquet": items,
            "article_tags.parquet": [
                {"id": item["id"], "position": n, "tag": tag}
                for item in items
                for n, tag in enumerate(item["tags"] or ())
            ],
            "article_listings.parquet": [row for item in items for row in _listing_rows(self.store, item["id"])],
        }
        for name, rows in tables.items():
            self.writers[name].write_batch(pa.RecordBatch.from_pylist(rows, schema=PARQUET_FILES[name]))

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


# -- flat columns: CSV and XLSX ----------------------------------------------------------------------


def _join(values: Iterable[str] | None) -> str:
    return "; ".join(values or ())


FLAT_COLUMNS: list[tuple[str, Callable[[Mapping], object], int]] = [
    # (header, value, XLSX width in character units: a Chinese character takes two)
    ("id", lambda a: a["id"], 10),
    ("title", lambda a: a["title"], 70),
    ("url", lambda a: a["url"], 12),
    ("category", lambda a: a["category"], 10),
    ("category_name", lambda a: a["category_name"], 12),
    ("author", lambda a: (a["author"] or {}).get("name"), 16),
    ("author_id", lambda a: (a["author"] or {}).get("id"), 10),
    ("published", lambda a: a["published"], 19),
    ("published_date", lambda a: (a["published"] or "")[:10] or None, 12),
    ("published_time_known", lambda a: a["published_time_known"], 8),
    ("views", lambda a: (a["stats"] or {}).get("views"), 9),
    ("comments", lambda a: (a["stats"] or {}).get("comments"), 9),
    ("collects", lambda a: (a["stats"] or {}).get("collects"), 9),
    ("stats_observed_at", lambda a: a["stats_observed_at"], 20),
    ("read_minutes", lambda a: a["read_minutes"], 8),
    ("word_count", lambda a: a["word_count"], 9),
    ("tags", lambda a: _join(a["tags"]), 40),
    ("source_type", lambda a: (a["source"] or {}).get("type"), 10),
    ("source_credit", lambda a: (a["source"] or {}).get("credit"), 16),
    ("listings", lambda a: _join(a["listings"]), 30),
    ("duplicate_of", lambda a: a["duplicate_of"], 10),
    ("summary", lambda a: a["summary"], 80),
    ("crawled_at", lambda a: a["crawled_at"], 20),
    ("removed_at", lambda a: a["removed_at"], 20),
]
FLAT_HEADERS = [name for name, _, _ in FLAT_COLUMNS]


def flat_row(item: Mapping) -> list:
    return [value(item) for _, value, _ in FLAT_COLUMNS]


# A spreadsheet computes a cell that begins with one of these (a formula, or DDE: ``=cmd|' /C calc'!A0``).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A CSV cell that never computes (OWASP, "CSV Injection"): text beginning with = + - @ tab or CR
    gets a leading ``'``, which Excel and LibreOffice show as a text marker. Other values as they are."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


class _CsvSink:
    def __init__(self, target: Path):
        # utf-8-sig: the BOM tells Excel the file is UTF-8 (without it the Chinese turns to mojibake).
        self.handle = open(target, "w", encoding="utf-8-sig", newline="")
        self.writer = csv.writer(self.handle)
        self.writer.writerow(FLAT_HEADERS)

    def add(self, item: dict) -> None:
        self.writer.writerow([csv_cell(value) for value in flat_row(item)])

    def close(self) -> None:
        self.handle.close()


class _JsonlSink:
    def __init__(self, target: Path):
        self.handle = open(target, "w", encoding="utf-8")

    def add(self, item: dict) -> None:
        self.handle.write(dumps(item) + "\n")

    def close(self) -> None:
        self.handle.close()


# Excel forbids these in sheet names, and a name has at most 31 characters.
_SHEET_FORBIDDEN = str.maketrans({c: "_" for c in "[]:*?/\\"})


def write_xlsx(store: StateStore, path: Path, progress: Callable[[int], None] | None = None) -> int:
    """One sheet per category (site menu order), newest first; frozen header, title links to the article.

    Write-only workbook (rows stream to disk); the rows are read in sheet order by id, so only the
    (category, published, id) keys are held in memory.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    def text_cell(sheet, value: object) -> object:
        """Text as a string cell, never a formula (openpyxl makes one of any text starting with "=");
        XML 1.0 cannot carry C0 controls, so they are left out. Other values as they are."""
        if not isinstance(value, str):
            return value
        text = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("", value))
        text.data_type = "s"
        return text

    keys: dict[str, list[tuple[str, int]]] = {}
    for item in store.iter_items():
        keys.setdefault(item.get("category") or "", []).append((item.get("published") or "", item["id"]))
    menu = {slug: n for n, slug in enumerate(site.categories())}
    workbook = Workbook(write_only=True)
    header_font, link_font = Font(bold=True), Font(color="0563C1", underline="single")
    title_column = FLAT_HEADERS.index("title")
    used: set[str] = set()
    done = 0
    dimensions = []  # each sheet's cell range, in sheet order
    for category in sorted(keys, key=lambda slug: (menu.get(slug, len(menu)), slug)):
        name = (site.category_name(category) or category or "unknown").translate(_SHEET_FORBIDDEN)[:31]
        while name in used:
            name = name[:28] + f"_{len(used)}"
        used.add(name)
        sheet = workbook.create_sheet(name)
        sheet.freeze_panes = "A2"
        for n, (_, _, width) in enumerate(FLAT_COLUMNS, start=1):
            sheet.column_dimensions[get_column_letter(n)].width = width
        headers = []
        for header in FLAT_HEADERS:
            cell = WriteOnlyCell(sheet, value=header)
            cell.font = header_font
            headers.append(cell)
        sheet.append(headers)
        rows = 1
        ordered = [i for _, i in sorted(keys[category], reverse=True)]
        for item in dataset_items(store, ordered):
            row: list = flat_row(item)
            if item["published"]:
                # Excel has no time zones: the Beijing wall-clock time, as the site shows it.
                row[FLAT_HEADERS.index("published")] = _timestamp(item["published"]).replace(tzinfo=None)
                row[FLAT_HEADERS.index("published_date")] = _published_date(item)
            row = [text_cell(sheet, value) for value in row]
            title = row[title_column]
            if item["url"] and title is not None:  # a string cell
                title.hyperlink = item["url"]
                title.font = link_font
            sheet.append(row)
            rows += 1
            done += 1
            if progress:
                progress(done)
        dimensions.append(f"A1:{get_column_letter(len(FLAT_HEADERS))}{rows}")
    with atomic_path(path) as temp:
        workbook.save(temp)
        _add_dimensions(temp, dimensions)
    return done


_SPREADSHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELATIONSHIP_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_AFTER_DIMENSION = (b"<sheetViews", b"<sheetFormatPr", b"<cols", b"<sheetData")  # OOXML's element order


def _add_dimensions(path: Path, dimensions: list[str]) -> None:
    """Give each sheet of a saved workbook its ``<dimension>`` (``dimensions`` in sheet order): openpyxl's
    write-only mode leaves it out, and readers that trust it (openpyxl ``read_only``) then see no rows."""
    import shutil
    import zipfile
    from xml.etree import ElementTree

    rewritten = path.with_name(path.name + ".dim")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as out:
        sheets = ElementTree.fromstring(source.read("xl/workbook.xml")).find(f"{{{_SPREADSHEET_NS}}}sheets")
        targets = {rel.get("Id"): rel.get("Target")
                   for rel in ElementTree.fromstring(source.read("xl/_rels/workbook.xml.rels"))}
        parts = [targets[sheet.get(f"{{{_RELATIONSHIP_NS}}}id")] for sheet in sheets]
        refs = {part.lstrip("/") if part.startswith("/") else f"xl/{part}": ref
                for part, ref in zip(parts, dimensions, strict=True)}
        for info in source.infolist():
            with source.open(info) as reader, out.open(info.filename, "w", force_zip64=True) as writer:
                if info.filename in refs:
                    head = reader.read(1 << 16)
                    at = min(i for i in (head.find(tag) for tag in _AFTER_DIMENSION) if i >= 0)
                    writer.write(head[:at] + f'<dimension ref="{refs[info.filename]}"/>'.encode() + head[at:])
                shutil.copyfileobj(reader, writer, 1 << 20)
    rewritten.replace(path)


# -- the whole export --------------------------------------------------------------------------------


@dataclass
class DatasetSummary:
    """What the card reports, gathered while the files are written."""

    total: int = 0
    by_category: Counter = field(default_factory=Counter)
    by_year: Counter = field(default_factory=Counter)
    first: str | None = None
    last: str | None = None
    time_known: int = 0
    duplicates: int = 0
    reposts: int = 0
    waiting: list = field(default_factory=list)  # StateStore.retry_schedule(): failed, tried again later

    def add(self, item: Mapping) -> None:
        self.total += 1
        self.by_category[(item["category"], item["category_name"])] += 1
        published = item.get("published")
        if published:
            self.by_year[published[:4]] += 1
            self.first = min(self.first or published, published)
            self.last = max(self.last or published, published)
        self.time_known += bool(item.get("published_time_known"))
        self.duplicates += item.get("duplicate_of") is not None
        self.reposts += (item.get("source") or {}).get("type") == "partner"


def export(state_path: Path, out_dir: Path, formats: Iterable[str] = FORMATS,
           progress: Progress | None = None) -> tuple[DatasetSummary, list[Path]]:
    """Write the chosen formats and the card; returns the summary and the paths written.

    ``progress(stage, articles done)`` is called per article. A failure leaves every file as it was.
    """
    formats = [f for f in FORMATS if f in set(formats)]
    summary = DatasetSummary()
    written: list[Path] = []
    with StateStore(state_path) as store:
        summary.waiting = store.retry_schedule()
        with contextlib.ExitStack() as stack:

            def target(name: str) -> Path:
                written.append(out_dir / name)
                return stack.enter_context(atomic_path(out_dir / name))

            sinks: list = []
            if "jsonl" in formats:
                sinks.append(_JsonlSink(target("articles.jsonl")))
            if "parquet" in formats:
                sinks.append(_ParquetSink({name: target(name) for name in PARQUET_FILES}, store))
                stats_path = target(STATS_FILE)
            if "csv" in formats:
                sinks.append(_CsvSink(target("articles.csv")))
            for sink in sinks:
                stack.callback(sink.close)  # closed before its temp file is renamed into place
            for item in dataset_items(store):
                summary.add(item)
                for sink in sinks:
                    sink.add(item)
                if progress:
                    progress("articles", summary.total)
            for sink in sinks:
                if isinstance(sink, _ParquetSink):
                    sink.flush()
            if "parquet" in formats:
                write_stats(store, stats_path)
        if "xlsx" in formats:
            write_xlsx(store, out_dir / "articles.xlsx", (lambda n: progress("xlsx", n)) if progress else None)
            written.append(out_dir / "articles.xlsx")
    card = out_dir / CARD_FILE
    with atomic_path(card) as temp:
        temp.write_text(render_card(summary, [p.name for p in written]), encoding="utf-8")
    written.append(card)
    return summary, written


# -- the dataset card --------------------------------------------------------------------------------

CARD_TEMPLATE = "dataset_card.md.jinja"  # all of the card's text; package data beside this module


@functools.cache
def _card_template() -> jinja2.Template:
    text = resources.files(__package__).joinpath(CARD_TEMPLATE).read_text(encoding="utf-8")
    # Markdown, not HTML: nothing is escaped.
    environment = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                                     undefined=jinja2.StrictUndefined, autoescape=False)
    return environment.from_string(text)


def _schema_rows(schema: pa.Schema) -> list[tuple[str, str, str]]:
    return [(column.name, str(column.type), (column.metadata or {}).get(b"description", b"").decode())
            for column in schema]


def render_card(summary: DatasetSummary, files: list[str]) -> str:
    by_category = sorted(summary.by_category.items(), key=lambda kv: (-kv[1], kv[0][0]))
    return _card_template().render(
        total=summary.total, first=(summary.first or "")[:10], last=(summary.last or "")[:10],
        exported=f"{now():%Y-%m-%d %H:%M}", time_known=summary.time_known, duplicates=summary.duplicates,
        reposts=summary.reposts, files=files, waiting=summary.waiting, flat_headers=FLAT_HEADERS,
        stats_file=STATS_FILE, by_category=[(slug, name, count) for (slug, name), count in by_category],
        by_year=sorted(summary.by_year.items()),
        schemas={name: _schema_rows(schema) for name, schema in (
            ("articles", ARTICLES_SCHEMA), ("bodies", BODIES_SCHEMA), ("tags", TAGS_SCHEMA),
            ("listings", LISTINGS_SCHEMA), ("stats", STATS_SCHEMA))},
    )
