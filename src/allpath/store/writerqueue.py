"""SQLite writers take turns through a lock file, so a waiting writer starts as soon as the last one ends.

Every write transaction here starts with `BEGIN IMMEDIATE` (`allpath.store.db`), and with more than one
worker process they meet on SQLite's write lock. SQLite's busy handler polls that lock with sleeps of
1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 and then 100 ms, while a write here holds it for well under
a millisecond: with two workers under load (`make bench-http`), a writer that lost the race slept
tens of milliseconds, and a few slept for hundreds, past the 25 ms p99 target, while the
processor sat partly idle. Python's `sqlite3` offers no busy handler of one's own.

So before `BEGIN IMMEDIATE` a connection takes an exclusive `flock` on `<database>-writer.lock`
and releases it when its transaction commits, rolls back or the connection closes. The lock is a
queue in front of SQLite's own: it decides nothing. A connection that cannot get it within the busy
timeout, or cannot open the file, goes on to `BEGIN IMMEDIATE` as before, where SQLite still
serialises writers and enforces the busy timeout; a thread that already holds it (a nested write
transaction) does not wait for itself. A waiter polls the lock every 50 us to 1 ms (a system call
each), not SQLite's 1 to 100 ms. `flock` locks belong to an open file, so threads of one process
queue too (each connection opens the file itself).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from typing import Any

FIRST_WAIT = 0.00005
LONGEST_WAIT = 0.001


class WriterQueueConnection(sqlite3.Connection):
    """A `sqlite3` connection (`sqlite3.connect(..., factory=...)`) that can queue for the writer
    lock of its database; `lock_path` is set by the engine's connect hook."""

    lock_path: str | None = None
    _fd: int | None = None
    _held: threading.Lock | None = None  # the process's lock of `lock_path`, while this connection holds both

    def queue_for_write(self, timeout: float) -> bool:
        """Wait (at most `timeout` seconds) for this database's writer lock; whether it was taken."""
        path = self.lock_path
        if path is None or self._held is not None:
            return False
        if _owners.get(path) == threading.get_ident():
            return False  # this thread holds it through another connection: do not wait for ourselves
        if self._fd is None:
            try:
                self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:
                self.lock_path = None  # no lock file here: SQLite's own waiting, as before
                return False
        deadline = time.monotonic() + timeout
        # Threads of this process queue on a lock of the process (woken at once by the release, no
        # polling, no fight for the GIL); only the thread at its head polls the file lock.
        in_process = _process_lock(path)
        if not in_process.acquire(timeout=timeout):
            return False
        wait = FIRST_WAIT
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    in_process.release()
                    return False
                time.sleep(wait)
                wait = min(wait * 2, LONGEST_WAIT)
        _owners[path] = threading.get_ident()
        self._held = in_process
        return True

    def release_write(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        try:
            if self._fd is not None:  # always, while held
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            # Forgotten before the process lock is let go: the next owner's entry is its own.
            if self.lock_path is not None:
                _owners.pop(self.lock_path, None)
            held.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.release_write()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.release_write()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.release_write()
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = None


_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()
_owners: dict[str, int] = {}  # lock path -> the thread that holds it (at most one per process)


def _process_lock(path: str) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault(path, threading.Lock())


def lock_path_for(database: str | None) -> str | None:
    """The lock file of an SQLite database file; None for an in-memory database."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database) + "-writer.lock"


def connect_args(database: str | None) -> dict[str, Any]:
    return {"factory": WriterQueueConnection} if lock_path_for(database) else {}
