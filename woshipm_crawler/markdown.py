"""Article body HTML → CommonMark (GFM pipe tables), losing no text and adding none.

``to_markdown(body_html, base_url)`` is the whole API. The contract, tested in tests/test_markdown.py:
rendering the Markdown (markdown-it-py, ``commonmark`` + ``table``) and taking its text with
``woshipm_crawler.text.html_to_text`` gives, after ``normalize_ws``, the text of ``body_html``.

Why not a ``markdownify.MarkdownConverter`` subclass: markdownify works on a BeautifulSoup tree and
building that tree alone takes ~280 ms for a 170 KB body (html.parser or lxml builder), and its own walk
another ~200 ms; we need well under 100 ms. So this module walks the lxml tree itself, in three steps:

1. ``fix_list_nesting`` — an lxml pre-pass: ``<ul><li>a</li><ul>…</ul></ul>`` → the inner list moves into
   the ``li`` before it.
2. ``normalize_whitespace`` — rewrites every text node with the white-space rule of text.py
   (``clean_inline``), over the same paragraphs text.py sees, so a source newline between two CJK
   characters disappears even when it falls between ``<strong>`` and its neighbour, ``&nbsp;`` runs
   become one space, and nothing else is touched. After this the text is already in text.py's form.
3. ``render`` — one walk mirroring ``text._collect``: blocks (p/div/section/li/…) become Markdown
   blocks, inline elements become inline Markdown. Bold/italic are emitted as sentinel characters and
   settled per paragraph by ``_settle_emphasis`` once the neighbouring characters are final.

Choices:

- Hard break: backslash + newline (CommonMark §6.7 "hard line breaks", second form). It renders as
  ``<br />`` like two trailing spaces, but is visible, survives editors that trim trailing white space and
  keeps the "no trailing spaces" rule. Runs of ``<br>`` collapse to one break; breaks at the edges of a
  paragraph are dropped (a backslash before the end of a block would be literal text).
- ``<br>`` in a table cell: a literal ``<br>`` (raw inline HTML) — a newline would end the row. Under
  text.py a ``<br>`` in a cell is a space, as is the rendered ``<br>``.
- Bold: ``**…**``. CommonMark §6.2: a ``**`` run opens only when *left-flanking* (not followed by white
  space, and not followed by punctuation unless preceded by white space or punctuation) and closes only
  when *right-flanking* (the mirror image). ``**用户洞察：**能力`` fails: the closer is preceded by ``：``
  and followed by a letter. The fix keeps the text and moves one non-ASCII punctuation character across
  the failing delimiter — ``**用户洞察**：能力``, ``能力“**重点**”`` — after which the delimiter has
  punctuation on its outer side and flanks. Where no such move works (the content starts with ``[`` of a
  link, a backslash escape, or is punctuation only) the pair falls back to raw ``<strong>…</strong>``,
  which CommonMark and GitBook render as is. Italic is the same with ``*``/``<em>``.
- Escaping is minimal: only characters that could start syntax at their place are escaped; line-start
  markers (``1.``, ``#``, ``-``, ``>``, ``=``…) are escaped per output line. GitBook/Nunjucks
  openers ``{%``, ``{{``, ``{#`` become ``{\\%``…; ``<tag`` in text becomes ``\\<tag``; entity-like
  ``&x;`` becomes ``\\&x;``.
- Tables: the first row is always the header row (inferred when the table has none); ``colspan=N``
  adds N-1 empty cells; short rows are padded; ``|`` in a cell is ``\\|`` (also inside code spans, GFM).
- ``<pre>``: fenced block, language from ``language-x``/``lang-x``, fence longer than any backtick run
  inside; ``<br>`` inside ``<pre>`` becomes a newline (text.py ignores it: see the report).
"""

from __future__ import annotations

import re
import unicodedata
from copy import deepcopy
from typing import NamedTuple
from urllib.parse import urljoin

from lxml import etree

from woshipm_crawler.text import _CJK_BREAK_RE, _SPACE_RE, BLOCK_TAGS

