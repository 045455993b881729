"""The tree walk: markdownify's ``MarkdownConverter`` with our hooks, over a prepared body.

markdownify does the walk, white space next to blocks, block spacing, lists (``-`` bullets, nesting
indentation), blockquote prefixes, ATX headings and ``---``. The hooks supply what we need differently:
minimal escaping (``inline.escape_text``); bold, italic and ``<br>`` as sentinels settled per paragraph
(``finish``); links and images through ``inline.link_destination`` (http(s) only, absolute; a link
without one keeps its text, an image without one goes); code spans and fences longer than any backtick
run inside; pipe tables whose first row is the header row; list items numbered per list, empty items
dropped; ``q``, ``del``, ``s``, ``sub``, ``sup`` and ``video`` as their text only (CommonMark has no
syntax for them).
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, NavigableString, Tag
from markdownify import ATX, BACKSLASH, STRIP, MarkdownConverter

from woshipm_crawler.inline import (
    HASH,
    TEMPLATE_REFERENCES,
    TEMPLATE_SECOND,
    code_span,
    escape_text,
    link_destination,
    longest_backtick_run,
)
from woshipm_crawler.markdown.finish import BREAK, EM_CLOSE, EM_OPEN, STRONG_CLOSE, STRONG_OPEN, finish_inline
from woshipm_crawler.markdown.prepare import RUN_TAG, parse_fragment, prepare
from woshipm_crawler.parse.tree import real_image_url, strip_attributes

STRONG_TAGS = frozenset({"strong", "b"})
EM_TAGS = frozenset({"em", "i"})
LIST_TAGS = frozenset({"ul", "ol"})
# Where markdownify writes text as it is (no escaping, no formatting): inside these.
VERBATIM_TAGS = frozenset({"pre", "code", "kbd", "samp"})
# bs4 turns a string of ASCII white space only into one space or newline, outside these.
_WHITESPACE_KEEPING_TAGS = frozenset({"pre", "textarea"})
_ASCII_SPACES = " \n\t\x0c\r"
# A run of sibling paragraphs (``p``, ``md-run``) that are one plain text each (``_plain``) goes into the
# soup as one childless PLAIN_RUN_TAG, their texts in its PLAIN_TEXTS attribute (separated by BREAK,
# which no text holds): ``convert_md_plain`` escapes and finishes them as markdownify's ``process_text``
# and our ``convert_p`` would have. Most paragraphs are such: the huge page's soup has 226 nodes, not ~1,200.
PARAGRAPH_TAGS = frozenset({"p", RUN_TAG})
PLAIN_RUN_TAG = "md-plain"
PLAIN_TEXTS = "data-md-texts"
_VISIBLE_RE = re.compile("[^ \x00\ufdd0-\ufdd7]")  # anything a reader sees: not space, break, delimiter
# Table assembly: the end of a cell and of a row, between the td/tr hooks and ``convert_table``.
CELL_END, ROW_END = "\ufdd8", "\ufdd9"
# An empty line inside a code block, so the blank-line collapse of the post-pass leaves it alone.
CODE_BLANK = "\ufdda"
_LANGUAGE_RE = re.compile(r"(?:^|\s)(?:language|lang)-([\w+#.-]+)")
_BLANK_LINES_RE = re.compile(r"\n{3,}")
_CODE_BLANK_RE = re.compile(f"[ ]*{CODE_BLANK}")  # with the indentation a list item gave it


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
    markdown = postprocess(WoshipmConverter(base_url=base_url).convert_soup(build_soup(root)))
    return markdown + "\n" if markdown else ""


def build_soup(root) -> BeautifulSoup:
    """BeautifulSoup's tree of ``root``'s content, built from the lxml tree with bs4's tree-editing
    methods (``new_tag``, ``new_string``, ``append``): the tree its lxml parser would make of the same
    markup, without serialising the body and parsing it again."""
    soup = BeautifulSoup("", "lxml", multi_valued_attributes=None, element_classes={Tag: _Tag})
    _append_content(soup, soup, root, keep_whitespace=False)
    return soup


def _append_content(soup: BeautifulSoup, parent, element, keep_whitespace: bool) -> None:
    if element.text:
        parent.append(_new_string(soup, element.text, keep_whitespace))
    plain: list[str] = []  # the texts of the current run of plain paragraphs
    for child in element:
        text = child.text
        if child.tag in PARAGRAPH_TAGS and _plain(text) and not (len(child) or child.attrib or child.tail):
            plain.append(text)
            continue
        if plain:
            parent.append(soup.new_tag(PLAIN_RUN_TAG, attrs={PLAIN_TEXTS: BREAK.join(plain)}))
            plain = []
        tag = soup.new_tag(child.tag, attrs=dict(child.attrib))
        parent.append(tag)
        keep = keep_whitespace or child.tag in _WHITESPACE_KEEPING_TAGS
        _append_content(soup, tag, child, keep)
        if child.tail:
            parent.append(_new_string(soup, child.tail, keep_whitespace))
    if plain:
        parent.append(soup.new_tag(PLAIN_RUN_TAG, attrs={PLAIN_TEXTS: BREAK.join(plain)}))


def _plain(text: str | None) -> bool:
    """Whether a paragraph of this text alone may go into a ``PLAIN_RUN_TAG``: text that markdownify's
    white-space rules and its strip at a ``p``'s edges leave as it is (up to spaces, which
    ``finish_inline`` strips), that is not white space only, and that does not start like the second
    half of a GitBook opener (``process_text`` looks behind such a text)."""
    return bool(
        text
        and "\n" not in text and "\t" not in text and "\r" not in text and "  " not in text
        and text.strip()
        and text.rstrip() == text.rstrip(" ")
        and text.lstrip()[:1] not in TEMPLATE_SECOND
    )  # fmt: skip


def _new_string(soup: BeautifulSoup, text: str, keep_whitespace: bool):
    if not keep_whitespace and not text.strip(_ASCII_SPACES):
        text = "\n" if "\n" in text else " "
    return soup.new_string(text)


class _Tag(Tag):
    """bs4's Tag with a direct ``find_parent(name)``: markdownify asks ``find_parent("pre")`` for every
    element, and bs4's general matcher made that a quarter of the conversion."""

    def find_parent(self, name=None, attrs=None, **kwargs):
        if isinstance(name, str) and not attrs and not kwargs:
            parent = self.parent
            while parent is not None:
                if parent.name == name:
                    return parent
                parent = parent.parent
            return None
        return super().find_parent(name, attrs or {}, **kwargs)


