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
import dataclasses
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

import peewee
import structlog

from poller import shutdown
from poller.clock import SYSTEM
from poller.config.loader import (
    DB_PASSWORD_ENV,
    ConfigError,
    load,
    load_secrets,
    resolve_path,
)
from poller.config.settings import (
    Config,
    RepoConfig,
    Secrets,
)
from poller.github import pool
from poller.service import logs, status
from poller.service.exposition import Exporter, MetricsError
from poller.store import mysql, units
from poller.store.models import DatabaseMissing, SyncStatus, open_database, redact_url
from poller.store.schema import ensure_schema
from poller.sync import progress
from poller.sync.engine import Engine
from poller.sync.options import PassOptions
from poller.sync.report import RepoReport

EXIT_OK, EXIT_REPO_FAILED, EXIT_CONFIG, EXIT_DATABASE = 0, 1, 2, 3
EXIT_SKIPPED = 75  # sysexits' EX_TEMPFAIL: another process had a repository; try later
EXIT_CRITICAL, EXIT_UNKNOWN = 2, 3  # status --check, as Nagios plugins exit
# status asks GitHub for the rate limit left, and must not wait long for it.
STATUS_GITHUB_TIMEOUT_SECONDS = 3.0

log = structlog.get_logger("poller")


class StartupError(Exception):
    def __init__(self, message: str, code: int, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        # The database is not reachable yet, which waiting can fix.
        self.retryable = retryable


DATABASE_WAIT_MAX_SECONDS = 60.0


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
        default=os.environ.get("SHARK_POLLER_LOG_LEVEL", "info").lower(),
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
    warn_about(config)
    return config, secrets


def warn_about(config: Config) -> None:
    """Settings that are valid but almost surely not meant: said once, at start."""
    now = SYSTEM.now()
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


def open_for_writing(config: Config, secrets: Secrets) -> None:
    """Open the database, creating or upgrading its tables: the poller is the writer."""
    db = open_database(
        config.database.url,
        secrets.db_password,
        autoconnect=False,
        timeout_seconds=config.github.timeout_seconds * 2,
    )
    try:
        with db.connection_context():
            ensure_schema(db)
    except (peewee.PeeweeException, OSError) as error:
        code = mysql.error_code(error)
        hint = database_hint(db, error, secrets)
        raise StartupError(
            f"database {redact_url(config.database.url)}: {error}{hint}",
            EXIT_DATABASE,
            retryable=isinstance(error, peewee.OperationalError) and code in mysql.UNREACHABLE,
        ) from None


def database_hint(db: peewee.Database, error: Exception, secrets: Secrets) -> str:
    """What to do about a database error, where the error alone does not say it."""
    code = mysql.error_code(error)
    if (
        isinstance(db, peewee.MySQLDatabase)
        and code == mysql.ACCESS_DENIED
        and not secrets.db_password
    ):
        return f" (no password was given: set {DB_PASSWORD_ENV}, or the db_password credential)"
    text = str(error)
    if isinstance(db, peewee.SqliteDatabase) and ("unable to open" in text or "readonly" in text):
        where = Path(db.database).resolve()
        return (
            f" (the poller must be able to write {where.parent}: SQLite keeps "
            f"{where.name}-wal and {where.name}-shm beside the database; make the directory "
            "writable, or point [database] url elsewhere)"
        )
    return ""


def wait_for_database(config: Config, secrets: Secrets) -> None:
    """Open the database for the daemon, waiting (1 s, doubling to a minute) while it is
    unreachable, and telling systemd why (``STATUS=``). A signal ends the wait as it ends
    start-up (``exit_on_signal``)."""
    from poller.service.daemon import notify_systemd

    delay, waited = 1.0, False
    while True:
        try:
            open_for_writing(config, secrets)
        except StartupError as error:
            if not error.retryable:
                raise
            log.warning("daemon.waiting_for_database", error=str(error), retry_in=delay)
            notify_systemd(f"STATUS=Waiting for the database: {error}")
            time.sleep(delay)
            delay, waited = min(delay * 2, DATABASE_WAIT_MAX_SECONDS), True
            continue
        if waited:
            notify_systemd("STATUS=")
        return


def open_for_reading(config: Config, secrets: Secrets) -> None:
    """Open an existing database read-only; status never creates or upgrades anything."""
    where = f"database {redact_url(config.database.url)}"
    try:
        db = open_database(config.database.url, secrets.db_password, read_only=True)
        with db.connection_context():
            if not db.table_exists(SyncStatus._meta.table_name):
                raise StartupError(
                    f"{where} has no shark-poller tables yet: run `python -m poller --once`",
                    EXIT_DATABASE,
                )
    except DatabaseMissing as error:
        raise StartupError(str(error), EXIT_DATABASE) from None
    except peewee.PeeweeException as error:
        raise StartupError(f"{where}: {error}", EXIT_DATABASE) from None


def show_status(config: Config, secrets: Secrets, *, as_json: bool) -> int:
    open_for_reading(config, secrets)
    # A quick, single try: status reads the database, and the rate limit is a bonus.
    quick = dataclasses.replace(
        config.github,
        timeout_seconds=min(config.github.timeout_seconds, STATUS_GITHUB_TIMEOUT_SECONDS),
        max_retries=0,
    )
    github = pool.GitHubPool(dataclasses.replace(config, github=quick), secrets.github_token)
    try:
        report = status.collect(config, github)
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
    unwell = any(repo["last_error"] or not repo["last_success"] for repo in report["repos"])
    return EXIT_REPO_FAILED if unwell else EXIT_OK


def check_health(config: Config, secrets: Secrets) -> int:
    """``status --check``: Nagios's way, one line and 0 (OK), 2 (CRITICAL) or, when the
    database cannot be read, 3 (UNKNOWN). It asks GitHub nothing."""
    try:
        open_for_reading(config, secrets)
        healthy, line = status.health(config, SYSTEM.now())
    except StartupError as error:
        print(f"UNKNOWN: {error}")
        return EXIT_UNKNOWN
    except peewee.PeeweeException as error:
        print(f"UNKNOWN: cannot read the database: {error}")
        return EXIT_UNKNOWN
    print(line)
    return EXIT_OK if healthy else EXIT_CRITICAL


def run_once(config: Config, secrets: Secrets, *, full: bool = False) -> int:
    """One catch-up pass over every repository, on the engine the daemon uses. It finishes
    any backfill. Unless ``full``, it reads the share of the sweep due since each
    repository's last pass, and metadata when due, as the daemon would: from the state in
    the database, so cron's cadence, whatever it is, costs what the daemon's would."""
    with Engine.start(config, secrets) as engine:
        options = PassOptions.once(
            config.sync,
            full=full,
            progress=progress.for_terminal(sys.stderr.isatty(), config.sync.progress_seconds),
        )

        def work() -> None:
            with units.session():
                engine.run_all(options)

        shutdown.install(lambda received: log.info("pass.stopping", signal=received.name))
        finished = shutdown.run_in_worker(work, "pass")
        reports = engine.unlisted + engine.reports
        if finished:
            Exporter(config, engine.github).write()  # cron's metrics, for node_exporter
        if shutdown.requested.is_set():
            interrupted(engine.repos, reports, finished=finished)
            return shutdown.exit_status()
        return pass_done(reports, engine)


def interrupted(repos: list[RepoConfig], reports: list[RepoReport], *, finished: bool) -> None:
    """Say what a stopped ``--once`` left undone; exit at once if its unit is hung."""
    done = {report.repo for report in reports if not report.stopped}
    received = shutdown.received()
    log.warning(
        "pass.interrupted",
        signal=received.name if received else None,
        unfinished=[repo.name for repo in repos if repo.name not in done],
        failed=[report.repo for report in reports if report.error],
        # A unit of work that did not reach its boundary in time rolls back.
        abandoned_unit=not finished,
    )
    if not finished:
        shutdown.abandon(shutdown.exit_status())


def pass_done(reports: list[RepoReport], engine: Engine) -> int:
    failed = [report.repo for report in reports if report.error]
    skipped = [report.repo for report in reports if report.skipped]
    stats = engine.github.stats
    log.info(
        "pass.done",
        repos=len(reports),
        failed=failed,
        skipped=skipped,
        requests_spent=stats.spent,
        requests_not_modified=stats.not_modified,
        rate_limit_remaining=stats.rate_remaining,
        by_credential=engine.github.summary(),
    )
    if failed:
        return EXIT_REPO_FAILED
    return EXIT_SKIPPED if skipped else EXIT_OK


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
            return check_health(config, secrets)
        if args.command == "status":
            return show_status(config, secrets, as_json=args.json)
        if args.once:
            open_for_writing(config, secrets)
        else:
            try:
                wait_for_database(config, secrets)
            except SystemExit:
                # Stopped while waiting: a daemon's stop, which systemd expects to be 0.
                log.info("daemon.stopped", clean=True, waiting_for_database=True)
                return EXIT_OK
    except StartupError as error:
        print(f"shark-poller: error: {error}", file=sys.stderr)
        return error.code
    if args.once:
        return run_once(config, secrets, full=args.full)
    from poller.service.daemon import run_daemon

    try:
        return run_daemon(config, secrets)
    except MetricsError as error:
        print(f"shark-poller: error: {error}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
