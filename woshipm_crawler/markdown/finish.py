"""Finishing a paragraph the converter assembled: breaks, line starts and emphasis, settled once the
neighbouring characters are final.

- Hard break: two spaces + newline (CommonMark §6.7, first form; the library's header does the same).
  The backslash form is not honoured by marked-style renderers (HonKit's kramed shows the backslash).
  Runs of ``<br>`` collapse to one break; breaks at the edges of a paragraph are dropped; in a table
  cell a break is a literal ``<br>`` (a newline would end the row).
- Bold: ``**…**``. CommonMark §6.2: a ``**`` run opens only when *left-flanking* and closes only when
  *right-flanking*, so ``**用户洞察：**能力`` fails (the closer is preceded by ``：`` and followed by a
  letter). The fix keeps the text and moves one non-ASCII punctuation character across the failing
  delimiter — ``**用户洞察**：能力``, ``能力“**重点**”``. Where no such move works the pair falls back to
  raw ``<strong>…</strong>``. Italic is the same with ``*``/``<em>``.
"""

from __future__ import annotations

import re
import unicodedata

from woshipm_crawler.inline import escape_line_start

# Sentinels for emphasis delimiters while a paragraph is assembled: Unicode noncharacters, never text.
STRONG_OPEN, STRONG_CLOSE, EM_OPEN, EM_CLOSE = "\ufdd0", "\ufdd1", "\ufdd2", "\ufdd3"
# The same pairs settled as raw HTML (the fallback): they count as punctuation next to a delimiter.
HTML_STRONG_OPEN, HTML_STRONG_CLOSE, HTML_EM_OPEN, HTML_EM_CLOSE = "\ufdd4", "\ufdd5", "\ufdd6", "\ufdd7"
BREAK = "\x00"  # a <br> while a paragraph is assembled
HARD_BREAK = "  \n"  # what it becomes in a paragraph
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
_DELIMITER_RUN_RE = re.compile("[\ufdd0-\ufdd3]+")
_SPACE_BEFORE_CLOSE_RE = re.compile("([ \x00]+)([\ufdd1\ufdd3]+)")
_SPACE_AFTER_OPEN_RE = re.compile("([\ufdd0\ufdd2]+)([ \x00]+)")
_EMPTY_OR_ADJACENT_RE = re.compile("\ufdd0\ufdd1|\ufdd2\ufdd3|\ufdd1\ufdd0|\ufdd3\ufdd2")
_CHAR_CLASSES: dict[str, str] = {}


def finish_inline(text: str, mode: str) -> str:
    """Turn an assembled inline run into final Markdown.

    ``mode`` is "paragraph" (breaks → hard breaks), "heading" (breaks → spaces) or "cell"
    (breaks → ``<br>``).
    """
    if BREAK not in text and not _ANY_SENTINEL_RE.search(text):  # the common case: plain prose
        text = text.strip(" ")
        return escape_line_start(text) if mode == "paragraph" and text else text
    text = _tidy_delimiters(text)
    if mode == "heading":
        text = " ".join(text.replace(BREAK, " ").split(" "))
        text = re.sub(" {2,}", " ", text).strip(" ")
        lines = [text] if text else []
    else:
        lines = [line.strip(" ") for line in text.split(BREAK)]
        lines = [line for line in lines if line.strip(" \ufdd0\ufdd1\ufdd2\ufdd3")]
        if mode == "paragraph":
            lines = [escape_line_start(line) for line in lines]
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
