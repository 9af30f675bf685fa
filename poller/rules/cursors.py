"""Every cursor a repository keeps in ``sync_cursors``, declared once.

Like tap-github's bookmarks, each is a name for what is synced and a position that says
how far. A cursor commits in the same transaction as the rows it covers, so it never
claims more than is stored. Positions are text: ISO times unless said otherwise.
"""

from __future__ import annotations

from datetime import datetime


def to_cursor(moment: datetime) -> str:
    return moment.isoformat()


def from_cursor(position: str | None) -> datetime | None:
    return datetime.fromisoformat(position) if position else None


# --- runs (plan.py, collect.py) ---
# Every run created in [RUNS_OLDEST, RUNS_NEWEST] is stored.
RUNS_NEWEST = "runs.newest"
RUNS_OLDEST = "runs.oldest"
# HISTORY_REACHED once the backfill has reached the repository's first run.
RUNS_HISTORY_START = "runs.history_start"
HISTORY_REACHED = "reached"
# Where the sweep of the re-run horizon's older windows goes on ("" to start over), and
# the fraction of a window it has earned toward the next slice (a decimal).
RUNS_SWEEP = "runs.sweep"
RUNS_SWEEP_CREDIT = "runs.sweep_credit"
# The same for the windows older than rerun_sweep_old_days, swept more slowly.
RUNS_OLD_SWEEP = "runs.old_sweep"
RUNS_OLD_SWEEP_CREDIT = "runs.old_sweep_credit"

# --- repository metadata (metadata.py, repo_sync.py) ---
REPO_CREATED = "repo.created"
# When the repository, workflows and branches were last read, and the organisation
# listing's pushed_at at that read.
REPO_METADATA = "repo.metadata"
REPO_PUSHED_AT = "repo.pushed_at"
# The settings that shape the metadata (docker_workflows, branches), as JSON, when it was
# last read: a changed config.toml re-reads it at the next pass, not metadata_minutes on.
REPO_SETTINGS = "repo.settings"
# Under a config entry's own name: where GitHub moved its repository (renamed or
# transferred), whose name its rows are now stored under (``repo_moves``).
REPO_MOVED_TO = "repo.moved_to"


def branch_commits(branch: str) -> str:
    """The head SHA a branch's commits were walked down to last time."""
    return f"commits:{branch}"


# --- OS of jobs (repo_sync.py, runners.py) ---
# The label map (JSON) the stored jobs' OSes were last resolved by.
RUNNER_OS_MAP = "runner_os.map"
# When listing the repository's, or its organisation's, self-hosted runners was refused.
REPO_RUNNERS_REFUSED = "runners.repo_refused"
ORG_RUNNERS_REFUSED = "runners.org_refused"
