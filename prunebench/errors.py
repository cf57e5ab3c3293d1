"""Errors a user can cause: the CLI prints their one-sentence message and exits with code 2."""


class UsageError(Exception):
    """A problem with the user's input or environment, stated in one sentence naming the fix."""


class ConfigError(UsageError, ValueError):
    """An invalid configuration value (unknown name, out-of-range number, malformed option)."""


class DataError(UsageError):
    """Data that is missing, unreadable or inconsistent (no local copy, truncated cache file)."""
