"""Pure functions from GitHub's repository listings (commits, branches, workflows) to the
dashboard's rows; the runs and jobs are ``transform``'s. Nothing here does I/O."""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterable

from poller.rules.payloads import Payload
from poller.rules.transform import Row, parse_time


def commit_row(item: Payload, repo: str) -> Row:
    """A ``commits`` row from an item of ``GET /repos/{o}/{r}/commits``."""
    commit = item.get("commit") or {}
    author = commit.get("author") or {}
    # The GitHub account the commit's e-mail belongs to; null when none does.
    account = item.get("author") or {}
    return {
        "hash": item["sha"],
        "author": author.get("name"),
        "message": commit.get("message"),
        "time": parse_time(author.get("date")),
        "repo": repo,
        "authorurl": account.get("html_url"),
    }


def branch_row(item: Payload, repo: str) -> Row:
    """A ``branches`` row. GitHub gives branches no author; the legacy column stays as is."""
    return {
        "name": item["name"],
        "repo": repo,
        "commithash": (item.get("commit") or {}).get("sha"),
        "protected": bool(item.get("protected")),
    }


def builds_images(item: Payload, patterns: Iterable[str]) -> bool:
    """Whether a workflow is one of ``docker_workflows``: a glob that matches its name,
    its path or its file name, ignoring case (``*docker*``, ``publish_images.yml``)."""
    path = item.get("path") or ""
    candidates = [item.get("name") or "", path, posixpath.basename(path)]
    return any(
        fnmatch.fnmatchcase(candidate.lower(), pattern.lower())
        for pattern in patterns
        for candidate in candidates
        if candidate
    )


def workflow_row(item: Payload, repo: str, image_patterns: Iterable[str] = ()) -> Row:
    """A ``workflows`` row. ``gitid`` is GitHub's stable id, so renames update in place."""
    return {
        "gitid": item["id"],
        "name": item.get("name") or item.get("path") or str(item["id"]),
        # The legacy column is NOT NULL; real payloads always carry html_url.
        "url": item.get("html_url") or item.get("url") or "",
        "path": item.get("path"),
        "state": item.get("state"),
        "repo": repo,
        "imagebuild": builds_images(item, image_patterns),
    }
