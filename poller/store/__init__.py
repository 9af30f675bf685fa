"""The database: the dashboard's tables and the poller's own (``models``,
``state_models``), their creation and in-place upgrade (``schema``), units of work that
rerun after a reconnect (``units``), the diff and upsert of rows (``rows``, ``runs``),
cursors, ETags, one writer per repository (``locks``) and moved repositories. May
import ``config``, ``rules`` and the shared modules."""
