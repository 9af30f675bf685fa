"""The command line: ``python -m poller [--once]`` and ``python -m poller status``.

Exit codes: 0 every repository synced; 1 at least one repository or organisation failed
(the others were still synced); 2 the configuration or the command line is wrong; 3 the
database could not be opened or upgraded; 75 (EX_TEMPFAIL) nothing failed, but another
process held the lock of at least one repository, which was not synced: try later; 130
or 143 a ``--once`` stopped by SIGINT or SIGTERM before it finished. ``status`` exits 0
when every repository's last pass succeeded, 1 when one failed or never ran, 3 when the
database cannot be read. Every error is one line on stderr.

The daemon waits for a database it cannot reach yet (a VM that boots before it, a
failover), with backoff, and exits 3 only for what waiting cannot fix: credentials, a
missing database, a schema that cannot be upgraded.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

import structlog

from poller.clock import SYSTEM, Clock
from poller.config.loader import (
    ConfigError,
    load,
    load_secrets,
    resolve_path,
)
from poller.config.settings import (
    Config,
    Secrets,
)
from poller.service import logs
from poller.service.exposition import MetricsError
from poller.service.once import run_once
from poller.service.startup import (
    EXIT_CONFIG,
    StartupError,
    open_for_writing,
)
from poller.service.status_command import check_health, show_status

log = structlog.get_logger("poller")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"shark-poller: error: {message} (see --help)\n")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
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
        default=os.environ.get("SHARK_POLLER_LOG_LEVEL", "info"),
        type=str.lower,  # as everywhere else: INFO, Info and info alike
        help=f"one of {', '.join(logs.LEVELS)} (default: $SHARK_POLLER_LOG_LEVEL, else info)",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="run one catch-up pass, finishing any backfill, then exit; paced like the "
        "daemon, so that cron may run it every few minutes",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="with --once: re-read the whole re-run horizon and every repository's "
        "metadata now, not the share due since the last pass",
    )
    parser.add_argument(
        "command",
        nargs="?",
        choices=["status"],
        help="status: show each repository's sync state and the rate limit left, then exit",
    )
    parser.add_argument("--json", action="store_true", help="with status: print JSON")
    parser.add_argument(
        "--check",
        action="store_true",
        help="with status: a health check; print one line, exit 0 if every repository is "
        "fresh and its last sync succeeded, 2 if not, 3 if the database cannot be read",
    )
    args = parser.parse_args(argv)
    if args.log_level not in logs.LEVELS:
        parser.error(f"--log-level (or SHARK_POLLER_LOG_LEVEL) must be one of {logs.LEVELS}")
    if args.command == "status" and args.once:
        parser.error("--once does not apply to status")
    if args.full and not args.once:
        parser.error("--full applies to --once only")
    if (args.json or args.check) and args.command != "status":
        parser.error(f"{'--json' if args.json else '--check'} applies to status only")
    if args.json and args.check:
        parser.error("--check prints one line; leave out --json")
    return args


def load_settings(args: argparse.Namespace) -> tuple[Config, Secrets]:
    try:
        config = load(resolve_path(args.config))
        secrets = load_secrets()
    except ConfigError as error:
        raise StartupError(str(error), EXIT_CONFIG) from None
    logs.configure(args.log_level, secrets=[secrets.github_token, secrets.db_password])
    warn_about(config, SYSTEM)
    return config, secrets


def warn_about(config: Config, clock: Clock) -> None:
    """Settings that are valid but almost surely not meant: said once, at start."""
    now = clock.now()
    bounded = [(repo.name, repo.since) for repo in config.repos]
    bounded += [(f"{org.name}/*", org.template.since) for org in config.orgs]
    for name, since in bounded:
        if since is not None and since > now:
            log.warning(
                "config.since_in_future",
                repo=name,
                since=since.date().isoformat(),
                message="no run can be that new: the history stays empty until then",
            )


def exit_on_signal(signum: int, _: FrameType | None) -> None:
    """Until the pass has started, a signal stops start-up at once (and a blocking
    connect with it), with the shell's status for that signal."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, exit_on_signal)
    signal.signal(signal.SIGINT, exit_on_signal)
    args = parse_args(argv)
    logs.configure(args.log_level)
    try:
        config, secrets = load_settings(args)
        if args.command == "status" and args.check:
            return check_health(config, secrets, SYSTEM)
        if args.command == "status":
            return show_status(config, secrets, SYSTEM, as_json=args.json)
        if args.once:
            open_for_writing(config, secrets)
            return run_once(config, secrets, SYSTEM, full=args.full)
        from poller.service.daemon import run_daemon

        return run_daemon(config, secrets, SYSTEM)
    except StartupError as error:
        print(f"shark-poller: error: {error}", file=sys.stderr)
        return error.code
    except MetricsError as error:
        print(f"shark-poller: error: {error}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
