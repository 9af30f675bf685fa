"""A busy day of one repository, polled every 5 simulated minutes by the real pass logic.

Weeks of history are backfilled first. Then, on a simulated clock, runs are created,
queue, run and finish (success, failure or cancelled), the default branch moves, failed
recent runs are re-run and stay active across passes, runs 3 to 25 days old are re-run
and finish between two passes, and others as old are re-run and run 10 to 60 minutes, as
IREE's CI does. After every change the script knows what GitHub
shows; after every pass it reads what the database holds.

It prints, per setup (a personal token or a GitHub App, and the sweep: the default 60
minutes, with 360 past 7 days, or 0, the whole horizon every pass): rate-limited and
total requests per hour beside the theoretical minimum, how each kind of change was
mirrored (by the next pass, later, never) with its lag, and whether the database equals
GitHub's state at the end. The App's installation token lives one hour by the simulated
clock, and the fake's ETags are per token, as GitHub's are. The end comes the longest
sweep period after the day, with passes going on and no new activity, so a change of the
day's last hour is judged by the same rule as the others.

    scripts/busy-day [--hours 24] [--per-hour 24] [--history-days 28] [--old-reruns 18]
                     [--long-old-reruns 12]
                     [--setups token:60 app:60 token:60:cron app:60:cron token:0]

The theoretical minimum of rate-limited requests in a pass is one jobs listing per run
that changed since the previous pass, plus one listing page if anything changed: every
other request can be a free 304. Under tokens that change every hour, every URL costs a
point once per token, so the rotation minimum adds the fewest listing pages that cover
the re-run horizon (its runs ÷ 100), each as often as the sweep must read it: those of
the last ``rerun_sweep_old_days`` once an hour, the older ones once per
``rerun_sweep_old_minutes``.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import math
import os
import random
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fake_github import FakeGitHub, FakeRepo  # noqa: E402
from poller.clock import epoch  # noqa: E402
from poller.config import loader as config_module  # noqa: E402
from poller.config.settings import SyncConfig  # noqa: E402
from poller.github.pool import connect  # noqa: E402
from poller.service import logs  # noqa: E402
from poller.service.exposition import Exporter  # noqa: E402
from poller.shutdown import Stop  # noqa: E402
from poller.store import runs as run_store  # noqa: E402
from poller.store.locks import NoLocks  # noqa: E402
from poller.store.models import WorkflowRunAttempt  # noqa: E402
from poller.store.schema import ensure_schema  # noqa: E402
from poller.sync.engine import Engine  # noqa: E402
from poller.sync.options import PassOptions  # noqa: E402
from support import TOKEN, Database, FakeClock, PollerSetup, github_app  # noqa: E402

INTERVAL = timedelta(minutes=5)
OLD_DAYS = timedelta(days=SyncConfig.rerun_sweep_old_days)
REPO = "busy/repo"
LABELS = [["ubuntu-22.04"], ["windows-2022"], ["macos-14"], ["self-hosted", "Linux", "X64"]]
KINDS = (
    "completion",
    "recent re-run",
    "old re-run",
    "re-run past the old days",
    "long old re-run, while it runs",
    "long old re-run, its completion",
)
# A change that GitHub moves past before any pass could see it counts as never mirrored,
# not as superseded, for these: being seen while it runs is what they measure.
MUST_BE_SEEN = frozenset({"long old re-run, while it runs"})
# What today's (0.1) pass logic spent on this simulation, from the issue that asked for
# this benchmark: it re-lists the whole 2-day lookback and 5 status listings every pass.
PREVIOUS_LOGIC_PER_HOUR = "130-150"


@dataclass
class Change:
    kind: str
    run: int
    at: datetime
    expected: tuple[str, str | None, int]  # status, conclusion, attempt
    mirrored_at: datetime | None = None
    next_pass: bool = False
    superseded: bool = False


@dataclass(order=True)
class Event:
    at: datetime
    order: int
    action: str = field(compare=False)
    data: dict[str, Any] = field(compare=False, default_factory=dict)


def aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


class Simulation:
    def __init__(self, args: argparse.Namespace, fake: FakeGitHub, repo: FakeRepo) -> None:
        self.args = args
        self.fake = fake
        self.repo = repo
        self.random = random.Random(args.seed)
        self.workflows = [fake.add_workflow(repo, name) for name in ("CI", "Lint", "Docs")]
        self.events: list[Event] = []
        self.order = itertools.count()
        self.changes: list[Change] = []
        self.active: set[int] = set()

    def schedule(self, at: datetime, action: str, **data: Any) -> None:
        heapq.heappush(self.events, Event(at, next(self.order), action, data))

    # --- GitHub's history and activity ---

    def history(self, start: datetime, end: datetime, per_hour: float) -> None:
        moment = start
        while moment < end:
            moment += timedelta(hours=self.random.expovariate(per_hour))
            conclusion = self.random.choices(["success", "failure", "cancelled"], [8, 2, 1])[0]
            self.fake.add_run(
                self.repo,
                self.random.choice(self.workflows),
                created=aware(moment),
                conclusion=conclusion,
                labels=self.random.sample(LABELS, self.random.randint(1, 3)),
                queue_seconds=self.random.randint(10, 180),
                job_seconds=self.random.randint(300, 2400),
            )

    def plan(self, start: datetime, end: datetime) -> None:
        """Every change of the simulated day, in time order."""
        args, rnd = self.args, self.random
        moment = start
        while (moment := moment + timedelta(hours=rnd.expovariate(args.per_hour))) < end:
            self.schedule(moment, "new_run")
        moment = start
        while (moment := moment + timedelta(hours=rnd.expovariate(4))) < end:
            self.schedule(moment, "push")
        for _ in range(args.recent_reruns):
            self.schedule(start + (end - start) * rnd.random(), "recent_rerun")
        for i in range(args.old_reruns):
            # A quick re-run: it starts and finishes between two passes.
            slot = start + (end - start) * (i + rnd.random()) / args.old_reruns
            slot = start + ((slot - start) // INTERVAL) * INTERVAL + timedelta(seconds=20)
            self.schedule(slot, "old_rerun")
        for i in range(args.long_old_reruns):
            slot = start + (end - start) * (i + rnd.random()) / args.long_old_reruns
            self.schedule(slot, "long_old_rerun")

    def apply_until(self, moment: datetime) -> None:
        while self.events and self.events[0].at <= moment:
            event = heapq.heappop(self.events)
            getattr(self, event.action)(event.at, **event.data)

    def new_run(self, at: datetime) -> None:
        queue = timedelta(seconds=self.random.randint(20, 240))
        run = self.fake.add_run(
            self.repo,
            self.random.choice(self.workflows),
            created=aware(at),
            status="queued",
            labels=self.random.sample(LABELS, self.random.randint(1, 3)),
            queue_seconds=int(queue.total_seconds()),
        )
        self.active.add(run)
        self.schedule(at + queue, "start", run=run)
        duration = timedelta(minutes=self.random.uniform(5, 40))
        conclusion = self.random.choices(["success", "failure", "cancelled"], [7, 2, 1])[0]
        self.schedule(
            at + queue + duration,
            "finish",
            run=run,
            conclusion=conclusion,
            kind="completion",
            seconds=int(duration.total_seconds()),
        )

    def start(self, at: datetime, run: int) -> None:
        self.fake.start_run(self.repo, run, at=aware(at))

    def finish(self, at: datetime, run: int, conclusion: str, kind: str, seconds: int) -> None:
        self.fake.complete_run(self.repo, run, conclusion=conclusion, job_seconds=seconds)
        self.active.discard(run)
        attempt = self.repo.runs[run]["run_attempt"]
        self.changes.append(Change(kind, run, at, ("completed", conclusion, attempt)))

    def push(self, at: datetime) -> None:
        self.fake.add_commit(self.repo, "main", message="a change", when=aware(at))

    def candidates(self, at: datetime, low: timedelta, high: timedelta) -> list[int]:
        return [
            run
            for run, payload in self.repo.runs.items()
            if run not in self.active
            and payload["status"] == "completed"
            and low <= aware(at) - datetime.fromisoformat(payload["created_at"]) <= high
        ]

    def recent_rerun(self, at: datetime) -> None:
        """A failed recent run is re-run; it stays active for a few passes."""
        failed = [
            run
            for run in self.candidates(at, timedelta(hours=1), timedelta(days=2))
            if self.repo.runs[run]["conclusion"] == "failure"
        ]
        if not failed:
            return
        self.rerun_active(at, self.random.choice(sorted(failed)), 10, 25, "recent re-run")

    def rerun_active(self, at: datetime, run: int, low: float, high: float, kind: str) -> None:
        """Re-run ``run`` at ``at``; it runs ``low`` to ``high`` minutes, then succeeds (a
        change of ``kind``)."""
        self.fake.rerun(self.repo, run, at=aware(at), conclusion=None)
        self.active.add(run)
        duration = timedelta(minutes=self.random.uniform(low, high))
        self.schedule(
            at + duration,
            "finish",
            run=run,
            conclusion="success",
            kind=kind,
            seconds=int(duration.total_seconds()) - 10,
        )

    def old_rerun(self, at: datetime) -> None:
        """A run 3 to 25 days old is re-run and succeeds within the minute."""
        old = self.candidates(at, timedelta(days=3), timedelta(days=25))
        run = self.random.choice(sorted(old))
        self.fake.rerun(self.repo, run, at=aware(at), conclusion="success")
        attempt = self.repo.runs[run]["run_attempt"]
        finished = at + timedelta(seconds=70)
        expected = ("completed", "success", attempt)
        # Runs past rerun_sweep_old_days (or that reach it before the next hourly sweep)
        # are swept once per rerun_sweep_old_minutes: their lag has the longer bound.
        created = datetime.fromisoformat(self.repo.runs[run]["created_at"]).replace(tzinfo=None)
        past = at - created > OLD_DAYS - timedelta(hours=1) - INTERVAL
        kind = "re-run past the old days" if past else "old re-run"
        self.changes.append(Change(kind, run, finished, expected))

    def long_old_rerun(self, at: datetime) -> None:
        """A run 3 to 25 days old is re-run and runs 10 to 60 minutes: a pass sees it
        running, and a later one its completion."""
        old = self.candidates(at, timedelta(days=3), timedelta(days=25))
        run = self.random.choice(sorted(old))
        self.rerun_active(at, run, 10, 60, "long old re-run, its completion")
        attempt = self.repo.runs[run]["run_attempt"]
        self.changes.append(
            Change("long old re-run, while it runs", run, at, ("in_progress", None, attempt))
        )

    # --- what GitHub shows, and what the database holds ---

    def github_states(self) -> dict[int, tuple[Any, ...]]:
        return {
            run: (p["status"], p["conclusion"], p["run_attempt"], p["updated_at"])
            for run, p in self.repo.runs.items()
        }

    def check(self, moment: datetime, first_after: datetime) -> None:
        pending = [c for c in self.changes if c.mirrored_at is None and not c.superseded]
        stored = run_store.stored_runs([c.run for c in pending])
        states = self.github_states()
        for change in pending:
            row = stored.get(change.run)
            held = (row["status"], row["conclusion"], row["runattempt"]) if row else None
            if held == change.expected:
                change.mirrored_at = moment
                change.next_pass = change.at > first_after
            elif states[change.run][:3] != change.expected and change.kind not in MUST_BE_SEEN:
                change.superseded = True  # a later change came before any pass could see it

    def mismatches(self) -> int:
        stored = run_store.stored_runs(list(self.repo.runs))
        attempts = defaultdict(int)
        for row in WorkflowRunAttempt.select(WorkflowRunAttempt.runid):
            attempts[row.runid] += 1
        wrong = 0
        for run, payload in self.repo.runs.items():
            row = stored.get(run)
            if (
                row is None
                or (row["status"], row["conclusion"], row["runattempt"])
                != (payload["status"], payload["conclusion"], payload["run_attempt"])
                or row["updatetime"].isoformat() + "Z" != payload["updated_at"]
                or attempts[run] != payload["run_attempt"]
            ):
                wrong += 1
        return wrong


@dataclass(frozen=True)
class Setup:
    auth: str  # "token" or "app"
    sweep_minutes: float
    cron: bool = False  # --once every 5 minutes, a new process each, instead of the daemon
    metrics: bool = False  # the daemon with [metrics]: the textfile, CI metrics included

    @classmethod
    def parse(cls, text: str) -> Setup:
        auth, _, rest = text.partition(":")
        sweep, _, mode = rest.partition(":")
        if auth not in ("token", "app") or not sweep or mode not in ("", "cron", "metrics"):
            raise argparse.ArgumentTypeError(f"{text!r}: write AUTH:MINUTES[:cron|:metrics]")
        return cls(auth, float(sweep), mode == "cron", mode == "metrics")

    def title(self) -> str:
        who = "token" if self.auth == "token" else "App (hourly tokens)"
        how = "cron --once" if self.cron else "daemon, metrics on" if self.metrics else "daemon"
        return f"{who}, {how}, sweep {self.sweep_minutes:g}"


@dataclass
class Result:
    setup: Setup
    hours: int
    spent: list[int]
    total: list[int]
    minimum: list[int]
    rotation_minimum: list[float]
    tokens: int  # installation tokens the App used
    changes: list[Change]
    mismatches: int
    runs: int


def horizon_pages(repo: FakeRepo, moment: datetime, days: float) -> int:
    """The fewest listing pages that hold every run of the re-run horizon."""
    low = aware(moment - timedelta(days=days))
    runs = sum(1 for p in repo.runs.values() if datetime.fromisoformat(p["created_at"]) >= low)
    return -(-runs // 100)


def rotation_pages(repo: FakeRepo, moment: datetime, sync: SyncConfig) -> float:
    """The pages a new hourly token must pay for: those of the horizon within
    ``rerun_sweep_old_days`` each hour, the older ones once per ``rerun_sweep_old_minutes``."""
    young = horizon_pages(repo, moment, sync.rerun_sweep_old_days)
    old = horizon_pages(repo, moment, sync.rerun_horizon_days) - young
    if sync.rerun_sweep_old_minutes <= 60:
        return young + old
    return young + old * 60 / sync.rerun_sweep_old_minutes


def simulate(args: argparse.Namespace, chosen: Setup, work: Path) -> Result:
    sweep_minutes = chosen.sweep_minutes
    end = args.end or datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=args.hours)
    clock = FakeClock(start)
    fake = FakeGitHub(token=TOKEN).start()
    fake.clock = lambda: epoch(clock.now())  # token expiry and resets by the simulated clock
    fake.budget.limit = fake.budget.remaining = 10**9
    fake.installation_rate_limit = 10**9
    repo = fake.add_repo(REPO, created_at=aware(start - timedelta(days=args.history_days + 1)))
    fake.add_commit(repo, "main", when=aware(start - timedelta(days=args.history_days)))
    simulation = Simulation(args, fake, repo)
    simulation.history(start - timedelta(days=args.history_days), start, args.history_per_hour)
    simulation.plan(start, end)

    database = Database(f"sqlite:///{work / f'busy-{sweep_minutes:g}.db'}")
    setup = PollerSetup(work, fake.url, database, repos=[{"name": REPO}])
    # A sweep of 0 re-reads the whole horizon every pass; else the windows older than
    # rerun_sweep_old_days have their default, longer period.
    setup.sync = {"rerun_sweep_minutes": sweep_minutes}
    if sweep_minutes == 0:
        setup.sync["rerun_sweep_old_minutes"] = 0
    setup.schedule = {"interval_minutes": INTERVAL.total_seconds() / 60}
    token: str | None = TOKEN
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")  # where the App's token is kept
    if chosen.auth == "app":
        setup.github = {**github_app(fake, work, {1: ""}), "installation_id": 1}
        token = None
    if chosen.metrics:
        setup.metrics = {"textfile": str(work / "shark_poller.prom"), "ci": True}
    config = config_module.load(setup.write())

    def start_engine() -> Engine:
        return Engine(config, connect(config, token, clock, Stop()), NoLocks(), clock)

    engine = start_engine()
    daemon = PassOptions(
        backfill_budget=config.sync.backfill_runs_per_pass,
        sweep_minutes=config.schedule.interval_minutes,
    )
    if chosen.cron:
        daemon = PassOptions.once(config.sync)
    spent, total, minimum = [0] * args.hours, [0] * args.hours, [0] * args.hours
    rotation = [0.0] * args.hours
    try:
        with database.open() as db:
            ensure_schema(db)
            engine.run_all(now=start)  # the backfill: --once, before the day starts
            previous = simulation.github_states()
            moment = start
            while moment < end:
                moment += INTERVAL
                clock.advance(moment - clock.now())
                simulation.apply_until(moment)
                states = simulation.github_states()
                changed = sum(1 for run, state in states.items() if previous.get(run) != state)
                previous = states
                fake.reset_counts()
                if chosen.cron:  # a new process: a new client pool, the App's token kept
                    engine.close()
                    engine = start_engine()
                [report] = engine.run_all(daemon, now=moment)
                assert report.error is None, report.error
                Exporter(config, engine.github, clock).write()  # only with [metrics]
                hour = int((moment - start - timedelta(seconds=1)) / timedelta(hours=1))
                spent[hour] += fake.count()
                total[hour] += fake.count(rate_limited=False)
                minimum[hour] += changed + (1 if changed else 0)
                if (moment - start) % timedelta(hours=1) == INTERVAL:  # a new token's first
                    rotation[hour] += rotation_pages(repo, moment, config.sync)
                rotation[hour] += changed + (1 if changed else 0)
                simulation.check(moment, moment - INTERVAL)
            # The day is over and nothing new starts; runs still going finish. Passes go
            # on for one sweep period, so that changes of the last hour get their chance.
            longest = max(sweep_minutes, config.sync.rerun_sweep_old_minutes)
            drain_end = end + max(timedelta(minutes=longest), INTERVAL)
            while moment < drain_end or simulation.active:
                moment += INTERVAL
                clock.advance(moment - clock.now())
                simulation.apply_until(moment)
                engine.run_all(daemon, now=moment)
                simulation.check(moment, moment - INTERVAL)
            mismatches = simulation.mismatches()
    finally:
        engine.close()
        fake.stop()
    return Result(
        chosen,
        args.hours,
        spent,
        total,
        minimum,
        rotation,
        len(fake.installation_tokens),
        [c for c in simulation.changes if not c.superseded],
        mismatches,
        len(repo.runs),
    )


def lag_text(changes: list[Change]) -> str:
    lags = [(c.mirrored_at - c.at).total_seconds() / 60 for c in changes if c.mirrored_at]
    if not lags:
        return "-"
    return f"{sum(lags) / len(lags):.1f} / {max(lags):.1f}"


def passes_text(changes: list[Change]) -> str:
    """Lag in passes, p50 and max: the pass at or after the change that stored it is 1."""
    passes = sorted(math.ceil((c.mirrored_at - c.at) / INTERVAL) for c in changes if c.mirrored_at)
    if not passes:
        return "-"
    return f"{passes[(len(passes) - 1) // 2]} / {passes[-1]}"


def render(results: list[Result], args: argparse.Namespace) -> str:
    lines = [
        f"Busy day: {args.hours} h at {args.per_hour} new runs an hour, polled every 5 min, "
        f"after {args.history_days} days of history ({results[0].runs} runs in all).",
        "",
        "| setup | " + " | ".join(r.setup.title() for r in results) + " |",
        "| --- | " + " | ".join("---" for _ in results) + " |",
    ]

    def row(title: str, cells: list[str]) -> None:
        lines.append(f"| {title} | " + " | ".join(cells) + " |")

    def per_hour(values: list[int] | list[float]) -> str:
        return f"{sum(values) / len(values):.1f} (max {max(values):.0f})"

    row("rate-limited requests per hour, mean (max)", [per_hour(r.spent) for r in results])
    row("theoretical minimum per hour, mean (max)", [per_hour(r.minimum) for r in results])
    row(
        "ratio to the minimum",
        [f"{sum(r.spent) / max(1, sum(r.minimum)):.2f}" for r in results],
    )
    row(
        "rotation minimum per hour, mean (max)",
        [per_hour(r.rotation_minimum) for r in results],
    )
    row(
        "ratio to the rotation minimum",
        [f"{sum(r.spent) / max(1, sum(r.rotation_minimum)):.2f}" for r in results],
    )
    row("installation tokens used", [str(r.tokens) if r.tokens else "-" for r in results])
    row("all requests per hour, 304s included", [per_hour(r.total) for r in results])
    row("previous pass logic (0.1), per hour", [PREVIOUS_LOGIC_PER_HOUR for _ in results])
    for kind in KINDS:
        cells = []
        for result in results:
            changes = [c for c in result.changes if c.kind == kind]
            nxt = sum(1 for c in changes if c.next_pass)
            later = sum(1 for c in changes if c.mirrored_at and not c.next_pass)
            never = sum(1 for c in changes if not c.mirrored_at)
            cells.append(
                f"{len(changes)}: {nxt} next pass, {later} later, {never} never; "
                f"lag mean/max {lag_text(changes)} min, p50/max {passes_text(changes)} passes"
            )
        row(kind, cells)
    row("database equals GitHub at the end", [f"{r.mismatches} mismatches" for r in results])
    lines += [
        "",
        "Minimum per pass = runs changed since the previous pass (one jobs listing each)",
        "+ 1 listing page if any changed. Lag: from the change on GitHub to the pass that",
        "stored it; a pass every 5 minutes makes 5 min the lag of 'next pass' at worst.",
        "Rotation minimum: the minimum, plus the horizon's runs / 100 pages, which a token",
        "that changes every hour must pay for once each: each hour those of the last",
        "rerun_sweep_old_days (7), and the older ones once per rerun_sweep_old_minutes (360).",
        "A re-run past the old days is one of a run that reaches rerun_sweep_old_days before",
        "the hourly sweep could see it: its bound is rerun_sweep_old_minutes + an interval.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--per-hour", type=float, default=24)
    parser.add_argument("--history-days", type=int, default=28)
    parser.add_argument("--history-per-hour", type=float, default=6)
    parser.add_argument("--recent-reruns", type=int, default=24)
    parser.add_argument("--old-reruns", type=int, default=18)
    parser.add_argument("--long-old-reruns", type=int, default=12)
    parser.add_argument(
        "--setups",
        type=Setup.parse,
        nargs="+",
        default=[
            Setup("token", 60),
            Setup("app", 60),
            Setup("token", 60, cron=True),
            Setup("app", 60, cron=True),
        ],
        help="AUTH:SWEEP_MINUTES[:cron|:metrics], AUTH being token (a personal token) or app "
        "(a GitHub App, whose token changes every hour); cron runs --once each pass, in a new "
        "client pool, instead of daemon passes; metrics writes the metrics textfile after "
        "each daemon pass",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--end",
        type=datetime.fromisoformat,
        default=None,
        help="the simulated day's end, naive UTC (default: this hour); fixes the figures, "
        "which otherwise move with where the day falls against UTC midnight",
    )
    args = parser.parse_args()
    logs.configure("warning")
    with tempfile.TemporaryDirectory() as directory:
        results = [
            simulate(args, setup, Path(directory) / f"s{index}")
            for index, setup in enumerate(args.setups)
            if not (Path(directory) / f"s{index}").mkdir()
        ]
    print(render(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
