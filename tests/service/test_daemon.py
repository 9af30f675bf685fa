"""The service, run as real processes: schedule, shutdown, database outages, two pollers,
and secrets that never reach the logs. Then the daemon's wake-ups on the test's clock,
in-process: what is due, backoff, organisation listings and joining pollers."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import peewee
import port_for
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fake_github import FakeGitHub
from poller.config import loader as config_module
from poller.github import pool
from poller.service.daemon import Daemon
from poller.shutdown import Stop
from poller.store import models
from poller.store.locks import NoLocks
from poller.store.models import WorkflowRun
from poller.store.schema import ensure_schema
from poller.sync.engine import Engine
from support import Database, FakeClock, LogTail, PollerSetup, mirror, scratch_sync, small_repo

NOW = datetime.now(UTC).replace(microsecond=0)


def stored_runs(poller: PollerSetup) -> set[int]:
    with poller.database.open():
        return {run.gitid for run in WorkflowRun.select(WorkflowRun.gitid)}


def assert_no_duplicates(poller: PollerSetup) -> None:
    with poller.database.open():
        count = peewee.fn.COUNT(WorkflowRun.id)
        dupes = WorkflowRun.select(WorkflowRun.gitid, count).group_by(WorkflowRun.gitid)
        assert list(dupes.having(count > 1)) == []


def start_daemon(poller: PollerSetup, interval_seconds: float = 1.0) -> LogTail:
    poller.schedule = {"interval_minutes": interval_seconds / 60, "jitter_seconds": 0}
    return LogTail(poller.popen())


def stop(daemon: LogTail, timeout: float = 30) -> int:
    daemon.process.send_signal(signal.SIGTERM)
    return daemon.process.wait(timeout=timeout)


@pytest.mark.sqlite_only
def test_daemon_passes_on_schedule_and_stops_cleanly(fake: FakeGitHub, poller: PollerSetup):
    repo, ci = small_repo(fake)
    poller.repos = [{"name": "octo/demo"}]
    daemon = start_daemon(poller)
    try:
        daemon.wait_for("daemon.pass_done", count=1)
        fresh = fake.add_run(repo, ci, created=datetime.now(UTC) - timedelta(seconds=5))
        daemon.wait_for("daemon.pass_done", count=3)
        assert fresh in stored_runs(poller)
    finally:
        assert stop(daemon) == 0
    assert daemon.events("daemon.stopped")[0]["clean"] is True
    # Every event inside a pass carries the repository.
    assert all(event["repo"] == "octo/demo" for event in daemon.events("sync.repo_done"))
    done = daemon.events("sync.repo_done")[0]
    assert {"counts", "requests_spent", "requests_not_modified", "rate_limit_remaining"} <= set(
        done
    )


def test_sigterm_mid_pass_exits_0_and_loses_nothing(
    fake: FakeGitHub, poller: PollerSetup, make_database, tmp_path
):
    small_repo(fake, runs=300)
    poller.repos = [{"name": "octo/demo"}]
    held = fake.hold("/jobs", after=150)  # mid pass: the second page's 51st run
    daemon = start_daemon(poller, interval_seconds=600)
    assert held.reached.wait(timeout=60)
    started = time.monotonic()
    daemon.process.send_signal(signal.SIGTERM)
    held.release.set()
    assert daemon.process.wait(timeout=30) == 0
    assert time.monotonic() - started < 10
    daemon.thread.join(timeout=5)
    assert daemon.events("sync.repo_stopped")
    assert_no_duplicates(poller)
    partial = len(stored_runs(poller))
    assert 0 < partial < 300

    fake.holds.clear()
    assert poller.run().returncode == 0
    fresh = scratch_sync(poller, make_database(), tmp_path / "scratch")
    assert mirror(poller.database) == mirror(fresh.database)


@pytest.mark.sqlite_only
def test_failed_passes_back_off_and_the_daemon_survives(fake: FakeGitHub, poller: PollerSetup):
    small_repo(fake)
    poller.repos = [{"name": "octo/demo"}]
    poller.github = {"max_retries": 0}
    fake.fail("/repos/octo/demo", 503, times=2)
    daemon = start_daemon(poller, interval_seconds=0.5)
    try:
        backoffs = daemon.wait_for("daemon.backing_off", count=2)
        assert backoffs[1]["retry_in"] > backoffs[0]["retry_in"]
        daemon.wait_for("daemon.pass_done", count=3)
        assert daemon.events("daemon.pass_done")[-1]["ok"] is True
    finally:
        assert stop(daemon) == 0
    assert len(stored_runs(poller)) == 3


@pytest.mark.mariadb
def test_mariadb_restart_between_passes(fake: FakeGitHub, tmp_path, mariadb_server):
    database = mariadb_server.create_database("daemon_restart")
    poller = PollerSetup(tmp_path, fake.url, database, repos=[{"name": "octo/demo"}])
    repo, ci = small_repo(fake)
    daemon = start_daemon(poller)
    try:
        daemon.wait_for("daemon.pass_done", count=1)
        mariadb_server.restart()
        fresh = fake.add_run(repo, ci, created=datetime.now(UTC) - timedelta(seconds=5))
        passes = len(daemon.events("daemon.pass_done"))
        daemon.wait_for("daemon.pass_done", count=passes + 2)
        assert fresh in stored_runs(poller)
    finally:
        assert stop(daemon) == 0


@pytest.mark.mariadb
def test_a_database_restart_under_the_daemon_costs_its_downtime_and_says_why(
    fake: FakeGitHub, tmp_path, mariadb_server
):
    """The server goes away for three seconds while repositories are due. The lock
    session and the units wait it out; nothing fails for want of the lock, the next sync
    comes seconds after the server is back, and any failure is logged with its reason."""
    database = mariadb_server.create_database("daemon_db_down")
    poller = PollerSetup(tmp_path, fake.url, database, repos=[{"name": "octo/demo"}])
    repo, ci = small_repo(fake)
    daemon = start_daemon(poller, interval_seconds=2)
    try:
        daemon.wait_for("daemon.pass_done", count=1)
        mariadb_server.executor.stop()
        fresh = fake.add_run(repo, ci, created=datetime.now(UTC) - timedelta(seconds=5))
        time.sleep(3)
        mariadb_server.executor.start()
        back = time.monotonic()
        done_before = len(daemon.events("sync.repo_done"))
        deadline = back + 30
        while time.monotonic() < deadline:
            synced = [e for e in daemon.events("sync.repo_done")[done_before:] if e["ok"]]
            if synced:
                break
            time.sleep(0.1)
        recovered = time.monotonic() - back
        assert recovered < 8, daemon.text()[-3000:]
        assert fresh in stored_runs(poller)
    finally:
        assert stop(daemon) == 0
    failures = [e for e in daemon.events("sync.repo_done") if not e["ok"]]
    assert all(event["error"] for event in failures)
    reasons = [event["error"] for event in daemon.events("sync.repo_failed")]
    assert [event["error"] for event in failures] == reasons
    assert not any("repository lock" in reason for reason in reasons)
    # The outage is told once and its end once, not at every unit's every reconnect.
    lost = daemon.events("store.reconnecting") + daemon.events("locks.reconnecting")
    assert len(lost) == len(daemon.events("store.reconnected")) <= 2, daemon.text()[-3000:]


@pytest.mark.mariadb
def test_killed_connection_mid_pass_is_reconnected_and_retried(
    fake: FakeGitHub, tmp_path, mariadb_server
):
    database = mariadb_server.create_database("kill_mid_pass")
    poller = PollerSetup(tmp_path, fake.url, database, repos=[{"name": "octo/demo"}])
    poller.metrics = {"textfile": str(tmp_path / "shark_poller.prom")}
    small_repo(fake, runs=600)
    fake.latency = 0.002
    process = poller.popen("--once")
    log = LogTail(process)
    killed = 0
    with mariadb_server.root() as root, root.cursor() as cursor:
        deadline = time.monotonic() + 60
        while killed < 3 and time.monotonic() < deadline:
            if fake.count("/jobs") >= 100 * (killed + 1):
                cursor.execute(
                    "SELECT id FROM information_schema.processlist WHERE user = %s", ("poller",)
                )
                for (connection_id,) in cursor.fetchall():
                    cursor.execute(f"KILL {connection_id}")
                killed += 1
            time.sleep(0.005)
    assert process.wait(timeout=120) == 0, log.text()[-3000:]
    assert killed == 3
    reruns = log.events("store.reconnecting")
    assert reruns
    assert len(stored_runs(poller)) == 600
    assert_no_duplicates(poller)
    # The metrics count them: a unit rerun for each reconnecting event, and the reconnects.
    found = {
        family.name: sum(sample.value for sample in family.samples)
        for family in text_string_to_metric_families((tmp_path / "shark_poller.prom").read_text())
    }
    assert found["shark_poller_units_rerun"] == len(reruns)
    assert 1 <= found["shark_poller_database_reconnects"] <= len(reruns)


def test_two_pollers_never_write_one_repository_at_once(fake: FakeGitHub, poller: PollerSetup):
    small_repo(fake, runs=400)
    fake.latency = 0.002
    poller.repos = [{"name": "octo/demo"}]
    first = LogTail(poller.popen("--once"))
    deadline = time.monotonic() + 30
    while fake.count("/jobs") < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    second = LogTail(poller.popen("--once"))
    # 75, EX_TEMPFAIL: nothing failed, but the repository was not synced; try later.
    assert second.process.wait(timeout=120) == 75
    assert first.process.wait(timeout=120) == 0
    skipped = second.events("sync.repo_skipped")
    assert [event["repo"] for event in skipped] == ["octo/demo"]
    assert "another shark-poller process" in skipped[0]["reason"]
    assert not first.events("sync.repo_skipped")
    assert len(stored_runs(poller)) == 400
    assert_no_duplicates(poller)


def test_secrets_never_reach_the_logs_even_at_debug(fake: FakeGitHub, poller: PollerSetup):
    repo, ci = small_repo(fake)
    broken = fake.add_run(repo, ci, created=NOW - timedelta(hours=1))
    del repo.jobs[broken][0]["id"]  # a malformed payload: a traceback gets logged
    poller.repos = [{"name": "octo/demo"}, {"name": "octo/missing"}]
    fake.fail("/actions/workflows", 502, times=1)  # a retried 5xx gets logged too
    result = poller.run("--once", "--log-level", "debug")
    assert result.returncode == 1
    logs = result.stderr
    assert "Traceback" in logs or '"exception"' in logs
    assert "KeyError" in logs
    assert len(logs.splitlines()) > 50  # debug really was on: PyGithub, urllib3, peewee
    assert '"logger": "github.Requester"' in logs
    for line in logs.splitlines():  # every line is JSON, from every library
        json.loads(line)
    assert poller.token and poller.token not in logs
    if poller.database.password:
        assert poller.database.password not in logs


@pytest.mark.sqlite_only
def test_sigterm_cuts_a_wait_for_the_rate_limit_reset_short(fake: FakeGitHub, poller: PollerSetup):
    small_repo(fake)
    poller.repos = [{"name": "octo/demo"}]
    fake.exhaust_rate_limit(reset_in=600)  # an hour-long wait in real life
    daemon = start_daemon(poller, interval_seconds=600)
    daemon.wait_for("github.waiting_for_reset")
    started = time.monotonic()
    assert stop(daemon) == 0
    assert time.monotonic() - started < 10
    assert daemon.events("daemon.stopped")[0]["clean"] is True


@pytest.mark.mariadb
def test_a_daemon_started_before_its_database_waits_for_it(
    fake: FakeGitHub, tmp_path, mariadb_server
):
    """A VM that boots before its database: the daemon waits, says so, and syncs once the
    database answers. Wrong credentials are not waited for: exit 3 at once."""

    from tcp_proxy import TcpProxy

    small_repo(fake)
    real = mariadb_server.create_database("daemon_before_db")
    port = port_for.select_random()
    late = Database(real.url.replace(f":{mariadb_server.port}/", f":{port}/"), real.password)
    late.kind = "mariadb"
    poller = PollerSetup(tmp_path, fake.url, late, repos=[{"name": "octo/demo"}])
    daemon = start_daemon(poller)
    proxy = None
    try:
        waits = daemon.wait_for("daemon.waiting_for_database", count=2)
        assert "Can't connect" in waits[0]["error"] and waits[1]["retry_in"] == 2.0
        proxy = TcpProxy(mariadb_server.port, listen_port=port)
        daemon.wait_for("daemon.pass_done", count=1, timeout=30)
        assert len(stored_runs(poller)) == 3
    finally:
        assert stop(daemon) == 0
        if proxy is not None:
            proxy.cut()

    # Nothing listens on the port any more; systemd is told why the service waits.
    import socket

    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(10)
    metrics_port = port_for.select_random()
    poller.metrics = {"listen": str(metrics_port)}
    waiting = LogTail(poller.popen(NOTIFY_SOCKET=str(tmp_path / "notify.sock")))
    waiting.wait_for("daemon.waiting_for_database")
    # Up and waiting: READY=1 at once, so systemd's start timeout cannot fail the unit.
    assert notify.recv(4096) == b"READY=1"
    assert notify.recv(4096).startswith(b"STATUS=Waiting for the database: ")
    notify.close()
    # Its metrics serve meanwhile, and say what it waits for.
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        served = answer.read().decode()
    assert "shark_poller_database_readable 0.0" in served
    started = time.monotonic()
    assert stop(waiting) == 0  # a stop while waiting is a clean stop
    assert time.monotonic() - started < 3

    wrong = PollerSetup(tmp_path / "wrong", fake.url, Database(real.url, "not-the-password"))
    wrong.tmp_path.mkdir()
    wrong.repos = poller.repos
    result = wrong.run("--log-level", "info", timeout=30)  # the daemon: no --once
    assert result.returncode == 3
    assert "Access denied" in result.stderr


def test_a_stop_that_abandons_a_hung_request_hands_back_its_lease_and_heartbeat(
    fake: FakeGitHub, poller: PollerSetup
):
    """GitHub hangs mid-pass and SIGTERM comes: the unit is abandoned, but the process is
    alive and hands its lease and heartbeat back, so nobody waits two intervals."""
    from poller.store.models import PollerHeartbeat, SyncSchedule

    small_repo(fake)
    poller.repos = [{"name": "octo/demo"}]
    daemon = start_daemon(poller, interval_seconds=1)
    try:
        daemon.wait_for("daemon.pass_done", count=1)
        fake.latency = 30  # every request from now on hangs
        # A lease that is still the same 1.5 s later is a pass stuck in its request; one
        # seen once may be a quick pass that began before the latency was set.
        deadline, held, leases = time.monotonic() + 20, False, []
        with poller.database.open():
            while time.monotonic() < deadline and not held:
                leases.append({row.repo: row.leaseuntil for row in SyncSchedule.select()})
                earlier = leases[-31] if len(leases) > 30 else None  # 1.5 s ago
                held = earlier is not None and any(
                    until is not None and earlier.get(repo) == until
                    for repo, until in leases[-1].items()
                )
                time.sleep(0.05)
        assert held
    finally:
        assert stop(daemon) == 0
        fake.latency = 0
    [stopped] = daemon.events("daemon.stopped")
    assert stopped["clean"] is False
    with poller.database.open():
        assert not SyncSchedule.select().where(SyncSchedule.leaseowner.is_null(False)).exists()
        assert PollerHeartbeat.select().count() == 0


@pytest.mark.sqlite_only
def test_wake_ups_with_nothing_due_log_nothing(fake: FakeGitHub, poller: PollerSetup):
    """The docs' promise: a quiet daemon's journal holds its passes, not its ticks."""
    small_repo(fake)
    poller.repos = [{"name": "octo/demo"}]
    daemon = start_daemon(poller, interval_seconds=1.5)  # a wake-up every 0.3 s
    try:
        daemon.wait_for("daemon.pass_done", count=1)
        time.sleep(1)  # three wake-ups or so, with nothing due until 1.5 s have passed
    finally:
        assert stop(daemon) == 0
    lines = daemon.text().splitlines()
    loggers = {json.loads(line)["logger"] for line in lines if line.startswith("{")}
    assert not any(name.startswith("apscheduler") for name in loggers), loggers
    events = [json.loads(line)["event"] for line in lines if line.startswith("{")]
    after_pass = events[events.index("daemon.pass_done") + 1 :]
    assert after_pass == ["daemon.stopping", "daemon.stopped"], after_pass


# --- the service on the test's clock: in-process, no scheduler, no sleeps ---


@pytest.fixture
def local(sqlite_poller: PollerSetup) -> PollerSetup:
    """The daemon's own logic, on SQLite: the schedule's MariaDB semantics are
    test_schedule's."""
    return sqlite_poller


