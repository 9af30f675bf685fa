"""What an operator reads when something is wrong: one line that says what to do, from a
real ``python -m poller``. Read-only directories are real too: as root (who would write
anyway) the poller runs in a mount namespace of its own where the directory is a
read-only bind mount; otherwise the directory is 0555 to the user running the tests."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fake_github import FakeGitHub
from mariadb import MariaDB
from support import Database, PollerSetup

NOW = datetime.now(UTC).replace(microsecond=0)


def demo(fake: FakeGitHub) -> None:
    repo = fake.add_repo("octo/demo")
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main")
    fake.add_run(repo, ci, created=NOW - timedelta(hours=1))


def as_reader(command: list[str], directory: Path) -> list[str]:
    """``command`` where ``directory`` may not be written. A 0555 directory binds a user;
    root needs the directory mounted read-only, in a mount namespace of its own."""
    if os.geteuid() != 0:
        return command
    remount = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
    return ["unshare", "-m", "sh", "-c", remount, str(directory), *command]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory of the test's own, made read-only by the test."""
    path = Path(tempfile.mkdtemp(prefix="shark-poller-"))
    path.chmod(0o755)
    yield path
    path.chmod(0o755)
    shutil.rmtree(path)


def run_as_reader(setup: PollerSetup, *args: str) -> subprocess.CompletedProcess[str]:
    setup.write().chmod(0o644)
    return subprocess.run(
        as_reader(setup.command(*args), setup.tmp_path),
        env=setup.env(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=setup.tmp_path,
    )


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("shark-poller: error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.sqlite_only
def test_github_out_of_reach_is_said_plainly_with_what_to_check(
    poller: PollerSetup, database: Database
):
    """A refused connection (nothing listens) was logged as the driver's chain of
    'ConnectionError: ... Max retries exceeded ... (Caused by ...)'."""
    import port_for

    closed = f"http://127.0.0.1:{port_for.select_random()}"
    offline = PollerSetup(poller.tmp_path, closed, database, [{"name": "octo/demo"}])
    offline.github = {"retry_backoff_seconds": 0.01}
    result = offline.run()
    assert result.returncode == 1, result.stderr
    [failed] = [json.loads(line) for line in result.stderr.splitlines() if "repo_failed" in line]
    assert failed["error"].startswith(
        "cannot reach GitHub at 127.0.0.1: the connection was refused"
    )
    assert "api_url" in failed["error"] and "Max retries" not in result.stderr


def test_a_rejected_token_says_what_to_check(fake: FakeGitHub, poller: PollerSetup):
    demo(fake)
    poller.repos = [{"name": "octo/demo"}]
    poller.token = "ghp_NotTheRightToken0123456789abcdefABCD"
    result = poller.run()
    assert result.returncode == 1
    [failed] = [json.loads(line) for line in result.stderr.splitlines() if "repo_failed" in line]
    assert "check GITHUB_TOKEN" in failed["error"] and "app_id" in failed["error"]
    assert "NotTheRightToken" not in result.stderr


@pytest.mark.mariadb
def test_a_missing_database_password_names_the_variable(
    fake: FakeGitHub, tmp_path, mariadb_server: MariaDB
):
    database = mariadb_server.create_database("no_password")
    poller = PollerSetup(tmp_path, fake.url, Database(database.url), [{"name": "octo/demo"}])
    result = poller.run()
    assert result.returncode == 3
    line = one_error_line(result.stderr)
    assert "Access denied" in line and "set SHARK_POLLER_DB_PASSWORD" in line


@pytest.mark.mariadb
def test_a_wrong_password_in_the_url_is_not_called_missing(
    fake: FakeGitHub, tmp_path, mariadb_server: MariaDB
):
    database = mariadb_server.create_database("wrong_password")
    url = database.url.replace("mysql://poller@", "mysql://poller:not-it@")
    poller = PollerSetup(tmp_path, fake.url, Database(url), [{"name": "octo/demo"}])
    result = poller.run()
    assert result.returncode == 3
    line = one_error_line(result.stderr)
    assert "Access denied" in line and "using password: YES" in line
    assert "no password was given" not in line and "not-it" not in line


def test_a_read_only_directory_is_named_and_status_still_reads(fake: FakeGitHub, shared_dir):
    demo(fake)
    repos = [{"name": "octo/demo"}]
    writer = PollerSetup(shared_dir, fake.url, Database(f"sqlite:///{shared_dir}/dash.db"), repos)
    assert writer.run().returncode == 0  # as the owner, who may write
    assert not Path(f"{shared_dir}/dash.db-wal").exists()  # closed cleanly: no writer
    shared_dir.chmod(stat.S_IRUSR | stat.S_IXUSR | 0o055)

    # status and models.connect() only read, so they work where nothing may be written.
    status = run_as_reader(writer, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["repos"][0]["runs_last_week"] == 1
    script = shared_dir / "read.py"
    shared_dir.chmod(0o755)
    script.write_text(
        "from poller import models\n"
        f"models.connect({str(writer.config_path)!r})\n"
        "print(models.WorkflowRun.select().count())\n"
    )
    script.chmod(0o644)
    shared_dir.chmod(0o555)
    reader = subprocess.run(
        as_reader([sys.executable, str(script)], shared_dir),
        env=writer.env(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=shared_dir,
    )
    assert (reader.returncode, reader.stdout.strip()) == (0, "1"), reader.stderr

    # A poller that may not write there is told which directory, and what to do.
    result = run_as_reader(writer, "--once")
    assert result.returncode == 3
    line = one_error_line(result.stderr)
    assert f"must be able to write {shared_dir}" in line and "dash.db-wal" in line
