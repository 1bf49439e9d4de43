"""The leak scanner: planted personal data is found in every kind of file, masks and ciphertext are not."""

from __future__ import annotations

import csv
import gzip
import json
import sqlite3
import zlib
from pathlib import Path

import duckdb
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from islandbridge.devtools.leakscan import Needles, allow_rules, needles_from_street, scan_tree
from islandbridge.devtools.privacy_scan import command
from islandbridge.privacy.masking import mask_id, mask_name, mask_phone
from islandbridge.privacy.vault import Vault
from tests.privacy.helpers import vault_ring

ID = "511403195003071248"
ID_X = "51010419620815004X"
PHONE = "15698940672"
CARD = "6217715171951877677"
NAME = "尹一鸣"
NAME_IN_TEXT = "江口"  # a two-character name that is also part of an estate's name
UYGHUR = "买买提·艾力"
PASSPORT = "E12345678"
RAW = [ID, ID_X, ID[:6] + ID[8:17], PHONE, CARD, NAME, NAME_IN_TEXT, "买买提艾力", UYGHUR, PASSPORT]


def _needles() -> Needles:
    return Needles.from_values(
        ids=[ID, ID_X.lower(), PASSPORT],
        phones=[f"+86 {PHONE}"],
        bank_cards=[CARD],
        names=[NAME, NAME_IN_TEXT, UYGHUR],
    )


# -- the planted tree ---------------------------------------------------------------------------------


def _plant_duckdb(path: Path) -> None:
    con = duckdb.connect(str(path))
    # md5-varied text so that DuckDB compresses the column with FSST: the plant is not in the file's bytes
    con.execute(f"""
        CREATE TABLE notes AS SELECT i AS id,
            'event ' || md5(i::VARCHAR) || ' contact ' ||
            CASE WHEN i = 31337 THEN '联系人{NAME}电话{PHONE}' ELSE (13000000000 + i * 7919)::VARCHAR END AS note
        FROM range(50000) r(i)""")
    con.execute(
        "CREATE TABLE people (person VARCHAR, phone BIGINT, tags VARCHAR[], info STRUCT(card VARCHAR))"
    )
    con.execute(
        "INSERT INTO people VALUES ('pk_1', ?, ['独居老人', ?], {'card': ?})", [int(PHONE), NAME, CARD]
    )
    con.execute("CHECKPOINT")
    con.close()


def _plant_parquet(path: Path) -> None:
    contact = pa.array(
        [{"name": "张*伟", "phones": ["138****8000"]}, {"name": NAME, "phones": [f"+86 {PHONE}"]}],
        pa.struct([("name", pa.string()), ("phones", pa.list_(pa.string()))]),
    )
    table = pa.table(
        {
            "contact": contact,
            "category": pa.array(["民生服务", "环境卫生"]).dictionary_encode(),
            "card_number": pa.array([1, int(CARD)], pa.int64()),
            "id_card": pa.array([None, ID_X.lower()]),
        }
    )
    pq.write_table(table, path, compression="zstd")


