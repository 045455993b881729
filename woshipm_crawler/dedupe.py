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
repost (the normal case: listings are crawled newest first) re-flags the repost.
``NearDuplicateIndex.add`` returns every id whose ``duplicate_of`` changed, and ``reconcile``
compares the whole index with the state store, so a run that died in between is repaired at the
next start.

Threshold, from measurements (``measure_separation``; tests/test_dedupe.py asserts them):
- synthetic template corpus of the tests (sentence frames, shared vocabulary and footer, i.e. far
  more alike than real articles), exact / MinHash-estimated Jaccard: unrelated pairs max 0.15 / 0.20
  (means 0.05–0.10 by length); reposts with one or two sentences replaced and a different credit
  line min 0.53 / 0.48 for 8-sentence (~300 character) articles, 0.70 / 0.66 for 15 sentences,
  0.88 / 0.86 for 40;
- the replica corpus (``woshipm_crawler.replica``, 3,000 articles of ~2,400 characters): unrelated
  max 0.11 exact / 0.21 estimated (mean 0.07), its planted repost group 0.88–0.92; at 0.4 the group
  is found exactly (precision = recall = 1) and nothing else is grouped.
0.4 leaves ≥ 0.08 on both sides of the estimates (estimate standard error at 0.4:
sqrt(0.24/128) ≈ 0.043). Without ``strip_boilerplate`` unrelated short articles reached 0.29 and
their reposts fell to 0.39: no threshold separated them.

Persistence: signatures live in the state store's ``minhash`` table (``StateStore.put_signature``
or ``commit_item(..., signature=...)``), tagged with ``SIGNATURE_PARAMS`` so that a change of
parameters is detected and stale signatures are recomputed from the stored body text.

Speed: ``signature`` ≈ 0.4–1 ms per body; ``NearDuplicateIndex`` bulk load of 3,000 replica
signatures 0.08 s (52,000 LSH candidate pairs), of 20,000 synthetic-template signatures 4.5 s (the
pathological case: 6.6 million candidate pairs); an incremental ``add`` ≈ 1–4 ms.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np
from datasketch import MinHash

if TYPE_CHECKING:
    from woshipm_crawler.state import StateStore

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
SIGNATURE_PARAMS = (
    f"minhash:{SCHEME}:perm={NUM_PERM}:seed={SEED}:ngram={NGRAM}:lower-wordchars-noboilerplate:v1"
)

# Credit, licence and disclaimer lines of woshipm bodies (and of the sites reposts come from).
_BOILERPLATE_RE = re.compile(
    r"人人都是产品经理|题图来自|CC0\s*协议|禁止转载|未经(?:作者)?(?:许可|授权)|观点仅代表作者|转载请(?:联系|注明)"
    r"|原文(?:链接|地址)|本文(?:首发|转载|来源|作者)"
)
BOILERPLATE_MAX_CHARS = 160
# White space, punctuation (full- and half-width alike) and "_": everything that is not content.
_NON_WORD_RE = re.compile(r"[\W_]+")
# Datasketch's own permutations (seeded, so identical in every process): signatures computed here
# equal ``MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME).update_batch(hashes)`` (tested).
_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME)
_PERM_A, _PERM_B = (np.asarray(p, dtype=np.uint32) for p in _TEMPLATE.permutations)
_UNDATED = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
_CST = dt.timezone(dt.timedelta(hours=8))


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
    return "\n".join(
        line for line in lines if len(line) > BOILERPLATE_MAX_CHARS or not _BOILERPLATE_RE.search(line)
    )


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


def signature_from_hashes(hashes: np.ndarray) -> np.ndarray:
    """MinHash values (uint32[NUM_PERM]) of a set of 32-bit shingle hashes."""
    hv = _fmix32(np.asarray(hashes, dtype=np.uint32)).reshape(-1, 1)
    return (hv * _PERM_A + _PERM_B).min(axis=0)  # uint32 arithmetic wraps: that is the mod 2**32


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
    if not published:
        return _UNDATED
    try:
        if len(published) == 10:
            return dt.datetime.fromisoformat(published).replace(tzinfo=_CST).astimezone(dt.timezone.utc)
        value = dt.datetime.fromisoformat(published.replace("Z", "+00:00"))
    except ValueError:
        return _UNDATED
    if value.tzinfo is None:
        value = value.replace(tzinfo=_CST)
    return value.astimezone(dt.timezone.utc)


def to_minhash(sig: np.ndarray) -> MinHash:
    """A datasketch MinHash holding ``sig`` (for datasketch's own tools, e.g. ``MinHashLSH``)."""
    return MinHash(
        num_perm=NUM_PERM, seed=SEED, scheme=SCHEME, hashvalues=sig, permutations=_TEMPLATE.permutations
    )


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


