"""The Markdown library: header format, paths, index order, counts, idempotence, hostile text, atomicity."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

import pytest
from markdown_it import MarkdownIt

from woshipm_crawler import site, util
from woshipm_crawler.inline import neutralise_templates, unescape_text
from woshipm_crawler.library import (
    MarkdownLibrary,
    article_path,
    escape_inline,
    render_article,
)

SEED_REFERENCE = Path("/work/shared/reference/seed-article-000_ef9632837e9b6714.md")

SEED_SUMMARY = (
    "随着AI大模型浪潮的袭来，许多创业者也嗅到了风口并进入大模型行业，以尝试在这波大模型创业浪潮中找到可能的机会。"
    "那么。当前的大模型战场是否真的是创业者可以投入的机会领域？一起来看看作者的解读。"
)
SEED_BODY = (
    "![](https://image.woshipm.com/2023/04/13/85970002-d9ea-11ed-889f-00163e0b5ff3.jpg)\n\n"
    "根据北京市经信局公布的数据，截止到2023年10月初，国内公开的AI大模型数量已经达到238个。\n\n"
    "## 一、“插件”更像是一种过渡\n"
)

EXPECTED_SEED_ARTICLE = """\
# 大模型“淘金”的创业者，阵痛比红利来的还早？
{% hint style="info" %}
**Category:** 创业学院  
**Author:** [Alter](https://www.woshipm.com/u/39247)  
**Published:** 2023-10-18  
**Stats:** 👁️ 1345 views | 💬 0 comments | ⭐ 0 collects  
**Tags:** `OpenAI` `创业` `垂直大模型` `生成式AI`  
**Original:** [View on woshipm.com](https://www.woshipm.com/chuangye/5922539.html)  
{% endhint %}
> 随着AI大模型浪潮的袭来，许多创业者也嗅到了风口并进入大模型行业，以尝试在这波大模型创业浪潮中找到可能的机会。\
那么。当前的大模型战场是否真的是创业者可以投入的机会领域？一起来看看作者的解读。

---

![](https://image.woshipm.com/2023/04/13/85970002-d9ea-11ed-889f-00163e0b5ff3.jpg)

根据北京市经信局公布的数据，截止到2023年10月初，国内公开的AI大模型数量已经达到238个。

## 一、“插件”更像是一种过渡
"""  # noqa: E501, W291 (the sample's two spaces after the date; CJK counts double)


def seed_item(**changes) -> dict:
    item = {
        "id": 5922539,
        "url": "https://www.woshipm.com/chuangye/5922539.html",
        "category": "chuangye",
        "category_name": "创业学院",
        "title": "大模型“淘金”的创业者，阵痛比红利来的还早？",
        "author": {"name": "Alter", "id": 39247, "url": "https://www.woshipm.com/u/39247"},
        "published": "2023-10-18",
        "summary": SEED_SUMMARY,
        "tags": ["OpenAI", "创业", "垂直大模型", "生成式AI"],
        "stats": {"views": 1345, "comments": 0, "collects": 0},
        "body_markdown": SEED_BODY,
    }
    item.update(changes)
    return item


def make_item(article_id: int, published: str, category: str = "pd", title: str | None = None) -> dict:
    return seed_item(
        id=article_id,
        url=f"https://www.woshipm.com/{category}/{article_id}.html",
        category=category,
        category_name=None,
        title=title if title is not None else f"Article {article_id}",
        published=published,
        body_markdown=f"Body of {article_id}.\n",
    )


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        path.relative_to(root).as_posix(): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def age_all_files(root: Path) -> None:
    """Set every mtime to a fixed past instant, so a rewrite is visible whatever the clock's resolution."""
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))


def inline_text(tokens) -> str:
    return "".join(token.content for token in tokens if token.type in ("text", "code_inline", "text_special"))


def links_of(markdown: str) -> list[tuple[str, str]]:
    """(link text, href) of every link, as a CommonMark parser sees them."""
    links = []
    for block in MarkdownIt("commonmark").parse(markdown):
        children = block.children or []
        for index, token in enumerate(children):
            if token.type == "link_open":
                end = next(i for i in range(index, len(children)) if children[i].type == "link_close")
                links.append((inline_text(children[index + 1 : end]), token.attrGet("href")))
    return links


def all_tokens(markdown: str) -> list:
    tokens = []
    for block in MarkdownIt("commonmark").parse(markdown):
        tokens += [block, *(block.children or [])]
    return tokens


def heading_text(markdown: str) -> str:
    tokens = MarkdownIt("commonmark").parse(markdown)
    assert tokens[0].type == "heading_open" and tokens[0].tag == "h1"
    return inline_text(tokens[1].children)


# -- one article ------------------------------------------------------------------------------------


def test_golden_seed_article():
    assert render_article(seed_item()) == EXPECTED_SEED_ARTICLE


def test_golden_header_field_by_field():
    lines = render_article(seed_item()).split("\n")
    assert lines[0] == "# 大模型“淘金”的创业者，阵痛比红利来的还早？"
    assert lines[1] == '{% hint style="info" %}'
    # Every field line ends with a hard break (two spaces), so each field shows on its own line.
    assert lines[2] == "**Category:** 创业学院  "
    assert lines[3] == "**Author:** [Alter](https://www.woshipm.com/u/39247)  "
    assert lines[4] == "**Published:** 2023-10-18  "
    assert lines[5] == "**Stats:** \U0001f441\ufe0f 1345 views | \U0001f4ac 0 comments | \u2b50 0 collects  "
    assert lines[6] == "**Tags:** `OpenAI` `创业` `垂直大模型` `生成式AI`  "
    assert lines[7] == "**Original:** [View on woshipm.com](https://www.woshipm.com/chuangye/5922539.html)  "
    assert lines[8] == "{% endhint %}"
    assert lines[9] == "> " + SEED_SUMMARY
    assert lines[10:14] == ["", "---", "", SEED_BODY.split("\n")[0]]
    assert "## 大模型" not in "\n".join(lines)  # the page's title is not repeated in the body


@pytest.mark.skipif(not SEED_REFERENCE.exists(), reason="shared reference not present")
def test_header_matches_the_prior_export_except_the_category_name_and_hard_breaks():
    reference = SEED_REFERENCE.read_text(encoding="utf-8").split("\n")[:13]
    ours = render_article(seed_item()).split("\n")[:13]
    differing = [(theirs, mine) for theirs, mine in zip(reference, ours, strict=True) if theirs != mine]
    assert [theirs for theirs, _ in differing] == [reference[n] for n in (2, 3, 5, 6, 7)]
    assert [mine for _, mine in differing] == [
        "**Category:** 创业学院  ", *(reference[n] + "  " for n in (3, 5, 6, 7))
    ]


def test_category_falls_back_to_the_slug():
    text = render_article(seed_item(category="aigc", category_name=None))
    assert "\n**Category:** aigc  \n" in text


def test_published_datetime_keeps_the_local_day():
    item = seed_item(published="2023-10-31T23:30:00+08:00")
    assert "\n**Published:** 2023-10-31  \n" in render_article(item)
    assert article_path(item) == PurePosixPath("articles/chuangye/2023/10/5922539.md")


def test_summary_lines_each_quoted_and_omitted_when_none():
    text = render_article(seed_item(summary="第一行\n\n\n- 第二行\n"))
    assert "{% endhint %}\n> 第一行\n>\n> \\- 第二行\n\n---\n" in text
    text = render_article(seed_item(summary=None))
    assert "{% endhint %}\n\n---\n\n" in text and "\n> " not in text


def test_missing_optional_fields_drop_their_lines():
    text = render_article(seed_item(author=None, stats=None, tags=[], url=None, body_markdown=None))
    assert "**Author:**" not in text and "**Stats:**" not in text
    assert "**Tags:**" not in text and "**Original:**" not in text
    assert text.endswith("\n---\n")


def test_tags_are_never_printed_as_a_list():
    text = render_article(seed_item(tags="单个标签"))
    assert "**Tags:** `单个标签`  \n" in text and "['" not in text


@pytest.mark.parametrize(
    "changes",
    [
        {"category": "../etc"},
        {"category": "Pd"},
        {"category": "pd\n"},
        {"category": "pd/x"},
        {"category": ""},
        {"category": None},
        {"id": "5922539"},
        {"id": True},
        {"id": 0},
        {"id": -3},
        {"id": 1.5},
        {"published": None},
        {"published": "yesterday"},
        {"published": "2023-02-30"},
        {"published": "2023-10-18/../../x"},
    ],
)
def test_article_path_rejects_bad_ids_slugs_and_dates(changes):
    with pytest.raises(ValueError):
        article_path(seed_item(**changes))


def test_article_path_ignores_the_title():
    assert article_path(seed_item(title="../../etc/passwd")) == PurePosixPath(
        "articles/chuangye/2023/10/5922539.md"
    )


# -- text neutralising ------------------------------------------------------------------------------

HOSTILE_TITLES = [
    "a/b/../../c",
    "..",
    "pipe | in | title",
    "'single' and \"double\" quotes",
    "emoji 🚀🔥 and 中文",
    "[bracketed](link) text",
    "close]( evil.md",
    "`code` and ``more``",
    "**bold** _under_ *star*",
    "line one\nline two\r\nline three",
    "# not a heading #",
    "1. not a list",
    "- not a list",
    "> not a quote",
    "===",
    "back\\slash\\",
    "{% endhint %} {% raw %} {{ site.title }} {# comment #}",
    "<script>alert(1)</script> &amp; &lt;",
    "$$x^2$$ ~~strike~~",
    "x" * 300,
    "长" * 300,
]


@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_escape_inline_round_trips_and_renders_as_the_text(title):
    expected = " ".join(title.split())
    escaped = escape_inline(title)
    assert "\n" not in escaped
    assert unescape_text(escaped) == expected
    assert heading_text(f"# {escaped}\n") == expected
    assert links_of(f"* [{escaped}](a.md)\n") == [(expected, "a.md")]


def test_gitbook_syntax_is_neutralised_everywhere():
    hostile = "{% endhint %}{% raw %}{{ x }}{# c #}<script>x</script>"
    item = seed_item(
        title=hostile,
        summary=hostile,
        tags=[hostile, "`tick`"],
        author={"name": hostile, "url": "https://www.woshipm.com/u/1"},
        category_name=hostile,
        body_markdown="text\n\n{% endhint %}\n\n{\\% endhint %}\n\n{{ x }}\n",
    )
    text = render_article(item)
    assert text.count("{% endhint %}") == 1 and text.count("{%") == 2  # only the block's own tags
    assert "{{" not in text and "{#" not in text
    # No raw HTML reaches the renderer: it is text, or inside the tag's (inert) code span.
    assert not [token for token in all_tokens(text) if token.type.startswith("html")]
    assert "{\\% endhint %}" in text and "{\\\\%" not in text  # the body's escaped text is not re-escaped
    assert "**Tags:** `" in text and "``` `tick` ```" not in text and "`` `tick` ``" in text


def test_neutralise_templates_is_idempotent():
    text = "{% a %} {{ b }} {{{ c }}} {# d #} {\\% e %}"
    once = neutralise_templates(text)
    assert neutralise_templates(once) == once
    assert not re.search(r"\{[%{#]", once)


def test_link_destinations_are_made_safe():
    text = render_article(
        seed_item(url="https://www.woshipm.com/x (y)/<z>.html", author={"name": "A", "url": "javascript:x"})
    )
    assert "**Original:** [View on woshipm.com](https://www.woshipm.com/x%20%28y%29/%3Cz%3E.html)" in text
    assert "**Author:** A  \n" in text


# -- the library on disk ----------------------------------------------------------------------------


def summary_article_order(summary: str) -> list[str]:
    return [href for _, href in links_of(summary) if not href.endswith("README.md")]


def test_summary_is_newest_first_at_every_level(tmp_path):
    lib = MarkdownLibrary(tmp_path)
    items = [
        make_item(1000 + month, f"2025-{month:02d}-15") for month in (9, 10, 11, 12, 1, 2, 3, 4, 5, 6, 7, 8)
    ]
    items += [make_item(1, "2024-12-31"), make_item(2, "2026-01-01")]
    items += [make_item(3, "2025-10-20"), make_item(4, "2025-10-20"), make_item(5, "2025-10-01")]
    items += [make_item(6, "2025-10-03T08:00:00+08:00", category="ucd")]
    for item in items:
        lib.write(item)
    lib.rebuild_indexes()
    summary = (tmp_path / "SUMMARY.md").read_text(encoding="utf-8")
    assert summary.startswith("# Summary\n")

    labels = [text for text, href in links_of(summary) if href.endswith("README.md")]
    # pd (产品设计) before ucd (交互体验): the site's menu order.
    assert labels[:3] == ["Introduction", "产品设计", "2026"]
    pd_months = labels[labels.index("2025") + 1 : labels.index("2024")]
    assert pd_months == [f"2025-{month:02d}" for month in range(12, 0, -1)]
    assert labels[labels.index("2024") :] == ["2024", "2024-12", "交互体验", "2025", "2025-10"]

    order = summary_article_order(summary)
    assert order[0] == "articles/pd/2026/01/2.md"
    october = [href for href in order if "/2025/10/" in href and "/pd/" in href]
    # Date descending, then id descending for the same day.
    assert october == [
        "articles/pd/2025/10/4.md",
        "articles/pd/2025/10/3.md",
        "articles/pd/2025/10/1010.md",
        "articles/pd/2025/10/5.md",
    ]
    assert order[-1] == "articles/ucd/2025/10/6.md"
    assert len(order) == len(items) == len(set(order))


def test_readme_counts(tmp_path):
    lib = MarkdownLibrary(tmp_path)
    for item in [
        make_item(1, "2025-10-01"),
        make_item(2, "2025-10-02"),
        make_item(3, "2025-09-01"),
        make_item(4, "2024-01-01"),
        make_item(5, "2025-10-05", category="ucd"),
    ]:
        lib.write(item)
    lib.rebuild_indexes()
    book = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "5 articles in 2 categories." in book
    assert "| [产品设计](articles/pd/README.md) | 4 |" in book
    assert "| [交互体验](articles/ucd/README.md) | 1 |" in book
    category = (tmp_path / "articles/pd/README.md").read_text(encoding="utf-8")
    assert category == (
        "# 产品设计\n\n4 articles.\n\n"
        "* [2025](2025/README.md): 3 articles\n* [2024](2024/README.md): 1 article\n"
    )
    year = (tmp_path / "articles/pd/2025/README.md").read_text(encoding="utf-8")
    assert "3 articles." in year
    assert "* [2025-10](10/README.md): 2 articles\n* [2025-09](09/README.md): 1 article\n" in year
    month = (tmp_path / "articles/pd/2025/10/README.md").read_text(encoding="utf-8")
    assert month == (
        "# 产品设计 2025-10\n\n2 articles.\n\n"
        "* [Article 2](2.md) 2025-10-02\n* [Article 1](1.md) 2025-10-01\n"
    )
    for readme in tmp_path.rglob("README.md"):  # every index link resolves
        for _, href in links_of(readme.read_text(encoding="utf-8")):
            assert (readme.parent / href).is_file(), (readme, href)


def corpus() -> list[dict]:
    return [
        make_item(1, "2025-10-01"),
        make_item(2, "2025-10-02"),
        make_item(3, "2025-09-01"),
        make_item(4, "2024-01-01", category="ucd"),
    ]


def test_writing_the_same_items_twice_changes_nothing(tmp_path):
    lib = MarkdownLibrary(tmp_path)
    assert all(lib.write(item) for item in corpus())
    assert lib.rebuild_indexes() > 0
    age_all_files(tmp_path)
    before = snapshot(tmp_path)

    again = MarkdownLibrary(tmp_path)  # a new run
    assert not any(again.write(item) for item in corpus())
    assert again.rebuild_indexes() == 0
    assert snapshot(tmp_path) == before


def test_changing_one_item_touches_only_its_file_and_indexes(tmp_path):
    lib = MarkdownLibrary(tmp_path)
    for item in corpus():
        lib.write(item)
    lib.rebuild_indexes()
    age_all_files(tmp_path)
    before = snapshot(tmp_path)

    lib = MarkdownLibrary(tmp_path)
    items = corpus()
    items[1]["stats"] = {"views": 99, "comments": 1, "collects": 2}  # not in any index
    assert [lib.write(item) for item in items] == [False, True, False, False]
    assert lib.rebuild_indexes() == 0
    after = snapshot(tmp_path)
    assert {path for path in before if before[path] != after[path]} == {"articles/pd/2025/10/2.md"}

    items[1]["title"] = "A new title"
    assert [lib.write(item) for item in items] == [False, True, False, False]
    assert lib.rebuild_indexes() == 2
    final = snapshot(tmp_path)
    assert {path for path in after if after[path] != final[path]} == {
        "articles/pd/2025/10/2.md",
        "articles/pd/2025/10/README.md",
        "SUMMARY.md",
    }


def test_a_moved_article_leaves_no_old_copy_or_stale_entry(tmp_path):
    lib = MarkdownLibrary(tmp_path)
    for item in corpus():
        lib.write(item)
    lib.rebuild_indexes()

    lib = MarkdownLibrary(tmp_path)  # a later run learns the old path from disk
    assert lib.write(make_item(3, "2025-08-30", category="ucd"))
    lib.rebuild_indexes()
    assert not (tmp_path / "articles/pd/2025/09").exists()  # old file, its README and folder are gone
    assert (tmp_path / "articles/ucd/2025/08/3.md").is_file()
    order = summary_article_order((tmp_path / "SUMMARY.md").read_text(encoding="utf-8"))
    assert order.count("articles/ucd/2025/08/3.md") == 1 and not any("/09/3.md" in href for href in order)
    assert "2025-09" not in (tmp_path / "SUMMARY.md").read_text(encoding="utf-8")


def test_previous_path_from_the_caller_is_removed(tmp_path):
    lib = MarkdownLibrary(tmp_path)
    lib.write(make_item(1, "2025-01-01"))  # the library has read the disk now
    MarkdownLibrary(tmp_path).write(make_item(7, "2025-01-01"))  # written behind its back
    outside = tmp_path.parent / f"{tmp_path.name}-outside.md"
    outside.write_text("not ours")
    assert lib.write(make_item(7, "2025-02-01"), previous_path="articles/pd/2025/01/7.md")
    assert not (tmp_path / "articles/pd/2025/01/7.md").exists()
    # A previous path that is not an article path of the library is ignored, never removed.
    lib.write(make_item(7, "2025-03-01"), previous_path=f"../{outside.name}")
    assert outside.read_text() == "not ours"


def test_unrelated_files_survive(tmp_path):
    (tmp_path / "articles/pd/notes").mkdir(parents=True)
    (tmp_path / "articles/pd/notes/keep.txt").write_text("mine")
    (tmp_path / "book.json").write_text("{}")
    lib = MarkdownLibrary(tmp_path)
    lib.write(make_item(1, "2025-10-01"))
    lib.rebuild_indexes()
    lib.write(make_item(1, "2025-10-01", category="ucd"))
    lib.rebuild_indexes()
    assert (tmp_path / "articles/pd/notes/keep.txt").read_text() == "mine"
    assert (tmp_path / "book.json").read_text() == "{}"


def test_two_files_for_one_id_are_listed_once(tmp_path):
    lib = MarkdownLibrary(tmp_path)
    lib.write(make_item(1, "2025-10-01"))
    stale = tmp_path / "articles/pd/2024/01/1.md"
    stale.parent.mkdir(parents=True)
    stale.write_text(render_article(make_item(1, "2024-01-01")), encoding="utf-8")
    os.utime(stale, ns=(1, 1))  # older than the real one
    lib.rebuild_indexes()
    order = summary_article_order((tmp_path / "SUMMARY.md").read_text(encoding="utf-8"))
    assert order == ["articles/pd/2025/10/1.md"]


def test_hostile_titles_stay_inside_root_and_summary_links_resolve(tmp_path):
    root = tmp_path / "library"
    lib = MarkdownLibrary(root)
    items = [make_item(100 + index, "2025-06-01", title=title) for index, title in enumerate(HOSTILE_TITLES)]
    for item in items:
        assert lib.write(item)
    lib.rebuild_indexes()

    assert [path.name for path in tmp_path.iterdir()] == ["library"]  # nothing escaped the root
    article_files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.md") if p.stem.isdigit())
    assert article_files == sorted(str(article_path(item)) for item in items)

    summary = (root / "SUMMARY.md").read_text(encoding="utf-8")
    titles_by_href = {str(article_path(item)): " ".join(item["title"].split()) for item in items}
    links = links_of(summary)
    for text, href in links:
        assert (root / href).is_file(), href  # relative to SUMMARY.md
        if href in titles_by_href:
            assert text == titles_by_href[href]
    assert {href for _, href in links} >= set(titles_by_href)

    for item in items:
        text = (root / article_path(item)).read_text(encoding="utf-8")
        assert heading_text(text) == " ".join(item["title"].split())
        assert text.count("{% hint") == 1 and text.count("{% endhint %}") == 1


def test_a_symlink_out_of_the_root_is_refused(tmp_path):
    root, outside = tmp_path / "library", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "articles").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match="outside the library root"):
        MarkdownLibrary(root).write(make_item(1, "2025-10-01"))
    assert list(outside.rglob("*")) == []


