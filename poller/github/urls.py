"""The URLs the client asks: GitHub's search syntax for ``created``, the runs listing's
parameters, and whose ETags a client keeps. Pure: no request is sent here."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

PER_PAGE = 100
# Each run GitHub serves embeds the open pull requests whose head is the run's, as they
# are now, so a listing's body (and ETag) changes when a pull request opens, closes or
# its base moves, though no run did. Nothing is stored from them; this parameter of the
# runs endpoints leaves them out (GitHub's REST docs for "List workflow runs for a
# repository" and "Get a workflow run"; gh's own run listing sets it, go-github#2735).
NO_PULL_REQUESTS = {"exclude_pull_requests": "true"}


def identity(who: str) -> str:
    """Whose ETags a client's are, as a hash: ``token:<token>`` or ``app:<app>:<id>``.
    GitHub's ETags are specific to the token, so an installation's stored ETags answer
    304 only for as long as its current token lives; they are kept under the
    installation all the same, and each 200 under a new token replaces them."""
    return hashlib.sha256(who.encode()).hexdigest()[:32]


def created_filter(low: datetime | None, high: datetime | None) -> str:
    """GitHub search syntax for a ``created`` range, inclusive at both ends."""

    def fmt(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    if low and high:
        return f"{fmt(low)}..{fmt(high)}"
    if low:
        return f">={fmt(low)}"
    if high:
        return f"<={fmt(high)}"
    return "*"


def runs_listing(
    full_name: str, low: datetime | None, high: datetime | None, status: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The path and parameters of the runs created in ``[low, high]``, of one ``status``
    if given: the same for the same range, so that its ETag answers 304."""
    params = {"created": created_filter(low, high), **NO_PULL_REQUESTS, "per_page": PER_PAGE}
    if status:
        params["status"] = status
    return f"/repos/{full_name}/actions/runs", params