class _Bands:
    """LSH buckets in numpy: a sorted array of (key, id) for the bulk, a dict for recent additions.

    Datasketch's MinHashLSH spends ~1 ms per insert + query in Python (21 s for 20,000 articles);
    this does the bulk in one sort and a query in one ``searchsorted``. Entries of removed or
    re-signed articles stay until the next rebuild; they only yield candidates that fail verification.
    """

    REBUILD_AFTER = 50_000  # recent entries (≈ 1,200 articles) before they are merged into the arrays

    def __init__(self) -> None:
        self.keys = np.empty(0, dtype=np.uint64)
        self.ids = np.empty(0, dtype=np.int64)
        self.recent: dict[int, list[int]] = {}
        self.recent_count = 0

    def build(self, ids: np.ndarray, sigs: np.ndarray) -> None:
        keys = band_keys(sigs).ravel()
        order = np.argsort(keys, kind="stable")
        self.keys, self.ids = keys[order], np.repeat(np.asarray(ids, dtype=np.int64), BANDS)[order]
        self.recent, self.recent_count = {}, 0

    def add(self, article_id: int, sig: np.ndarray) -> None:
        for key in band_keys(sig[None, :])[0].tolist():
            self.recent.setdefault(key, []).append(article_id)
        self.recent_count += BANDS

    def query(self, sig: np.ndarray) -> set[int]:
        keys = band_keys(sig[None, :])[0]
        lo = np.searchsorted(self.keys, keys, side="left")
        hi = np.searchsorted(self.keys, keys, side="right")
        out: set[int] = set()
        for a, b in zip(lo[lo < hi].tolist(), hi[lo < hi].tolist(), strict=True):
            out.update(self.ids[a:b].tolist())
        for key in keys.tolist():
            out.update(self.recent.get(key, ()))
        return out

    def candidate_pairs(self) -> np.ndarray:
        """int64[k, 2] distinct id pairs (a < b) sharing a bucket in the arrays."""
        if len(self.keys) < 2:
            return np.empty((0, 2), dtype=np.int64)
        starts = np.flatnonzero(np.r_[True, self.keys[1:] != self.keys[:-1]])
        sizes = np.diff(np.r_[starts, len(self.keys)])
        pairs = []
        for size in np.unique(sizes[sizes > 1]).tolist():
            # all buckets of one size at once: ids[bucket_start + i], ids[bucket_start + j], i < j
            first = starts[sizes == size]
            i, j = np.triu_indices(size, 1)
            x = self.ids[first[:, None] + i[None, :]].ravel()
            y = self.ids[first[:, None] + j[None, :]].ravel()
            keep = x != y
            # one int64 per pair (ids are < 2**31), so np.unique is a plain 1-D sort
            pairs.append((np.minimum(x, y)[keep] << 32) | np.maximum(x, y)[keep])
        if not pairs:
            return np.empty((0, 2), dtype=np.int64)
        packed = _sorted_unique(np.concatenate(pairs))
        return np.stack([packed >> 32, packed & 0xFFFFFFFF], axis=1)


