"""A repository's sync state, as one object: its cursors and when its last pass ran.

A pass loads it once (``load_state``), plans and reads from it, and writes each new
position through it, in the unit of work that stores the rows the position covers
(``save``; or ``saved`` after a unit such as ``save_run_page`` that wrote both). So the
store is entered to load and to save, never to look one cursor up, and this copy stays
what the database holds: one process writes a repository at a time (its lock).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from poller.store import rows as store
from poller.store.units import unit_of_work


@dataclass
class RepoState:
    repo: str
    cursors: dict[str, str] = field(default_factory=dict)
    last_pass: datetime | None = None

    def get(self, resource: str) -> str | None:
        return self.cursors.get(resource)

    def save(self, positions: Mapping[str, str], now: datetime) -> None:
        """Write ``positions``, in a unit of their own or in the caller's."""
        store.set_cursors(self.repo, dict(positions), now)
        self.saved(positions)

    def saved(self, positions: Mapping[str, str]) -> None:
        """``positions`` were written with the rows they cover, by another unit."""
        self.cursors.update(positions)

    def reload(self) -> None:
        """Read the cursors again: a move brought another name's history, cursors and
        all, under this one (``moves.adopt``)."""
        self.cursors = store.get_cursors(self.repo)


@unit_of_work
def load_state(repo: str) -> RepoState:
    """``repo``'s cursors and last pass, in one unit of work."""
    return RepoState(repo, store.get_cursors(repo), store.last_pass(repo))
