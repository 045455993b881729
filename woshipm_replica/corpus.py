"""The replica's ground truth: a deterministic corpus of invented woshipm.com articles.

Article ``i`` depends only on ``(seed, i)`` (and its revision), never on the corpus size, so growing
a corpus from 150 to 157 articles keeps the first 150 identical and adds 7 newer ones. Publish times
increase with the index, so "newest first" is simply descending index; article ids are a seeded
permutation (plus a few old small ids), hence unique but not in date order.

Articles are built lazily by index; only a small LRU of built articles is kept. The listing index
(which article appears under which category/tag/author) is built on first use from cheap headers.

The calendar (``Corpus(articles=N, calendar=Calendar(start, day, rate))``) makes the site live: on day
0 (``start``, its clock at noon Beijing time) it has published N articles (the whole timeline is
shifted to end there, and after the first ``SPARSE`` articles they follow each other at ``rate`` a
day); every day after it publishes ``rate`` more. Views, comments and collects grow with each
article's age on a curve that rises fast and then flattens (``growth``), and a seeded few articles
are edited (a new revision 1 to 30 days after publication) or removed (404 or 410, 2 to 60 days
after it: gone from the listings and the manifest; those past on day 0 are gone already).
``removals`` removes given ids at once. Without a calendar, nothing of this applies and the corpus
is as it always was.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache

from woshipm_crawler import site, textmodel
from woshipm_crawler.items import MANIFEST_FIELDS

from . import vocab
from .blocks import (
    Block,
    Cell,
    Code,
    Empty,
    Heading,
    Image,
    ListBlock,
    ListItem,
    Para,
    Seg,
    Table,
    Wrapper,
    body_images,
    body_text,
)

CST = timezone(timedelta(hours=8))
EPOCH = datetime(2019, 1, 3, 9, 0, tzinfo=CST)
# The first SPARSE articles spread over 2019–2025 (so every era's page variant exists in a small
# corpus); later ones follow every DENSE_STEP hours, so a 20,000-article corpus ends around 2028.
SPARSE = 150
SPARSE_STEP = timedelta(hours=400)
DENSE_STEP = timedelta(hours=1)


@dataclass(frozen=True)
class Calendar:
    """The replica's days: ``start`` is day 0 (``--today``), ``day`` the days advanced since, ``rate`` the
    articles published a day; shares of the articles edited and removed some days after publication."""

    start: date
    day: int = 0
    rate: float = 24.0
    edit_share: float = 0.02
    removal_share: float = 0.01

    @property
    def now(self) -> datetime:
        """The replica's "now": noon of the current day, Beijing time."""
        return datetime.combine(self.start + timedelta(days=self.day), time(12, 0), CST)

    @property
    def step(self) -> timedelta:
        return timedelta(days=1) / self.rate

    def advanced(self, days: int) -> Calendar:
        return Calendar(self.start, self.day + days, self.rate, self.edit_share, self.removal_share)


def growth(age: timedelta) -> float:
    """The share of its final views (comments, collects) an article has at ``age``: most in its first
    days, then a slow tail (39% at a day, 80% at three, 98% at a month, all after a year or so)."""
    days = max(age.total_seconds(), 0.0) / 86400
    return 1.0 - 0.85 * math.exp(-days / 1.5) - 0.15 * math.exp(-days / 60.0)


def unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts`` (cheaper than a Random for one draw)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _cumulative(table) -> tuple[list, list[float]]:
    keys, total, cumulative = [], 0.0, []
    for key, weight in table:
        total += weight
        keys.append(key)
        cumulative.append(total)
    return keys, cumulative


def _weighted(rng: random.Random, table: tuple[list, list[float]]):
    keys, cumulative = table
    return rng.choices(keys, cum_weights=cumulative)[0]


ID_BASE = 5_000_000
ID_SPAN = 1_500_000
ID_MULTIPLIER = 617_011  # coprime with ID_SPAN: i -> id is a permutation
OLD_ID_BASE = 973_000
OLD_ID_SHARE = 0.03
MAX_ARTICLES = 1_000_000

AUTHOR_COUNT = 100
MEDIA_COUNT = len(vocab.MEDIA_NAMES)

# Category slugs of article URLs, weighted; the unnamed ones are listed under a named category.
URL_CATEGORIES = (
    ("pmd", 10),
    ("pd", 12),
    ("ucd", 6),
    ("operate", 14),
    ("rp", 2),
    ("evaluating", 6),
    ("it", 10),
    ("zhichang", 7),
    ("chuangye", 5),
    ("ai", 10),
    ("blockchain", 2),
    ("marketing", 10),
    ("data-analysis", 6),
    ("user-research", 4),
    ("aigc", 1),
    ("share", 1),
    ("kol", 1),
    ("newretail", 1),
)
_URL_CATEGORY_TABLE = _cumulative(URL_CATEGORIES)
UNNAMED_LISTED_UNDER = {"aigc": "ai", "share": "operate", "kol": "marketing", "open": "it", "newretail": "it"}

SOURCE_TYPES = (("original", 45), ("authorized", 25), ("partner", 20), ("translated", 4), ("unknown", 6))
_SOURCE_TABLE = _cumulative(SOURCE_TYPES)
_LISTED_CATEGORIES = tuple(site.crawlable_categories())

# Tags the corpus draws from: the most frequent real tags plus the ASCII aliases.
_TAG_POOL_SIZE = 40
_EXTRA_TAGS = ("原型设计", "OpenAI", "ChatGPT", "DeepSeek", "To B", "AI Agent", "Vision Pro", "AIGC")

