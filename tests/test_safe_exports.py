"""Spreadsheets that never compute (issue 24): a replica whose articles show formulas and DDE calls
as their title, author (and credit), tags and summary (fault ``formula``), crawled and exported.
Read back with openpyxl, no XLSX cell is a formula; read back with ``csv``, every risky cell starts
with OWASP's ``'``; JSONL and Parquet keep the exact text."""

from __future__ import annotations

import csv
import io
import json

import openpyxl
import pyarrow.parquet as pq
import pytest

from woshipm_crawler.outputs.dataset import FLAT_HEADERS, FORMULA_STARTS, csv_cell
from woshipm_replica import ReplicaServer, pages
from woshipm_replica.crawls import run_crawl

FORMULA = pages.FORMULA_FIELDS


@pytest.mark.parametrize(("value", "expected"), [
    ("=1+1", "'=1+1"),
    ("+1", "'+1"),
    ("-2+3", "'-2+3"),
    ("@SUM(1)", "'@SUM(1)"),
    ("\tTab", "'\tTab"),
    ("\rCR", "'\rCR"),
    ("a=1", "a=1"),
    (" =1", " =1"),
    ("", ""),
    ("产品", "产品"),
    (-3, -3),
    (None, None),
    (True, True),
])
def test_csv_cells_that_would_compute_get_a_leading_quote(value, expected):
    assert csv_cell(value) == expected


@pytest.fixture(scope="module")
def exported(tmp_path_factory, scrapy_command):
    export_dir = tmp_path_factory.mktemp("formula-export")
    with ReplicaServer(articles=12, seed=1) as server:
        ids = sorted(row["id"] for row in server.corpus.manifest(server.base_url))[:3]
        server.set_faults(f"formula=ids:{ids[0]};{ids[1]};{ids[2]}")
        crawl = run_crawl("category", server.base_url, export_dir, {"category": "all"})
    assert crawl.returncode == 0, crawl.log[-3000:]
    done = scrapy_command(["export"], export_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    return export_dir / "dataset", ids


slow = pytest.mark.slow


@slow
def test_xlsx_has_no_formula_cell_and_the_exact_text(exported):
    out, ids = exported
    workbook = openpyxl.load_workbook(out / "articles.xlsx")
    seen = {}
    cells = 0
    for sheet in workbook.worksheets:
        rows = sheet.iter_rows()
        header = [cell.value for cell in next(rows)]
        assert header == FLAT_HEADERS
        for row in rows:
            for cell in row:
                cells += 1
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert cell.data_type == "s"
            values = dict(zip(header, (cell.value for cell in row), strict=True))
            seen[values["id"]] = (values, row[header.index("title")])
    assert cells > 12 * len(FLAT_HEADERS) - 12
    for article_id in ids:
        values, title = seen[article_id]
        assert values["title"] == FORMULA["title"] and title.hyperlink.target.endswith(f"/{article_id}.html")
        assert values["author"] == FORMULA["author"] == values["source_credit"]
        assert values["tags"] == "; ".join(FORMULA["tags"])
        assert values["summary"] == FORMULA["summary"]


@slow
def test_csv_neutralises_every_risky_cell_and_only_those(exported):
    out, ids = exported
    rows = list(csv.reader(io.StringIO((out / "articles.csv").read_text(encoding="utf-8-sig"))))
    assert rows[0] == FLAT_HEADERS and len(rows) == 13
    for row in rows[1:]:
        assert not [cell for cell in row if cell.startswith(FORMULA_STARTS)], row
    by_id = {int(row[0]): dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    for article_id in ids:
        row = by_id[article_id]
        assert row["title"] == "'" + FORMULA["title"]
        assert row["author"] == row["source_credit"] == "'" + FORMULA["author"]
        assert row["tags"] == "'" + "; ".join(FORMULA["tags"])
        assert row["summary"] == "'" + FORMULA["summary"]
    benign = next(row for article_id, row in by_id.items() if article_id not in ids)
    assert not benign["title"].startswith("'")


@slow
def test_jsonl_and_parquet_keep_the_exact_text(exported):
    out, ids = exported
    items = {item["id"]: item for item in map(json.loads, (out / "articles.jsonl").read_text().splitlines())}
    table = {row["id"]: row for row in pq.read_table(out / "articles.parquet").to_pylist()}
    tags = pq.read_table(out / "article_tags.parquet").to_pylist()
    for article_id in ids:
        for record in (items[article_id], table[article_id]):
            assert record["title"] == FORMULA["title"]
            assert record["author"]["name"] == record["source"]["credit"] == FORMULA["author"]
            assert list(record["tags"]) == list(FORMULA["tags"])
            assert record["summary"] == FORMULA["summary"]
        assert [row["tag"] for row in tags if row["id"] == article_id] == list(FORMULA["tags"])
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "never a formula" in card and "OWASP" in card
