"""A repository's metadata: the repository itself, its workflows, branches and commits.

Workflows and branches are mirrored as a set; a branch's commits are read newest first
down to the head stored last time, and a head that does not descend from the last one is
marked as force-pushed. ``repo_sync`` decides when this is due.
"""

from __future__ import annotations

import json
from datetime import datetime

import structlog

from poller.config.settings import RepoConfig
from poller.github.client import GitHub
from poller.rules import cursors, repo_rows, transform
from poller.rules.cursors import to_cursor
from poller.rules.plan import FIRST_RUN
from poller.store import moves as repo_moves
from poller.store import rows as store
from poller.store.models import Branch, Commit, Workflow
from poller.store.rows import Counts
from poller.store.state import RepoState
from poller.sync.report import TableCounts

log = structlog.get_logger(__name__)


def settings_fingerprint(repo: RepoConfig) -> str:
    """The repository's settings that shape what the metadata sync stores."""
    return json.dumps(
        {"docker_workflows": repo.docker_workflows, "branches": repo.branches}, sort_keys=True
    )


class MetadataSync:
    """Reads one repository's metadata once; ``counts`` says what it wrote."""

    def __init__(
        self,
        gh: GitHub,
        repo: RepoConfig,
        now: datetime,
        state: RepoState,
        pushed_at: str | None = None,
    ) -> None:
        self.gh = gh
        self.pushed_at = pushed_at  # its organisation's listing's; None for [[repos]]
        self.repo = repo
        self.name = repo.name
        self.now = now
        self.state = state
        self.counts: TableCounts = {model: Counts() for model in (Workflow, Branch, Commit)}

    def sync(self) -> TableCounts:
        info = self.gh.repository(self.name)
        if str(info.get("full_name", self.name)).lower() == self.name.lower():
            # (Asked by an old name, GitHub redirects: ``repo_sync`` follows that move.)
            self.adopt_history(int(info["id"]))
        created = transform.parse_time(info.get("created_at")) or FIRST_RUN
        self.state.save({cursors.REPO_CREATED: to_cursor(created)}, self.now)
        self.sync_workflows()
        heads = self.sync_branches()
        default_branch = info.get("default_branch")
        for branch in dict.fromkeys([default_branch, *self.repo.branches]):
            if branch is None:
                continue
            if branch not in heads:
                log.warning("sync.branch_missing", branch=branch)
                continue
            self.sync_commits(branch, heads[branch])
        read = {
            cursors.REPO_METADATA: to_cursor(self.now),
            cursors.REPO_SETTINGS: settings_fingerprint(self.repo),
        }
        if self.pushed_at is not None:
            read[cursors.REPO_PUSHED_AT] = self.pushed_at
        self.state.save(read, self.now)
        return self.counts

    def adopt_history(self, repository_id: int) -> None:
        """History stored under another name of this repository comes here, before any
        run is listed: an organisation's renamed repository continues where it was."""
        adopted = repo_moves.adopt(self.name, repository_id, self.now)
        if adopted is not None:
            self.state.reload()
            old, rows = adopted
            log.info("sync.repo_history_moved", old=old, new=self.name, rows=rows)

    def sync_workflows(self) -> None:
        patterns = self.repo.docker_workflows
        rows = [
            repo_rows.workflow_row(item, self.name, patterns)
            for item in self.gh.workflows(self.name)
        ]
        self.counts[Workflow].add(store.mirror_workflows(self.name, rows))

    def sync_branches(self) -> dict[str, str | None]:
        rows = [repo_rows.branch_row(item, self.name) for item in self.gh.branches(self.name)]
        self.counts[Branch].add(store.mirror_branches(self.name, rows))
        return {row["name"]: row["commithash"] for row in rows}

    def sync_commits(self, branch: str, head: str | None) -> None:
        """New commits of ``branch``, newest first, down to the head we saw last time."""
        resource = cursors.branch_commits(branch)
        last_head = self.state.get(resource)
        if head is not None and head == last_head:
            return
        taken = 0
        new_head: str | None = None
        # How the walk ended: at the last head (a fast-forward), at a bound, or at the
        # root of the history without meeting the last head (a force-push).
        met_last_head = cut_short = False
        for page in self.gh.commit_pages(self.name, branch):
            self.gh.stop.check()
            rows = []
            done = not page
            for item in page:
                new_head = new_head or item["sha"]
                row = repo_rows.commit_row(item, self.name)
                met_last_head = item["sha"] == last_head
                cut_short = taken >= self.repo.max_commits or bool(
                    self.repo.since and row["time"] and row["time"] < self.repo.since
                )
                done = met_last_head or cut_short
                if done:
                    break
                rows.append(row)
                taken += 1
            # The branch's cursor moves only with its last page: until then, a crash
            # means the next pass walks the same commits again, which writes nothing.
            positions = {resource: new_head} if done and new_head else {}
            saved = store.save_branch_commits(self.name, rows, positions, self.now)
            self.state.saved(positions)
            self.counts[Commit].add(saved)
            if done:
                break
        else:
            if new_head is not None:
                self.state.save({resource: new_head}, self.now)
        if last_head is not None and new_head is not None and not met_last_head:
            self.mark_force_push(branch, last_head, new_head, cut_short=cut_short)

    def mark_force_push(
        self, branch: str, last_head: str, new_head: str, *, cut_short: bool
    ) -> None:
        """``commits.forced`` on the new head when it does not descend from the last one.
        A walk that reached the root without meeting the last head proves it; one cut
        short by ``max_commits`` or ``since`` asks GitHub's compare (one request)."""
        descends = self.gh.descends(self.name, last_head, new_head) if cut_short else False
        if descends is False:
            log.info("sync.branch_force_pushed", branch=branch, was=last_head, now=new_head)
            store.mark_forced(self.name, new_head)
