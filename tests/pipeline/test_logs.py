"""islandbridge.logs: one line per step with counts and time, quiet third parties, bars on terminals only."""

from __future__ import annotations

import io
import logging

import pytest

from islandbridge import logs


@pytest.fixture(autouse=True)
def _quiet_again():
    yield
    logs.set_verbosity(0)


def test_a_step_logs_one_line_with_its_count_and_time(caplog):
    caplog.set_level(logging.INFO)
    with logs.timed("extract", "registry") as step:
        step.rows = 4093
        step.details["streams"] = 4
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("extract registry: 4,093 rows, 4 streams in ") and line.endswith(" s")


def test_a_step_that_raises_logs_nothing(caplog):
    caplog.set_level(logging.INFO)
    with pytest.raises(ValueError), logs.timed("load", "grid"):
        raise ValueError("boom")
    assert caplog.records == []


def test_third_party_info_is_silenced_unless_verbose():
    noisy = logging.getLogger("great_expectations._docs_decorators")
    logs.set_verbosity(0)
    assert not noisy.isEnabledFor(logging.INFO) and noisy.isEnabledFor(logging.WARNING)
    logs.set_verbosity(1)
    assert logging.getLogger("great_expectations").level == logging.NOTSET


def test_verbosity_comes_from_the_environment_the_dag_passes():
    assert logs.verbosity_of({"ISLANDBRIDGE_VERBOSE": "2"}) == 2
    assert logs.verbosity_of({}) == 0 and logs.verbosity_of({"ISLANDBRIDGE_VERBOSE": "x"}) == 0


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_a_bar_on_a_terminal_and_nothing_otherwise():
    plain = io.StringIO()
    items = ["registry", "grid"]
    assert logs.progress(items, desc="load", stream=plain) is items and plain.getvalue() == ""
    tty = _Tty()
    assert list(logs.progress(items, desc="load", stream=tty)) == items
    assert "load" in tty.getvalue()


def test_the_command_lines_handler_shows_our_info_and_others_warnings_only():
    flt = logs._OursOrWarnings(verbose=0)
    record = lambda name, level: logging.LogRecord(name, level, __file__, 1, "m", None, None)  # noqa: E731
    assert flt.filter(record("islandbridge.pipeline", logging.INFO))
    assert not flt.filter(record("airflow.models", logging.INFO))
    assert flt.filter(record("airflow.models", logging.WARNING))
    assert logs._OursOrWarnings(verbose=1).filter(record("airflow.models", logging.INFO))


def test_command_line_log_times_show_the_zone_of_islandbridge_runs():
    """04:34:19 UTC is logged as 12:34:19+08:00 (Asia/Shanghai, as `runs` and the reports), on any machine."""
    import datetime as dt

    root, out = logging.getLogger(), io.StringIO()
    saved = root.handlers[:]
    root.handlers = []  # a command-line process: no host handlers yet
    try:
        for verbose, shown in ((0, "12:34:19+08:00 "), (1, "2026-12-07 12:34:19+08:00 INFO ")):
            logs.setup_logging(verbose, stream=out)
            record = logging.LogRecord("islandbridge", logging.INFO, __file__, 1, "load: done", None, None)
            record.created = dt.datetime(2026, 12, 7, 4, 34, 19, tzinfo=dt.UTC).timestamp()
            assert root.handlers[0].format(record).startswith(shown)
            root.handlers = []
    finally:
        root.handlers = saved
