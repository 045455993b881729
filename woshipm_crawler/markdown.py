"""Article body HTML → CommonMark (GFM pipe tables), losing no text and adding none.

``to_markdown(body_html, base_url)`` converts an HTML body; ``tree_to_markdown(body, base_url)`` converts
the cleaned body tree the article parser made (``parse.article``), restructuring it in place, so an
article is parsed once from its page to its Markdown. The contract, tested in tests/test_markdown.py:
rendering the Markdown (markdown-it-py, ``commonmark`` + ``table``) and taking its text with
``woshipm_crawler.textmodel.html_to_text`` gives, after ``normalize_ws``, the text of ``body_html``.

Three stages:

1. **lxml pre-pass** (``prepare``): cheap structural fixes, so that the tree markdownify walks has the
   paragraphs text.py sees, and nothing else.

   - comments, processing instructions (Word's ``<?xml:namespace …>``) and text-less elements
     (``script``, ``style``…) go, their tails stay; attributes we never read go (WeChat's ``style`` is
     most of a body, and BeautifulSoup pays for every byte);
   - ``fix_list_nesting``: ``<ul><li>a</li><ul>…</ul></ul>`` → the inner list moves into the ``li``;
   - ``normalize_whitespace``: every text node is rewritten with text.py's white-space rule over the
     paragraphs text.py sees, so a source newline between two CJK characters disappears even when it
     falls between ``<strong>`` and its neighbour, and ``&nbsp;`` runs become one space;
   - ``restructure``: blocks inside inline elements, table cells and ``pre`` become ``span`` (text.py
     flattens them); blocks inside headings too, with a space each side (text.py makes them paragraphs
     of their own); a ``p`` holding blocks becomes a ``div``; stray text in a ``tr`` goes (text.py
     ignores it); text and captions loose in a ``table`` move in front of it; ``tt`` becomes ``code``.
     Last, every run of inline content directly in a container block (``div``, ``section``, ``li``,
     ``blockquote``, the body…) is wrapped in an ``<md-run>`` element, so that each paragraph — a
     ``p``, a heading, a table cell or an ``md-run`` — is one element whose hook can finish it.

   BeautifulSoup's tree is then built from the lxml tree directly (``_LxmlTreeBuilder``, a bs4 tree
   builder fed with the tree), without serialising and parsing the body again. Sibling paragraphs
   holding only text and ``<br>`` go in as one childless ``<md-plain>`` holding their texts:
   markdownify would only escape and join them, which ``convert_md_plain`` does the same way.

2. **markdownify** (``WoshipmConverter``): the tree walk, white space next to blocks, block spacing,
   lists (``-`` bullets, numbering, nesting indentation), blockquote prefixes, ATX headings, ``---``.
   Our hooks supply what markdownify does differently from what we need:

   - inline text: ``escape`` is minimal (below); bold/italic are emitted as sentinel characters and
     ``<br>`` as ``BREAK``, settled per paragraph by ``finish_inline`` in the paragraph hooks once the
     neighbouring characters are final;
   - links and images: the URL passes ``site.safe_url`` (http(s) only, absolute; a link without one
     keeps its text, an image without one goes); images take it from ``src`` (lazy ``data-src``…
     already resolved by ``parse.tree.real_image_url`` in the pre-pass), kept in headings and cells
     (markdownify writes their alt text there);
   - code spans and fences with a delimiter longer than any backtick run inside, ``language-x``;
   - tables: cells and rows come back to ``convert_table`` as sentinel-separated strings; the first row
     is always the header row; ``colspan=N`` adds N-1 empty cells; short rows are padded;
   - list items are numbered with a counter per list (markdownify counts previous siblings per item,
     quadratic in the list length); empty items are dropped without taking a number;
   - ``q``, ``del``, ``s``, ``sub``, ``sup``, ``video`` keep their text only: CommonMark has no syntax
     for them and markdownify's quotes/``~~`` would be text after rendering.

3. **post-pass** (``postprocess``): collapse blank-line runs (code blocks excepted) to one.

Choices:

- Hard break: two spaces + newline (CommonMark §6.7, first form; the library's header does the same).
  The backslash form is not honoured by marked-style renderers (HonKit's kramed shows the backslash).
  Runs of ``<br>`` collapse to one break; breaks at the edges of a paragraph are dropped (the spaces
  would be nothing there); no other line ends in white space.
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
  markers (``1.``, ``#``, ``-``, ``>``, ``=``…) are escaped per output line. Every escape renders the
  same in CommonMark and in marked-style renderers (HonKit's kramed), which pass raw HTML and honour a
  backslash only before ``\\ ` * _ { } [ ] ( ) # + - . ! > ~ |``: elsewhere text gets a character
  reference. ``<`` that could open a tag becomes ``&lt;``, an entity-like ``&x;`` becomes ``&amp;x;``,
  GitBook/Nunjucks openers ``{%``, ``{{``, ``{#`` become ``{&#37;``, ``{\\{``, ``{&#35;``, a ``|`` in a
  cell ``&#124;``, a line of ``=`` starts with ``&#61;``, and every ``[`` of text is ``\\[``. So a text
  that shows HTML or Markdown link syntax is text under any of them, never a tag or a link.
- ``<pre>``: fenced block, language from ``language-x``/``lang-x``, fence longer than any backtick run
  inside; ``<br>`` inside ``<pre>`` becomes a newline (text.py ignores it: see the report).
"""

