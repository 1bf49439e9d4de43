"""Table definitions as data, with their quality suites (see docs/quality.md)."""