def daemon_on(poller: PollerSetup, clock: FakeClock, interval_minutes: float = 5) -> Daemon:
    poller.schedule = {"interval_minutes": interval_minutes, "jitter_seconds": 0}
    settings = config_module.load(poller.write())
    db = models.open_database(poller.database.url, poller.database.password)
    with db.connection_context():
        ensure_schema(db)
    engine = Engine(settings, pool.connect(settings, poller.token, clock, Stop()), NoLocks(), clock)
    return Daemon(settings, engine, clock=clock)


def test_each_repository_is_synced_once_an_interval_whatever_the_wake_ups(
    fake: FakeGitHub, local: PollerSetup
):
    """An hour of wake-ups every tick: each repository is synced at 0, 5, ..., 55
    minutes, and a wake-up with nothing due syncs nothing and backs nothing off."""
    for name in ("octo/a", "octo/b"):
        small_repo(fake, name)
    local.repos = [{"name": "octo/a"}, {"name": "octo/b"}]
    clock = FakeClock(NOW)
    daemon = daemon_on(local, clock)
    start, synced = clock.now(), []
    try:
        while clock.now() < start + timedelta(hours=1):
            assert daemon.wake() is None
            synced += [(report.repo, clock.now() - start) for report in daemon.last_pass]
            clock.advance(daemon.tick)
    finally:
        daemon.engine.close()
    assert daemon.tick == timedelta(seconds=15)
    for name in ("octo/a", "octo/b"):
        moments = [at for repo, at in synced if repo == name]
        assert moments == [timedelta(minutes=5 * i) for i in range(12)], (name, moments)
    assert len(stored_runs(local)) == 6


