"""One root error for the project, split by what the operator should do about it.

Every error the project raises on purpose is an ``IslandbridgeError`` and exactly one of two kinds:

* ``TerminalError`` — a person must act (configuration, credentials, state, a broken schema or
  contract, a quality gate that stopped the run). Running again unchanged fails the same way, so a
  scheduler must not retry it: the DAG fails the task at once with the error's message.
* ``TransientError`` — the world was briefly unavailable (a timeout, HTTP 5xx or 429, a locked file).
  Running again later can succeed, so a scheduler retries it with backoff.

``exit_status`` is what the ``islandbridge`` command exits with when an error stops it: 2 the
configuration is wrong, 3 try again later, 4 another error a person must look at, 5 the quality gate
stopped the run. A record that fails a check is not an error: it is quarantined and the run goes on.
"""

import re


class IslandbridgeError(Exception):
    """Root of every error the project raises on purpose; never raised itself by the product.

    ``exit_status`` is what the ``islandbridge`` command exits with when this error stops it, so a
    scheduler or a shell script can tell "fix the config" from "try again later".
    """

    exit_status = 4


class TerminalError(IslandbridgeError):
    """Marker: a person must act before the run can succeed; retrying unchanged cannot help."""


class TransientError(IslandbridgeError):
    """Marker: a temporary failure (timeout, 5xx, 429, a locked file); retrying later can help."""

    exit_status = 3


class ConfigError(TerminalError):
    """The configuration is wrong; fix the file or the environment and run again.

    Terminal: the same file gives the same error on every retry."""

    exit_status = 2


class RetriableError(TransientError):
    """A transient failure (429, 5xx, timeout) that outlasted the retry budget: run again later.

    Transient: the source was unavailable, not wrong; a later attempt can succeed."""

    exit_status = 3


class FatalSourceError(TerminalError):
    """The source refused us or broke its contract (bad credentials, schema drift): a person must act.

    Terminal: credentials or the source's contract must be fixed (or accepted) by a person first."""


def one_line(exc: BaseException) -> str:
    """``exc``'s message on one line, for a scheduler's failure reason: its first line, and when that line
    only announces a list ("2 key problems:"), the listed problems after it, joined by "; ".

    >>> one_line(ConfigError("1 key problem:\\n  - keys.vault: not configured"))
    '1 key problem: keys.vault: not configured'
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} " + "; ".join(line.removeprefix("- ") for line in lines[1:])
    return lines[0] if lines else ""


def noun(n: int, one: str, many: str | None = None) -> str:
    """``one`` for a count of 1, else ``many`` (default ``one`` + "s"): "1 duplicate", "2 duplicates"."""
    return one if n == 1 else (many or f"{one}s")


def count(n: int, one: str, many: str | None = None) -> str:
    """The count and its noun, for messages and logs: ``count(1, "pair")`` is "1 pair", ``count(1200,
    "pair")`` "1,200 pairs"."""
    return f"{n:,} {noun(n, one, many)}"


NOT_REPEATED = "not repeated: it may hold personal data"


def typed(text: object, shape: re.Pattern[str]) -> str:
    """What a user typed, for an error message: quoted when it has ``shape`` (at most 64 characters), else
    only its length. For the modules below the privacy layer (the configuration), which cannot mask it as
    the commands above do (`privacy.masking.mask_typed`): anything but the shape asked for could be an ID
    number, a phone or a name.

    >>> day = re.compile(r"\\d{4}-\\d{2}-\\d{2}")
    >>> typed("2026-11-20", day), typed("13800138000", day)
    ("'2026-11-20'", '(11 characters, not repeated: it may hold personal data)')
    """
    given = str(text)
    if len(given) <= 64 and shape.fullmatch(given):
        return repr(given)
    return f"({count(len(given), 'character')}, {NOT_REPEATED})"
