"""woshipm_crawler.markdown: body HTML → CommonMark that renders back to the same text."""

from __future__ import annotations

import re
import unicodedata

import pytest
from lxml import html as lxml_html
from markdown_it import MarkdownIt

from woshipm_crawler.markdown import convert, to_markdown
from woshipm_crawler.textmodel import html_to_text, normalize_ws

BASE = "https://www.woshipm.com/pd/6012345.html"
_MD = MarkdownIt("commonmark").enable("table")


def render_html(md: str) -> str:
    return _MD.render(md)


def rendered_text(md: str) -> str:
    """The text of the Markdown as a reader sees it, in text.py's model."""
    return normalize_ws(html_to_text(render_html(md)))


def source_text(body_html: str) -> str:
    return normalize_ws(html_to_text(body_html))


def _tree(html: str):
    return lxml_html.fragment_fromstring(html, create_parent="div")


def _strip_punct(text: str) -> str:
    edge = 0
    while edge < len(text) and unicodedata.category(text[edge])[0] in "PSZ":
        edge += 1
    end = len(text)
    while end > edge and unicodedata.category(text[end - 1])[0] in "PSZ":
        end -= 1
    return normalize_ws(text[edge:end])


def strong_texts(html: str) -> list[str]:
    """Texts of the outermost bold runs, edge punctuation aside (it may move out of the delimiters).

    Spaces are dropped: a ``<br>`` or a space at the edge may sit just outside the delimiters.
    """
    root = _tree(html)
    texts = []
    for el in root.iter("strong", "b"):
        if any(a.tag in ("strong", "b", "code", "pre") for a in el.iterancestors()):
            continue
        text = _strip_punct(html_to_text(el)).replace(" ", "")
        if text:
            texts.append(text)
    return texts


def assert_lossless(body_html: str, base_url: str | None = BASE) -> str:
    md = to_markdown(body_html, base_url)
    assert rendered_text(md) == source_text(body_html)
    assert md == "" or (md.endswith("\n") and not md.endswith("\n\n"))
    assert "\n\n\n" not in md
    # Trailing white space only as a hard break: two spaces after text.
    assert not re.search(r"(?:^|\S) \n|[ \t]*\t[ \t]*\n|   +\n|\n  \n", md.split("```")[0]), "trailing spaces"
    assert "data:" not in md
    # Every bold run of the source renders bold (merged neighbours allowed).
    rendered_strong = "\n".join(strong_texts(render_html(md)))
    for text in strong_texts(body_html):
        assert text in rendered_strong, (text, md)
    return md


# --- fixtures ------------------------------------------------------------------------------------------

WECHAT_BODY = """
<section style="margin: 0px; padding: 0px; box-sizing: border-box;">
  <section style="font-size: 15px; color: rgb(62, 62, 62);">
    <p style="text-align: justify;"><span style="font-size: 15px;">在做
    产品规划时，</span><span>我们经常会遇到</span><strong><span>“需求太多、资源太少”</span></strong><span>的问题。</span></p>
    <p><br></p>
    <p>&nbsp;</p>
    <p style="line-height: 1.75em;"><strong><span style="color: rgb(0, 112, 192);">用户洞察：</span></strong>
    <span>能力
    决定了上限&nbsp;&nbsp;&nbsp;而不是工具。</span></p>
    <p><span>一、为什么要做用户研究</span></p>
    <p><span>1. 不是列表，只是编号的段落</span><br><span>2. 第二行</span><br>- 破折号开头<br># 井号开头</p>
    <section><span>第一行</span><br><span>第二行 with English words</span><br/><span>第三行</span></section>
    <p><img class="rich_pages" data-ratio="0.56" data-src="https://image.woshipm.com/2023/05/01/abc.png"
        src="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7" alt="用户旅程图"
        style="width: 100%;"></p>
    <p>能力<strong>“重点”</strong>在这里，<strong>重点 </strong>内容，<strong>重点
    </strong>内容。</p>
    <p><strong>  </strong><b></b>空的加粗不留痕迹。<strong>A</strong><strong>B</strong>相邻合并。</p>
    <ol><li><span>明确目标</span></li><li><span>拆解<strong>关键路径：</strong>找到瓶颈</span></li>
    <li>复盘</li></ol>
    <ul><li>第一层</li><ul><li>第二层（本应嵌套在上一项里）</li></ul><li>回到第一层</li></ul>
    <blockquote><p>引用的一段话，<em>带强调</em>。</p></blockquote>
    <hr>
    <p>&nbsp;&nbsp;&nbsp;&nbsp;全角缩进和空格开头的段落。</p>
  </section>
</section>
"""

