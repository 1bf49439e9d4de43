"""The layout docs/architecture.md promises (issue #12): no import cycle among the product's modules, no
product or developer-tool module over 600 lines, no top-level product package holding more than 30% of
the product's lines, every package listed in pyproject.toml to install. The layer contracts themselves are
import-linter's (`make test` runs them)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import grimp
import pytest

from islandbridge.devtools.lint_imports import lay_out

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = {
    package: folder
    for package, folder in tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["package-dir"].items()
    if not package.startswith("islandbridge.devtools")
}


@pytest.fixture(scope="module")
def graph(tmp_path_factory, monkeypatch_module):
    laid = tmp_path_factory.mktemp("layout")
    lay_out(ROOT, laid)
    monkeypatch_module.syspath_prepend(str(laid))
    return grimp.build_graph("islandbridge")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _product_lines() -> dict[Path, int]:
    files = {}
    for package, folder in PRODUCT.items():
        for path in (ROOT / folder).rglob("*.py"):
            relative = path.relative_to(ROOT / folder)
            if (
                package == "islandbridge"
                and relative.parts[0] not in ("cli", "config", "pipeline")
                and len(relative.parts) > 1
            ):
                continue
            files[path] = len(path.read_text(encoding="utf-8").splitlines())
    return files


def test_no_import_cycle_among_product_modules(graph):
    product = {m for m in graph.modules if not m.startswith("islandbridge.devtools")}
    cycles = [
        (a, b)
        for a in product
        for b in graph.find_modules_directly_imported_by(a)
        if b in product and a != b and graph.chain_exists(importer=b, imported=a)
    ]
    assert cycles == []


def test_no_product_module_is_over_600_lines():
    assert {str(p.relative_to(ROOT)): n for p, n in _product_lines().items() if n > 600} == {}


def test_no_developer_tool_module_is_over_600_lines():
    """The developer tools (simulator, benchmarks, leak scanner) follow the same guide as the product."""
    tools = (ROOT / "devtools").rglob("*.py")
    lines = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in tools}
    assert {path: n for path, n in lines.items() if n > 600} == {}


def test_no_top_level_product_package_holds_over_30_percent_of_the_lines():
    lines = _product_lines()
    total = sum(lines.values())
    share = {}
    for path, n in lines.items():
        top = path.relative_to(ROOT).parts[0]
        share[top] = share.get(top, 0) + n
    assert {top: round(n / total, 3) for top, n in share.items() if n / total > 0.30} == {}


def test_every_product_and_tool_package_is_listed_to_install():
    """A wheel carries only the packages pyproject.toml lists: one missing there (``islandbridge.cli`` was)
    imports in the editable checkout and is absent once installed, so the ``islandbridge`` command fails."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    found = {
        ".".join([package, *init.parent.relative_to(ROOT / folder).parts])
        for package, folder in setuptools["package-dir"].items()
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert found - set(setuptools["packages"]) == set()
