"""structlog set-up: JSON lines for journald, colours on a terminal, no secrets anywhere.

Logs go to stderr so that ``status --json`` can own stdout. The stdlib loggers of PyGithub,
urllib3, APScheduler and peewee are routed through the same processors, including the
one that masks the token and the database password wherever they might appear.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger
from tqdm import tqdm

LEVELS = ("debug", "info", "warning", "error")
MASK = "***"
# GitHub's token formats (ghp_ personal, ghs_ app installation, gho_/ghu_/ghr_ OAuth, and
# fine-grained github_pat_). An installation token is minted at run time, so it can't be
# listed in advance; PyGithub's debug log prints the response that carries it.
GITHUB_TOKEN_PATTERN = re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")


class SecretMasker:
    """Replaces every occurrence of a secret in an event's values, nested ones included."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        # Very short values would mask innocent text and reveal little; real secrets are long.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def mask(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self.secrets:
                value = value.replace(secret, MASK)
            return GITHUB_TOKEN_PATTERN.sub(MASK, value)
        if isinstance(value, dict):
            return {key: self.mask(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.mask(item) for item in value)
        return value

    def __call__(self, _: WrappedLogger, __: str, event: EventDict) -> EventDict:
        return {key: self.mask(value) for key, value in event.items()}


# The per-table counts of sync.repo_done, as short marks on a terminal.
COUNT_MARKS = (("inserted", "+"), ("updated", "~"), ("deleted", "-"))


def compact_for_console(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """On a terminal, ``sync.repo_done`` is one line of what matters: what changed
    (``workflowruns +3 ~1, jobs +9``), requests, seconds, and anything unusual. The
    complete event stays in the JSON lines, and its counts at debug."""
    if event.get("event") != "sync.repo_done":
        return event
    counts = event.pop("counts", None) or {}
    changed = []
    for table, figures in counts.items():
        marks = [f"{mark}{figures[key]}" for key, mark in COUNT_MARKS if figures.get(key)]
        if marks:
            changed.append(f"{table} {' '.join(marks)}")
    event["changed"] = ", ".join(changed) or "nothing"
    for key in ("backfill_pending", "jobs_os_unknown", "error", "rate_limit_remaining"):
        if not event.get(key):
            event.pop(key, None)
    return event


def one_line(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """On a terminal, a library's multi-line message (urllib3's and PyGithub's debug
    lines carry headers and bodies) stays one line: its fragments would otherwise read
    as lines of their own, with no time or level."""
    text = event.get("event")
    if isinstance(text, str) and "\n" in text:
        event["event"] = " ⏎ ".join(part for part in text.splitlines() if part.strip())
    return event


class BarSafeHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """On a terminal, each line is written through tqdm, which lifts the progress bars
    off the screen, writes the line, and draws them again below it: a bar and a log line
    never share a line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except Exception:  # as logging.StreamHandler does: never raise from a log call
            self.handleError(record)


def with_repo(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Every event has a ``repo`` key, null outside a repository's sync, so a journal
    query can always filter on it."""
    event.setdefault("repo", None)
    return event


def configure(
    level: str = "info",
    *,
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
    pretty: bool | None = None,
) -> None:
    stream = stream or sys.stderr
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        with_repo,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    pretty = stream.isatty() if pretty is None else pretty
    handler = BarSafeHandler(stream) if pretty else logging.StreamHandler(stream)
    handler.setFormatter(formatter(shared, SecretMasker(secrets), pretty=pretty))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    tame_libraries(level)
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def formatter(
    shared: list[Processor], masker: SecretMasker, *, pretty: bool
) -> structlog.stdlib.ProcessorFormatter:
    """Ours and every library's records alike: masked, then pretty or JSON."""
    renderer: Processor
    if pretty:
        renderer = structlog.dev.ConsoleRenderer()
        # Render tracebacks to text before masking, and never with local variables.
        tail: list[Processor] = [
            structlog.processors.format_exc_info,
            compact_for_console,
            one_line,
        ]
    else:
        renderer = structlog.processors.JSONRenderer()
        # show_locals=False: a local variable in a traceback may hold the token.
        tail = [
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        ]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *tail,
            masker,
            renderer,
        ],
    )


def tame_libraries(level: str) -> None:
    """PyGithub's and APScheduler's loggers, through our pipeline and at our level."""
    # PyGithub sets up its own logger when imported: level INFO and a StreamHandler of its
    # own, which would print raw, unmasked lines beside ours and hide its debug output.
    import github  # noqa: F401  (so that its set-up has happened before we undo it)

    pygithub = logging.getLogger("github")
    pygithub.handlers.clear()
    pygithub.setLevel(logging.NOTSET)
    # APScheduler logs every wake-up at info ("Running job", "executed successfully"):
    # 11,500 lines a day at one wake-up per 15 s. Its warnings are a missed run and a
    # wake-up during a pass ("maximum number of running instances reached", every 15 s
    # of a long pass), which the daemon's listeners report as its own events. So only
    # its errors, unless debugging: a wake-up with nothing due logs nothing.
    quiet = logging.NOTSET if level == "debug" else logging.ERROR
    logging.getLogger("apscheduler").setLevel(quiet)