from __future__ import annotations

import re
import unicodedata

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.builder import HTMLTreeBuilder
from lxml import etree
from markdownify import (
    ATX,
    BACKSLASH,
    STRIP,
    MarkdownConverter,
    re_extract_newlines,
    re_newline_whitespace,
    re_whitespace,
)

from woshipm_crawler.parse.tree import drop_keeping_tail, element_text, real_image_url, strip_attributes
from woshipm_crawler.site import safe_url
from woshipm_crawler.textmodel import BLOCK_TAGS, CJK_BREAK_RE, SKIP_TAGS, SPACE_RE

HEADING_LEVELS = {f"h{n}": n for n in range(1, 7)}
STRONG_TAGS = frozenset({"strong", "b"})
EM_TAGS = frozenset({"em", "i"})
CELL_TAGS = frozenset({"td", "th"})
TABLE_SECTION_TAGS = frozenset({"thead", "tbody", "tfoot"})
LIST_TAGS = frozenset({"ul", "ol"})
# The pre-pass wraps each paragraph of loose inline content in this (unknown to HTML, so the parser
# never closes or moves it); ``WoshipmConverter.convert_md_run`` finishes it as a paragraph.
RUN_TAG = "md-run"
# Blocks whose direct inline content is a paragraph of its own (text._collect), among other blocks.
CONTAINER_TAGS = (BLOCK_TAGS | {RUN_TAG}) - {
    "p", "pre", "hr", "table", "tr", "thead", "tbody", "tfoot", *HEADING_LEVELS
}  # fmt: skip
_SEPARATING_TAGS = BLOCK_TAGS | {RUN_TAG}
# Paragraphs whose content, when it is text and <br> only, needs nothing of the tree: a run of such
# sibling paragraphs goes into BeautifulSoup's tree as one childless PLAIN_RUN_TAG holding their texts
# (``_Tag.plain_paragraphs``). Most paragraphs of an article are such.
PLAIN_TEXT_TAGS = frozenset({"p", RUN_TAG})
PLAIN_RUN_TAG = "md-plain"
PlainParagraph = tuple[str, list[str | None]]  # (tag, its texts in order, None for each <br>)

# Sentinels for emphasis delimiters while a paragraph is assembled: Unicode noncharacters, never text.
STRONG_OPEN, STRONG_CLOSE, EM_OPEN, EM_CLOSE = "\ufdd0", "\ufdd1", "\ufdd2", "\ufdd3"
# The same pairs settled as raw HTML (the fallback): they count as punctuation next to a delimiter.
HTML_STRONG_OPEN, HTML_STRONG_CLOSE, HTML_EM_OPEN, HTML_EM_CLOSE = "\ufdd4", "\ufdd5", "\ufdd6", "\ufdd7"
BREAK = "\x00"  # a <br> while a paragraph is assembled
HARD_BREAK = "  \n"  # what it becomes in a paragraph
# Table assembly: the end of a cell and of a row, between the td/tr hooks and ``convert_table``.
CELL_END, ROW_END = "\ufdd8", "\ufdd9"
# An empty line inside a code block, so the blank-line collapse of the post-pass leaves it alone.
CODE_BLANK = "\ufdda"
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
_VISIBLE_RE = re.compile("[^ \x00\ufdd0-\ufdd7]")  # anything a reader sees: not space, break, delimiter
# Characters the input may not carry: our sentinels, NUL and the C0 controls lxml rejects.
_FORBIDDEN_INPUT_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufdd0-\ufdda]")
# Plain lxml elements: lxml.html's per-element class lookup is slow and buys nothing here.
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
# Where a backslash escape would do in CommonMark but other renderers (marked, HonKit's kramed) ignore
# it, text gets a character reference instead, which every renderer decodes as text: "<" that could
# open a tag, an autolink or a comment (at the end of a text node too: the next node may start one),
# "&" that could start a reference, "%" of a template opener, "|" in a table cell, "=" starting a line.
_TAG_START_RE = re.compile(r"<(?=[A-Za-z/!?]|\Z)")
_ENTITY_RE = re.compile(r"&(?=#?[A-Za-z0-9]+;|\Z)")
LT, AMP, PERCENT, HASH, PIPE, EQUALS = "&lt;", "&amp;", "&#37;", "&#35;", "&#124;", "&#61;"
# The second character of a GitBook (Nunjucks) template opener: {{ }}, {% %}, {# #}.
_TEMPLATE_RE = re.compile(r"(?<=\{)([{%#])")
_TEMPLATE_SECOND = frozenset("{%#")
_CLOSE_BRACKET_RE = re.compile(r"\](?=[(\[:]|$)")  # "](" makes a link, "]:" a definition
# Line starts that would open a block (§4.1–4.4, §5.1–5.3). Lines are stripped, so no indentation.
_LINE_START_RE = re.compile(r"#{1,6}(?=[ \t]|$)|[-+*](?=[ \t]|$)|>|~~~|(?:[-_=*][ \t]*)+$")
_ORDERED_START_RE = re.compile(r"(\d{1,9})([.)])(?=[ \t]|$)")
_BACKTICK_RUN_RE = re.compile(r"`+")
_LANGUAGE_RE = re.compile(r"(?:^|\s)(?:language|lang)-([\w+#.-]+)")
_BLANK_LINES_RE = re.compile(r"\n{3,}")
_CODE_BLANK_RE = re.compile(f"[ ]*{CODE_BLANK}")  # with the indentation a list item gave it
_URL_UNSAFE = {
    " ": "%20",
    '"': "%22",
    "`": "%60",
    "(": "%28",
    ")": "%29",
    "<": "%3C",
    ">": "%3E",
    "{": "%7B",
    "}": "%7D",
    "\n": "",
    "\t": "",
}
_URL_UNSAFE_RE = re.compile(r'[ "`()<>{}\n\t]')



