"""The metrics, out: node_exporter's textfile after every pass, and an HTTP endpoint if
``[metrics] listen`` asks for one (no inbound port by default), both served by
``prometheus_client``.

To the process's own metrics (``metrics``) it adds, at each write or scrape, what the
database holds, which describes the data and not this process, so that any one of
several pollers reports it for all: each repository's freshness and last outcome, as
``status`` shows them, its runs not yet completed, and the opt-in CI metrics
(``ci_metrics``). And each credential's rate limit, as this process last saw it.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

import peewee
import structlog
from prometheus_client import CollectorRegistry, start_http_server, write_to_textfile
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from poller import metrics
from poller.clock import SYSTEM, Clock, epoch
from poller.config.settings import Config
from poller.github.pool import GitHubPool
from poller.rules.transform import Row
from poller.service import ci_metrics, status
from poller.store.models import database
from poller.store.runs import unfinished_runs

log = structlog.get_logger(__name__)


class MetricsError(Exception):
    """The metrics cannot go where ``[metrics]`` says: one line, for the operator."""


class DataCollector(Collector):
    """What the database and the pool say, read afresh at each collection."""

    def __init__(self, config: Config, pool: GitHubPool, clock: Clock = SYSTEM) -> None:
        self.config = config
        self.pool = pool
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        yield from self.rate_limits()
        stale = GaugeMetricFamily(
            "shark_poller_stale_after_seconds",
            "How stale a repository may be before status --check fails it.",
        )
        stale.add_metric([], self.config.stale_after_minutes * 60)
        yield stale
        readable = GaugeMetricFamily(
            "shark_poller_database_readable", "1 if the last collection could read the database."
        )
        try:
            with reading():
                families = self.database_families()
        except (peewee.PeeweeException, OSError) as error:
            log.warning("metrics.database_unreadable", error=str(error))
            families = []
        readable.add_metric([], 1 if families else 0)
        yield readable
        yield from families

    def database_families(self) -> list[Metric]:
        """Every family read from the database. The runs not completed are read once,
        for the per-repository gauge and the CI metrics alike."""
        unfinished = unfinished_runs()
        families = list(self.repositories(unfinished))
        if self.config.metrics.ci:
            per_repository = self.config.metrics.ci_per_repository
            families += ci_metrics.ci_families(per_repository, unfinished)
        return families

    def repositories(self, not_completed: list[Row]) -> Iterator[Metric]:
        now = self.clock.now()
        freshness = GaugeMetricFamily(
            "shark_poller_repo_freshness_seconds",
            "Age of the newest state held: seconds since the last successful sync.",
            labels=["repo"],
        )
        last_success = GaugeMetricFamily(
            "shark_poller_repo_last_success_timestamp_seconds",
            "When the last successful sync of the repository ended (Unix time).",
            labels=["repo"],
        )
        last_ok = GaugeMetricFamily(
            "shark_poller_repo_last_pass_ok",
            "1 if the repository's last sync succeeded, 0 if it failed or none ran yet.",
            labels=["repo"],
        )
        unfinished = GaugeMetricFamily(
            "shark_poller_runs_unfinished",
            "Stored runs not yet completed, which passes fetch until they complete.",
            labels=["repo"],
        )
        pending = Counter(run["repo"] for run in not_completed)
        for repo, row in status.last_syncs(self.config):
            verdict = status.RepoHealth.of(row, now, self.config)
            if verdict.freshness is not None and row is not None and row.lastsuccess:
                freshness.add_metric([repo.name], verdict.freshness)
                last_success.add_metric([repo.name], epoch(row.lastsuccess))
            last_ok.add_metric([repo.name], int(verdict.last_pass_ok))
            unfinished.add_metric([repo.name], int(pending.get(repo.name, 0)))
        yield from (freshness, last_success, last_ok, unfinished)

    def rate_limits(self) -> Iterator[Metric]:
        help_text = {
            "remaining": "Requests left in the credential's primary rate limit, last seen.",
            "limit": "The credential's primary rate limit an hour, last seen.",
            "reset_timestamp_seconds": "When the credential's rate limit resets (Unix time).",
        }
        families = {
            key: GaugeMetricFamily(
                f"shark_poller_github_rate_limit_{key}", text, labels=["credential"]
            )
            for key, text in help_text.items()
        }
        for name, stats in self.pool.by_credential().items():
            for key, value in (
                ("remaining", stats.rate_remaining),
                ("limit", stats.rate_limit),
                ("reset_timestamp_seconds", stats.rate_reset),
            ):
                if value is not None:
                    families[key].add_metric([name], value)
        yield from families.values()


@contextlib.contextmanager
def reading() -> Iterator[None]:
    """This thread's connection for a read: the one open, else one opened and closed."""
    opened = database.is_closed()
    if opened:
        database.connect()
    try:
        yield
    finally:
        if opened:
            with contextlib.suppress(peewee.PeeweeException):
                database.close()


class Exporter:
    """The process's metrics and the data's, written and served as ``[metrics]`` says.

    One series per fact. The process's own counters go out one way only: the endpoint
    when it listens, else the textfile (``--once``'s only way). So with both scraped, a
    daemon's requests are not counted twice, and several pollers' counters add up. What
    the database says is the same from every exporter (both ways out of a daemon, every
    poller on the database): the shipped rules and panels take one value per repository
    (``max by (repo)``). A listening daemon's textfile still carries the database's
    facts, and its age still says whether the daemon is alive."""

    def __init__(self, config: Config, pool: GitHubPool, clock: Clock = SYSTEM) -> None:
        self.config = config
        data = DataCollector(config, pool, clock)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Process())
        self.registry.register(data)
        if config.metrics.listen is None:
            self.textfile_registry = self.registry
        else:
            self.textfile_registry = CollectorRegistry(auto_describe=False)
            self.textfile_registry.register(data)
        self.server: WSGIServer | None = None

    def start(self) -> None:
        """Listen, if ``[metrics] listen`` says where; raises MetricsError if it cannot."""
        address = self.config.metrics.listen
        if address is None:
            return
        host, _, port = address.rpartition(":")
        try:
            self.server, _ = start_http_server(int(port), host, self.registry)
        except OSError as error:
            raise MetricsError(
                f"[metrics].listen {address}: cannot listen: {error.strerror or error}; "
                "choose a free port, or remove listen"
            ) from None
        log.info("metrics.listening", address=address)

    def write(self) -> None:
        """Rewrite the textfile, if ``[metrics] textfile`` names one. A failure is
        logged and the pass goes on: the data matters more than its metrics."""
        path = self.config.metrics.textfile
        if path is None:
            return
        try:
            write_to_textfile(path, self.textfile_registry)
        except OSError as error:
            log.error(
                "metrics.textfile_failed",
                path=path,
                error=f"{error.strerror or error}: check that the directory exists and "
                "is writable by this user (the unit's ReadWritePaths=)",
            )

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class _Process(Collector):
    """The process's own metrics, from ``metrics.REGISTRY``."""

    def collect(self) -> Iterator[Metric]:
        yield from metrics.REGISTRY.collect()