# The same as text._SKIP_TAGS: elements whose content is no text. ``img`` is rendered, as markup.
SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "head", "title", "img", "svg"})
HEADING_LEVELS = {f"h{n}": n for n in range(1, 7)}
STRONG_TAGS = frozenset({"strong", "b"})
EM_TAGS = frozenset({"em", "i"})
LAZY_SRC_ATTRS = ("data-src", "data-original", "data-actualsrc", "data-lazy-src", "src")

# Sentinels for emphasis delimiters while a paragraph is assembled: Unicode noncharacters, never text.
STRONG_OPEN, STRONG_CLOSE, EM_OPEN, EM_CLOSE = "\ufdd0", "\ufdd1", "\ufdd2", "\ufdd3"
# The same pairs settled as raw HTML (the fallback): they count as punctuation next to a delimiter.
HTML_STRONG_OPEN, HTML_STRONG_CLOSE, HTML_EM_OPEN, HTML_EM_CLOSE = "\ufdd4", "\ufdd5", "\ufdd6", "\ufdd7"
BREAK = "\x00"  # a <br> while a paragraph is assembled
_OPENERS = STRONG_OPEN + EM_OPEN
_TO_HTML = {
    STRONG_OPEN: HTML_STRONG_OPEN,
    STRONG_CLOSE: HTML_STRONG_CLOSE,
    EM_OPEN: HTML_EM_OPEN,
    EM_CLOSE: HTML_EM_CLOSE,
}
_FINAL_DELIMITERS = {
    STRONG_OPEN: "**",
    STRONG_CLOSE: "**",
    EM_OPEN: "*",
    EM_CLOSE: "*",
    HTML_STRONG_OPEN: "<strong>",
    HTML_STRONG_CLOSE: "</strong>",
    HTML_EM_OPEN: "<em>",
    HTML_EM_CLOSE: "</em>",
}
_ANY_SENTINEL_RE = re.compile("[\ufdd0-\ufdd7]")
# Characters the input may not carry: our sentinels, NUL and the C0 controls lxml rejects.
_FORBIDDEN_INPUT_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufdd0-\ufdd7]")
# Plain lxml elements: lxml.html's per-element class lookup costs a third of a conversion.
_PARSER = etree.HTMLParser()
_CHAR_CLASSES: dict[str, str] = {}

_DELIMITER_RUN_RE = re.compile("[\ufdd0-\ufdd3]+")
_SPACE_BEFORE_CLOSE_RE = re.compile("([ \x00]+)([\ufdd1\ufdd3]+)")
_SPACE_AFTER_OPEN_RE = re.compile("([\ufdd0\ufdd2]+)([ \x00]+)")
_EMPTY_OR_ADJACENT_RE = re.compile("\ufdd0\ufdd1|\ufdd2\ufdd3|\ufdd1\ufdd0|\ufdd3\ufdd2")

# Inline escapes: only where the character could start syntax.
_NEEDS_ESCAPE_RE = re.compile(r"[\\`*_<&{\[\]|]")
_ASTERISK_RE = re.compile(r"(?<! )\*|\*(?! )")  # a "*" between two spaces flanks neither way
_UNDERSCORE_RE = re.compile(r"(?<!\w)_|_(?!\w)")  # intraword "_" neither opens nor closes (§6.2)
_TAG_START_RE = re.compile(r"<(?=[A-Za-z/!?])")  # raw HTML, autolinks, comments
_ENTITY_RE = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
_TEMPLATE_RE = re.compile(r"(?<=\{)([{%#])")  # Nunjucks/GitBook: {{ }}, {% %}, {# #}
_CLOSE_BRACKET_RE = re.compile(r"\](?=[(\[:]|$)")  # "](" makes a link, "]:" a definition
# Line starts that would open a block (§4.1–4.4, §5.1–5.3). Lines are stripped, so no indentation.
_LINE_START_RE = re.compile(r"#{1,6}(?=[ \t]|$)|[-+*](?=[ \t]|$)|>|~~~|(?:[-_=*][ \t]*)+$")
_ORDERED_START_RE = re.compile(r"(\d{1,9})([.)])(?=[ \t]|$)")
_LIST_BLOCK_RE = re.compile(r"(?:-|\d{1,9}\.) ")  # text blocks never start so: their line starts are escaped
_TRAILING_HASHES_RE = re.compile(r"(?:^|(?<= ))#+$")
_BACKTICK_RUN_RE = re.compile(r"`+")
_LANGUAGE_RE = re.compile(r"(?:^|\s)(?:language|lang)-([\w+#.-]+)")
_URL_UNSAFE = {
    " ": "%20",
    "(": "%28",
    ")": "%29",
    "<": "%3C",
    ">": "%3E",
    "{": "%7B",
    "}": "%7D",
    "\n": "",
    "\t": "",
}
_URL_UNSAFE_RE = re.compile(r"[ ()<>{}\n\t]")