def _plant_sqlite(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE xcom (dag_id TEXT, key TEXT, value BLOB)")
    con.execute("CREATE TABLE rendered_task_instance_fields (task_id TEXT, rendered_fields TEXT)")
    con.execute(
        "INSERT INTO xcom VALUES ('community_sync', 'counts', ?)", [json.dumps({"person": NAME, "id": ID})]
    )  # ensure_ascii: the name as \\uXXXX escapes
    con.execute(
        "INSERT INTO xcom VALUES ('community_sync', 'blob', ?)",
        [zlib.compress(json.dumps({"phone": f"{PHONE[:3]} {PHONE[3:7]} {PHONE[7:]}"}).encode())],
    )
    con.execute(
        "INSERT INTO rendered_task_instance_fields VALUES ('extract', ?)",
        [json.dumps({"cmd": f"lookup {PASSPORT}"})],
    )
    con.commit()
    con.close()


def _plant_xlsx(path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "名单"
    sheet["A1"], sheet["B3"], sheet["C4"] = "序号", ID, float(f"{int(ID):.16g}")  # C4: an Excel-damaged ID
    workbook.save(path)


def _plant_gb18030_csv(path: Path) -> None:
    with path.open("w", encoding="gb18030", newline="") as f:
        csv.writer(f).writerows([["序号", "姓名", "银行卡号"], ["1", "尹 一鸣", CARD]])


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("run")
    for folder in ("warehouse", "landing", "airflow", "logs", "exports", "secret"):
        (root / folder).mkdir()
    _plant_duckdb(root / "warehouse" / "warehouse.duckdb")
    _plant_parquet(root / "landing" / "part-00000.parquet")
    _plant_sqlite(root / "airflow" / "airflow.db")
    _plant_xlsx(root / "exports" / "list.xlsx")
    _plant_gb18030_csv(root / "exports" / "roster.csv")
    with gzip.open(root / "logs" / "task.log.gz", "wt", encoding="utf-8") as f:
        f.write(f"INFO start\nINFO run ib_1\nINFO phone {PHONE[:3]} {PHONE[3:7]} {PHONE[7:]}\n")
    (root / "logs" / "notes.txt").write_text(
        f"call +86 {PHONE[:3]}-{PHONE[3:7]}-{PHONE[7:]}\n{UYGHUR}\n", encoding="utf-8"
    )
    (root / "logs" / "estates.txt").write_text(f"住址：{NAME_IN_TEXT}新居3栋\n", encoding="utf-8")
    (root / "logs" / "report.html").write_text(
        "<td>" + "".join(f"&#{ord(c)};" for c in NAME) + "</td>", encoding="utf-8"
    )
    (root / "logs" / "masked.txt").write_text(
        f"{mask_phone(PHONE)} {mask_name(NAME)} {mask_id(ID)} {mask_id(ID_X)} 5.11403E+17 {mask_name(UYGHUR)}\n",
        encoding="utf-8",
    )
    (root / "logs" / "core.bin").write_bytes(b"\x00\xff\x13" * 40 + NAME.encode() + b"\x00\xfe" * 40)
    (root / "secret" / "leak.txt").write_text(f"{NAME} {ID}\n", encoding="utf-8")
    with Vault.open(root / "warehouse" / "vault.duckdb", vault_ring("v1")) as vault:
        vault.put_many(
            [
                ("pk_1", "name", "civil_affairs", "senior:1", NAME),
                ("pk_1", "id_number", "civil_affairs", "senior:1", ID),
                ("pk_1", "phone", "civil_affairs", "senior:1", PHONE),
                ("pk_1", "bank_card", "civil_affairs", "senior:1", CARD),
            ]
        )
    return root


@pytest.fixture(scope="module")
def result(tree):
    return scan_tree(tree, _needles())


def _hits(result, file: str, **attributes):
    return [
        h for h in result.hits if h.file == file and all(getattr(h, k) == v for k, v in attributes.items())
    ]


# -- every plant is found -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "attributes"),
    [
        ("warehouse/warehouse.duckdb", {"location": "main.notes.note", "kind": "name", "embedded": True}),
        ("warehouse/warehouse.duckdb", {"location": "main.notes.note", "kind": "phone", "embedded": False}),
        ("warehouse/warehouse.duckdb", {"location": "main.people.phone", "kind": "phone"}),
        ("warehouse/warehouse.duckdb", {"location": "main.people.tags", "kind": "name"}),
        ("warehouse/warehouse.duckdb", {"location": "main.people.info", "kind": "bank_card"}),
        ("landing/part-00000.parquet", {"location": "contact.name", "kind": "name"}),
        ("landing/part-00000.parquet", {"location": "contact.phones[]", "kind": "phone"}),
        ("landing/part-00000.parquet", {"location": "card_number", "kind": "bank_card"}),
        ("landing/part-00000.parquet", {"location": "id_card", "kind": "id_number", "variant": "id18"}),
        (
            "airflow/airflow.db",
            {"location": "xcom.value", "position": "rowid 1", "kind": "name", "via": "json-escape"},
        ),
        ("airflow/airflow.db", {"location": "xcom.value", "position": "rowid 1", "kind": "id_number"}),
        (
            "airflow/airflow.db",
            {"location": "xcom.value", "position": "rowid 2", "kind": "phone", "via": "zlib"},
        ),
        (
            "airflow/airflow.db",
            {"location": "rendered_task_instance_fields.rendered_fields", "variant": "passport"},
        ),
        ("exports/list.xlsx", {"location": "名单", "position": "B3", "variant": "id18"}),
        ("exports/list.xlsx", {"location": "名单", "position": "C4", "variant": "id_as_float"}),
        ("exports/roster.csv", {"location": "姓名", "position": "line 2", "kind": "name", "via": "gb18030"}),
        ("exports/roster.csv", {"location": "银行卡号", "position": "line 2", "kind": "bank_card"}),
        ("logs/task.log.gz", {"location": "text", "position": "line 3", "kind": "phone", "via": "gzip"}),
        ("logs/notes.txt", {"position": "line 1", "kind": "phone", "embedded": False}),
        ("logs/notes.txt", {"position": "line 2", "kind": "name"}),
        ("logs/estates.txt", {"position": "line 1", "kind": "name", "embedded": True}),
        ("logs/report.html", {"kind": "name", "via": "html-entity"}),
        ("logs/core.bin", {"location": "bytes", "kind": "name", "via": "bytes"}),
    ],
)
def test_every_planted_value_is_found_where_it_was_planted(result, file, attributes):
    assert len(_hits(result, file, **attributes)) == 1, result.report(100)


def test_the_parquet_plant_is_zstd_compressed(tree):
    metadata = pq.ParquetFile(tree / "landing" / "part-00000.parquet").metadata
    assert metadata.row_group(0).column(0).compression == "ZSTD"


def test_every_occurrence_in_a_text_file_is_a_hit(tmp_path):
    (tmp_path / "a.log").write_text(f"{NAME} met {NAME}; {NAME_IN_TEXT}\n{NAME}\n", encoding="utf-8")
    scanned = scan_tree(tmp_path, _needles())
    assert [(h.position, h.masked) for h in scanned.hits] == [
        ("line 1", mask_name(NAME)),
        ("line 1", mask_name(NAME)),
        ("line 1", mask_name(NAME_IN_TEXT)),
        ("line 2", mask_name(NAME)),
    ]


def test_files_are_counted_by_what_they_are(result):
    assert result.files == {
        "duckdb": 2,
        "parquet": 1,
        "sqlite": 1,
        "xlsx": 1,
        "gzip": 1,
        "text": 6,
        "bytes": 1,
    }
    assert result.bytes_scanned > 500_000 and result.elapsed > 0 and not result.errors


def test_masked_values_are_not_leaks(result):
    assert _hits(result, "logs/masked.txt") == []


def test_the_vault_holds_only_ciphertext(result, tree):
    assert (tree / "warehouse" / "vault.duckdb").exists()
    assert _hits(result, "warehouse/vault.duckdb") == []


def test_sealed_blob_columns_are_read_as_ciphertext_in_the_quarantine_tables(tmp_path):
    """The quarantine tables' ``nonce`` and ``ciphertext`` (privacy.rowseal) are AES-GCM output, read as
    UTF-8 only as the vault's are: GB18030 decodes random bytes into Han text, now and then a name. Any
    other BLOB column, one of the same name in another table included, is still read as GB18030 too."""
    random_like = b"\x00\xff" + NAME.encode("gb18030") + b"\x00\xff"  # such bytes turn up in ciphertext
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA meta")
        for table in ("meta.quarantine", "meta.quality_quarantine", "main.debug_copy"):
            con.execute(f"CREATE TABLE {table} (kid VARCHAR, nonce BLOB, ciphertext BLOB, payload BLOB)")
            con.execute(f"INSERT INTO {table} VALUES ('q1', ?, ?, ?)", [random_like] * 3)
    result = scan_tree(tmp_path, _needles())
    assert sorted((h.location, h.kind, h.via) for h in result.hits) == [
        ("main.debug_copy.ciphertext", "name", "gb18030"),
        ("main.debug_copy.nonce", "name", "gb18030"),
        ("main.debug_copy.payload", "name", "gb18030"),
        ("meta.quality_quarantine.payload", "name", "gb18030"),
        ("meta.quarantine.payload", "name", "gb18030"),
    ]
    assert any("the quarantine tables' nonce and ciphertext" in note for note in result.notes)


def test_the_duckdb_plant_is_compressed_so_a_byte_grep_would_miss_it(tree):
    path = tree / "warehouse" / "warehouse.duckdb"
    con = duckdb.connect(str(path), read_only=True)
    compressions = {
        c
        for (c,) in con.sql(
            "SELECT compression FROM pragma_storage_info('notes') "
            "WHERE column_name = 'note' AND segment_type = 'VARCHAR'"
        ).fetchall()
    }
    con.close()
    assert compressions and all("FSST" in c for c in compressions)
    assert (
        f"联系人{NAME}电话{PHONE}".encode() not in path.read_bytes()
        and PHONE.encode() not in path.read_bytes()
    )


def test_reports_never_show_a_raw_needle(result):
    shown = "\n".join(
        [
            result.summary(),
            result.report(limit=1000),
            json.dumps(result.to_dict(), ensure_ascii=False),
            repr(result.hits),
            *map(str, result.hits),
        ]
    )
    assert result.hits and not [raw for raw in RAW if raw in shown]
    assert mask_phone(PHONE) in shown and "«" in shown


def test_the_summary_holds_counts_only(result):
    summary = result.summary()
    assert "warehouse/warehouse.duckdb :: main.notes.note :: name: 1\n" in summary
    assert not [h.masked for h in result.hits if h.masked in summary]


def test_excluded_folders_are_not_scanned(tree):
    scanned = scan_tree(tree, _needles(), exclude=[tree / "secret", tree / "warehouse" / "warehouse.duckdb"])
    assert scanned.excluded == 2
    assert not [
        h for h in scanned.hits if h.file.startswith("secret/") or h.file.endswith("warehouse.duckdb")
    ]
    assert [h for h in scanned.hits if h.file.startswith("logs/")]
    assert len(scan_tree(tree / "secret", _needles()).hits) == 2


def test_allowed_hits_are_kept_apart_not_dropped(tree, result):
    allow = allow_rules(locations=["exports/*.csv::姓名"], terms=[f"{NAME_IN_TEXT}新居"])
    scanned = scan_tree(tree, _needles(), allow=allow, exclude=[tree / "warehouse"])
    assert sorted((h.file, h.location) for h in scanned.allowed) == [
        ("exports/roster.csv", "姓名"),
        ("logs/estates.txt", "text"),
    ]
    assert len(scanned.hits) == len([h for h in result.hits if not h.file.startswith("warehouse/")]) - 2
    assert {h.location for h in scanned.hits if h.file.startswith("exports/")} == {"银行卡号", "名单"}


def test_a_hit_knows_whether_it_lies_inside_a_term(result):
    hit = _hits(result, "logs/estates.txt")[0]
    assert hit.inside(f"{NAME_IN_TEXT}新居") and not hit.inside("新居") and not hit.inside("锦江苑")


def test_an_unreadable_file_makes_the_scan_fail(tmp_path):
    (tmp_path / "broken.duckdb").write_bytes(b"\x00" * 8 + b"DUCK" + b"\x01" * 5000)
    scanned = scan_tree(tmp_path, _needles())
    assert not scanned.ok and scanned.errors[0][0] == "broken.duckdb"


def test_a_duckdb_file_held_by_a_writer_is_scanned_from_a_copy_and_its_wal_as_bytes(tmp_path):
    writer = duckdb.connect(str(tmp_path / "live.duckdb"))
    try:
        writer.execute("CREATE TABLE t (v VARCHAR)")
        writer.execute("INSERT INTO t VALUES (?)", [f"reporter {NAME}"])  # in the WAL, not checkpointed
        scanned = scan_tree(tmp_path, _needles())
    finally:
        writer.close()
    assert [(h.file, h.location) for h in scanned.hits] == [
        ("live.duckdb", "main.t.v"),
        ("live.duckdb.wal", "bytes"),
    ]
    assert scanned.files == {"duckdb": 1, "wal": 1}
    assert any("copy" in note for note in scanned.notes) and any("byte-scanned" in n for n in scanned.notes)


def test_a_sqlite_wal_is_read_and_nothing_is_written_beside_the_database(tmp_path):
    db = tmp_path / "airflow.db"
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA wal_autocheckpoint=0")
        con.execute("CREATE TABLE log (event TEXT)")
        con.execute("INSERT INTO log VALUES (?)", [f"id {ID_X}"])
        con.commit()
        before = sorted(p.name for p in tmp_path.iterdir())
        scanned = scan_tree(tmp_path, _needles(), exclude=[tmp_path / "airflow.db-wal"])
        after = sorted(p.name for p in tmp_path.iterdir())
    finally:
        con.close()
    assert before == after
    assert [(h.file, h.location, h.variant) for h in scanned.hits] == [("airflow.db", "log.event", "id18")]


# -- matching rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        PHONE,
        f"{PHONE[:3]}-{PHONE[3:7]}-{PHONE[7:]}",
        f"+86 {PHONE}",
        f"86{PHONE}",
        f"0086 {PHONE}",
        f"{PHONE[:3]} {PHONE[3:7]} {PHONE[7:]}",
        "".join(chr(ord(c) + 0xFEE0) for c in PHONE),
        f"电话{PHONE}。",
        "1.5698940672e+10",
    ],
)
def test_a_phone_is_found_in_every_format(text):
    assert [m.needle.kind for m in _needles().find(text)] == ["phone"]


