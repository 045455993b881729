"""Near-duplicate bodies: MinHash over character 5-grams, LSH candidates, groups by connectivity.

Model
-----
- A body is compared in ``comparable(body_text)``: the site's short credit/licence lines dropped
  (``strip_boilerplate``), lower-cased, and reduced to word characters (CJK, letters, digits): white
  space and punctuation, full- or half-width, do not count.
- Its features are the set of character 5-grams (``shingles``). Two bodies are *similar* when the
  Jaccard similarity of their 5-gram sets, estimated from 128-permutation MinHash signatures
  (datasketch's ``affine32`` permutations, seed 1), is at least ``THRESHOLD`` = 0.4.
- A *group* is a connected component of the similarity graph. ``duplicate_of`` of every member is
  the group's earliest-published article (ties: lowest id; an undated article sorts after every
  dated one); the earliest itself gets ``None``.
- Bodies with fewer than ``MIN_SHINGLES`` distinct 5-grams (≈ 30 characters) get no signature and
  are never grouped: a one-line body ("视频", an image caption) says nothing about being a repost.

Because groups are decided by publication date, not by crawl order, an original crawled after its
repost (the normal case: listings are crawled newest first) re-flags the repost:
``NearDuplicates.index`` returns the assignments of every group an article joined or left, and the
state store applies them in the same transaction that stores the article.

Threshold, from measurements (tests/test_dedupe.py measures and asserts them):
- synthetic template corpus of the tests (sentence frames, shared vocabulary and footer, i.e. far
  more alike than real articles), exact / MinHash-estimated Jaccard: unrelated pairs max 0.15 / 0.20
  (means 0.05–0.10 by length); reposts with one or two sentences replaced and a different credit
  line min 0.53 / 0.48 for 8-sentence (~300 character) articles, 0.70 / 0.66 for 15 sentences,
  0.88 / 0.86 for 40;
- the replica corpus (``woshipm_replica``, 3,000 articles of ~2,400 characters): unrelated
  max 0.11 exact / 0.21 estimated (mean 0.07), its planted repost group 0.88–0.92; at 0.4 the group
  is found exactly (precision = recall = 1) and nothing else is grouped.
0.4 leaves ≥ 0.08 on both sides of the estimates (estimate standard error at 0.4:
sqrt(0.24/128) ≈ 0.043). Without ``strip_boilerplate`` unrelated short articles reached 0.29 and
their reposts fell to 0.39: no threshold separated them.

Persistence: the graph lives in the state file (``SCHEMA``: signatures, LSH bucket keys, verified
edges), never in memory, so a crawl of 150,000 articles holds no per-article index. Signatures are
tagged with ``SIGNATURE_PARAMS``: a change of parameters is detected and the signature recomputed
from the stored body text. Measured figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable

import numpy as np

from woshipm_crawler import site

NGRAM = 5
NUM_PERM = 128
SEED = 1
SCHEME = "affine32"
THRESHOLD = 0.4
# LSH banding: 42 bands of 3 values (126 of the 128). Two bodies become candidates with probability
# 1 - (1 - J**3)**42: 0.94 at J = 0.4, 0.995 at 0.5, 0.68 at 0.3; every candidate is then verified
# on the full signature against THRESHOLD.
BAND_ROWS = 3
BANDS = NUM_PERM // BAND_ROWS
MIN_SHINGLES = 25
# Stored with every signature: a different value means the signature was made by other parameters.
SIGNATURE_PARAMS = f"minhash:{SCHEME}:perm={NUM_PERM}:seed={SEED}:ngram={NGRAM}:lower-wordchars-noboilerplate:v1"

# Credit, licence and disclaimer lines of woshipm bodies (and of the sites reposts come from).
_BOILERPLATE_RE = re.compile(
    r"人人都是产品经理|题图来自|CC0\s*协议|禁止转载|未经(?:作者)?(?:许可|授权)|观点仅代表作者|转载请(?:联系|注明)"
    r"|原文(?:链接|地址)|本文(?:首发|转载|来源|作者)"
)
BOILERPLATE_MAX_CHARS = 160
# White space, punctuation (full- and half-width alike) and "_": everything that is not content.
_NON_WORD_RE = re.compile(r"[\W_]+")
_UNDATED = dt.datetime.max.replace(tzinfo=dt.timezone.utc)


def normalize(text: str) -> str:
    """Character-level form of a text: lower case, only word characters (CJK, letters, digits).

    Dropping punctuation makes full/half-width punctuation and spacing differences of reposts
    irrelevant; NFKC would do part of that at 2 ms per article (4x the whole rest of ``signature``).
    """
    return _NON_WORD_RE.sub("", (text or "").lower())


def strip_boilerplate(text: str) -> str:
    """Drop the site's credit/licence lines ("本文由 @… 原创发布于人人都是产品经理…", "题图来自…").

    They are the same in unrelated articles and differ between an original and its repost, so they
    only blur the comparison: with them, unrelated 8-sentence articles of the synthetic corpus reached
    J = 0.29 and their reposts fell to 0.39; without, 0.16 and 0.52. Only short lines are dropped, so
    an article that discusses the platform keeps its paragraphs.
    """
    lines = (line for line in (text or "").split("\n"))
    return "\n".join(line for line in lines if len(line) > BOILERPLATE_MAX_CHARS or not _BOILERPLATE_RE.search(line))


def comparable(text: str) -> str:
    """The form bodies are compared in: boilerplate lines dropped, then ``normalize``."""
    return normalize(strip_boilerplate(text))


def shingles(text: str, n: int = NGRAM) -> set[str]:
    """Set of character n-grams of ``comparable(text)``; a text shorter than n is its own shingle."""
    s = comparable(text)
    if len(s) <= n:
        return {s} if s else set()
    return {s[i : i + n] for i in range(len(s) - n + 1)}


def jaccard(a: str, b: str, n: int = NGRAM) -> float:
    """Exact Jaccard similarity of two texts' n-gram sets (for measurements and tests)."""
    sa, sb = shingles(a, n), shingles(b, n)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def shingle_hashes(text: str, n: int = NGRAM) -> np.ndarray:
    """Distinct 32-bit hashes of the n-grams of ``comparable(text)``, computed vectorised.

    A polynomial hash of the code points mod 2**64 folded to 32 bits: deterministic across
    processes (unlike ``hash(str)``) and ~20x faster than hashing each shingle with SHA-1, which is
    what makes 20,000 articles index in seconds. Collisions only merge a few shingles (2**32 range
    against a few thousand per body) and are followed by datasketch's fmix + affine permutations.
    """
    s = comparable(text)
    if not s:
        return np.empty(0, dtype=np.uint32)
    cps = np.frombuffer(s.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    width = min(n, len(cps))
    count = len(cps) - width + 1
    h = np.zeros(count, dtype=np.uint64)
    prime = np.uint64(0x100000001B3)
    for k in range(width):
        h = h * prime + cps[k : k + count]  # wraps mod 2**64 on purpose
    return _sorted_unique(((h >> np.uint64(32)) ^ h).astype(np.uint32))


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting: numpy 2's default hash-based unique is ~10x slower on these arrays."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, as datasketch's affine32 scheme applies before permuting."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


@functools.cache
def _permutations() -> tuple[np.ndarray, np.ndarray]:
    """Datasketch's own permutations (seeded, so identical in every process): signatures computed here
    equal ``MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME).update_batch(hashes)`` (tested).
    Imported here, not at the top: datasketch brings scipy (~0.4 s), which commands that never sign a
    body (``scrapy book``, ``scrapy report``) need not pay."""
    from datasketch import MinHash

    a, b = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME).permutations
    return np.asarray(a, dtype=np.uint32), np.asarray(b, dtype=np.uint32)


