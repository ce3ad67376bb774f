"""mypy --strict over the twinguard package as it is imported: `python tests/typecheck.py`.

The package's sub-packages live in the design card's top-level folders (setuptools `package-dir`),
so no folder on disk is named `twinguard/` and mypy cannot map `twinguard.operators.…` to a file.
This lays a tree of symlinks `twinguard/<pkg> -> <pkg>/` in a temporary folder, points MYPYPATH at
it, and reports errors with the checkout's own paths.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("operators", "pipelines", "schemas", "benchmarks")
CHECKED = ("twinguard.pipelines", "twinguard.operators", "twinguard.schemas")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="twinguard-mypy-") as tmp:
        tree = Path(tmp) / "twinguard"
        tree.mkdir()
        for pkg in SUBPACKAGES:
            (tree / pkg).symlink_to(ROOT / pkg, target_is_directory=True)
        args = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")]
        for pkg in CHECKED:
            args += ["-p", pkg]
        env = {**os.environ, "MYPYPATH": tmp}
        done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        out = (done.stdout + done.stderr).replace(f"{tree}/", "")
    print(out, end="")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
