"""Configuration: ``config.toml`` read with ``tomllib`` and checked at start-up into frozen
settings, one clear error per problem; secrets from the environment or systemd
credentials. No network, no database. May import the pure rules (``rules``)."""
