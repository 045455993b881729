"""Settings: every project setting the code reads is declared (and commented) in settings.py, read by
``Config`` alone with settings.py's default, and a renamed setting's old name still works, with a warning."""

from __future__ import annotations

import ast
import dataclasses
import re
import warnings
from pathlib import Path

import pytest
from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy.settings import Settings

from woshipm_crawler import settings as project_settings
from woshipm_crawler.config import RENAMED_SETTINGS, Config, RenamedSettings, project_defaults
from woshipm_crawler.render.addon import PLAYWRIGHT_HANDLER, RenderAddon

PACKAGE = Path(project_settings.__file__).parent
NAMED_RE = re.compile(r"""["'](WOSHIPM_[A-Z0-9_]+)["']""")
# A read of a project setting: settings.get*("WOSHIPM_...") or settings["WOSHIPM_..."].
READ_RE = re.compile(r"""settings(?:\.get\w*\(|\[)\s*["']WOSHIPM_\w+["']""")
# A default written beside a read: .get*("WOSHIPM_...", default), from settings or the environment.
INLINE_DEFAULT_RE = re.compile(r"""\.get\w*\(\s*["']WOSHIPM_\w+["']\s*,""")


def package_lines():
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            yield f"{path.relative_to(PACKAGE.parent)}:{number}", line


def test_every_setting_the_package_names_is_declared():
    named = {name for _, line in package_lines() for name in NAMED_RE.findall(line)}
    assert {"WOSHIPM_PROGRESS", "WOSHIPM_RENDER", "WOSHIPM_LIBRARY_ENABLED"} <= named
    assert sorted(name for name in named - set(RENAMED_SETTINGS) if not hasattr(project_settings, name)) == []
    assert not any(hasattr(project_settings, old) for old in RENAMED_SETTINGS)  # old names only from users


def test_every_setting_is_commented_in_settings_py():
    """Each WOSHIPM_* assignment follows a comment (settings after it in the same block share it)."""
    source = Path(project_settings.__file__).read_text(encoding="utf-8")
    lines = source.splitlines()
    assigned = [node for node in ast.parse(source).body if isinstance(node, ast.Assign)]
    spans = {node.lineno: node.end_lineno for node in assigned}
    uncommented = []
    for node in assigned:
        name = node.targets[0].id
        if not name.startswith("WOSHIPM_"):
            continue
        above = node.lineno - 1  # walk up over the settings sharing the comment
        while above in spans.values() and lines[above - 1].strip() and not lines[above - 1].startswith("#"):
            above = next(start for start, end in spans.items() if end == above) - 1
        if not lines[above - 1].startswith("#"):
            uncommented.append(name)
    assert uncommented == []


def test_config_reads_every_setting_with_settings_py_defaults():
    fields = {field.name for field in dataclasses.fields(Config)}
    assert fields == {name.removeprefix("WOSHIPM_").lower() for name in project_defaults()}
    project = Settings()
    project.setmodule(project_settings, priority="project")
    bare = Config.from_settings(Settings())  # a command's or a test's settings: settings.py's values
    assert bare == Config.from_settings(project)
    assert (bare.failures_to_stop, bare.base_url, bare.state_path) == (
        project_settings.WOSHIPM_FAILURES_TO_STOP, project_settings.WOSHIPM_BASE_URL,
        Path(project_settings.WOSHIPM_EXPORT_DIR) / "state.sqlite3")
    given = Settings({"WOSHIPM_FAILURES_TO_STOP": "7", "WOSHIPM_EXPORT_DIR": "/tmp/x",
                      "WOSHIPM_EXTRA_FURNITURE": " .ad , ,.promo"})
    config = Config.from_settings(given)
    assert (config.failures_to_stop, config.state_path, config.extra_furniture) == (
        7, Path("/tmp/x/state.sqlite3"), (".ad", ".promo"))


def test_only_config_reads_settings_and_no_module_writes_a_default():
    reads = [where for where, line in package_lines()
             if READ_RE.search(line) and not where.startswith("woshipm_crawler/config.py:")]
    defaults = [where for where, line in package_lines() if INLINE_DEFAULT_RE.search(line)]
    assert (reads, defaults) == ([], [])


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
