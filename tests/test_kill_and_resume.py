"""A sync killed at any point leaves a warehouse the next run completes into the uninterrupted result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import GRID_CLIENT, IOT_KEY
from tests.helpers import snapshot as _snapshot


def _sync_cmd(config):
    return [
        sys.executable,
        "-m",
        "islandbridge.cli",
        "sync",
        "--config",
        str(config),
        "--as-of",
        "2026-11-20",
    ]


def _env():
    return {**os.environ, "IB_GRID_CLIENT_SECRET": GRID_CLIENT[1], "IB_IOT_API_KEY": IOT_KEY}


@pytest.fixture
def uninterrupted(config):
    subprocess.run(_sync_cmd(config), env=_env(), check=True, capture_output=True)
    snap = _snapshot(config)
    (config.parent / "warehouse" / "warehouse.duckdb").unlink()
    return snap


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_s", [0.8, 1.6, 2.4, 3.2])
def test_a_sync_killed_mid_run_is_completed_by_the_next_run(config, uninterrupted, kill_after_s):
    proc = subprocess.Popen(
        _sync_cmd(config), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(kill_after_s)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    subprocess.run(_sync_cmd(config), env=_env(), check=True, capture_output=True)
    assert _snapshot(config) == uninterrupted
