"""Article body HTML → CommonMark (GFM pipe tables), losing no text and adding none.

``to_markdown(body_html, base_url)`` converts an HTML body; ``tree_to_markdown(body, base_url)`` converts
the cleaned body tree the article parser made (``parse.article``), restructuring it in place. The
contract, tested in tests/test_markdown.py: rendering the Markdown (markdown-it-py, ``commonmark`` +
``table``) and taking its text with ``textmodel.html_to_text`` gives, after ``normalize_ws``, the text of
``body_html``. Three stages: an lxml pre-pass (``prepare``) gives the tree textmodel's paragraphs; the
markdownify walk (``convert``) writes them, each paragraph finished by ``finish``; a post-pass collapses
blank-line runs. docs/markdown.md has the design and its history.
"""

from woshipm_crawler.markdown.convert import to_markdown, tree_to_markdown

__all__ = ["to_markdown", "tree_to_markdown"]
