"""Progress of a long pass: a bar on a terminal, timed log events otherwise.

Both count what is fetched as it arrives (runs listed, jobs requests, all requests), not
only what a committed page stored, so a long first page shows movement at once.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import ClassVar, Protocol

import structlog
from tqdm import tqdm

from poller.clock import Clock

log = structlog.get_logger(__name__)


# A pseudo-terminal with no size (``script -c``, some CI runners and SSH sessions) says it
# is 0 by 0: tqdm would trim the bar to no columns, and hide it below row 0.
SIZELESS_COLUMNS, SIZELESS_ROWS = 100, 50


class Progress(Protocol):
    def advance(self, *, listed: int = 0, jobs: int = 0, stored: int = 0) -> None: ...
    def expect(self, more: int) -> None: ...
    def close(self) -> None: ...


class NoProgress:
    def advance(self, *, listed: int = 0, jobs: int = 0, stored: int = 0) -> None:
        pass

    def expect(self, more: int) -> None:
        pass

    def close(self) -> None:
        pass


class Counters:
    def __init__(self) -> None:
        self.listed = self.jobs = self.stored = 0

    def add(self, listed: int, jobs: int, stored: int) -> None:
        self.listed += listed
        self.jobs += jobs
        self.stored += stored


class BarProgress:
    """A tqdm bar per repository. It counts runs fetched (one jobs request each: what a
    backfill spends its time on), with the runs listed and stored beside it."""

    # Repositories sync several at once; each bar keeps a terminal line of its own.
    lines: ClassVar[set[int]] = set()
    lines_lock = threading.Lock()

    def __init__(self, repo: str, requests: Callable[[], int]) -> None:
        self.requests = requests
        self.counters = Counters()
        with self.lines_lock:
            self.line = min(set(range(len(self.lines) + 1)) - self.lines)
            self.lines.add(self.line)
        size = terminal_size()
        self.bar = tqdm(
            desc=repo,
            unit=" runs",
            file=sys.stderr,
            leave=True,
            mininterval=0.5,
            position=self.line,
            ncols=None if size.columns else SIZELESS_COLUMNS,
            nrows=None if size.lines else SIZELESS_ROWS,
        )

    def advance(self, *, listed: int = 0, jobs: int = 0, stored: int = 0) -> None:
        self.counters.add(listed, jobs, stored)
        self.bar.set_postfix(
            listed=self.counters.listed,
            stored=self.counters.stored,
            requests=self.requests(),
            refresh=False,
        )
        self.bar.update(jobs)

    def expect(self, more: int) -> None:
        """``more`` runs are still to fetch (a backfill's listing says how many): the
        bar gets a total, and so an ETA."""
        self.bar.total = self.bar.n + more
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
        with self.lines_lock:
            self.lines.discard(self.line)


class LogProgress:
    """A ``sync.progress`` event every ``every_seconds`` while the repository syncs, from a
    timer: journald gets no bars, and a pass can sit on one slow request for a while."""

    def __init__(
        self, repo: str, requests: Callable[[], int], every_seconds: float, clock: Clock
    ) -> None:
        self.repo = repo
        self.clock = clock
        self.requests = requests
        self.every = every_seconds
        self.counters = Counters()
        self.expected: int | None = None  # runs to fetch in all, once a listing says
        self.started = clock.monotonic()
        self.closed = threading.Event()
        self.timer = threading.Thread(target=self._tick, name="progress", daemon=True)
        self.timer.start()

    def advance(self, *, listed: int = 0, jobs: int = 0, stored: int = 0) -> None:
        self.counters.add(listed, jobs, stored)

    def expect(self, more: int) -> None:
        self.expected = self.counters.jobs + more

    def _tick(self) -> None:
        while not self.closed.wait(self.every):
            seconds = self.clock.monotonic() - self.started
            log.info(
                "sync.progress",
                repo=self.repo,  # the timer's thread does not share the pass's context
                runs_listed=self.counters.listed,
                runs_stored=self.counters.stored,
                jobs_fetched=self.counters.jobs,
                jobs_expected=self.expected,
                requests=self.requests(),
                seconds=round(seconds, 1),
            )

    def close(self) -> None:
        self.closed.set()


def terminal_size() -> os.terminal_size:
    """The size of the terminal on stderr; 0 by 0 when it has none."""
    try:
        return os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError):
        return os.terminal_size((0, 0))


def for_terminal(
    interactive: bool, every_seconds: float, clock: Clock
) -> Callable[[str, Callable[[], int]], Progress]:
    """Bars on a terminal (tqdm keeps its own time), else a log line every ``every_seconds``
    that says how long the sync has taken on ``clock``."""
    if interactive:
        return BarProgress

    def make(repo: str, requests: Callable[[], int]) -> Progress:
        return LogProgress(repo, requests, every_seconds, clock)

    return make