@pytest.mark.parametrize(
    ("text", "variant"),
    [
        (ID, "id18"),
        (f"'{ID[:6]} {ID[6:14]} {ID[14:]} ", "id18"),
        (ID_X.lower(), "id18"),
        (ID[:6] + ID[8:17], "legacy15"),
        (repr(float(f"{int(ID):.16g}")), "id_as_float"),
        (str(int(float(ID))), "id_as_float"),
        (PASSPORT, "passport"),
    ],
)
def test_an_id_number_is_found_in_every_format(text, variant):
    assert [m.needle.variant for m in _needles().find(text)] == [variant]


@pytest.mark.parametrize(
    "text",
    [
        mask_id(ID),
        mask_phone(PHONE),
        mask_name(NAME),
        f"{int(ID):.5E}",
        "尹",
        "一鸣",
        f"X{PASSPORT}",
        ID[:17],
    ],
)
def test_masks_fragments_and_damaged_values_are_not_found(text):
    assert _needles().find(text) == []


@pytest.mark.parametrize(
    "text", [NAME, "尹\u3000一鸣", "尹  一鸣", "买买提·艾力", "买买提艾力", "联系人尹一鸣电话"]
)
def test_a_name_is_found_with_blanks_and_middle_dots_inside(text):
    assert [m.needle.kind for m in _needles().find(text)] == ["name"]