# The edge cases the replica plants, one article each (all indices < 150, so the default corpus has
# them all; ``Corpus.special`` maps the names to ids). A row says where the special lives, which header
# fields it sets once the header's draws are made (the draws are made all the same, so every other
# field keeps its random stream), and the blocks it plants in the body: (position, blocks(rng, when)).
# Specials that change an article in other ways are read where that part is built ("x" in specials).


@dataclass(frozen=True)
class Special:
    index: int
    header: dict = field(default_factory=dict)
    plant: tuple[int, Callable[[random.Random, datetime], list]] | None = None


_PROTOTYPE_TAGS = ("原型设计", "2年", "经验分享")
SPECIALS = {
    "no_time_meta": Special(10),
    "editor_lead": Special(30),
    "duplicate_original": Special(40),
    "duplicate_repost_1": Special(95, {"source": "partner"}),
    "table_pipe": Special(100),
    "table_colspan": Special(101),
    "table_no_th": Special(102),
    "nested_list": Special(103),
    "invalid_nested_list": Special(104),
    "code_block": Special(105),
    "br_lines": Special(106, plant=(1, lambda rng, when: [Para([
        Seg("text", "第一行：明确目标"), Seg("br"), Seg("text", "第二行：拆解路径"), Seg("br"),
        Seg("text", "第三行：验证结果")])])),
    "nbsp_runs": Special(107, plant=(1, lambda rng, when: [Para([
        Seg("nbsp", attr="4"), Seg("text", "缩进的段落"), Seg("nbsp", attr="3"),
        Seg("text", "中间有一串不换行空格")])])),
    "wechat_sections": Special(108, plant=(1, lambda rng, when: [
        Wrapper([Para([Seg("span", "公众号编辑器留下的嵌套样式段落。")], style=WECHAT_P)], depth=3)])),
    "lazy_data_src": Special(109, plant=(2, lambda rng, when: [Image(_image_url(rng, when), "data-src")])),
    "lazy_data_original": Special(110, plant=(2, lambda rng, when: [Image(_image_url(rng, when), "data-original")])),
    "bold_lead_in": Special(111, plant=(1, lambda rng, when: [
        Para([Seg("strong", "用户洞察："), Seg("text", "能力" + _sentence(rng))])])),
    "cjk_newlines": Special(112, plant=(1, lambda rng, when: [
        Para([Seg("text", "这一段来自公众号的排版"), Seg("nl"), Seg("text", "源码里有换行但读者看不到")])])),
    "empty_paragraphs": Special(113, plant=(2, lambda rng, when: [Empty("<p><br></p>"), Empty("<p>&nbsp;</p>")])),
    "weird_title": Special(114, {"tags": _PROTOTYPE_TAGS}),
    "long_title": Special(115),
    "template_literals": Special(116, plant=(1, lambda rng, when: [Para([Seg("text", TEMPLATE_LITERAL_TEXT)])])),
    "huge_body": Special(117),
    "unnamed_category": Special(118, {"category": "aigc", "listed": ("ai",)}),
    "relative_urls": Special(119, {"tags": _PROTOTYPE_TAGS}, plant=(1, lambda rng, when: [
        Para([Seg("text", "延伸阅读可以参考"), Seg("a", "这篇关于原型设计的文章", "/rp/5603585.html"),
              Seg("text", "，以及站内的示意图。")]),
        Image(f"/wp-content/uploads/{when:%Y/%m}/relative-diagram.png")])),
    "headings": Special(120),
    "copyright_block": Special(121, {"source": "original"}),
    "copyright_inline": Special(122, {"source": "original"}),
    "promo_card": Special(123),
    "no_promo_card": Special(124),
    "related_reading": Special(125),
    "columnist_bio": Special(126, {"source": "original"}),
    "duplicate_repost_2": Special(127, {"source": "authorized"}),
    "figure_caption": Special(128, plant=(3, lambda rng, when: [
        Image(_image_url(rng, when), caption="图1：用户旅程与关键触点", wrapper="figure")])),
    "no_cover": Special(129),
    "original_anonymous": Special(130, {"source": "original"}),
    "no_summary": Special(131),
    "original": Special(132, {"source": "original"}),
    "authorized": Special(133, {"source": "authorized"}),
    "translated": Special(134, {"source": "translated"}),
    "unknown_source": Special(135, {"source": "unknown"}),
    "listed_elsewhere": Special(140, {"category": "pd", "listed": ("data-analysis",)}),
    "multi_listing": Special(141, {"category": "operate", "listed": ("operate", "marketing", "data-analysis"),
                                   "tags": ("用户体验", "创业", "产品经理", "SaaS", "初级")}),
    "partner": Special(143, {"source": "partner"}),
    "duplicate_repost_3": Special(144, {"source": "partner"}),
    "old_id": Special(146),
}
SPECIAL_INDEX = {name: special.index for name, special in SPECIALS.items()}
_SPECIAL_BY_INDEX: dict[int, set[str]] = {}
for _name, _index in SPECIAL_INDEX.items():
    _SPECIAL_BY_INDEX.setdefault(_index, set()).add(_name)


def _in_order(specials) -> list[Special]:
    """The rows of ``specials``, in the table's order."""
    return [special for name, special in SPECIALS.items() if name in specials] if specials else []


DUPLICATE_GROUP = tuple(
    SPECIAL_INDEX[k] for k in ("duplicate_original", "duplicate_repost_1", "duplicate_repost_2", "duplicate_repost_3")
)