TABLE_BODY = """
<p>对比如下：</p>
<table>
  <tbody>
    <tr><td>维度</td><td>方案A</td><td>方案B</td></tr>
    <tr><td><strong>成本：</strong>高</td><td>a|b 管道</td><td>第一行<br>第二行</td></tr>
    <tr><td colspan="2">合并两列</td><td>右</td></tr>
    <tr><td>短行</td></tr>
    <tr><td><a href="/x">链接</a> and <code>a|b</code></td><td><img src="/t.png" alt="t"></td>
        <td>*星*</td></tr>
  </tbody>
</table>
<table><thead><tr><th>名称</th><th>说明</th></tr></thead><tbody><tr><td>DAU</td><td>日活</td></tr></tbody></table>
"""

CODE_BODY = """
<h2>接口设计</h2>
<p>示例代码 <code>user_id</code> 与 <code>a `tick` b</code>：</p>
<pre><code class="language-python">def f(x):
    return "```" + x  # fence
</code></pre>
<pre>plain pre</pre>
<h3>小结 #</h3>
"""

HAZARD_BODY = """
<p>GitBook 提示：{% endhint %} 和 {% raw %} 以及 {{ user.name }}、{# note #} 都是正文。</p>
<p>写一个 &lt;script&gt;alert(1)&lt;/script&gt; 标签，&lt;div&gt; 也一样，还有 &amp;amp; 与 &amp;copy;。</p>
<p>星号 a*b*c 与 2 * 3 = 6，下划线 snake_case 与 _私有_，反引号 `x`，反斜杠 C:\\path\\。</p>
<p>[1] 参考文献 [见图](不是链接) 以及 [x]: 不是定义</p>
<p>&gt; 不是引用</p>
<p>---</p>
<p>===</p>
<p>+ 加号</p>
<p>10) 括号编号</p>
<p>~~~ 波浪线</p>
"""

LINK_BODY = """
<p>详见<a href="/pd/123.html">这篇文章</a>和<a href="https://example.com/a b(c)">外链</a>。</p>
<p><a href="https://www.woshipm.com/u/1"><img src="//image.woshipm.com/x.png" alt="头像 [1]"></a></p>
<p><a href="javascript:void(0)">不是链接</a><a href="/empty"></a></p>
<h2><strong>标题里的加粗</strong></h2>
<h4>四级标题</h4>
<figure><img data-original="/lazy.jpg" src="/placeholder.gif"><figcaption>图注</figcaption></figure>
"""

EMPHASIS_CASES = [
    "<p><strong>用户洞察：</strong>能力</p>",
    "<p><strong>用户洞察:</strong>能力</p>",
    "<p>能力<strong>“重点”</strong>能力</p>",
    "<p>前文<strong>（括号）</strong>后文</p>",
    "<p>前文<strong>：</strong>后文</p>",
    "<p>中文<strong><a href='/a'>链接加粗</a></strong>中文</p>",
    "<p>中文<strong>“<em>斜体</em>”</strong>中文</p>",
    "<p>中文<em>“引号斜体”</em>中文</p>",
    "<p><strong>a</strong><em>b</em>c</p>",
    "<p>x<strong>*星*</strong>y</p>",
    "<p>中文<strong>重点<br></strong>下一行</p>",
    "<p>中文<strong><strong>嵌套</strong>加粗</strong>。</p>",
    "<p>前<b>！</b>后<b>“</b>引</p>",
    "<p><strong>1. 加粗编号</strong></p>",
    "<p>English <strong>bold:</strong>next and <strong>(paren)</strong>x</p>",
]


def _long_body_parts() -> list[str]:
    parts = [WECHAT_BODY, TABLE_BODY, CODE_BODY, HAZARD_BODY, LINK_BODY, *EMPHASIS_CASES]
    body = []
    size = 0
    i = 0
    while size < 200_000:
        part = parts[i % len(parts)].replace("用户", f"用户{i}")
        body.append(part)
        size += len(part.encode())
        i += 1
    return body


LONG_BODY_PARTS = _long_body_parts()
LONG_BODY = "".join(LONG_BODY_PARTS)


# --- the key property ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [WECHAT_BODY, TABLE_BODY, CODE_BODY, HAZARD_BODY, LINK_BODY, *EMPHASIS_CASES]
)
def test_markdown_renders_to_the_same_text(body):
    assert_lossless(body)


