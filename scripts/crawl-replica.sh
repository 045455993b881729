#!/usr/bin/env bash
# The main job, offline: start the built-in replica of woshipm.com on 127.0.0.1 and crawl every
# category of it into exports-replica/ (JSONL feed, Markdown library, state), never into exports/,
# which is for the real site. Extra arguments go to `scrapy crawl`, e.g. `-a limit=20`.
# The replica takes a free port; REPLICA_PORT=N asks for N, and the script stops if N is taken.
# Run `bash scripts/setup.sh` first: this uses .venv/.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=.venv/bin/python
EXPORT_DIR=exports-replica
PORT="${REPLICA_PORT:-0}"
say() { echo "crawl-replica: $*"; }

if [ ! -x "$PYTHON" ]; then
  say "no $PYTHON: run \`bash scripts/setup.sh\` first" >&2
  exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/woshipm-replica.XXXXXX")
"$PYTHON" -m woshipm_replica --port "$PORT" --ready-file "$WORK/url" &
REPLICA_PID=$!
trap 'kill "$REPLICA_PID" 2>/dev/null || true; wait "$REPLICA_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
trap 'exit 143' TERM
trap 'exit 129' HUP
# Ctrl-C reaches scrapy too (same process group), which stops gracefully; the replica, started in the
# background, ignores it and serves until scrapy is done. Then this script says how to resume.
INTERRUPTED=0
trap 'INTERRUPTED=1' INT
interrupted() {
  say "interrupted: what was fetched is saved; run the same command again to resume" >&2
  exit 130
}

# The replica writes its URL once it listens, or exits (the port is taken): wait for either.
for _ in $(seq 600); do
  [ "$INTERRUPTED" -eq 0 ] || interrupted
  [ -s "$WORK/url" ] && break
  kill -0 "$REPLICA_PID" 2>/dev/null || break
  sleep 0.1
done
if [ ! -s "$WORK/url" ]; then
  status=0
  wait "$REPLICA_PID" || status=$?
  if [ "$status" -eq 3 ]; then
    say "port $PORT is taken by another program: nothing crawled. Give a free port" \
        "(REPLICA_PORT=...) or leave REPLICA_PORT unset to have one picked." >&2
  else
    say "the replica did not start (exit status $status): nothing crawled" >&2
  fi
  exit 1
fi
BASE_URL=$(cat "$WORK/url")

# The replica is ours and on loopback: no need for the real site's politeness delays.
status=0
"$PYTHON" -m scrapy crawl category -a category=all \
  -s WOSHIPM_BASE_URL="$BASE_URL" -s WOSHIPM_EXPORT_DIR="$EXPORT_DIR" \
  -s DOWNLOAD_DELAY=0 -s AUTOTHROTTLE_ENABLED=False -s CONCURRENT_REQUESTS_PER_DOMAIN=16 \
  -s WOSHIPM_RETRY_BACKOFF_BASE=0.1 \
  "$@" || status=$?
[ "$INTERRUPTED" -eq 0 ] || interrupted
if [ "$status" -ne 0 ]; then
  say "the crawl FAILED (exit status $status): see its log above" >&2
  exit "$status"
fi

# Where to look. This run's feed is the JSONL file written since the replica started, if any.
FEED=$(find "$EXPORT_DIR/jsonl" -name '*.jsonl' -newer "$WORK/url" 2>/dev/null | sort | tail -n 1 || true)
# (sed, not head: head leaves early, sort dies of SIGPIPE, and pipefail would make that a failure)
ARTICLE=$(find "$EXPORT_DIR/markdown/articles" -name '[0-9]*.md' 2>/dev/null | sort | sed -n 1p || true)
echo
say "done. Look at:"
if [ -f "$EXPORT_DIR/markdown/SUMMARY.md" ]; then
  echo "  the library:         $EXPORT_DIR/markdown/SUMMARY.md${ARTICLE:+ (an article: $ARTICLE)}"
else
  echo "  the library:         empty so far (no article written)"
fi
if [ -n "$FEED" ]; then
  echo "  this run's articles: $FEED ($(wc -l <"$FEED") lines of JSON)"
else
  echo "  this run's articles: no JSONL file: nothing new or changed since the last run"
fi
echo "  the state:           $EXPORT_DIR/state.sqlite3"
echo "Run the same command again for an incremental crawl: it fetches nothing already known."