WEIRD_TITLE = "产品/运营.. 谁说了算？| \"增长\"与'留存'的取舍 🚀"
TEMPLATE_LITERAL_TEXT = "模板语法要原样显示：{% endhint %} 和 {{ x }}，以及 <script>alert(1)</script> 这类标签。"


@dataclass(frozen=True)
class Author:
    key: int
    id: int
    name: str
    avatar: str
    badges: tuple[str, ...]
    media: bool
    bio: str


@dataclass(frozen=True)
class Header:
    """What listings need of an article, cheap to compute for every index."""

    index: int
    id: int
    category: str
    listed: tuple[str, ...]  # category slugs whose listings show the article
    tags: tuple[str, ...]  # tag names, page order
    source_type: str
    author_key: int
    published: datetime
    views: int


@dataclass
class Article:
    """One article: every fact the page shows, and the body as blocks."""

    header: Header
    title: str
    author: Author
    has_time_meta: bool
    comments: int
    collects: int
    likes: int
    summary: str | None
    editor_lead: bool
    summary_in_p: bool
    blocks: list[Block]
    credit: str | None
    copyright_line: str | None
    copyright_block: bool  # True: in div.copyright-statement after the content; False: a <p> inside it
    disclaimer: bool
    promo_line: int | None  # index into vocab.PROMO_LINES of the 🔗 link
    promo_card: int | None  # index into vocab.PROMO_COURSES of the in-body card
    promo_card_at: int  # block index the card precedes
    related: tuple[int, ...]  # indices of #相关阅读# articles
    columnist_bio: bool
    revision: int
    duplicate_of: int | None
    plain_furniture: bool  # 赞赏/更多精彩内容 as bare paragraphs rather than classed blocks
    specials: frozenset[str] = field(default_factory=frozenset)

    @property
    def id(self) -> int:
        return self.header.id

    @property
    def index(self) -> int:
        return self.header.index

    @property
    def category(self) -> str:
        return self.header.category

    @property
    def category_name(self) -> str | None:
        return site.category_name(self.header.category)

    @property
    def published(self) -> datetime:
        return self.header.published

    @property
    def views(self) -> int:
        return self.header.views

    @property
    def tags(self) -> tuple[str, ...]:
        return self.header.tags

    @property
    def source_type(self) -> str:
        return self.header.source_type

    @property
    def body_text(self) -> str:
        return body_text(self.blocks)

    @property
    def read_minutes(self) -> int:
        return max(1, round(len(self.body_text) / 450))

    def published_value(self) -> str:
        """The manifest's ``published`` (items.py): 00:00 of the day when the page carries no time meta
        (``published_time_known`` is then ``has_time_meta``, False)."""
        return site.published_value(self.published if self.has_time_meta else self.published.date())[0]

    def images(self, base_url: str) -> list[str]:
        return body_images(self.blocks, base_url)

    def path(self) -> str:
        return f"/{self.category}/{self.id}.html"


