"""Scrapyd end to end: a real Scrapyd on 127.0.0.1 with basic auth, the project deployed as an egg the
way docs/scrapyd.md says, crawls of the replica scheduled and followed through Scrapyd's JSON API.

Scrapyd runs with its working directory in a temporary directory: from the project checkout, its
jobs would import the checkout (the current directory comes first on ``sys.path``), not the egg.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
import requests
from conftest import PROJECT_ROOT

from woshipm_crawler.library import ARTICLE_RELPATH_RE, LIBRARY_SUBDIR, SUMMARY_FILE, article_path
from woshipm_replica.crawls import FAST_SETTINGS, field_match_rates, print_rates

pytestmark = pytest.mark.scrapyd

PROJECT = "woshipm_crawler"
USERNAME, PASSWORD = "woshipm", "test-only-secret"
# Guards against a hang (a job or Scrapyd that never answers), not speed requirements.
START_TIMEOUT = 60
JOB_TIMEOUT = 300
POLL = 0.2
# Scrapyd's own variables would override the generated config; SCRAPY_SETTINGS_MODULE would override the
# egg's settings entry point.
FOREIGN_ENV = ("SCRAPYD_USERNAME", "SCRAPYD_PASSWORD", "SCRAPYD_BIND_ADDRESS", "SCRAPYD_HTTP_PORT",
               "SCRAPYD_UNIX_SOCKET_PATH", "SCRAPY_SETTINGS_MODULE", "SCRAPY_PROJECT", "SCRAPYD_URL")
# The egg is built from a copy of the checkout: building writes build/ and *.egg-info next to setup.py,
# which must not land in a tree others work in (nor race with a concurrent test run). Generated and
# local-only files are left out of the copy; exports/ and tests/ are copied (with a decoy) so the
# test sees the egg leave them out.
COPY_IGNORE = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                     ".ruff_cache", ".benchmarks", ".venv", "exports", "out")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    return {**env, **extra}


def scrapyd_env(**credentials: str) -> dict[str, str]:
    """Scrapyd's environment as the systemd unit in docs/scrapyd.md sets it: the guard on its path."""
    return clean_env(PYTHONPATH=str(PROJECT_ROOT / "deploy"), **credentials)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Scrapyd:
    url: str
    root: Path
    process: subprocess.Popen
    auth: tuple[str, str] = (USERNAME, PASSWORD)

    def get(self, endpoint: str, **params) -> dict:
        response = requests.get(f"{self.url}/{endpoint}", params=params, auth=self.auth, timeout=30)
        response.raise_for_status()
        return response.json()

    def post(self, endpoint: str, data) -> dict:
        response = requests.post(f"{self.url}/{endpoint}", data=data, auth=self.auth, timeout=30)
        response.raise_for_status()
        return response.json()

    def output(self) -> str:
        return (self.root / "scrapyd.out").read_text(encoding="utf-8", errors="replace")


