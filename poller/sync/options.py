"""How a pass runs: what ``--once``, ``--once --full`` and the daemon each ask of it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from poller.config.settings import SyncConfig
from poller.sync.progress import NoProgress, Progress

ProgressFactory = Callable[[str, Callable[[], int]], Progress]


def no_progress(repo: str, requests: Callable[[], int]) -> Progress:
    return NoProgress()


@dataclass(frozen=True)
class PassOptions:
    """How a pass runs. ``backfill_budget`` of None means: finish the backfill.
    ``sweep_minutes`` is how many minutes of the re-run horizon's sweeps this pass does
    (``math.inf``: all of it, as ``--once --full`` does; the daemon's interval, so that
    each sweep period re-reads its windows once; None: the minutes since the repository's
    last pass, so that ``--once`` from cron sweeps as the daemon does, whatever its cadence).
    ``metadata_minutes`` is how stale repository metadata may be before it is re-read
    (None: every pass). ``progress`` makes a repository's progress report from its name
    and a count of the requests it has sent."""

    backfill_budget: int | None = None
    sweep_minutes: float | None = math.inf
    metadata_minutes: float | None = None
    progress: ProgressFactory = no_progress

    @classmethod
    def once(
        cls, settings: SyncConfig, *, full: bool = False, progress: ProgressFactory | None = None
    ) -> PassOptions:
        """``--once``: the whole backfill; unless ``full``, the sweep and the metadata
        paced from the database's state, as the daemon paces them."""
        return cls(
            backfill_budget=None,
            sweep_minutes=math.inf if full else None,
            metadata_minutes=None if full else settings.metadata_minutes,
            progress=progress or no_progress,
        )