def test_failed_passes_back_off_doubling_from_an_interval(fake: FakeGitHub, local: PollerSetup):
    small_repo(fake)
    local.repos = [{"name": "octo/demo"}]
    local.github = {"max_retries": 0}
    fake.fail("/repos/octo/demo", 503, times=3)
    clock = FakeClock(NOW)
    daemon = daemon_on(local, clock)
    interval, delays = daemon.interval, []
    try:
        for _ in range(4):
            delay = daemon.wake()
            delays.append(delay)
            clock.advance(delay or daemon.tick)
    finally:
        daemon.engine.close()
    assert delays == [interval, 2 * interval, 4 * interval, None]
    assert daemon.failures == 0
    assert len(stored_runs(local)) == 3


def test_organisations_are_listed_once_an_interval_not_every_wake_up(
    fake: FakeGitHub, local: PollerSetup
):
    small_repo(fake, "octo/api")
    local.repos = []
    local.orgs = [{"name": "octo"}]
    clock = FakeClock(NOW)
    daemon = daemon_on(local, clock, interval_minutes=1)
    listings = []
    try:
        for _ in range(3 * 60 // 12):  # three intervals of wake-ups, 12 s apart
            daemon.wake()
            listings.append(fake.count("/orgs/octo/repos", rate_limited=False))
            clock.advance(daemon.tick)
    finally:
        daemon.engine.close()
    assert daemon.tick == timedelta(seconds=12)
    # At 0, 60 and 120 s: a new repository of the organisation waits an interval at most.
    assert [n for n, before in zip(listings, [0, *listings], strict=False) if n > before] == [
        1,
        2,
        3,
    ]


def test_a_poller_that_joins_others_waits_for_them_to_share_the_budget(
    fake: FakeGitHub, local: PollerSetup
):
    small_repo(fake)
    local.repos = [{"name": "octo/demo"}]
    clock = FakeClock(NOW)
    first, second = daemon_on(local, clock), daemon_on(local, clock)
    try:
        assert first.first_wake() == first.wall_clock()  # alone: at once
        clock.advance(first.tick)
        # Two wake-ups later, the one running has seen the newcomer and halved its rate.
        assert second.first_wake() == second.wall_clock() + 2 * second.tick
        assert first.share_budget() == 2
        governor = first.engine.github.credential("octo").governor
        github = first.config.github
        assert governor.rate == (github.requests_per_minute / 2 - github.concurrency) / 60
    finally:
        first.engine.close()
        second.engine.close()


@pytest.mark.sqlite_only
def test_each_pass_done_counts_that_passs_requests_per_credential(
    fake: FakeGitHub, poller: PollerSetup
):
    """daemon.pass_done's by_credential is the pass's requests: its repo_done events'
    and the organisation's listing, which it names apart (a first pass spent 14 where
    its one repo_done said 13, and nothing said where the other went)."""
    small_repo(fake)
    poller.orgs = [{"name": "octo"}]
    daemon = start_daemon(poller)
    try:
        daemon.wait_for("daemon.pass_done", count=4)
    finally:
        assert stop(daemon) == 0
    events = sorted(
        daemon.events("sync.repo_done") + daemon.events("daemon.pass_done"),
        key=lambda event: event["timestamp"],
    )
    spent_in_repos = 0
    for event in events:
        if event["event"] == "sync.repo_done":
            spent_in_repos += event["requests_spent"]
            continue
        listing = event["listing_orgs_spent"]
        assert event["by_credential"]["token"]["spent"] == spent_in_repos + listing, [
            (e["event"], e.get("requests_spent"), e.get("by_credential")) for e in events
        ]
        spent_in_repos = 0
    assert events[1]["listing_orgs_spent"] == 1  # the first listing; later ones are 304s
