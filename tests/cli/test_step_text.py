"""The step commands' short summaries (`islandbridge.cli.step_text`): what they claim is what the result says."""

from islandbridge.cli.step_text import quality_text


def test_a_summary_counts_the_checks_run_and_does_not_call_the_failed_warnings_passed():
    """``expectations`` counts every check, a failed warning-severity one too: "3 passed" would overstate."""
    text = quality_text({"expectations": 3, "warnings": ["registry.t_jm.id_number_valid"], "quarantined": {}})
    assert text.startswith("quality: 3 checks run, 1 warning (registry.t_jm.id_number_valid)")
    assert "passed" not in text
