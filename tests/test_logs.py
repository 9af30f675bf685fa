"""Secret masking and rendering of the log pipeline."""

from __future__ import annotations

import io
import json
import logging

import structlog

from poller import logs


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
