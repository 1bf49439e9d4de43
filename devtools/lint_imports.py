"""Run import-linter over the installed layout of the package.

The repository keeps the pipeline's folders at the top (``connectors/``, ``landing/`` …) and installs
them as sub-packages of ``islandbridge`` through ``package-dir`` in pyproject.toml. import-linter walks a
package's folder on disk, so it would see only ``islandbridge/``; this lays the same files out as they
install (copies of the ``.py`` files in a temporary folder) and runs ``lint-imports`` over that, with
the contracts from pyproject.toml. Exit status is lint-imports'.

    python -m islandbridge.devtools.lint_imports
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path


def lay_out(project: Path, target: Path) -> None:
    """Copy every package's ``.py`` files from ``project`` to where they install, under ``target``."""
    tool = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    for package, folder in tool["package-dir"].items():
        source = project / folder
        dest = target.joinpath(*package.split("."))
        for path in source.rglob("*.py"):
            relative = path.relative_to(source)
            if relative.parts[0] in tool["package-dir"].values() and folder != relative.parts[0]:
                continue
            out = dest / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out)


def main() -> int:
    project = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="ib-lint-imports-") as tmp:
        lay_out(project, Path(tmp))
        env = dict(os.environ, PYTHONPATH=tmp)
        exe = Path(sys.executable).with_name("lint-imports")
        return subprocess.call([str(exe), str(project / "pyproject.toml")], env=env, cwd=tmp)


if __name__ == "__main__":
    sys.exit(main())
