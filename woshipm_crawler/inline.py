"""Inline Markdown shared by the article converter (``markdown``) and the library's headers and indexes:
the one text escaper, the one code-span fencer and the one link-destination encoder.

Every escape renders the same in CommonMark and in marked-style renderers (HonKit's kramed), which pass
raw HTML and honour a backslash only before ``\\ ` * _ { } [ ] ( ) # + - . ! > ~ |``: elsewhere text gets
a character reference. So a text that shows HTML, Markdown link syntax or a GitBook template tag is text
under any of them, never a tag, a link or a template.
"""

from __future__ import annotations

import re

from woshipm_crawler.site import safe_url

LT, AMP, PERCENT, HASH, PIPE, EQUALS = "&lt;", "&amp;", "&#37;", "&#35;", "&#124;", "&#61;"

# Only where the character could start syntax.
_NEEDS_ESCAPE_RE = re.compile(r"[\\`*_<&{\[\]|]|~~|\A~|~\Z")
_ASTERISK_RE = re.compile(r"(?<! )\*|\*(?! )")  # a "*" between two spaces flanks neither way
_UNDERSCORE_RE = re.compile(r"(?<!\w)_|_(?!\w)")  # intraword "_" neither opens nor closes (§6.2)
# "~~" is strikethrough in GFM renderers (kramed, markdown-it's); a "~" at either end of a text node may
# meet one of the next node.
_TILDES_RE = re.compile(r"~(?=~|\Z)|(?:\A|(?<=~))~")
# "<" that could open a tag, an autolink or a comment (at the end of a text node too: the next node may
# start one); "&" that could start a reference.
_TAG_START_RE = re.compile(r"<(?=[A-Za-z/!?]|\Z)")
_ENTITY_RE = re.compile(r"&(?=#?[A-Za-z0-9]+;|\Z)")
# The second character of a GitBook (Nunjucks) template opener: {{ }}, {% %}, {# #}.
_TEMPLATE_RE = re.compile(r"(?<=\{)([{%#])")
TEMPLATE_SECOND = frozenset("{%#")
# In text: "{%" becomes "{&#37;" (a backslash before "%" stays visible in some renderers), "{#" "{&#35;"
# (kramed drops a "{#…}" it sees in a heading, escaped or not), "{{" "{\{".
TEMPLATE_REFERENCES = {"%": PERCENT, "#": HASH, "{": "\\{"}
_CLOSE_BRACKET_RE = re.compile(r"\](?=[(\[:]|$)")  # "](" makes a link, "]:" a definition
# Line starts that would open a block (§4.1–4.4, §5.1–5.3). Lines are stripped, so no indentation.
_LINE_START_RE = re.compile(r"#{1,6}(?=[ \t]|$)|[-+*](?=[ \t]|$)|>|~~~|(?:[-_=*][ \t]*)+$")
_ORDERED_START_RE = re.compile(r"(\d{1,9})([.)])(?=[ \t]|$)")
_BACKTICK_RUN_RE = re.compile(r"`+")
_URL_UNSAFE = {" ": "%20", '"': "%22", "`": "%60", "(": "%28", ")": "%29", "<": "%3C", ">": "%3E", "{": "%7B",
               "}": "%7D", "\n": "", "\t": ""}  # fmt: skip
_URL_UNSAFE_RE = re.compile(r'[ "`()<>{}\n\t]')
_UNESCAPE_RE = re.compile(r"\\([!-/:-@\[-`{-~])|&(?:lt|amp|#37|#35|#124|#61);")
_UNESCAPED = {LT: "<", AMP: "&", PERCENT: "%", HASH: "#", PIPE: "|", EQUALS: "="}


def neutralise_templates(text: str) -> str:
    """Break every GitBook template opener (``{%``, ``{{``, ``{#``) with a backslash: ``{\\%``.

    For Markdown already written: a backslash before ASCII punctuation renders as the bare character in
    CommonMark, so readers see the text unchanged while GitBook no longer sees a tag. Idempotent.
    """
    return _TEMPLATE_RE.sub(r"\\\1", text)


def _break_template_opener(match: re.Match) -> str:
    return TEMPLATE_REFERENCES[match.group(1)]


def escape_text(text: str, link: bool = False, cell: bool = False) -> str:
    """Escape what could start inline syntax here (in a link text, in a table cell); leave prose alone
    otherwise. The result renders as ``text``, raw HTML passed or not."""
    if not _NEEDS_ESCAPE_RE.search(text):
        return text
    text = text.replace("\\", "\\\\").replace("`", "\\`")
    if "*" in text:
        text = _ASTERISK_RE.sub(r"\\*", text)
    if "_" in text:
        text = _UNDERSCORE_RE.sub(r"\\_", text)
    if "~" in text:
        text = _TILDES_RE.sub(r"\\~", text)
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


def unescape_text(markdown: str) -> str:
    """The text ``escape_text`` and ``escape_line_start`` were given: their exact inverse."""
    return _UNESCAPE_RE.sub(lambda m: m.group(1) or _UNESCAPED[m.group(0)], markdown)


def escape_line_start(line: str) -> str:
    """Escape a line start that would open a block: heading, list item, quote, break, fence, setext
    underline (``=`` as ``&#61;``: kramed ignores a backslash before it)."""
    first = line[:1]
    if first.isdigit():
        return _ORDERED_START_RE.sub(r"\1\\\2", line, count=1)
    if first in "#-+*>~_=" and _LINE_START_RE.match(line):
        return EQUALS + line[1:] if first == "=" else "\\" + line
    return line


def longest_backtick_run(text: str) -> int:
    return max((len(run) for run in _BACKTICK_RUN_RE.findall(text)), default=0)


def code_span(content: str) -> str:
    """``content`` (one line) as a code span: fenced by more backticks than any run inside, padded with
    a space each side when it starts or ends with a backtick (the parser strips one, §6.1)."""
    fence = "`" * (longest_backtick_run(content) + 1)
    padded = f" {content} " if content.startswith("`") or content.endswith("`") else content
    return fence + padded + fence


def link_destination(url: object, base: str | None = None) -> str | None:
    """``url`` as a link destination: an http(s) URL (``site.safe_url``, resolved against ``base``) that
    needs no angle brackets and holds no GitBook template opener; None for any other URL."""
    url = safe_url(url, base) if isinstance(url, str) else None
    return _URL_UNSAFE_RE.sub(lambda m: _URL_UNSAFE[m.group()], url) if url else None