class Corpus:
    """``Corpus(articles=150, seed=1, edits=(), calendar=None, removals=None)``: the replica's articles,
    built lazily by index.

    ``edits`` is a collection of article ids whose body gets a new revision (the site changing);
    ``removals`` maps article ids to the status their page answers now (404 or 410): gone from every
    listing. ``calendar``: see the module docstring; ``articles`` is then the count on day 0.
    ``plain_before`` (``YYYY-MM-DD``): an older era of the archive, whose articles published before
    that day have no summary and no image at all (hence no cover image); their text is the same.
    """

    def __init__(self, articles: int = 150, seed: int | str = 1, edits=(), plain_before: str | None = None,
                 calendar: Calendar | None = None, removals=None):
        if not 0 <= articles <= MAX_ARTICLES:
            raise ValueError(f"articles must be in 0..{MAX_ARTICLES}")
        self.size = self.base = articles
        self.seed = seed
        self.edits = frozenset(int(e) for e in edits)
        self.plain_before = plain_before
        self.removals = {int(k): int(v) for k, v in (removals or {}).items()}
        self.calendar = calendar
        self._shown: list[int] | None = None
        self._shift = timedelta(0)
        if calendar is not None:
            # Shifted so that article N (the first new one) would have its slot open at noon of day 0.
            self._shift = calendar.advanced(-calendar.day).now - self._slot(articles)[0]
            now = calendar.now
            while self.size < MAX_ARTICLES and self.published_at(self.size) <= now:
                self.size += 1
        self._id_offset = int(unit(seed, "id-offset") * ID_SPAN)
        self._id_inverse = pow(ID_MULTIPLIER, -1, ID_SPAN)
        self._tags = _tag_pool()
        self._tag_table = _cumulative(self._tags)
        self._tag_slugs = {name: site.tag_slug(name) for name, _ in self._tags}
        self._listing_lock = threading.Lock()
        self._listings: dict[str, list[int]] | None = None
        self.header = lru_cache(maxsize=8192)(self._header)
        self.article = lru_cache(maxsize=128)(self._article)
        self.special: dict[str, int] = {
            name: self.article_id(index) for name, index in SPECIAL_INDEX.items() if index < articles
        }

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return (f"Corpus(articles={self.size}, seed={self.seed!r}, edits={sorted(self.edits)}, calendar={self.calendar}"
                + (f", plain_before={self.plain_before!r})" if self.plain_before else ")"))

    @property
    def now(self) -> datetime | None:
        """The calendar's now (None without a calendar: the corpus does not age)."""
        return None if self.calendar is None else self.calendar.now

    def _due(self, index: int, kind: str, share: float, first: float, span: float) -> datetime | None:
        """When the seeded ``kind`` (an edit, a removal) happens to article ``index``, or None."""
        if self.calendar is None or index in _SPECIAL_BY_INDEX or unit(self.seed, index, kind) >= share:
            return None
        return self.published_at(index) + timedelta(days=first + span * unit(self.seed, index, kind, "at"))

    def removed(self, index: int) -> int | None:
        """The status (404 or 410) article ``index`` answers now if the site removed it, else None."""
        explicit = self.removals.get(self.article_id(index))
        if explicit:
            return explicit
        when = self._due(index, "removal", self.calendar.removal_share if self.calendar else 0, 2, 58)
        if when is not None and when <= self.calendar.now:
            return 410 if unit(self.seed, index, "removal", "status") < 0.5 else 404
        return None

    def edited(self, index: int) -> bool:
        """Whether article ``index`` is served in a new revision now (``edits``, or the calendar's)."""
        if self.article_id(index) in self.edits:
            return True
        when = self._due(index, "edit", self.calendar.edit_share if self.calendar else 0, 1, 29)
        return when is not None and when <= self.calendar.now

    def _grown(self, value: int, index: int) -> int:
        """A final count as it stands now: the calendar's articles gain theirs with age (``growth``)."""
        if self.calendar is None:
            return value
        return int(value * growth(self.calendar.now - self.published_at(index)))

    # ---- ids and dates: pure functions of (seed, index) ----

    def is_old_id(self, index: int) -> bool:
        if index in _SPECIAL_BY_INDEX:
            return "old_id" in _SPECIAL_BY_INDEX[index]
        return unit(self.seed, index, "old-id") < OLD_ID_SHARE

    def article_id(self, index: int) -> int:
        if self.is_old_id(index):
            return OLD_ID_BASE + index
        return ID_BASE + (ID_MULTIPLIER * index + self._id_offset) % ID_SPAN

    def index_of(self, article_id: int) -> int | None:
        """The index of an article id of this corpus, or None."""
        if ID_BASE <= article_id < ID_BASE + ID_SPAN:
            index = ((article_id - ID_BASE - self._id_offset) * self._id_inverse) % ID_SPAN
            if index < self.size and not self.is_old_id(index):
                return index
        elif OLD_ID_BASE <= article_id < OLD_ID_BASE + self.size:
            index = article_id - OLD_ID_BASE
            if self.is_old_id(index):
                return index
        return None

    def _slot(self, index: int) -> tuple[datetime, timedelta]:
        """Where article ``index``'s time slot opens (unshifted), and its length."""
        dense = self.calendar.step if self.calendar is not None else DENSE_STEP
        if self.calendar is not None and self.base <= index:  # published after day 0: at the rate
            return self._slot_before(self.base, dense) + dense * (index - self.base), dense
        if index < SPARSE:
            return EPOCH + SPARSE_STEP * index, SPARSE_STEP
        return EPOCH + SPARSE_STEP * SPARSE + dense * (index - SPARSE), dense

    @staticmethod
    def _slot_before(index: int, dense: timedelta) -> datetime:
        """Where the slot of article ``index`` opens on the timeline without a calendar's days."""
        if index <= SPARSE:
            return EPOCH + SPARSE_STEP * index
        return EPOCH + SPARSE_STEP * SPARSE + dense * (index - SPARSE)

    def published_at(self, index: int) -> datetime:
        start, step = self._slot(index)
        # Jitter stays inside the step, so publish time strictly increases with the index.
        jitter = int(unit(self.seed, index, "time") * step.total_seconds() * 0.8)
        return start + timedelta(seconds=jitter) + self._shift

    def path(self, index: int) -> str:
        """The article's URL path, from its header only (cheap)."""
        header = self.header(index)
        return f"/{header.category}/{header.id}.html"

    def newest_first(self) -> range | list[int]:
        """Indices of the articles the site shows, newest first (removed ones are gone)."""
        every = range(self.size - 1, -1, -1)
        if self.calendar is None and not self.removals:
            return every
        if self._shown is None:
            self._shown = [index for index in every if self.removed(index) is None]
        return self._shown

    # ---- headers ----

    def _header(self, index: int) -> Header:
        if not 0 <= index < self.size:
            raise IndexError(index)
        rng = random.Random(f"{self.seed}:{index}:head")
        specials = _SPECIAL_BY_INDEX.get(index, set())
        category = _weighted(rng, _URL_CATEGORY_TABLE)
        listed = [UNNAMED_LISTED_UNDER.get(category, category)]
        if rng.random() < 0.06:
            listed.append(rng.choice([c for c in _LISTED_CATEGORIES if c != listed[0]]))
        tag_count = rng.choice((1, 2, 2, 3, 3, 3, 4, 4, 5))
        tags: list[str] = []
        while len(tags) < tag_count:
            name = _weighted(rng, self._tag_table)
            if name not in tags:
                tags.append(name)
        source = _weighted(rng, _SOURCE_TABLE)
        author_key = rng.randrange(AUTHOR_COUNT)
        drawn = {"category": category, "listed": listed, "tags": tags, "source": source}
        for special in _in_order(specials):
            drawn.update(special.header)
        category, listed, tags, source = drawn["category"], drawn["listed"], drawn["tags"], drawn["source"]
        if source == "partner":
            author_key = AUTHOR_COUNT + rng.randrange(MEDIA_COUNT)
        return Header(
            index=index,
            id=self.article_id(index),
            category=category,
            listed=tuple(dict.fromkeys(listed)),
            tags=tuple(tags),
            source_type=source,
            author_key=author_key,
            published=self.published_at(index),
            views=self._grown(int(300 + rng.lognormvariate(7.5, 1.0)), index),
        )

    # ---- listings ----

    def _listing_index(self) -> dict[str, list[int]]:
        with self._listing_lock:
            if self._listings is None:
                listings: dict[str, list[int]] = {}
                for index in self.newest_first():
                    header = self._header(index)
                    for key in self._listing_keys(header):
                        listings.setdefault(key, []).append(index)
                    listings.setdefault(f"author:{self.author(header.author_key).id}", []).append(index)
                    if header.source_type != "partner":  # feeds leave partner reposts out
                        for key in ["feed:all"] + [f"feed:{slug}" for slug in header.listed]:
                            listings.setdefault(key, []).append(index)
                self._listings = listings
            return self._listings

    def _listing_keys(self, header: Header) -> list[str]:
        keys = [f"category:{slug}" for slug in header.listed]
        keys += [f"tag:{self._tag_slugs[name]}" for name in header.tags]
        return keys

    def listing(self, key: str) -> list[int]:
        """Indices shown by a listing, newest first.

        Keys: ``category:<slug>``, ``tag:<slug>``, ``author:<id>``, ``feed:all``, ``feed:<category>``.
        """
        return self._listing_index().get(key, [])

    def listing_keys(self) -> list[str]:
        return sorted(k for k in self._listing_index() if k.startswith(("category:", "tag:")))

    def listings_of(self, index: int) -> list[str]:
        return sorted(self._listing_keys(self.header(index)))

    def tag_slug(self, name: str) -> str:
        return self._tag_slugs.get(name) or site.tag_slug(name)

    def tag_name(self, slug: str) -> str | None:
        for name, known in self._tag_slugs.items():
            if known == slug:
                return name
        return None

    # ---- authors ----

    def author(self, key: int) -> Author:
        return _author(self.seed, key)

    # ---- titles (separate RNG so related-reading links can name other articles cheaply) ----

    def title(self, index: int) -> str:
        specials = _SPECIAL_BY_INDEX.get(index, set())
        if "weird_title" in specials:
            return WEIRD_TITLE
        rng = random.Random(f"{self.seed}:{index}:title")
        title = _fill(rng, rng.choice(vocab.TITLES))
        if "long_title" in specials:
            extra = "".join(_sentence(rng) for _ in range(14))
            title = (title + "——" + extra)[:300]
        return title

    # ---- full articles ----

    def article_by_id(self, article_id: int) -> Article | None:
        index = self.index_of(article_id)
        return None if index is None else self.article(index)

    def _article(self, index: int) -> Article:
        header = self.header(index)
        specials = frozenset(_SPECIAL_BY_INDEX.get(index, set()))
        rng = random.Random(f"{self.seed}:{index}")
        author = self.author(header.author_key)
        year = header.published.year
        revision = 1 if self.edited(index) else 0

        duplicate_of = None
        if index in DUPLICATE_GROUP[1:] and DUPLICATE_GROUP[0] < self.size:
            duplicate_of = self.article_id(DUPLICATE_GROUP[0])
            blocks = _body(self, DUPLICATE_GROUP[0], _SPECIAL_BY_INDEX.get(DUPLICATE_GROUP[0], set()))
            _mutate(blocks, random.Random(f"{self.seed}:{index}:repost"), changes=rng.choice((1, 2)))
        else:
            blocks = _body(self, index, specials)
        if revision:
            _mutate(blocks, random.Random(f"{self.seed}:{index}:rev{revision}"), changes=1)
            updated = (header.published + timedelta(days=3)).date().isoformat()
            blocks.append(Para([Seg("text", f"（本文于{updated}更新：补充了第{revision}版的数据与案例。）")]))

        source = header.source_type
        credit_name = author.name
        if source in ("authorized", "partner"):
            account = rng.choice(vocab.MEDIA_NAMES) if source == "authorized" else author.name
            editor = rng.choice(vocab.EDITOR_NAMES)
            blocks.append(Para([Seg("text", f"作者：{rng.choice(vocab.PERSON_NAMES)}；编辑：{editor}")]))
            blocks.append(Para([Seg("text", f"来源公众号：{account}（ID：{_ascii_id(rng)}），{_sentence(rng)}")]))
        if source == "translated":
            blocks.append(Para([Seg("text", f"原文作者：{rng.choice(vocab.PERSON_NAMES)}；译者：{author.name}")]))

        copyright_line, credit = _copyright(source, credit_name, "original_anonymous" in specials)

        cover = _image_url(rng, header.published)
        if "no_cover" not in specials and rng.random() > 0.03:
            blocks.insert(0, Image(cover, wrapper="p"))

        summary: str | None = "".join(_sentence(rng) for _ in range(rng.randint(1, 3)))
        if "no_summary" in specials or (rng.random() < 0.02 and not specials):
            summary = None
        if self.plain_before is not None and header.published.date().isoformat() < self.plain_before:
            blocks = [block for block in blocks if not isinstance(block, Image)]  # drawn as before, then dropped
            summary = None
        editor_lead = summary is not None and (
            "editor_lead" in specials or (2020 <= year <= 2022 and rng.random() < 0.5)
        )

        promo_card = None if "no_promo_card" in specials else rng.randrange(len(vocab.PROMO_COURSES))
        if "promo_card" not in specials and rng.random() < 0.45:
            promo_card = None
        related: tuple[int, ...] = ()
        if ("related_reading" in specials or rng.random() < 0.1) and index > 3:
            related = tuple(sorted(rng.sample(range(index), 3), reverse=True))
        columnist = "columnist_bio" in specials or (source == "original" and rng.random() < 0.15)

        copyright_block = rng.random() < 0.35
        if "copyright_block" in specials:
            copyright_block = True
        if "copyright_inline" in specials:
            copyright_block = False

        return Article(
            header=header,
            title=self.title(index),
            author=author,
            has_time_meta="no_time_meta" not in specials and (year >= 2021 or rng.random() < 0.6),
            comments=self._grown(int(rng.paretovariate(1.6)) - 1 if rng.random() < 0.7 else 0, index),
            collects=self._grown(int(rng.paretovariate(1.2) * 3) - 3 if rng.random() < 0.8 else 0, index),
            likes=self._grown(int(rng.paretovariate(1.3) * 2) - 2, index),
            summary=summary,
            editor_lead=editor_lead,
            summary_in_p=rng.random() < 0.5,
            blocks=blocks,
            credit=credit,
            copyright_line=copyright_line,
            copyright_block=copyright_block,
            disclaimer=rng.random() < 0.65,
            promo_line=None if rng.random() < 0.04 else rng.randrange(len(vocab.PROMO_LINES)),
            promo_card=promo_card,
            promo_card_at=_promo_position(blocks, rng),
            related=related,
            columnist_bio=columnist,
            revision=revision,
            duplicate_of=duplicate_of,
            plain_furniture=rng.random() < 0.5,
            specials=specials,
        )

    # ---- manifest ----

    def manifest_record(self, index: int, base_url: str) -> dict:
        article = self.article(index)
        base = site.Site(base_url)
        text = article.body_text
        images = article.images(base.base_url)
        record = {
            "id": article.id,
            "url": base.article_url(article.category, article.id),
            "category": article.category,
            "category_name": article.category_name,
            "title": article.title,
            "author": {
                "name": article.author.name,
                "id": article.author.id,
                "url": base.author_url(article.author.id),
            },
            "published": article.published_value(),
            "published_time_known": article.has_time_meta,
            "summary": article.summary,
            "tags": list(article.tags),
            "stats": {"views": article.views, "comments": article.comments, "collects": article.collects},
            "read_minutes": article.read_minutes,
            "cover_image": images[0] if images else None,
            "images": images,
            "source": {"type": article.source_type, "credit": article.credit},
            "body_text": text,
            "word_count": textmodel.word_count(text),
            "listings": self.listings_of(index),
            "content_hash": textmodel.content_hash(text),
            "duplicate_of": article.duplicate_of,
        }
        return {key: record[key] for key in MANIFEST_FIELDS}

    def manifest(self, base_url: str = site.DEFAULT_BASE_URL) -> Iterator[dict]:
        """One record per article the site shows now, newest first, with exactly the keys of
        ``items.MANIFEST_FIELDS`` (with a calendar: as of its current day)."""
        for index in self.newest_first():
            yield self.manifest_record(index, base_url)


