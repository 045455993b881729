"""The raw pages kept in WARC (woshipm_crawler.archive): a standard reader accepts them, they hold
every response of the run, and no torn record breaks a reader."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from woshipm_crawler import archive
from woshipm_crawler.archive import WarcSegments, iter_responses
from woshipm_crawler.parse.article import parse_article_response
from woshipm_replica import ReplicaServer
from woshipm_replica.crawls import run_crawl


def read_with_warcio(directory: Path) -> list[tuple[str, str, int | None, bytes]]:
    """(type, target URI, status, body) of every record, read with warcio's own iterator only."""
    out = []
    for path in sorted(directory.glob("*.warc.gz")):
        with open(path, "rb") as handle:
            for record in ArchiveIterator(handle):
                status = int(record.http_headers.get_statuscode()) if record.http_headers else None
                out.append((record.rec_type, record.rec_headers.get_header("WARC-Target-URI"), status,
                            record.content_stream().read()))
    return out


@pytest.mark.slow
def test_warc_holds_every_response_of_the_run(tmp_path):
    with ReplicaServer(articles=30, seed=2, faults="503=0.1") as server:
        crawl = run_crawl("category", server.base_url, tmp_path, {"category": "all"},
                          settings={"WOSHIPM_ARCHIVE_SEGMENT_MB": "0.05"})  # ~50 KB: several segments
        served = dict(server.path_counts)
        manifest = {row["id"]: row for row in server.corpus.manifest(server.base_url)}
        assert crawl.returncode == 0, crawl.log[-2000:]
        again = run_crawl("category", server.base_url, tmp_path, {"category": "all"},
                          settings={"WOSHIPM_ARCHIVE_ENABLED": "False"})
        assert again.returncode == 0 and again.stat("downloader/request_count") > 0
    directory = tmp_path / "archive"
    segments = sorted(directory.glob("*.warc.gz"))
    assert len(segments) >= 3  # rotated by size; the run with the archive off wrote none
    records = read_with_warcio(directory)
    for path in segments:  # each segment stands alone: it opens with its warcinfo
        with open(path, "rb") as handle:
            assert next(iter(ArchiveIterator(handle))).rec_type == "warcinfo"
    responses = [r for r in records if r[0] == "response"]
    # every request of the run but robots.txt, as many times as it was answered (503s retried too)
    expected = {path: count for path, count in served.items() if path != "/robots.txt"}
    got: dict[str, int] = {}
    for _, uri, _, _ in responses:
        path = uri[len(server.base_url):]
        got[path] = got.get(path, 0) + 1
    assert got == expected
    assert sum(expected.values()) == crawl.stat("woshipm/archive/records")
    statuses = {status for _, _, status, _ in responses}
    assert 503 in statuses and 200 in statuses
    # the article pages, as served, parse into the articles the replica published
    articles = {uri: body for _, uri, status, body in responses if status == 200 and uri.endswith(".html")}
    assert len(articles) == len(manifest) == 30
    for uri, body in articles.items():
        fields = parse_article_response(body, uri, content_type="text/html; charset=UTF-8")
        assert fields["title"] == manifest[fields["id"]]["title"]
        assert fields["content_hash"] == manifest[fields["id"]]["content_hash"]
    # and the project's own reader gives the same
    ours = list(iter_responses(directory))
    assert [(r.url, r.status, r.body) for r in ours] == [(u, s, b) for _, u, s, b in responses]
    assert all(r.fetched_at.endswith("Z") and len(r.fetched_at) == 20 for r in ours)


def write_some(directory: Path, count: int, segment_bytes: int = 1 << 30) -> WarcSegments:
    segments = WarcSegments(directory, "category-20260301T000000Z-1", segment_bytes, {"software": "test"})
    for n in range(count):
        body = json.dumps({"n": n, "text": "正文" * 200}, ensure_ascii=False).encode()
        segments.write(f"http://127.0.0.1:1/pd/{n + 1}.html", 200, "OK",
                       [("Content-Type", "text/html; charset=UTF-8")], body)
    return segments


def test_a_torn_tail_is_read_up_to_the_last_whole_record(tmp_path):
    segments = write_some(tmp_path, 5)
    segments.close()
    path = segments.path
    whole = path.read_bytes()
    # every record is its own gzip member: the whole members are a valid gzip stream
    assert gzip.decompress(whole).count(b"WARC/1.1\r\n") == 6  # warcinfo + 5
    extra = write_some(tmp_path / "other", 2)
    extra.close()
    tail = extra.path.read_bytes()
    wanted = [f"http://127.0.0.1:1/pd/{n}.html" for n in range(1, 6)]
    for cut in range(40, len(tail), 37):  # a copy cut anywhere (damage from outside the crawler)
        path.write_bytes(whole + tail[:cut])
        torn: list[Path] = []
        got = list(iter_responses(tmp_path, on_torn=lambda p, e, seen=torn: seen.append(p)))
        urls = [r.url for r in got]  # it never raises
        assert urls[:5] == wanted and len(urls) <= 7, cut
        assert len(urls) == 7 or torn in ([], [path]), cut
        assert all(json.loads(r.body)["text"] == "正文" * 200 for r in got), cut  # no cut body comes out
    path.write_bytes(whole + tail)
    assert len(list(iter_responses(tmp_path))) == 7


def test_a_write_that_fails_leaves_no_torn_record(tmp_path, monkeypatch):
    segments = write_some(tmp_path, 3)
    real = archive.write_all

    def full_disk(fd, data):
        real(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(archive, "write_all", full_disk)
    with pytest.raises(OSError):
        write_some(tmp_path, 1).close()  # a new writer of the same name appends to the same segment
    monkeypatch.setattr(archive, "write_all", real)
    segments.write("http://127.0.0.1:1/pd/9.html", 200, "OK", [], b"after the disk was freed")
    segments.close()
    torn = []
    got = list(iter_responses(tmp_path, on_torn=lambda p, e: torn.append(p)))
    assert torn == []
    assert [r.url.rsplit("/", 1)[1] for r in got] == ["1.html", "2.html", "3.html", "9.html"]
