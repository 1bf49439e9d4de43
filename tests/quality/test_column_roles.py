"""The column roles of schemas/raw_*.yml are the one source of what a column is (issue #12).

The mappings below were hand-written in the modules until the roles moved into the schemas; they are pasted
here once, as they were, so that deriving them is provably behaviour-preserving, and stay as the guard.
"""

from __future__ import annotations

import pytest

from islandbridge.connectors import civil_files, grid_rest, iot_rest, sql_registry
from islandbridge.connectors.roster_files import LAYOUTS
from islandbridge.delivery.snapshot import IDENTIFIER_COLUMNS
from islandbridge.identity.filing import VAULT_FIELDS
from islandbridge.identity.records import PERSON_STREAMS, HouseLookup
from islandbridge.privacy.sealing import stream_privacy
from islandbridge.schemas import ROLES, SchemaError, load_tables, parse_tables

OLD_VAULT_FIELDS = {
    ("resident_registry", "t_jm"): {"name": "xm", "id_number": "sfzh", "phone": "lxdh", "birth_date": "csrq"},
    ("grid_platform", "residents"): {
        "name": "name",
        "id_number": "id_card",
        "phone": "phone",
        "address": "address",
    },
    ("grid_platform", "events"): {"name": "reporter_name", "phone": "reporter_phone"},
    ("civil_affairs", "dibao"): {
        "name": "户主姓名",
        "id_number": "身份证号码",
        "phone": "联系电话",
        "address": "家庭住址",
    },
    ("civil_affairs", "senior"): {
        "name": "姓名",
        "id_number": "身份证号",
        "bank_card": "银行卡号",
        "birth_date": "出生年月",
    },
    ("iot_platform", "cardholders"): {"name": "name", "phone": "phone"},
}

# PERSON_STREAMS' roles as written before; the matching roles "id" and "birth" are now the schemas' own
# "id_number" and "birth_date" (renamed, nothing else).
OLD_PERSON_ROLES = {
    ("resident_registry", "t_jm"): {
        "name": "xm",
        "id": "sfzh",
        "phone": "lxdh",
        "sex": "xb",
        "birth": "csrq",
        "status": "zt",
    },
    ("grid_platform", "residents"): {
        "name": "name",
        "id": "id_card",
        "phone": "phone",
        "sex": "gender",
        "address": "address",
        "grid": "grid_code",
    },
    ("grid_platform", "events"): {
        "name": "reporter_name",
        "phone": "reporter_phone",
        "address": "address",
        "grid": "grid_code",
        "note": "description",  # added since (#16): read for the phone beside the reporter's name
    },
    ("civil_affairs", "dibao"): {
        "name": "户主姓名",
        "id": "身份证号码",
        "phone": "联系电话",
        "address": "家庭住址",
        "community": "所属社区",
    },
    ("civil_affairs", "senior"): {
        "name": "姓名",
        "id": "身份证号",
        "sex": "性别",
        "birth": "出生年月",
        "community": "所属社区",
    },
    ("iot_platform", "cardholders"): {
        "name": "name",
        "phone": "phone",
        "estate_code": "estate_code",
        "building": "building",
        "unit": "unit",
        "room": "room",
    },
}
RENAMED = {"id": "id_number", "birth": "birth_date"}
OLD_HOUSE = HouseLookup(
    "t_fw", "fwbh", "fwbh", {"estate_code": "xqbm", "building": "ld", "unit": "dy", "room": "fh"}
)

OLD_IDENTIFIER_COLUMNS = frozenset(
    {
        "name",
        "phone",
        "id_number",
        "bank_card",
        "birth_date",
        "id_card",
        "card_number",
        "reporter_name",
        "reporter_phone",
        "xm",
        "sfzh",
        "lxdh",
        "姓名",
        "户主姓名",
        "联系电话",
        "身份证号",
        "身份证号码",
        "银行卡号",
    }
)