# -- atomic writes ----------------------------------------------------------------------------------


def temp_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.name.endswith(".tmp")]


def test_no_temp_files_are_left_behind(tmp_path):
    lib = MarkdownLibrary(tmp_path)
    for item in corpus():
        lib.write(item)
    lib.rebuild_indexes()
    assert temp_files(tmp_path) == []
    assert oct((tmp_path / "SUMMARY.md").stat().st_mode & 0o777) == "0o644"


def test_a_failed_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    lib = MarkdownLibrary(tmp_path)
    lib.write(make_item(1, "2025-10-01"))
    path = tmp_path / "articles/pd/2025/10/1.md"
    old = path.read_bytes()

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(util.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        lib.write(make_item(1, "2025-10-01", title="Changed"))
    assert path.read_bytes() == old
    assert temp_files(tmp_path) == []


def test_sweep_removes_temp_files_of_dead_writers_only(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    folder = tmp_path / "articles" / "pd" / "2026" / "01"
    folder.mkdir(parents=True)
    left_behind = folder / f".5000001.md.{dead_pid}.x1y2z3.tmp"
    in_progress = folder / f".5000002.md.{os.getpid()}.a1b2c3.tmp"
    left_behind.write_text("half an article")
    in_progress.write_text("being written")
    assert MarkdownLibrary(tmp_path).sweep_temp_files() == 1
    assert not left_behind.exists() and in_progress.exists()


def test_every_category_slug_an_article_url_can_carry_has_a_place_in_the_library():
    longest, too_long = "a" + "-b" * 31 + "c", "a" * 65  # 64 and 65 characters
    ref = site.article_ref(f"https://www.woshipm.com/{longest}/42.html")
    assert ref == (longest, 42)
    item = {"id": 42, "category": ref[0], "published": "2024-05-01T10:00:00+08:00"}
    assert str(article_path(item)) == f"articles/{longest}/2024/05/42.md"
    assert site.article_ref(f"https://www.woshipm.com/{too_long}/42.html") is None  # a bad card, not a refused file
    assert site.article_ref("https://www.woshipm.com/ai2/42.html") == ("ai2", 42)
