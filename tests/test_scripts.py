"""scripts/crawl-replica.sh as a newcomer runs it, in a copy of the project's top level.

The copy holds the real script, scrapy.cfg and a ``.venv`` link to the environment running the tests,
so the script finds what scripts/setup.sh would have made, and writes into the copy, not the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT

from woshipm_crawler.library import LIBRARY_SUBDIR, article_path

TIMEOUT = 120  # guards against a hang, not a speed requirement
# `bash` with SIGINT at its default, as a terminal starts it. A shell cannot trap a signal that was
# ignored when it started, and the tests may run under a parent that ignores SIGINT (a background job).
AS_IN_A_TERMINAL = [sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                    "os.execvp('bash', ['bash', *sys.argv[1:]])"]


@pytest.fixture
def project(tmp_path) -> Path:
    copy = tmp_path / "project"
    (copy / "scripts").mkdir(parents=True)
    shutil.copy2(PROJECT_ROOT / "scripts" / "crawl-replica.sh", copy / "scripts")
    shutil.copy2(PROJECT_ROOT / "scrapy.cfg", copy)
    (copy / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    return copy


def run_script(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("REPLICA_PORT", "SCRAPY_SETTINGS_MODULE")}
    return subprocess.run(["bash", str(project / "scripts" / "crawl-replica.sh"), *args], cwd=project,
                          env={**environment, **env}, capture_output=True, text=True, timeout=TIMEOUT)


def feed_ids(feeds: Path) -> list[int]:
    """The article ids of every JSONL file in ``feeds``, one per line, repeats kept."""
    return [json.loads(line)["id"] for path in sorted(feeds.glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_taken_port_stops_the_script_before_any_crawl(project):
    with socket.socket() as owner:
        owner.bind(("127.0.0.1", 0))
        owner.listen()
        port = owner.getsockname()[1]
        done = run_script(project, "-a", "limit=5", REPLICA_PORT=str(port))
        owner.setblocking(False)
        with pytest.raises(BlockingIOError):
            owner.accept()  # nobody connected to the port's owner: it was not crawled
    assert done.returncode == 1, done.stdout + done.stderr
    assert (f"crawl-replica: port {port} is taken by another program: nothing crawled. Give a free port "
            "(REPLICA_PORT=...) or leave REPLICA_PORT unset to have one picked.") in done.stderr
    assert "Spider opened" not in done.stderr  # scrapy never started
    assert sorted(path.name for path in project.iterdir()) == [".venv", "scrapy.cfg", "scripts"]


def test_the_replica_crawl_writes_into_exports_replica_only(project, replica):
    manifest = {row["id"]: row for row in replica.corpus.manifest(replica.base_url)}  # the script's site too
    done = run_script(project, "-a", "limit=5")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (project / "exports").exists()
    export = project / "exports-replica"

    feeds = sorted((export / "jsonl").glob("*.jsonl"))
    assert len(feeds) == 1
    items = [json.loads(line) for line in feeds[0].read_text(encoding="utf-8").splitlines()]
    assert len(items) == 5
    for item in items:
        assert item["title"] == manifest[item["id"]]["title"]
        assert item["url"].startswith("http://127.0.0.1:")
        assert not item["url"].startswith(replica.base_url + "/")  # its own replica, on a port it picked
        page = export / LIBRARY_SUBDIR / article_path(manifest[item["id"]])
        assert f"**Original:** [View on woshipm.com]({item['url']})  \n" in page.read_text(encoding="utf-8")
    assert (export / LIBRARY_SUBDIR / "SUMMARY.md").is_file()
    assert (export / "state.sqlite3").is_file()

    # It says where to look, and every path it names exists.
    out = done.stdout
    assert "crawl-replica: done. Look at:" in out
    assert f"the library:         exports-replica/{LIBRARY_SUBDIR}/SUMMARY.md (an article: exports-replica/" in out
    assert f"this run's articles: exports-replica/jsonl/{feeds[0].name} (5 lines of JSON)" in out
    assert "the state:           exports-replica/state.sqlite3" in out
    article = out.split("(an article: ", 1)[1].split(")", 1)[0]
    assert (project / article).is_file()


def test_without_setup_it_says_what_to_run(project):
    (project / ".venv").unlink()
    done = run_script(project)
    assert done.returncode == 1
    assert "crawl-replica: no .venv/bin/python: run `bash scripts/setup.sh` first" in done.stderr
    assert not (project / "exports-replica").exists()


@pytest.mark.slow
def test_ctrl_c_stops_gracefully_and_the_same_command_resumes(project, replica):
    one = ["-a", "category=pmd"]  # later -a and -s win: one category, slowed down so that Ctrl-C lands mid-crawl
    manifest = {row["id"] for row in replica.corpus.manifest(replica.base_url) if "category:pmd" in row["listings"]}
    environment = {k: v for k, v in os.environ.items() if k not in ("REPLICA_PORT", "SCRAPY_SETTINGS_MODULE")}
    slow = ["-s", "DOWNLOAD_DELAY=0.3", "-s", "CONCURRENT_REQUESTS=1"]
    log_path = project.parent / "crawl-replica.log"
    feeds = project / "exports-replica" / "jsonl"
    with open(log_path, "w", encoding="utf-8") as log:
        script = subprocess.Popen([*AS_IN_A_TERMINAL, str(project / "scripts" / "crawl-replica.sh"), *one, *slow],
                                  cwd=project, env=environment, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # its own session stands for the terminal's
        deadline = time.monotonic() + TIMEOUT
        articles = project / "exports-replica" / LIBRARY_SUBDIR / "articles"
        while not any(articles.rglob("[0-9]*.md")):  # mid-crawl: the library's first articles are in
            assert script.poll() is None and time.monotonic() < deadline, log_path.read_text(encoding="utf-8")
            time.sleep(0.05)
        os.killpg(script.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        script.wait(timeout=TIMEOUT)
    out = log_path.read_text(encoding="utf-8")
    assert script.returncode == 130, out[-3000:]
    assert "Received SIGINT, shutting down gracefully" in out  # scrapy stopped its own way
    assert "crawl-replica: interrupted: what was fetched is saved; run the same command again to resume" in out
    assert "crawl-replica: done." not in out
    port = int(out.split("woshipm replica: ", 1)[1].split("on http://127.0.0.1:", 1)[1].split()[0])
    with pytest.raises(ConnectionRefusedError):  # the replica went with the script
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    first = feed_ids(feeds)
    assert 0 < len(first) < len(manifest)

    done = run_script(project, *one)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(feed_ids(feeds)) == sorted(manifest)  # every article exactly once over the two runs


# -- scripts/setup.sh and another apt holding the lock ------------------------------------------------


@pytest.fixture
def setup_copy(tmp_path) -> tuple[Path, dict]:
    """scripts/setup.sh in a copy of the project, with Debian packages to install: a ``dpkg-query``
    that finds none of them and an ``apt-get`` that only records when it ran (and fails, so the
    script stops before making a virtual environment). Returns the copy and the environment."""
    copy = tmp_path / "project"
    (copy / "scripts").mkdir(parents=True)
    shutil.copy2(PROJECT_ROOT / "scripts" / "setup.sh", copy / "scripts")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dpkg-query").write_text("#!/bin/sh\necho 'unknown ok not-installed'\n")
    (bin_dir / "apt-get").write_text(f"#!/bin/sh\ndate +%s.%N >> {tmp_path / 'apt-get-ran'}\nexit 1\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "WOSHIPM_APT_LOCKS": str(tmp_path / "lock")}
    return copy, env


def test_setup_waits_for_a_held_apt_lock_naming_its_holder(setup_copy, tmp_path):
    copy, env = setup_copy
    if os.geteuid() != 0:
        pytest.skip("setup.sh installs Debian packages as root (or with sudo)")
    holder = subprocess.Popen(["flock", str(tmp_path / "lock"), "sleep", "4"])
    try:
        time.sleep(0.5)
        started = time.time()
        done = subprocess.run(["bash", str(copy / "scripts" / "setup.sh")], cwd=copy, capture_output=True,
                              text=True, timeout=TIMEOUT, env={**env, "WOSHIPM_APT_LOCK_WAIT": "60"})
        released = holder.wait(timeout=TIMEOUT)
    finally:
        holder.kill()
    assert released == 0
    assert (f"setup: waiting for {tmp_path / 'lock'}, held by pid {holder.pid} "
            f"(flock {tmp_path / 'lock'} sleep 4) (up to 60 s)") in done.stdout, done.stdout + done.stderr
    assert "setup: the apt lock is free: going on" in done.stdout
    ran = float((tmp_path / "apt-get-ran").read_text().split()[0])
    assert ran - started >= 3  # apt-get ran only once the lock was let go


def test_setup_gives_up_on_a_lock_held_too_long_and_says_by_whom(setup_copy, tmp_path):
    copy, env = setup_copy
    if os.geteuid() != 0:
        pytest.skip("setup.sh installs Debian packages as root (or with sudo)")
    holder = subprocess.Popen(["flock", str(tmp_path / "lock"), "sleep", "60"])
    try:
        time.sleep(0.5)
        done = subprocess.run(["bash", str(copy / "scripts" / "setup.sh")], cwd=copy, capture_output=True,
                              text=True, timeout=TIMEOUT, env={**env, "WOSHIPM_APT_LOCK_WAIT": "2"})
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 1
    assert (f"setup: {tmp_path / 'lock'} is still held after 2 s, by pid {holder.pid} "
            f"(flock {tmp_path / 'lock'} sleep 60): let it finish") in done.stdout, done.stdout + done.stderr
    assert not (tmp_path / "apt-get-ran").exists()