# ---------------------------------------------------------------------------------------------
# generation helpers


@lru_cache(maxsize=1)
def _tag_pool() -> tuple[tuple[str, float], ...]:
    known = list(site.known_tags())
    names = known[:_TAG_POOL_SIZE] + [n for n in _EXTRA_TAGS if n in site.known_tags()]
    # Frequent tags are frequent, but flattened so most of the pool shows up in 150 articles.
    return tuple((name, 1.0 / (rank + 4) ** 0.5) for rank, name in enumerate(dict.fromkeys(names)))


@lru_cache(maxsize=512)
def _author(seed, key: int) -> Author:
    rng = random.Random(f"{seed}:author:{key}")
    media = key >= AUTHOR_COUNT
    if media:
        name = vocab.MEDIA_NAMES[key - AUTHOR_COUNT]
    else:
        base = vocab.PERSON_NAMES[key % len(vocab.PERSON_NAMES)]
        name = base if key < len(vocab.PERSON_NAMES) else base + rng.choice(("同学", "说产品", "的笔记", "2号"))
    month = rng.choice(("2019/05", "2020/03", "2021/11", "2022/07"))
    stem = "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789", k=20))
    avatar = f"https://image.woshipm.com/wp-files/{month}/{stem}.png"
    avatar += "!/both/72x72" if rng.random() < 0.6 else "?imageView2/1/w/72/h/72/q/100"
    badges = tuple(
        f"https://static.woshipm.com/tag/{rng.randint(1000, 2999)}_1@2x.png" for _ in range(rng.choice((0, 1, 2, 2)))
    )
    first, second = rng.choice(vocab.CONCEPTS), rng.choice(vocab.CONCEPTS)
    bio = f"{name}，{rng.choice(vocab.DOMAINS)}从业者，关注{first}与{second}。"
    return Author(key=key, id=30_000 + key * 9_973, name=name, avatar=avatar, badges=badges, media=media, bio=bio)


