"""The systemd unit, and the program's side of it: READY=1, credentials, clean stop."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fake_github import FakeGitHub
from support import REPO_ROOT, LogTail, PollerSetup

UNIT = REPO_ROOT / "systemd" / "shark-poller.service"
ANALYZE = shutil.which("systemd-analyze")


@pytest.fixture
def installed_unit(tmp_path: Path) -> Path:
    """The unit as installed, with ExecStart pointing at this venv's console script."""
    if ANALYZE is None:
        reason = "systemd-analyze is not installed (Debian: apt-get install systemd)"
        if os.environ.get("SHARK_POLLER_REQUIRE_SYSTEMD"):
            pytest.fail(reason)
        pytest.skip(reason)
    script = Path(sys.executable).parent / "shark-poller"
    assert script.exists(), "install the package first: pip install -e ."
    text = UNIT.read_text().replace("/opt/shark-poller/venv/bin/shark-poller", str(script))
    unit = tmp_path / "shark-poller.service"
    unit.write_text(text)
    return unit


def test_unit_passes_systemd_analyze_verify(installed_unit: Path):
    result = subprocess.run(
        [ANALYZE, "verify", "--recursive-errors=no", str(installed_unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_unit_is_hardened(installed_unit: Path):
    result = subprocess.run(
        [ANALYZE, "security", "--offline=true", str(installed_unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    exposure = re.search(r"Overall exposure level for .*: ([\d.]+)", result.stdout)
    assert exposure, result.stdout[-2000:]
    assert float(exposure.group(1)) <= 2.0


def test_every_setting_in_the_unit_is_explained():
    """Each setting, or each run of related settings, sits right under a comment."""
    lines = UNIT.read_text().splitlines()
    for number, line in enumerate(lines):
        if "=" not in line or line.startswith("#"):
            continue
        above = number - 1
        while above >= 0 and "=" in lines[above] and not lines[above].startswith("#"):
            above -= 1
        assert lines[above].startswith("#"), f"line {number + 1} is not explained: {line}"


def test_daemon_notifies_ready_and_reads_the_token_credential(
    fake: FakeGitHub, poller: PollerSetup, tmp_path: Path
):
    repo = fake.add_repo("octo/demo")
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main")
    fake.add_run(repo, ci, created=datetime.now(UTC) - timedelta(hours=1))
    poller.repos = [{"name": "octo/demo"}]
    poller.schedule = {"interval_minutes": 10, "jitter_seconds": 0}
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "github_token").write_text(str(poller.token) + "\n")
    token, poller.token = poller.token, None  # not in the environment this time

    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_path = str(tmp_path / "notify.sock")
    notify.bind(notify_path)
    notify.settimeout(30)
    daemon = LogTail(
        poller.popen(NOTIFY_SOCKET=notify_path, CREDENTIALS_DIRECTORY=str(credentials))
    )
    try:
        assert notify.recv(1024) == b"READY=1"
        daemon.wait_for("daemon.pass_done")
    finally:
        daemon.process.send_signal(signal.SIGTERM)
        assert daemon.process.wait(timeout=30) == 0
    assert notify.recv(1024) == b"STOPPING=1"
    notify.close()
    assert not daemon.events("github.unauthenticated")
    assert daemon.events("sync.repo_done")[0]["ok"] is True
    assert token not in daemon.text()