def test_long_body_renders_to_the_same_text():
    assert len(LONG_BODY.encode()) >= 200_000
    assert_lossless(LONG_BODY)


def test_a_200kb_body_converts_as_its_parts_do():
    # Speed is measured by benchmark scripts, not here; this checks that nothing in a long body (size,
    # repetition, one tree for everything) changes the result: every part converts as it does alone.
    md = to_markdown(LONG_BODY, BASE)
    assert md == "\n".join(to_markdown(part, BASE) for part in LONG_BODY_PARTS)
    html = render_html(md)
    assert html.count("<table>") == LONG_BODY.count("<table>")
    assert html.count("<pre>") == LONG_BODY.count("<pre>")


def test_empty_body():
    assert to_markdown("") == ""
    assert to_markdown("<p><br></p><p>&nbsp;</p>") == ""


# --- structure -----------------------------------------------------------------------------------------


def test_atx_headings_dash_bullets_numbered_lists():
    md = to_markdown(
        "<h2>标题</h2><h3>小节</h3><ul><li>甲</li><li>乙</li></ul><ol><li>一</li><li>二</li></ol>"
    )
    assert md == "## 标题\n\n### 小节\n\n- 甲\n- 乙\n\n1. 一\n2. 二\n"


def test_ordered_list_start():
    assert to_markdown('<ol start="3"><li>c</li><li>d</li></ol>') == "3. c\n4. d\n"


def test_invalid_nested_list_is_renested():
    md = to_markdown("<ul><li>a</li><ul><li>b</li></ul></ul>")
    assert md == "- a\n  - b\n"
    root = _tree(render_html(md))
    assert root.xpath("//li[contains(text(), 'a')]/ul/li")[0].text_content().strip() == "b"


def test_lazy_images_and_absolute_urls():
    md = to_markdown(
        '<p><img src="data:image/png;base64,AAAA" data-src="/2023/a.png" alt="图一">'
        '<img src="data:image/gif;base64,AAAA" data-original="b.png">'
        '<img src="data:image/gif;base64,AAAA">'
        '<a href="/u/9"><img src="//image.woshipm.com/c.png" alt="c"></a></p>',
        BASE,
    )
    assert "data:" not in md
    root = _tree(render_html(md))
    assert [img.get("src") for img in root.iter("img")] == [
        "https://www.woshipm.com/2023/a.png",
        "https://www.woshipm.com/pd/b.png",
        "https://image.woshipm.com/c.png",
    ]
    assert root.xpath("//img")[0].get("alt") == "图一"
    assert root.xpath("//a")[0].get("href") == "https://www.woshipm.com/u/9"
    assert "[![c](https://image.woshipm.com/c.png)](https://www.woshipm.com/u/9)" in md


def test_tables():
    md = assert_lossless(TABLE_BODY)
    root = _tree(render_html(md))
    tables = root.xpath("//table")
    assert len(tables) == 2
    first = tables[0]
    header = [th.text_content() for th in first.xpath(".//thead//th")]
    assert header == ["维度", "方案A", "方案B"]  # inferred from the first row
    rows = [[td.text_content() for td in tr.xpath("./td")] for tr in first.xpath(".//tbody/tr")]
    assert rows[0][1] == "a|b 管道"
    assert rows[0][2] == "第一行第二行" or first.xpath(".//tbody/tr[1]/td[3]/br")
    assert rows[1] == ["合并两列", "", "右"]  # colspan kept aligned
    assert rows[2] == ["短行", "", ""]
    assert first.xpath(".//tbody/tr[1]/td[1]/strong")  # inline formatting kept
    assert first.xpath(".//tbody/tr[4]/td[1]/code")[0].text == "a|b"
    assert "a\\|b" in md


def test_code_blocks():
    md = assert_lossless(CODE_BODY)
    assert "````python\n" in md  # longer than the ``` inside
    root = _tree(render_html(md))
    code = root.xpath("//pre/code")[0]
    assert code.get("class") == "language-python"
    assert 'return "```" + x' in code.text
    assert root.xpath("//p/code")[0].text == "user_id"
    assert root.xpath("//p/code")[1].text == "a `tick` b"
    assert root.xpath("//h3")[0].text_content() == "小结 #"


def test_br_inside_pre_is_a_newline():
    md = to_markdown("<pre><code>a = 1<br>b = 2</code></pre>")
    assert md == "```\na = 1\nb = 2\n```\n"