def _plain_texts(el) -> list[str]:
    return el[PLAIN_TEXTS].split(BREAK)


def _previous_text(el) -> str | None:
    """The text before ``el`` in document order (``find_previous(string=True)``), counting the texts of
    a PLAIN_RUN_TAG."""
    for node in el.previous_elements:
        if isinstance(node, NavigableString):
            return node
        if isinstance(node, Tag) and node.name == PLAIN_RUN_TAG:
            return _plain_texts(node)[-1]
    return None


def _verbatim(parent_tags) -> bool:
    return not VERBATIM_TAGS.isdisjoint(parent_tags)


def _in_cell(parent_tags) -> bool:
    return "td" in parent_tags or "th" in parent_tags


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
        if text[:1] in TEMPLATE_SECOND and parent_tags and not _verbatim(parent_tags):
            previous = _previous_text(el)
            if previous is not None and previous.endswith("{"):
                text = TEMPLATE_REFERENCES[text[0]] + text[1:]
        return text

    def convert_br(self, el, text, parent_tags):
        return "\n" if _verbatim(parent_tags) else BREAK

    def convert_strong(self, el, text, parent_tags):
        if (
            _verbatim(parent_tags)
            or not STRONG_TAGS.isdisjoint(parent_tags)
            or not _VISIBLE_RE.search(text)
        ):
            return text
        return STRONG_OPEN + text + STRONG_CLOSE

    convert_b = convert_strong

    def convert_em(self, el, text, parent_tags):
        if _verbatim(parent_tags) or not EM_TAGS.isdisjoint(parent_tags) or not _VISIBLE_RE.search(text):
            return text
        return EM_OPEN + text + EM_CLOSE

    convert_i = convert_em

    def convert_a(self, el, text, parent_tags):
        if _verbatim(parent_tags) or "a" in parent_tags:
            return text
        href = link_destination(el.get("href"), self.base_url)
        if not href or not text.strip(" " + BREAK):
            return text
        return f"[{text}]({href})"

    def convert_img(self, el, text, parent_tags):
        if _verbatim(parent_tags):
            return ""
        src = link_destination(el.get("src"), self.base_url)
        if not src:
            return ""
        alt = " ".join((el.get("alt") or "").split())
        alt = escape_text(alt, link=True, cell=_in_cell(parent_tags)) if alt else ""
        return f"![{alt}]({src})"

    def convert_code(self, el, text, parent_tags):
        if _verbatim(parent_tags):
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
        """Plain paragraphs (``PLAIN_RUN_TAG``): markdownify joins two paragraphs with one blank line."""
        paragraphs = [finish_inline(self.escape(text, parent_tags), "paragraph") for text in _plain_texts(el)]
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
        fence = "`" * max(3, longest_backtick_run(text) + 1)
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
        spans.append(lead + code_span(content) + trail)
    return BREAK.join(spans)


def postprocess(markdown: str) -> str:
    """One blank line at most between blocks; code blocks keep their own empty lines."""
    if "\n\n\n" in markdown:
        markdown = _BLANK_LINES_RE.sub("\n\n", markdown)
    if CODE_BLANK in markdown:
        markdown = _CODE_BLANK_RE.sub("", markdown)
    return markdown
