"""The lxml pre-pass: cheap structural fixes, so that the tree markdownify walks has the paragraphs
textmodel sees, and nothing else; afterwards each paragraph (a ``p``, a heading, a table cell or an
``md-run``) is one element whose converter hook can finish it.

- comments, processing instructions (Word's ``<?xml:namespace …>``) and text-less elements (``script``,
  ``style``…) go, their tails stay;
- ``fix_list_nesting``: ``<ul><li>a</li><ul>…</ul></ul>`` → the inner list moves into the ``li``;
- ``normalize_whitespace``: every text node is rewritten with textmodel's white-space rule over the
  paragraphs it sees, so a source newline between two CJK characters disappears even when it falls
  between ``<strong>`` and its neighbour, and ``&nbsp;`` runs become one space;
- ``restructure``: blocks inside inline elements, table cells and ``pre`` become ``span`` (textmodel
  flattens them); blocks inside headings too, with a space each side (textmodel makes them paragraphs of
  their own); a ``p`` holding blocks becomes a ``div``; stray text in a ``tr`` goes; text and captions
  loose in a ``table`` move in front of it; ``tt`` becomes ``code``. Last, every run of inline content
  directly in a container block (``div``, ``section``, ``li``, ``blockquote``, the body…) is wrapped in
  an ``<md-run>`` element.
"""

from __future__ import annotations

import re

from lxml import etree

from woshipm_crawler.parse.tree import drop_keeping_tail, element_text
from woshipm_crawler.textmodel import BLOCK_TAGS, CJK_BREAK_RE, SKIP_TAGS, SPACE_RE

HEADING_LEVELS = {f"h{n}": n for n in range(1, 7)}
CELL_TAGS = frozenset({"td", "th"})
TABLE_SECTION_TAGS = frozenset({"thead", "tbody", "tfoot"})
# The pre-pass wraps each paragraph of loose inline content in this (unknown to HTML, so the parser
# never closes or moves it); ``WoshipmConverter.convert_md_run`` finishes it as a paragraph.
RUN_TAG = "md-run"
# Blocks whose direct inline content is a paragraph of its own (textmodel._collect), among other blocks.
CONTAINER_TAGS = (BLOCK_TAGS | {RUN_TAG}) - {
    "p", "pre", "hr", "table", "tr", "thead", "tbody", "tfoot", *HEADING_LEVELS
}  # fmt: skip
_SEPARATING_TAGS = BLOCK_TAGS | {RUN_TAG}
# Characters the input may not carry: the converter's sentinels, NUL and the C0 controls lxml rejects.
FORBIDDEN_INPUT_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufdd0-\ufdda]")
# Plain lxml elements: lxml.html's per-element class lookup is slow and buys nothing here.
_PARSER = etree.HTMLParser()


def parse_fragment(body_html: str):
    """The fragment's container element, parsed as textmodel parses it (libxml2, ``<html><body>`` around)."""
    document = etree.HTML(f"<html><body>{FORBIDDEN_INPUT_RE.sub('', body_html)}</body></html>", _PARSER)
    return None if document is None else document.find("body")


def prepare(root) -> None:
    """All of the pre-pass, in place: the tree afterwards has one element per paragraph (see the module docstring)."""
    drop_non_content(root)
    fix_list_nesting(root)
    normalize_whitespace(root)
    restructure(root)


def drop_non_content(root) -> None:
    """Remove comments, processing instructions and text-less elements (tails kept), and the
    characters the conversion uses as sentinels (text that never came through ``parse_fragment``)."""
    # One look at all the text first: a body holding such a character is rare.
    forbidden = bool(FORBIDDEN_INPUT_RE.search(element_text(root)))
    for element in list(root.iter()):
        tag = element.tag
        if not isinstance(tag, str) or (tag in SKIP_TAGS and tag != "img"):
            drop_keeping_tail(element)
            continue
        if not forbidden:
            continue
        if element.text and FORBIDDEN_INPUT_RE.search(element.text):
            element.text = FORBIDDEN_INPUT_RE.sub("", element.text)
        if element.tail and FORBIDDEN_INPUT_RE.search(element.tail):
            element.tail = FORBIDDEN_INPUT_RE.sub("", element.tail)


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


# --- white space, exactly as textmodel sees it ---------------------------------------------------------------


def normalize_whitespace(root) -> None:
    """Rewrite the text nodes of ``root`` so each paragraph's text is already in textmodel's form."""
    _normalize_block(root)


def _normalize_block(element) -> None:
    run: list = []  # (node, "text"|"tail") or None for a <br>; mirrors textmodel._collect
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
    """The text segments of an inline element, in order; mirrors textmodel._inline_text."""
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
    """What textmodel.clean_inline makes of one white-space run, given its neighbours in ``window``."""
    return SPACE_RE.sub(" ", CJK_BREAK_RE.sub("", window))[1:-1]


# What ``_rewrite_run`` changes: any white space of SPACE_RE but a lone space.
_REWRITTEN_SPACE_RE = re.compile(r"[\t\r\n\f\v\u00a0\u3000\u200b]| {2}")


def _rewrite_run(run: list) -> None:
    """Apply textmodel.clean_inline's white-space rule to a paragraph spread over several text nodes.

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
    """Give the (normalized) tree the block structure textmodel reads; see the module docstring."""
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
        elif tag in CELL_TAGS:  # a cell outside a row: textmodel spaces its text into the paragraph
            _rename_to_span(child, spaced=True)
            _flatten(child)
        else:  # p, pre, inline elements
            if tag == "tt":
                child.tag = "code"
            _flatten(child)
    _wrap_inline_runs(element)


def _flatten(element, spaced: bool = False) -> None:
    """Turn the blocks inside ``element`` into spans (textmodel reads them as inline text there).

    ``spaced``: inside a heading, where textmodel makes each block a paragraph, i.e. a space once
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
    row.text = None  # textmodel reads a row as its cells' texts only
    for child in list(row):
        child.tail = None
        if child.tag in CELL_TAGS:
            _flatten(child)
        else:
            row.remove(child)


def _wrap_inline_runs(container) -> None:
    """Wrap each run of inline content (text, inline elements) between blocks in an ``md-run``.

    White space between blocks is no paragraph (textmodel) and is dropped.
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