def test_br_is_a_two_space_hard_break():
    md = to_markdown("<p>第一行<br>第二行<br><br>第三行<br></p>")
    assert md == "第一行  \n第二行  \n第三行\n"  # a backslash break shows as "\\" in kramed
    assert render_html(md).count("<br />") == 2


def test_no_stray_space_between_cjk():
    assert to_markdown("<p><strong>重点\n</strong>内容</p>") == "**重点**内容\n"
    assert to_markdown("<p>在做\n   产品规划时</p>") == "在做产品规划时\n"
    assert to_markdown("<p>中文\nEnglish</p>") == "中文 English\n"
    # A real space is text (text.py keeps it), moved out of the delimiters so the bold still renders.
    assert to_markdown("<p><strong>重点 </strong>内容</p>") == "**重点** 内容\n"
    assert to_markdown("<p>前&nbsp;&nbsp;&nbsp;后</p>") == "前 后\n"


@pytest.mark.parametrize("body", EMPHASIS_CASES)
def test_every_bold_renders(body):
    md = assert_lossless(body)
    assert "**" not in rendered_text(md)


def test_bold_forms():
    assert to_markdown("<p><strong>用户洞察：</strong>能力</p>") == "**用户洞察**：能力\n"
    assert to_markdown("<p>能力<strong>“重点”</strong>能力</p>") == "能力“**重点**”能力\n"
    assert to_markdown("<p><strong>用户洞察:</strong>能力</p>") == "**用户洞察**:能力\n"
    assert to_markdown("<p><strong>结论：</strong></p>") == "**结论：**\n"  # no move needed
    assert to_markdown("<p>前文<strong>：</strong>后文</p>") == "前文<strong>：</strong>后文\n"
    assert to_markdown("<p><strong>A</strong><strong>B</strong>。</p>") == "**AB**。\n"
    assert to_markdown("<p><strong> </strong>x<b></b></p>") == "x\n"


def test_escaping_only_where_needed():
    assert to_markdown("<p>snake_case 与 2 * 3</p>") == "snake_case 与 2 * 3\n"
    md = assert_lossless(HAZARD_BODY)
    html = render_html(md)
    for marker in ("<blockquote", "<ol", "<ul", "<hr", "<h1", "<h2", "<pre", "<script", "<div", "<em>"):
        assert marker not in html
    # Every escape is one CommonMark and marked/kramed (HonKit) both honour: a backslash before
    # \ ` * _ { } [ ] ( ) # + - . ! > ~ |, a character reference elsewhere.
    assert md == (
        "GitBook 提示：{&#37; endhint %} 和 {&#37; raw %} 以及 {\\{ user.name }}、{&#35; note #} 都是正文。\n\n"
        "写一个 &lt;script>alert(1)&lt;/script> 标签，&lt;div> 也一样，还有 &amp;amp; 与 &amp;copy;。\n\n"
        "星号 a\\*b\\*c 与 2 * 3 = 6，下划线 snake_case 与 \\_私有\\_，反引号 \\`x\\`，反斜杠 C:\\\\path\\\\。\n\n"
        "\\[1] 参考文献 \\[见图\\](不是链接) 以及 \\[x\\]: 不是定义\n\n"
        "\\> 不是引用\n\n\\---\n\n&#61;==\n\n\\+ 加号\n\n10\\) 括号编号\n\n\\~\\~\\~ 波浪线\n"
    )


def test_link_forms():
    md = assert_lossless(LINK_BODY)
    assert "[这篇文章](https://www.woshipm.com/pd/123.html)" in md
    assert "(https://example.com/a%20b%28c%29)" in md
    assert "## **标题里的加粗**" in md
    assert "![](https://www.woshipm.com/lazy.jpg)" in md
    assert "javascript" not in md


def test_wechat_noise():
    md = assert_lossless(WECHAT_BODY)
    assert "style" not in md and "<span" not in md and "\u00a0" not in md
    assert "\n\n\n" not in md
    assert "\n> 引用的一段话，*带强调*。\n" in md
    assert "\n---\n" in md
    assert "1\\. 不是列表" in md and "\\- 破折号开头" in md and "\\# 井号开头" in md
    assert md.startswith("在做产品规划时，")


def test_blocks_markdownify_leaves_inline_are_paragraphs():
    # text.py reads figure, center, dl/dd… as blocks, and HTML5 blocks inside a p as blocks too.
    for body in (
        "<center>居中</center>后文",
        "<dl><dt>术语</dt><dd>解释</dd></dl>",
        "<p>a<section>段落<strong>b</strong></section>c</p>",
        "<figure><img src='/a.png'><figcaption>图注</figcaption></figure>后文",
        "<div>开头<ul><li>x</li></ul>中间<p>p</p>结尾</div>",
    ):
        assert_lossless(body)
    assert to_markdown("<dl><dt>术语</dt><dd>解释</dd></dl>") == "术语\n\n解释\n"