def to_markdown(body_html: str, base_url: str | None = None) -> str:
    """The body as CommonMark ending in one newline ("" for a body without content)."""
    if not body_html or not body_html.strip():
        return ""
    root = parse_fragment(body_html)
    if root is None:
        return ""
    fix_list_nesting(root)
    normalize_whitespace(root)
    markdown = render(root, base_url)
    return markdown + "\n" if markdown else ""


def parse_fragment(body_html: str):
    """The fragment's container element, parsed as text.py parses it (libxml2, ``<html><body>`` around)."""
    document = etree.HTML(f"<html><body>{_FORBIDDEN_INPUT_RE.sub('', body_html)}</body></html>", _PARSER)
    return None if document is None else document.find("body")


# --- 1. pre-pass ---------------------------------------------------------------------------------


def fix_list_nesting(root) -> None:
    """Move a list that sits directly in a list into the ``li`` before it (invalid but common HTML)."""
    for lst in list(root.iter("ul", "ol")):
        parent = lst.getparent()
        if parent is None or parent.tag not in ("ul", "ol"):
            continue
        previous = lst.getprevious()
        while previous is not None and not isinstance(previous.tag, str):
            previous = previous.getprevious()
        if previous is None or previous.tag != "li":
            continue
        tail, lst.tail = lst.tail, None
        if tail and tail.strip():  # keep stray text where it was
            previous.tail = (previous.tail or "") + tail
        previous.append(lst)


# --- 2. white space, exactly as text.py sees it ----------------------------------------------------


def normalize_whitespace(root) -> None:
    """Rewrite the text nodes of ``root`` so each paragraph's text is already in text.py's form."""
    _normalize_block(root)


def _normalize_block(element) -> None:
    run: list = []  # (node, "text"|"tail") or None for a <br>; mirrors text._collect
    if element.text:
        run.append((element, "text"))
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        if not tag or tag in SKIP_TAGS:
            pass
        elif tag == "br":
            run.append(None)
        elif tag == "pre":
            _rewrite_run(run)
        elif tag in BLOCK_TAGS:
            _rewrite_run(run)
            if tag == "tr":
                for cell in child:
                    if cell.tag in ("td", "th"):
                        _normalize_inline_unit(cell)
            else:
                _normalize_block(child)
        elif tag in ("td", "th"):
            _normalize_inline_unit(child)
        else:
            _collect_inline_segments(child, run)
        if child.tail:
            run.append((child, "tail"))
    _rewrite_run(run)


def _normalize_inline_unit(element) -> None:
    run: list = []
    _collect_inline_segments(element, run)
    _rewrite_run(run)


def _collect_inline_segments(element, run: list) -> None:
    """The text segments of an inline element, in order; mirrors text._inline_text."""
    if element.text:
        run.append((element, "text"))
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag == "br":
            run.append(None)
        elif tag and tag not in SKIP_TAGS:
            _collect_inline_segments(child, run)
        if child.tail:
            run.append((child, "tail"))


def _space_replacement(window: str) -> str:
    """What text.clean_inline makes of one white-space run, given its neighbours in ``window``."""
    return _SPACE_RE.sub(" ", _CJK_BREAK_RE.sub("", window))[1:-1]


