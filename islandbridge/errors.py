"""One root error for the project, split by what the operator should do about it."""


class IslandbridgeError(Exception):
    """Root of every error the project raises on purpose."""


class ConfigError(IslandbridgeError):
    """The configuration is wrong; fix the file or the environment and run again."""


class RetriableError(IslandbridgeError):
    """A transient failure (429, 5xx, timeout) that outlasted the retry budget: run again later."""


class FatalSourceError(IslandbridgeError):
    """The source refused us or broke its contract (bad credentials, schema drift): a person must act."""
