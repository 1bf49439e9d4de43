"""Small helpers for code that handles millions of objects, and for the benchmarks that measure it."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a bulk build.

    Creating hundreds of thousands of small objects (people, rows, tuples) makes the collector rescan the
    heap again and again, several times slower overall; such builds make no cycles worth collecting.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB.

    VmHWM, not getrusage's ru_maxrss: Linux keeps ru_maxrss across execve, so a benchmark's child process
    would report the peak of the parent that spawned it.
    """
    return _status_mib("VmHWM:")


def reset_peak_rss() -> bool:
    """Start this process's peak resident set size over from its current size (Linux ``clear_refs``), so
    that `peak_rss_mib` after a step is that step's peak; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


def rss_mib() -> float:
    """This process's current resident set size in MiB."""
    return _status_mib("VmRSS:")


def _status_mib(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return float("nan")