def _rewrite_run(run: list) -> None:
    """Apply text.clean_inline's white-space rule to a paragraph spread over several text nodes.

    A white-space run may span nodes (``重点\\n</strong>内容``): its replacement ("" or " ") goes to the
    node where it starts, the rest of it is deleted.
    """
    if not run:
        return
    strings = ["\x00" if seg is None else getattr(seg[0], seg[1]) for seg in run]
    joined = "".join(strings)
    replacements = []
    for match in _SPACE_RE.finditer(joined):
        start, end = match.span()
        space = match.group()
        if space == " ":
            continue
        if "\n" in space and start and end < len(joined):
            replacement = _space_replacement(joined[start - 1 : end + 1])
        else:
            replacement = " "
        replacements.append((start, end, replacement))
    segments = list(run)
    run.clear()
    if not replacements:
        return
    index, position = 0, 0
    for seg, text in zip(segments, strings, strict=True):
        start, end = position, position + len(text)
        position = end
        pieces = []
        cursor = start
        while index < len(replacements) and replacements[index][0] < end:
            r_start, r_end, replacement = replacements[index]
            if r_start >= cursor:
                pieces.append(joined[cursor:r_start])
            if r_start >= start:
                pieces.append(replacement)
            if r_end <= end:
                cursor = r_end
                index += 1
            else:
                cursor = end
                break
        if seg is None:
            continue
        if cursor < end:
            pieces.append(joined[cursor:end])
        setattr(seg[0], seg[1], "".join(pieces))


# --- 3. rendering ----------------------------------------------------------------------------------


class InlineContext(NamedTuple):
    """Where an inline piece sits: what is already open around it."""

    base_url: str | None
    link: bool = False
    strong: bool = False
    em: bool = False
    cell: bool = False


def render(root, base_url: str | None = None) -> str:
    """Markdown of a normalized tree: its blocks joined by one blank line."""
    blocks: list[str] = []
    _render_blocks(root, InlineContext(base_url), blocks)
    return "\n\n".join(blocks)


def _render_blocks(element, ctx: InlineContext, blocks: list[str], heading: bool = False) -> None:
    """Append the Markdown blocks of ``element``'s content; mirrors text._collect."""
    run: list[str] = []

    def flush() -> None:
        if run:
            text = "".join(run)
            run.clear()
            if text.strip(" "):  # white space between blocks is no paragraph
                paragraph = finish_inline(text, "heading" if heading else "paragraph")
                if paragraph:
                    blocks.append(paragraph)

    if element.text:
        run.append(escape_text(element.text, ctx))
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag == "img":
            run.append(_render_image(child, ctx))
        elif not tag or tag in SKIP_TAGS:
            pass
        elif tag == "br":
            run.append(BREAK)
        elif tag == "pre":
            flush()
            _append(blocks, render_pre(child))
        elif tag in BLOCK_TAGS:
            flush()
            if heading:  # a block inside a heading: its text joins the heading's line
                _render_blocks(child, ctx, blocks, heading)
            elif tag in HEADING_LEVELS:
                _append(blocks, _render_heading(child, ctx))
            elif tag in ("ul", "ol"):
                _append(blocks, _render_list(child, ctx))
            elif tag == "table":
                _append(blocks, render_table(child, ctx))
            elif tag == "blockquote":
                _append(blocks, _render_blockquote(child, ctx))
            elif tag == "hr":
                blocks.append("---")
            else:
                _render_blocks(child, ctx, blocks, heading)
        elif tag in ("td", "th"):  # a cell outside a table we render (e.g. in a heading): text.py spaces it
            run.extend((" ", render_inline(child, ctx), " "))
        else:
            run.append(render_inline(child, ctx))
        if child.tail:
            run.append(escape_text(child.tail, ctx))
    flush()


def _append(blocks: list[str], block: str) -> None:
    if block:
        blocks.append(block)


def _render_heading(element, ctx: InlineContext) -> str:
    parts: list[str] = []
    _render_blocks(element, ctx, parts, heading=True)
    text = " ".join(parts)
    if not text:
        return ""
    # A run of "#" after a space at the end would be read as the closing sequence (§4.2).
    text = _TRAILING_HASHES_RE.sub(lambda m: "\\" + m.group(), text)
    return "#" * HEADING_LEVELS[element.tag] + " " + text