def test_blocks_inside_inline_elements_headings_and_cells_are_flattened():
    assert to_markdown("<p>前<strong>加<p>粗</p>段</strong>后</p>") == "前**加粗段**后\n"
    assert to_markdown("<h2>标题<section>段</section>尾</h2>") == "## 标题 段 尾\n"
    md = assert_lossless(
        "<table><tr><td><table><tr><td>x</td><td>y</td></tr></table></td><td>z</td></tr></table>"
    )
    assert md == "| xy | z |\n| --- | --- |\n"


def test_table_caption_and_loose_text_are_kept():
    md = assert_lossless("<table><caption>表题</caption><tr><td>a</td><td>b</td></tr></table>")
    assert md == "表题\n\n| a | b |\n| --- | --- |\n"


def test_no_syntax_commonmark_lacks():
    md = assert_lossless(
        "<p><q>引</q><del>删</del>H<sub>2</sub>O<sup>上</sup><video src='/v.mp4'>视频</video></p>"
    )
    assert md == "引删H2O上视频\n"


def test_comments_and_processing_instructions_are_no_text():
    assert to_markdown("<p>a<!-- c -->b<?xml:namespace prefix=o ?>c</p>") == "abc\n"


def test_gitbook_opener_split_over_two_text_nodes():
    md = assert_lossless("<p>{<span>{</span> x }} 与 {<b>%</b> y</p>")
    assert "{{" not in md and "{%" not in md.replace("**", "")


def test_empty_list_items_take_no_number_and_nested_lists_stay_tight():
    assert to_markdown("<ol start='9'><li>a</li><li></li><li>b</li></ol>") == "9. a\n10. b\n"
    md = assert_lossless("<ul><li><p>a</p><ul><li>b</li></ul></li><li><p>c</p><p>d</p></li></ul>")
    assert md == "- a\n  - b\n- c\n\n  d\n"


def test_code_blocks_keep_their_blank_lines():
    md = to_markdown("<pre>a\n\n\n\nb</pre><ul><li><pre>x\n\ny</pre></li></ul>")
    assert md == "```\na\n\n\n\nb\n```\n\n- ```\n  x\n\n  y\n  ```\n"


def test_paragraphs_of_text_and_breaks():
    md = assert_lossless("<div><p>甲<br>乙<br><br> 丙 </p><p><br>丁</p>戊<br></div>")
    assert md == "甲  \n乙  \n丙\n\n丁\n\n戊\n"
    md = assert_lossless("<ul><li><p>a<br>b</p><ul><li>c</li></ul></li></ul>")
    assert md == "- a  \n  b\n  - c\n"
    # The opener check sees the text of the paragraph before it.
    assert to_markdown("<p>x{</p><p><b>%</b> y</p>") == "x{\n\n**&#37;** y\n"


# --- text that looks like HTML or Markdown stays text in every renderer (issue 24) -------------------
# HonKit's kramed (marked) passes raw HTML and honours a backslash only before \ ` * _ { } [ ] ( ) # + - . ! > ~ |:
# the Markdown below must show these texts, never a tag or a link, there as in CommonMark.


