"""Search for the library site (woshipm_crawler.outputs.book): Pagefind indexes of Chinese bigrams, in segments.

**What is indexed.** Pagefind splits Chinese into words, but with two different segmenters: jieba
when it indexes (its extended binary) and the browser's ICU when it searches. Where they disagree
(ICU splits 评测, 埋点, 误区 into single characters) an article holding the query is not found at
all, and its ranking ignores whether the words stand together: measured on the replica, 3 of 25
sentences unique to one article found nothing, the others ranked 16th in the median. So each
article is indexed from a document of its own (``search_document``) whose words are the text's
overlapping character **bigrams**, the way Lucene's CJK analyser indexes Chinese, each spelt in
Latin letters (``q`` + 4 letters per character) so that no segmenter splits them again. The search
page turns the query into the same bigrams and asks Pagefind for them as an exact phrase: a query of
two or more Chinese characters finds exactly the articles that contain it. Latin words and numbers
stay words. White space and punctuation do not count (``流程最终`` finds ``流程，最终``). The document
also carries the title and the plain text as Pagefind metadata, for the result and its snippet.

**Segments.** Pagefind indexes a whole folder at a time and cannot update an index, so the site's
articles are split into segments, each its own Pagefind bundle under ``pagefind/<name>/``; the
search page merges them (Pagefind's ``mergeIndex``). A build indexes only the segments whose articles
changed: a build's new articles form a new segment; a segment that lost or changed an article is
indexed again whole, under a new name (so no browser keeps a stale copy). Small segments are merged
as they pile up (``MERGE_FANOUT`` of one size tier make one of the next), so a day's build indexes
about a day's articles, an article is indexed again only a few times in its life, and the count of
segments stays small: at most ``MERGE_FANOUT - 1`` per tier below ``SEALED`` articles, plus one per
``SEALED`` articles. A first build cuts the articles, in publication order, into near-equal
segments of at most ``SEALED``, and into at least one per Pagefind process (``index_workers``) once
each would hold ``SPLIT_MIN`` articles: Pagefind indexes a folder on one core.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

SEALED = 10_000  # a segment this large is never merged again
TIER_BASE = 250  # tier 0 holds segments under this many articles; each tier above is MERGE_FANOUT times larger
MERGE_FANOUT = 4
BUNDLES_DIR = "pagefind"
PAGEFIND_TIMEOUT_S = 3600
SPLIT_MIN = 1_000  # a first build splits its articles over the Pagefind processes only into segments this large
LANGUAGE = "zxx"  # "no linguistic content": Pagefind neither stems nor segments the bigram words

# The characters indexed as bigrams (Han, kana, Hangul) and the other letters and digits, which make
# words. assets/search.js has the same two classes and the same rules: they must agree.
_BIGRAM_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_UNIT_RE = re.compile(rf"([{_BIGRAM_CHARS}]+)|[^\W_{_BIGRAM_CHARS}]+")


class _Spelling(dict):
    """``str.translate`` table: a character as 4 lower-case letters (base 26 of its code point), made
    on first use (a table of every indexed character up front would be some 40,000 entries)."""

    def __missing__(self, code: int) -> str:
        number, letters = code, []
        for _ in range(4):
            number, digit = divmod(number, 26)
            letters.append(chr(97 + digit))
        spelt = self[code] = "".join(reversed(letters))
        return spelt


_SPELLING = _Spelling()


def search_words(text: str) -> list[str]:
    """The words ``text`` is indexed under: each run of Chinese characters (white space and punctuation
    between them ignored) as its overlapping bigrams, a lone character as itself, each spelt ``q`` +
    letters; every other run of letters and digits as a lower-case word."""
    words: list[str] = []
    run: list[str] = []

    def flush() -> None:
        spelt = "".join(run).translate(_SPELLING)
        if len(spelt) == 4:
            words.append("q" + spelt)
        words.extend("q" + spelt[at:at + 8] for at in range(0, len(spelt) - 4, 4))
        run.clear()

    for match in _UNIT_RE.finditer(text):
        if match.group(1):
            run.append(match.group(1))
        else:
            flush()
            words.append(match.group(0).lower())
    flush()
    return words


class SearchError(RuntimeError):
    pass


@dataclass
class Plan:
    """What a build does to the search segments."""

    members: dict[str, list[int]]  # every segment after the build -> its article ids
    build: list[str]  # the segments to index (new names)
    drop: list[str]  # the segments whose bundles go

    @property
    def indexed(self) -> int:
        return sum(len(self.members[name]) for name in self.build)


def tier(size: int) -> int | None:
    """The size tier of a segment of ``size`` articles; None once sealed (never merged)."""
    if size >= SEALED:
        return None
    level, limit = 0, TIER_BASE
    while size >= limit:
        level, limit = level + 1, limit * MERGE_FANOUT
    return level


def index_workers() -> int:
    """Pagefind processes run at once: one per core, at most 4 (each holds its segment's index in memory)."""
    return max(1, min(os.cpu_count() or 1, 4))


def plan(current: Mapping[str, Iterable[int]], live: Iterable[int], stale: set[int],
         order: Callable[[int], object], new_name: Callable[[], str], workers: int = 1) -> Plan:
    """The segments after this build.

    ``current``: segment -> ids as last indexed; ``live``: the site's article ids now; ``stale``: ids
    whose page changed since they were indexed; ``order``: the sort key of an id (publication order);
    ``new_name``: a fresh segment name each call; ``workers``: Pagefind processes a first build
    may keep busy (Pagefind indexes on one core, so one segment leaves the others idle).
    """
    live = set(live)
    kept: dict[str, list[int]] = {}
    rebuild: dict[str, list[int]] = {}
    placed: set[int] = set()
    for name, ids in current.items():
        ids = list(ids)
        still = [i for i in ids if i in live]
        placed.update(still)
        if len(still) == len(ids) and not stale.intersection(ids):
            kept[name] = still
        elif still:
            rebuild[name] = still
    unplaced = sorted(live - placed, key=order)
    fresh: list[list[int]] = []
    if not current:
        parts = max(math.ceil(len(unplaced) / SEALED), min(workers, len(unplaced) // SPLIT_MIN))
        fresh = [unplaced[k * len(unplaced) // parts:(k + 1) * len(unplaced) // parts] for k in range(parts)]
    elif unplaced:
        fresh = [unplaced]
    # Segments being rebuilt anyway, and the new one, join the merge: a tier with MERGE_FANOUT or more
    # segments becomes one segment (which may fill the next tier in turn).
    pool: list[list[int]] = [*rebuild.values(), *fresh]
    while True:
        by_tier: dict[int, list[tuple[str | None, list[int]]]] = {}
        for name, ids in kept.items():
            if (level := tier(len(ids))) is not None:
                by_tier.setdefault(level, []).append((name, ids))
        for ids in pool:
            if (level := tier(len(ids))) is not None:
                by_tier.setdefault(level, []).append((None, ids))
        full = next((group for level, group in sorted(by_tier.items()) if len(group) >= MERGE_FANOUT), None)
        if full is None:
            break
        merged: list[int] = []
        for name, ids in full:
            merged += ids
            if name is not None:
                del kept[name]
            else:
                pool.remove(ids)
        pool.append(sorted(merged, key=order))
    members = dict(kept)
    build = []
    for ids in pool:
        name = new_name()
        members[name] = ids
        build.append(name)
    drop = [name for name in current if name not in members]
    return Plan(members, build, drop)


def pagefind_executable() -> Path:
    """Pagefind's binary, from the pagefind-bin wheel."""
    try:
        from pagefind_bin import get_executable
    except ImportError:
        raise SearchError("the search needs pagefind-bin: bash scripts/setup.sh installs it") from None
    return get_executable()


def index_segments(site_dir: Path, documents: Path, work_dir: Path, segments: Mapping[str, list[str]]) -> None:
    """Index each segment (name -> its pages, relative to ``site_dir``) into ``pagefind/<name>/``.

    Pagefind indexes a folder: the search documents of a segment's pages (kept under ``documents``
    at the pages' paths) are hard-linked (copied where links fail) into a staging folder, so result
    URLs are the pages'. One Pagefind process per core.
    """
    if not segments:
        return
    binary = str(pagefind_executable())
    running: list[tuple[str, subprocess.Popen, Path, Path]] = []
    failed: list[str] = []
    queue = list(segments.items())

    def start(name: str, pages: list[str]) -> None:
        stage = work_dir / f"stage-{name}"
        shutil.rmtree(stage, ignore_errors=True)
        for page in pages:
            target = stage / page
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(documents / page, target)
            except OSError:
                shutil.copyfile(documents / page, target)
        output = site_dir / BUNDLES_DIR / name
        shutil.rmtree(output, ignore_errors=True)
        errors = (work_dir / f"pagefind-{name}.log").open("w")
        process = subprocess.Popen(
            [binary, "--site", str(stage), "--output-path", str(output), "--silent"],
            stdout=errors, stderr=subprocess.STDOUT,
        )
        errors.close()
        running.append((name, process, stage, output))

    workers = index_workers()
    while queue or running:
        while queue and len(running) < workers:
            start(*queue.pop(0))
        name, process, stage, output = running.pop(0)
        try:
            process.wait(timeout=PAGEFIND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(stage, ignore_errors=True)
        log_file = work_dir / f"pagefind-{name}.log"
        if process.returncode != 0 or not (output / "pagefind-entry.json").exists():
            failed.append(f"{name}: {log_file.read_text(errors='replace').strip()[-300:] or process.returncode}")
        else:
            log_file.unlink(missing_ok=True)
    if failed:
        raise SearchError("Pagefind failed on " + "; ".join(failed))


def drop_segments(site_dir: Path, keep: Iterable[str]) -> None:
    """Remove every bundle under ``pagefind/`` but those of ``keep``."""
    keep = set(keep)
    folder = site_dir / BUNDLES_DIR
    for entry in folder.iterdir() if folder.is_dir() else ():
        if entry.name not in keep:
            shutil.rmtree(entry, ignore_errors=True)