def _fill(rng: random.Random, template: str) -> str:
    concept, concept2 = rng.sample(vocab.CONCEPTS, 2)
    role, role2 = rng.sample(vocab.ROLES, 2)
    return template.format(
        role=role,
        role2=role2,
        concept=concept,
        concept2=concept2,
        domain=rng.choice(vocab.DOMAINS),
        verb=rng.choice(vocab.VERBS),
        manner=rng.choice(vocab.MANNERS),
        outcome=rng.choice(vocab.OUTCOMES),
        connector=rng.choice(vocab.CONNECTORS),
        num=rng.choice(vocab.NUMBERS),
    )


def _sentence(rng: random.Random) -> str:
    return _fill(rng, rng.choice(vocab.SENTENCES))


def _sentences(rng: random.Random, low: int = 2, high: int = 5) -> str:
    return "".join(_sentence(rng) for _ in range(rng.randint(low, high)))


def _ascii_id(rng: random.Random) -> str:
    return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(5, 9)))


def _image_url(rng: random.Random, when: datetime) -> str:
    """An image URL of the shape the site used at ``when``."""
    if rng.random() < 0.08:
        stem = "".join(rng.choices("0123456789abcdef", k=16))
        return f"https://image.yunyingpai.com/wp/{when:%Y/%m}/{stem}.jpg"
    if when.year >= 2023:
        parts = [8, 4, 4, 4, 12]
        uid = "-".join("".join(rng.choices("0123456789abcdef", k=n)) for n in parts)
        return f"https://image.woshipm.com/{when:%Y/%m/%d}/{uid}.{rng.choice(('jpg', 'png'))}"
    stem = "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789", k=20))
    return f"https://image.woshipm.com/wp-files/{when:%Y/%m}/{stem}.{rng.choice(('png', 'jpg'))}"