TEXT_CASES = [
    ("<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>", "&lt;script>alert(1)&lt;/script>\n"),
    ("<p>&lt;img src=x onerror=alert(1)&gt;</p>", "&lt;img src=x onerror=alert(1)>\n"),
    ('<p>&lt;a href="javascript:alert(1)"&gt;x&lt;/a&gt;</p>', '&lt;a href="javascript:alert(1)">x&lt;/a>\n'),
    (
        "<p>&lt;javascript:alert(1)&gt; &lt;!-- c --&gt; &lt;?x?&gt;</p>",
        "&lt;javascript:alert(1)> &lt;!-- c --> &lt;?x?>\n",
    ),
    # A tag split over text nodes: "<" at the end of a node is a reference too.
    ("<p>&lt;<span>script</span>&gt;x</p>", "&lt;script>x\n"),
    ("<p>1 &lt; 2 且 a&lt;b</p>", "1 < 2 且 a&lt;b\n"),
    ("<p>&amp;lt; &amp;copy; &amp;#106; AT&amp;T</p>", "&amp;lt; &amp;copy; &amp;#106; AT&T\n"),
    ("<p>x &amp;<b>lt;</b></p>", "x &amp;**lt;**\n"),
    # Every "[" of text is escaped: no link, footnote or definition, in kramed either.
    ("<p>[点我](javascript:alert(1))</p>", "\\[点我\\](javascript:alert(1))\n"),
    ("<p>\\[x](javascript:alert(1))</p>", "\\\\\\[x\\](javascript:alert(1))\n"),
    ("<p>[^1] 与 [y]: javascript:alert(1)</p>", "\\[^1] 与 \\[y\\]: javascript:alert(1)\n"),
    ('<p><a href="https://a.com/x">[t](javascript:1)</a></p>', "[\\[t\\](javascript:1)](https://a.com/x)\n"),
    ('<p><a href="https://a.com/&quot;onclick=&quot;x`">a</a></p>', "[a](https://a.com/%22onclick=%22x%60)\n"),
    # Template openers: no backslash left visible before "%" in kramed; "{#" is a reference (kramed
    # takes a "{#id}" out of a heading's text, and puts it unescaped in an attribute).
    ("<p>{% raw %}{{ x }}{# y #}</p>", "{&#37; raw %}{\\{ x }}{&#35; y #}\n"),
    ("<p>{<span>%</span> x {<b>#</b></p>", "{&#37; x {**&#35;**\n"),
    ('<h3>{#x" onclick="alert(1)} 标题</h3>', '### {&#35;x" onclick="alert(1)} 标题\n'),
    ("<table><tr><td>a|b</td><td>c</td></tr></table>", "| a&#124;b | c |\n| --- | --- |\n"),
    ("<p>===</p><p>= x</p>", "&#61;==\n\n= x\n"),
    ("<h2>C#</h2><h3>小结 ##</h3>", "## C&#35;\n\n### 小结 #&#35;\n"),  # kramed drops a heading's trailing "#"s
    ("<p>一<br>二</p>", "一  \n二\n"),
    ("<p><strong>a&lt;</strong>b</p>", "<strong>a&lt;</strong>b\n"),  # the ";" of a reference stays inside
    # "~~" would strike through in GFM renderers; a strikethrough of the page is its text.
    ("<p>价格 ~~100~~ 元，<del>旧价</del>，3~5 年，~~~</p>", "价格 \\~\\~100\\~\\~ 元，旧价，3~5 年，\\~\\~\\~\n"),
    ("<p>a~<b>~b~</b>~c</p>", "a\\~**\\~b\\~**\\~c\n"),
]  # also rendered by the site's renderer in tests/test_book_hostile.py


def test_plain_paragraphs_convert_as_through_their_text_nodes(monkeypatch):
    # Runs of paragraphs of one plain text each go into the soup as one tag (convert.PLAIN_RUN_TAG); with
    # the shortcut off, every paragraph keeps its tag and text node: the Markdown must not change.
    bodies = [body for body, _ in TEXT_CASES] + [
        "<p> 前后 </p><p>\u2003w\u2003</p><div>a * b_c_ *d*<p>x{</p>%<p>{% y %}</p>\u2003z\u2003</div>",
        "<ul><li><p>1. a</p><ul><li>b</li></ul></li></ul><blockquote><p># c</p>=== <p>d</p></blockquote>",
    ]
    taken = []
    monkeypatch.setattr(convert, "_plain", lambda text, plain=convert._plain: taken.append(plain(text)) or taken[-1])
    with_shortcut = [to_markdown(body) for body in bodies]
    assert sum(taken) > 20  # the shortcut was taken
    monkeypatch.setattr(convert, "_plain", lambda text: False)
    assert [to_markdown(body) for body in bodies] == with_shortcut


def test_a_pipe_in_a_code_span_in_a_cell_keeps_its_backslash():
    # GFM unescapes it before the code span is read; kramed (HonKit) still splits the cell there.
    md = assert_lossless("<table><tr><td><code>c|d</code></td></tr></table>")
    assert md == "| `c\\|d` |\n| --- |\n"


@pytest.mark.parametrize(("body", "expected"), TEXT_CASES)
def test_html_and_link_syntax_shown_as_text_stay_text(body, expected):
    md = assert_lossless(body)
    assert md == expected
    html = render_html(md)
    assert not re.search(r"<(?!/?(?:p|strong|em|code|br|a|h[23]|table|thead|tbody|tr|th|td)\b)", html), html
    assert "javascript:" not in "".join(re.findall(r'href="([^"]*)"', html))
