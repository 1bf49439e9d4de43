"""The re-identification audit log: a hash chain that names the first entry edited, removed or moved."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from islandbridge.privacy.audit import GENESIS, Anchor, AuditBrokenError, AuditError, AuditLog

AT = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@pytest.fixture
def log(tmp_path):
    log = AuditLog(tmp_path / "audit" / "reid.jsonl")
    for n in range(1, 5):
        log.append(
            f"worker{n}",
            "welfare visit list",
            "grid_centre",
            [f"gc_{n:032x}"],
            ["name", "phone"],
            at=AT + dt.timedelta(minutes=n),
        )
    return log


def lines(log):
    return log.path.read_text(encoding="utf-8").splitlines()


def rewrite(log, new_lines):
    log.path.write_text("".join(line + "\n" for line in new_lines), encoding="utf-8")


def test_intact_chain_verifies(log):
    result = log.verify()
    assert result.ok and result.entries == 4 and result.head == log.head()


def test_entries_read_back_as_written(log):
    first = next(log.entries())
    assert (first.seq, first.actor, first.department, first.person_refs, first.columns, first.prev) == (
        1,
        "worker1",
        "grid_centre",
        (f"gc_{1:032x}",),
        ("name", "phone"),
        GENESIS,
    )
    assert first.at == "2026-11-20T01:31:00+00:00"


def test_each_entry_chains_onto_the_previous_hash(log):
    entries = list(log.entries())
    assert [e.prev for e in entries[1:]] == [e.hash for e in entries[:-1]]


def test_edited_entry_is_named(log):
    text = lines(log)
    text[2] = text[2].replace("worker3", "nobody")
    rewrite(log, text)
    result = log.verify()
    assert not result.ok and result.bad_line == 3 and result.entries == 2
    assert "line 3" in result.reason and "edited" in result.reason


def test_deleted_entry_is_named(log):
    text = lines(log)
    del text[1]
    rewrite(log, text)
    result = log.verify()
    assert not result.ok and result.bad_line == 2
    assert "line 2 holds entry 3" in result.reason


def test_reordered_entries_are_named(log):
    text = lines(log)
    text[1], text[2] = text[2], text[1]
    rewrite(log, text)
    result = log.verify()
    assert not result.ok and result.bad_line == 2 and "moved" in result.reason


def test_edit_with_recomputed_hash_breaks_the_next_link(log):
    import hashlib

    text = lines(log)
    body = json.loads(text[1])
    body["purpose"] = "curiosity"
    content = json.dumps(
        {k: v for k, v in body.items() if k != "hash"},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    body["hash"] = hashlib.sha256(content.encode()).hexdigest()
    text[1] = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    rewrite(log, text)
    result = log.verify()
    assert result.bad_line == 3 and "entry 2 was replaced" in result.reason


def test_cut_off_tail_is_caught_by_an_anchored_head(log):
    anchor = log.head()
    rewrite(log, lines(log)[:-1])
    assert log.verify().ok  # a bare chain cannot see it...
    result = log.verify(expected_head=anchor)
    assert not result.ok and "cut off" in result.reason  # ...an anchor can


def test_anchor_stays_valid_as_entries_are_appended(log):
    anchor = log.head()
    log.append("worker9", "welfare visit list", "grid_centre", [], ["name"], at=AT)
    assert log.verify(expected_head=anchor).ok


def test_append_keeps_earlier_bytes(log):
    before = log.path.read_bytes()
    log.append("worker5", "allowance review", "civil_affairs", ["ca_1"], ["id_number"], at=AT)
    after = log.path.read_bytes()
    assert after.startswith(before) and log.verify().entries == 5


@pytest.mark.parametrize("purpose", ["", "   "])
def test_empty_purpose_is_refused(tmp_path, purpose):
    log = AuditLog(tmp_path / "a.jsonl")
    with pytest.raises(AuditError, match="non-empty purpose"):
        log.append("worker1", purpose, "grid_centre", ["gc_1"], ["name"], at=AT)
    assert not log.path.exists()


def test_naive_time_is_refused(tmp_path):
    with pytest.raises(AuditError, match="timezone-aware"):
        AuditLog(tmp_path / "a.jsonl").append("w", "p", "grid_centre", [], [], at=dt.datetime(2026, 1, 1))


def test_half_written_last_line_stops_appends(log):
    with log.path.open("a", encoding="utf-8") as f:
        f.write('{"seq": 5, "at"')
    with pytest.raises(AuditError, match="does not verify: line 5 is not valid JSON"):
        log.append("w", "p", "grid_centre", [], [], at=AT)
    assert log.verify().bad_line == 5


def test_empty_log_verifies(tmp_path):
    result = AuditLog(tmp_path / "none.jsonl").verify()
    assert result.ok and result.entries == 0 and result.head == GENESIS


def test_nothing_is_appended_to_a_chain_broken_in_the_middle(log):
    lines = log.path.read_text(encoding="utf-8").splitlines(keepends=True)
    body = json.loads(lines[1])
    body["actor"] = "someone_else"
    log.path.write_text("".join([lines[0], json.dumps(body) + "\n", *lines[2:]]), encoding="utf-8")
    before = log.path.read_bytes()
    with pytest.raises(AuditBrokenError, match="entry at line 2 .seq 2. was edited"):
        log.append("w", "p", "grid_centre", [], [], at=AT)
    assert log.path.read_bytes() == before


def test_anchors_catch_entries_cut_off_the_end(log):
    entries, head = log.tip()
    assert log.verify(anchors=[Anchor(entries, head, "the warehouse")])
    lines = log.path.read_text(encoding="utf-8").splitlines(keepends=True)
    log.path.write_text("".join(lines[:-1]), encoding="utf-8")
    result = log.verify(anchors=[Anchor(entries, head, "the warehouse")])
    assert (
        not result
        and result.reason
        == "the log has 3 entries but the warehouse recorded 4: entries were cut off the end"
    )