def signature_from_hashes(hashes: np.ndarray) -> np.ndarray:
    """MinHash values (uint32[NUM_PERM]) of a set of 32-bit shingle hashes."""
    hv = _fmix32(np.asarray(hashes, dtype=np.uint32)).reshape(-1, 1)
    perm_a, perm_b = _permutations()
    return (hv * perm_a + perm_b).min(axis=0)  # uint32 arithmetic wraps: that is the mod 2**32


def signature(text: str) -> np.ndarray | None:
    """MinHash signature of a body (uint32[NUM_PERM]), or None when it is too short to compare."""
    hashes = shingle_hashes(text)
    if len(hashes) < MIN_SHINGLES:
        return None
    return signature_from_hashes(hashes)


def to_bytes(sig: np.ndarray) -> bytes:
    """Storage form of a signature: NUM_PERM little-endian uint32."""
    return np.asarray(sig, dtype="<u4").tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<u4").astype(np.uint32)


def estimate(a: np.ndarray, b: np.ndarray) -> float:
    """MinHash estimate of the Jaccard similarity of two signatures."""
    return float(np.count_nonzero(a == b)) / len(a)


def published_key(published: str | None) -> dt.datetime:
    """Sortable UTC time of a ``published`` value; date-only values mean 00:00 Beijing time.

    Unparseable or missing dates sort last, so a dated article is always preferred as the original.
    """
    when = site.published_time(published)
    return when.astimezone(dt.timezone.utc) if when is not None else _UNDATED


