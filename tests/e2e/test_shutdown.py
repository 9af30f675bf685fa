"""Stopping, as systemd and a person at a terminal do it: a real signal to a real process,
in every state the process can be in, timed. A stop takes a couple of seconds at most,
and the exit status says what happened: 0 for the daemon, 130/143 for an interrupted
``--once``, whose log names the repositories it did not finish."""

from __future__ import annotations

import json
import signal
import socket
import time
from datetime import UTC, datetime

import port_for
import pytest

from fake_github import FakeGitHub
from mariadb import MariaDB
from support import Database, LogTail, PollerSetup
from support import small_repo as demo_repo
from tcp_proxy import TcpProxy

NOW = datetime.now(UTC).replace(microsecond=0)
# shutdown.GRACE_SECONDS plus the time to start and stop a Python process.
STOP_SECONDS = 3.5
EXPECTED = {"--once": {signal.SIGTERM: 143, signal.SIGINT: 130}, "daemon": {}}


def start(poller: PollerSetup, mode: str) -> LogTail:
    # The daemon's first pass starts at once; the next is far away.
    poller.schedule = {"interval_minutes": 10, "jitter_seconds": 0}
    return LogTail(poller.popen(*(["--once"] if mode == "--once" else [])))


def stop_timed(process: LogTail, signum: signal.Signals) -> tuple[int, float]:
    started = time.monotonic()
    process.process.send_signal(signum)
    code = process.process.wait(timeout=60)
    return code, time.monotonic() - started


def wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.mark.sqlite_only
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("mode", ["--once", "daemon"])
def test_stop_while_github_retries_with_backoff(
    fake: FakeGitHub, poller: PollerSetup, mode: str, signum: signal.Signals
):
    """urllib3 sleeps between retries where no signal reaches; ours are cut short."""
    demo_repo(fake)
    poller.repos = [{"name": "octo/demo"}]
    poller.github = {"max_retries": 5, "retry_backoff_seconds": 8}
    fake.fail("/repos/octo/demo", 503, times=1000)
    process = start(poller, mode)
    wait_until(lambda: fake.count("/repos/octo/demo") >= 2)  # now in an 8 s backoff
    time.sleep(0.3)
    code, seconds = stop_timed(process, signum)
    assert seconds < STOP_SECONDS
    assert code == EXPECTED[mode].get(signum, 0), process.text()
    if mode == "--once":
        [interrupted] = process.events("pass.interrupted")
        assert interrupted["unfinished"] == ["octo/demo"]
        assert interrupted["signal"] == signum.name
        assert not process.events("pass.done")
    else:
        assert process.events("daemon.stopped")[0]["clean"] is True


@pytest.mark.sqlite_only
def test_stop_between_daemon_passes(fake: FakeGitHub, poller: PollerSetup):
    demo_repo(fake)
    poller.repos = [{"name": "octo/demo"}]
    daemon = start(poller, "daemon")
    daemon.wait_for("daemon.pass_done")
    code, seconds = stop_timed(daemon, signal.SIGTERM)
    assert (code, seconds < 2.5) == (0, True)


def test_interrupted_once_exits_143_and_names_what_it_did_not_finish(
    fake: FakeGitHub, poller: PollerSetup
):
    """First `--once` over three repositories: the first is done, the second half done and
    the third never started. Exit 0 would claim all three were synced."""
    demo_repo(fake, "octo/small")
    demo_repo(fake, "octo/big", runs=150)
    demo_repo(fake, "octo/late")
    poller.repos = [{"name": "octo/small"}, {"name": "octo/big"}, {"name": "octo/late"}]
    poller.github = {"concurrency": 1}  # one repository at a time, so one never starts
    held = fake.hold("/repos/octo/big/actions/runs/", after=50)  # octo/big, half done
    once = start(poller, "--once")
    assert held.reached.wait(timeout=60)
    started = time.monotonic()
    once.process.send_signal(signal.SIGTERM)
    held.release.set()
    code, seconds = once.process.wait(timeout=60), time.monotonic() - started
    assert (code, seconds < STOP_SECONDS) == (143, True), once.text()
    [interrupted] = once.events("pass.interrupted")
    assert interrupted["unfinished"] == ["octo/big", "octo/late"]
    assert [e["repo"] for e in once.events("sync.repo_stopped")] == ["octo/big"]

    fake.holds.clear()
    finish = poller.run()
    assert finish.returncode == 0, finish.stderr


