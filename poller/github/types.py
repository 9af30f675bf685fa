"""What the GitHub room hands out: typed answers, so no other room reads GitHub's JSON
envelopes (``workflow_runs``, ``total_count``, ``resources.core``) or its headers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from requests.utils import parse_header_links

from poller.rules.payloads import Payload, RunItem

__all__ = [
    "Payload",
    "RateLimit",
    "RequestStats",
    "Response",
    "ResponseCache",
    "RunItem",
    "RunListing",
]


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    data: Any

    @property
    def next_url(self) -> str | None:
        for link in parse_header_links(self.headers.get("link", "")):
            if link.get("rel") == "next":
                return link.get("url")
        return None


RESULT_CAP = 1000


@dataclass(frozen=True)
class RunListing:
    """The first page of a ``created``-filtered runs listing. ``total_count`` is what
    the filter matches, which may exceed what GitHub lets a listing reach;
    ``GitHub.run_pages`` reads on from here, as far as GitHub lets it."""

    total_count: int
    runs: list[RunItem]
    next_url: str | None

    @property
    def whole(self) -> bool:
        """Whether reading every page reaches every run the filter matches: GitHub
        answers a filtered listing's first 1,000 results only ("Only the first 1000
        results are available", a 422 past them)."""
        return self.total_count <= RESULT_CAP


@dataclass(frozen=True)
class RateLimit:
    remaining: int
    limit: int
    reset: datetime  # naive UTC


@dataclass
class RequestStats:
    """Requests sent, and how many were free 304s. Retries inside urllib3 are not seen."""

    sent: int = 0
    not_modified: int = 0
    rate_remaining: int | None = None
    rate_limit: int | None = None
    rate_reset: int | None = None

    @property
    def spent(self) -> int:
        """Requests that counted against the rate limit: all but the free 304s."""
        return self.sent - self.not_modified


class ResponseCache(Protocol):
    """ETags and bodies of polled URLs (``http_cache``), for conditional requests."""

    def lookup(self, url: str) -> tuple[str, bytes] | None: ...
    def save(self, url: str, etag: str, body: bytes, now: datetime) -> None: ...
    def touch(self, url: str, now: datetime) -> None: ...
    def known(self, urls: Sequence[str]) -> set[str]: ...
    def rename(self, old: str, new: str) -> int: ...
