"""The one contract every connector meets, run over every kind against the simulated street.

Schema as declared, keys unique and non-null, deterministic for a fixed window, a re-run with the returned
state lands nothing from a static source, and the accounting balances. A kind that is not registered
fails here (it does not skip): the suite is the definition of done for a connector.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from islandbridge.config import Secret, SourceSettings, parse_as_of
from islandbridge.connectors import ExtractContext, build_connector
from islandbridge.landing.zone import MANIFEST, RECORD_KEY, LandingWriter
from tests.conftest import AS_OF, GRID_CLIENT, IOT_KEY

KINDS = ["sql_registry", "grid_rest", "civil_files", "iot_rest"]
AS_OF_END = parse_as_of(AS_OF.isoformat())


def _options(kind: str, street_dir: Path, request: pytest.FixtureRequest) -> dict:
    if kind == "sql_registry":
        return {"url": f"sqlite:///{street_dir}/registry/rrs.sqlite"}
    if kind == "civil_files":
        return {"path": str(street_dir / "civil")}
    if kind == "grid_rest":
        server = request.getfixturevalue("grid_server")
        return {
            "base_url": server.base_url,
            "client_id": GRID_CLIENT[0],
            "client_secret": Secret(GRID_CLIENT[1], "test"),
        }
    if kind == "iot_rest":
        server = request.getfixturevalue("iot_server")
        return {"base_url": server.base_url, "api_key": Secret(IOT_KEY, "test")}
    raise AssertionError(f"the contract suite does not know how to configure {kind!r}")


@pytest.fixture(params=KINDS)
def source(request, street_dir):
    """A connector of each kind, configured against the simulated street (servers started as needed)."""
    return build_connector(
        SourceSettings(request.param, request.param, _options(request.param, street_dir, request))
    )


def extract(connector, root: Path, run_id: str, state=None) -> tuple[dict, dict]:
    """One extraction of the fixed window into ``root``: ``(state, manifest)``."""
    writer = LandingWriter.open(root.as_uri(), run_id, connector.name, connector.streams())
    new_state = connector.extract(ExtractContext(run_id, AS_OF_END, state or {}, writer))
    return dict(new_state), writer.close(new_state)


def table(root: Path, run_id: str, connector, stream: str):
    return pq.read_table(root / run_id / connector.name / stream)


def test_each_stream_lands_exactly_the_declared_columns_and_the_record_key(source, tmp_path):
    extract(source, tmp_path, "r1")
    for stream in source.streams():
        assert table(tmp_path, "r1", source, stream.name).column_names == [*stream.columns, RECORD_KEY]


def test_record_keys_are_unique_and_non_null_per_stream(source, tmp_path):
    extract(source, tmp_path, "r1")
    for stream in source.streams():
        keys = table(tmp_path, "r1", source, stream.name).column(RECORD_KEY).to_pylist()
        assert None not in keys and "" not in keys, stream.name
        assert len(keys) == len(set(keys)), stream.name


def test_two_extractions_of_one_window_land_identical_rows(source, tmp_path):
    extract(source, tmp_path, "a")
    extract(source, tmp_path, "b")
    for stream in source.streams():
        rows = [
            sorted(table(tmp_path, run, source, stream.name).to_pylist(), key=lambda r: r[RECORD_KEY])
            for run in ("a", "b")
        ]
        assert rows[0] == rows[1], stream.name


def test_rerun_with_the_returned_state_lands_no_new_rows(source, tmp_path):
    state, _ = extract(source, tmp_path, "r1")
    _, manifest = extract(source, tmp_path, "r2", state)
    assert {name: counts["landed"] for name, counts in manifest["streams"].items()} == {
        s.name: 0 for s in source.streams()
    }


def test_accounting_balances_and_the_manifest_matches_the_landed_rows(source, tmp_path):
    _, manifest = extract(source, tmp_path, "r1")
    assert (tmp_path / "r1" / source.name / MANIFEST).is_file()
    assert set(manifest["streams"]) == {s.name for s in source.streams()}
    for name, counts in manifest["streams"].items():
        assert counts["read"] == counts["landed"] + counts["quarantined"] + counts["duplicates"], name
        assert counts["landed"] == table(tmp_path, "r1", source, name).num_rows, name
    assert sum(c["landed"] for c in manifest["streams"].values()) > 0