def scrapyd_conf(root: Path, port: int) -> str:
    """deploy/scrapyd.conf, the documented example, with this test's port, credentials and directories."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(PROJECT_ROOT / "deploy" / "scrapyd.conf", encoding="utf-8")
    section = config["scrapyd"]
    # What the example promises the operator, checked where it is used.
    assert section["bind_address"] == "127.0.0.1"
    assert section["items_dir"] == ""
    # No working default password: the credentials come from the environment, through the guard.
    assert section["username"] == section["password"] == ""
    assert section["application"] == "scrapyd_guard.application"
    section.update({
        "http_port": str(port),
        "eggs_dir": str(root / "eggs"),
        "logs_dir": str(root / "logs"),
        "dbs_dir": str(root / "dbs"),
        "poll_interval": str(POLL),  # jobs start within this delay
    })
    lines = [f"{key} = {value}" for key, value in section.items()]
    return "[scrapyd]\n" + "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def scrapyd(tmp_path_factory):
    root = tmp_path_factory.mktemp("scrapyd")
    port = free_port()
    (root / "scrapyd.conf").write_text(scrapyd_conf(root, port), encoding="utf-8")
    with open(root / "scrapyd.out", "wb") as out:
        # Its own process group: the crawls it spawns go with it at the end, whatever state they are in.
        process = subprocess.Popen([sys.executable, "-m", "scrapyd"], cwd=root,
                                   env=scrapyd_env(SCRAPYD_USERNAME=USERNAME, SCRAPYD_PASSWORD=PASSWORD),
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Scrapyd(f"http://127.0.0.1:{port}", root, process)
    try:
        wait_until_answering(server)
        yield server
    finally:
        stop(process)


def wait_until_answering(server: Scrapyd) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"Scrapyd exited ({server.process.returncode}):\n{server.output()[-3000:]}")
        try:
            if server.get("daemonstatus.json")["status"] == "ok":
                return
        except requests.RequestException:
            pass
        time.sleep(POLL)
    pytest.fail(f"Scrapyd did not answer daemonstatus.json:\n{server.output()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # whatever ignored SIGTERM, crawls included
    except ProcessLookupError:
        pass
    process.wait()


@pytest.fixture(scope="module")
def egg(tmp_path_factory) -> Path:
    """The egg `scrapyd-deploy --build-egg` builds from (a copy of) the project root."""
    work = tmp_path_factory.mktemp("build")
    copy = work / "project"
    shutil.copytree(PROJECT_ROOT, copy, symlinks=True, ignore=COPY_IGNORE)
    (copy / "exports").mkdir(exist_ok=True)
    (copy / "exports" / "decoy.jsonl").write_text("{}\n", encoding="utf-8")
    path = work / "woshipm_crawler.egg"
    done = subprocess.run([sys.executable, "-m", "scrapyd_client.deploy", "--build-egg", str(path)],
                          cwd=copy, env=clean_env(), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return path


@pytest.fixture(scope="module")
def deployed(scrapyd, egg) -> str:
    """Deploys the egg through scrapy.cfg's `remote` target, its URL and credentials from the environment."""
    env = clean_env(SCRAPYD_URL=scrapyd.url, SCRAPYD_USERNAME=USERNAME, SCRAPYD_PASSWORD=PASSWORD)
    done = subprocess.run([sys.executable, "-m", "scrapyd_client.deploy", "remote", "--egg", str(egg),
                           "--version", "1"],
                          cwd=egg.parent / "project", env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(done.stdout)
    assert answer["status"] == "ok" and answer["project"] == PROJECT, answer
    return answer["version"]


@dataclass
class Job:
    id: str
    listed: dict  # its entry under "finished" in listjobs.json
    log: str
    stats: dict  # WOSHIPM_STATS_FILE
    items: list[dict] = field(default_factory=list)  # lines of the JSONL files this job added (run_job)

    def error_lines(self) -> list[str]:
        return [line for line in self.log.splitlines() if " ERROR: " in line]


def schedule_job(server: Scrapyd, replica, export_dir: Path, name: str, args: dict) -> tuple[str, Path]:
    """Schedules a `category` crawl of the replica; returns its job id and the stats file it will write."""
    stats_file = export_dir.parent / f"stats-{name}.json"
    settings = {**FAST_SETTINGS, "WOSHIPM_BASE_URL": replica.base_url, "WOSHIPM_EXPORT_DIR": str(export_dir),
                "WOSHIPM_STATS_FILE": str(stats_file)}
    data = [("project", PROJECT), ("spider", "category"), *args.items(),
            *(("setting", f"{key}={value}") for key, value in settings.items())]
    answer = server.post("schedule.json", data)
    assert answer["status"] == "ok", answer
    return answer["jobid"], stats_file


def jsonl_files(export_dir: Path) -> set[Path]:
    return set((export_dir / "jsonl").glob("*.jsonl"))


def read_jsonl(paths) -> list[dict]:
    return [json.loads(line) for path in sorted(paths) for line in path.read_text(encoding="utf-8").splitlines()]


def finish_job(server: Scrapyd, job_id: str, stats_file: Path) -> Job:
    listed = wait_finished(server, job_id)
    # The log as an operator reads it: through Scrapyd's web server, with the same credentials.
    response = requests.get(server.url + listed["log_url"], auth=server.auth, timeout=30)
    response.raise_for_status()
    stats = json.loads(stats_file.read_text(encoding="utf-8")) if stats_file.exists() else {}
    return Job(job_id, listed, response.content.decode("utf-8", errors="replace"), stats)


def run_job(server: Scrapyd, replica, export_dir: Path, name: str, args: dict) -> Job:
    """Schedules a crawl, waits for it to finish, returns what it left (its items: the JSONL it added)."""
    before = jsonl_files(export_dir)
    job_id, stats_file = schedule_job(server, replica, export_dir, name, args)
    job = finish_job(server, job_id, stats_file)
    job.items = read_jsonl(jsonl_files(export_dir) - before)
    return job


def wait_finished(server: Scrapyd, job_id: str) -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        finished = server.get("listjobs.json", project=PROJECT)["finished"]
        match = next((job for job in finished if job["id"] == job_id), None)
        if match is not None:
            return match
        time.sleep(POLL)
    server.post("cancel.json", {"project": PROJECT, "job": job_id})
    pytest.fail(f"job {job_id} did not finish; Scrapyd said:\n{server.output()[-3000:]}")


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("scrapyd-crawl") / "export"  # absolute, as docs/scrapyd.md requires


@pytest.fixture(scope="module")
def first_job(scrapyd, deployed, replica, export_dir) -> Job:
    return run_job(scrapyd, replica, export_dir, "first", {"category": "all"})


@pytest.fixture(scope="module")
def second_job(first_job, scrapyd, replica, export_dir) -> Job:
    return run_job(scrapyd, replica, export_dir, "second", {"category": "all"})


def test_egg_carries_the_package_and_its_seeds_only(egg):
    names = zipfile.ZipFile(egg).namelist()
    assert "woshipm_crawler/settings.py" in names
    assert {"woshipm_crawler/seeds/categories.txt", "woshipm_crawler/seeds/tags.txt"} <= set(names)
    assert {"woshipm_crawler/spiders/category.py", "woshipm_crawler/spiders/tag.py"} <= set(names)
    top = {name.split("/")[0] for name in names}
    # No tests/, exports/, bench/, scripts/, setup.py. The replica comes along: pyproject's package list
    # (which the editable install needs, for tests and bench) overrides any list setup.py would give,
    # but no crawler module imports it, so production runs never touch it.
    assert top == {"EGG-INFO", "woshipm_crawler", "woshipm_replica"}, top
    crawler_sources = [zipfile.ZipFile(egg).read(name).decode() for name in names
                       if name.startswith("woshipm_crawler/") and name.endswith(".py")]
    assert not [source for source in crawler_sources if re.search(r"^\s*(from|import) woshipm_replica", source, re.M)]
    entry_points = zipfile.ZipFile(egg).read("EGG-INFO/entry_points.txt").decode()
    assert "[scrapy]" in entry_points and "settings = woshipm_crawler.settings" in entry_points
    # The seed lists are read with importlib.resources; that must work from the zipped egg. Run from
    # the egg's folder (no checkout on sys.path), the egg first on PYTHONPATH so it wins over the editable install.
    code = "import woshipm_crawler, woshipm_crawler.site as s; print(woshipm_crawler.__file__); " \
           "print(len(s.crawlable_categories()))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=egg.parent, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(egg)})
    assert done.returncode == 0, done.stderr
    module_file, categories = done.stdout.split()
    assert module_file.startswith(str(egg) + os.sep)
    assert int(categories) > 0


@pytest.mark.parametrize("credentials, problem", [
    ({}, "no username or password set"),
    ({"SCRAPYD_USERNAME": USERNAME, "SCRAPYD_PASSWORD": "change-me"}, "an example's default"),
    ({"SCRAPYD_USERNAME": USERNAME, "SCRAPYD_PASSWORD": "short"}, "shorter than 12 characters"),
])
def test_scrapyd_refuses_to_start_without_a_real_password(tmp_path, credentials, problem):
    port = free_port()
    (tmp_path / "scrapyd.conf").write_text(scrapyd_conf(tmp_path, port), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "scrapyd"], cwd=tmp_path, env=scrapyd_env(**credentials),
                          capture_output=True, text=True, timeout=START_TIMEOUT)
    assert done.returncode != 0
    assert "scrapyd_guard: refusing to start: " in done.stderr and problem in done.stderr + done.stdout
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # it never listened


