"""``scrapy export`` and the crawl's feeds on a replica crawl: every format holds exactly the manifest's
articles, with the types the dataset promises (read back with pyarrow, DuckDB, pandas, polars, openpyxl)."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import duckdb
import openpyxl
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl.utils import get_column_letter

from woshipm_crawler import site
from woshipm_crawler.items import ARTICLE_FIELDS
from woshipm_crawler.library import render_article
from woshipm_crawler.outputs.dataset import FLAT_HEADERS
from woshipm_crawler.textmodel import normalize_ws
from woshipm_replica.crawls import run_crawl

pytestmark = pytest.mark.slow

BEIJING = timezone(timedelta(hours=8))
STAMP_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00")


@pytest.fixture(scope="module")
def exported(outputs_crawl, scrapy_command):
    done = scrapy_command(["export"], outputs_crawl.export_dir)
    assert done.returncode == 0, done.stderr
    return outputs_crawl.export_dir / "dataset", done


def category_listings(row: dict) -> list[str]:
    """What a ``category=all`` crawl can know of an article's listings: its category listings."""
    return [key for key in row["listings"] if key.startswith("category:")]


def test_export_command_reports_what_it_wrote(exported):
    out, done = exported
    last = done.stdout.strip().splitlines()[-1]
    assert last == (
        f"exported 150 articles to {out}/: articles.jsonl, articles.parquet, article_bodies.parquet, "
        "article_tags.parquet, article_listings.parquet, article_stats.parquet, articles.csv, articles.xlsx, README.md"
    )
    assert "articles: 150/150" in done.stderr and "xlsx: 150/150" in done.stderr  # progress
    assert not list(out.glob(".*.tmp"))


def test_parquet_schema_types(exported):
    out, _ = exported
    schema = pq.read_schema(out / "articles.parquet")
    assert schema.field("id").type == pa.int64()
    assert schema.field("published").type == pa.timestamp("ms", tz="+08:00")
    assert schema.field("published_date").type == pa.date32()
    assert schema.field("published_time_known").type == pa.bool_()
    assert schema.field("author").type == pa.struct([("name", pa.string()), ("id", pa.int64()), ("url", pa.string())])
    assert schema.field("stats").type == pa.struct(
        [("views", pa.int64()), ("comments", pa.int64()), ("collects", pa.int64())]
    )
    assert schema.field("source").type == pa.struct([("type", pa.string()), ("credit", pa.string())])
    assert schema.field("tags").type == pa.list_(pa.string())
    assert schema.field("duplicate_of").type == pa.int64()
    assert not {"body_text", "body_html", "body_markdown"} & set(schema.names)  # bodies live apart
    assert pq.ParquetFile(out / "articles.parquet").metadata.row_group(0).column(0).compression == "ZSTD"
    assert pq.read_schema(out / "article_bodies.parquet").names == ["id", "body_text", "body_markdown", "body_html"]


def test_parquet_holds_exactly_the_manifest(exported, manifest):
    out, _ = exported
    rows = pq.read_table(out / "articles.parquet").to_pylist()
    assert sorted(row["id"] for row in rows) == sorted(manifest)
    for row in rows:
        want = manifest[row["id"]]
        for name in ("url", "category", "category_name", "title", "author", "summary", "tags", "stats",
                     "read_minutes", "cover_image", "images", "source", "word_count", "content_hash",
                     "duplicate_of", "published_time_known"):
            assert row[name] == want[name], (row["id"], name)
        assert row["published"] == datetime.fromisoformat(want["published"])
        assert row["published"].utcoffset() == timedelta(hours=8)
        assert row["published_date"] == date.fromisoformat(want["published"][:10])
        assert row["listings"] == category_listings(want)
    assert any(row["duplicate_of"] is not None for row in rows) and any(row["duplicate_of"] is None for row in rows)
    bodies = {row["id"]: row for row in pq.read_table(out / "article_bodies.parquet").to_pylist()}
    assert set(bodies) == set(manifest)
    for article_id, row in bodies.items():
        assert normalize_ws(row["body_text"]) == normalize_ws(manifest[article_id]["body_text"])
        assert row["body_markdown"] and row["body_html"].startswith("<")


