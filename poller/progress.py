"""Progress of a long pass: a bar on a terminal, periodic log events otherwise."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from typing import Protocol

import structlog
from tqdm import tqdm

log = structlog.get_logger(__name__)


class Progress(Protocol):
    def advance(self, runs: int) -> None: ...
    def close(self) -> None: ...


class NoProgress:
    def advance(self, runs: int) -> None:
        pass

    def close(self) -> None:
        pass


class BarProgress:
    """A tqdm bar per repository, as the legacy backfill script showed."""

    def __init__(self, repo: str) -> None:
        self.bar = tqdm(desc=repo, unit=" runs", file=sys.stderr, leave=True)

    def advance(self, runs: int) -> None:
        self.bar.update(runs)

    def close(self) -> None:
        self.bar.close()


class LogProgress:
    """A ``sync.progress`` event at most every ``every_seconds``: journald gets no bars."""

    def __init__(self, repo: str, every_seconds: float = 10.0) -> None:
        self.every = every_seconds
        self.runs = 0
        self.started = self.last = time.monotonic()

    def advance(self, runs: int) -> None:
        self.runs += runs
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            log.info(
                "sync.progress",
                runs=self.runs,
                runs_per_second=round(self.runs / (now - self.started), 1),
            )

    def close(self) -> None:
        pass


def for_terminal(interactive: bool, every_seconds: float) -> Callable[[str], Progress]:
    if interactive:
        return BarProgress
    return functools.partial(LogProgress, every_seconds=every_seconds)