def neutralise_templates(text: str) -> str:
    """Break every GitBook template opener (``{%``, ``{{``, ``{#``) with a backslash: ``{\\%``.

    A backslash before ASCII punctuation renders as the bare character in CommonMark, so readers see
    the text unchanged while GitBook no longer sees a tag. Idempotent: ``{\\%`` has no opener left.
    """
    return _TEMPLATE_RE.sub(r"\\\1", text)


_TEMPLATE_REFERENCES = {"%": PERCENT, "#": HASH, "{": "\\{"}


def _break_template_opener(match: re.Match) -> str:
    """In text: ``{%`` becomes ``{&#37;`` (a backslash before ``%`` stays visible in some renderers),
    ``{#`` ``{&#35;`` (kramed drops a ``{#…}`` it sees in a heading, escaped or not), ``{{`` ``{\\{``."""
    return _TEMPLATE_REFERENCES[match.group(1)]


def to_markdown(body_html: str, base_url: str | None = None) -> str:
    """The body as CommonMark ending in one newline ("" for a body without content)."""
    if not body_html or not body_html.strip():
        return ""
    root = parse_fragment(body_html)
    if root is None:
        return ""
    for img in root.iter("img"):
        real = real_image_url(img)
        if real:
            img.set("src", real)
        elif "src" in img.attrib:
            del img.attrib["src"]
    strip_attributes(root)
    return tree_to_markdown(root, base_url)


def tree_to_markdown(root, base_url: str | None = None) -> str:
    """``root``'s content as CommonMark ending in one newline; ``root`` is changed in place.

    ``root`` is a body whose attributes are already pruned (``parse.tree.strip_attributes``) and
    whose images carry their real URL in ``src``, as the article parser's cleaned body does.
    """
    prepare(root)
    soup = BeautifulSoup(
        _TreeMarkup(root), builder=_LxmlTreeBuilder(multi_valued_attributes=None), element_classes={Tag: _Tag}
    )
    markdown = postprocess(WoshipmConverter(base_url=base_url).convert_soup(soup))
    return markdown + "\n" if markdown else ""


def parse_fragment(body_html: str):
    """The fragment's container element, parsed as text.py parses it (libxml2, ``<html><body>`` around)."""
    document = etree.HTML(f"<html><body>{_FORBIDDEN_INPUT_RE.sub('', body_html)}</body></html>", _PARSER)
    return None if document is None else document.find("body")


class _TreeMarkup(str):
    """What BeautifulSoup is given: an lxml tree, carried past its checks for string markup."""

    def __new__(cls, root) -> _TreeMarkup:
        markup = super().__new__(cls, "<lxml tree>")
        markup.root = root
        return markup