def test_long_form_tags_and_listings(exported, manifest):
    out, _ = exported
    tags = pq.read_table(out / "article_tags.parquet").to_pylist()
    assert Counter((row["id"], row["tag"]) for row in tags) == Counter(
        (i, tag) for i, row in manifest.items() for tag in row["tags"]
    )
    first = next(i for i, row in manifest.items() if len(row["tags"]) > 1)
    assert [row["tag"] for row in sorted(tags, key=lambda r: r["position"]) if row["id"] == first] == (
        manifest[first]["tags"]
    )
    listings = pq.read_table(out / "article_listings.parquet").to_pylist()
    assert sorted((row["id"], row["listing"]) for row in listings) == sorted(
        (i, key) for i, row in manifest.items() for key in category_listings(row)
    )
    assert all(row["kind"] == "category" and row["listing"] == f"category:{row['slug']}" for row in listings)
    assert all(row["first_seen"] <= row["last_seen"] for row in listings)


def test_duckdb_pandas_polars_read_every_column_without_arguments(exported, manifest):
    out, _ = exported
    types = {row[0]: row[1] for row in duckdb.sql(f"DESCRIBE SELECT * FROM '{out / 'articles.parquet'}'").fetchall()}
    assert types["id"] == "BIGINT" and types["duplicate_of"] == "BIGINT"
    assert types["published"] == "TIMESTAMP WITH TIME ZONE" and types["published_date"] == "DATE"
    assert types["tags"] == "VARCHAR[]" and types["stats"].startswith("STRUCT(")
    # A group-by over the long form is one line.
    top = duckdb.sql(f"SELECT tag, count(*) n FROM '{out / 'article_tags.parquet'}' GROUP BY tag").fetchall()
    assert dict(top) == Counter(tag for row in manifest.values() for tag in row["tags"])

    frame = pd.read_parquet(out / "articles.parquet")
    assert str(frame["duplicate_of"].dtype) == "Int64" and str(frame["id"].dtype) == "int64"
    assert str(frame["published"].dtype).startswith("datetime64") and "+08:00" in str(frame["published"].dtype)
    assert frame["published_time_known"].dtype == bool
    assert len(frame) == len(manifest)

    polars_frame = pl.read_parquet(out / "articles.parquet")
    assert polars_frame.schema["duplicate_of"] == pl.Int64 and polars_frame.schema["published_date"] == pl.Date
    assert isinstance(polars_frame.schema["published"], pl.Datetime)


