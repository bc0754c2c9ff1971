"""Files that hold secrets or the registry: created owner-only (0600) from the start,
never written under the umask and chmod'ed afterwards (a window where others can read)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

PRIVATE = 0o600


def open_private(path: Path, mode: str = "w", **kwargs: Any) -> IO[Any]:
    """``open(path, mode)`` for writing, the file 0600 whether it is new or not."""
    if mode not in ("w", "wb"):
        raise ValueError("open_private writes: mode 'w' or 'wb'")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
    try:
        os.fchmod(fd, PRIVATE)  # an existing file keeps its mode through O_CREAT
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def write_private(path: Path, data: bytes) -> None:
    with open_private(path, "wb") as f:
        f.write(data)


def create_private(path: Path) -> None:
    """Create an empty 0600 file unless it exists (SQLite then opens it, and gives its
    -wal and -shm files the same mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    except FileExistsError:
        return
    os.close(fd)