class _LxmlTreeBuilder(HTMLTreeBuilder):
    """A bs4 tree builder whose "markup" is an lxml tree: it reports the tree's elements and texts to
    BeautifulSoup as a parser would, which costs a fraction of serialising and parsing the body again."""

    NAME = "woshipm-lxml-tree"
    features = [NAME]

    def prepare_markup(self, markup, user_specified_encoding=None, document_declared_encoding=None,
                       exclude_encodings=None):
        yield markup, None, None, False

    def feed(self, markup) -> None:
        self._feed_children(markup.root)

    def _feed_children(self, element) -> None:
        soup = self.soup
        plain: list[PlainParagraph] = []  # the current run of plain paragraphs
        for child in element:
            tag = child.tag
            text = child.text
            if tag in PLAIN_TEXT_TAGS and not child.tail and (pieces := _plain_pieces(child)):
                plain.append((tag, pieces))
                continue
            if plain:
                self._feed_plain_run(plain)
                plain = []
            soup.handle_starttag(tag, None, None, dict(child.attrib) if child.attrib else {})
            if text:
                soup.handle_data(text)
            if len(child):
                self._feed_children(child)
            soup.handle_endtag(tag)
            if child.tail:
                soup.handle_data(child.tail)
        if plain:
            self._feed_plain_run(plain)

    def _feed_plain_run(self, paragraphs: list[PlainParagraph]) -> None:
        self.soup.handle_starttag(PLAIN_RUN_TAG, None, None, {}).plain_paragraphs = paragraphs
        self.soup.handle_endtag(PLAIN_RUN_TAG)


def _plain_pieces(paragraph) -> list[str | None] | None:
    """The texts of a paragraph holding only text and ``<br>`` (None for each ``<br>``), in order; None
    for any other paragraph, or one with a text node that needs the tree: white space only (markdownify
    may drop it) or starting like a GitBook opener (``process_text`` looks behind such a node)."""
    pieces = [paragraph.text] if paragraph.text else []
    for child in paragraph:
        if child.tag != "br" or child.text or len(child):
            return None
        pieces.append(None)
        if child.tail:
            pieces.append(child.tail)
    texts = [piece for piece in pieces if piece is not None]
    if not texts:
        return None
    for text in texts:
        start = text.lstrip()[:1]
        if not start or start in _TEMPLATE_SECOND:
            return None
    return pieces


# --- 1. lxml pre-pass ----------------------------------------------------------------------------------


def prepare(root) -> None:
    """All of the pre-pass, in place: the tree afterwards has one element per paragraph (see above)."""
    drop_non_content(root)
    fix_list_nesting(root)
    normalize_whitespace(root)
    restructure(root)


def drop_non_content(root) -> None:
    """Remove comments, processing instructions and text-less elements (tails kept), and the
    characters the conversion uses as sentinels (text that never came through ``parse_fragment``)."""
    # One look at all the text first: a body holding such a character is rare.
    forbidden = bool(_FORBIDDEN_INPUT_RE.search(element_text(root)))
    for element in list(root.iter()):
        tag = element.tag
        if not isinstance(tag, str) or (tag in SKIP_TAGS and tag != "img"):
            drop_keeping_tail(element)
            continue
        if not forbidden:
            continue
        if element.text and _FORBIDDEN_INPUT_RE.search(element.text):
            element.text = _FORBIDDEN_INPUT_RE.sub("", element.text)
        if element.tail and _FORBIDDEN_INPUT_RE.search(element.tail):
            element.tail = _FORBIDDEN_INPUT_RE.sub("", element.tail)


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


# --- white space, exactly as text.py sees it ---------------------------------------------------------------


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
    return SPACE_RE.sub(" ", CJK_BREAK_RE.sub("", window))[1:-1]


# What ``_rewrite_run`` changes: any white space of SPACE_RE but a lone space.
_REWRITTEN_SPACE_RE = re.compile(r"[\t\r\n\f\v\u00a0\u3000\u200b]| {2}")


def _rewrite_run(run: list) -> None:
    """Apply text.clean_inline's white-space rule to a paragraph spread over several text nodes.

    A white-space run may span nodes (``重点\\n</strong>内容``): its replacement ("" or " ") goes to the
    node where it starts, the rest of it is deleted.
    """
    if not run:
        return
    strings = ["\x00" if seg is None else getattr(seg[0], seg[1]) for seg in run]
    joined = "".join(strings)
    if not _REWRITTEN_SPACE_RE.search(joined):  # the common case: single spaces at most
        run.clear()
        return
    if SPACE_RE.fullmatch(joined):  # white space only (between blocks): one space, in the first node
        for index, (node, attribute) in enumerate(run):
            setattr(node, attribute, "" if index else " ")
        run.clear()
        return
    replacements = []
    for match in SPACE_RE.finditer(joined):
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


# --- structure: one element per paragraph --------------------------------------------------------------


def restructure(root) -> None:
    """Give the (normalized) tree the block structure text.py reads; see the module docstring."""
    _restructure_container(root)