def test_jsonl_dates_have_one_form(exported, manifest):
    out, _ = exported
    lines = [json.loads(line) for line in (out / "articles.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(line["id"] for line in lines) == sorted(manifest)
    for line in lines:
        assert list(line) == list(ARTICLE_FIELDS)
        assert STAMP_RE.fullmatch(line["published"]) and line["published"] == manifest[line["id"]]["published"]
        assert line["published_time_known"] is manifest[line["id"]]["published_time_known"]
    assert {line["published_time_known"] for line in lines} == {True, False}
    types = {row[0]: row[1] for row in duckdb.sql(f"DESCRIBE SELECT * FROM '{out / 'articles.jsonl'}'").fetchall()}
    assert types["published"] == "TIMESTAMP WITH TIME ZONE" and types["duplicate_of"] == "BIGINT"
    assert types["published_time_known"] == "BOOLEAN"
    parsed = pd.to_datetime(pd.read_json(out / "articles.jsonl", lines=True)["published"])
    assert parsed.notna().all()


def test_csv_has_a_bom_and_the_chinese_intact(exported, manifest):
    out, _ = exported
    raw = (out / "articles.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert sorted(int(row["id"]) for row in rows) == sorted(manifest)
    for row in rows:
        want = manifest[int(row["id"])]
        assert row["title"] == want["title"] and row["category_name"] == (want["category_name"] or "")
        assert row["tags"] == "; ".join(want["tags"]) and int(row["views"]) == want["stats"]["views"]
        assert row["published"] == want["published"]


def test_xlsx_one_sheet_per_category_newest_first(exported, manifest):
    out, _ = exported
    workbook = openpyxl.load_workbook(out / "articles.xlsx")
    by_category: dict[str, list[dict]] = {}
    for row in manifest.values():
        by_category.setdefault(row["category"], []).append(row)
    menu = list(site.categories())
    expected_order = sorted(by_category, key=lambda slug: (menu.index(slug) if slug in menu else len(menu), slug))
    assert workbook.sheetnames == [site.category_name(slug) or slug for slug in expected_order]
    for slug, sheet_name in zip(expected_order, workbook.sheetnames, strict=True):
        sheet = workbook[sheet_name]
        assert sheet.freeze_panes == "A2"
        header = [cell.value for cell in sheet[1]]
        assert header[:3] == ["id", "title", "url"] and sheet.column_dimensions["B"].width >= 60
        rows = list(sheet.iter_rows(min_row=2))
        newest_first = sorted(by_category[slug], key=lambda r: (r["published"], r["id"]), reverse=True)
        assert [row[0].value for row in rows] == [r["id"] for r in newest_first]
        for cells, want in zip(rows, newest_first, strict=True):
            assert cells[1].value == want["title"] and cells[1].hyperlink.target == want["url"]
            published = cells[header.index("published")].value
            assert published == datetime.fromisoformat(want["published"]).replace(tzinfo=None)


def test_xlsx_sheets_carry_their_dimensions(exported, manifest):
    out, _ = exported
    counts = Counter(site.category_name(row["category"]) or row["category"] for row in manifest.values())
    workbook = openpyxl.load_workbook(out / "articles.xlsx", read_only=True)  # trusts <dimension>
    try:
        for name in workbook.sheetnames:
            sheet = workbook[name]
            assert (sheet.max_row, sheet.max_column) == (counts[name] + 1, len(FLAT_HEADERS)), name
            assert sheet.calculate_dimension() == f"A1:{get_column_letter(len(FLAT_HEADERS))}{counts[name] + 1}"
    finally:
        workbook.close()
    assert sum(counts.values()) == 150


def test_dataset_card(exported, manifest):
    out, _ = exported
    card = (out / "README.md").read_text(encoding="utf-8")
    first = min(row["published"] for row in manifest.values())[:10]
    last = max(row["published"] for row in manifest.values())[:10]
    assert f"150 articles published from {first} to {last}" in card
    for slug, count in Counter(row["category"] for row in manifest.values()).items():
        assert re.search(rf"\| `{slug}` \| [^|]* \| {count} \|", card), slug
    for year, count in Counter(row["published"][:4] for row in manifest.values()).items():
        assert f"| {year} | {count} |" in card
    for column in pq.read_schema(out / "articles.parquet").names:
        assert f"| `{column}` |" in card
    assert "| `duplicate_of` | `int64` | near-duplicate body" in card
    assert 'pd.read_parquet("articles.parquet")' in card and "import duckdb" in card
    assert 'load_dataset("parquet", data_files="articles.parquet"' in card
    assert "## How it was collected" in card


def test_one_format_only(outputs_crawl, scrapy_command, tmp_path):
    scrapy = scrapy_command
    done = scrapy(["export", "--format", "csv", "--out", str(tmp_path)], outputs_crawl.export_dir)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "articles.csv"]
    bad = scrapy(["export", "--format", "xml"], outputs_crawl.export_dir)
    assert bad.returncode != 0 and "unknown format xml" in bad.stderr
    missing = scrapy(["export"], tmp_path / "nothing")  # one line, as for a state that cannot be used
    assert missing.returncode == 1 and missing.stderr.strip().splitlines() == [
        f"no state at {tmp_path / 'nothing' / 'state.sqlite3'}: crawl first (scrapy crawl category -a category=all)"]


def test_markdown_and_jsonlines_feeds_hold_the_run(outputs_crawl, manifest):
    export_dir = outputs_crawl.export_dir
    feed = [json.loads(line) for line in (export_dir / "feed.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(item["id"] for item in feed) == sorted(manifest)
    text = (export_dir / "feed.md").read_text(encoding="utf-8")
    chunks = re.split(r"^<!-- woshipm:article id=(\d+) -->\n", text, flags=re.MULTILINE)
    assert chunks[0] == ""
    articles = dict(zip(map(int, chunks[1::2]), chunks[2::2], strict=True))
    assert sorted(articles) == sorted(manifest)
    by_id = {item["id"]: item for item in feed}
    for article_id, chunk in articles.items():
        assert chunk.startswith(f"# {manifest[article_id]['title'][:5]}")
        # The seed's format: the item at feed time rendered by the library's renderer, the body included.
        assert chunk.rstrip("\n") == render_article(by_id[article_id]).rstrip("\n")
        assert "**Published:** " + manifest[article_id]["published"][:10] + "  \n" in chunk


def test_incremental_feeds_hold_only_what_the_run_changed(replica, outputs_crawl, tmp_path):
    # A second run on the same state: nothing new, so both feeds are empty.
    again = run_crawl("category", replica.base_url, outputs_crawl.export_dir, {"category": "all"},
                      extra=("-o", str(tmp_path / "again.md"), "-o", f"{tmp_path / 'again.jsonl'}:jsonlines"))
    assert again.returncode == 0
    for name in ("again.md", "again.jsonl"):
        path = tmp_path / name
        assert not path.exists() or path.read_text(encoding="utf-8") == "", name
