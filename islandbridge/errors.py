"""One root error for the project, split by what the operator should do about it."""


class IslandbridgeError(Exception):
    """Root of every error the project raises on purpose.

    ``exit_status`` is what the ``islandbridge`` command exits with when this error stops it, so a
    scheduler or a shell script can tell "fix the config" from "try again later".
    """

    exit_status = 4


class ConfigError(IslandbridgeError):
    """The configuration is wrong; fix the file or the environment and run again."""

    exit_status = 2


class RetriableError(IslandbridgeError):
    """A transient failure (429, 5xx, timeout) that outlasted the retry budget: run again later."""

    exit_status = 3


class FatalSourceError(IslandbridgeError):
    """The source refused us or broke its contract (bad credentials, schema drift): a person must act."""
