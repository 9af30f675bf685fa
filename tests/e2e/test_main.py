"""The command line as an operator meets it: every bad input is one line and the right
exit status, readers never write, and the small things a terminal or a pipe shows."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fake_github import FakeGitHub
from poller.shutdown import Stop
from poller.store import models
from support import REPO_ROOT, Database, LogTail, PollerSetup

NOW = datetime.now(UTC).replace(microsecond=0)


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *parts: str):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("shark-poller: error: ")
    for part in parts:
        assert part in lines[0]


def run_config(tmp_path: Path, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHARK_POLLER", "GITHUB"))}
    return subprocess.run(
        [os.sys.executable, "-m", "poller", "--config", str(config), *(args or ("--once",))],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


REPOS = '\n[[repos]]\nname = "octo/demo"\n'


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://x.db", "three or four slashes"),
        ("sqlite:x.db", "three or four slashes"),
        ("sqlite:///", "names no database file"),
        ("mysql://u@127.0.0.1:notaport/db", "the port must be a number"),
        ("mysql://u@127.0.0.1:3306/db?sslca=/x", "unknown parameter 'sslca'; accepted: ssl_ca"),
        ("mysql://u@127.0.0.1:3306/db?ssl_verify_cert=yes", "must be true or false"),
        ("mysql://u@host:3306", "the database name is missing"),
        ("mysql://u:hunter2-secret@/db", "the host is missing"),
        ("postgres://u@host/db", "must start with sqlite:/// or mysql://"),
    ],
)
def test_a_bad_database_url_is_one_line_and_exit_2(tmp_path, url: str, message: str):
    result = run_config(tmp_path, f'[database]\nurl = "{url}"\n' + REPOS)
    assert_one_line_error(result, 2, "[database].url:", message)
    assert "hunter2-secret" not in result.stderr
    assert not (tmp_path / ".db").exists() and not (tmp_path / "x.db").exists()


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ('[repos]\nname = "octo/demo"\n', ["[repos]:", "[[repos]]"]),
        (
            "[schedual]\ninterval_minutes = 5\n" + REPOS,
            ["config.toml: [schedual]: unknown table; did you mean [schedule]?"],
        ),
        ("interval_minutes = 5\n" + REPOS, ["config.toml: interval_minutes: unknown key"]),
        ('[[repos]]\nname = "octo/demo"\ndocker_workflows = "docker"\n', ["docker_workflows"]),
    ],
)
def test_config_mistakes_name_the_key(tmp_path, text: str, parts: list[str]):
    assert_one_line_error(run_config(tmp_path, text), 2, *parts)


@pytest.mark.parametrize("where", ["/proc/nope/x.db", "{tmp}/a-file/x.db"])
def test_a_sqlite_directory_that_cannot_be_made_is_one_line_and_exit_3(tmp_path, where: str):
    (tmp_path / "a-file").write_text("in the way")
    path = where.format(tmp=tmp_path)
    result = run_config(tmp_path, f'[database]\nurl = "sqlite:///{path}"\n{REPOS}')
    assert_one_line_error(result, 3, "cannot create the directory", str(Path(path).parent))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--once", "--json"], "--json applies to status only"),
        (["status", "--once"], "--once does not apply to status"),
        (["--full"], "--full applies to --once only"),
        (["--log-level", "loud"], "--log-level"),
        (["stats"], "invalid choice"),
    ],
)
def test_flags_that_do_not_apply_are_rejected(tmp_path, args: list[str], message: str):
    assert_one_line_error(run_config(tmp_path, REPOS, *args), 2, message)


def test_log_levels_are_case_insensitive_on_the_command_line_too(
    fake: FakeGitHub, poller: PollerSetup
):
    fake.add_repo("octo/demo")
    poller.repos = [{"name": "octo/demo"}]
    result = poller.run("--once", "--log-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "pass.done" not in result.stderr  # an info line


def test_status_on_a_missing_sqlite_database_creates_nothing(tmp_path):
    text = '[database]\nurl = "sqlite:///typo/dashbaord.db"\n' + REPOS
    result = run_config(tmp_path, text, "status")
    assert_one_line_error(result, 3, "typo/dashbaord.db does not exist")
    assert not (tmp_path / "typo").exists()
    # --json always prints JSON, with the error; stderr still has the one line.
    as_json = run_config(tmp_path, text, "status", "--json")
    assert as_json.returncode == 3
    answer = json.loads(as_json.stdout)
    assert "typo/dashbaord.db does not exist" in answer["error"] and answer["repos"] == []
    assert len(as_json.stderr.strip().splitlines()) == 1


def test_dashboard_connect_on_a_missing_database_creates_nothing(tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text('[database]\nurl = "sqlite:///nope.db"\n' + REPOS)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(models.DatabaseMissing, match=r"nope\.db does not exist"):
        models.connect(tmp_path / "config.toml")
    assert list(tmp_path.iterdir()) == [tmp_path / "config.toml"]


def test_readers_never_write_a_read_only_sqlite_file(fake: FakeGitHub, tmp_path, monkeypatch):
    poller = PollerSetup(tmp_path, fake.url, Database(f"sqlite:///{tmp_path / 'dash.db'}"))
    repo = fake.add_repo("octo/demo")
    fake.add_run(repo, fake.add_workflow(repo, "CI"), created=NOW - timedelta(hours=1))
    poller.repos = [{"name": "octo/demo"}]
    assert poller.run().returncode == 0
    path = Path(poller.database.url.removeprefix("sqlite:///"))
    path.chmod(0o444)
    before = hashlib.sha256(path.read_bytes()).hexdigest()

    status = poller.run("status", "--json")
    assert status.returncode == 0, status.stderr
    assert '"runs_last_week": 1' in status.stdout
    monkeypatch.chdir(poller.tmp_path)
    db = models.connect(poller.config_path)
    assert models.WorkflowRun.select().count() == 1
    with pytest.raises(Exception, match="readonly"):
        models.Repo.create(name="octo/other")
    db.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


@pytest.mark.sqlite_only
def test_status_into_a_closed_pipe_is_quiet(fake: FakeGitHub, poller: PollerSetup):
    """`status | head -1`: the reader leaves before the table is written."""
    fake.add_repo("octo/demo")
    poller.repos = [{"name": "octo/demo"}]
    assert poller.run().returncode == 0
    process = subprocess.Popen(
        poller.command("status"),
        env=poller.env(),
        cwd=poller.tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.close()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr


@pytest.mark.sqlite_only
def test_status_shows_spent_requests_and_free_304s_apart(fake: FakeGitHub, poller: PollerSetup):
    repo = fake.add_repo("octo/demo")
    fake.add_run(repo, fake.add_workflow(repo, "CI"), created=NOW - timedelta(days=3))
    poller.repos = [{"name": "octo/demo"}]
    for _ in range(3):  # the third pass is idle: every listing answers 304
        assert poller.run("--once", "--full").returncode == 0
    import json

    status = poller.run("status", "--json")
    [row] = json.loads(status.stdout)["repos"]
    assert row["requests_spent"] == 0
    assert row["requests_not_modified"] >= 5


@pytest.mark.sqlite_only
def test_the_daemon_says_it_runs_unauthenticated(fake: FakeGitHub, poller: PollerSetup):
    fake.add_repo("octo/demo")
    poller.repos = [{"name": "octo/demo"}]
    poller.token = None
    poller.schedule = {"interval_minutes": 10, "jitter_seconds": 0}
    daemon = LogTail(poller.popen())
    try:
        daemon.wait_for("github.unauthenticated")
        daemon.wait_for("daemon.pass_done")
    finally:
        daemon.process.terminate()
        assert daemon.process.wait(timeout=30) == 0


@pytest.mark.sqlite_only
def test_progress_is_reported_on_a_timer_while_fetching(fake: FakeGitHub, poller: PollerSetup):
    repo = fake.add_repo("octo/demo")
    ci = fake.add_workflow(repo, "CI")
    for i in range(150):
        fake.add_run(repo, ci, created=NOW - timedelta(days=3, minutes=i))
    fake.latency = 0.01  # about 2 s of jobs requests, inside the first page of runs
    poller.repos = [{"name": "octo/demo"}]
    poller.sync = {"progress_seconds": 0.4}
    started = time.monotonic()
    result = poller.run()
    assert result.returncode == 0, result.stderr
    import json

    events = [json.loads(line) for line in result.stderr.splitlines() if "sync.progress" in line]
    assert len(events) >= 3, f"{len(events)} events in {time.monotonic() - started:.1f}s"
    # Ticks come while the first page's jobs are fetched, before it is stored (on a
    # loaded machine, the first may come before the first page is even listed).
    assert any(
        e["runs_listed"] == 100 and e["runs_stored"] == 0 and e["jobs_fetched"] > 0 for e in events
    )
    assert {e["repo"] for e in events} == {"octo/demo"}
    assert [e["jobs_fetched"] for e in events] == sorted(e["jobs_fetched"] for e in events)


def test_sqlite_lock_files_are_ignored_by_git():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".shark_dashboard.db.0123456789abcdef.lock"],
        cwd=REPO_ROOT,
    )
    assert ignored.returncode == 0


def test_exit_codes_say_what_a_pass_did(fake: FakeGitHub, poller: PollerSetup, tmp_path):
    """0 all synced; 75 another process held a repository, so it was not synced (try
    later); 1 a failure, an organisation with nothing to follow included. status: 0 when
    every last pass succeeded, 1 when one failed or none has run."""
    from poller.store import locks

    repo = fake.add_repo("octo/demo")
    fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main")
    poller.repos = [{"name": "octo/demo"}]
    assert poller.run("status").returncode == 3  # no database yet
    assert poller.run().returncode == 0
    assert poller.run("status").returncode == 0

    holder = locks.for_database(poller.database.url, poller.database.password, Stop())
    assert holder.acquire("octo/demo")  # the other poller, mid-sync
    try:
        skipped = poller.run()
    finally:
        holder.close()
    assert skipped.returncode == 75, skipped.stderr
    assert '"sync.repo_skipped"' in skipped.stderr

    fake.add_repo("empty-org/archive").archived = True
    poller.orgs = [{"name": "empty-org"}]
    result = poller.run()
    assert result.returncode == 1
    assert "empty-org: no repository matches include ['*']" in result.stderr
    status = poller.run("status", "--json")
    assert status.returncode == 1
    rows = {row["repo"]: row for row in json.loads(status.stdout)["repos"]}
    assert "no repository matches" in rows["empty-org/*"]["last_error"]

    poller.orgs = []
    poller.repos = [{"name": "octo/demo"}, {"name": "octo/later"}]
    assert poller.run("status").returncode == 1  # octo/later has never run


@pytest.mark.sqlite_only
def test_a_since_in_the_future_is_warned_about(fake: FakeGitHub, poller: PollerSetup):
    repo = fake.add_repo("octo/demo")
    fake.add_commit(repo, "main")
    poller.repos = [{"name": "octo/demo", "since": "2999-01-01"}]
    result = poller.run()
    assert result.returncode == 0
    [warning] = [json.loads(line) for line in result.stderr.splitlines() if "since_in" in line]
    assert (warning["repo"], warning["since"]) == ("octo/demo", "2999-01-01")


@pytest.mark.sqlite_only
def a_backfill(fake: FakeGitHub, poller: PollerSetup, runs: int) -> None:
    """octo/demo with ``runs`` runs five days old and more, slow enough to watch."""
    repo = fake.add_repo("octo/demo")
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main")
    for i in range(runs):
        fake.add_run(repo, ci, created=datetime.now(UTC) - timedelta(days=5, minutes=20 * i))
    fake.latency = 0.004
    poller.repos = [{"name": "octo/demo"}]


def on_a_terminal(poller: PollerSetup, master: int, slave: int, *args: str) -> tuple[int, str]:
    """Run the poller with its stderr on the pseudo-terminal ``slave``: its exit status,
    and all it wrote there."""
    process = subprocess.Popen(
        poller.command(*args), env=poller.env(), stderr=slave, cwd=poller.tmp_path
    )
    os.close(slave)
    output = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        output += chunk
    code = process.wait(timeout=60)
    os.close(master)
    return code, output.decode(errors="replace")


@pytest.mark.sqlite_only
def test_on_a_terminal_a_log_line_never_shares_a_line_with_a_progress_bar(
    fake: FakeGitHub, poller: PollerSetup
):
    import pty

    a_backfill(fake, poller, runs=120)
    master, slave = pty.openpty()
    # At debug, the libraries log every request while the bar moves.
    code, text = on_a_terminal(poller, master, slave, "--once", "--log-level", "debug")
    assert code == 0, text[-2000:]
    # What a terminal shows of each line is what follows its last carriage return.
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)  # colours
    shown = [line.rstrip("\r").rsplit("\r", 1)[-1] for line in plain.split("\n")]
    logged = [line for line in shown if "[debug" in line]
    assert len(logged) > 100, plain[-3000:]
    for line in logged:
        assert "runs/s" not in line, line


@pytest.mark.sqlite_only
def test_progress_shows_on_a_terminal_with_no_size_with_its_total(
    fake: FakeGitHub, poller: PollerSetup
):
    """A pseudo-terminal that reports 0 columns (script -c, CI runners, some SSH
    sessions) got an empty bar and no timed events. The bar now has a width, and the
    backfill's listing gives it a total."""
    import pty

    a_backfill(fake, poller, runs=250)
    master, slave = pty.openpty()
    assert os.get_terminal_size(slave).columns == 0
    code, text = on_a_terminal(poller, master, slave, "--once")
    assert code == 0
    assert "octo/demo" in text and "/250" in text, text[-2000:]
    # Each run counted once: listed by the backfill, stored once, whatever else read it.
    final = text.rsplit("octo/demo: ", 1)[1].split("\n", 1)[0]
    assert "250/250" in final and "listed=250" in final and "stored=250" in final, final
