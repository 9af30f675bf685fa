"""Property: any sequence of GitHub changes, interleaved with passes, ends in the same
database as one from-scratch sync of the final state.

The passes run in-process (``Engine.run_all``) for speed, against the same fake GitHub over
HTTP, the real PyGithub client and real databases that the subprocess tests use.

The generated changes stay within what the design promises to see: runs may show up
late by up to the lookback window, and a run anywhere in the re-run horizon may be re-run
(whole, or its failed jobs only), and finish, between two passes. Jobs are as real fleets
make them: IREE's runner labels, a GPU label that names no OS, skipped jobs, and jobs
that pass while the run fails. Passes re-read half the horizon's older windows each, as
the daemon spreads its sweep, so the sweep's rotation is part of what is checked: the
sequence ends with two passes, one full sweep.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fake_github import FakeGitHub, JobSpec
from poller.clock import SYSTEM
from poller.config import loader as config_module
from poller.github.pool import connect
from poller.shutdown import Stop
from poller.store.locks import NoLocks
from poller.store.schema import ensure_schema
from poller.sync.engine import Engine
from poller.sync.options import PassOptions
from support import PollerSetup, mirror

LABELS = [
    ["ubuntu-22.04"],
    ["windows-2022"],
    ["macos-14"],
    ["self-hosted", "Linux"],
    JobSpec(["azure-windows-scale"], name="windows_x64_msvc"),
    JobSpec(["ah-ubuntu_22_04-c7g_4x-50"], name="linux_arm64_clang"),
    JobSpec(["nodai-amdgpu-mi300-x86-64"], name="test_mi300", queue_seconds=900),
    JobSpec([], name="publish_website", conclusion="skipped"),
    JobSpec(["ubuntu-24.04"], name="lint", conclusion="success"),
]
EXAMPLES = itertools.count()

new_run = st.tuples(
    st.just("run"),
    st.integers(0, 1),
    st.sampled_from(["completed", "in_progress", "queued"]),
    st.integers(1, 2 * 24 * 60),  # minutes ago: within the lookback
    st.lists(st.sampled_from(LABELS), max_size=3),
    st.sampled_from(["success", "failure"]),
)
change = st.one_of(
    new_run,
    st.tuples(st.just("complete"), st.integers(0, 50), st.sampled_from(["success", "failure"])),
    st.tuples(st.just("rerun"), st.integers(0, 50), st.booleans()),
    st.tuples(st.just("rerun_failed"), st.integers(0, 50), st.booleans()),
    st.tuples(st.just("commit"), st.sampled_from(["main", "dev"])),
    st.tuples(st.just("branch"), st.integers(0, 3)),
    st.tuples(st.just("delete_branch"), st.integers(0, 3)),
    st.tuples(st.just("rename"), st.integers(0, 1)),
    st.just(("pass",)),
)


def apply(fake: FakeGitHub, repo, workflows: list[int], step: tuple) -> None:
    """Apply one change to the fake GitHub."""
    now = datetime.now(UTC).replace(microsecond=0)
    runs = sorted(repo.runs)
    kind = step[0]
    if kind == "run":
        _, workflow, status, minutes, labels, conclusion = step
        fake.add_run(
            repo,
            workflows[workflow],
            created=now - timedelta(minutes=minutes),
            status=status,
            conclusion=conclusion,
            labels=labels,
        )
    elif kind == "complete" and runs:
        run = runs[step[1] % len(runs)]
        if repo.runs[run]["status"] != "completed":
            fake.complete_run(repo, run, conclusion=step[2])
    elif kind == "rerun" and runs:
        run = runs[step[1] % len(runs)]
        if repo.runs[run]["status"] == "completed":
            # Finished at once (a quick re-run between two passes), or left running.
            fake.rerun(repo, run, at=now, conclusion="success" if step[2] else None)
    elif kind == "rerun_failed" and runs:
        run = runs[step[1] % len(runs)]
        if repo.runs[run]["status"] == "completed" and repo.runs[run]["conclusion"] == "failure":
            fake.rerun_failed_jobs(repo, run, at=now, conclusion="success" if step[2] else None)
    elif kind == "commit" and step[1] in repo.branches:
        fake.add_commit(repo, step[1], message=f"change {len(repo.commits)} ✨")
    elif kind == "branch":
        fake.create_branch(repo, f"topic-{step[1]}")
    elif kind == "delete_branch" and f"topic-{step[1]}" in repo.branches:
        fake.delete_branch(repo, f"topic-{step[1]}")
    elif kind == "rename":
        workflow = repo.workflows[workflows[step[1]]]
        workflow["name"] = workflow["name"] + "+"


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(change, min_size=1, max_size=12))
def test_incremental_passes_equal_a_from_scratch_sync(
    steps, fake: FakeGitHub, poller: PollerSetup, make_database
):
    fake.budget.limit = fake.budget.remaining = 10**9  # every example shares the fake
    example = next(EXAMPLES)
    name = f"prop/r{example}"
    repo = fake.add_repo(name)
    workflows = [fake.add_workflow(repo, "CI"), fake.add_workflow(repo, "Nightly")]
    fake.add_commit(repo, "main", message="root")
    fake.create_branch(repo, "dev")
    now = datetime.now(UTC).replace(microsecond=0)
    # History across the re-run horizon (30 days), older than the lookback, some unfinished.
    for days in (3, 6, 10, 17, 24, 29):
        fake.add_run(
            repo,
            workflows[0],
            created=now - timedelta(days=days),
            status="in_progress" if days == 6 else "completed",
        )

    poller.repos = [{"name": name}]
    # Both sweeps hourly, so that two half-hour passes at the end re-read the whole horizon.
    poller.sync = {"lookback_days": 2, "rerun_sweep_old_minutes": 60}
    settings_ = config_module.load(poller.write())
    engine = Engine(settings_, connect(settings_, poller.token, SYSTEM, Stop()), NoLocks())
    incremental, scratch = make_database(), make_database()
    try:
        with incremental.open() as db:
            ensure_schema(db)
            assert not any(r.error for r in engine.run_all())
            half_sweep = PassOptions(sweep_minutes=30)
            for step in [*steps, ("pass",), ("pass",)]:
                if step == ("pass",):
                    assert not any(r.error for r in engine.run_all(half_sweep))
                else:
                    apply(fake, repo, workflows, step)
        with scratch.open() as db:
            ensure_schema(db)
            assert not any(r.error for r in engine.run_all())
    finally:
        engine.close()
    assert mirror(incremental) == mirror(scratch)