# Each connector's STREAMS as (name, key, columns, person_bearing, key_prefix, dedupe).
OLD_STREAMS = {
    "sql_registry": [
        ("t_xq", "xqbm", ("xqbm", "xqmc", "sqbm", "sqmc"), False, None, False),
        ("t_fw", "fwbh", ("fwbh", "xqbm", "ld", "dy", "fh", "wgbm", "gxsj"), False, None, False),
        (
            "t_jm",
            "jmid",
            (
                "jmid",
                "xm",
                "xb",
                "sfzh",
                "csrq",
                "lxdh",
                "mz",
                "hjlx",
                "fwbh",
                "yhzgx",
                "rzrq",
                "zt",
                "zxrq",
                "cjsj",
                "gxsj",
            ),
            True,
            None,
            False,
        ),
        ("t_jm_bq", ("jmid", "bq"), ("jmid", "bq", "gxsj"), False, None, False),
    ],
    "grid_rest": [
        (
            "grids",
            "grid_code",
            ("grid_code", "grid_name", "community_code", "community_name", "worker_id", "update_time"),
            False,
            None,
            False,
        ),
        (
            "workers",
            "worker_id",
            ("worker_id", "name", "phone", "grid_code", "active", "update_time"),
            False,
            None,
            False,
        ),
        (
            "residents",
            "person_id",
            (
                "person_id",
                "name",
                "gender",
                "id_card",
                "phone",
                "address",
                "grid_code",
                "tags",
                "status",
                "update_time",
            ),
            True,
            None,
            False,
        ),
        (
            "events",
            "event_id",
            (
                "event_id",
                "category",
                "title",
                "description",
                "reporter_name",
                "reporter_phone",
                "address",
                "grid_code",
                "status",
                "created_at",
                "update_time",
                "closed_at",
            ),
            True,
            None,
            False,
        ),
        (
            "visits",
            "visit_id",
            ("visit_id", "worker_id", "person_id", "visit_time", "visit_type", "findings", "update_time"),
            False,
            None,
            False,
        ),
    ],
    "iot_rest": [
        (
            "devices",
            "device_id",
            ("device_id", "device_type", "estate_code", "building", "unit", "room", "status", "installed_at"),
            False,
            None,
            False,
        ),
        (
            "cardholders",
            "holder_id",
            (
                "holder_id",
                "name",
                "phone",
                "estate_code",
                "building",
                "unit",
                "room",
                "card_no",
                "face_enrolled",
                "valid_until",
                "updated_at",
            ),
            True,
            None,
            False,
        ),
        (
            "events",
            "event_id",
            ("event_id", "ts", "device_id", "type", "holder_id", "value", "alarm_code"),
            False,
            None,
            True,
        ),
    ],
    "civil_files": [
        (
            "dibao",
            ("roster_month", "序号"),
            (
                "序号",
                "户主姓名",
                "身份证号码",
                "家庭人口",
                "保障人数",
                "联系电话",
                "家庭住址",
                "保障类别",
                "月保障金(元)",
                "发放年月",
                "所属社区",
                "roster_month",
                "source_file",
                "file_sha256",
                "source_row",
            ),
            True,
            "dibao",
            False,
        ),
        (
            "senior",
            ("roster_month", "序号"),
            (
                "序号",
                "姓名",
                "性别",
                "身份证号",
                "出生年月",
                "年龄",
                "补贴标准(元/月)",
                "发放金额",
                "银行卡号",
                "所属社区",
                "roster_month",
                "source_file",
                "file_sha256",
                "source_row",
            ),
            True,
            "senior",
            False,
        ),
    ],
}


def test_vault_fields_are_the_columns_the_schemas_file_in_the_vault():
    assert VAULT_FIELDS == OLD_VAULT_FIELDS


def test_person_stream_roles_come_from_the_schemas():
    derived = {(s.system, s.stream): dict(s.roles) for s in PERSON_STREAMS}
    old = {k: {RENAMED.get(r, r): c for r, c in roles.items()} for k, roles in OLD_PERSON_ROLES.items()}
    assert derived == old
    (registry,) = [s for s in PERSON_STREAMS if s.house is not None]
    assert registry.house == OLD_HOUSE


def test_snapshot_identifier_columns_come_from_the_schemas():
    assert IDENTIFIER_COLUMNS == OLD_IDENTIFIER_COLUMNS


@pytest.mark.parametrize("module", [sql_registry, grid_rest, iot_rest, civil_files], ids=lambda m: m.__name__)
def test_connector_streams_come_from_the_schemas(module):
    derived = [(s.name, s.key, s.columns, s.person_bearing, s.key_prefix, s.dedupe) for s in module.STREAMS]
    assert derived == OLD_STREAMS[module.__name__.rsplit(".", 1)[1]]


def test_roster_layouts_agree_with_the_schema():
    for layout in LAYOUTS.values():
        (stream,) = [s for s in civil_files.STREAMS if s.name == layout.stream]
        assert stream.columns[: len(layout.columns)] == layout.columns


def test_sealing_treats_the_id_number_and_name_columns_as_before():
    """Until the roles, the loader found ID-number and name columns through ``mask: id`` / ``mask: name``."""
    for (kind, stream), table in load_tables().items():
        spec = stream_privacy(kind, stream, table.column_names)
        assert spec.id_columns == tuple(c.name for c in table.columns if c.mask == "id")
        assert spec.name_columns == tuple(c.name for c in table.columns if c.mask == "name")


def _one_column(spec: str) -> str:
    return f"""
connector: c
system: s
tables:
  t:
    grain: g
    key: [k]
    columns:
      k: {{pii: none}}
      v: {spec}
"""


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{pii: none, role: nickname}", "role 'nickname'; expected one of " + ", ".join(ROLES)),
        ("{pii: quasi, role: sex, vault: true}", "vault is true or false, and only for a column whose role"),
        ("{pii: direct, vault: true}", "vault is true or false"),
        ("{pii: none, descripton: typo}", "unknown key descripton"),
        ("{pii: none, description: two, parts}", "unknown key parts"),
    ],
)
def test_bad_roles_and_keys_are_named(spec, message):
    with pytest.raises(SchemaError) as err:
        parse_tables({"bad.yml": _one_column(spec)})
    assert message in str(err.value)


def test_a_role_is_unique_within_a_table():
    text = _one_column("{pii: direct, role: name}").replace(
        "      k: {pii: none}", "      k: {pii: none, role: name}"
    )
    with pytest.raises(SchemaError, match="role 'name' is given to more than one column"):
        parse_tables({"bad.yml": text})
