"""Per-item locks, so that runs sharing one output folder do each item once and never write one file
together: a photo's inversion (OUTPUT/<photo>/) and each edit (OUTPUT/<photo>/<edit>/).

An item's lock is a hidden file beside its folder (`OUTPUT/.chelsea.lock`, `OUTPUT/chelsea/.a-tabby-dog-
3f9a1c2e.lock`) that its owner holds an exclusive `flock` on while it checks and does the item, and
removes when done. It holds the owner's pid, host and start time, for people to read.

Why flock, and not a file created with O_EXCL that is judged stale by its pid or its age: the kernel
drops a flock the moment its process ends, however it ends (killed, out of memory, power cut of a
machine sharing the disk), so a killed run's lock is free at once and is taken over by exactly one
run, and a slow run's live lock is never taken from it. Reused pids, containers' pid namespaces on a
shared volume, and clocks play no part. A lock file left behind by a killed run is simply reused.
Where the file system has no locks (or the platform no fcntl), runs go unlocked, as before.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None

POLL_SECONDS = 0.5  # how often a run that needs an item another run holds looks again
NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


def lock_path(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}.lock")


def acquire(folder: Path) -> int | None:
    """Hold the lock of `folder`: its file descriptor, or None when another live run holds it."""
    path = lock_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if fcntl is not None:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return None
        except OSError as error:
            if error.errno not in NO_LOCKS:
                os.close(descriptor)
                raise
        try:  # the owner before us may have removed the file between our open and our flock
            current = os.path.samestat(os.fstat(descriptor), os.stat(path))
        except FileNotFoundError:
            current = False
        if current:
            owner = {"pid": os.getpid(), "host": socket.gethostname(),
                     "started": datetime.now().isoformat(timespec="seconds")}
            try:
                os.ftruncate(descriptor, 0)
                os.write(descriptor, (json.dumps(owner) + "\n").encode())
            except OSError:  # a full disk: no lock file is left behind
                release(folder, descriptor)
                raise
            return descriptor
        os.close(descriptor)  # a lock on a removed file guards nothing: try again on the file now there


def release(folder: Path, descriptor: int) -> None:
    """Remove the lock file while still holding it (a run that opened it meanwhile sees it is gone). In a
    folder made read-only meanwhile it stays: unlocked, it holds no one up, and the next run reuses it."""
    try:
        lock_path(folder).unlink(missing_ok=True)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def owner(folder: Path) -> str:
    """Who holds the lock of `folder`, in words, for messages."""
    try:
        held = json.loads(lock_path(folder).read_text())
        return f"pid {held['pid']} on {held['host']}, since {held['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another run"


@contextmanager
def claimed(folder: Path) -> Iterator[bool]:
    """Whether this run holds the lock of `folder` inside the block; released after it, even on error."""
    descriptor = acquire(folder)
    try:
        yield descriptor is not None
    finally:
        if descriptor is not None:
            release(folder, descriptor)


def wait_briefly() -> None:
    time.sleep(POLL_SECONDS)