def _restructure_container(element) -> None:
    for child in list(element):  # a table may put a run in front of itself
        tag = child.tag
        if tag == "p" and any(grandchild.tag in BLOCK_TAGS for grandchild in child):
            child.tag = tag = "div"  # libxml2 leaves HTML5 blocks (section…) inside a p
        if tag in CONTAINER_TAGS:
            _restructure_container(child)
        elif tag in HEADING_LEVELS:
            _flatten(child, spaced=True)
        elif tag == "table" or tag in TABLE_SECTION_TAGS:
            _restructure_table(child)
        elif tag == "tr":
            _restructure_row(child)
        elif tag in CELL_TAGS:  # a cell outside a row: text.py spaces its text into the paragraph
            _rename_to_span(child, spaced=True)
            _flatten(child)
        else:  # p, pre, inline elements
            if tag == "tt":
                child.tag = "code"
            _flatten(child)
    _wrap_inline_runs(element)


def _flatten(element, spaced: bool = False) -> None:
    """Turn the blocks inside ``element`` into spans (text.py reads them as inline text there).

    ``spaced``: inside a heading, where text.py makes each block a paragraph, i.e. a space once
    normalized; inside an inline element it does not.
    """
    for child in element:
        tag = child.tag
        if tag in BLOCK_TAGS or tag in CELL_TAGS:
            _rename_to_span(child, spaced)
            _flatten(child, spaced)
        else:
            if tag == "tt":
                child.tag = "code"
            _flatten(child)


def _rename_to_span(element, spaced: bool) -> None:
    element.tag = "span"
    if spaced:
        element.text = " " + (element.text or "")
        element.tail = " " + (element.tail or "")


def _restructure_table(table) -> None:
    """Rows keep only their cells; text and captions loose in the table move in front of it."""
    loose: list = []
    _collect_table(table, loose)
    if any(isinstance(piece, str) and piece.strip() or not isinstance(piece, str) for piece in loose):
        run = etree.Element(RUN_TAG)
        for piece in loose:
            _append_piece(run, piece)
            if not isinstance(piece, str):
                _flatten(piece)
        table.addprevious(run)


def _collect_table(element, loose: list) -> None:
    if element.text:
        loose.append(element.text)
        element.text = None
    for child in list(element):
        tail, child.tail = child.tail, None
        if child.tag == "tr":
            _restructure_row(child)
        elif child.tag in TABLE_SECTION_TAGS:
            _collect_table(child, loose)
        else:
            element.remove(child)
            loose.append(child)
        if tail:
            loose.append(tail)


def _restructure_row(row) -> None:
    row.text = None  # text.py reads a row as its cells' texts only
    for child in list(row):
        child.tail = None
        if child.tag in CELL_TAGS:
            _flatten(child)
        else:
            row.remove(child)


def _wrap_inline_runs(container) -> None:
    """Wrap each run of inline content (text, inline elements) between blocks in an ``md-run``.

    White space between blocks is no paragraph (text.py) and is dropped.
    """
    pieces: list = [container.text] if container.text else []
    has_inline = bool(container.text and container.text.strip())
    for child in container:
        pieces.append(child)
        if child.tail:
            pieces.append(child.tail)
            has_inline = has_inline or bool(child.tail.strip())
        has_inline = has_inline or child.tag not in _SEPARATING_TAGS
    container.text = None
    if not has_inline:
        for child in container:
            child.tail = None
        return
    del container[:]
    run: list = []
    for piece in pieces:
        if not isinstance(piece, str) and piece.tag in _SEPARATING_TAGS:
            _close_run(container, run)
            piece.tail = None
            container.append(piece)
        else:
            run.append(piece)
    _close_run(container, run)


def _close_run(container, run: list) -> None:
    if any(not isinstance(piece, str) or piece.strip() for piece in run):
        wrapper = etree.SubElement(container, RUN_TAG)
        for piece in run:
            _append_piece(wrapper, piece)
    run.clear()


def _append_piece(parent, piece) -> None:
    """Append a text (to the text of ``parent`` or the tail of its last child) or an element."""
    if isinstance(piece, str):
        if len(parent):
            last = parent[-1]
            last.tail = (last.tail or "") + piece
        else:
            parent.text = (parent.text or "") + piece
    else:
        piece.tail = None
        parent.append(piece)


# --- 2. markdownify ------------------------------------------------------------------------------------


class _Tag(Tag):
    """bs4's Tag with a direct ``find_parent(name)``: markdownify asks ``find_parent("pre")`` for every
    element, and bs4's general matcher made that 40% of the conversion.

    ``plain_paragraphs``: on a PLAIN_RUN_TAG, the (tag, texts) of the sibling paragraphs it stands for
    (``_LxmlTreeBuilder``); ``WoshipmConverter.convert_md_plain`` finishes them as markdownify and our
    hooks would have, without a tag and a text node each to build and walk.
    """

    plain_paragraphs: list[PlainParagraph] | None = None

    def find_parent(self, name=None, attrs=None, **kwargs):
        if isinstance(name, str) and not attrs and not kwargs:
            parent = self.parent
            while parent is not None:
                if parent.name == name:
                    return parent
                parent = parent.parent
            return None
        return super().find_parent(name, attrs or {}, **kwargs)


