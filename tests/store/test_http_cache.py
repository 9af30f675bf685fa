"""The HTTP cache: ETags and bodies kept per token identity, found again after a
restart, and forgotten once no pass has used them for a week."""

from __future__ import annotations

from datetime import datetime, timedelta

import peewee

from poller.store.http_cache import HttpCacheStore, prune_http_cache
from poller.store.models import HttpCache

NOW = datetime(2026, 12, 1, 12)
URL = "/repos/octo/demo/actions/runs?created=2026-11-30T00%3A00%3A00Z..&per_page=100"


def test_an_etag_is_found_again_by_the_identity_that_stored_it(sqlite_db: peewee.Database):
    mine, theirs = HttpCacheStore("identity-a"), HttpCacheStore("identity-b")
    body = b'{"link": "", "body": "{\\"total_count\\": 0}"}'
    mine.save(URL, '"etag-1"', body, NOW)
    assert mine.lookup(URL) == ('"etag-1"', body)
    # GitHub's ETags are specific to the token: another identity never sends this one.
    assert theirs.lookup(URL) is None
    assert mine.key(URL) != theirs.key(URL)
    # Bodies are stored compressed.
    assert len(bytes(HttpCache.get().body)) < len(body) + 16


def test_known_says_which_urls_have_an_etag_in_one_go(sqlite_db: peewee.Database):
    cache = HttpCacheStore("identity-a")
    urls = [f"{URL}&page={n}" for n in range(1200)]  # more than SQLite binds at once
    for url in urls[::100]:
        cache.save(url, '"e"', b"{}", NOW)
    assert cache.known(urls) == set(urls[::100])


def test_urls_no_pass_used_for_a_week_are_pruned(sqlite_db: peewee.Database):
    cache = HttpCacheStore("identity-a")
    cache.save("/old", '"e"', b"{}", NOW - timedelta(days=8))
    cache.save("/used", '"e"', b"{}", NOW - timedelta(days=8))
    cache.touch("/used", NOW)  # a 304 refreshes it
    assert prune_http_cache(NOW - timedelta(days=7)) == 1
    assert cache.lookup("/old") is None and cache.lookup("/used") is not None
