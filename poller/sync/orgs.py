"""Which repositories a pass syncs: the ``[[repos]]`` of ``config.toml``, and every
repository of each ``[[orgs]]`` that matches its patterns, listed from GitHub when the pass
starts, so that a new repository is picked up by the next pass and an archived one is no
longer polled (its rows stay). A repository named in both places is synced once, with
its ``[[repos]]`` settings.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from poller.config.settings import Config, OrgConfig, RepoConfig
from poller.github.errors import describe
from poller.github.pool import GitHubPool

log = structlog.get_logger(__name__)


def wanted(org: OrgConfig, item: Mapping[str, Any]) -> bool:
    """Whether a repository of the organisation's listing is to be followed."""
    if item.get("archived") or item.get("disabled"):
        return False
    name = str(item.get("name") or str(item["full_name"]).split("/", 1)[1]).lower()
    return any(fnmatch.fnmatchcase(name, p.lower()) for p in org.include) and not any(
        fnmatch.fnmatchcase(name, p.lower()) for p in org.exclude
    )


@dataclass(frozen=True)
class Followed:
    """The repositories a pass syncs: ``[[repos]]`` and the matching ones of ``[[orgs]]``;
    what each organisation's listing said of when anything was last pushed to them (a
    moved ``pushed_at`` tells the pass to re-read branches and workflows; ``[[repos]]``
    have none); and the organisations that could not be listed, with the reason."""

    repos: list[RepoConfig]
    pushed_at: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def org_repos(
    org: OrgConfig, listing: Iterable[Mapping[str, Any]], named: set[str]
) -> list[tuple[RepoConfig, str | None]]:
    """The organisation's repositories to follow, less those in ``named`` (lower case),
    each with its listing's ``pushed_at``."""
    return [
        (dataclasses.replace(org.template, name=str(item["full_name"])), item.get("pushed_at"))
        for item in listing
        if wanted(org, item) and str(item["full_name"]).lower() not in named
    ]


def resolve(config: Config, github: GitHubPool) -> Followed:
    """Every repository to sync this pass. One unlistable organisation never stops the
    others."""
    followed = Followed(list(config.repos))
    repos = followed.repos
    named = {repo.name.lower() for repo in repos}
    failed = followed.failed
    for org in config.orgs:
        try:
            with github.for_org(org.name) as gh:
                listing = list(gh.org_repositories(org.name))
        except Exception as error:
            failed[org.name] = describe(error)
            log.error("sync.org_failed", org=org.name, error=failed[org.name])
            continue
        if not any(wanted(org, item) for item in listing):
            # Nothing to follow is a mistake to say out loud, not a pass that did nothing.
            failed[org.name] = (
                f"{org.name}: no repository matches include {list(org.include)} and exclude "
                f"{list(org.exclude)} ({len(listing)} listed, archived ones skipped)"
            )
            log.error("sync.org_failed", org=org.name, error=failed[org.name])
            continue
        found = org_repos(org, listing, named)
        log.info("sync.org_listed", org=org.name, listed=len(listing), followed=len(found))
        repos += [repo for repo, _ in found]
        followed.pushed_at.update({repo.name: pushed for repo, pushed in found if pushed})
        named |= {repo.name.lower() for repo, _ in found}
    return followed
