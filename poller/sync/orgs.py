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


def org_repos(
    org: OrgConfig, listing: Iterable[Mapping[str, Any]], named: set[str]
) -> list[RepoConfig]:
    """The organisation's repositories to follow, less those in ``named`` (lower case)."""
    return [
        dataclasses.replace(
            org.template, name=str(item["full_name"]), pushed_at=item.get("pushed_at")
        )
        for item in listing
        if wanted(org, item) and str(item["full_name"]).lower() not in named
    ]


def resolve(config: Config, github: GitHubPool) -> tuple[list[RepoConfig], dict[str, str]]:
    """Every repository to sync this pass, and the organisations that could not be listed
    with the reason. One unlistable organisation never stops the others."""
    repos = list(config.repos)
    named = {repo.name.lower() for repo in repos}
    failed: dict[str, str] = {}
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
        repos += found
        named |= {repo.name.lower() for repo in found}
    return repos, failed
