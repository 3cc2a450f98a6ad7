"""Errors meant for people: each message is one line (what, where, what to do)."""


class ConfigError(Exception):
    """A bad preset, config file, key or value (also re-exported by ``engine.config``)."""


class DataError(Exception):
    """A problem with the user's data or data settings."""


class ModelError(Exception):
    """A model that cannot be built as configured."""
