"""Registry rows of one flat whose stays overlap are two people (`stays`), however alike they look.

The case: a father and his son of one name at one flat. The son's row has moved out and its number fails
its check digit, the father's row is living and gives no birth date, and both give the son's phone: the
model scores the pair as one person, and the registry's rule that a moved-out row and a living row may be
one person lets it through. Their stays (move-in to exit) overlap, which one person's cannot. Every name,
number and phone is synthetic.
"""

from __future__ import annotations

import duckdb

from islandbridge.config import parse_as_of
from islandbridge.identity.clusters import build_clusters
from islandbridge.identity.deterministic import id_links
from islandbridge.identity.records import load_records, person_streams
from islandbridge.identity.stays import overlap, together
from islandbridge.privacy.configured import open_vault
from islandbridge.privacy.sealing import SealedColumns
from tests.identity.strategies import pairs, record, table
from tests.identity.support import add_run, land

FLAT = "XQ001|9|4|1701"
PHONE = "+8613800138000"


def test_one_stay_ending_the_day_the_next_begins_does_not_overlap_it():
    assert not overlap(("2020-01-01", "2022-07-16"), ("2022-07-16", "9999"))
    assert overlap(("2022-08-11", "2026-09-08"), ("2022-07-16", "9999"))
    assert overlap(("2022-07-16", "9999"), ("2022-08-11", "2026-09-08"))


def _father_and_son():
    """0 the son's moved-out row (birth known), 1 the father's living row (no birth), both with the son's
    phone; 2 a door card of the name and phone."""
    fields = {
        "name_key": "欧阳彬",
        "pinyin_key": "ouyangbin",
        "sex": "M",
        "house_key": FLAT,
        "phones": [PHONE],
    }
    records = table(
        [
            record(0, birth="1976-11-21", registered=True, **fields),
            record(1, scope="resident_registry/t_jm:current", **fields),
            record(2, name_key="欧阳彬", pinyin_key="ouyangbin", house_key=FLAT, phones=[PHONE]),
        ]
    )
    return records, pairs([(0, 1, 0.99999), (0, 2, 0.9994), (1, 2, 0.9994)])


def test_rows_registered_together_at_a_flat_are_never_one_person():
    records, scored = _father_and_son()
    alike = build_clusters(records, id_links(records), scored)
    assert alike.cluster[0] == alike.cluster[1]  # what the records say without their stays
    found = build_clusters(records, id_links(records), scored, together=[(0, 1)])
    assert found.cluster[0] != found.cluster[1]
    assert {(r.uid_l, r.uid_r): r.reason for r in found.reviews}[(0, 1)] == "registered_together"


def test_rows_registered_together_with_one_valid_id_number_are_one_person_put_to_review():
    """An equal valid ID number is stronger evidence than two stays: one person, whom the registry lists
    twice at once at the flat; that inconsistency goes to the review queue with its reason."""
    number = "511403197611210014"
    fields = {"name_key": "欧阳彬", "pinyin_key": "ouyangbin", "sex": "M", "house_key": FLAT}
    records = table(
        [
            record(0, id_full=number, registered=True, **fields),
            record(1, id_full=number, scope="resident_registry/t_jm:current", **fields),
        ]
    )
    found = build_clusters(records, id_links(records), pairs([]), together=[(1, 0)])
    assert found.cluster[0] == found.cluster[1]
    assert [(r.uid_l, r.uid_r, r.reason) for r in found.reviews] == [(0, 1, "registered_together_same_id")]
    assert build_clusters(records, id_links(records), pairs([])).reviews == []  # not together: nothing to ask


def test_together_pairs_a_flats_rows_of_one_name_whose_stays_overlap(warehouse_copy):
    """Son (moved in 2022-08-11, out 2026-09-08) and father (living since 2022-07-16) overlap; a third row
    of the name that moved out the day the father moved in, and a fourth of another name, do not pair."""
    with duckdb.connect(str(warehouse_copy.warehouse_path)) as con:
        (house,) = con.execute("SELECT fwbh FROM raw.registry__t_fw ORDER BY fwbh LIMIT 1").fetchone()
        run_id, as_of = add_run(con, "2026-11-21")
        rows = {
            "t_jm:900001": ("欧阳彬", "2022-08-11", "2", "2026-09-08"),
            "t_jm:900002": ("欧阳彬", "2022-07-16", "1", None),
            "t_jm:900003": ("欧阳彬", "2019-03-01", "2", "2022-07-16"),
            "t_jm:900004": ("欧阳琳", "2022-07-16", "1", None),
        }
        for key, (name, moved_in, status, moved_out) in rows.items():
            row = {"jmid": key.split(":")[1], "xm": name, "xb": "1", "lxdh": "13800138000", "fwbh": house}
            row |= {"rzrq": moved_in, "zt": status, "zxrq": moved_out}
            land(con, "registry__t_jm", run_id, key, row, warehouse_copy)
        with open_vault(warehouse_copy) as vault:
            records = load_records(con, person_streams(warehouse_copy), as_of, SealedColumns(vault))
        found = together(con, person_streams(warehouse_copy), parse_as_of("2026-11-21"), records)
    uid = dict(zip(records["record_key"].to_pylist(), records["uid"].to_pylist(), strict=True))
    ours = [(a, b) for a, b in found if {a, b} <= {uid[k] for k in rows}]
    assert ours == [tuple(sorted((uid["t_jm:900001"], uid["t_jm:900002"])))]
