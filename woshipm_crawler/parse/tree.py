"""Small operations on an article body's lxml tree, shared by the parser and the Markdown stage.

Each rule lives here once: which attributes a body keeps, where a lazy image's real URL is, how an
element is removed or unwrapped without losing the text around it.
"""

from __future__ import annotations

import re

from lxml import etree

# Attributes kept on body elements; everything else (style, class, data-*, ids) is noise. The
# Markdown stage reads a subset of these.
KEPT_ATTRIBUTES = {"a": ("href",), "img": ("src", "alt"), "td": ("colspan", "rowspan"),
                   "th": ("colspan", "rowspan"), "ol": ("start",)}
# Code blocks keep the language named in their class ("language-python"), nothing else of it.
LANGUAGE_CLASS_RE = re.compile(r"\b((?:language|lang)-[\w+#-]+)")
# Lazy loaders keep the real URL in one of these; ``src`` then holds a placeholder.
LAZY_IMAGE_ATTRIBUTES = ("data-src", "data-original", "data-actualsrc", "data-lazy-src")


def real_image_url(img) -> str | None:
    """The URL an image shows once loaded: a lazy attribute first, then ``src``; never a ``data:`` URL."""
    for attribute in (*LAZY_IMAGE_ATTRIBUTES, "src"):
        url = (img.get(attribute) or "").strip()
        if url and url[:5].lower() != "data:":  # a placeholder, in any case
            return url
    return None


def strip_attributes(root) -> None:
    """Keep only ``KEPT_ATTRIBUTES`` (and a code block's language class) on every element."""
    for element in root.iter():
        attrib = element.attrib
        if not attrib or not isinstance(element.tag, str):
            continue
        tag = element.tag
        kept = KEPT_ATTRIBUTES.get(tag, ())
        language = None
        if tag in ("code", "pre"):
            match = LANGUAGE_CLASS_RE.search(attrib.get("class", ""))
            language = match.group(1) if match else None
        for name in [name for name in attrib if name not in kept]:
            del attrib[name]
        if language:
            attrib["class"] = language


def drop_keeping_tail(element) -> None:
    """Remove an element and its content; the text after it stays where it was."""
    parent = element.getparent()
    if parent is None:
        return
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def unwrap(element) -> None:
    """Replace an element by its content (``<span>a<b>c</b></span>d`` -> ``a<b>c</b>d``)."""
    parent = element.getparent()
    if parent is None:
        return
    text, tail = element.text or "", element.tail or ""
    previous = element.getprevious()
    index = parent.index(element)
    children = list(element)
    if children:
        children[-1].tail = (children[-1].tail or "") + tail
        moved = text
    else:
        moved = text + tail
    if moved:
        if previous is not None:
            previous.tail = (previous.tail or "") + moved
        else:
            parent.text = (parent.text or "") + moved
    parent[index:index + 1] = children


def element_text(element) -> str:
    """All the text inside an element (script text included, comments not): lxml.html's text_content()."""
    return etree.tostring(element, method="text", encoding=str, with_tail=False)
