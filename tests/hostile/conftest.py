"""The hostile corpus's summary table, printed at the end of any pytest session that ran its cases.

``pytest tests/hostile -q`` ends with::

    hostile corpus: source   tried  error  quarantined  accepted  seconds  known bugs

``tried`` counts the cases that kept every rule; ``known bugs`` the cases run as strict xfails, each
naming a defect it exposes (not in ``tried``).
"""

from __future__ import annotations

from tests.hostile.corpus import KNOWN_BUGS, SECONDS, TALLY, summary_rows


def pytest_terminal_summary(terminalreporter) -> None:
    if not TALLY:
        return
    write = terminalreporter.write_line
    terminalreporter.section("hostile corpus")
    header = f"{'source':<10} {'tried':>6} {'error':>6} {'quarantined':>12} {'accepted':>9} {'seconds':>8}"
    write(f"{header} {'known bugs':>11}")
    for source, tried, err, aside, ok in summary_rows():
        seconds = sum(SECONDS.values()) if source == "total" else SECONDS[source]
        bugs = sum(KNOWN_BUGS.values()) if source == "total" else KNOWN_BUGS[source]
        write(f"{source:<10} {tried:>6} {err:>6} {aside:>12} {ok:>9} {seconds:>8.1f} {bugs:>11}")