def test_a_phone_inside_an_id_number_is_not_reported_twice():
    needles = Needles.from_values(ids=[ID], phones=[ID[3:14]])
    assert [m.needle.variant for m in needles.find(f"ID {ID}")] == ["id18"]


def test_redact_masks_every_needle():
    assert _needles().redact(f"{NAME}: {PHONE}") == f"{mask_name(NAME)}: {mask_phone(PHONE)}"


@pytest.mark.parametrize(
    "text",
    [
        f"x{PHONE}",
        f"{PHONE[:3]} {PHONE[3:7]} {PHONE[7:]}",
        "".join(chr(ord(c) + 0xFEE0) for c in PHONE),
        "尹\u3000一鸣",
        "买买提·艾力",
        f"{float(int(ID))!r}",
        PASSPORT.lower(),
        "\\u5c39\\u4e00\\u9e23",
        "&#23609;",
    ],
)
def test_duckdb_prefilter_passes_every_form_the_matcher_finds(text):
    pattern = _needles().sql_prefilter()
    assert duckdb.sql("SELECT regexp_matches(?, ?)", params=[text, pattern]).fetchall() == [(True,)]


# -- a simulated street -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def street_needles(street_dir) -> Needles:
    return needles_from_street(street_dir)


def test_needles_cover_the_truth_and_the_sources(street_dir, street_needles):
    with (street_dir / "truth" / "persons.csv").open(encoding="utf-8") as f:
        persons = list(csv.DictReader(f))
    assert all(street_needles.find(p["id_number"]) and street_needles.find(p["name"]) for p in persons)
    con = sqlite3.connect(
        f"{(street_dir / 'registry' / 'rrs.sqlite').as_uri()}?mode=ro&immutable=1", uri=True
    )
    phones = [v for (v,) in con.execute("SELECT lxdh FROM t_jm WHERE lxdh GLOB '*[0-9]*'")]
    con.close()
    assert phones and all(street_needles.find(v) for v in phones)
    counts = street_needles.counts()
    assert {
        "id_number/id18",
        "id_number/legacy15",
        "id_number/passport",
        "id_number/id_as_float",
        "phone/mobile",
        "bank_card/card",
        "name/name",
    } <= set(counts)
    assert street_needles.skipped["id_number:masked"] > 0  # the grid vendor's masks are no needles


