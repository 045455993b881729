"""One library article file read back for the site (woshipm_crawler.outputs.book): its header fields
and its HTML, with markdown-it-py (CommonMark, raw HTML as in the library: the converter writes
``<strong>``, ``<em>``, ``<br>`` where Markdown's own markers cannot stand).

The file's format is ``library.render_article``'s: ``# title``, the ``{% hint %}`` header block (one
``**Label:** value`` line each), the summary as a quote, ``---``, the body. The header block is cut out
by its exact opening and closing lines (the library breaks every other ``{%`` in the text with a
backslash, so no title, tag or body can hold them) and rendered as the hint box HonKit drew; every
other byte is CommonMark. What a page can carry from the article:

- no HTML from the text: the library writes a text ``<`` as ``&lt;`` (``inline.escape_text``,
  ``library.escape_inline``), so ``<script>`` in a text shows as text; raw HTML that reached the
  Markdown anyway is left to ``book.sanitise_content`` (nh3), the second wall, like everything rendered;
- no link or image to anything but http(s) or a relative path (``safe_link``): ``javascript:``,
  ``data:``, ``vbscript:`` and the like stay text, however they are cased, spaced or entity-encoded
  (markdown-it decodes entities before the check);
- titles, tags and author names reach the templates as plain text, and Jinja2 escapes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote

from lxml import html as lxml_html
from markdown_it import MarkdownIt
from markdown_it.token import Token

from woshipm_crawler.library import HINT_CLOSE, HINT_OPEN

_HEADER_RE = re.compile(
    r"\A# (?P<title>[^\n]*)\n" + re.escape(HINT_OPEN) + r"\n(?P<header>.*?)\n?" + re.escape(HINT_CLOSE) + r"(?:\n|\Z)",
    re.DOTALL,
)
_TITLE_RE = re.compile(r"\A# (?P<title>[^\n]*)(?:\n|\Z)")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
# What a browser ignores in a URL before reading its scheme: C0 controls and spaces at the ends,
# tabs and newlines anywhere.
_URL_IGNORED_RE = re.compile(r"[\x00-\x20]")
_SCHEME_RE = re.compile(r"([a-z][a-z0-9+.\-]*):")


def safe_link(url: str) -> bool:
    """True for an http(s) URL or a relative one (no scheme); False for every other scheme."""
    scheme = _SCHEME_RE.match(_URL_IGNORED_RE.sub("", url).lower())
    return scheme is None or scheme.group(1) in ("http", "https")


class _Markdown(MarkdownIt):
    def validateLink(self, url: str) -> bool:  # noqa: N802 (markdown-it's name)
        return safe_link(url)


def _markdown() -> MarkdownIt:
    md = _Markdown("commonmark", {"html": True})
    md.enable("table")  # GitHub's tables; no strikethrough: the converter writes none, so "~~" is text
    return md


MARKDOWN = _markdown()


def _inline_text(children: list[Token]) -> str:
    """The text an inline token run shows (escapes resolved, markup dropped)."""
    parts = []
    for token in children:
        if token.type in ("text", "code_inline"):
            parts.append(token.content)
        elif token.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif token.children:
            parts.append(_inline_text(token.children))
    return "".join(parts)


def plain_text(markdown: str) -> str:
    """One line of Markdown (a title, a label) as the text it shows."""
    tokens = MARKDOWN.parseInline(markdown)
    return _inline_text(tokens[0].children or []).strip() if tokens else ""


@dataclass
class Field:
    """One ``**Label:** value`` line of the header: the label's tokens and the value's (up to the next label)."""

    label: str
    label_tokens: list[Token]
    tokens: list[Token] = field(default_factory=list)

    @property
    def text(self) -> str:
        return _inline_text(self.tokens).strip()


@dataclass
class Article:
    """An article file, parsed: plain-text fields for the listings, tokens for its page."""

    title: str
    published: str | None  # YYYY-MM-DD from the header, None when it has none
    author_name: str | None
    author_url: str | None  # the author's page on woshipm.com
    tags: list[str]
    header: list[Token] | None  # the header block's tokens (None: the file has no header block)
    fields: dict[str, Field]
    rest: str  # the Markdown after the header: summary, rule, body

    def header_html(self, tag_href, author_href: str | None) -> str:
        """The header block as the hint box's inner HTML; each tag is a link to ``tag_href(tag)`` and
        the author's name to ``author_href`` (both pages of the site). Called once per parse."""
        if self.header is None:
            return ""
        if "Tags" in self.fields:
            linked: list[Token] = []
            for token in self.fields["Tags"].tokens:
                if token.type == "code_inline":
                    linked += [Token("link_open", "a", 1, attrs={"href": tag_href(token.content)}), token,
                               Token("link_close", "a", -1)]
                else:
                    linked.append(token)
            self.fields["Tags"].tokens[:] = linked
        author = self.fields.get("Author")
        if author is not None and author_href is not None:
            links = [token for token in author.tokens if token.type == "link_open"]
            for token in links:
                token.attrs = {"href": author_href}
            if not links:
                end = len(author.tokens) - (author.tokens[-1].type in ("hardbreak", "softbreak"))
                author.tokens[:] = [Token("link_open", "a", 1, attrs={"href": author_href}), *author.tokens[:end],
                                    Token("link_close", "a", -1), *author.tokens[end:]]
        inline = next(token for token in self.header if token.type == "inline")
        inline.children = _join_fields(inline.children or [], self.fields)
        return MARKDOWN.renderer.render(self.header, MARKDOWN.options, {})

    def body(self) -> tuple[str, str]:
        """The summary and body as HTML, and as plain text (one line a block) for the search."""
        tokens = MARKDOWN.parse(self.rest)
        lines = []
        for token in tokens:
            if token.type == "inline":
                lines.append(_inline_text(token.children or []))
            elif token.type in ("fence", "code_block"):
                lines.append(token.content)
            elif token.type == "html_block" and token.content.strip():
                lines.append(lxml_html.fragment_fromstring(token.content, create_parent="div").text_content())
            for child in token.children or ():
                if child.type == "image":
                    child.attrs["loading"] = "lazy"
                    child.attrs["referrerpolicy"] = "no-referrer"
        return MARKDOWN.renderer.render(tokens, MARKDOWN.options, {}), "\n".join(line for line in lines if line)


