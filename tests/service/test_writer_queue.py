"""SQLite writers take turns through `<database>-writer.lock` (`allpath.store.writerqueue`): the lock is
held exactly while a write transaction is open, is a queue in front of SQLite's own locking (never
a replacement for it), and never makes a thread wait for itself."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from allpath.store.db import make_engine
from allpath.store.writerqueue import WriterQueueConnection, lock_path_for


def _lock_is_free(path: str) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


@pytest.fixture
def engine(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    yield engine
    engine.dispose()


def test_the_writer_lock_is_held_while_a_write_transaction_is_open_and_freed_by_commit_or_rollback(engine, tmp_path):
    lock = lock_path_for(str(tmp_path / "q.db"))
    assert lock is not None and lock.endswith("q.db-writer.lock")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (1)"))
        assert not _lock_is_free(lock)
    assert _lock_is_free(lock)

    with pytest.raises(RuntimeError), engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (2)"))
        assert not _lock_is_free(lock)
        raise RuntimeError("roll back")
    assert _lock_is_free(lock)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT n FROM t")).scalars().all() == [1]


def test_a_thread_holding_the_lock_does_not_queue_behind_itself(tmp_path):
    path = str(tmp_path / "q.db")
    first = WriterQueueConnection(path)
    second = WriterQueueConnection(path)
    first.lock_path = second.lock_path = lock_path_for(path)
    try:
        assert first.queue_for_write(5)
        # A nested write on the same thread skips the queue at once (SQLite decides, as it did
        # before the queue existed), rather than waiting five seconds for a lock it holds.
        assert second.queue_for_write(5) is False
        first.rollback()
        assert second.queue_for_write(5)
        second.rollback()
    finally:
        first.close()
        second.close()


def test_another_thread_waits_its_turn_and_gets_the_lock_when_it_is_released(tmp_path):
    path = str(tmp_path / "q.db")
    holder, waiter = (
        WriterQueueConnection(path, check_same_thread=False),
        WriterQueueConnection(path, check_same_thread=False),
    )
    holder.lock_path = waiter.lock_path = lock_path_for(path)
    got: list[bool] = []
    assert holder.queue_for_write(5)
    thread = threading.Thread(target=lambda: got.append(waiter.queue_for_write(30)))
    thread.start()
    thread.join(0.2)
    assert thread.is_alive() and got == []  # still waiting: the lock is held
    holder.commit()
    thread.join(10)
    assert got == [True]
    waiter.rollback()
    holder.close()
    waiter.close()


def test_a_lock_file_that_cannot_be_made_leaves_sqlite_to_do_the_waiting(tmp_path):
    connection = WriterQueueConnection(str(tmp_path / "q.db"))
    connection.lock_path = str(tmp_path / "no-such-folder" / "q.db-writer.lock")
    try:
        assert connection.queue_for_write(1) is False
        assert connection.lock_path is None
    finally:
        connection.close()


def test_an_in_memory_database_has_no_lock_file():
    assert lock_path_for(":memory:") is None and lock_path_for("") is None
    engine = make_engine("sqlite://")
    with engine.begin() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()


def _write(url: str, start: int, count: int) -> None:
    engine = make_engine(url)
    for n in range(start, start + count):
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
    engine.dispose()


def test_processes_writing_at_once_take_turns_and_every_write_is_kept(engine, tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write, args=(url, k * 1000, 200)) for k in range(3)]
    for worker in workers:
        worker.start()
    _write(url, 5000, 200)
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    with engine.connect() as connection:
        written = connection.execute(text("SELECT n FROM t")).scalars().all()
    expected = {k * 1000 + i for k in range(3) for i in range(200)} | {5000 + i for i in range(200)}
    assert sorted(written) == sorted(expected)
