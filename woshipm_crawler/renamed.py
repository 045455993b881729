"""Settings that were renamed: an old name keeps working, with a warning naming the new one.

``RenamedSettings`` is a Scrapy add-on (settings.py lists it first in ``ADDONS``): before anything
reads the settings, it copies each old name's value to its new name, at the old value's priority,
unless the new name was given with a higher one. Code reads the new names only.
"""

from __future__ import annotations

import warnings
from typing import Any

from scrapy.exceptions import ScrapyDeprecationWarning

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