def _split_fields(children: list[Token]) -> tuple[list[Token], dict[str, Field]]:
    """The header's inline tokens cut at each ``**Label:**``: (tokens before the first label, fields)."""
    before: list[Token] = []
    fields: dict[str, Field] = {}
    current: Field | None = None
    index = 0
    while index < len(children):
        window = children[index:index + 3]
        if (len(window) == 3 and window[0].type == "strong_open" and window[1].type == "text"
                and window[1].content.endswith(":") and window[2].type == "strong_close"):
            label = window[1].content[:-1]
            current = fields[label] = Field(label, window)  # a label given twice: the last one counts
            index += 3
            continue
        (current.tokens if current is not None else before).append(children[index])
        index += 1
    return before, fields


def _join_fields(children: list[Token], fields: dict[str, Field]) -> list[Token]:
    """The header's inline tokens again, with the fields' (edited) tokens."""
    before, _ = _split_fields(children)
    return before + [token for one in fields.values() for token in (*one.label_tokens, *one.tokens)]


def parse_article(text: str) -> Article:
    """Read an article file's title, header fields and body (``library.render_article``'s format)."""
    match = _HEADER_RE.match(text) or _TITLE_RE.match(text)
    if match is None:
        return Article("", None, None, None, [], None, {}, text)
    title = plain_text(match.group("title"))
    rest = text[match.end():]
    if "header" not in match.groupdict():
        return Article(title, None, None, None, [], None, {}, rest)
    header = MARKDOWN.parse(match.group("header"))
    inline = next((token for token in header if token.type == "inline"), None)
    fields = _split_fields(inline.children or [])[1] if inline is not None else {}
    author = fields.get("Author")
    author_url = next((t.attrs.get("href") for t in author.tokens if t.type == "link_open"), None) if author else None
    date = _DATE_RE.search(fields["Published"].text) if "Published" in fields else None
    return Article(
        title=title,
        published=date.group(0) if date else None,
        author_name=author.text or None if author else None,
        author_url=str(author_url) if author_url else None,
        tags=[t.content for t in fields["Tags"].tokens if t.type == "code_inline"] if "Tags" in fields else [],
        header=header,
        fields=fields,
        rest=rest,
    )


def href(*parts: str) -> str:
    """A relative URL from path parts (each percent-encoded)."""
    return "/".join(quote(part, safe="") if part not in ("..", ".") else part for part in parts)
