"""A hand-made street: marts in a warehouse, identifiers in a vault, keys in the settings.

Built once per session; each test gets its own copy (so it can export, re-export and break things).
"""

from __future__ import annotations

import shutil

import duckdb
import pytest

from tests.exports.support import build_street, keyrings, make_settings


@pytest.fixture(scope="session")
def rings() -> dict[str, str]:
    return keyrings()


@pytest.fixture(scope="session")
def street_home(tmp_path_factory, rings):
    home = tmp_path_factory.mktemp("export_street")
    build_street(make_settings(home, rings))
    return home


@pytest.fixture
def settings(tmp_path, street_home, rings):
    """A private copy of the hand-made street, nothing exported yet."""
    for part in ("warehouse", "private"):
        shutil.copytree(street_home / part, tmp_path / part)
    return make_settings(tmp_path, rings)


@pytest.fixture
def con(settings):
    """The warehouse, read-only, as the export step opens it."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        yield con
