"""One helper per concept the whole package shares: UTC stamps, pid checks, durable atomic writes.

Nothing here knows about woshipm or Scrapy; every module may import it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

TEMP_SUFFIX = ".tmp"
STAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
COMPACT_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"  # for file names


def utc_stamp(fmt: str = STAMP_FORMAT, when: float | None = None) -> str:
    """UTC time as ``YYYY-MM-DDTHH:MM:SSZ`` (or ``fmt``): every time the package records."""
    return time.strftime(fmt, time.gmtime(when))


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


@contextlib.contextmanager
def atomic_path(path: Path, mode: int = 0o644) -> Iterator[Path]:
    """A temp path beside ``path`` for a writer that takes a file name (pyarrow, openpyxl); it replaces
    ``path`` (fsynced) when the block ends without an error, and is removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX)
    os.close(descriptor)
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


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that a reader sees the old file or the new one, never a part.

    The temp file sits beside the target with the writer's pid in its name (``.<name>.<pid>.<rand>.tmp``),
    so a sweep can tell a dead writer's leftovers from a live one's; data and rename are fsynced.
    """
    with atomic_path(path, mode) as temp:
        temp.write_bytes(data)
