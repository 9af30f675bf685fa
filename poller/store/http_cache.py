"""The HTTP cache: ETag and body of each polled GitHub URL, per token, in the database.

After a restart an unchanged listing still answers 304, which costs no rate limit, and
the stored body is replayed through the same diff, which finds nothing to write. These
are bookkeeping units: they write no repository data, so they need no repository lock.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from datetime import datetime

import peewee

from poller.store.models import HttpCache
from poller.store.rows import upsert
from poller.store.units import bookkeeping


class HttpCacheStore:
    """ETags and bodies of polled URLs, kept per token identity (ETags are per token)."""

    def __init__(self, identity: str) -> None:
        self.identity = identity

    def key(self, url: str) -> str:
        return hashlib.sha256(f"{self.identity}\n{url}".encode()).hexdigest()

    def lookup(self, url: str) -> tuple[str, bytes] | None:
        return _cache_lookup(self.key(url))

    def save(self, url: str, etag: str, body: bytes, now: datetime) -> None:
        _cache_save(self.key(url), url, etag, zlib.compress(body), now)

    def touch(self, url: str, now: datetime) -> None:
        _cache_touch(self.key(url), now)

    def rename(self, old: str, new: str) -> int:
        """Keep this token's entries of URLs that hold ``old`` under the same URLs with
        ``new`` instead: a moved repository's ``/repositories/{id}/`` URLs, which its first
        pass after the move used, as the ``/repos/{new name}/`` ones later passes use.
        Returns the entries kept so."""
        return _cache_rename(self, old, new)

    def known(self, urls: Sequence[str]) -> set[str]:
        """Which of ``urls`` have a stored ETag: one query, whatever their number."""
        by_key = {self.key(url): url for url in urls}
        return {by_key[key] for key in _cache_known(list(by_key))}


@bookkeeping
def _cache_lookup(key: str) -> tuple[str, bytes] | None:
    row = HttpCache.get_or_none(HttpCache.key == key)
    return (row.etag, zlib.decompress(bytes(row.body))) if row else None


@bookkeeping
def _cache_known(keys: list[str]) -> set[str]:
    known: set[str] = set()
    for chunk in peewee.chunked(keys, 500):  # SQLite's limit on bound parameters
        query = HttpCache.select(HttpCache.key).where(HttpCache.key.in_(chunk))
        known |= {row.key for row in query}
    return known


@bookkeeping
def _cache_save(key: str, url: str, etag: str, body: bytes, now: datetime) -> None:
    upsert(
        HttpCache,
        [{"key": key, "url": url, "etag": etag, "body": body, "updatetime": now}],
    )


@bookkeeping
def _cache_touch(key: str, now: datetime) -> None:
    HttpCache.update(updatetime=now).where(HttpCache.key == key).execute()


@bookkeeping
def prune_http_cache(older_than: datetime) -> int:
    """URLs move on (a new day's live window, finished backfills); forget the ones no pass used."""
    return int(HttpCache.delete().where(HttpCache.updatetime < older_than).execute())


@bookkeeping
def _cache_rename(store: HttpCacheStore, old: str, new: str) -> int:
    rows = HttpCache.select().where(HttpCache.url.contains(old))
    renamed = [
        {
            "key": store.key(url := row.url.replace(old, new)),
            "url": url,
            "etag": row.etag,
            "body": row.body,
            "updatetime": row.updatetime,
        }
        for row in rows
        if row.key == store.key(row.url)  # this token's, not another's
    ]
    upsert(HttpCache, renamed)
    return len(renamed)