class NearDuplicateIndex:
    """In-memory similarity graph of all signed articles, with ``duplicate_of`` per article.

    Usage by the pipeline (per item, after the item is parsed)::

        sig = dedupe.signature(item["body_text"])
        index.refresh(store)                        # signatures other processes stored meanwhile
        item["duplicate_of"] = index.find_original(item["id"], item["published"], sig)
        result = store.commit_item(item, job, signature=sig)
        changes = index.add(item["id"], item["published"], sig)   # {id: new duplicate_of}
        for other, dup in changes.items():          # other members re-flagged (original came later)
            if other != item["id"]:
                store.set_duplicate_of(other, dup, job)   # a new pending version, emitted as usual
    """

    def __init__(self, threshold: float = THRESHOLD) -> None:
        self.threshold = threshold
        self._bands = _Bands()
        self._sigs: dict[int, np.ndarray] = {}
        self._published: dict[int, str | None] = {}
        self._keys: dict[int, tuple[dt.datetime, int]] = {}
        self._adj: dict[int, set[int]] = {}
        self._dup: dict[int, int | None] = {}
        self._seq = 0  # highest StateStore.minhash.seq loaded, for refresh()

    # -- queries ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._sigs)

    def __contains__(self, article_id: int) -> bool:
        return article_id in self._sigs

    def duplicate_of(self, article_id: int) -> int | None:
        return self._dup.get(article_id)

    def assignments(self) -> dict[int, int | None]:
        """``duplicate_of`` of every indexed article."""
        return dict(self._dup)

    def groups(self) -> list[list[int]]:
        """Groups of two or more articles, each sorted original first."""
        members: dict[int, list[int]] = {}
        for aid, dup in self._dup.items():
            members.setdefault(dup if dup is not None else aid, []).append(aid)
        return sorted(
            (sorted(m, key=self._keys.__getitem__) for m in members.values() if len(m) > 1),
            key=lambda g: g[0],
        )

    def similar(self, sig: np.ndarray, exclude: int | None = None) -> list[tuple[int, float]]:
        """Indexed articles whose estimated Jaccard with ``sig`` is at least the threshold, best first."""
        candidates = [c for c in self._bands.query(sig) if c != exclude and c in self._sigs]
        if not candidates:
            return []
        scores = (np.stack([self._sigs[c] for c in candidates]) == sig).sum(axis=1) / NUM_PERM
        out = [(c, float(j)) for c, j in zip(candidates, scores.tolist(), strict=True) if j >= self.threshold]
        return sorted(out, key=lambda p: (-p[1], p[0]))

    def find_original(self, article_id: int, published: str | None, sig: np.ndarray | None) -> int | None:
        """``duplicate_of`` the article would get if added now; the index is not changed."""
        if sig is None:
            return None
        neighbours = [other for other, _ in self.similar(sig, exclude=article_id)]
        if not neighbours:
            return None
        component = self._component(neighbours, exclude=article_id)
        best = min(component, key=self._keys.__getitem__)
        return best if self._keys[best] < (published_key(published), article_id) else None

    # -- updates ---------------------------------------------------------------------------------

    def add(self, article_id: int, published: str | None, sig: np.ndarray | None) -> dict[int, int | None]:
        """Index (or re-index) an article; returns ``{id: duplicate_of}`` for every id whose value changed.

        The article's own id is included when its value differs from before (a new article is
        reported when it is a duplicate). Adding the same signature again changes nothing.
        """
        old_sig = self._sigs.get(article_id)
        if (
            sig is not None
            and old_sig is not None
            and np.array_equal(old_sig, sig)
            and self._published.get(article_id) == published
        ):
            return {}
        affected = self._component([article_id]) if article_id in self._adj else set()
        self._remove(article_id)
        if sig is not None:
            sig = np.asarray(sig, dtype=np.uint32)
            neighbours = [other for other, _ in self.similar(sig, exclude=article_id)]
            self._insert(article_id, published, sig)
            for other in neighbours:
                self._adj[article_id].add(other)
                self._adj[other].add(article_id)
            affected |= self._component([article_id])
        affected.add(article_id)
        return self._reassign(affected)

    def remove(self, article_id: int) -> dict[int, int | None]:
        """Forget an article (e.g. its body became too short); returns the changed assignments."""
        return self.add(article_id, None, None)

    def reconcile(self, stored: Mapping[int, int | None]) -> dict[int, int | None]:
        """``{id: duplicate_of}`` for every stored article whose stored value differs from the index.

        Articles absent from the index (no signature) should have None.
        """
        return {aid: self._dup.get(aid) for aid, value in stored.items() if self._dup.get(aid) != value}

    # -- persistence -----------------------------------------------------------------------------

    @classmethod
    def load(cls, store: StateStore, **kwargs) -> NearDuplicateIndex:
        """Build the index from the store's signatures, recomputing stale or missing ones.

        An article stored without a current signature (a store written before the dedupe existed, or
        with other SIGNATURE_PARAMS) gets one from its stored body text, written back to the store.
        """
        index = cls(**kwargs)
        records = []
        have = set()  # ids with a current entry; a NULL blob means "too short to sign", not "stale"
        for article_id, published, blob, params, seq in store.iter_signatures():
            index._seq = max(index._seq, seq)
            if params == SIGNATURE_PARAMS:
                have.add(article_id)
                if blob is not None:
                    records.append((article_id, published, from_bytes(blob)))
        for article_id in sorted(store.known_ids() - have):
            item = store.get_item(article_id) or {}
            sig = signature(item.get("body_text") or "")
            store.put_signature(article_id, item.get("published"), sig)
            if sig is not None:
                records.append((article_id, item.get("published"), sig))
        index._bulk_load(records)
        index._seq = max(index._seq, store.signature_seq())
        return index

    def refresh(self, store: StateStore) -> dict[int, int | None]:
        """Load signatures stored since the last load/refresh (by other processes); returns changes."""
        changes: dict[int, int | None] = {}
        for article_id, published, blob, params, seq in store.iter_signatures(since=self._seq):
            self._seq = max(self._seq, seq)
            if params == SIGNATURE_PARAMS:
                changes.update(self.add(article_id, published, from_bytes(blob) if blob else None))
        return changes

    def _bulk_load(self, records: Iterable[tuple[int, str | None, np.ndarray]]) -> None:
        """Index many articles at once: one sort for the buckets, vectorised verification."""
        for article_id, published, sig in records:
            self._remove(article_id)
            self._insert(article_id, published, np.asarray(sig, dtype=np.uint32), index_bands=False)
        self._rebuild_bands()
        pairs = self._bands.candidate_pairs()
        if len(pairs):
            ids = np.fromiter(self._sigs, dtype=np.int64, count=len(self._sigs))
            matrix = np.stack(list(self._sigs.values()))
            order = np.argsort(ids)
            a = order[np.searchsorted(ids, pairs[:, 0], sorter=order)]  # id -> row of matrix
            b = order[np.searchsorted(ids, pairs[:, 1], sorter=order)]
            # Template-heavy corpora give millions of candidates (mostly J ~ 0.1). A cheap first look
            # at 32 values drops those far below: at J = THRESHOLD the 32-value count has mean 12.8,
            # sd 2.8, and fewer than 5 matches happens with probability < 0.3%.
            head = np.ascontiguousarray(matrix[:, :32])
            keep = (head[a] == head[b]).sum(axis=1) >= 5
            a, b, pairs = a[keep], b[keep], pairs[keep]
            similar = np.empty(len(pairs), dtype=bool)
            for lo in range(0, len(pairs), 100_000):  # chunks bound the temporary (chunk x 128) array
                eq = (matrix[a[lo : lo + 100_000]] == matrix[b[lo : lo + 100_000]]).sum(axis=1)
                similar[lo : lo + 100_000] = eq >= self.threshold * NUM_PERM
            for x, y in pairs[similar].tolist():
                self._adj[x].add(y)
                self._adj[y].add(x)
        self._reassign(set(self._sigs))

    def _rebuild_bands(self) -> None:
        ids = np.fromiter(self._sigs, dtype=np.int64, count=len(self._sigs))
        sigs = np.stack(list(self._sigs.values())) if self._sigs else np.empty((0, NUM_PERM), np.uint32)
        self._bands.build(ids, sigs)

    # -- internals -------------------------------------------------------------------------------

    def _insert(
        self, article_id: int, published: str | None, sig: np.ndarray, index_bands: bool = True
    ) -> None:
        self._sigs[article_id] = sig
        self._published[article_id] = published
        self._keys[article_id] = (published_key(published), article_id)
        self._adj[article_id] = set()
        if index_bands:
            self._bands.add(article_id, sig)
            if self._bands.recent_count > _Bands.REBUILD_AFTER:
                self._rebuild_bands()

    def _remove(self, article_id: int) -> None:
        if article_id not in self._sigs:
            return
        for other in self._adj.pop(article_id):
            self._adj[other].discard(article_id)
        del self._sigs[article_id], self._published[article_id], self._keys[article_id]

    def _component(self, starts: Iterable[int], exclude: int | None = None) -> set[int]:
        seen = {s for s in starts if s != exclude and s in self._adj}
        stack = list(seen)
        while stack:
            for other in self._adj[stack.pop()]:
                if other not in seen and other != exclude:
                    seen.add(other)
                    stack.append(other)
        return seen

    def _reassign(self, affected: set[int]) -> dict[int, int | None]:
        """Recompute duplicate_of over the components touching ``affected``; return what changed."""
        changes: dict[int, int | None] = {}
        done: set[int] = set()
        for aid in sorted(affected):
            if aid in done:
                continue
            if aid not in self._sigs:
                new_values: Iterator[tuple[int, int | None]] = iter([(aid, None)])
                done.add(aid)
            else:
                component = self._component([aid])
                done |= component
                best = min(component, key=self._keys.__getitem__)
                new_values = ((m, None if m == best else best) for m in component)
            for member, value in new_values:
                if self._dup.get(member) != value:  # a missing entry counts as None
                    changes[member] = value
                if member in self._sigs:
                    self._dup[member] = value
                else:
                    self._dup.pop(member, None)
        return changes


def measure_separation(
    unrelated: Iterable[tuple[str, str]], reposts: Iterable[tuple[str, str]]
) -> dict[str, float]:
    """Exact and estimated Jaccard statistics over unrelated pairs and repost pairs.

    Returns max/mean of unrelated pairs and min/mean of repost pairs (``exact_*`` from the 5-gram
    sets, ``est_*`` from the signatures): the evidence a threshold is chosen from.
    """

    def stats(pairs):
        exact, est = [], []
        for a, b in pairs:
            exact.append(jaccard(a, b))
            sa, sb = signature(a), signature(b)
            est.append(estimate(sa, sb) if sa is not None and sb is not None else 0.0)
        return np.array(exact), np.array(est)

    ue, us = stats(unrelated)
    re_, rs = stats(reposts)
    return {
        "unrelated_exact_max": float(ue.max()),
        "unrelated_exact_mean": float(ue.mean()),
        "unrelated_est_max": float(us.max()),
        "unrelated_est_mean": float(us.mean()),
        "repost_exact_min": float(re_.min()),
        "repost_exact_mean": float(re_.mean()),
        "repost_est_min": float(rs.min()),
        "repost_est_mean": float(rs.mean()),
    }