def _render_list(element, ctx: InlineContext) -> str:
    ordered = element.tag == "ol"
    start = element.get("start", "").strip()
    number = int(start) if ordered and start.isdigit() and len(start) <= 9 else 1
    items = []
    for blocks in _list_item_blocks(element, ctx):
        if not blocks or not blocks[0]:
            continue
        marker = f"{number}." if ordered else "-"
        number += 1
        indent = " " * (len(marker) + 1)
        lines = _join_item_blocks(blocks).split("\n")
        items.append(
            "\n".join([f"{marker} {lines[0]}"] + [indent + line if line else "" for line in lines[1:]])
        )
    return "\n".join(items)


def _list_item_blocks(element, ctx: InlineContext):
    """The blocks of each item of a list; stray text and blocks directly in the list are items too."""
    if element.text and element.text.strip():
        yield [finish_inline(escape_text(element.text, ctx), "paragraph")]
    for child in element:
        if isinstance(child.tag, str) and child.tag not in SKIP_TAGS:
            blocks: list[str] = []
            if child.tag in BLOCK_TAGS and child.tag != "li":
                # a stray block (e.g. a nested list with no li before it): one item of its own
                wrapper = etree.Element("div")
                wrapper.append(_detached_copy(child))
                _render_blocks(wrapper, ctx, blocks)
            elif child.tag == "li":
                _render_blocks(child, ctx, blocks)
            else:
                inline = finish_inline(render_inline(child, ctx), "paragraph")
                if inline:
                    blocks.append(inline)
            yield blocks
        if child.tail and child.tail.strip():
            yield [finish_inline(escape_text(child.tail, ctx), "paragraph")]


def _join_item_blocks(blocks: list[str]) -> str:
    """An item's blocks, a nested list kept tight under its text (no blank line before it)."""
    joined = blocks[0]
    for block in blocks[1:]:
        joined += ("\n" if _LIST_BLOCK_RE.match(block) else "\n\n") + block
    return joined


def _detached_copy(element):
    copy = deepcopy(element)
    copy.tail = None
    return copy


def _render_blockquote(element, ctx: InlineContext) -> str:
    blocks: list[str] = []
    _render_blocks(element, ctx, blocks)
    if not blocks:
        return ""
    return "\n".join("> " + line if line else ">" for line in "\n\n".join(blocks).split("\n"))


