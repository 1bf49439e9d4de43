"""``islandbridge shell``: a read-only SQL prompt on the current snapshot, fed here through stdin."""

from __future__ import annotations

import io

import duckdb
import pytest
import yaml

from islandbridge.cli import main
from islandbridge.cli.shell import open_snapshot, run, statements


@pytest.fixture
def home(tmp_path):
    """A configuration whose snapshots folder holds a small current.duckdb (and a secret elsewhere)."""
    snaps = tmp_path / "warehouse" / "snapshots"
    snaps.mkdir(parents=True)
    with duckdb.connect(str(snaps / "ib_20261120T160000Z.duckdb")) as con:
        con.execute("CREATE SCHEMA core; CREATE TABLE core.persons (person_key VARCHAR, age INT)")
        con.execute("INSERT INTO core.persons VALUES ('pk_1', 81), ('pk_2', 34), ('pk_3', NULL)")
    (snaps / "current.duckdb").symlink_to("ib_20261120T160000Z.duckdb")
    (tmp_path / "outside.csv").write_text("a\n1\n", encoding="utf-8")
    config = {
        "street": {"code": "511403001"},
        "landing": {"url": "landing"},
        "warehouse": {"path": "warehouse/warehouse.duckdb"},
        "sources": {"iot": {"kind": "iot_rest", "base_url": "http://x", "api_key": {"env": "IB_UNSET_KEY"}}},
    }
    (tmp_path / "islandbridge.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return tmp_path


def _shell(home, text: str, monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    code = main(["shell", "--config", str(home / "islandbridge.yml")])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_statements_end_with_a_semicolon_and_may_span_lines():
    lines = ["SELECT 1\n", "  + 1;\n", ".tables\n", "SELECT 'a;b' AS x;\n", "SELECT 3"]
    assert list(statements(lines)) == ["SELECT 1\n  + 1;", ".tables", "SELECT 'a;b' AS x;", "SELECT 3"]


def test_a_comment_after_the_semicolon_or_on_its_own_line_does_not_hold_the_statement_open():
    # docs/analysts.md: `SELECT … ORDER BY object;   -- kind: table, view, left out`
    lines = ["-- persons\n", "SELECT 1 AS a;   -- kind: x\n", "SELECT '--;' AS b; -- c;d\n", "SELECT 2;\n"]
    assert list(statements(lines)) == ["SELECT 1 AS a;", "SELECT '--;' AS b;", "SELECT 2;"]


def test_strings_and_block_comments_are_read_as_duckdb_reads_them():
    """A string across lines, a $$ string and a /* */ comment may hold '--' and ';': the statement goes on."""
    lines = [
        "SELECT 'a\n",
        "-- b;' AS x;\n",
        "/* -- ; */ SELECT 1;\n",
        "SELECT $$a -- b;$$;\n",
        "SELECT 2\n",
        ";\n",
    ]
    assert list(statements(lines)) == [
        "SELECT 'a\n-- b;' AS x;",
        "/* -- ; */ SELECT 1;",
        "SELECT $$a -- b;$$;",
        "SELECT 2\n;",
    ]


def test_statements_on_one_line_are_run_one_by_one():
    """`SELECT 1; SELECT 2;` on one line are two statements (the shell printed only the second's result)."""
    lines = ["SELECT 1 AS a; SELECT ';' AS b; /* ; */ SELECT 3;; -- c; d\n"]
    assert list(statements(lines)) == ["SELECT 1 AS a;", "SELECT ';' AS b;", "/* ; */ SELECT 3;"]


def test_each_statement_followed_by_a_comment_prints_its_own_result(home, monkeypatch, capsys):
    text = "SELECT 41 + 1 AS answer;  -- first\nSELECT count(*) AS n FROM core.persons;\n"
    code, out, err = _shell(home, text, monkeypatch, capsys)
    assert code == 0 and err == "" and "answer" in out and "42" in out and "(1 row)" in out


def test_the_shell_answers_queries_on_the_current_snapshot_without_source_secrets(home, monkeypatch, capsys):
    code, out, err = _shell(
        home,
        "SELECT count(*) AS persons\nFROM core.persons;\nSELECT age FROM core.persons ORDER BY age;\n",
        monkeypatch,
        capsys,
    )
    assert code == 0 and err == ""
    assert "persons" in out and " 3" in out and "NULL" in out and "(3 rows)" in out


def test_tables_lists_the_snapshots_tables(home, monkeypatch, capsys):
    code, out, _ = _shell(home, ".tables\n", monkeypatch, capsys)
    assert code == 0 and "core.persons" in out


@pytest.mark.parametrize(
    "statement, refusal",
    [
        ("CREATE TABLE core.x (a INT);", "read-only"),
        ("DELETE FROM core.persons;", "read-only"),
        ("COPY core.persons TO '{home}/leak.csv';", "disabled by configuration"),
        ("SELECT * FROM read_csv('{home}/outside.csv');", "disabled by configuration"),
        ("ATTACH '{home}/other.duckdb' AS o;", ""),
        ("SET enable_external_access = true;", "locked"),
        ("SET lock_configuration = false;", "locked"),
    ],
)
def test_the_shell_cannot_write_or_reach_other_files(home, monkeypatch, capsys, statement, refusal):
    code, _, err = _shell(home, statement.format(home=home) + "\n", monkeypatch, capsys)
    assert code == 1 and err.startswith("error: ") and refusal in err
    assert not (home / "leak.csv").exists() and not (home / "other.duckdb").exists()


def test_an_error_does_not_end_the_session_and_quit_does(tmp_path):
    path = tmp_path / "s.duckdb"
    duckdb.connect(str(path)).close()
    con = open_snapshot(path)
    out, err = io.StringIO(), io.StringIO()
    code = run(con, ["SELEC 1;\n", "SELECT 41 + 1 AS answer;\n", ".quit\n", "SELECT 'after';\n"], out, err)
    assert code == 1 and "42" in out.getvalue() and "after" not in out.getvalue()
    assert err.getvalue().count("error:") == 1


def test_statements_with_chinese_text_are_cut_where_duckdb_cuts_them(tmp_path):
    """DuckDB's tokenizer counts bytes of UTF-8: a community's name in a statement used to shift every
    position after it, and the shell stopped with an IndexError."""
    lines = ["SELECT '海棠社区' AS 社区; SELECT '秦;' AS b;\n", "SELECT 2 -- 注释;\n", ";\n"]
    assert list(statements(lines)) == [
        "SELECT '海棠社区' AS 社区;",
        "SELECT '秦;' AS b;",
        "SELECT 2 -- 注释;\n;",
    ]
    path = tmp_path / "s.duckdb"
    duckdb.connect(str(path)).close()
    out, err = io.StringIO(), io.StringIO()
    assert (
        run(open_snapshot(path), ["SELECT '海棠社区' AS 社区;\n", "SELECT '秦光明'::DATE;\n"], out, err) == 1
    )
    assert "海棠社区" in out.getvalue() and "秦*明" in err.getvalue() and "秦光明" not in err.getvalue()


def test_an_error_masks_the_statements_literals_as_sql_does(tmp_path):
    """DuckDB repeats a literal it could not convert: an ID number or a phone typed into a query."""
    path = tmp_path / "s.duckdb"
    duckdb.connect(str(path)).close()
    out, err = io.StringIO(), io.StringIO()
    statements_ = ["SELECT '511403194310287757'::INT;\n", "SELECT '13800138000'::DATE;\n"]
    assert run(open_snapshot(path), statements_, out, err) == 1
    shown = err.getvalue()
    assert "511403********7757" in shown and "138****8000" in shown
    assert "511403194310287757" not in shown and "13800138000" not in shown


def test_without_a_snapshot_the_shell_says_what_to_run(tmp_path, monkeypatch, capsys):
    (tmp_path / "islandbridge.yml").write_text(
        yaml.safe_dump({"street": {"code": "1"}, "landing": {"url": "l"}, "warehouse": {"path": "w.duckdb"}}),
        encoding="utf-8",
    )
    code, _, err = _shell(tmp_path, "SELECT 1;\n", monkeypatch, capsys)
    assert code == 2 and "no snapshot at" in err and "run a sync" in err


def test_an_empty_result_prints_its_header_and_zero_rows(home, monkeypatch, capsys):
    code, out, _ = _shell(
        home, "SELECT person_key, age FROM core.persons WHERE age > 200;\n", monkeypatch, capsys
    )
    assert code == 0 and out.splitlines() == ["person_key  age", "(0 rows)"]
    assert "Empty DataFrame" not in out and "Index" not in out


def test_integer_sums_print_as_integers_and_decimals_keep_their_scale(home, monkeypatch, capsys):
    query = (
        "SELECT sum(age) AS total, sum(age::DECIMAL(10, 0)) AS whole, sum(age::DECIMAL(10, 2)) AS cents "
        "FROM core.persons;\n"
    )
    code, out, _ = _shell(home, query, monkeypatch, capsys)
    assert code == 0 and out.splitlines()[1].split() == ["115", "115", "115.00"], out


def test_times_with_a_zone_print_in_shanghai_and_the_help_says_so(home, monkeypatch, capsys):
    code, out, _ = _shell(
        home, "SELECT TIMESTAMPTZ '2026-11-20 16:00:00+00' AS finished_at;\n", monkeypatch, capsys
    )
    assert code == 0 and "2026-11-21 00:00:00+08:00" in out and "+00:00" not in out
    with pytest.raises(SystemExit):
        main(["shell", "--help"])
    assert "Asia/Shanghai" in capsys.readouterr().out
    code, out, _ = _shell(home, ".help\n", monkeypatch, capsys)
    assert "Asia/Shanghai" in out
