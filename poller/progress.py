"""Progress of a long pass: a bar on a terminal, timed log events otherwise.

Both count what is fetched as it arrives (runs listed, jobs requests, all requests), not
only what a committed page stored, so a long first page shows movement at once.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import ClassVar, Protocol

import structlog
from tqdm import tqdm

log = structlog.get_logger(__name__)


class Progress(Protocol):
    def advance(self, *, listed: int = 0, jobs: int = 0, stored: int = 0) -> None: ...
    def close(self) -> None: ...


class NoProgress:
    def advance(self, *, listed: int = 0, jobs: int = 0, stored: int = 0) -> None:
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
        self.bar = tqdm(
            desc=repo,
            unit=" runs",
            file=sys.stderr,
            leave=True,
            mininterval=0.5,
            position=self.line,
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

    def close(self) -> None:
        self.bar.close()
        with self.lines_lock:
            self.lines.discard(self.line)


class LogProgress:
    """A ``sync.progress`` event every ``every_seconds`` while the repository syncs, from a
    timer: journald gets no bars, and a pass can sit on one slow request for a while."""

    def __init__(self, repo: str, requests: Callable[[], int], every_seconds: float) -> None:
        self.repo = repo
        self.requests = requests
        self.every = every_seconds
        self.counters = Counters()
        self.started = time.monotonic()
        self.closed = threading.Event()
        self.timer = threading.Thread(target=self._tick, name="progress", daemon=True)
        self.timer.start()

    def advance(self, *, listed: int = 0, jobs: int = 0, stored: int = 0) -> None:
        self.counters.add(listed, jobs, stored)

    def _tick(self) -> None:
        while not self.closed.wait(self.every):
            seconds = time.monotonic() - self.started
            log.info(
                "sync.progress",
                repo=self.repo,  # the timer's thread does not share the pass's context
                runs_listed=self.counters.listed,
                runs_stored=self.counters.stored,
                jobs_fetched=self.counters.jobs,
                requests=self.requests(),
                seconds=round(seconds, 1),
            )

    def close(self) -> None:
        self.closed.set()


def for_terminal(
    interactive: bool, every_seconds: float
) -> Callable[[str, Callable[[], int]], Progress]:
    if interactive:
        return BarProgress

    def make(repo: str, requests: Callable[[], int]) -> Progress:
        return LogProgress(repo, requests, every_seconds)

    return make
