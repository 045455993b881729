"""The Markdown a crawl of the replica produces: in every item and in the library on disk."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from woshipm_crawler.textmodel import html_to_text, normalize_ws
from woshipm_replica.crawls import run_crawl

pytestmark = pytest.mark.slow

COMMONMARK = MarkdownIt("commonmark").enable("table")

# Page furniture of site-model §4 (1–3, 5–10): none of it may reach a body or a library file.
FURNITURE = (
    "ke.qidianla.com", "查看详情", "🔗", "赞赏", "收藏已收藏", "点赞已赞", "分享到微博", "微信扫一扫",
    "api.pwmqr.com", "题图来自", "该文观点仅代表作者本人", "更多精彩内容，请关注", "#专栏作家#", "#相关阅读#",
    "发布于人人都是产品经理", "合作媒体", "static.woshipm.com/tag/", "关注",
)


@pytest.fixture(scope="module")
def crawl(replica, tmp_path_factory):
    result = run_crawl("category", replica.base_url, tmp_path_factory.mktemp("md"), {"category": "all"})
    assert result.returncode == 0
    return result


def test_rendered_markdown_text_equals_the_manifest_body(crawl, manifest):
    matches = 0
    for item in crawl.items:
        html = COMMONMARK.render(item["body_markdown"])
        if normalize_ws(html_to_text(html)) == normalize_ws(manifest[item["id"]]["body_text"]):
            matches += 1
        assert html.count("<strong>") >= item["body_html"].count("<strong>"), item["id"]
        for url in manifest[item["id"]]["images"]:
            assert f'src="{url}"' in html
        assert "data:image" not in item["body_markdown"]
    print(f"body_markdown text match rate: {matches}/{len(crawl.items)}")
    assert matches == len(crawl.items) == len(manifest)


def test_tables_render_with_their_rows_and_cells(crawl, replica):
    by_id = {item["id"]: item for item in crawl.items}
    for name in ("table_pipe", "table_colspan", "table_no_th"):
        item = by_id[replica.corpus.special[name]]
        rendered = COMMONMARK.render(item["body_markdown"])
        source_rows = re.findall(r"<tr>", item["body_html"])
        assert rendered.count("<tr>") == len(source_rows), name
    pipe = by_id[replica.corpus.special["table_pipe"]]
    assert "&#124;" in pipe["body_markdown"]  # a "|" in a cell: a reference, which no GFM renderer splits at


def test_bold_lead_ins_render_as_strong(crawl, replica):
    item = next(i for i in crawl.items if i["id"] == replica.corpus.special["bold_lead_in"])
    rendered = COMMONMARK.render(item["body_markdown"])
    assert "**" not in html_to_text(rendered)
    strong = re.findall(r"<strong>(.*?)</strong>", item["body_html"])
    assert strong and all(s.strip("：:") in rendered for s in strong)


def test_no_furniture_in_any_body_or_library_file(crawl):
    for item in crawl.items:
        for needle in FURNITURE:
            assert needle not in item["body_markdown"], (item["id"], needle)
    for path in (crawl.export_dir / "markdown").rglob("*.md"):
        text = path.read_text(encoding="utf-8")
        body = text.split("\n---\n", 1)[-1]
        for needle in FURNITURE:
            assert needle not in body, (path, needle)


def test_library_layout_header_and_gitbook_safety(crawl, manifest, replica):
    root = crawl.export_dir / "markdown"
    for item in crawl.items:
        year, month = item["published"][:4], item["published"][5:7]
        path = root / "articles" / item["category"] / year / month / f"{item['id']}.md"
        text = path.read_text(encoding="utf-8")
        assert text.count("{% endhint %}") == 1  # our block's own end, and no other
        assert f"**Original:** [View on woshipm.com]({item['url']})" in text
        assert text.startswith("# ")
    weird = replica.corpus.special["template_literals"]
    item = manifest[weird]
    path = next(root.rglob(f"{weird}.md"))
    rendered = COMMONMARK.render(path.read_text(encoding="utf-8").split("\n---\n", 1)[1])
    assert "{% endhint %}" in html_to_text(rendered)  # shown as text
    assert "<script>" not in rendered  # escaped, not a tag
    assert item["body_text"]


def test_summary_links_resolve_even_for_hostile_titles(crawl, replica):
    root = crawl.export_dir / "markdown"
    summary = (root / "SUMMARY.md").read_text(encoding="utf-8")
    html = COMMONMARK.render(summary)
    links = re.findall(r'<a href="([^"]+)">', html)
    assert len([link for link in links if link.startswith("articles/") and link.endswith(".md")
                and Path(link).stem.isdigit()]) == len(crawl.items)
    for link in links:
        target = (root / link).resolve()
        assert target.is_relative_to(root.resolve()) and target.exists(), link
    for name in ("weird_title", "long_title"):
        article_id = replica.corpus.special[name]
        title = next(i["title"] for i in crawl.items if i["id"] == article_id)
        assert f">{_html_escape(title)}</a>" in html
    assert all(p.resolve().is_relative_to(root.resolve()) for p in root.rglob("*"))


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def test_summary_is_newest_first_at_every_level(crawl):
    summary = (crawl.export_dir / "markdown" / "SUMMARY.md").read_text(encoding="utf-8")
    months = re.findall(r"\(articles/([a-z-]+)/(\d{4})/(\d{2})/README\.md\)", summary)
    by_category: dict[str, list[tuple[str, str]]] = {}
    for category, year, month in months:
        by_category.setdefault(category, []).append((year, month))
    for category, order in by_category.items():
        assert order == sorted(order, reverse=True), category
