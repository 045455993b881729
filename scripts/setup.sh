#!/usr/bin/env bash
# Installs everything the crawler and its tests need on a fresh Debian machine:
# Debian's Chromium (the only browser that installs here: `playwright install` cannot download one)
# and the project with its dev extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/lib/chromium/chromium ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q chromium
fi

python3 -m pip install -q --disable-pip-version-check -e ".[dev]"
