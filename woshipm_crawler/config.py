"""The project's settings as the code reads them: one ``Config``, built from a crawler's settings.

Every ``WOSHIPM_*`` setting is read here and nowhere else, typed once; its default and its comment
are in settings.py only. A setting missing from the settings given (a command's or a test's bare
``Settings``) takes settings.py's value, so a default is written once.

``RenamedSettings`` is a Scrapy add-on (settings.py lists it first in ``ADDONS``): before anything
reads the settings, it copies each old name's value to its new name, at the old value's priority,
unless the new name was given with a higher one, so old names keep working, with a warning.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy.settings import BaseSettings

from woshipm_crawler import settings as project_settings

PREFIX = "WOSHIPM_"
# old name -> new name, with why
RENAMED_SETTINGS = {
    "WOSHIPM_MARKDOWN_ENABLED": "WOSHIPM_LIBRARY_ENABLED",  # it only ever switched the library off
    "WOSHIPM_LAYOUT_CHANGED_TO_STOP": "WOSHIPM_FAILURES_TO_STOP",  # any failures in a row stop a run now
}


class RenamedSettings:
    def update_settings(self, settings: Any) -> None:
        for old, new in RENAMED_SETTINGS.items():
            old_priority = settings.getpriority(old)
            if old_priority is None:
                continue
            warnings.warn(f"Setting {old} is deprecated: use {new}", ScrapyDeprecationWarning, stacklevel=2)
            if old_priority >= (settings.getpriority(new) or 0):
                settings.set(new, settings[old], priority=old_priority)


def project_defaults() -> dict[str, Any]:
    """settings.py's ``WOSHIPM_*`` values: the defaults."""
    return {name: getattr(project_settings, name) for name in dir(project_settings) if name.startswith(PREFIX)}


@dataclass(frozen=True)
class Config:
    """Each field is the setting of the same name without ``WOSHIPM_`` (settings.py says what it does);
    an ``int``, ``float`` or ``bool`` field is read by its type."""

    base_url: str
    export_dir: Path
    state_path: Path  # WOSHIPM_STATE_PATH, else <export dir>/state.sqlite3
    library_enabled: bool
    clock: str  # empty: the system clock
    known_pages_to_stop: int
    failed_pages_to_stop: int
    max_listing_pages: int
    article_retry_base: float
    article_retry_max: float
    revisit_share: float
    removals_share_to_fail: float
    removals_min_to_fail: int
    render: str  # lower case; render.middleware.render_mode checks it
    chromium: str
    render_timeout: float
    retry_backoff_base: float
    retry_backoff_max: float
    backoff_recovery: float
    archive_enabled: bool
    archive_segment_mb: float
    progress: bool | None  # None: on when stderr is a terminal
    stats_file: str
    extra_furniture: tuple[str, ...]
    # As given (a list of dicts, or a JSON list with -s): the spider checks each (parse.article.layout_from).
    article_layouts: Any
    field_coverage: dict[str, float]
    coverage_tolerance: float
    coverage_min_articles: int
    # As given ("summary=0.4,cover_image=0.3", a JSON object or a dict): alarms.accepted_coverage checks it.
    accept_coverage: Any
    min_body_chars: int
    failures_to_stop: int
    max_failed_share: float

    @classmethod
    def from_settings(cls, settings: Any) -> Config:
        values = BaseSettings({name: settings[name] if name in settings else default
                               for name, default in project_defaults().items()})
        typed = {"int": values.getint, "float": values.getfloat, "bool": values.getbool}
        numbers = {field.name: typed[field.type](PREFIX + field.name.upper())
                   for field in fields(cls) if field.type in typed}
        export_dir = Path(values.get("WOSHIPM_EXPORT_DIR") or project_settings.WOSHIPM_EXPORT_DIR)
        progress = values.get("WOSHIPM_PROGRESS")
        return cls(
            **numbers,
            base_url=values.get("WOSHIPM_BASE_URL") or project_settings.WOSHIPM_BASE_URL,
            export_dir=export_dir,
            state_path=Path(values.get("WOSHIPM_STATE_PATH") or export_dir / "state.sqlite3"),
            clock=values.get("WOSHIPM_CLOCK") or "",
            render=(values.get("WOSHIPM_RENDER") or project_settings.WOSHIPM_RENDER).strip().lower(),
            chromium=values.get("WOSHIPM_CHROMIUM") or "",
            progress=None if progress is None else values.getbool("WOSHIPM_PROGRESS"),
            stats_file=values.get("WOSHIPM_STATS_FILE") or "",
            extra_furniture=tuple(s.strip() for s in values.getlist("WOSHIPM_EXTRA_FURNITURE") if s.strip()),
            article_layouts=values.get("WOSHIPM_ARTICLE_LAYOUTS") or [],
            field_coverage={name: float(share) for name, share in values.getdict("WOSHIPM_FIELD_COVERAGE").items()},
            accept_coverage=values.get("WOSHIPM_ACCEPT_COVERAGE") or {},
        )
