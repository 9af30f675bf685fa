"""One writer per repository. The SQLite file locks here (MariaDB's ``GET_LOCK`` is
covered where two daemons share a server, in ``test_daemon``); a lock held by another
process, a real one, keeps this one out until it lets go."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from poller.shutdown import Stop
from poller.store import locks
from poller.store.locks import FileLocks, LockLost, MySQLLocks, NoLocks


def test_a_repository_has_one_holder_at_a_time(tmp_path: Path):
    database = str(tmp_path / "shark.db")
    first, second = FileLocks(database), FileLocks(database)
    assert first.acquire("octo/demo")
    assert not second.acquire("octo/demo")
    assert second.acquire("octo/other")  # one lock per repository, not per database
    first.verify("octo/demo")
    first.release("octo/demo")
    assert second.acquire("octo/demo")
    with pytest.raises(LockLost):
        first.verify("octo/demo")
    second.close()
    assert first.acquire("octo/demo") and first.acquire("octo/other")


def test_a_lock_held_by_another_process_is_released_when_it_dies(tmp_path: Path):
    database = str(tmp_path / "shark.db")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys
            from poller.store.locks import FileLocks
            locks = FileLocks({database!r})
            assert locks.acquire("octo/demo")
            print("held", flush=True)
            sys.stdin.read()  # until the test closes our stdin, or kills us
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        mine = FileLocks(database)
        assert not mine.acquire("octo/demo")
        holder.kill()  # no release: the kernel drops the lock with the process
        holder.wait(timeout=10)
        assert mine.acquire("octo/demo")
    finally:
        holder.kill()


def test_lock_names_fit_mysql_whatever_the_repository_name():
    name = locks.lock_name("an-organisation-with-a-long-name/" + "r" * 100)
    assert len(name) <= 64 and name != locks.lock_name("octo/demo")


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("sqlite:///shark.db", FileLocks),
        ("sqlite:///:memory:", NoLocks),
        ("mysql://poller@127.0.0.1:1/ci", MySQLLocks),
    ],
)
def test_the_lock_follows_the_database(url: str, kind: type):
    repo_locks = locks.for_database(url, None, Stop())
    try:
        assert isinstance(repo_locks, kind)
    finally:
        repo_locks.close()