class WoshipmConverter(MarkdownConverter):
    """markdownify for a prepared body: paragraphs are finished by ``finish_inline`` in their hooks."""

    class Options(MarkdownConverter.DefaultOptions):
        autolinks = False  # every link is [text](url): an autolink would take no escapes
        bullets = "-"
        escape_asterisks = False  # ``escape`` below decides
        escape_underscores = False
        escape_misc = False
        heading_style = ATX
        newline_style = BACKSLASH
        strip_document = STRIP
        bs4_options = "lxml"

    def __init__(self, base_url: str | None = None, **options) -> None:
        super().__init__(**options)
        self.base_url = base_url
        self._next_numbers: dict[int, int] = {}  # id(ol) → number of its next non-empty item

    # inline ------------------------------------------------------------------------------------------

    def escape(self, text, parent_tags):
        return escape_text(text, link="a" in parent_tags, cell=_in_cell(parent_tags))

    def process_text(self, el, parent_tags=None):
        text = super().process_text(el, parent_tags=parent_tags)
        # A GitBook opener split over two text nodes (``{<span>{</span>``): escape_text sees one node
        # at a time, so break the pair here. Looked up only for the rare node starting so.
        if text[:1] in _TEMPLATE_SECOND and parent_tags and "_noformat" not in parent_tags:
            previous = _previous_text(el)
            if previous is not None and previous.endswith("{"):
                text = _TEMPLATE_REFERENCES[text[0]] + text[1:]
        return text

    def plain_paragraph_text(self, tag: str, pieces: list[str | None], parent_tags) -> str:
        """What ``process_tag`` makes of a ``tag`` paragraph's texts and ``<br>`` (None) before
        ``convert_p``: ``process_text`` of each text (``wrap`` off), ``convert_br`` of each break."""
        tags = parent_tags | {tag}
        strip = tag == "p"  # markdownify strips white space inside a p, not inside a tag it does not know
        last = len(pieces) - 1
        out = []
        for index, text in enumerate(pieces):
            if text is None:
                out.append("\n" if "_noformat" in tags else BREAK)
                continue
            # The pre-pass normalized the white space already: the regexes have nothing to do, mostly.
            if "pre" not in tags and ("\n" in text or "\r" in text or "\t" in text or "  " in text):
                text = re_whitespace.sub(" ", re_newline_whitespace.sub("\n", text))
            if "_noformat" not in tags:
                text = self.escape(text, tags)
            if strip and index == 0:
                text = text.lstrip(" \t\r\n")
            if strip and index == last:
                text = text.rstrip()
            out.append(text)
        return "".join(out)

    def convert_br(self, el, text, parent_tags):
        return "\n" if "_noformat" in parent_tags else BREAK

    def convert_strong(self, el, text, parent_tags):
        if (
            "_noformat" in parent_tags
            or not STRONG_TAGS.isdisjoint(parent_tags)
            or not _VISIBLE_RE.search(text)
        ):
            return text
        return STRONG_OPEN + text + STRONG_CLOSE

    convert_b = convert_strong

    def convert_em(self, el, text, parent_tags):
        if "_noformat" in parent_tags or not EM_TAGS.isdisjoint(parent_tags) or not _VISIBLE_RE.search(text):
            return text
        return EM_OPEN + text + EM_CLOSE

    convert_i = convert_em

    def convert_a(self, el, text, parent_tags):
        if "_noformat" in parent_tags or "a" in parent_tags:
            return text
        href = safe_url(el.get("href"), self.base_url)
        if not href or not text.strip(" " + BREAK):
            return text
        return f"[{text}]({_safe_url(href)})"

    def convert_img(self, el, text, parent_tags):
        if "_noformat" in parent_tags:
            return ""
        src = safe_url(el.get("src"), self.base_url)
        if not src:
            return ""
        alt = " ".join((el.get("alt") or "").split())
        alt = escape_text(alt, link=True, cell=_in_cell(parent_tags)) if alt else ""
        return f"![{alt}]({_safe_url(src)})"

    def convert_code(self, el, text, parent_tags):
        if "_noformat" in parent_tags:
            return text
        return code_spans(text, cell=_in_cell(parent_tags))

    convert_kbd = convert_samp = convert_code

    def convert_q(self, el, text, parent_tags):
        return text  # markdownify adds quotes: text the source does not have

    # No CommonMark syntax for these; markdownify's "~~" would render as text.
    convert_del = convert_s = convert_sub = convert_sup = convert_video = convert_q

    # paragraphs --------------------------------------------------------------------------------------

    def convert_p(self, el, text, parent_tags):
        return self._paragraph(el, finish_inline(text, "paragraph"))

    convert_md_run = convert_p

    def convert_md_plain(self, el, text, parent_tags):
        """A run of plain paragraphs, joined as markdownify joins the blocks it converts (``process_tag``)."""
        paragraphs = [
            paragraph
            for tag, pieces in el.plain_paragraphs
            if (paragraph := finish_inline(self.plain_paragraph_text(tag, pieces, parent_tags), "paragraph"))
        ]
        if not paragraphs:
            return ""
        if any(paragraph[0] == "\n" or paragraph[-1] == "\n" for paragraph in paragraphs):
            # Rare (a newline at the edge of an md-run): markdownify's rule for the newlines that meet.
            blocks = ["\n\n" + paragraph + "\n\n" for paragraph in paragraphs[:-1]]
            return join_blocks([*blocks, self._paragraph(el, paragraphs[-1])])
        # Otherwise two paragraphs always meet with one blank line.
        return "".join("\n\n" + paragraph for paragraph in paragraphs[:-1]) + self._paragraph(el, paragraphs[-1])

    def _paragraph(self, el, text: str) -> str:
        if not text:
            return ""
        # A list nested in an item stays tight under the item's text: one newline, not a blank line.
        if el.parent is not None and el.parent.name == "li":
            following = el.find_next_sibling()
            if following is not None and following.name in LIST_TAGS:
                return "\n\n" + text + "\n"
        return "\n\n" + text + "\n\n"

    def convert_hN(self, n, el, text, parent_tags):
        text = finish_inline(text, "heading")
        if not text:
            return ""
        # A "#" at the end would be read as (part of) the closing sequence (§4.2; kramed takes any
        # trailing "#", escaped or not): the last one is a reference.
        if text.endswith("#"):
            text = text[:-1] + HASH
        return super().convert_hN(n, el, text, parent_tags)

    def convert_pre(self, el, text, parent_tags):
        """A fenced code block; the fence is longer than any backtick run inside (§4.5)."""
        children = el.find_all(True, recursive=False)
        code = children[0] if len(children) == 1 and children[0].name == "code" else el
        match = _LANGUAGE_RE.search(code.get("class") or "") or _LANGUAGE_RE.search(el.get("class") or "")
        language = match.group(1) if match else ""
        text = text.replace("\u00a0", " ").strip("\n")
        if not text.strip():
            return ""
        text = "\n".join(line.rstrip() or CODE_BLANK for line in text.split("\n"))
        longest = max((len(run) for run in _BACKTICK_RUN_RE.findall(text)), default=0)
        fence = "`" * max(3, longest + 1)
        return f"\n\n{fence}{language}\n{text}\n{fence}\n\n"

    # containers --------------------------------------------------------------------------------------

    # Blocks markdownify leaves inline, or renders with syntax CommonMark lacks (dd's ":").
    convert_figure = convert_figcaption = convert_center = convert_header = convert_footer = (
        MarkdownConverter.convert_div
    )
    convert_aside = convert_main = convert_nav = convert_dl = convert_dt = convert_dd = (
        MarkdownConverter.convert_div
    )

    def convert_blockquote(self, el, text, parent_tags):
        return super().convert_blockquote(el, text, parent_tags) if text.strip() else ""

    def convert_li(self, el, text, parent_tags):
        text = text.strip()
        if not text:
            return ""
        parent = el.parent
        if parent is not None and parent.name == "ol":
            number = self._next_numbers.get(id(parent))
            if number is None:
                start = (parent.get("start") or "").strip()
                number = int(start) if start.isdigit() and len(start) <= 9 else 1
            self._next_numbers[id(parent)] = number + 1
            marker = f"{number}."
        else:
            marker = "-"
        indent = " " * (len(marker) + 1)
        lines = text.split("\n")
        return (
            "\n".join([f"{marker} {lines[0]}"] + [indent + line if line else "" for line in lines[1:]]) + "\n"
        )

    # tables ------------------------------------------------------------------------------------------

    def convert_td(self, el, text, parent_tags):
        span = (el.get("colspan") or "").strip()
        extra = min(int(span), 100) - 1 if span.isdigit() and int(span) > 1 else 0
        return finish_inline(text, "cell") + CELL_END * (1 + extra)

    convert_th = convert_td

    def convert_tr(self, el, text, parent_tags):
        if CELL_END not in text:
            return ""
        if "table" not in parent_tags:  # a stray row: text.py reads its cells as one paragraph
            row = " ".join(cell for cell in text.split(CELL_END) if cell)
            return "\n\n" + row + "\n\n" if row else ""
        return text + ROW_END

    def convert_table(self, el, text, parent_tags):
        """A pipe table; the first row is the header row, whether or not the source has one."""
        rows = [row.split(CELL_END)[:-1] for row in text.split(ROW_END)[:-1]]
        rows = [cells for cells in rows if cells]
        if not rows:
            return ""
        width = max(len(cells) for cells in rows)
        lines = []
        for index, cells in enumerate(rows):
            cells = cells + [""] * (width - len(cells))
            lines.append("| " + " | ".join(cells) + " |")
            if index == 0:
                lines.append("|" + " --- |" * width)
        return "\n\n" + "\n".join(lines) + "\n\n"


