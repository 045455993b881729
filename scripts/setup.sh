#!/usr/bin/env bash
# Sets the project up on a fresh Debian 12, whose /usr/bin/python3 is externally managed:
#   1. the Debian packages below, with apt-get (sudo when not root), only those missing;
#   2. a virtual environment, .venv/, made with the first python3 on PATH, holding the project
#      (editable) with its runtime dependencies, or with its dev extras too when given --dev.
# Nothing needs activating afterwards: scripts/ use .venv/bin/python, the tests run with
# `.venv/bin/python -m pytest`. pip's and apt's output goes to a log, shown only when a step fails.
# Safe to run again: a step whose inputs have not changed is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: name, then a command whose presence counts as installed (empty: ask dpkg).
# python3-venv: venv with pip for Debian's python3; chromium: JavaScript pages (`playwright install`
# cannot download a browser); fonts-noto-cjk: Chinese in charts and screenshots; fonts-noto-color-emoji:
# the library header's 👁️💬⭐ in the book; nodejs, npm: the book.
APT_PACKAGES=(
  "python3-venv:"
  "chromium:chromium"
  "fonts-noto-cjk:"
  "fonts-noto-color-emoji:"
  "nodejs:node"
  "npm:npm"
)
VENV=.venv
STAMP="$VENV/.setup-stamp"

usage() { echo "usage: bash scripts/setup.sh [--dev]   (--dev: also the test and benchmark tools)"; }
EXTRAS=runtime
for arg in "$@"; do
  case "$arg" in
    --dev) EXTRAS=dev ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

say() { echo "setup: $*"; }
STARTED=$SECONDS
LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/woshipm-setup.XXXXXX")
trap 'rm -rf "$LOG_DIR"' EXIT

# run STEP-NAME COMMAND...: the command's output goes to a log; on failure its last lines are shown.
run() {
  local name=$1; shift
  local log="$LOG_DIR/$name.log"
  local status=0
  "$@" >"$log" 2>&1 || status=$?
  if [ -d "$VENV" ]; then cat "$log" >>"$VENV/setup.log"; fi
  if [ $status -ne 0 ]; then
    say "FAILED ($status): $*"
    echo "----- last lines of its output$( [ -d "$VENV" ] && echo " (all of it: $VENV/setup.log)") -----"
    # Less pip's notes on configured index locations that do not exist here: harmless, and many.
    grep -v "^WARNING: Location '.*' is ignored: it is neither a file nor a directory" "$log" | tail -n 30
    echo "------------------------------------"
    exit 1
  fi
}

# ---- 1. Debian packages ----
# The locks apt and dpkg take (WOSHIPM_APT_LOCKS: other files, for tests), and how long to wait for them.
read -r -a APT_LOCKS <<<"${WOSHIPM_APT_LOCKS:-/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock}"
APT_LOCK_WAIT_S=${WOSHIPM_APT_LOCK_WAIT:-300}

lock_holder() {  # lock_holder FILE: the pid holding a lock on FILE (fcntl, as apt takes it, or flock)
  [ -e "$1" ] || return 0
  local dev ino
  read -r dev ino < <(stat -L -c '%d %i' "$1")
  # /proc/locks: "1: POSIX ADVISORY WRITE <pid> <major>:<minor>:<inode> ..."; "->" lines are waiters.
  awk -v id="$(printf '%02x:%02x:%s' $(( (dev >> 8) & 0xfff )) $(( (dev & 0xff) | ((dev >> 12) & 0xfff00) )) "$ino")" \
    '$2 != "->" && $6 == id { print $5; exit }' /proc/locks 2>/dev/null || true
}

wait_for_apt_locks() {
  local deadline=$((SECONDS + APT_LOCK_WAIT_S)) lock pid what said=""
  for lock in "${APT_LOCKS[@]}"; do
    while pid=$(lock_holder "$lock") && [ -n "$pid" ]; do
      what=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
      what="pid $pid (${what% })"
      if [ $SECONDS -ge $deadline ]; then
        say "$lock is still held after ${APT_LOCK_WAIT_S} s, by $what: let it finish (unattended-upgrades"
        say "can take a few minutes on a fresh machine), or stop it, then run this script again"
        exit 1
      fi
      if [ -z "$said" ]; then
        say "waiting for $lock, held by $what (up to ${APT_LOCK_WAIT_S} s)"
        said=1
      fi
      sleep 1
    done
  done
  if [ -n "$said" ]; then say "the apt lock is free: going on"; fi
}

installed() {  # installed NAME COMMAND
  if [ -n "$2" ] && command -v "$2" >/dev/null 2>&1; then return 0; fi
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}
MISSING=()
for entry in "${APT_PACKAGES[@]}"; do
  installed "${entry%%:*}" "${entry#*:}" || MISSING+=("${entry%%:*}")
done
if [ ${#MISSING[@]} -eq 0 ]; then
  say "Debian packages: all present"
elif ! command -v apt-get >/dev/null 2>&1; then
  say "no apt-get here: install ${MISSING[*]} with your system's package manager; going on without them"
else
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { say "need root or sudo to install: ${MISSING[*]}"; exit 1; }
    SUDO=(sudo)
  fi
  say "Debian packages: installing ${MISSING[*]} (apt-get; a minute or more)"
  export DEBIAN_FRONTEND=noninteractive
  # Another apt run (unattended upgrades on a fresh cloud machine, a colleague) holds the lock for a
  # while: wait for it, then say what holds it. apt-get's own DPkg::Lock::Timeout covers dpkg's lock
  # only, not the package lists' that `apt-get update` takes.
  wait_for_apt_locks
  APT=("${SUDO[@]}" apt-get -q -o DPkg::Lock::Timeout="$APT_LOCK_WAIT_S")
  run apt-update "${APT[@]}" update
  run apt-install "${APT[@]}" install -y --no-install-recommends "${MISSING[@]}"
fi

# ---- 2. The virtual environment ----
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c "" >/dev/null 2>&1; then
  say "$VENV is broken (its Python is gone): making it again"
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  command -v python3 >/dev/null 2>&1 || { say "no python3 on PATH (Debian: apt-get install python3)"; exit 1; }
  say "making $VENV with $(command -v python3) ($(python3 -V 2>&1))"
  rm -rf "$VENV"
  run venv python3 -m venv "$VENV"
fi

# The project's dependencies are declared in pyproject.toml (setup.py is for scrapyd-deploy only).
HASH=$(cat pyproject.toml setup.py | sha256sum | cut -c1-16)
DONE=$(cat "$STAMP" 2>/dev/null || true)
if [ "$DONE" = "$HASH $EXTRAS" ] || [ "$DONE" = "$HASH dev" ]; then  # dev includes runtime
  say "$VENV: up to date ($( [ "$DONE" = "$HASH dev" ] && echo "with dev extras" || echo "runtime only"))"
else
  if [ "$EXTRAS" = dev ]; then TARGET=".[dev]"; WHAT="with its dev extras"; else TARGET="."; WHAT="for crawling"; fi
  say "installing the project $WHAT into $VENV (a minute or two; log: $VENV/setup.log)"
  rm -f "$STAMP"
  run pip "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -e "$TARGET"
  echo "$HASH $EXTRAS" >"$STAMP"
fi

say "ready in $((SECONDS - STARTED)) s"
