#!/usr/bin/env bash
# The main job, offline: start the built-in replica of woshipm.com on 127.0.0.1 and crawl every
# category of it into exports/ (JSONL feed, Markdown library, state). Extra arguments go to
# `scrapy crawl`, e.g. `bash scripts/crawl-replica.sh -a limit=20`.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${REPLICA_PORT:-8000}"

python3 -m woshipm_crawler.replica --port "$PORT" &
REPLICA_PID=$!
trap 'kill "$REPLICA_PID" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/robots.txt" 2>/dev/null && break
  sleep 0.2
done

# The replica is ours and on loopback: no need for the real site's politeness delays.
scrapy crawl category -a category=all \
  -s WOSHIPM_BASE_URL="http://127.0.0.1:$PORT" \
  -s DOWNLOAD_DELAY=0 -s AUTOTHROTTLE_ENABLED=False -s CONCURRENT_REQUESTS_PER_DOMAIN=16 \
  -s WOSHIPM_RETRY_BACKOFF_BASE=0.1 \
  "$@"
echo "Done: see exports/jsonl/ and exports/markdown/SUMMARY.md"
