"""The quality step's log says what we say: one line with counts and time, none of Great Expectations'
~200 "Skipping registering function" lines (they come back with -v)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from islandbridge import pipeline
from islandbridge.config import parse_as_of

pytestmark = pytest.mark.slow
SOURCES = ("registry", "civil")  # file and SQLite sources: no HTTP server needed in the child process


def _validate_log(config, *extra: str) -> str:
    """Extract, then run the validate step in a fresh process (GX logs its registrations on first import)."""
    settings = pipeline.load_settings(config, environ=os.environ)
    for source in SOURCES:
        pipeline.extract(settings, source, parse_as_of("2026-11-20"))
    argv = [sys.executable, "-m", "islandbridge.cli", "validate", "--as-of", "2026-11-20", *extra]
    argv += [a for s in SOURCES for a in ("--source", s)] + ["--config", str(config)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stderr


def test_the_quality_steps_log_has_no_gx_registration_noise(config):
    log = _validate_log(config)
    assert "Skipping registering" not in log
    lines = [line for line in log.splitlines() if line.strip()]
    assert any("validate registry, civil:" in line and "expectations" in line for line in lines)
    assert len(lines) <= 5, lines


def test_v_brings_the_third_party_logs_back(config):
    assert "Skipping registering" in _validate_log(config, "-v")
