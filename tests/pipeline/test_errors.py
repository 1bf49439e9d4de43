"""One error tree: every error the product raises is an IslandbridgeError, terminal or transient."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from islandbridge.errors import (
    ConfigError,
    FatalSourceError,
    IslandbridgeError,
    RetriableError,
    TerminalError,
    TransientError,
    count,
)

PACKAGES = (
    "islandbridge",
    "islandbridge.connectors",
    "islandbridge.landing",
    "islandbridge.quality",
    "islandbridge.privacy",
    "islandbridge.identity",
    "islandbridge.warehouse",
    "islandbridge.delivery",
    "islandbridge.schemas",
    "islandbridge.transforms",
)


def _product_modules() -> list:
    modules = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        modules.append(package)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            if info.name.startswith("islandbridge.devtools") or info.name.endswith(".__main__"):
                continue  # developer tools (simulator, demo), not the product
            modules.append(importlib.import_module(info.name))
    return modules


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


@pytest.fixture(scope="module")
def product_modules():
    return _product_modules()


def test_every_exception_the_product_defines_is_an_islandbridge_error(product_modules):
    outside = [
        f"{module.__name__}.{name}"
        for module in product_modules
        for name, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__
        and issubclass(cls, BaseException)
        and not issubclass(cls, IslandbridgeError)
    ]
    assert outside == []


def test_every_islandbridge_error_is_exactly_one_of_terminal_and_transient(product_modules):
    errors = {c for c in _subclasses(IslandbridgeError) if c.__module__.startswith("islandbridge.")}
    assert len(errors) > 25  # the walk really imported the product's folders
    neither_or_both = sorted(
        f"{c.__module__}.{c.__qualname__}"
        for c in errors
        if issubclass(c, TerminalError) == issubclass(c, TransientError)
    )
    assert neither_or_both == []


def test_the_root_itself_is_neither():
    assert not issubclass(IslandbridgeError, (TerminalError, TransientError))


@pytest.mark.parametrize(
    ("module", "name", "kind"),
    [
        ("islandbridge.errors", "ConfigError", TerminalError),
        ("islandbridge.errors", "FatalSourceError", TerminalError),
        ("islandbridge.errors", "RetriableError", TransientError),
        ("islandbridge.landing.zone", "SchemaDriftError", FatalSourceError),
        ("islandbridge.connectors.roster_files", "RosterError", FatalSourceError),
        ("islandbridge.landing.raw", "LoadError", TerminalError),
        ("islandbridge.identity.tables", "IdentityStateError", TerminalError),
        ("islandbridge.privacy.keys", "KeyringError", ConfigError),
        ("islandbridge.quality.errors", "QualityGateError", TerminalError),
        ("islandbridge.delivery.snapshot", "SnapshotError", TerminalError),
        ("islandbridge.delivery.snapshot", "WarehouseBusyError", RetriableError),
    ],
)
def test_each_error_is_filed_by_what_the_operator_does(module, name, kind):
    assert issubclass(getattr(importlib.import_module(module), name), kind)


def test_exit_statuses_are_unchanged():
    from islandbridge.delivery.reveal import RevealError
    from islandbridge.quality.errors import QualityConfigError, QualityGateError

    assert IslandbridgeError.exit_status == 4
    assert ConfigError.exit_status == 2 and QualityConfigError.exit_status == 2
    assert RetriableError.exit_status == 3 and TransientError.exit_status == 3
    assert FatalSourceError.exit_status == 4 and TerminalError.exit_status == 4
    assert QualityGateError.exit_status == 5
    assert RevealError.exit_status == 2


def test_existing_except_clauses_still_catch():
    from islandbridge.connectors.roster_files import RosterError
    from islandbridge.landing.zone import SchemaDriftError

    with pytest.raises(RosterError):
        raise RosterError("the workbook has no worksheet")
    with pytest.raises(IslandbridgeError):
        raise SchemaDriftError("events", ["wechat"], ["id"])


def test_a_count_is_worded_singular_or_plural():
    assert [count(n, "record") for n in (0, 1, 2, 1200)] == [
        "0 records",
        "1 record",
        "2 records",
        "1,200 records",
    ]
    assert count(1, "person", "persons") == "1 person" and count(3, "person", "persons") == "3 persons"
