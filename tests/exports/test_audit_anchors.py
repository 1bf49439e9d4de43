"""The audit log anchored and verified: a tampered or cut-off log stops reveal and export, and
`islandbridge audit verify` says what happened."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pytest

from islandbridge import pipeline
from islandbridge.cli import main
from islandbridge.delivery.audit_check import verify_audit
from islandbridge.delivery.export import export_run
from islandbridge.delivery.reveal import RevealError, reveal
from islandbridge.delivery.snapshot import WarehouseBusyError
from islandbridge.privacy.audit import AuditBrokenError, AuditLog
from tests.exports.support import AS_OF, DAY, P1, P3, P4, RUN_ID
from tests.helpers import held


def ask(settings, key=P1):
    return reveal(
        settings,
        department="civil_affairs",
        person_keys=[key],
        columns=["name"],
        purpose="roster correction",
        actor="li.na",
    )


@pytest.fixture
def config(settings):
    """A configuration file naming the test street's warehouse, audit log and exports (no sources)."""
    path = settings.warehouse_path.parent.parent / "islandbridge.yml"
    path.write_text(
        "street: {code: '511403001'}\nlanding: {url: landing}\n"
        f"warehouse: {{path: '{settings.warehouse_path}'}}\naudit: {{path: '{settings.audit_path}'}}\n"
        f"exports: {{dir: '{settings.exports_dir}'}}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def three(settings):
    """Three reveals: three entries, each anchored in the warehouse."""
    for key in (P1, P3, P4):
        ask(settings, key)
    return settings.audit_path.read_text(encoding="utf-8").splitlines(keepends=True)


def edit(lines):
    body = json.loads(lines[0])
    body["purpose"] = "reveal: nothing to see"
    return [json.dumps(body, ensure_ascii=False) + "\n", *lines[1:]]


TAMPERING = {
    "edited": edit,
    "deleted": lambda lines: lines[1:],
    "reordered": lambda lines: [lines[1], lines[0], *lines[2:]],
}


@pytest.mark.parametrize("how", sorted(TAMPERING))
def test_a_tampered_log_stops_reveal_export_and_audit_verify(settings, config, three, capsys, how):
    settings.audit_path.write_text("".join(TAMPERING[how](three)), encoding="utf-8")
    tampered = settings.audit_path.read_bytes()

    with pytest.raises(AuditBrokenError, match="does not verify"):
        ask(settings)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as ro:
        with pytest.raises(AuditBrokenError, match="does not verify"):
            export_run(settings, ro, AS_OF, RUN_ID)
    assert settings.audit_path.read_bytes() == tampered, "nothing appended to a broken chain"
    assert not settings.exports_dir.exists(), "nothing exported"

    assert main(["audit", "verify", "--config", str(config)]) == 4
    err = capsys.readouterr().err
    assert err.startswith("islandbridge: error: the re-identification audit log") and "tampered" in err
    assert err.count("\n") == 1


def test_an_intact_log_verifies_against_every_recorded_anchor(settings, config, three, capsys):
    assert main(["audit", "verify", "--config", str(config)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["ok"], result["entries"], result["anchors"]) == (True, 3, 3)
    assert result["head"] == AuditLog(settings.audit_path).head()


def test_cutting_off_the_newest_entries_is_detected_against_the_warehouses_anchor(settings, config, three):
    settings.audit_path.write_text("".join(three[:2]), encoding="utf-8")
    assert AuditLog(settings.audit_path).verify(), "the chain alone cannot tell"
    with pytest.raises(AuditBrokenError, match="has 2 entries but meta.audit_anchors .reveal.* recorded 3"):
        verify_audit(settings)
    with pytest.raises(AuditBrokenError, match="cut off"):
        ask(settings)
    assert main(["audit", "verify", "--config", str(config)]) == 4


def test_a_log_cut_off_and_written_on_again_is_detected(settings, three):
    settings.audit_path.write_text("".join(three[:2]), encoding="utf-8")
    AuditLog(settings.audit_path).append(
        "li.na", "reveal: roster correction", "civil_affairs", ["x"], ["name"], at=dt.datetime.now(dt.UTC)
    )
    with pytest.raises(AuditBrokenError, match="entry 3 is not the one recorded in meta.audit_anchors"):
        verify_audit(settings)


def test_a_deleted_log_is_detected(settings, three):
    settings.audit_path.unlink()
    with pytest.raises(AuditBrokenError, match="has 0 entries but .* recorded 3"):
        verify_audit(settings)
    with pytest.raises(AuditBrokenError):
        ask(settings)
    assert not settings.audit_path.exists()


def test_the_export_step_anchors_the_log_in_the_manifests_and_the_warehouse(settings):
    clock = lambda: dt.datetime(2026, 11, 21, 1, tzinfo=dt.UTC)  # noqa: E731
    summary = pipeline.export(settings, AS_OF, clock)
    entries, head = AuditLog(settings.audit_path).tip()
    assert entries > 0 and (summary["audit_length"], summary["audit_head"]) == (entries, head)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as ro:
        assert ro.execute("SELECT command, run_id, entries, head FROM meta.audit_anchors").fetchall() == [
            ("export", RUN_ID, entries, head)
        ]
    manifest = json.loads((settings.exports_dir / "civil_affairs" / DAY / "manifest.json").read_text())
    assert manifest["audit"]["entries"] <= entries and manifest["audit"]["head"]
    assert verify_audit(settings)["anchors"] == 1 + 3  # the warehouse's and each department's manifest

    settings.audit_path.write_text("", encoding="utf-8")
    with pytest.raises(AuditBrokenError, match="entries were cut off"):
        verify_audit(settings)


def test_reveal_and_audit_verify_while_another_process_holds_the_warehouse_are_busy_naming_it(
    settings, three
):
    """A sync holding the warehouse: try again later (exit 3), with the process that holds it."""
    with held(settings.warehouse_path) as pid:
        with pytest.raises(WarehouseBusyError, match=f"PID {pid} holds its lock"):
            ask(settings)
        with pytest.raises(WarehouseBusyError, match=f"PID {pid} holds its lock"):
            verify_audit(settings)
    assert len(list(AuditLog(settings.audit_path).entries())) == 3


def test_a_warehouse_that_cannot_be_opened_is_said_so_not_called_busy(settings, config, three, capsys):
    """A damaged file (or one that is no DuckDB file) would not open the next time either: reveal and
    audit verify say what DuckDB found, not that a running step holds it."""
    settings.warehouse_path.write_bytes(b"not a database" * 512)
    with pytest.raises(RevealError, match="cannot open the warehouse .*not a valid DuckDB database file"):
        ask(settings)
    assert main(["audit", "verify", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("islandbridge: error: cannot read the audit anchors") and err.count("\n") == 1
    assert "not a valid DuckDB database file" in err and "holds it" not in err
    assert len(list(AuditLog(settings.audit_path).entries())) == 3
