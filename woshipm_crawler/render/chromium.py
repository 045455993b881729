"""Where Chromium is: the configured path, ``$WOSHIPM_CHROMIUM``, or Debian's usual paths."""

from __future__ import annotations

import os
from collections.abc import Mapping

# The real binary first: /usr/bin/chromium is Debian's shell wrapper, which also reads
# /etc/chromium.d flags we do not control.
DEBIAN_CHROMIUM_PATHS = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = (
    "--no-sandbox",  # runs as root in containers, where the sandbox cannot start
    "--disable-dev-shm-usage",  # container /dev/shm is tiny; tabs crash without this
    "--disable-background-networking",  # offline machine: otherwise a flood of refused connections
    "--disable-gpu",
    "--disable-component-update",
    "--no-first-run",
)
INSTALL_HINT = "apt-get install -y chromium"


class ChromiumNotFound(RuntimeError):
    """No usable Chromium executable; the message names the fix."""


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_chromium(configured: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """Path of the Chromium to launch: ``configured`` (setting WOSHIPM_CHROMIUM), then the
    WOSHIPM_CHROMIUM environment variable, then Debian's usual paths.

    An explicitly configured path that is not executable is an error rather than silently
    replaced, so a typo does not quietly run a different browser.
    """
    env = os.environ if env is None else env
    for source, path in (
        ("setting WOSHIPM_CHROMIUM", configured),
        ("env WOSHIPM_CHROMIUM", env.get("WOSHIPM_CHROMIUM")),
    ):
        if path:
            if _is_executable(path):
                return path
            raise ChromiumNotFound(
                f"Chromium not found at {path!r} (from {source}); fix the path or `{INSTALL_HINT}`"
            )
    for path in DEBIAN_CHROMIUM_PATHS:
        if _is_executable(path):
            return path
    raise ChromiumNotFound(
        "Chromium is needed to render JavaScript pages but none was found at "
        f"{', '.join(DEBIAN_CHROMIUM_PATHS)}. Install it with `{INSTALL_HINT}` or point setting/env "
        "WOSHIPM_CHROMIUM at a Chromium binary. (`playwright install` cannot download browsers here.)"
    )
