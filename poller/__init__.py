"""shark-poller: polls GitHub Actions history into the SHARK/IREE CI dashboard database."""

__version__ = "0.1.0"
