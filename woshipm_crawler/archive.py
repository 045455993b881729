"""The raw pages, kept: every article and listing response the crawl gets, as served, in WARC files.

``WarcArchiveMiddleware`` (a downloader middleware, built ``from_crawler``, next to the downloader so
it sees each response before anything decodes or follows it: 429/503 answers, redirects and 404s
included) writes one WARC ``response`` record per response, with warcio's public writer, into
``<export dir>/archive/<spider>-<UTC start>-<job or pid>-<segment>.warc.gz`` (ISO 28500, WARC/1.1).
A segment is closed (fsynced) and the next one begun once it would pass ``WOSHIPM_ARCHIVE_SEGMENT_MB``;
each segment opens with a ``warcinfo`` record. ``WOSHIPM_ARCHIVE_ENABLED = False`` turns it off.

Crash rules, as for the JSONL feed: each record is its own gzip member, built whole in memory and
appended in a single ``write()`` on an ``O_APPEND`` descriptor, so a run killed at any moment leaves
whole records only, and a reader (warcio's ``ArchiveIterator``, ``iter_responses`` below) reads every
record up to the last one. A write that fails (a full disk) is cut back to the last whole record at
once; the run is then FAILED, naming how many responses are missing. The record of a response is
written before the spider sees it, so no article is stored (marked done) before its page is in the
archive. The segments reach the disk (fsync) when they are closed and before a run marks any output
written (the pipelines' ``os.sync()``); like the state's last transactions, a power cut may lose
the last records of a live segment, never a record in the middle.

``iter_responses(directory)`` reads them back: each response with its URL, fetch time, status,
headers and body (decoded from the transfer, as a crawl sees it); ``index_responses`` and
``read_response`` find and read single records (``scrapy reparse``).
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

from scrapy import signals
from scrapy.exceptions import NotConfigured
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from woshipm_crawler.config import Config
from woshipm_crawler.handoff import ARTICLE_KIND, LISTING_KIND, META_FETCHED_AT, META_KIND
from woshipm_crawler.statkeys import ARCHIVE_FAILED_KEY, ARCHIVE_PATH_KEY, ARCHIVE_RECORDS_KEY
from woshipm_crawler.util import COMPACT_STAMP_FORMAT, utc_stamp, write_all

logger = logging.getLogger(__name__)

ARCHIVE_SUBDIR = "archive"
SUFFIX = ".warc.gz"
MIDDLEWARE_PRIORITY = 950  # nearest the downloader: the response as served
ARCHIVED_KINDS = (ARTICLE_KIND, LISTING_KIND)
# The body Scrapy hands on is already de-chunked: a reader must not de-chunk it again.
DROPPED_HEADERS = (b"Transfer-Encoding",)


def archive_dir(settings) -> Path:
    return Config.from_settings(settings).export_dir / ARCHIVE_SUBDIR


class WarcSegments:
    """Run segments of one run: ``write(url, status, reason, headers, body)`` appends one record."""

    def __init__(self, directory: Path, name: str, segment_bytes: int, info: dict[str, str]) -> None:
        self.directory = Path(directory)
        self.name = name
        self.segment_bytes = segment_bytes
        self.info = info
        self.fd: int | None = None
        self.path: Path | None = None
        self.size = 0
        self.segment = 0
        self.written = 0

    def _record(self, writer: WARCWriter, record) -> bytes:
        buffer = writer.out
        buffer.seek(0)
        buffer.truncate()
        writer.write_record(record)
        return buffer.getvalue()

    def _open(self) -> None:
        self.segment += 1
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"{self.name}-{self.segment:05d}{SUFFIX}"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.size = os.lseek(self.fd, 0, os.SEEK_END)
        writer = WARCWriter(io.BytesIO(), gzip=True, warc_version="WARC/1.1")
        self._append(self._record(writer, writer.create_warcinfo_record(self.path.name, self.info)))

    def _append(self, data: bytes) -> None:
        whole = self.size
        try:
            write_all(self.fd, data)
        except OSError:
            try:  # no torn record is left behind: readers stop at a torn gzip member
                os.ftruncate(self.fd, whole)
            except OSError:
                pass
            raise
        self.size = whole + len(data)

    def write(self, url: str, status: int, reason: str, headers: list[tuple[str, str]], body: bytes,
              fetched_at: str | None = None) -> None:
        writer = WARCWriter(io.BytesIO(), gzip=True, warc_version="WARC/1.1")
        http_headers = StatusAndHeaders(f"{status} {reason}".strip(), headers, protocol="HTTP/1.1")
        record = writer.create_warc_record(
            url, "response", payload=io.BytesIO(body), length=len(body), http_headers=http_headers,
            warc_headers_dict={"WARC-Date": fetched_at or utc_stamp()},
        )
        data = self._record(writer, record)
        if self.fd is not None and self.size + len(data) > self.segment_bytes:
            self.close()
        if self.fd is None:
            self._open()
        self._append(data)
        self.written += 1

    def close(self) -> None:
        if self.fd is not None:
            try:
                os.fsync(self.fd)
            finally:
                os.close(self.fd)
                self.fd = None


class WarcArchiveMiddleware:
    """Writes each article and listing response into the run's WARC segments (module docstring)."""

    def __init__(self, crawler, segments: WarcSegments) -> None:
        self.crawler = crawler
        self.segments = segments
        self.failed = 0

    @classmethod
    def from_crawler(cls, crawler):
        config = Config.from_settings(crawler.settings)
        if not config.archive_enabled:
            raise NotConfigured("WOSHIPM_ARCHIVE_ENABLED is off")
        segment_bytes = int(config.archive_segment_mb * 1024 * 1024)
        middleware = cls(crawler, WarcSegments(config.export_dir / ARCHIVE_SUBDIR, "", segment_bytes, {}))
        crawler.signals.connect(middleware.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(middleware.spider_closed, signal=signals.spider_closed)
        return middleware

    def spider_opened(self, spider) -> None:
        run = getattr(spider, "_job", None) or str(os.getpid())
        self.segments.name = f"{spider.name}-{utc_stamp(COMPACT_STAMP_FORMAT)}-{run}"
        self.segments.info = {
            "software": f"woshipm_crawler ({self.crawler.settings.get('BOT_NAME')}) with warcio",
            "format": "WARC File Format 1.1",
            "isPartOf": self.segments.name,
            "http-header-user-agent": str(self.crawler.settings.get("USER_AGENT")),
        }

    def process_response(self, request, response, spider=None):
        if request.meta.get(META_KIND) not in ARCHIVED_KINDS:
            return response
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, values in response.headers.items()
            if name not in DROPPED_HEADERS
            for value in values
        ]
        reason = _reason(response.status)
        fetched_at = utc_stamp()
        try:
            self.segments.write(response.url, response.status, reason, headers, response.body, fetched_at)
            self.crawler.stats.inc_value(ARCHIVE_RECORDS_KEY)
            request.meta[META_FETCHED_AT] = fetched_at  # the item's crawled_at: a reparse gives the same
        except OSError as error:
            self.failed += 1
            self.crawler.stats.inc_value(ARCHIVE_FAILED_KEY)
            log = logger.error if self.failed == 1 else logger.debug
            log("Archive: the response of %s not written under %s: %s", response.url, self.segments.directory, error)
        return response

    def spider_closed(self, spider, reason) -> None:
        try:
            self.segments.close()
        except OSError as error:
            self.crawler.stats.inc_value(ARCHIVE_FAILED_KEY)
            logger.error("Archive: %s not closed: %s", self.segments.path, error)
        if self.segments.written:
            self.crawler.stats.set_value(ARCHIVE_PATH_KEY, str(self.segments.directory))
            logger.info("Archive: %d response(s) in %d WARC segment(s) under %s", self.segments.written,
                        self.segments.segment, self.segments.directory)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


