"""The replica's HTTP server: routes of site-model §1, rendered on request, plus fault modes.

``with ReplicaServer(articles=150, seed=1, faults="429=0.2", edits=()) as server: server.base_url``

Fault spec (all off by default): comma-separated ``name=value``; value is a fraction of pages
(chosen by hashing seed, fault and page, so deterministic) or ``ids:1;2;3`` (article ids).

- ``429``: the first request of a page answers 429 with ``Retry-After: 1``.
- ``503``: the first 1–2 requests of a page answer 503 (then it succeeds: a retrying crawler gets all).
- ``slow``: every response of the page waits 1–2 s.
- ``drop``: the first request gets the headers and half the body, then the socket closes.
- ``truncate``: article pages always come cut before or inside the content (valid 200, no ``</html>``).
- ``jsshell``: article pages are a shell; the wrapper is in ``script#__INITIAL_STATE__`` JSON and only
  a script builds the DOM.
- ``interstitial``: article pages answer a "Just a moment..." challenge (503 or 200) until the request
  carries the ``cf_clearance`` cookie the challenge script sets.

Hostile and malformed article pages (``pages.render_hostile``; what each adds is in ``pages.HOSTILE_TEXT``):

- ``unsafe``: ``javascript:``/``vbscript:``/``data:`` links and images in mixed case, behind white space
  or entities, event handlers, a ``<script>`` in an IE conditional comment, an iframe and a form; the
  author link is a ``javascript:`` URL.
- ``embed``: an unclosed ``<embed>`` and ``<object>``s (libxml2 nests what follows inside them).
- ``deep`` / ``toodeep``: paragraphs inside 1,000 / 3,000 nested ``<div><span>`` (libxml2's limit is 2,048).
- ``baddate``: the page shows ``2021-02-30`` and has no ``article:published_time``.
- ``gzipbomb``: the article answers ``Content-Encoding: gzip`` with ~4.7 MB that inflate to 1 GiB of zeros.
- ``endlessbody``: the article answers a chunked body that never ends (``ENDLESS_CHUNK`` over and over,
  until the client goes away).
- ``gbk``: the page is sent as GB18030 bytes with ``Content-Type: text/html`` (no charset) and keeps
  its ``<meta charset="UTF-8">``.

429/503/slow/drop also hit listing pages, the home page and feeds (keyed by path).

- ``ratelimit``: not a share of pages but a rate, as a real server enforces it: ``ratelimit=5`` allows
  5 requests in any second; the request over it opens a window of ``RATE_LIMIT_RETRY_AFTER`` seconds
  in which every request gets 429 with that ``Retry-After``. A request arriving inside a window on a
  connection that already carried two of that window's 429s counts as ``ratelimit:ignored``: an
  HTTP/1.1 client sends a connection's next request only once it has the previous answer, so that
  client had a 429 in hand and sent anyway, then again. The first request after a connection's first
  429 is not counted so (``ratelimit:reused``): the client's transport puts the connection back in
  its pool as it reads the answer, and a request its crawler had already let go, before the answer
  reached any of its code, can take that connection. Every other request inside the window was sent
  before its client could know (``ratelimit:in_flight``), however slowly a busy client reads its
  answers: the count is causal, not a timing guess.

Listing quirks (``quirks={"category:pd": "loop_redirect"}``, ``--quirk category:pd=loop_redirect``),
what a walker must survive on a listing: ``empty_page`` (page 2 is a 200 with no cards),
``check_page`` (page 2 is an anti-bot check, passed by a browser that runs its script),
``loop_redirect`` (page 3 redirects to page 1), ``repeat`` (page 3 repeats page 2), ``endless``
(past the last page, pages of new cards whose articles answer 404, never a 404 page),
``past_count`` (the same, with a pagination that shows the real page count), ``bad_ids`` (page 1 opens
with two cards whose links are no article URL: ``BAD_CARD_LINKS``, an id of 2^63 and a ``javascript:`` URL).

Article redirects (``redirects={id: location}``): that article's page answers 302 to ``location``,
a path on the replica or an absolute URL (another server: a redirect off the site).

Layouts (``layout="v2"``, ``--layout v2=0.01,cards2019=0.2``): a share of pages (all when no share
is given) in another layout, chosen by hashing seed, layout and page like the faults. ``v2``: article
pages in a plausible redesign (renamed classes, meta block moved under the body, tags as ``#`` chips);
``random:SEED`` article pages in a redesign drawn at random from the seed (``pages.random_redesign``);
``cards2019``: listing pages in the 2018–2021 card style (``<time>`` and view counts, no tab
templates, WordPress pagination). The content, hence the manifest, is the same in every layout.

``latency`` (a ReplicaServer argument, ``--latency`` on the command line) delays every response by
that many seconds, like a real server far away.

The calendar (``today=date(2026, 3, 1), rate=24``, or ``calendar=Calendar(...)``; ``--today 2026-03-01
--rate 24``): the site lives
(``corpus.Calendar``). ``GET /__replica__/clock`` says where it stands (``{"today", "now", "day",
"articles"}``, ``now`` an ISO time with offset, the time a crawl of that day takes as its clock) and
``GET /__replica__/clock?advance=DAYS`` moves it on: new articles, grown stats, the seeded edits and
removals of those days. ``removals={id: 404 or 410}`` (``set_removals``) removes given articles now.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sys
import threading
import time
import zlib
from collections import Counter, deque
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

from woshipm_crawler import site

from . import pages
from .corpus import Calendar, Corpus, unit

LISTING_QUIRKS = ("empty_page", "check_page", "loop_redirect", "repeat", "endless", "past_count", "bad_ids")
# Card links of the ``bad_ids`` quirk: no article URL a crawler may take (an id past SQLite's integers).
BAD_CARD_LINKS = (f"/pd/{2**63}.html", "JavaScript:/pd/7.html")
FAULT_NAMES = ("429", "503", "slow", "drop", "truncate", "jsshell", "interstitial", "ratelimit", "gbk",
               "gzipbomb", "endlessbody", *pages.HOSTILE_KINDS)
GZIP_BOMB_BYTES = 1 << 30  # what the ``gzipbomb`` body inflates to: 1 GiB of zeros, ~4.7 MB on the wire
ENDLESS_BODY_LIMIT = 4 << 30  # an ``endlessbody`` answer stops here at the latest (a client that reads on)
ENDLESS_CHUNK = b"<p>" + "无尽的段落。".encode() * 5000 + b"</p>\n"
RATE_LIMIT_RETRY_AFTER = 2
# A request inside a window, by how many of the window's 429s its connection carried before it: 0, 1, 2+.
IN_WINDOW_KINDS = ("ratelimit:in_flight", "ratelimit:reused", "ratelimit:ignored")
ENDLESS_ID_BASE = 900_000_000  # ids of the cards an endless listing makes up (their pages 404)
LISTING_FAULTS = frozenset({"429", "503", "slow", "drop"})
LAYOUT_NAMES = ("v2", "cards2019", "random:SEED")
RANDOM_LAYOUT_RE = re.compile(r"random:(\w+)")
ALLOWED_HOSTS = ("127.0.0.1", "localhost")

_CATEGORY_RE = re.compile(r"^/category/([a-z][a-z0-9-]*)(?:/page/(\d+))?/?$")
_CATEGORY_FEED_RE = re.compile(r"^/category/([a-z][a-z0-9-]*)/feed/?$")
_TAG_RE = re.compile(r"^/tag/([^/]+)(?:/page/(\d+))?/?$")
_POPULAR_RE = re.compile(r"^/api2/app/article/popular/([^/]*)/?$")


@dataclass(frozen=True)
class FaultSpec:
    """Which pages get which fault: ``FaultSpec.parse("429=0.2,truncate=ids:1;2")``."""

    fractions: dict[str, float] = field(default_factory=dict)
    ids: dict[str, frozenset[int]] = field(default_factory=dict)
    rate_limit: float | None = None  # requests per second (``ratelimit=5``)

    @classmethod
    def parse(cls, text: str | None) -> FaultSpec:
        fractions: dict[str, float] = {}
        ids: dict[str, frozenset[int]] = {}
        rate_limit = None
        for part in filter(None, (p.strip() for p in (text or "").split(","))):
            name, _, value = part.partition("=")
            name = name.strip()
            if name not in FAULT_NAMES:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")
            value = value.strip()
            if name == "ratelimit":
                rate_limit = float(value)
                if rate_limit <= 0:
                    raise ValueError("fault ratelimit: requests per second must be positive")
            elif value.startswith("ids:"):
                ids[name] = frozenset(int(v) for v in value[4:].split(";") if v.strip())
            else:
                fraction = float(value or 1)
                if not 0 <= fraction <= 1:
                    raise ValueError(f"fault {name}: fraction must be in 0..1")
                fractions[name] = fraction
        return cls(fractions, ids, rate_limit)

    def __bool__(self) -> bool:
        return bool(self.fractions or self.ids or self.rate_limit)

    def hits(self, name: str, key: int | str, seed: object) -> bool:
        """Whether page ``key`` (an article id, or a listing path) gets fault ``name``."""
        if isinstance(key, int) and key in self.ids.get(name, ()):
            return True
        fraction = self.fractions.get(name, 0.0)
        return fraction > 0 and unit(seed, "fault", name, key) < fraction


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)
    fault_key: int | str | None = None  # set on pages faults may hit
    article_id: int | None = None
    endless: bool = False  # the body is ENDLESS_CHUNK over and over, chunked, never ending


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, keep-alive clients stall ~40 ms on each.
    disable_nagle_algorithm = True
    server_version = "nginx"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - the signature is the base class's
        pass

    def do_HEAD(self):
        self._serve(send_body=False)

    def do_GET(self):
        self._serve(send_body=True)

    def _serve(self, send_body: bool) -> None:
        replica: ReplicaServer = self.server.replica  # type: ignore[attr-defined]
        internal = self.path.startswith("/__replica__/")
        if not internal:
            replica._count("requests")
            replica._log_path(self.path)
        agent = self.headers.get("User-Agent", "")
        if "HeadlessChrome" in agent or "Chrome/" in agent:
            replica._count("browser_requests")
        response = None if internal else replica.rate_limited(self)
        if response is None:
            response = replica.respond(self.path, self.headers.get("Cookie", ""))
            if response.fault_key is not None:
                response = replica.apply_faults(self.path, response)
        if replica.latency:
            time.sleep(replica.latency)
        replica._count(f"status:{response.status}")
        drop = response.headers.pop("X-Replica-Drop", None)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        if response.endless:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if drop:
            self.send_header("Connection", "close")
        self.end_headers()
        if not send_body:
            return
        if drop:
            # Half the body, then the connection goes away: a valid start, no end.
            self.wfile.write(response.body[: len(response.body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if response.endless:
            self._write_endless()
            return
        self.wfile.write(response.body)

    def _write_endless(self) -> None:
        """Chunks until the client goes away (or ENDLESS_BODY_LIMIT): a body with no end."""
        self.close_connection = True
        chunk = f"{len(ENDLESS_CHUNK):x}\r\n".encode() + ENDLESS_CHUNK + b"\r\n"
        sent = 0
        try:
            while sent < ENDLESS_BODY_LIMIT:
                self.wfile.write(chunk)
                sent += len(ENDLESS_CHUNK)
        except OSError:  # the client stopped reading: what it should do
            return
        self.wfile.write(b"0\r\n\r\n")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that goes away mid-answer (a crawl killed on purpose) is no server error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass(frozen=True)
class LayoutSpec:
    """Which pages are served in which layout: ``LayoutSpec.parse("v2=0.01,cards2019=0.2")``."""

    shares: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> LayoutSpec:
        shares: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in (text or "").split(","))):
            name, _, value = part.partition("=")
            if name not in LAYOUT_NAMES[:-1] and not RANDOM_LAYOUT_RE.fullmatch(name):
                raise ValueError(f"unknown layout {name!r}; known: {', '.join(LAYOUT_NAMES)}")
            try:
                share = float(value) if value else 1.0
            except ValueError:
                share = -1.0
            if not 0 <= share <= 1:
                raise ValueError(f"layout {name}: the share of pages must be in 0..1, not {value!r}")
            shares[name] = share
        return cls(shares)

    def hits(self, name: str, key: int | str, seed: object) -> bool:
        """Whether page ``key`` (an article id, or a listing path) is served in layout ``name``."""
        share = self.shares.get(name, 0.0)
        return share >= 1 or (share > 0 and unit(seed, "layout", name, key) < share)

    def redesign(self, key: int | str, seed: object) -> str | None:
        """The seed of the random redesign (``random:SEED``) page ``key`` is served in, or None."""
        return next((match[1] for name in self.shares if (match := RANDOM_LAYOUT_RE.fullmatch(name))
                     and self.hits(name, key, seed)), None)


class ReplicaServer:
    """The offline woshipm.com on 127.0.0.1, serving from a background thread.

    ``ReplicaServer(articles=150, seed=1, faults="", edits=(), host="127.0.0.1", port=0)``;
    ``port=0`` picks a free port. Use as a context manager or call ``start()``/``stop()``.
    """

    def __init__(
        self,
        articles: int = 150,
        seed: int | str = 1,
        faults: str | FaultSpec = "",
        edits=(),
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        quirks: dict[str, str] | None = None,
        layout: str | LayoutSpec = "",
        redirects: dict[int, str] | None = None,
        plain_before: str | None = None,
        today=None,
        rate: float = 24.0,
        removals: dict[int, int] | None = None,
        calendar: Calendar | None = None,
    ):
        if host not in ALLOWED_HOSTS:
            raise ValueError(f"the replica binds only to 127.0.0.1 (got {host!r})")
        self.host = "127.0.0.1"
        self.port = port
        self.faults = faults if isinstance(faults, FaultSpec) else FaultSpec.parse(faults)
        if calendar is None and today is not None:
            calendar = Calendar(today, rate=rate)
        self.corpus = Corpus(articles=articles, seed=seed, edits=edits, plain_before=plain_before,
                             calendar=calendar, removals=removals)
        self.latency = latency
        self.layout = layout if isinstance(layout, LayoutSpec) else LayoutSpec.parse(layout)
        self.quirks = dict(quirks or {})
        # Article id -> where its page redirects (a path on this replica or an absolute URL).
        self.redirects = dict(redirects or {})
        unknown = set(self.quirks.values()) - set(LISTING_QUIRKS)
        if unknown:
            raise ValueError(
                f"unknown listing quirk(s) {', '.join(sorted(unknown))}; known: {', '.join(LISTING_QUIRKS)}"
            )
        self.stats: Counter[str] = Counter()
        self.path_counts: Counter[str] = Counter()  # requests per path (robots.txt, pages, feeds)
        self.arrivals: list[float] = []  # monotonic arrival time of every request (pace measurements)
        self._arrivals: deque[float] = deque()  # the last second's request times (ratelimit)
        self._window: tuple[float, float] | None = None  # (opened, closes) of the current 429 window
        self._lock = threading.Lock()
        self._fault_hits: Counter[tuple[str, str]] = Counter()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ReplicaServer:
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.replica = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(target=httpd.serve_forever, name="replica-http", daemon=True)
        self._thread.start()
        self._warm_up()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ReplicaServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def set_corpus(self, articles: int | None = None, seed: int | str | None = None, edits=None,
                   calendar: Calendar | None = None, removals=None) -> Corpus:
        """Swap in a changed site: more articles, another seed, new revisions of ``edits`` ids, another
        day of the calendar, removed articles (``{id: status}``)."""
        old = self.corpus
        self.corpus = Corpus(
            articles=(old.base if old.calendar else old.size) if articles is None else articles,
            seed=old.seed if seed is None else seed,
            edits=old.edits if edits is None else edits,
            plain_before=old.plain_before,
            calendar=old.calendar if calendar is None else calendar,
            removals=old.removals if removals is None else removals,
        )
        self._warm_up()
        return self.corpus

    def advance(self, days: int) -> Corpus:
        """Move the calendar ``days`` on (ValueError without a calendar)."""
        if self.corpus.calendar is None:
            raise ValueError("the replica has no calendar (start it with today=... / --today)")
        return self.set_corpus(calendar=self.corpus.calendar.advanced(days))

    def set_removals(self, removals: dict[int, int]) -> Corpus:
        """These article ids answer their status (404 or 410) from now on; {} brings them back."""
        return self.set_corpus(removals=removals)

    def clock(self) -> dict:
        """Where the calendar stands: today, now (ISO with offset), the day, the articles shown."""
        corpus = self.corpus
        calendar = corpus.calendar
        return {
            "today": calendar.now.date().isoformat() if calendar else None,
            "now": calendar.now.isoformat() if calendar else None,
            "day": calendar.day if calendar else None,
            "articles": len(corpus.newest_first()),
        }

    def set_faults(self, faults: str | FaultSpec) -> None:
        self.faults = faults if isinstance(faults, FaultSpec) else FaultSpec.parse(faults)
        with self._lock:
            self._fault_hits.clear()

    def reset_stats(self) -> None:
        with self._lock:
            self.stats.clear()
            self.path_counts.clear()
            self.arrivals.clear()
            self._fault_hits.clear()

    def _warm_up(self) -> None:
        # Building the listing index of a large corpus takes a moment: do it off the request path.
        threading.Thread(target=self.corpus.listing, args=("feed:all",), daemon=True).start()

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] += n

    def _log_path(self, raw_path: str) -> None:
        with self._lock:
            self.path_counts[raw_path] += 1
            self.arrivals.append(time.monotonic())

    def rate_limited(self, connection) -> Response | None:
        """A 429 when this request is over ``ratelimit`` or inside an open window; else None.
        ``connection`` is the request's connection (its handler): it counts the 429s of a window it carried."""
        limit = self.faults.rate_limit
        if limit is None:
            return None
        now = time.monotonic()
        with self._lock:
            if self._window is not None and now < self._window[1]:
                window, carried = getattr(connection, "window_429s", (None, 0))
                carried = carried if window == self._window else 0
                self.stats[IN_WINDOW_KINDS[min(carried, 2)]] += 1
                # How late into a window a request the client could not know about arrived (a busy
                # client reads its answers late): the figure a timing guess would have to exceed.
                late_ms = int((now - self._window[0]) * 1000)
                if not carried and late_ms > self.stats["ratelimit:in_flight_latest_ms"]:
                    self.stats["ratelimit:in_flight_latest_ms"] = late_ms
                connection.window_429s = (self._window, carried + 1)
                return self._too_many()
            self._window = None
            while self._arrivals and self._arrivals[0] <= now - 1.0:
                self._arrivals.popleft()
            if len(self._arrivals) < limit:
                self._arrivals.append(now)
                return None
            self._window = (now, now + RATE_LIMIT_RETRY_AFTER)
            connection.window_429s = (self._window, 1)
            self.stats["ratelimit:windows"] += 1
            return self._too_many()

    @staticmethod
    def _too_many() -> Response:
        return Response(
            429,
            b"<html><body><h1>429 Too Many Requests</h1></body></html>",
            headers={"Retry-After": str(RATE_LIMIT_RETRY_AFTER)},
        )

    @property
    def clearance_token(self) -> str:
        return hashlib.sha256(f"{self.corpus.seed}:clearance".encode()).hexdigest()[:32]

    # ---- routing ----

    def respond(self, raw_path: str, cookie_header: str = "") -> Response:
        corpus = self.corpus
        base = self.base_url
        parts = urlsplit(raw_path)
        path = _decode_path(parts.path)
        query = parse_qs(parts.query)

        def html(text: str | None, key: int | str | None = None) -> Response:
            if text is None:
                return self._not_found(corpus)
            return Response(200, text.encode("utf-8"), fault_key=key)

        if path in ("/", ""):
            if "p" in query:
                return self._redirect_by_id(corpus, query["p"][0])
            return html(pages.render_home(corpus, base), "/")
        if path == "/robots.txt":
            return Response(200, pages.ROBOTS_TXT.encode(), "text/plain; charset=UTF-8")
        if path.startswith("/__replica__/"):
            return self._internal(path, query)
        if path.rstrip("/") == "/feed":
            return self._feed(corpus, None, query)
        match = _CATEGORY_FEED_RE.match(path)
        if match:
            return self._feed(corpus, match.group(1), query)
        match = _CATEGORY_RE.match(path)
        if match:
            slug, page = match.group(1), int(match.group(2) or 1)
            if slug not in site.categories():
                return self._not_found(corpus)
            quirky = self._listing_quirk(corpus, "category", slug, page, cookie_header)
            return quirky or html(self._listing(corpus, "category", slug, page, path), path)
        match = _TAG_RE.match(path)
        if match:
            slug, page = site.tag_slug(unquote(match.group(1))), int(match.group(2) or 1)
            quirky = self._listing_quirk(corpus, "tag", slug, page, cookie_header)
            return quirky or html(self._listing(corpus, "tag", slug, page, path), path)
        match = site.AUTHOR_PATH_RE.match(path)
        if match:
            return html(pages.render_author(corpus, base, int(match.group(1))))
        match = _POPULAR_RE.match(path)
        if match:
            return Response(
                200, pages.render_popular(corpus, match.group(1)).encode(), "application/json; charset=UTF-8"
            )
        match = site.ARTICLE_PATH_RE.fullmatch(path)
        if match:
            return self._article(corpus, match.group(1), int(match.group(2)), cookie_header)
        return self._not_found(corpus)

    def _listing(self, corpus: Corpus, kind: str, slug: str, page: int, path: str) -> str | None:
        cards_2019 = self.layout.hits("cards2019", path, corpus.seed)
        if cards_2019:
            self._count("layout:cards2019")
        return pages.render_listing(corpus, self.base_url, kind, slug, page, cards_2019=cards_2019)

    def _listing_quirk(
        self, corpus: Corpus, kind: str, slug: str, page: int, cookie_header: str
    ) -> Response | None:
        """The page a listing quirk puts in place of the normal one, or None."""
        quirk = self.quirks.get(f"{kind}:{slug}")
        base, path = self.base_url, f"/{kind}/{slug}"
        last = pages.listing_pages(corpus, f"{kind}:{slug}")
        if quirk == "empty_page" and page == 2:
            text = pages.render_listing(corpus, base, kind, slug, page) or ""
            text = re.sub(r"(<template v-if=\"homeTab == 'latest'\">).*?(</template>)", r"\1\2", text, flags=re.S)
            return Response(200, text.encode("utf-8"))
        if quirk == "check_page" and page == 2 and not self._cleared(cookie_header):
            return Response(200, pages.render_interstitial(self.clearance_token, "www.woshipm.com").encode("utf-8"))
        if quirk == "loop_redirect" and page == 3:
            return Response(301, b"", headers={"Location": f"{base}{path}"})
        if quirk == "bad_ids" and page == 1:
            text = pages.render_listing(corpus, base, kind, slug, page) or ""
            bad = "".join(
                f'<article class="postlist-item"><div class="content"><h2 class="post-title"><a href="{href}">'
                f"坏卡片{n}</a></h2></div></article>"
                for n, href in enumerate(BAD_CARD_LINKS)
            )
            opening = "<template v-if=\"homeTab == 'latest'\">"
            return Response(200, text.replace(opening, opening + bad, 1).encode("utf-8"))
        if quirk == "repeat" and page == 3:
            return Response(200, (pages.render_listing(corpus, base, kind, slug, 2) or "").encode("utf-8"))
        if quirk in ("endless", "past_count") and page > last:
            ids = [ENDLESS_ID_BASE + page * site.CARDS_PER_LISTING_PAGE + i for i in range(site.CARDS_PER_LISTING_PAGE)]
            cards = "".join(
                f'<article class="postlist-item" data-id="{i}"><div class="content"><h2 class="post-title">'
                f'<a href="{base}/pd/{i}.html" title="第{i}篇">第{i}篇</a></h2></div></article>'
                for i in ids
            )
            last_link = f'<a class="page-numbers" href="{base}{path}/page/{last}">{last}</a>'
            pagination = f'<nav class="navigation pagination">{last_link}</nav>' if quirk == "past_count" else ""
            text = f"<html><body><template v-if=\"homeTab == 'latest'\">{cards}</template>{pagination}</body></html>"
            return Response(200, text.encode("utf-8"))
        return None

    def _not_found(self, corpus: Corpus) -> Response:
        return Response(404, pages.render_not_found(corpus, self.base_url).encode("utf-8"))

    def _redirect_by_id(self, corpus: Corpus, value: str) -> Response:
        index = corpus.index_of(int(value)) if value.isdigit() else None
        if index is None:
            return self._not_found(corpus)
        return Response(301, b"", headers={"Location": f"{self.base_url}{corpus.path(index)}"})

    def _feed(self, corpus: Corpus, category: str | None, query: dict) -> Response:
        paged = query.get("paged", ["1"])[0]
        text = pages.render_feed(corpus, self.base_url, category, int(paged) if paged.isdigit() else 0)
        if text is None:
            return self._not_found(corpus)
        key = f"/category/{category}/feed" if category else "/feed"
        return Response(
            200, text.encode("utf-8"), "application/rss+xml; charset=UTF-8", fault_key=f"{key}?paged={paged}"
        )

    def _cleared(self, cookie_header: str) -> bool:
        """Whether the request carries the cookie the check page's script sets."""
        cookie = SimpleCookie()
        try:
            cookie.load(cookie_header)
        except Exception:  # a malformed Cookie header is just no cookie
            return False
        return "cf_clearance" in cookie and cookie["cf_clearance"].value == self.clearance_token

    def _article(self, corpus: Corpus, category: str, article_id: int, cookie_header: str) -> Response:
        index = corpus.index_of(article_id)
        if index is None:
            return self._not_found(corpus)
        removed = corpus.removed(index)
        if removed:
            return Response(removed, pages.render_not_found(corpus, self.base_url).encode("utf-8"))
        article = corpus.article(index)
        if article_id in self.redirects:
            location = urljoin(self.base_url, self.redirects[article_id])
            return Response(302, b"", headers={"Location": location})
        if category != article.category:
            return Response(301, b"", headers={"Location": f"{self.base_url}{article.path()}"})
        seed = corpus.seed
        if self.faults.hits("interstitial", article_id, seed):
            if self._cleared(cookie_header):
                self._count("fault:interstitial_passed")
            else:
                self._count("fault:interstitial")
                status = 503 if article_id % 2 else 200
                body = pages.render_interstitial(self.clearance_token, "www.woshipm.com").encode("utf-8")
                return Response(
                    status,
                    body,
                    headers={"Cache-Control": "no-store"},
                    fault_key=article_id,
                    article_id=article_id,
                )
        if self.faults.hits("gzipbomb", article_id, seed):
            self._count("fault:gzipbomb")
            return Response(200, gzip_bomb(), headers={"Content-Encoding": "gzip"}, article_id=article_id)
        if self.faults.hits("endlessbody", article_id, seed):
            self._count("fault:endlessbody")
            return Response(200, endless=True, article_id=article_id)
        if self.faults.hits("jsshell", article_id, seed):
            self._count("fault:jsshell")
            text = pages.render_js_shell(corpus, self.base_url, article)
        else:
            v2 = self.layout.hits("v2", article_id, seed)
            if v2:
                self._count("layout:v2")
            hostile = next((kind for kind in pages.HOSTILE_KINDS if self.faults.hits(kind, article_id, seed)), None)
            if hostile:
                self._count(f"fault:{hostile}")
                text = pages.render_hostile(corpus, self.base_url, article, hostile)
            else:
                text = pages.render_article(corpus, self.base_url, article, "v2" if v2 else "current")
                redesign = self.layout.redesign(article_id, seed)
                if redesign is not None:
                    self._count("layout:random")
                    text = pages.random_redesign(text, redesign)
            if self.faults.hits("truncate", article_id, seed):
                self._count("fault:truncate")
                text = _truncate(text, article_id)
        self._count("articles_served")
        if self.faults.hits("gbk", article_id, seed):
            self._count("fault:gbk")
            return Response(200, text.encode("gb18030"), "text/html", fault_key=article_id, article_id=article_id)
        return Response(200, text.encode("utf-8"), fault_key=article_id, article_id=article_id)

    def _internal(self, path: str, query: dict) -> Response:
        if path == "/__replica__/stats":
            with self._lock:
                data = dict(self.stats)
            return Response(
                200,
                json.dumps(data, ensure_ascii=False, sort_keys=True).encode(),
                "application/json; charset=UTF-8",
            )
        if path == "/__replica__/arrivals":  # seconds from the first request to each request
            with self._lock:
                times = [t - self.arrivals[0] for t in self.arrivals] if self.arrivals else []
            return Response(200, json.dumps(times).encode(), "application/json; charset=UTF-8")
        if path == "/__replica__/paths":  # [path, requests] in order of first request
            with self._lock:
                rows = list(self.path_counts.items())
            return Response(200, json.dumps(rows, ensure_ascii=False).encode(), "application/json; charset=UTF-8")
        if path == "/__replica__/clock":
            try:
                days = int(query.get("advance", ["0"])[0])
                if days:
                    self.advance(days)
            except ValueError as error:
                return Response(400, json.dumps({"error": str(error)}).encode(), "application/json; charset=UTF-8")
            return Response(200, json.dumps(self.clock()).encode(), "application/json; charset=UTF-8")
        if path == "/__replica__/beacon":
            kind = query.get("kind", ["unknown"])[0]
            self._count(f"beacon:{kind}")
            return Response(204)
        return self._not_found(self.corpus)

    # ---- faults ----

    def apply_faults(self, raw_path: str, response: Response) -> Response:
        """429/503/slow/drop on a page the spec picks (articles by id, other pages by path)."""
        key = response.fault_key
        seed = self.corpus.seed
        is_article = isinstance(key, int)
        url = urlsplit(raw_path).path + (f"?{urlsplit(raw_path).query}" if urlsplit(raw_path).query else "")
        for name in ("429", "503", "drop", "slow"):
            if name not in LISTING_FAULTS and not is_article:
                continue
            if not self.faults.hits(name, key, seed):
                continue
            if name == "slow":
                self._count("fault:slow")
                time.sleep(1.0 + unit(seed, "slow", key))
                continue
            allowed = {"429": 1, "drop": 1, "503": 1 + (unit(seed, "burst", key) < 0.5)}[name]
            with self._lock:
                seen = self._fault_hits[(name, url)]
                if seen >= allowed:
                    continue
                self._fault_hits[(name, url)] = seen + 1
                self.stats[f"fault:{name}"] += 1
            if name == "429":
                return Response(
                    429,
                    b"<html><body><h1>429 Too Many Requests</h1></body></html>",
                    headers={"Retry-After": "1"},
                )
            if name == "503":
                return Response(503, b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>")
            response.headers["X-Replica-Drop"] = "1"
            return response
        return response


@functools.cache
def gzip_bomb() -> bytes:
    """GZIP_BOMB_BYTES of zeros, gzip-compressed (made once, ~2 s)."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: the gzip container
    zeros = bytes(1 << 24)
    return b"".join([*(compressor.compress(zeros) for _ in range(GZIP_BOMB_BYTES // len(zeros))),
                     compressor.flush()])


def _decode_path(path: str) -> str:
    """The request path with raw UTF-8 restored (http.server decodes the request line as Latin-1)."""
    try:
        return path.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return path


def _truncate(text: str, article_id: int) -> str:
    """Cut an article page before its content (even ids) or inside its body (odd ids)."""
    start = text.find('<div class="article--content')
    if start < 0:
        return text[: len(text) // 2]
    if article_id % 2 == 0:
        return text[:start]
    taglist = text.find('<div class="taglist"', start)
    return text[: start + max(200, (taglist - start) // 2)]