def _copyright(source: str, name: str, anonymous: bool) -> tuple[str | None, str | None]:
    """The copyright line of §4.7 and the credit it names."""
    if source == "original":
        if anonymous:
            return "本文原创发布于人人都是产品经理。未经作者许可，禁止转载", None
        return f"本文由 @{name} 原创发布于人人都是产品经理，未经作者许可，禁止转载", name
    if source == "authorized":
        return f"本文由@{name} 授权发布于人人都是产品经理，未经许可，禁止转载", name
    if source == "partner":
        return f"本文由人人都是产品经理合作媒体 @{name} 授权发布，未经许可，禁止转载", name
    if source == "translated":
        return f"本文由 @{name} 翻译发布于人人都是产品经理，未经许可，禁止转载", name
    return None, None


_CJK_CHAR = re.compile(f"[{textmodel.CJK}]")


def _cjk_split(text: str) -> tuple[str, str] | None:
    """Split ``text`` between two CJK characters (where a pasted source newline can sit)."""
    for pos in range(len(text) // 2, len(text) - 1):
        if _CJK_CHAR.match(text[pos - 1]) and _CJK_CHAR.match(text[pos]):
            return text[:pos], text[pos:]
    return None


def _styled_para(rng: random.Random, features: set[str]) -> Para:
    """A body paragraph, decorated with the paste noise its article's features call for."""
    text = _sentences(rng)
    segs: list[Seg] = []
    if "bold_lead_in" in features and rng.random() < 0.35:
        segs.append(Seg("strong", rng.choice(vocab.BOLD_LEADS) + rng.choice("：:")))
    if "cjk_newlines" in features and rng.random() < 0.5:
        split = _cjk_split(text)
        if split:
            segs += [Seg("text", split[0]), Seg("nl"), Seg("text", split[1])]
            return Para(segs)
    if "nbsp_runs" in features and rng.random() < 0.4:
        first, rest = text[: len(text) // 3], text[len(text) // 3 :]
        segs += [
            Seg("nbsp", attr="2"),
            Seg("text", first),
            Seg("nbsp", attr=str(rng.randint(1, 4))),
            Seg("text", rest),
        ]
        return Para(segs)
    if "br_lines" in features and rng.random() < 0.4:
        lines = [_sentence(rng) for _ in range(rng.randint(2, 4))]
        for pos, line in enumerate(lines):
            if pos:
                segs.append(Seg("br"))
            segs.append(Seg("text", line))
        return Para(segs)
    if "strong_inline" in features and rng.random() < 0.2:
        segs += [Seg("text", _sentence(rng)), Seg("strong", _sentence(rng))]
        return Para(segs)
    segs.append(Seg("text", text))
    return Para(segs)


def _list_block(rng: random.Random, nested: bool = False, invalid: bool = False) -> ListBlock:
    items = []
    for pos in range(rng.randint(3, 5)):
        children = None
        if (nested or invalid) and pos == 1:
            children = ListBlock(False, [ListItem([Seg("text", _fill(rng, "{concept}：{outcome}"))]) for _ in range(2)])
        lead = _fill(rng, "{concept}")
        items.append(ListItem([Seg("strong", lead + "："), Seg("text", _sentence(rng))], children))
    return ListBlock(ordered=rng.random() < 0.5 and not invalid, items=items, nest_outside_li=invalid)


def _table(rng: random.Random, pipe: bool = False, colspan: bool = False, th: bool = True) -> Table:
    head = ["维度", "方案A", "方案B"]
    rows = [[Cell(h, header=th) for h in head]]
    for _ in range(rng.randint(3, 5)):
        rows.append(
            [
                Cell(rng.choice(vocab.CONCEPTS)),
                Cell(rng.choice(vocab.OUTCOMES)),
                Cell(rng.choice(vocab.OUTCOMES)),
            ]
        )
    if pipe:
        rows.append([Cell("命令"), Cell("a | b"), Cell("grep 'x|y' log.txt")])
    if colspan:
        rows.append([Cell("结论"), Cell(_fill(rng, "两种方案都需要{verb}{concept}"), colspan=2)])
    return Table(rows)


def _body(corpus: Corpus, index: int, specials: set[str] | frozenset[str]) -> list[Block]:
    """The body blocks of article ``index`` (before the cover and the credit lines)."""
    rng = random.Random(f"{corpus.seed}:{index}:body")
    when = corpus.published_at(index)
    features = {
        name
        for name, share in (
            ("bold_lead_in", 0.3),
            ("br_lines", 0.2),
            ("nbsp_runs", 0.15),
            ("wechat_sections", 0.2),
            ("cjk_newlines", 0.15),
            ("empty_paragraphs", 0.2),
            ("strong_inline", 0.4),
            ("lazy_data_src", 0.2),
            ("lazy_data_original", 0.03),
            ("figure_caption", 0.1),
            ("headings", 0.85),
            ("list", 0.4),
            ("table", 0.06),
            ("code_block", 0.02),
        )
        if rng.random() < share
    }
    features |= set(specials)
    if specials & {"nested_list", "invalid_nested_list"}:
        features.add("list")
    if specials & {"table_pipe", "table_colspan", "table_no_th"}:
        features.add("table")

    def image() -> Block:
        lazy = ""
        if "lazy_data_original" in features and rng.random() < 0.6:
            lazy = "data-original"
        elif "lazy_data_src" in features and rng.random() < 0.7:
            lazy = "data-src"
        url = _image_url(rng, when)
        if "relative_urls" in features and rng.random() < 0.5:
            url = f"/wp-content/uploads/{when:%Y/%m}/{_ascii_id(rng)}.png"
        if "figure_caption" in features and rng.random() < 0.6:
            return Image(url, lazy, caption=_fill(rng, "图：{domain}的{concept}示意"), wrapper="figure")
        return Image(url, lazy, wrapper="section" if "wechat_sections" in features else "p")

    def paragraphs(low: int, high: int) -> list[Block]:
        out: list[Block] = [_styled_para(rng, features) for _ in range(rng.randint(low, high))]
        if "wechat_sections" in features and rng.random() < 0.5:
            styled = [Para([Seg("span", _sentences(rng, 1, 3))], style=WECHAT_P) for _ in range(2)]
            styled.append(
                Para(
                    [Seg("text", _sentence(rng)), Seg("br"), Seg("span", _sentence(rng))],
                    tag="section",
                    style=WECHAT_P,
                )
            )
            out.append(Wrapper(styled, depth=rng.choice((2, 3))))
        if "empty_paragraphs" in features and rng.random() < 0.5:
            out.insert(rng.randrange(len(out) + 1), Empty(rng.choice(("<p><br></p>", "<p>&nbsp;</p>", "<p></p>"))))
        return out

    blocks: list[Block] = paragraphs(1, 3)
    sections = rng.randint(2, 5)
    if "huge_body" in specials:
        sections = 150
    for number in range(sections):
        if "headings" in features:
            blocks.append(Heading(2, f"{_CN_NUMBERS[number % 10]}、{_fill(rng, rng.choice(vocab.HEADINGS))}"))
        blocks += paragraphs(2, 5)
        if rng.random() < 0.5:
            blocks.append(image())
        if "headings" in features and rng.random() < 0.4:
            for sub in range(rng.randint(2, 3)):
                blocks.append(Heading(3, f"{sub + 1}. {_fill(rng, rng.choice(vocab.HEADINGS))}"))
                blocks += paragraphs(1, 2)
        if number == 0 and "list" in features:
            blocks.append(_list_block(rng, "nested_list" in features, "invalid_nested_list" in features))
        if number == 1 and "table" in features:
            blocks.append(
                _table(
                    rng,
                    "table_pipe" in features,
                    "table_colspan" in features,
                    th="table_no_th" not in features,
                )
            )
        if number == 1 and "code_block" in features:
            language, code = vocab.CODE_SNIPPETS[rng.randrange(len(vocab.CODE_SNIPPETS))]
            if "code_block" in specials:
                language, code = vocab.CODE_SNIPPETS[0]
            blocks.append(Para([Seg("text", "计算留存的示例代码如下：")]))
            blocks.append(Code(language, code))
    if not any(isinstance(b, Image) for b in blocks):
        blocks.insert(len(blocks) // 2, image())
    for special in _in_order(specials):
        if special.plant:
            position, planted = special.plant
            blocks[position:position] = planted(rng, when)
    return blocks


WECHAT_P = "margin-bottom: 16px; line-height: 1.75em; letter-spacing: 1px;"
_CN_NUMBERS = "一二三四五六七八九十"


def _mutate(blocks: list[Block], rng: random.Random, changes: int) -> None:
    """Change ``changes`` sentences of plain paragraphs: a near-duplicate or a new revision."""
    plain = [pos for pos, b in enumerate(blocks) if isinstance(b, Para) and [s.kind for s in b.segs] == ["text"]]
    for pos in rng.sample(plain, min(changes, len(plain))):
        para = blocks[pos]
        assert isinstance(para, Para)
        blocks[pos] = Para([Seg("text", para.segs[0].text + _sentence(rng))], style=para.style, tag=para.tag)


def _promo_position(blocks: list[Block], rng: random.Random) -> int:
    """The in-body promo card sits between paragraphs, after the first third of the body."""
    return max(1, min(len(blocks), len(blocks) // 3 + rng.randint(0, 2)))
