"""The body of a replica article as data: blocks that render to the site's (WeChat-pasted) HTML and
to paragraphs of the text model of ``woshipm_crawler.textmodel``.

Each block knows both renderings, so the manifest's ``body_text`` is computed from the model, and a
test checks that ``text.html_to_text`` of the rendered HTML gives the same paragraphs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape
from urllib.parse import urljoin

# A 1x1 transparent GIF: what lazy-loading pages put in ``src`` until a script swaps in the real URL.
LAZY_PLACEHOLDER = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"

_SPACES_RE = re.compile(r"[ \t\r\n\f\v\u00a0]+")

# Inline styles as WeChat's editor leaves them: noise a cleaner has to drop.
WECHAT_SECTION_STYLE = "margin: 0px 8px; padding: 0px; box-sizing: border-box; max-width: 100%;"
WECHAT_SPAN_STYLE = "font-size: 15px; color: rgb(62, 62, 62); font-family: PingFangSC-Light;"


def _attr(value: str) -> str:
    return escape(value, quote=True)


def normalize_paragraph(text: str) -> str:
    """A paragraph as the text model has it: spaces collapsed per line, lines stripped."""
    lines = [_SPACES_RE.sub(" ", line).strip(" ") for line in text.split("\n")]
    return "\n".join(line.strip() for line in lines).strip()


@dataclass(frozen=True)
class Seg:
    """One inline piece of a paragraph.

    kind: ``text``, ``strong``, ``em``, ``span`` (styled), ``a`` (link, ``attr`` = href), ``br``,
    ``nbsp`` (``attr`` = how many; one space in the text) or ``nl`` (a source newline between two
    CJK characters: nothing in the text).
    """

    kind: str
    text: str = ""
    attr: str = ""

    def html(self) -> str:
        body = escape(self.text, quote=False)
        if self.kind == "text":
            return body
        if self.kind in ("strong", "em"):
            return f"<{self.kind}>{body}</{self.kind}>"
        if self.kind == "span":
            return f'<span style="{_attr(self.attr or WECHAT_SPAN_STYLE)}">{body}</span>'
        if self.kind == "a":
            return f'<a href="{_attr(self.attr)}" target="_blank" rel="noopener">{body}</a>'
        if self.kind == "br":
            return "<br>"
        if self.kind == "nbsp":
            return "&nbsp;" * int(self.attr or 1)
        if self.kind == "nl":
            return "\n"
        raise ValueError(self.kind)

    def plain(self) -> str:
        if self.kind == "br":
            return "\n"
        if self.kind == "nbsp":
            return " "
        if self.kind == "nl":
            return ""
        return self.text


class Block:
    """A body block: its page HTML and its text-model paragraphs."""

    def html(self) -> str:
        raise NotImplementedError

    def paragraphs(self) -> list[str]:
        raise NotImplementedError

    def images(self, base_url: str) -> list[str]:
        return []


@dataclass
class Para(Block):
    segs: list[Seg]
    style: str = ""  # WeChat inline style on the <p>
    tag: str = "p"  # "section" for a WeChat section that holds its text directly

    def html(self) -> str:
        style = f' style="{_attr(self.style)}"' if self.style else ""
        return f"<{self.tag}{style}>{''.join(s.html() for s in self.segs)}</{self.tag}>"

    def paragraphs(self) -> list[str]:
        text = normalize_paragraph("".join(s.plain() for s in self.segs))
        return [text] if text else []

    @property
    def text(self) -> str:
        return "".join(s.plain() for s in self.segs)


@dataclass
class Heading(Block):
    level: int
    text: str

    def html(self) -> str:
        return f"<h{self.level}>{escape(self.text, quote=False)}</h{self.level}>"

    def paragraphs(self) -> list[str]:
        return [normalize_paragraph(self.text)]


@dataclass
class ListItem:
    segs: list[Seg]
    children: ListBlock | None = None


@dataclass
class ListBlock(Block):
    ordered: bool
    items: list[ListItem]
    # The invalid nesting pasted editors produce: the sub-list is a sibling of the <li>, not inside it.
    nest_outside_li: bool = False

    def html(self) -> str:
        tag = "ol" if self.ordered else "ul"
        parts = []
        for item in self.items:
            inner = "".join(s.html() for s in item.segs)
            if item.children is None:
                parts.append(f"<li>{inner}</li>")
            elif self.nest_outside_li:
                parts.append(f"<li>{inner}</li>{item.children.html()}")
            else:
                parts.append(f"<li>{inner}{item.children.html()}</li>")
        return f"<{tag}>{''.join(parts)}</{tag}>"

    def paragraphs(self) -> list[str]:
        out = []
        for item in self.items:
            text = normalize_paragraph("".join(s.plain() for s in item.segs))
            if text:
                out.append(text)
            if item.children is not None:
                out.extend(item.children.paragraphs())
        return out


@dataclass
class Cell:
    text: str
    colspan: int = 1
    header: bool = False


@dataclass
class Table(Block):
    rows: list[list[Cell]]

    def html(self) -> str:
        rows = []
        for row in self.rows:
            cells = []
            for cell in row:
                tag = "th" if cell.header else "td"
                span = f' colspan="{cell.colspan}"' if cell.colspan > 1 else ""
                cells.append(f"<{tag}{span}>{escape(cell.text, quote=False)}</{tag}>")
            rows.append(f"<tr>{''.join(cells)}</tr>")
        return f'<table border="1" cellspacing="0"><tbody>{"".join(rows)}</tbody></table>'

    def paragraphs(self) -> list[str]:
        out = []
        for row in self.rows:
            texts = [normalize_paragraph(c.text).replace("\n", " ") for c in row]
            line = " ".join(t for t in texts if t)
            if line:
                out.append(line)
        return out


@dataclass
class Code(Block):
    language: str
    code: str

    def html(self) -> str:
        return f'<pre><code class="language-{self.language}">{escape(self.code, quote=False)}</code></pre>'

    def paragraphs(self) -> list[str]:
        text = self.code.strip("\n")
        return [text] if text.strip() else []


@dataclass
class Image(Block):
    url: str  # as written in the page: absolute, or relative to the site
    lazy: str = ""  # "", "data-src" or "data-original"
    caption: str = ""
    wrapper: str = "p"  # "p", "figure" or "section"

    def img_html(self) -> str:
        if self.lazy:
            return (
                f'<img class="lazy" src="{LAZY_PLACEHOLDER}" {self.lazy}="{_attr(self.url)}" alt="" '
                f'width="750" height="422">'
            )
        return f'<img src="{_attr(self.url)}" alt="" width="750" height="422">'

    def html(self) -> str:
        if self.wrapper == "figure":
            caption = f"<figcaption>{escape(self.caption, quote=False)}</figcaption>" if self.caption else ""
            return f"<figure>{self.img_html()}{caption}</figure>"
        if self.wrapper == "section":
            return f'<section style="{WECHAT_SECTION_STYLE}">{self.img_html()}</section>'
        return f'<p style="text-align: center;">{self.img_html()}</p>'

    def paragraphs(self) -> list[str]:
        return [normalize_paragraph(self.caption)] if self.caption and self.wrapper == "figure" else []

    def images(self, base_url: str) -> list[str]:
        return [urljoin(base_url.rstrip("/") + "/", self.url)]


@dataclass
class Wrapper(Block):
    """WeChat's nested ``<section style=…>`` wrappers around ordinary blocks."""

    children: list[Block] = field(default_factory=list)
    depth: int = 2

    def html(self) -> str:
        inner = "\n".join(c.html() for c in self.children)
        opening = "".join(f'<section style="{WECHAT_SECTION_STYLE}">' for _ in range(self.depth))
        return f"{opening}{inner}{'</section>' * self.depth}"

    def paragraphs(self) -> list[str]:
        return [p for c in self.children for p in c.paragraphs()]

    def images(self, base_url: str) -> list[str]:
        return [u for c in self.children for u in c.images(base_url)]


@dataclass
class Empty(Block):
    """An empty paragraph: ``<p><br></p>``, ``<p>&nbsp;</p>`` or ``<p></p>``."""

    markup: str = "<p><br></p>"

    def html(self) -> str:
        return self.markup

    def paragraphs(self) -> list[str]:
        return []


def body_html(blocks: list[Block]) -> str:
    return "\n".join(b.html() for b in blocks)


def body_text(blocks: list[Block]) -> str:
    return "\n\n".join(p for b in blocks for p in b.paragraphs())


def body_images(blocks: list[Block], base_url: str) -> list[str]:
    seen: dict[str, None] = {}
    for block in blocks:
        for url in block.images(base_url):
            seen.setdefault(url, None)
    return list(seen)
