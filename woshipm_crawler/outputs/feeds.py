"""``markdown`` as a Scrapy feed format: ``scrapy crawl category -o articles.md``.

Each item the crawl emits is written in the Markdown library's article format (the seed's:
``library.render_article``), one after another. Every article starts with an HTML comment
``<!-- woshipm:article id=<id> -->`` on its own line (invisible once rendered), so a corpus reader
can split the file without parsing Markdown. Like every feed, it holds what the run emitted: on an
incremental run only the new and changed articles (unchanged ones stop in the state pipeline).
"""

from __future__ import annotations

from itemadapter import ItemAdapter
from scrapy.exporters import BaseItemExporter

from woshipm_crawler.library import render_article

ARTICLE_MARK = "<!-- woshipm:article id={id} -->"


class MarkdownItemExporter(BaseItemExporter):
    def __init__(self, file, **kwargs):
        super().__init__(dont_fail=True, **kwargs)
        self.file = file
        self.encoding = self.encoding or "utf-8"
        self.first = True

    def export_item(self, item) -> None:
        article = ItemAdapter(item).asdict()
        text = ("" if self.first else "\n") + ARTICLE_MARK.format(id=article.get("id")) + "\n" + render_article(article)
        self.file.write(text.encode(self.encoding))
        self.first = False
