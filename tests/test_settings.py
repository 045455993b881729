"""Settings: every project setting the code reads is declared (and commented) in settings.py, and a
renamed setting's old name still works, with a warning."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy.settings import Settings

from woshipm_crawler import settings as project_settings
from woshipm_crawler.renamed import RENAMED_SETTINGS, RenamedSettings
from woshipm_crawler.render.addon import PLAYWRIGHT_HANDLER, RenderAddon

PACKAGE = Path(project_settings.__file__).parent
READ_RE = re.compile(r"""settings(?:\.get\w*\(|\[)\s*["'](WOSHIPM_\w+)["']""")


def test_every_setting_the_package_reads_is_declared():
    read = {name for path in PACKAGE.rglob("*.py") for name in READ_RE.findall(path.read_text(encoding="utf-8"))}
    assert {"WOSHIPM_PROGRESS", "WOSHIPM_RENDER", "WOSHIPM_LIBRARY_ENABLED"} <= read
    assert sorted(name for name in read if not hasattr(project_settings, name)) == []
    assert not any(hasattr(project_settings, old) for old in RENAMED_SETTINGS)  # old names only from users


@pytest.mark.parametrize(("given", "expected"), [
    ({"WOSHIPM_MARKDOWN_ENABLED": (False, "cmdline")}, False),  # old name on the command line
    ({"WOSHIPM_MARKDOWN_ENABLED": (False, "project"), "WOSHIPM_LIBRARY_ENABLED": (True, "cmdline")}, True),
])
def test_old_name_still_works_with_a_warning(given, expected):
    settings = Settings()
    settings.setmodule(project_settings, priority="project")
    for name, (value, priority) in given.items():
        settings.set(name, value, priority)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        RenamedSettings().update_settings(settings)
    assert settings.getbool("WOSHIPM_LIBRARY_ENABLED") is expected
    assert [str(w.message) for w in caught if w.category is ScrapyDeprecationWarning] == [
        "Setting WOSHIPM_MARKDOWN_ENABLED is deprecated: use WOSHIPM_LIBRARY_ENABLED"
    ]


def test_new_name_alone_gives_no_warning():
    settings = Settings()
    settings.setmodule(project_settings, priority="project")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RenamedSettings().update_settings(settings)
    assert settings.getbool("WOSHIPM_LIBRARY_ENABLED") is True


@pytest.mark.parametrize(("base_url", "mode", "handlers"), [
    (None, "auto", {"https": PLAYWRIGHT_HANDLER}),  # the real site
    ("http://127.0.0.1:8000", "auto", {"http": PLAYWRIGHT_HANDLER}),  # the replica
    ("http://127.0.0.1:8000", "never", {}),
])
def test_the_browser_handler_serves_only_the_sites_scheme(base_url, mode, handlers):
    settings = Settings()
    settings.setmodule(project_settings, priority="project")
    settings.set("WOSHIPM_RENDER", mode, "cmdline")
    settings.set("WOSHIPM_CHROMIUM", "/usr/bin/true", "cmdline")  # any executable: the handler is not started
    if base_url:
        settings.set("WOSHIPM_BASE_URL", base_url, "cmdline")
    RenderAddon().update_settings(settings)
    assert settings.getdict("DOWNLOAD_HANDLERS") == handlers
