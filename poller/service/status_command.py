"""``python -m poller status``: the table or JSON an operator reads, and ``--check``, a
monitoring plugin's one line. Both read the database only, and never write it."""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import peewee

from poller.clock import Clock
from poller.config.settings import (
    Config,
    Secrets,
)
from poller.github import pool
from poller.service import status
from poller.service.startup import EXIT_OK, EXIT_REPO_FAILED, StartupError, open_for_reading

EXIT_CRITICAL, EXIT_UNKNOWN = 2, 3  # status --check, as Nagios plugins exit
# status asks GitHub for the rate limit left, and must not wait long for it.
STATUS_GITHUB_TIMEOUT_SECONDS = 3.0


def show_status(config: Config, secrets: Secrets, clock: Clock, *, as_json: bool) -> int:
    try:
        open_for_reading(config, secrets)
    except StartupError as error:
        if as_json:
            # A reader of --json always gets JSON: the error, and nothing known.
            print(json.dumps({"error": str(error), "repos": [], "rate_limits": {}}, indent=2))
        raise
    # A quick, single try: status reads the database, and the rate limit is a bonus.
    quick = dataclasses.replace(
        config.github,
        timeout_seconds=min(config.github.timeout_seconds, STATUS_GITHUB_TIMEOUT_SECONDS),
        max_retries=0,
    )
    github = pool.GitHubPool(dataclasses.replace(config, github=quick), secrets.github_token)
    try:
        report = status.read_status(config, github, clock.now())
    finally:
        github.close()
    try:
        print(status.render_json(report) if as_json else status.render_table(report))
        sys.stdout.flush()
    except BrokenPipeError:
        # `status | head`: the reader has what it wanted. Python would otherwise complain
        # again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    # For a health check or a cron mail: 1 when any repository's last pass failed, or
    # none has run yet.
    unwell = any(not repo.last_pass_ok for repo in report.repos)
    return EXIT_REPO_FAILED if unwell else EXIT_OK


def check_health(config: Config, secrets: Secrets, clock: Clock) -> int:
    """``status --check``: Nagios's way, one line and 0 (OK), 2 (CRITICAL) or, when the
    database cannot be read, 3 (UNKNOWN). It asks GitHub nothing."""
    try:
        open_for_reading(config, secrets)
        healthy, line = status.health(config, clock.now())
    except StartupError as error:
        print(f"UNKNOWN: {error}")
        return EXIT_UNKNOWN
    except peewee.PeeweeException as error:
        print(f"UNKNOWN: cannot read the database: {error}")
        return EXIT_UNKNOWN
    print(line)
    return EXIT_OK if healthy else EXIT_CRITICAL
