"""``scrapy crawl``, with an exit status that tells the truth.

Scrapy's own command exits 0 whatever the run's finish reason. This one exits with the status the
run's report decided (``woshipm_crawler.summary``): 0 ok, 1 FAILED (interrupted, site unreachable, a
state of another site...), 2 a bad argument.
"""

from __future__ import annotations

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.exceptions import UsageError

from woshipm_crawler.statkeys import EXIT_CODE_KEY


class Command(ScrapyCrawlCommand):
    def run(self, args, opts) -> None:
        if len(args) != 1:
            raise UsageError("one spider: scrapy crawl category|tag -a …")
        crawler = self.crawler_process.create_crawler(args[0])
        self.crawler_process.crawl(crawler, **opts.spargs)
        self.crawler_process.start()
        if self.crawler_process.bootstrap_failed:
            self.exitcode = 1
        elif crawler.stats is not None:
            self.exitcode = crawler.stats.get_value(EXIT_CODE_KEY) or 0