def join_blocks(blocks: list[str]) -> str:
    """Converted sibling blocks joined as markdownify's ``process_tag`` joins its children's strings:
    the newlines where two meet become the larger count of the two, at most two."""
    joined = [""]
    for block in blocks:
        leading, content, trailing = re_extract_newlines.match(block).groups()
        if joined[-1] and leading:
            leading = "\n" * min(2, max(len(joined.pop()), len(leading)))
        joined.extend((leading, content, trailing))
    return "".join(joined)


def _previous_text(el) -> str | None:
    """The text before ``el`` in document order (``find_previous(string=True)``), counting the
    texts of a PLAIN_RUN_TAG where their nodes would be."""
    for node in el.previous_elements:
        if isinstance(node, NavigableString):
            return node
        if isinstance(node, _Tag) and node.plain_paragraphs:
            return next(text for text in reversed(node.plain_paragraphs[-1][1]) if text is not None)
    return None


def _in_cell(parent_tags) -> bool:
    return "td" in parent_tags or "th" in parent_tags


def code_spans(text: str, cell: bool = False) -> str:
    """Code spans, one per line (a code span cannot hold a hard break)."""
    spans = []
    for line in text.split("\n"):
        if cell:
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


# --- 3. post-pass --------------------------------------------------------------------------------------


