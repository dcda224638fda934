"""Errors that the command line reports in one line (no traceback)."""


class ConfigError(ValueError):
    """A config value outside its allowed set, or keys that do not fit together; the message names the key."""