def band_keys(sigs: np.ndarray) -> np.ndarray:
    """uint64[m, BANDS] LSH keys of m signatures: each band's values hashed, salted by band number.

    Salting lets one sorted array hold all bands; a 64-bit collision only adds a candidate, which
    verification drops.
    """
    rows = np.asarray(sigs, dtype=np.uint64)[:, : BANDS * BAND_ROWS].reshape(-1, BANDS, BAND_ROWS)
    keys = np.arange(1, BANDS + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    for r in range(BAND_ROWS):
        keys = (keys ^ rows[:, :, r]) * np.uint64(0x100000001B3)  # FNV-style, wraps mod 2**64
    return keys


# The similarity graph lives in the state file, beside the articles, so memory does not grow with the
# corpus and every change is part of the transaction that stores the article.
SCHEMA = """
CREATE TABLE IF NOT EXISTS minhash (
    id            INTEGER PRIMARY KEY,
    published     TEXT,
    signature     BLOB,
    params        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS minhash_band (
    key           INTEGER NOT NULL,
    id            INTEGER NOT NULL,
    PRIMARY KEY (key, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS minhash_band_by_id ON minhash_band(id);
CREATE TABLE IF NOT EXISTS similar_pair (
    a             INTEGER NOT NULL,
    b             INTEGER NOT NULL,
    PRIMARY KEY (a, b)
) WITHOUT ROWID;
"""


def _placeholders(values) -> str:
    return ",".join("?" * len(values))


class NearDuplicates:
    """The near-duplicate graph over one SQLite connection (the caller owns the transaction).

    ``minhash`` holds each article's signature (NULL: too short to compare), ``minhash_band`` its LSH
    bucket keys, ``similar_pair`` the verified edges (both directions). Groups are the connected
    components; ``duplicate_of`` of a member is its group's earliest-published article.

        graph = NearDuplicates(conn)
        assignments = graph.index(article_id, published, signature(body_text))
        # {id: duplicate_of} for every member of the groups the article joined or left, itself included
    """

    def __init__(self, conn, threshold: float = THRESHOLD) -> None:
        self.conn = conn
        self.threshold = threshold

    # -- queries ---------------------------------------------------------------------------------

    def similar(self, sig: np.ndarray, exclude: int | None = None) -> list[tuple[int, float]]:
        """Indexed articles whose estimated Jaccard with ``sig`` is at least the threshold, best first."""
        keys = band_keys(np.asarray(sig, dtype=np.uint32)[None, :])[0].view(np.int64).tolist()
        candidates = [
            row[0]
            for row in self.conn.execute(
                f"SELECT DISTINCT id FROM minhash_band WHERE key IN ({_placeholders(keys)})", keys
            )
            if row[0] != exclude
        ]
        out = []
        for start in range(0, len(candidates), 500):
            chunk = candidates[start : start + 500]
            for other, blob in self.conn.execute(
                f"SELECT id, signature FROM minhash WHERE id IN ({_placeholders(chunk)}) "
                "AND signature IS NOT NULL AND params = ?",
                (*chunk, SIGNATURE_PARAMS),
            ):
                score = estimate(from_bytes(blob), sig)
                if score >= self.threshold:
                    out.append((other, score))
        return sorted(out, key=lambda p: (-p[1], p[0]))

    def component(self, starts: Iterable[int], exclude: int | None = None) -> set[int]:
        """Every article connected to ``starts`` (not walking through ``exclude``)."""
        seen = {s for s in starts if s != exclude}
        stack = list(seen)
        while stack:
            for (other,) in self.conn.execute("SELECT b FROM similar_pair WHERE a = ?", (stack.pop(),)):
                if other not in seen and other != exclude:
                    seen.add(other)
                    stack.append(other)
        return seen

    def _order_keys(self, ids: Iterable[int]) -> dict[int, tuple[dt.datetime, int]]:
        ids = list(ids)
        rows = self.conn.execute(f"SELECT id, published FROM minhash WHERE id IN ({_placeholders(ids)})", ids)
        return {aid: (published_key(published), aid) for aid, published in rows}

    def original_of(self, article_id: int, published: str | None, sig: np.ndarray | None) -> int | None:
        """``duplicate_of`` the article would get if indexed now; nothing is changed."""
        if sig is None:
            return None
        neighbours = [other for other, _ in self.similar(sig, exclude=article_id)]
        if not neighbours:
            return None
        keys = self._order_keys(self.component(neighbours, exclude=article_id))
        best = min(keys, key=keys.__getitem__)
        return best if keys[best] < (published_key(published), article_id) else None

    def assignments(self, ids: Iterable[int]) -> dict[int, int | None]:
        """``duplicate_of`` of each of ``ids`` and of every member of their groups."""
        out: dict[int, int | None] = {}
        for aid in sorted(set(ids)):
            if aid in out:
                continue
            members = self.component([aid])
            keys = self._order_keys(members)
            best = min(keys, key=keys.__getitem__) if len(keys) > 1 else None
            for member in members:
                out[member] = None if member == best else best
        return out

    def groups(self) -> list[list[int]]:
        """Groups of two or more articles, each sorted original first."""
        seen: set[int] = set()
        out = []
        for (aid,) in self.conn.execute("SELECT DISTINCT a FROM similar_pair ORDER BY a").fetchall():
            if aid not in seen:
                members = self.component([aid])
                seen |= members
                keys = self._order_keys(members)
                out.append(sorted(members, key=keys.__getitem__))
        return sorted(out, key=lambda group: group[0])

    # -- updates ---------------------------------------------------------------------------------

    def index(self, article_id: int, published: str | None, sig: np.ndarray | None) -> dict[int, int | None]:
        """Index (or re-index) an article; returns the assignments of every group it joined or left.

        Indexing the same signature and date again changes nothing and returns ``{}``.
        """
        blob = None if sig is None else to_bytes(sig)
        old = self.conn.execute(
            "SELECT published, signature, params FROM minhash WHERE id = ?", (article_id,)
        ).fetchone()
        if old == (published, blob, SIGNATURE_PARAMS):
            return {}
        affected = self._remove(article_id)
        self.conn.execute(
            "INSERT INTO minhash (id, published, signature, params) VALUES (?, ?, ?, ?)",
            (article_id, published, blob, SIGNATURE_PARAMS),
        )
        if sig is not None:
            neighbours = [other for other, _ in self.similar(sig, exclude=article_id)]
            keys = band_keys(np.asarray(sig, dtype=np.uint32)[None, :])[0].view(np.int64).tolist()
            self.conn.executemany(
                "INSERT OR IGNORE INTO minhash_band (key, id) VALUES (?, ?)", [(k, article_id) for k in keys]
            )
            self.conn.executemany(
                "INSERT OR IGNORE INTO similar_pair (a, b) VALUES (?, ?)",
                [pair for other in neighbours for pair in ((article_id, other), (other, article_id))],
            )
        return self.assignments(affected | {article_id})

    def remove(self, article_id: int) -> dict[int, int | None]:
        """Forget an article; returns the assignments of its former group (itself: None)."""
        affected = self._remove(article_id)
        return {**self.assignments(affected - {article_id}), article_id: None}

    def _remove(self, article_id: int) -> set[int]:
        """Drop an article's signature and edges; returns its former group (itself included)."""
        group = self.component([article_id])
        self.conn.execute("DELETE FROM minhash WHERE id = ?", (article_id,))
        self.conn.execute("DELETE FROM minhash_band WHERE id = ?", (article_id,))
        self.conn.execute("DELETE FROM similar_pair WHERE a = ?", (article_id,))
        self.conn.executemany(
            "DELETE FROM similar_pair WHERE a = ? AND b = ?", [(other, article_id) for other in group]
        )
        return group