@pytest.mark.mariadb
@pytest.mark.parametrize("mode", ["--once", "daemon"])
def test_stop_while_waiting_for_mysql_to_come_back(
    fake: FakeGitHub, tmp_path, mariadb_server: MariaDB, mode: str
):
    """The database went away mid-pass: units reconnect with backoff, interruptibly."""
    base = mariadb_server.create_database(f"stop_mysql_{mode.strip('-')}")
    proxy = TcpProxy(mariadb_server.port)
    database = Database(
        base.url.replace(f":{mariadb_server.port}/", f":{proxy.port}/"), base.password, "mariadb"
    )
    demo_repo(fake, runs=600)
    fake.latency = 0.005
    poller = PollerSetup(tmp_path, fake.url, database, repos=[{"name": "octo/demo"}])
    process = start(poller, mode)
    wait_until(lambda: fake.count("/jobs") >= 30)
    proxy.cut()
    # The outage's one warning: the units are in their reconnect backoff from here.
    process.wait_for("store.reconnecting")
    code, seconds = stop_timed(process, signal.SIGTERM)
    assert seconds < STOP_SECONDS
    assert code == EXPECTED[mode].get(signal.SIGTERM, 0), process.text()


@pytest.mark.sqlite_only
def test_an_unreachable_github_costs_seconds_not_minutes(tmp_path, poller: PollerSetup):
    """Nothing listens on the port: each repository would otherwise spend a minute of
    5xx-style backoff. The first failures (one per worker) are retried briefly; the
    repositories after them are not tried."""
    poller.api_url = f"http://127.0.0.1:{port_for.select_random()}"
    poller.repos = [{"name": f"octo/r{i}"} for i in range(10)]
    poller.github = {"retry_backoff_seconds": 2.0, "concurrency": 4}  # the defaults
    started = time.monotonic()
    result = poller.run()
    assert time.monotonic() - started < 10
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    failures = [line for line in result.stderr.splitlines() if "sync.repo_failed" in line]
    assert len(failures) == 10
    tried = [line for line in failures if "not tried" not in line]
    assert 1 <= len(tried) <= 4 and all("cannot reach GitHub" in line for line in tried)

    started = time.monotonic()
    status = poller.run("status")
    assert time.monotonic() - started < 6
    assert status.returncode == 1, status.stderr  # every repository's last pass failed
    assert "octo/r9" in status.stdout and "GitHub rate limit: unknown" in status.stdout
    assert "not tried" in status.stdout


@pytest.mark.parametrize("mode", ["--once", "daemon"])
def test_stop_while_connecting_to_a_database_that_never_answers(
    tmp_path, fake: FakeGitHub, mode: str
):
    """Start-up blocks in the MySQL handshake (connect_timeout is 10 s); a signal ends it."""
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never speaks
    port = silent.getsockname()[1]
    database = Database(f"mysql://poller@127.0.0.1:{port}/dashboard", "pw", "mariadb")
    poller = PollerSetup(tmp_path, fake.url, database, repos=[{"name": "octo/demo"}])
    process = start(poller, mode)
    time.sleep(1.5)
    assert process.process.poll() is None
    code, seconds = stop_timed(process, signal.SIGTERM)
    silent.close()
    # A daemon's stop is 0 for systemd, while it waits for its database too.
    assert (code, seconds < 2) == (143 if mode == "--once" else 0, True), process.text()
    assert "Traceback" not in process.text()


@pytest.mark.sqlite_only
def test_an_interrupted_backfill_reports_itself_pending_as_status_does(
    fake: FakeGitHub, poller: PollerSetup
):
    demo_repo(fake, runs=600)
    poller.repos = [{"name": "octo/demo"}]
    fake.latency = 0.003
    process = LogTail(poller.popen("--once"))
    wait_until(lambda: fake.count("/jobs") >= 150)
    code, _ = stop_timed(process, signal.SIGINT)
    assert code == 130, process.text()[-2000:]
    [done] = process.events("sync.repo_done")
    assert done["backfill_pending"] is True
    status = poller.run("status", "--json")
    assert json.loads(status.stdout)["repos"][0]["backfill"].startswith("pending")