def test_scanning_the_street_finds_its_sources_and_nothing_in_its_event_log(street_dir, street_needles):
    scanned = scan_tree(street_dir, street_needles, exclude=[street_dir / "truth"])
    files = {h.file for h in scanned.hits}
    assert {
        "registry/rrs.sqlite",
        "grid/residents.json",
        "grid/workers.json",
        "grid/events.json",
        "iot/cardholders.json",
    } <= files
    assert {f for f in files if f.startswith("civil/")} == {
        str(p.relative_to(street_dir)) for p in street_dir.glob("civil/*")
    }
    assert not files & {"iot/events.jsonl", "iot/devices.json", "grid/grids.json", "grid/visits.json"}
    assert scanned.ok is False and not scanned.errors


def test_command_exits_1_on_hits_and_0_when_clean(street_dir, tmp_path, capsys):
    with (street_dir / "truth" / "persons.csv").open(encoding="utf-8") as f:
        person = next(csv.DictReader(f))
    (tmp_path / "clean").mkdir()
    (tmp_path / "clean" / "run.log").write_text("INFO loaded 300 rows\n", encoding="utf-8")
    assert command(street_dir, tmp_path / "clean", show=5) == 0
    (tmp_path / "dirty").mkdir()
    (tmp_path / "dirty" / "run.log").write_text(f"ERROR bad row {person['id_number']}\n", encoding="utf-8")
    assert command(street_dir, tmp_path / "dirty", show=5, json_out=tmp_path / "scan.json") == 1
    output = capsys.readouterr().out + (tmp_path / "scan.json").read_text(encoding="utf-8")
    assert "run.log :: text :: line 1: id_number/id18" in output and person["id_number"] not in output
