"""The shipped alert rules and metrics, with Prometheus's own tools as our processes:
``promtool`` checks the rules and runs them over simulated hours
(``fixtures/alerts-test.yml``), and a real Prometheus scrapes a real daemon, evaluates
the rules and every Grafana expression, and sees the daemon die.

CI installs Debian's ``prometheus`` and sets ``SHARK_POLLER_REQUIRE_PROMETHEUS=1``, so
these never skip there."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import port_for
import pytest

from fake_github import FakeGitHub
from support import REPO_ROOT, LogTail, PollerSetup

ROOT = REPO_ROOT
RULES = ROOT / "poller" / "alerts.yml"
RULE_TESTS = ROOT / "tests" / "fixtures" / "alerts-test.yml"
DASHBOARD = ROOT / "poller" / "grafana-dashboard.json"
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")

pytestmark = pytest.mark.sqlite_only  # the subject is the metrics, not the database


def require(tool: str | None, name: str) -> str:
    if tool is None:
        package = "prometheus-node-exporter" if "node" in name else "prometheus"
        reason = f"{name} is not installed (Debian: apt-get install {package})"
        if os.environ.get("SHARK_POLLER_REQUIRE_PROMETHEUS"):
            pytest.fail(reason)
        pytest.skip(reason)
    return tool


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    command = [require(PROMTOOL, "promtool"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_the_shipped_rules_are_valid_and_do_what_their_runbook_says_over_simulated_hours():
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout
    tested = promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr


class Prometheus:
    """A Prometheus server of our own on 127.0.0.1, scraping every second."""

    def __init__(self, tmp_path: Path, targets: dict[str, str]) -> None:
        self.port = port_for.select_random()
        scrape = [
            {"job_name": job, "static_configs": [{"targets": [target]}]}
            for job, target in targets.items()
        ]
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": scrape,
        }
        path = tmp_path / "prometheus.yml"
        path.write_text(json.dumps(config))  # JSON is YAML
        self.process = subprocess.Popen(
            [
                require(PROMETHEUS, "prometheus"),
                f"--config.file={path}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "prometheus.log").open("w"),
        )

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{query}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = json.load(answer)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def wait_for(self, what: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if what():
                    return
            except OSError:
                pass  # not listening yet
            assert time.monotonic() < deadline, "Prometheus never saw it"
            time.sleep(0.25)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture
def prometheus_for() -> Iterator[Callable[[Path, dict[str, str]], Prometheus]]:
    started: list[Prometheus] = []

    def start(tmp_path: Path, targets: dict[str, str]) -> Prometheus:
        started.append(Prometheus(tmp_path, targets))
        return started[-1]

    yield start
    for server in started:
        server.close()


@pytest.fixture
def node_exporter(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """node_exporter with its textfile collector only, on 127.0.0.1: the directory the
    poller writes its textfile into, and the target to scrape."""
    directory = tmp_path / "node-exporter"
    directory.mkdir()
    port = port_for.select_random()
    process = subprocess.Popen(
        [
            require(NODE_EXPORTER, "prometheus-node-exporter"),
            "--collector.disable-defaults",
            "--collector.textfile",
            f"--collector.textfile.directory={directory}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "node_exporter.log").open("w"),
    )
    yield directory, f"127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=30)


def grafana_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def test_a_real_prometheus_scrapes_the_daemon_and_pages_when_it_dies(
    fake: FakeGitHub,
    poller: PollerSetup,
    tmp_path: Path,
    prometheus_for: Any,
    node_exporter: tuple[Path, str],
):
    """Both ways out scraped, as docs/monitoring.md describes: the endpoint (job shark-poller)
    and the textfile through node_exporter (job node)."""
    repo = fake.add_repo("octo/demo")
    fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main")
    port = port_for.select_random()
    directory, node_target = node_exporter
    textfile = directory / "shark_poller.prom"
    poller.repos = [{"name": "octo/demo"}]
    poller.schedule = {"interval_minutes": 0.02}
    poller.metrics = {"listen": str(port), "textfile": str(textfile), "ci": True}
    daemon = LogTail(poller.popen())
    try:
        daemon.wait_for("daemon.pass_done", count=2)
        # What the product writes passes Prometheus's own linter, both ways out.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            served = answer.read().decode()
        for text in (served, textfile.read_text()):
            linted = subprocess.run(
                [require(PROMTOOL, "promtool"), "check", "metrics"],
                input=text,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert linted.returncode == 0, linted.stdout + linted.stderr

        targets = {"shark-poller": f"127.0.0.1:{port}", "node": node_target}
        server = prometheus_for(tmp_path, targets)
        server.wait_for(lambda: len(server.query("up == 1")) == 2)
        # The same fact from both: the rules and panels take one value per repository.
        server.wait_for(lambda: len(server.query("shark_poller_repo_last_pass_ok")) == 2)
        server.wait_for(lambda: bool(server.query("node_textfile_mtime_seconds")))
        # Every rule loads and evaluates without error, and none fires on a healthy poller.
        server.wait_for(
            lambda: all(
                rule.get("lastEvaluation", "").startswith("20")
                for group in server.api("rules")["groups"]
                for rule in group["rules"]
            )
        )
        rules = [rule for group in server.api("rules")["groups"] for rule in group["rules"]]
        assert len(rules) == 6 and all(rule["health"] == "ok" for rule in rules), rules
        assert server.query("ALERTS") == []
        # Every expression of the Grafana dashboard evaluates (the API fails on an error),
        # and each returns data once two scrapes are in, but those of the CI histograms,
        # which wait for a run to complete while the poller watches.
        expressions = grafana_expressions()
        for expr in expressions:
            server.api("query", query=expr)
        needs_data = [e for e in expressions if "cicd_pipeline_run_duration" not in e]
        needs_data = [e for e in needs_data if "job_queue" not in e]
        server.wait_for(lambda: all(server.query(expr) for expr in needs_data))
    finally:
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait(timeout=30)
    # Killed: the endpoint stops answering, and SharkPollerDown starts its 2 minutes
    # (promtool's simulated hours show it fires at their end).
    server.wait_for(lambda: bool(server.query('up{job="shark-poller"} == 0')))
    server.wait_for(
        lambda: any(
            alert["labels"]["alertname"] == "SharkPollerDown"
            for alert in server.api("alerts")["alerts"]
        )
    )
    [down] = server.api("alerts")["alerts"]
    assert down["labels"]["alertname"] == "SharkPollerDown"
    assert down["state"] == "pending" and down["labels"]["severity"] == "critical"
    # node_exporter serves the dead daemon's last textfile, and its age grows: what
    # SharkPollerTextfileStale pages on past 15 minutes (simulated in alerts-test.yml).
    age = "time() - node_textfile_mtime_seconds{file=~'.*shark_poller.prom'}"
    first = float(server.query(age)[0]["value"][1])
    time.sleep(2)
    assert float(server.query(age)[0]["value"][1]) > first


def test_grafana_imports_the_dashboard_with_the_data_source_chosen_at_import():
    """What Grafana's import does (Dashboards → Import): it asks for each ``__inputs``
    data source and replaces ``${DS_PROMETHEUS}`` throughout the JSON with the one
    chosen. Every panel must then query that one, through the ``datasource`` variable."""
    text = DASHBOARD.read_text()
    dashboard = json.loads(text)
    [wanted] = dashboard["__inputs"]
    assert wanted["name"] == "DS_PROMETHEUS" and wanted["pluginId"] == "prometheus"
    required = {(item["type"], item["id"]) for item in dashboard["__requires"]}
    panel_types = {("panel", panel["type"]) for panel in dashboard["panels"]}
    assert {("datasource", "prometheus"), *panel_types} <= required
    imported = json.loads(text.replace("${DS_PROMETHEUS}", "picked-at-import"))
    [variable] = imported["templating"]["list"]
    assert variable["name"] == "datasource" and variable["current"]["value"] == "picked-at-import"
    for panel in imported["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel.get("targets", []):
            assert target.get("datasource", {"uid": "${datasource}"})["uid"] == "${datasource}"


@pytest.mark.stress  # two minutes of real time: CI's stress lane runs it
def test_the_dead_poller_alert_fires_in_a_real_prometheus_within_its_for(
    fake: FakeGitHub, poller: PollerSetup, tmp_path: Path, prometheus_for: Any
):
    """In real time, what promtool shows on a simulated clock: kill -9 the daemon, and
    SharkPollerDown fires once its 2 minutes have passed, not before."""
    fake.add_repo("octo/demo")
    port = port_for.select_random()
    poller.repos = [{"name": "octo/demo"}]
    poller.schedule = {"interval_minutes": 0.02}
    poller.metrics = {"listen": str(port)}
    daemon = LogTail(poller.popen())
    try:
        daemon.wait_for("daemon.pass_done")
        server = prometheus_for(tmp_path, {"shark-poller": f"127.0.0.1:{port}"})
        server.wait_for(lambda: bool(server.query('up{job="shark-poller"} == 1')))
    finally:
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait(timeout=30)
    killed = time.monotonic()

    def firing() -> bool:
        alerts = server.api("alerts")["alerts"]
        return any(a["state"] == "firing" for a in alerts)

    server.wait_for(firing, timeout=180)
    after = time.monotonic() - killed
    # Its `for` (120 s), plus up to a scrape and an evaluation (1 s each) to see it down.
    assert 120 <= after <= 135, after
    [alert] = server.api("alerts")["alerts"]
    assert alert["labels"]["alertname"] == "SharkPollerDown"
