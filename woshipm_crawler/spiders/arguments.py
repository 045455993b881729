"""Spider arguments (``-a NAME=VALUE``) and the run's settings read before the state is opened: each
bad value becomes the one line the operator sees (``ArgumentError``)."""

from __future__ import annotations

import difflib
import json
from datetime import date

from woshipm_crawler.config import Config
from woshipm_crawler.parse.article import ArticleLayout, layout_from
from woshipm_crawler.parse.page import css
from woshipm_crawler.util import set_clock

OPTIONS = ("max_pages", "limit", "since", "full", "refresh", "requeue", "revisit")
REQUEUE_ALL = "all"


class ArgumentError(ValueError):
    """A spider argument that cannot be used; the message is the one line the operator sees."""


def unknown_arguments(names: list[str], valid: list[str]) -> str:
    """The operator's line for arguments no spider takes, with the closest valid name of each."""
    hints = [
        f"-a {name}: unknown argument" + (f" (did you mean {close[0]}?)" if close else "")
        for name in names
        for close in [difflib.get_close_matches(name, valid, n=1)]
    ]
    return "; ".join(hints) + f"; valid: {', '.join(valid)}"


def parse_flag(name: str, value) -> bool:
    if value is None or value is False:
        return False
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on", ""):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ArgumentError(f"-a {name}={value}: expected 1 or 0")


def parse_positive_int(name: str, value, least: int = 1) -> int | None:
    """A whole number of at least ``least`` (None when not given)."""
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = least - 1
    if number < least:
        raise ArgumentError(f"-a {name}={value}: expected a whole number of at least {least}")
    return number


def parse_since(value) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ArgumentError(f"-a since={value}: expected a date as YYYY-MM-DD, e.g. since=2026-01-31") from None


def parse_requeue(value) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not text.replace("_", "").isalnum():
        raise ArgumentError(f"-a requeue={value}: expected all, or a failure reason as the summary names it "
                            "(e.g. requeue=http)")
    return text
def run_settings(config: Config) -> tuple[tuple[str, ...], tuple[ArticleLayout, ...], str | None]:
    """The clock set (``WOSHIPM_CLOCK``: before the state is opened, so that every stamp of the run and
    the revisit schedule use it), the parser's extra furniture selectors and layouts read:
    (selectors, layouts, the operator's line for a bad value or None)."""
    try:
        set_clock(config.clock or None)
    except ValueError as error:
        return (), (), f"-s WOSHIPM_CLOCK: {error}"
    selectors = config.extra_furniture
    for selector in selectors:
        try:
            css(selector)
        except Exception as error:  # noqa: BLE001 - cssselect's errors have no common public base
            return (), (), (f"-s WOSHIPM_EXTRA_FURNITURE: {selector!r} is no CSS selector ({error}); "
                            "give them comma-separated")
    specs = config.article_layouts
    try:
        specs = json.loads(specs) if isinstance(specs, str) else specs
        layouts = tuple(layout_from(dict(spec)) for spec in specs)
    except Exception as error:  # noqa: BLE001 - JSON, a missing field, a selector that is no CSS
        return (), (), f"-s WOSHIPM_ARTICLE_LAYOUTS: {error} (a JSON list of layouts: parse/article.py ArticleLayout)"
    return selectors, layouts, None
