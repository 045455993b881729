"""Plain text of article bodies: one definition shared by the parser, the Markdown checks and the replica.

The text model of a body (``html_to_text``):

- every block (``p``, ``h1``–``h6``, ``li``, ``pre``, ``figcaption``, a table row, a ``div`` or
  ``section`` holding text directly) is one paragraph; paragraphs are joined by a blank line;
- a list item's own text is one paragraph and its nested list items follow it;
- a table row is one paragraph: its cells' texts joined by a space;
- ``<br>`` is a line break inside a paragraph (and inside ``pre``); images contribute nothing;
- inside a paragraph, runs of white space (``&nbsp;`` included) become one space, except that white
  space holding a line break between two CJK characters disappears (a source newline in Chinese
  text is not a space, whatever a browser makes of it); ``pre`` keeps its text as it is.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np
from lxml import html as lxml_html

BLOCK_TAGS = frozenset(
    "p h1 h2 h3 h4 h5 h6 li pre figcaption tr blockquote div section article ul ol table thead "
    "tbody tfoot figure dl dt dd hr center header footer aside main nav".split()
)
# Elements whose content is no text (the Markdown stage renders ``img`` as markup, though).
SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "head", "title", "img", "svg"})

# CJK ideographs, CJK punctuation and full-width forms: no space belongs between two of them.
CJK = r"\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3200-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
CJK_BREAK_RE = re.compile(rf"(?<=[{CJK}])[ \t\r\f\v\u00a0]*\n\s*(?=[{CJK}])")
SPACE_RE = re.compile(r"[ \t\r\n\f\v\u00a0\u3000\u200b]+")
_WS_RE = re.compile(r"\s+")

# What word_count counts as one word each: CJK extension A, unified ideographs, compatibility ideographs.
CJK_IDEOGRAPHS = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))
_LATIN_WORD_RE = re.compile(r"[A-Za-z0-9]+(?:['’.\-][A-Za-z0-9]+)*")


# Invisible characters that steer or hide what is shown (issue 24): the bidirectional embeddings,
# overrides and isolates (U+202A–202E, U+2066–2069), the direction marks (U+200E, U+200F, U+061C), the
# zero-width space and joiners (U+200B–200D), the word joiner (U+2060) and the BOM / zero-width no-break
# space (U+FEFF). ``strip_invisible`` removes them from titles, author names, tags and bodies alike.
INVISIBLE_RE = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]")
ZWNJ, ZWJ = "\u200c", "\u200d"
_CONTROL_CHARS_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _emoji(ch: str) -> bool:
    """Part of an emoji sequence a ZWJ joins: a pictograph (U+1F000–1FAFF, U+2600–27BF: ⚕, ♀, ♂…), or
    the emoji presentation selector U+FE0F after one."""
    code = ord(ch)
    return 0x1F000 <= code <= 0x1FAFF or 0x2600 <= code <= 0x27BF or code == 0xFE0F


def _joining_letter(ch: str) -> bool:
    """A letter or mark of the scripts ZWJ/ZWNJ shape (Arabic, Syriac, Thaana, the Indic scripts, Sinhala,
    Thai, Lao, Tibetan, Myanmar: U+0600–109F)."""
    return 0x0600 <= ord(ch) <= 0x109F and unicodedata.category(ch)[0] in "LM"


def _keeps_joiner(match: re.Match) -> bool:
    """A ZWJ between two parts of an emoji (👩‍💻), or a ZWJ/ZWNJ between two letters of a joining
    script: content, not a control."""
    ch, text, start = match.group(), match.string, match.start()
    if ch not in (ZWJ, ZWNJ) or start == 0 or match.end() == len(text):
        return False
    before, after = text[start - 1], text[match.end()]
    if ch == ZWJ and _emoji(before) and _emoji(after):
        return True
    return _joining_letter(before) and _joining_letter(after)


def strip_invisible(text: str) -> str:
    """``text`` without the characters of INVISIBLE_RE, except a joiner that is content (_keeps_joiner)."""
    if not INVISIBLE_RE.search(text):
        return text
    return INVISIBLE_RE.sub(lambda m: m.group() if _keeps_joiner(m) else "", text)


def clean_field(text: str) -> str:
    """A one-line field (title, author name, tag) as shown: no invisible characters, no control
    characters, runs of white space one space, no space at either end."""
    return normalize_ws(_CONTROL_CHARS_RE.sub("", strip_invisible(text)))


def normalize_ws(text: str) -> str:
    """Collapse every run of white space to one space: the form texts are compared in."""
    return _WS_RE.sub(" ", text.replace("\u00a0", " ")).strip()


def clean_inline(text: str) -> str:
    """White space of running text inside one paragraph (source newlines between CJK dropped)."""
    if "\n" in text:  # most runs have no source newline: skip the look-around scan
        text = CJK_BREAK_RE.sub("", text)
    if "\x00" not in text:
        return SPACE_RE.sub(" ", text).strip(" ")
    return "\n".join(SPACE_RE.sub(" ", line).strip(" ") for line in text.split("\x00"))


def word_count(text: str) -> int:
    """CJK characters (``CJK_IDEOGRAPHS``) plus Latin words (runs of letters and digits)."""
    # One vectorised pass over the code points: a regex costs a match object per run (5 ms on 56 K).
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    cjk = np.zeros(len(codes), dtype=bool)
    for low, high in CJK_IDEOGRAPHS:
        cjk |= (codes >= low) & (codes <= high)
    return int(np.count_nonzero(cjk)) + len(_LATIN_WORD_RE.findall(text))


def content_hash(body_text: str) -> str:
    """Hash of a body's text, blind to white-space noise, so markup churn is not a change."""
    return hashlib.sha256(normalize_ws(body_text).encode("utf-8")).hexdigest()


