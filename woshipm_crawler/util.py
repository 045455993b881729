"""One helper per concept the whole package shares: the clock, UTC stamps, pid checks, durable atomic writes,
JSON text.

Nothing here knows about woshipm or Scrapy; every module may import it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

TEMP_SUFFIX = ".tmp"
STAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
COMPACT_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"  # for file names


# The clock (``set_clock``): (the time it was set to, time.monotonic() then), or None for the system clock.
_clock: tuple[datetime, float] | None = None


def dumps(value: Any, *, indent: int | None = None, default: Callable[[Any], Any] | None = None) -> str:
    """JSON text as the package writes it everywhere (JSONL lines, the state's rows, the stats file):
    UTF-8 text as is (no ``\\u`` escapes), compact unless ``indent`` is given."""
    separators = (",", ":") if indent is None else None
    return json.dumps(value, ensure_ascii=False, indent=indent, separators=separators, default=default)


def parse_clock(text: str) -> datetime:
    """An ISO time with an offset (``2026-03-01T09:00:00+08:00``, ``...Z``); ValueError otherwise."""
    when = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset (write it as 2026-03-01T09:00:00+08:00)")
    return when


def set_clock(value: str | datetime | None) -> None:
    """Take ``value`` (an ISO time with offset) as "now" from here on; None: the system clock again.

    The clock then runs on from there at the real pace, so the order of events and the ages of
    heartbeats stay true (``WOSHIPM_CLOCK``: tests and replays of a day other than today).
    """
    global _clock
    if value is None or value == "":
        _clock = None
        return
    when = value if isinstance(value, datetime) else parse_clock(value)
    if when.tzinfo is None:
        raise ValueError("the clock needs a time with a UTC offset")
    _clock = (when, time.monotonic())


def now() -> datetime:
    """The current time, UTC, timezone-aware: the system clock, or the one ``set_clock`` set."""
    if _clock is None:
        return datetime.now(timezone.utc)
    start, at = _clock
    return (start + timedelta(seconds=time.monotonic() - at)).astimezone(timezone.utc)


def utc_stamp(fmt: str = STAMP_FORMAT, when: float | None = None) -> str:
    """UTC time as ``YYYY-MM-DDTHH:MM:SSZ`` (or ``fmt``), by default now (``now()``): every time the
    package records."""
    return time.strftime(fmt, time.gmtime(now().timestamp() if when is None else when))


def parse_stamp(stamp: str) -> datetime:
    """A ``utc_stamp`` (or any ISO time; one without offset is UTC) as a timezone-aware datetime."""
    when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (owned by anyone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def fsync_directory(directory: Path) -> None:
    """Make a rename or unlink durable; not every platform can open a directory, hence best effort."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is out: a full disk first takes part of the data, then raises ENOSPC."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _temp_beside(path: Path) -> str:
    """A new empty temp file beside ``path``, the writer's pid in its name (``.<name>.<pid>.<rand>.tmp``),
    so a sweep can tell a dead writer's leftovers from a live one's."""
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX)
    os.close(descriptor)
    return temp_name


class AtomicFile:
    """A file replaced atomically: a reader sees the old file or the new one, never a part.

        with AtomicFile(path) as handle:
            handle.write(b"...")
        handle.changed  # False when the file already held exactly these bytes (its mtime is kept)

    The temp file sits beside the target with the writer's pid in its name (``.<name>.<pid>.<rand>.tmp``),
    so a sweep can tell a dead writer's leftovers from a live one's. Data and rename are fsynced unless
    ``durable`` is off: then a killed process still leaves the old file or the new one, and the caller
    makes the batch durable at once (``os.sync()``) before it relies on it. On an exception nothing
    changes.
    """

    def __init__(self, path: Path, mode: int = 0o644, durable: bool = True) -> None:
        self.path = Path(path)
        self.mode = mode
        self.durable = durable
        self.changed = False

    def __enter__(self) -> AtomicFile:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temp_name = _temp_beside(self.path)
        self.handle = open(self.temp_name, "wb")  # noqa: SIM115 - closed in __exit__
        return self

    def write(self, data: bytes) -> None:
        self.handle.write(data)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.handle.flush()
                if self.durable:
                    os.fsync(self.handle.fileno())
            self.handle.close()
            if exc_type is None and not _same_bytes(self.temp_name, self.path):
                os.chmod(self.temp_name, self.mode)  # mkstemp's 0600 would hide the file from a web server
                os.replace(self.temp_name, self.path)
                self.changed = True
                if self.durable:
                    fsync_directory(self.path.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp_name)


def _same_bytes(a: str | Path, b: str | Path, chunk: int = 1 << 16) -> bool:
    try:
        if os.path.getsize(a) != os.path.getsize(b):
            return False
        with open(a, "rb") as one, open(b, "rb") as other:
            while True:
                x, y = one.read(chunk), other.read(chunk)
                if x != y:
                    return False
                if not x:
                    return True
    except FileNotFoundError:
        return False


def atomic_write(path: Path, data: bytes, mode: int = 0o644, durable: bool = True) -> bool:
    """Replace ``path`` with ``data`` atomically (``AtomicFile``); False when it already held them."""
    with AtomicFile(path, mode, durable) as handle:
        handle.write(data)
    return handle.changed


@contextlib.contextmanager
def atomic_path(path: Path, mode: int = 0o644) -> Iterator[Path]:
    """A temp path beside ``path`` for a writer that takes a file name (pyarrow, openpyxl); it replaces
    ``path`` (fsynced) when the block ends without an error, and is removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp_name = _temp_beside(path)
    try:
        yield Path(temp_name)
        with open(temp_name, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    fsync_directory(path.parent)


