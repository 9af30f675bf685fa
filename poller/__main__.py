"""The command line: ``python -m poller [--once]`` and ``python -m poller status``.

Exit codes: 0 every repository synced; 1 at least one repository failed (the others were
still synced); 2 the configuration or the command line is wrong; 3 the database could not
be opened or upgraded.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

import peewee
import structlog

from poller import locks, logs, progress, status, units
from poller.config import Config, ConfigError, Secrets, load, load_secrets, resolve_path
from poller.models import open_database, redact_url
from poller.passes import connect_github, run_pass
from poller.schema import ensure_schema
from poller.sync import PassOptions

EXIT_OK, EXIT_REPO_FAILED, EXIT_CONFIG, EXIT_DATABASE = 0, 1, 2, 3

log = structlog.get_logger("poller")


class StartupError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="shark-poller",
        description="Poll GitHub Actions history into the CI dashboard database.",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $SHARK_POLLER_CONFIG, else ./config.toml)",
    )
    parser.add_argument(
        "--log-level",
        choices=logs.LEVELS,
        default=os.environ.get("SHARK_POLLER_LOG_LEVEL", "info").lower(),
        help="default: $SHARK_POLLER_LOG_LEVEL, else info",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="run one catch-up pass, finishing any backfill, then exit",
    )
    parser.add_argument(
        "command",
        nargs="?",
        choices=["status"],
        help="status: show each repository's sync state and the rate limit left, then exit",
    )
    parser.add_argument("--json", action="store_true", help="with status: print JSON")
    args = parser.parse_args(argv)
    if args.log_level not in logs.LEVELS:
        parser.error(f"SHARK_POLLER_LOG_LEVEL must be one of {', '.join(logs.LEVELS)}")
    return args


def start(args: argparse.Namespace) -> tuple[Config, Secrets]:
    """Load the config and secrets, then open and upgrade the database."""
    try:
        config = load(resolve_path(args.config))
        secrets = load_secrets()
    except ConfigError as error:
        raise StartupError(str(error), EXIT_CONFIG) from None
    logs.configure(args.log_level, secrets=[secrets.github_token, secrets.db_password])
    db = open_database(
        config.database.url,
        secrets.db_password,
        autoconnect=False,
        timeout_seconds=config.github.timeout_seconds * 2,
    )
    try:
        with db.connection_context():
            ensure_schema(db)
    except peewee.PeeweeException as error:
        raise StartupError(
            f"database {redact_url(config.database.url)}: {error}", EXIT_DATABASE
        ) from None
    return config, secrets


def show_status(config: Config, secrets: Secrets, *, as_json: bool) -> int:
    gh = connect_github(config, secrets.github_token)
    try:
        report = status.collect(config, gh)
    finally:
        gh.close()
    print(status.render_json(report) if as_json else status.render_table(report))
    return EXIT_OK


def run_once(config: Config, secrets: Secrets) -> int:
    gh = connect_github(config, secrets.github_token)
    if not gh.authenticated:
        log.warning(
            "github.unauthenticated",
            message="GITHUB_TOKEN is not set: running unauthenticated, "
            "which GitHub limits to 60 requests an hour",
        )
    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        log.info("pass.stopping", signal=signal.Signals(signum).name)
        stop.set()
        gh.interrupt.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    repo_locks = locks.for_database(config.database.url, secrets.db_password)
    options = PassOptions(
        should_stop=stop.is_set,
        progress=progress.for_terminal(sys.stderr.isatty(), config.sync.progress_seconds),
        locks=repo_locks,
    )
    try:
        with units.session():
            reports = run_pass(config, gh, options)
    finally:
        gh.close()
        repo_locks.close()
    failed = [report.repo for report in reports if report.error]
    log.info(
        "pass.done",
        repos=len(reports),
        failed=failed,
        requests=gh.stats.sent,
        rate_limit_remaining=gh.stats.rate_remaining,
    )
    return EXIT_REPO_FAILED if failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logs.configure(args.log_level)
    try:
        config, secrets = start(args)
    except StartupError as error:
        print(f"shark-poller: error: {error}", file=sys.stderr)
        return error.code
    if args.command == "status":
        return show_status(config, secrets, as_json=args.json)
    if args.once:
        return run_once(config, secrets)
    from poller.daemon import run_daemon

    return run_daemon(config, secrets)


if __name__ == "__main__":
    sys.exit(main())