@dataclass
class ArchivedResponse:
    url: str
    fetched_at: str  # the record's WARC-Date, "YYYY-MM-DDTHH:MM:SSZ"
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    warc: Path

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)


def segments(directory: Path) -> list[Path]:
    """The WARC segments under ``directory``, oldest first (their names start with the run's start)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"*{SUFFIX}"), key=lambda path: (path.name.split("-")[1:2], path.name))


@dataclass(frozen=True)
class RecordRef:
    """Where one response record is: its segment and offset, with what a reader picks it by."""

    warc: Path
    offset: int
    url: str
    status: int
    fetched_at: str


def index_responses(directory: Path, on_torn=None) -> Iterator[RecordRef]:
    """Every response record under ``directory``, oldest first, without its body (``read_response``
    reads one). A damaged tail ends its segment's index; ``on_torn(path, reason)`` hears of it."""
    for path in segments(directory):
        with open(path, "rb") as handle:
            iterator = ArchiveIterator(handle)
            try:
                for record in iterator:
                    if record.rec_type == "response" and record.http_headers is not None:
                        yield RecordRef(path, iterator.get_record_offset(),
                                        record.rec_headers.get_header("WARC-Target-URI"),
                                        int(record.http_headers.get_statuscode() or 0),
                                        _stamp(record.rec_headers.get_header("WARC-Date")))
            except Exception as error:  # noqa: BLE001 - whatever a damaged tail makes the reader raise
                if on_torn is not None:
                    on_torn(path, f"{type(error).__name__}: {error}")


def _response(record, path: Path) -> ArchivedResponse:
    """The response of a record whose content was read whole and checked, or ValueError."""
    body = record.content_stream().read()
    if record.digest_checker.passed is not True:
        raise ValueError("a record whose digest does not match: cut short")
    return ArchivedResponse(
        url=record.rec_headers.get_header("WARC-Target-URI"),
        fetched_at=_stamp(record.rec_headers.get_header("WARC-Date")),
        status=int(record.http_headers.get_statuscode() or 0),
        headers=list(record.http_headers.headers),
        body=body,
        warc=path,
    )


def read_response(handle, ref: RecordRef) -> ArchivedResponse:
    """The response at ``ref`` (``handle``: its segment, open in binary mode); ValueError if damaged."""
    handle.seek(ref.offset)
    record = next(iter(ArchiveIterator(handle, check_digests=True)))
    return _response(record, ref.warc)


def iter_responses(directory: Path, on_torn=None) -> Iterator[ArchivedResponse]:
    """Every whole response record under ``directory``, segment by segment, oldest first.

    Each record's digests are checked: a record cut short (a segment damaged outside the crawler:
    its own writes are never torn) is left out, and the segment is read no further (warcio may
    even fail on it); ``on_torn(path, reason)`` hears of it.
    """
    for path in segments(directory):
        with open(path, "rb") as handle:
            try:
                for record in ArchiveIterator(handle, check_digests=True):
                    if record.rec_type == "response" and record.http_headers is not None:
                        yield _response(record, path)
            except Exception as error:  # noqa: BLE001 - whatever a damaged tail makes the reader raise
                if on_torn is not None:
                    on_torn(path, f"{type(error).__name__}: {error}")


def _stamp(value: str | None) -> str:
    """A WARC-Date (``2026-03-01T04:00:00Z``, maybe with fractions) as a ``utc_stamp``."""
    text = (value or "").strip()
    return text[:19] + "Z" if len(text) >= 19 else text
