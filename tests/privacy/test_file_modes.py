"""Least privilege on disk: what holds identifiers, pseudonyms or keys is owner-only, and created so."""

from __future__ import annotations

from islandbridge import storage
from islandbridge.config import owner_only_files
from islandbridge.devtools.demo import airflow_env


def mode(path) -> int:
    """The permission bits of ``path``."""
    return path.stat().st_mode & 0o777


def test_inside_owner_only_files_new_files_and_folders_are_private(tmp_path, loose_umask):
    with owner_only_files():
        (tmp_path / "f").write_text("x")
        (tmp_path / "d").mkdir()
    (tmp_path / "after").write_text("x")
    assert (mode(tmp_path / "f"), mode(tmp_path / "d"), mode(tmp_path / "after")) == (0o600, 0o700, 0o644)


def test_a_warehouse_opened_for_writing_becomes_owner_only(tmp_path, loose_umask):
    path = tmp_path / "warehouse.duckdb"
    storage.connect(str(path)).close()
    assert mode(path) == 0o600
    path.chmod(0o644)
    storage.connect(str(path)).close()
    assert mode(path) == 0o600


def test_the_demos_airflow_database_is_owner_only(tmp_path, loose_umask):
    env = airflow_env(tmp_path, tmp_path / "dags", tmp_path / "islandbridge.yml", {})
    database = tmp_path / "airflow" / "airflow.db"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{database}"
    assert (mode(database), mode(tmp_path / "airflow")) == (0o600, 0o700)
