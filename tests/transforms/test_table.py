"""normalize_table: typed columns appended per kind, equal to the row-by-row normalisers."""

from __future__ import annotations

import datetime as dt
import doctest

import pyarrow as pa
import pytest

from islandbridge.transforms.normalize import (
    addresses,
    ids,
    names,
    normalize_id,
    normalize_name,
    normalize_phones,
    normalize_table,
    parse_address,
    phones,
    table,
)
from islandbridge.transforms.normalize.table import NormalizeSpecError
from tests.transforms.strategies import make_id

ID = make_id("510104", dt.date(1968, 12, 22), 505)
KNOWN = {"锦江苑": "XQ001"}


@pytest.fixture
def grid_residents() -> pa.Table:
    """A grid-platform extract in miniature, with repeats, nulls and every kind of quirk."""
    return pa.table(
        {
            "id_card": [ID, ID.lower(), "510104********0696", None, "5.11403E+17", ID],
            "phone": ["138-0013-8000", "13800138000/028-12345678", "无", None, "abc", "138-0013-8000"],
            "name": ["韓彬", "陈  佳", None, "王1", "章伟", "韓彬"],
            "address": [
                "锦江苑3-2-501",
                "锦江苑小区3幢2单元0501号",
                None,
                "3栋2单元501",
                "abc",
                "锦江苑3-2-501",
            ],
        }
    )


def test_appends_typed_columns_for_every_kind(grid_residents):
    out = normalize_table(
        grid_residents, {"id_card": "id", "phone": "phone", "name": "name", "address": "address"}, KNOWN
    )
    assert out.schema.field("id_birth_date").type == pa.date32()
    assert out.schema.field("phone_e164").type == pa.list_(pa.string())
    assert out.schema.field("id_mask_length").type == pa.int8()
    assert out.column_names[:4] == grid_residents.column_names
    assert out["house_key"].to_pylist() == [
        "XQ001|3|2|501",
        "XQ001|3|2|501",
        None,
        None,
        None,
        "XQ001|3|2|501",
    ]


def test_results_equal_the_row_by_row_normalisers(grid_residents):
    out = normalize_table(
        grid_residents, {"id_card": "id", "phone": "phone", "name": "name", "address": "address"}, KNOWN
    ).to_pylist()
    for row in out:
        id_result, phone = normalize_id(row["id_card"]), normalize_phones(row["phone"])
        name, address = normalize_name(row["name"]), parse_address(row["address"], KNOWN)
        assert (row["id_kind"], row["id_value"], row["id_birth_date"]) == id_result[:2] + (
            id_result.birth_date,
        )
        assert (tuple(row["phone_e164"]), row["phone_status"]) == (phone.numbers, phone.status)
        assert (row["name_key"], row["pinyin_key"], row["name_status"]) == (
            name.name_key,
            name.pinyin_key,
            name.status,
        )
        assert (row["estate_code"], row["room"], row["address_status"]) == (
            address.estate_code,
            address.room,
            address.status,
        )


def test_float_id_column_from_a_spreadsheet_is_excel_damaged():
    out = normalize_table(pa.table({"sfzh": [4.201021959100794e17, None]}), {"sfzh": "id"})
    assert out["id_kind"].to_pylist() == ["excel_damaged", "missing"]
    assert out["id_value"].to_pylist() == [None, None]


def test_dictionary_and_multi_chunk_columns_are_handled():
    column = pa.chunked_array(
        [pa.array(["韓彬", "陈  佳"]).dictionary_encode(), pa.array(["韓彬"]).dictionary_encode()]
    )
    out = normalize_table(pa.table({"xm": column}), {"xm": "name"})
    assert out["name_key"].to_pylist() == ["韩彬", "陈佳", "韩彬"]


def test_all_null_and_empty_columns_give_missing_rows():
    assert (
        normalize_table(pa.table({"p": pa.nulls(2)}), {"p": "phone"})["phone_status"].to_pylist()
        == ["missing"] * 2
    )
    assert normalize_table(pa.table({"p": pa.array([], pa.string())}), {"p": "phone"}).num_rows == 0


def test_registry_house_columns_get_the_same_house_key_as_a_parsed_address():
    t_fw = pa.table({"xqbm": ["XQ001", "XQ001"], "ld": ["3栋", "3"], "dy": ["2", "2"], "fh": ["0501", None]})
    out = normalize_table(t_fw, {"xqbm": "estate_code", "ld": "building", "dy": "unit", "fh": "room"})
    assert out["house_key"].to_pylist() == ["XQ001|3|2|501", None]


def test_a_bad_spec_lists_every_problem_at_once(grid_residents):
    with pytest.raises(NormalizeSpecError) as caught:
        normalize_table(grid_residents, {"nope": "id", "phone": "telephone", "id_card": "id", "name": "id"})
    message = str(caught.value)
    assert "'nope' is not in the table" in message
    assert "unknown kind 'telephone'" in message and "known: id, phone" in message
    assert "would both append 'id_kind'" in message


def test_output_name_already_in_the_table_is_refused():
    with pytest.raises(NormalizeSpecError, match="already has"):
        normalize_table(pa.table({"name_key": ["x"], "xm": ["王伟"]}), {"xm": "name"})


@pytest.mark.parametrize("module", [ids, phones, names, addresses, table])
def test_docstring_examples_run(module):
    assert doctest.testmod(module, extraglobs={"pa": pa}).failed == 0
