"""The tables, for dashboard scripts: ``from poller import models``, then
``models.connect("config.toml")`` and peewee queries on ``models.WorkflowRun`` and the
rest. The models live in the store room (``poller.store.models``); this name stays."""

from poller.store.models import *  # noqa: F403
from poller.store.models import __all__  # noqa: F401
