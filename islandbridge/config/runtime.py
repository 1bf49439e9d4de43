"""What a run takes from the process it runs in: the wall clock (bookkeeping only) and file permissions.

``Clock`` is how a step is handed the time (tests pass a fixed one); `utc_now` is the real one, used
for when a run loaded, never for which data to read. `owner_only_files` makes every file the process
creates owner-only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterator

Clock = Callable[[], dt.datetime]


OWNER_ONLY_UMASK = 0o077


@contextlib.contextmanager
def owner_only_files() -> Iterator[None]:
    """For the block, every file and folder this process creates (the warehouse and its WAL, the vault's
    WAL, landing slices, logs, Airflow's database) is owner-only: the umask is tightened to 0o077 (never
    loosened), and restored after. The ``islandbridge`` command and every DAG task run inside it."""
    old = os.umask(OWNER_ONLY_UMASK)
    os.umask(old | OWNER_ONLY_UMASK)
    try:
        yield
    finally:
        os.umask(old)


def utc_now() -> dt.datetime:
    """Wall-clock time, used only for bookkeeping (when a run loaded), never for which data to read."""
    return dt.datetime.now(dt.UTC)