def test_scrapyd_without_the_guard_on_its_path_does_not_start(tmp_path):
    (tmp_path / "scrapyd.conf").write_text(scrapyd_conf(tmp_path, free_port()), encoding="utf-8")
    env = clean_env(SCRAPYD_USERNAME=USERNAME, SCRAPYD_PASSWORD=PASSWORD)
    done = subprocess.run([sys.executable, "-m", "scrapyd"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=START_TIMEOUT)
    assert done.returncode != 0
    assert "scrapyd_guard" in done.stderr + done.stdout


def test_unauthenticated_requests_are_refused(scrapyd):
    for auth in (None, (USERNAME, "wrong")):
        status = requests.get(f"{scrapyd.url}/daemonstatus.json", auth=auth, timeout=30)
        assert status.status_code == 401
        assert status.headers.get("WWW-Authenticate", "").lower().startswith("basic")
        scheduled = requests.post(f"{scrapyd.url}/schedule.json", auth=auth, timeout=30,
                                  data={"project": PROJECT, "spider": "category", "category": "all"})
        assert scheduled.status_code == 401
    assert "Basic authentication enabled" in scrapyd.output()


def test_deployed_project_lists_its_spiders(scrapyd, deployed):
    assert scrapyd.get("listprojects.json")["projects"] == [PROJECT]
    assert scrapyd.get("listversions.json", project=PROJECT)["versions"] == [deployed]
    spiders = scrapyd.get("listspiders.json", project=PROJECT)["spiders"]
    assert sorted(spiders) == ["canary", "category", "reparse", "tag"]


def test_first_job_writes_the_manifest(first_job, manifest, export_dir):
    assert first_job.error_lines() == []
    assert "woshipm summary: ok (finish reason: finished)" in first_job.log
    assert first_job.stats["finish_reason"] == "finished"
    ids = [item["id"] for item in first_job.items]
    assert len(ids) == len(set(ids)), "an article was written twice"
    assert set(ids) == set(manifest)
    rates, mismatches = field_match_rates(first_job.items, manifest, lambda key: key.startswith("category:"))
    print_rates(rates)
    assert mismatches == {}
    library = export_dir / LIBRARY_SUBDIR
    articles = {path.relative_to(library).as_posix() for path in (library / "articles").rglob("*.md")}
    articles = {path for path in articles if ARTICLE_RELPATH_RE.fullmatch(path)}
    assert articles == {article_path(row).as_posix() for row in manifest.values()}
    assert (library / SUMMARY_FILE).is_file()
    assert (export_dir / "state.sqlite3").is_file()


def test_second_job_adds_nothing_and_fetches_no_article(second_job):
    assert second_job.error_lines() == []
    assert "woshipm summary: ok (finish reason: finished)" in second_job.log
    assert "woshipm summary: articles written: 0" in second_job.log
    assert second_job.items == []  # no new JSONL file, hence no new line
    assert second_job.stats.get("woshipm/articles_parsed", 0) == 0
    assert not any(key.startswith("woshipm/failed/") for key in second_job.stats)
    # Every request was robots.txt or a listing page: the first page of each category, all known.
    listing_pages = second_job.stats["woshipm/listing_pages"]
    assert second_job.stats["downloader/request_count"] - listing_pages <= 1


def test_bad_argument_fails_with_a_clear_log(scrapyd, deployed, replica, tmp_path):
    job = run_job(scrapyd, replica, tmp_path / "export", "bad", {"category": "nosuch"})
    # Scrapyd lists a failed crawl under "finished" like any other: its log tells.
    assert job.listed["spider"] == "category"
    errors = job.error_lines()
    assert any("unknown nosuch; valid: pmd, pd" in line for line in errors), errors
    assert any("woshipm summary: run FAILED: bad_argument" in line for line in errors), errors
    assert "woshipm summary: FAILED (finish reason: bad_argument)" in job.log
    assert job.stats["finish_reason"] == "bad_argument"
    assert job.items == []


def test_two_jobs_sharing_one_state_do_not_duplicate_articles(scrapyd, deployed, replica, manifest, tmp_path):
    export = tmp_path / "export"
    scheduled = [schedule_job(scrapyd, replica, export, name, {"category": "all"}) for name in ("a", "b")]
    jobs = [finish_job(scrapyd, job_id, stats_file) for job_id, stats_file in scheduled]
    # Both ran at once (max_proc = 2 in deploy/scrapyd.conf), else this would test nothing.
    first, second = sorted(jobs, key=lambda job: datetime.fromisoformat(job.listed["start_time"]))
    assert datetime.fromisoformat(second.listed["start_time"]) < datetime.fromisoformat(first.listed["end_time"])
    for job in jobs:
        assert job.error_lines() == []
        assert "woshipm summary: ok (finish reason: finished)" in job.log
    # Each article is new to exactly one job: the state decides, whichever job fetched it first.
    assert sum(job.stats.get("woshipm/state/new", 0) for job in jobs) == len(manifest)
    lines = read_jsonl(jsonl_files(export))
    assert sum(job.stats["woshipm/jsonl_written"] for job in jobs) == len(lines)
    ids = [item["id"] for item in lines]
    assert set(ids) == set(manifest)
    assert len(ids) == len(set(ids)), "an article was written by both jobs"
