"""When a stored article is due to be fetched again: its revisit schedule, a pure function.

An article is due at the ages after its publication in ``REVISIT_AGES``; ``next_due(published,
observed, id)`` is the first of them after its latest observation. Why these ages: an article
gathers most of its views, comments and collects in its first days and almost none after a few
months (the replica's curve, ``replica.corpus.growth``, is shaped on that: ~40% at a day, ~80% at
three, ~98% at a month). So the figures an analyst compares are taken at fixed ages (a day, three
days, a week: the rise; a month, a quarter: the plateau; a year: the final value), the same for every
article whatever day it was first crawled, and each fetch costs the site one request of ~6 in a
year. Edits and removals are found at the same visits; most happen in an article's first weeks.

Past the last age an article is refreshed about once a year, on a day of the year its id picks
(``_phase``), so the old archive is spread evenly over the days: each day takes ~1/365 of it, never a
wave on the anniversary of a first crawl. A yearly visit comes at least half a year after the
previous one, so every visit is 6 to 18 months apart, a year on average.

Times are ``utc_stamp`` strings (``YYYY-MM-DDTHH:MM:SSZ``); ``published`` may carry an offset.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from woshipm_crawler import site
from woshipm_crawler.util import STAMP_FORMAT, parse_stamp

REVISIT_AGES = tuple(timedelta(days=days) for days in (1, 3, 7, 30, 90, 365))
YEAR = timedelta(days=365)
_PHASE_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
_GOLDEN = 0.6180339887498949  # multiplicative hashing: consecutive ids land far apart in the year


def _phase(article_id: int) -> timedelta:
    return YEAR * ((article_id * _GOLDEN) % 1.0)


def next_due(published: str | None, observed: str, article_id: int) -> str:
    """When the article observed at ``observed`` is due again (a ``utc_stamp``)."""
    seen = parse_stamp(observed)
    born = site.published_time(published)
    if born is not None:
        born = born.astimezone(timezone.utc)  # the stamps below are UTC
        for age in REVISIT_AGES:
            if born + age > seen:
                return (born + age).strftime(STAMP_FORMAT)
    # yearly: the first slot of this id's day of the year at least half a year after the last visit
    earliest = seen + YEAR / 2
    slots = (earliest - _PHASE_EPOCH - _phase(article_id)) // YEAR + 1
    slot = _PHASE_EPOCH + _phase(article_id) + YEAR * slots
    return slot.strftime(STAMP_FORMAT)