def html_to_text(html_or_element) -> str:
    """The text model above, for an HTML fragment or an lxml element."""
    if isinstance(html_or_element, str):
        if not html_or_element.strip():
            return ""
        root = lxml_html.fragment_fromstring(html_or_element, create_parent="div")
    else:
        root = html_or_element
    paragraphs: list[str] = []
    _collect(root, paragraphs)
    return "\n\n".join(p for p in paragraphs if p)


def _collect(element, paragraphs: list[str]) -> None:
    """Walk ``element``'s children, gathering inline runs into paragraphs."""
    run: list[str] = []

    def flush() -> None:
        text = clean_inline("".join(run))
        if "\n" in text:
            text = "\n".join(line.strip() for line in text.split("\n"))
        text = text.strip()
        if text:
            paragraphs.append(text)
        run.clear()

    if element.text:
        run.append(element.text)
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag in SKIP_TAGS or not tag:
            pass
        elif tag == "br":
            run.append("\x00")
        elif tag == "pre":
            flush()
            text = _pre_text(child).strip("\n")
            if text.strip():
                paragraphs.append(text)
        elif tag in ("td", "th"):
            run.append(" " + _inline_text(child) + " ")
        elif tag in BLOCK_TAGS:
            flush()
            if tag == "tr":
                cells = [_inline_text(c) for c in child if isinstance(c.tag, str) and c.tag in ("td", "th")]
                row = " ".join(c for c in cells if c)
                if row:
                    paragraphs.append(row)
            else:
                _collect(child, paragraphs)
        else:
            run.append(_inline_text(child))
        if child.tail:
            run.append(child.tail)
    flush()


def _pre_text(element) -> str:
    """Text of a code block as written; WeChat pastes code with ``<br>`` for its line breaks."""
    parts = [element.text or ""]
    for child in element:
        parts.append("\n" if child.tag == "br" else _pre_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _inline_text(element) -> str:
    """Text of an inline element (or a table cell), ``<br>`` kept as a break marker."""
    parts: list[str] = []
    if element.text:
        parts.append(element.text)
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag == "br":
            parts.append("\x00")
        elif tag and tag not in SKIP_TAGS:
            parts.append(_inline_text(child))
        if child.tail:
            parts.append(child.tail)
    text = "".join(parts)
    if element.tag in ("td", "th"):
        return clean_inline(text).replace("\n", " ").strip()
    return text
