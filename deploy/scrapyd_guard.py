"""Scrapyd's application, refusing to start without a real password.

``deploy/scrapyd.conf`` names it (``application = scrapyd_guard.application``); put this file where
Scrapyd's Python finds it (docs/scrapyd.md: ``/etc/scrapyd``, with ``PYTHONPATH`` in the systemd unit).
Scrapyd turns basic auth off when the username or password is empty, and then anyone who reaches the
port can deploy code; a password copied from an example is as good as none. Both stop Scrapyd before
it listens, with one line saying what to set. Without this file on the path Scrapyd does not start
either (it cannot import the application the config names), so a half-installed server stays closed.
"""

import os

from scrapyd.app import application as scrapyd_application
from scrapyd.exceptions import ConfigError

MIN_PASSWORD_LENGTH = 12
# Passwords from examples and defaults: whoever reads them can deploy code.
KNOWN_PASSWORDS = {"change-me", "changeme", "password", "scrapyd", "admin", "secret", "woshipm"}


def credentials_problem(username: str, password: str) -> str | None:
    """Why Scrapyd must not start with these credentials, or None."""
    if not username or not password:
        return "no username or password set, so Scrapyd would disable basic auth"
    if password.lower() in KNOWN_PASSWORDS:
        return "the password is an example's default"
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password is shorter than {MIN_PASSWORD_LENGTH} characters"
    return None


def application(config):
    # The same sources Scrapyd reads: the environment wins over the config files.
    username = os.getenv("SCRAPYD_USERNAME") or config.get("username", "")
    password = os.getenv("SCRAPYD_PASSWORD") or config.get("password", "")
    problem = credentials_problem(username, password)
    if problem:
        raise ConfigError(
            f"scrapyd_guard: refusing to start: {problem}. Set SCRAPYD_USERNAME and SCRAPYD_PASSWORD "
            f"(a long random secret, e.g. from `openssl rand -base64 24`) in the service's environment "
            "file; see docs/scrapyd.md"
        )
    return scrapyd_application(config)