def postprocess(markdown: str) -> str:
    """One blank line at most between blocks; code blocks keep their own empty lines."""
    if "\n\n\n" in markdown:
        markdown = _BLANK_LINES_RE.sub("\n\n", markdown)
    if CODE_BLANK in markdown:
        markdown = _CODE_BLANK_RE.sub("", markdown)
    return markdown


def escape_text(text: str, link: bool = False, cell: bool = False) -> str:
    """Escape what could start inline syntax here; leave prose alone otherwise.

    The result renders as ``text`` in CommonMark and in marked-style renderers (HonKit's kramed), raw
    HTML passed or not: no tag, link or template opener can come out of text."""
    if not _NEEDS_ESCAPE_RE.search(text):
        return text
    text = text.replace("\\", "\\\\").replace("`", "\\`")
    if "*" in text:
        text = _ASTERISK_RE.sub(r"\\*", text)
    if "_" in text:
        text = _UNDERSCORE_RE.sub(r"\\_", text)
    if "&" in text:  # before "<" and "{", which bring their own "&"
        text = _ENTITY_RE.sub(AMP, text)
    if "<" in text:
        text = _TAG_START_RE.sub(LT, text)
    if "{" in text:
        text = _TEMPLATE_RE.sub(_break_template_opener, text)
    # Every "[" of text is escaped: renderers that do not match brackets as CommonMark does (marked,
    # kramed) would otherwise make a link, a footnote or a definition of ``[x\](javascript:…)``.
    if "[" in text:
        text = text.replace("[", "\\[")
    if link:
        text = text.replace("]", "\\]")
    elif "]" in text:
        text = _CLOSE_BRACKET_RE.sub(r"\\]", text)
    if cell:
        text = text.replace("|", PIPE)  # GFM renderers split a row at every "|", escaped or not
    return text


def _safe_url(url: str) -> str:
    """A link destination that needs no angle brackets and holds no GitBook template opener."""
    return _URL_UNSAFE_RE.sub(lambda m: _URL_UNSAFE[m.group()], url)


# --- inline finishing: breaks, line starts, emphasis -------------------------------------------------


def finish_inline(text: str, mode: str) -> str:
    """Turn an assembled inline run into final Markdown.

    ``mode`` is "paragraph" (breaks → hard breaks), "heading" (breaks → spaces) or "cell"
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
    return text.replace(BREAK, "<br>" if mode == "cell" else HARD_BREAK) if BREAK in text else text


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
        return EQUALS + line[1:] if first == "=" else "\\" + line
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
                and not (before_ch == ";" and _REFERENCE_END_RE.search(text, max(0, start - 12), start))
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
_REFERENCE_END_RE = re.compile(r"&#?[A-Za-z0-9]+;\Z")  # its ";" never moves: the reference would break
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
