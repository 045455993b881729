"""``python -m woshipm_replica``: serve the replica, or dump its manifest."""

from __future__ import annotations

import argparse
import errno
import json
import sys
import threading
from datetime import date
from pathlib import Path

from woshipm_crawler.util import atomic_write

from .corpus import Calendar, Corpus
from .server import ALLOWED_HOSTS, FAULT_NAMES, LAYOUT_NAMES, FaultSpec, LayoutSpec, ReplicaServer


def _ids(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _write_manifest(corpus: Corpus, base_url: str, out) -> None:
    for record in corpus.manifest(base_url):
        out.write(json.dumps(record, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m woshipm_replica", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="only 127.0.0.1/localhost are accepted")
    parser.add_argument("--port", type=int, default=8000, help="0: any free port (the one taken is printed)")
    parser.add_argument("--articles", type=int, default=150)
    parser.add_argument("--seed", default="1")
    parser.add_argument(
        "--faults", default="", help=f"e.g. 429=0.2,truncate=ids:1;2,ratelimit=5 — faults: {', '.join(FAULT_NAMES)}"
    )
    parser.add_argument(
        "--quirk", action="append", default=[], metavar="LISTING=QUIRK", help="e.g. category:pd=loop_redirect"
    )
    parser.add_argument(
        "--layout", default="", help=f"pages in another layout, e.g. v2 (all) or v2=0.01,cards2019=0.2 — layouts: "
        f"{', '.join(LAYOUT_NAMES)}"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds every response is delayed")
    parser.add_argument("--plain-before", metavar="YYYY-MM-DD",
                        help="an older era: articles published before that day have no summary and no images")
    parser.add_argument("--edit-ids", type=_ids, default=[], help="article ids served in a new revision")
    parser.add_argument("--today", type=date.fromisoformat, metavar="YYYY-MM-DD",
                        help="a living site: day 0 of its calendar (new articles each day, stats growing with age, "
                        "seeded edits and removals; GET /__replica__/clock?advance=DAYS moves it on)")
    parser.add_argument("--rate", type=float, default=24.0, help="with --today: articles published a day")
    parser.add_argument("--day", type=int, default=0, help="with --today: days advanced (for --dump-manifest)")
    parser.add_argument("--dump-manifest", metavar="FILE",
                        help="write the manifest (JSON lines) and exit; with --today, as of the current day")
    parser.add_argument("--base-url", help="base URL of the manifest's urls (default: http://HOST:PORT)")
    parser.add_argument("--ready-file", metavar="FILE", type=Path,
                        help="once listening, write the replica's base URL there (for scripts waiting on it)")
    args = parser.parse_args(argv)
    if args.host not in ALLOWED_HOSTS:
        parser.error("the replica binds only to 127.0.0.1")
    seed: int | str = int(args.seed) if args.seed.lstrip("-").isdigit() else args.seed
    try:
        faults = FaultSpec.parse(args.faults)
        layout = LayoutSpec.parse(args.layout)
    except ValueError as error:
        parser.error(str(error))

    calendar = Calendar(args.today, day=args.day, rate=args.rate) if args.today else None
    if args.dump_manifest:
        corpus = Corpus(articles=args.articles, seed=seed, edits=args.edit_ids, plain_before=args.plain_before,
                        calendar=calendar)
        base_url = args.base_url or f"http://127.0.0.1:{args.port}"
        if args.dump_manifest == "-":
            _write_manifest(corpus, base_url, sys.stdout)
        else:
            with open(args.dump_manifest, "w", encoding="utf-8") as out:
                _write_manifest(corpus, base_url, out)
        return 0

    server = ReplicaServer(
        articles=args.articles,
        seed=seed,
        faults=faults,
        edits=args.edit_ids,
        plain_before=args.plain_before,
        host=args.host,
        port=args.port,
        latency=args.latency,
        quirks=dict(item.split("=", 1) for item in args.quirk),
        layout=layout,
        today=args.today,
        rate=args.rate,
    )
    if calendar is not None and args.day:
        server.advance(args.day)
    try:
        server.start()
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        print(f"woshipm replica: port {args.port} on 127.0.0.1 is taken by another program; "
              "choose another with --port (0: any free port)", file=sys.stderr, flush=True)
        return 3
    print(
        f"woshipm replica: {args.articles} articles, seed {seed}, faults {args.faults or 'none'}, "
        f"layout {args.layout or 'current'} "
        + (f"calendar day {args.day} from {args.today} ({args.rate:g} a day) " if calendar else "")
        + f"on {server.base_url}",
        file=sys.stderr,
        flush=True,
    )
    if args.ready_file:
        atomic_write(args.ready_file, f"{server.base_url}\n".encode())
    try:
        threading.Event().wait()  # serves from its thread until killed or Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
