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
SOURCES = ["registry", "civil"]  # file and SQLite sources: no HTTP server needed in the child process

# What an Airflow task does: a root handler at INFO that shows every logger's records, then the step.
AS_A_TASK = """
import logging, os, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
from islandbridge import pipeline
from islandbridge.config import parse_as_of
settings = pipeline.load_settings(sys.argv[1], environ=os.environ)
pipeline.validate(settings, parse_as_of("2026-11-20"), sys.argv[2:])
"""


def _extract(config) -> None:
    settings = pipeline.load_settings(config, environ=os.environ)
    for source in SOURCES:
        pipeline.extract(settings, source, parse_as_of("2026-11-20"))


def _run(argv: list[str]) -> str:
    """Run in a fresh process: GX logs its registrations when it is first imported."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stderr


def test_the_quality_steps_task_log_has_no_gx_registration_noise(config):
    _extract(config)
    log = _run([sys.executable, "-c", AS_A_TASK, str(config), *SOURCES])
    assert "Skipping registering" not in log
    lines = [line for line in log.splitlines() if line.strip()]
    assert any("validate registry, civil:" in line and "expectations" in line for line in lines), lines
    assert len(lines) <= 5, lines


def test_v_brings_the_third_party_logs_back(config):
    _extract(config)
    argv = [sys.executable, "-m", "islandbridge.cli", "validate", "-v", "--as-of", "2026-11-20"]
    log = _run(argv + [a for s in SOURCES for a in ("--source", s)] + ["--config", str(config)])
    assert "Skipping registering" in log