def render_pre(element) -> str:
    """A fenced code block; the fence is longer than any backtick run inside (§4.5)."""
    code = element
    children = [c for c in element if isinstance(c.tag, str)]
    if len(children) == 1 and children[0].tag == "code":
        code = children[0]
    match = _LANGUAGE_RE.search(code.get("class", "")) or _LANGUAGE_RE.search(element.get("class", ""))
    language = match.group(1) if match else ""
    text = "".join(_pre_text(element)).replace("\u00a0", " ").strip("\n")
    if not text.strip():
        return ""
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    longest = max((len(run) for run in _BACKTICK_RUN_RE.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def _pre_text(element):
    """Text of a ``pre``, a ``<br>`` (WeChat's code blocks use them) as a newline."""
    if element.text:
        yield element.text
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag == "br":
            yield "\n"
        elif tag and tag not in SKIP_TAGS:
            yield from _pre_text(child)
        if child.tail:
            yield child.tail


def render_table(element, ctx: InlineContext) -> str:
    """A pipe table; the first row is the header row, whether or not the source has one."""
    cell_ctx = ctx._replace(cell=True)
    rows = []
    for row in _table_rows(element):
        cells: list[str] = []
        for cell in row:
            if cell.tag not in ("td", "th"):
                continue
            cells.append(finish_inline(_render_children(cell, cell_ctx), "cell"))
            span = cell.get("colspan", "").strip()
            if span.isdigit():
                cells.extend([""] * (min(int(span), 100) - 1))
        if cells:
            rows.append(cells)
    if not rows:
        return ""
    width = max(len(cells) for cells in rows)
    lines = []
    for index, cells in enumerate(rows):
        cells = cells + [""] * (width - len(cells))
        lines.append("| " + " | ".join(cells) + " |")
        if index == 0:
            lines.append("|" + " --- |" * width)
    return "\n".join(lines)


def _table_rows(table):
    for child in table:
        if child.tag == "tr":
            yield child
        elif child.tag in ("thead", "tbody", "tfoot"):
            for row in child:
                if row.tag == "tr":
                    yield row


def render_inline(element, ctx: InlineContext) -> str:
    """Inline Markdown of one inline element (block tags inside it are flattened, as in text.py)."""
    tag = element.tag if isinstance(element.tag, str) else ""
    if not tag or (tag in SKIP_TAGS and tag != "img"):
        return ""
    if tag == "img":
        return _render_image(element, ctx)
    if tag == "br":
        return BREAK
    if tag in STRONG_TAGS and not ctx.strong:
        inner = _render_children(element, InlineContext(ctx.base_url, ctx.link, True, ctx.em, ctx.cell))
        return STRONG_OPEN + inner + STRONG_CLOSE if _has_text(element) else inner
    if tag in EM_TAGS and not ctx.em:
        inner = _render_children(element, InlineContext(ctx.base_url, ctx.link, ctx.strong, True, ctx.cell))
        return EM_OPEN + inner + EM_CLOSE if _has_text(element) else inner
    if tag == "a" and not ctx.link:
        href = _resolve(element.get("href"), ctx.base_url)
        inner = _render_children(element, InlineContext(ctx.base_url, True, ctx.strong, ctx.em, ctx.cell))
        if not href or href.startswith(("javascript:", "data:")) or not inner.strip(" " + BREAK):
            return inner
        return f"[{inner}]({_safe_url(href)})"
    if tag in ("code", "kbd", "samp", "tt"):
        return _render_code_span(element, ctx)
    return _render_children(element, ctx)


def _render_children(element, ctx: InlineContext) -> str:
    parts = []
    if element.text:
        parts.append(escape_text(element.text, ctx))
    for child in element:
        parts.append(render_inline(child, ctx))
        if child.tail:
            parts.append(escape_text(child.tail, ctx))
    return "".join(parts)


def _has_text(element) -> bool:
    return any(text.strip() for text in element.itertext())


def _render_code_span(element, ctx: InlineContext) -> str:
    """Code spans, one per line (a code span cannot hold a hard break)."""
    lines = "".join(_pre_text(element)).split("\n")
    spans = []
    for line in lines:
        if ctx.cell:
            line = line.replace("|", "\\|")  # GFM splits cells before code spans are seen
        if not line.strip():
            spans.append(line)
            continue
        # The parser strips one space from each side of a code span (§6.1): keep edge spaces outside.
        content = line.strip(" ")
        lead, trail = " " * (len(line) - len(line.lstrip(" "))), " " * (len(line) - len(line.rstrip(" ")))
        longest = max((len(run) for run in _BACKTICK_RUN_RE.findall(content)), default=0)
        fence = "`" * (longest + 1)
        padded = f" {content} " if content.startswith("`") or content.endswith("`") else content
        spans.append(lead + fence + padded + fence + trail)
    return BREAK.join(spans)


def _render_image(element, ctx: InlineContext) -> str:
    src = ""
    for attr in LAZY_SRC_ATTRS:  # lazy loaders keep the real URL in data-*, src is a placeholder
        candidate = (element.get(attr) or "").strip()
        if candidate and not candidate.startswith("data:"):
            src = candidate
            break
    src = _resolve(src, ctx.base_url)
    if not src:
        return ""
    alt = " ".join((element.get("alt") or "").split())
    alt = escape_text(alt, ctx._replace(link=True)) if alt else ""
    return f"![{alt}]({_safe_url(src)})"


def _safe_url(url: str) -> str:
    """A link destination that needs no angle brackets and holds no GitBook template opener."""
    return _URL_UNSAFE_RE.sub(lambda m: _URL_UNSAFE[m.group()], url)


def _resolve(url: str | None, base_url: str | None) -> str:
    url = (url or "").strip()
    if not url:
        return ""
    if base_url:
        return urljoin(base_url, url)
    return "https:" + url if url.startswith("//") else url


def escape_text(text: str, ctx: InlineContext) -> str:
    """Backslash-escape what could start inline syntax here; leave prose alone otherwise."""
    if not _NEEDS_ESCAPE_RE.search(text):
        return text
    text = text.replace("\\", "\\\\").replace("`", "\\`")
    if "*" in text:
        text = _ASTERISK_RE.sub(r"\\*", text)
    if "_" in text:
        text = _UNDERSCORE_RE.sub(r"\\_", text)
    if "<" in text:
        text = _TAG_START_RE.sub(r"\\<", text)
    if "&" in text:
        text = _ENTITY_RE.sub(r"\\&", text)
    if "{" in text:
        text = _TEMPLATE_RE.sub(r"\\\1", text)
    if ctx.link:
        text = text.replace("[", "\\[").replace("]", "\\]")
    elif "]" in text:
        text = _CLOSE_BRACKET_RE.sub(r"\\]", text)
    if ctx.cell:
        text = text.replace("|", "\\|")
    return text


# --- inline finishing: breaks, line starts, emphasis -------------------------------------------------


def finish_inline(text: str, mode: str) -> str:
    """Turn an assembled inline run into final Markdown.

    ``mode`` is "paragraph" (breaks → backslash hard breaks), "heading" (breaks → spaces) or "cell"
    (breaks → ``<br>``).
    """
    if BREAK not in text and not _ANY_SENTINEL_RE.search(text):  # the common case: plain prose
        text = text.strip(" ")
        return _escape_line_start(text) if mode == "paragraph" and text else text
    text = _tidy_delimiters(text)
    if mode == "heading":
        text = " ".join(text.replace(BREAK, " ").split(" "))
        text = re.sub(" {2,}", " ", text).strip(" ")
        lines = [text] if text else []
    else:
        lines = [line.strip(" ") for line in text.split(BREAK)]
        lines = [line for line in lines if line.strip(" \ufdd0\ufdd1\ufdd2\ufdd3")]
        if mode == "paragraph":
            lines = [_escape_line_start(line) for line in lines]
    if not lines:
        return ""
    text = BREAK.join(lines)
    if _ANY_SENTINEL_RE.search(text):
        text = _ANY_SENTINEL_RE.sub(_final_delimiter, _settle_emphasis(text))
    return text.replace(BREAK, "<br>" if mode == "cell" else "\\\n") if BREAK in text else text


def _final_delimiter(match: re.Match) -> str:
    return _FINAL_DELIMITERS[match.group()]


def _tidy_delimiters(text: str) -> str:
    """Move spaces and breaks out of emphasis, drop empty pairs, merge touching pairs of one kind."""
    if STRONG_OPEN not in text and EM_OPEN not in text:
        return text
    while True:
        tidied = _SPACE_AFTER_OPEN_RE.sub(r"\2\1", _SPACE_BEFORE_CLOSE_RE.sub(r"\2\1", text))
        tidied = _EMPTY_OR_ADJACENT_RE.sub("", tidied)
        if tidied == text:
            return text
        text = tidied


def _escape_line_start(line: str) -> str:
    """Escape a line start that would open a block: heading, list item, quote, break, fence."""
    first = line[:1]
    if first.isdigit():
        return _ORDERED_START_RE.sub(r"\1\\\2", line, count=1)
    if first in "#-+*>~_=" and _LINE_START_RE.match(line):
        return "\\" + line
    return line


def _char_class(ch: str | None) -> str:
    """CommonMark's classes for flanking: "space" (or line edge), "punct" (Unicode P or S), "other"."""
    if ch is None:
        return "space"
    cls = _CHAR_CLASSES.get(ch)
    if cls is None:
        if ch == BREAK or ch.isspace():
            cls = "space"
        elif "\ufdd4" <= ch <= "\ufdd7":  # a raw-HTML tag: starts with "<", ends with ">"
            cls = "punct"
        else:
            cls = "punct" if unicodedata.category(ch)[0] in "PS" else "other"
        _CHAR_CLASSES[ch] = cls
    return cls


def _left_flanking(before: str, after: str) -> bool:
    return after != "space" and (after != "punct" or before != "other")


def _right_flanking(before: str, after: str) -> bool:
    return before != "space" and (before != "punct" or after != "other")


def _movable(ch: str | None) -> bool:
    """Punctuation we may move across a delimiter: never markup, never the target of an escape."""
    if ch is None:
        return False
    if ord(ch) < 128:
        return ch in _MOVABLE_ASCII
    return _char_class(ch) == "punct" and not "\ufdd0" <= ch <= "\ufdd7"


def _settle_emphasis(text: str, max_passes: int = 8) -> str:
    """Make every ``**``/``*`` pair open and close under CommonMark's flanking rules (§6.2).

    A failing opener is followed by punctuation and preceded by a letter: move that (non-ASCII)
    punctuation before it. A failing closer is the mirror image. A delimiter run that still fails, or
    that both closes and opens, has its pairs written as raw ``<strong>``/``<em>`` instead.
    """
    if STRONG_OPEN not in text and EM_OPEN not in text:
        return text
    for _ in range(max_passes):
        changed = False
        to_html: list[int] = []
        for match in reversed(list(_DELIMITER_RUN_RE.finditer(text))):
            start, end = match.span()
            delimiters = match.group()
            before_ch = text[start - 1] if start else None
            after_ch = text[end] if end < len(text) else None
            before, after = _char_class(before_ch), _char_class(after_ch)
            opens = STRONG_OPEN in delimiters or EM_OPEN in delimiters
            closes = STRONG_CLOSE in delimiters or EM_CLOSE in delimiters
            if len(delimiters) > 1:
                # Stacked delimiters (``***``, ``****``) bring in the rule of 3 (§6.2, rules 9–10):
                # write the outer pair as HTML and look again; a pair of a mixed run always.
                if opens and closes:
                    to_html.extend(range(start, end))
                else:
                    to_html.append(start if opens else end - 1)
                continue
            if (not opens or _left_flanking(before, after)) and (
                not closes or _right_flanking(before, after)
            ):
                continue
            if opens and not closes and _movable(after_ch) and text[end + 1 : end + 2] not in _CLOSERS_SET:
                text = text[:start] + after_ch + delimiters + text[end + 1 :]
                changed = True
            elif (
                closes
                and not opens
                and _movable(before_ch)
                and text[start - 2 : start - 1] not in _OPENERS_SET
                and text[start - 2 : start - 1] != "\\"
            ):
                text = text[: start - 1] + delimiters + before_ch + text[end:]
                changed = True
            else:
                to_html.extend(range(start, end))
        if to_html:
            text = _pairs_to_html(text, to_html)
            changed = True
        if not changed:
            return text
    return _pairs_to_html(text, [i for i, ch in enumerate(text) if "\ufdd0" <= ch <= "\ufdd3"])


_OPENERS_SET = frozenset(_OPENERS)
# ASCII punctuation that is never Markdown syntax next to text and that escape_text never escapes.
_MOVABLE_ASCII = frozenset(":,.;?\"'%")  # not "!": it starts an image
_CLOSERS_SET = frozenset(STRONG_CLOSE + EM_CLOSE)


def _pairs_to_html(text: str, positions: list[int]) -> str:
    """Write the delimiters at ``positions`` and their partners as raw HTML tags."""
    partner: dict[int, int] = {}
    stack: list[int] = []
    for index, ch in enumerate(text):
        if ch in _OPENERS_SET:
            stack.append(index)
        elif ch in _CLOSERS_SET and stack:
            opener = stack.pop()
            partner[opener], partner[index] = index, opener
    chars = list(text)
    for index in positions:
        for i in (index, partner.get(index, index)):
            chars[i] = _TO_HTML.get(chars[i], chars[i])
    return "".join(chars)
