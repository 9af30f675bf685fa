"""Secret masking and rendering of the log pipeline."""

from __future__ import annotations

import io
import json
import logging
import re

import structlog

from poller.service import logs


def test_masker_hides_known_secrets_and_anything_shaped_like_a_github_token():
    masker = logs.SecretMasker(["db-Passw0rd-xyz", None, "ab"])
    event = masker(
        None,
        "info",
        {
            "event": "x",
            "url": "mysql://u:db-Passw0rd-xyz@h/db",
            "nested": {"list": ["token ghs_16C7e42F292c6912E7710c838347Ae178B4a"]},
            "pat": "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            "short": "ab is too short to mask",
            "count": 3,
        },
    )
    assert event["url"] == "mysql://u:***@h/db"
    assert event["nested"] == {"list": ["token ***"]}
    assert event["pat"] == "***"
    assert event["short"] == "ab is too short to mask"
    assert event["count"] == 3


def test_stdlib_loggers_and_tracebacks_go_through_the_same_json_pipeline():
    stream = io.StringIO()
    logs.configure("debug", secrets=["s3cret-value"], stream=stream, pretty=False)
    logging.getLogger("github.Requester").debug("GET with s3cret-value")
    try:
        secret = "s3cret-value"
        raise ValueError(f"boom {secret}")
    except ValueError:
        structlog.get_logger("poller.test").exception("test.failed", repo="octo/demo")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["event"] == "GET with ***" and lines[0]["logger"] == "github.Requester"
    assert lines[0]["repo"] is None  # every event has the key, null outside a repository
    assert lines[1]["repo"] == "octo/demo"
    rendered = json.dumps(lines[1])
    assert "boom ***" in rendered and "s3cret-value" not in rendered
    assert "locals" not in rendered


def test_a_libraries_multi_line_debug_message_is_one_line_on_a_terminal():
    """PyGithub's and urllib3's debug messages may carry headers or a body over several
    lines; each fragment would read as a line of its own, with no time or level."""
    stream = io.StringIO()
    logs.configure("debug", stream=stream, pretty=True)
    logging.getLogger("github.Requester").debug("GET /repos/octo/demo\n{'etag': 'W/1'}\n")
    [line] = stream.getvalue().splitlines()
    assert "GET /repos/octo/demo ⏎ {'etag': 'W/1'}" in line
    stream = io.StringIO()
    logs.configure("debug", stream=stream, pretty=False)  # JSON keeps the message whole
    logging.getLogger("github.Requester").debug("GET\nbody")
    assert json.loads(stream.getvalue())["event"] == "GET\nbody"


def test_a_repository_done_is_one_short_line_on_a_terminal_and_complete_in_json():
    counts = {
        table: {"inserted": 0, "updated": 0, "unchanged": 1200, "deleted": 0}
        for table in ("workflows", "branches", "commits", "jobs", "steps")
    }
    counts["workflowruns"] = {"inserted": 3, "updated": 1, "unchanged": 1196, "deleted": 0}
    event = {
        "counts": counts,
        "requests_spent": 5,
        "seconds": 1.2,
        "backfill_pending": False,
        "jobs_os_unknown": 0,
        "error": None,
        "ok": True,
    }
    console = io.StringIO()
    logs.configure("info", stream=console, pretty=True)
    structlog.get_logger("poller.test").info("sync.repo_done", **event)
    [line] = re.sub(r"\x1b\[[0-9;]*m", "", console.getvalue()).splitlines()
    assert "changed='workflowruns +3 ~1'" in line and "requests_spent=5" in line
    assert "unchanged" not in line and "backfill_pending" not in line
    assert len(line) < 200

    lines = io.StringIO()
    logs.configure("info", stream=lines, pretty=False)
    structlog.get_logger("poller.test").info("sync.repo_done", **event)
    assert json.loads(lines.getvalue())["counts"] == counts


def test_apscheduler_is_quiet_unless_debugging():
    stream = io.StringIO()
    logs.configure("info", stream=stream, pretty=False)
    logging.getLogger("apscheduler.executors.default").info('Running job "pass"')
    # The daemon's listeners say these as daemon.pass_missed and daemon.pass_skipped.
    logging.getLogger("apscheduler.scheduler").warning("skipped: maximum number of instances")
    logging.getLogger("apscheduler.scheduler").error("Error getting due jobs")
    [line] = stream.getvalue().splitlines()
    assert "Error getting due jobs" in line
    logs.configure("debug", stream=stream, pretty=False)
    logging.getLogger("apscheduler.executors.default").info('Running job "pass"')
    assert 'Running job \\"pass\\"' in stream.getvalue()
