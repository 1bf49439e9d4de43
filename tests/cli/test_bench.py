"""The benchmarks tell why a measured step failed, not only that it did."""

import pytest

from islandbridge.devtools import bench
from islandbridge.errors import TerminalError


def test_a_failing_benchmark_child_shows_the_end_of_its_error_output(tmp_path):
    missing = tmp_path / "no-such-config.yml"
    with pytest.raises(bench.BenchChildError) as caught:
        bench._child("_pipeline", missing)
    message = str(caught.value)
    assert "exited with status 1" in message
    assert "Traceback" in message or "Error" in message
    assert "no-such-config.yml" in message  # the child's own error, not just its exit status
    assert isinstance(caught.value, TerminalError)
