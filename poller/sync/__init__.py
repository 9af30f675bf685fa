"""A pass: the engine that owns its resources, one repository's sync under its lock
(``repository``), the run sync (``runs``), metadata, organisations and self-hosted
runners. It fetches through ``github`` and saves through ``store``; it knows no
scheduler, so ``--once`` and the daemon run the same pass."""
