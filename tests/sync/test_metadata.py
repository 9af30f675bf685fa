"""A repository's metadata: workflows and branches mirrored as sets, a branch's commits
walked down to the head seen last time, and a head that does not descend from it marked
as force-pushed, asking GitHub's compare only when the walk was cut short."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import peewee

from fake_github import FakeGitHub, FakeRepo
from poller.config.settings import GitHubConfig, RepoConfig
from poller.github.client import GitHub
from poller.rules import cursors
from poller.store import rows as store
from poller.store.models import Branch, Commit, Workflow
from poller.store.state import load_state
from poller.sync.metadata import MetadataSync

NOW = datetime.now(UTC).replace(microsecond=0)
NAME = "octo/demo"


def read(fake: FakeGitHub, repo: RepoConfig | None = None) -> dict[str, tuple[int, int, int]]:
    gh = GitHub(GitHubConfig(api_url=fake.url, max_retries=0), None)
    state = load_state(NAME)
    counts = MetadataSync(gh, repo or RepoConfig(NAME), NOW.replace(tzinfo=None), state).sync()
    return {m._meta.table_name: (c.inserted, c.updated, c.deleted) for m, c in counts.items()}


def history(fake: FakeGitHub, commits: int) -> FakeRepo:
    repo = fake.add_repo(NAME)
    fake.add_workflow(repo, "CI")
    for i in range(commits):
        fake.add_commit(repo, "main", when=NOW - timedelta(hours=commits - i))
    return repo


def test_the_first_read_mirrors_workflows_branches_and_the_default_branch(
    fake: FakeGitHub, sqlite_db: peewee.Database
):
    repo = history(fake, 3)
    fake.create_branch(repo, "release")
    assert read(fake) == {"workflows": (1, 0, 0), "branches": (2, 0, 0), "commits": (3, 0, 0)}
    assert store.get_cursor(NAME, cursors.branch_commits("main")) == repo.branches["main"]
    assert store.get_cursor(NAME, cursors.REPO_CREATED) == "2020-01-01T00:00:00"
    assert {b.name for b in Branch.select()} == {"main", "release"}


def test_a_fast_forward_reads_only_the_new_commits(fake: FakeGitHub, sqlite_db: peewee.Database):
    repo = history(fake, 3)
    read(fake)
    fake.add_commit(repo, "main")
    fake.add_commit(repo, "main")
    fake.reset_counts()
    assert read(fake)["commits"] == (2, 0, 0)
    assert fake.count("/commits", rate_limited=False) == 1  # one page, no compare
    assert not Commit.select().where(Commit.forced).exists()


def test_a_force_push_is_marked_on_the_new_head(fake: FakeGitHub, sqlite_db: peewee.Database):
    repo = history(fake, 3)
    read(fake)
    root = next(sha for sha, c in repo.commits.items() if c.parent is None)
    rewritten = fake.add_commit(repo, "main", onto=root, message="rewritten")
    fake.reset_counts()
    read(fake)
    # The walk reached the root without meeting the old head: that proves it, for free.
    assert fake.count("/compare/", rate_limited=False) == 0
    assert [c.hash for c in Commit.select().where(Commit.forced)] == [rewritten]


def test_a_walk_cut_short_asks_githubs_compare(fake: FakeGitHub, sqlite_db: peewee.Database):
    repo = history(fake, 3)
    bounded = RepoConfig(NAME, max_commits=2)
    read(fake, bounded)
    head = repo.branches["main"]
    for _ in range(3):  # more than max_commits, on top of the old head: a fast-forward
        fake.add_commit(repo, "main")
    fake.reset_counts()
    read(fake, bounded)
    assert fake.count("/compare/", rate_limited=False) == 1
    assert not Commit.select().where(Commit.forced).exists()
    assert store.get_cursor(NAME, cursors.branch_commits("main")) != head


def test_a_configured_branch_that_is_gone_is_skipped(fake: FakeGitHub, sqlite_db: peewee.Database):
    history(fake, 1)
    counts = read(fake, RepoConfig(NAME, branches=("release/9",)))
    assert counts["commits"] == (1, 0, 0)  # main's; the missing branch fails nothing
    assert Workflow.select().count() == 1
