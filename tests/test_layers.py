"""The layers of DESIGN.md hold: `lint-imports` keeps every contract in pyproject.toml
([tool.importlinter]), and the same contracts catch an import that goes the wrong way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import limacot

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
PACKAGE = Path(limacot.__file__).resolve().parent

# lint-imports through its Python API, in a fresh interpreter so that `limacot` is found on PYTHONPATH
LINT = ("import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filenames=(sys.argv[1],), no_cache=True, no_logo=True))")


def lint_imports(source_root: Path) -> subprocess.CompletedProcess:
    """lint-imports with the project's contracts over the `limacot` package found in `source_root`."""
    env = {**os.environ, "PYTHONPATH": str(source_root), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-c", LINT, str(PYPROJECT)], cwd=source_root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_contracts_are_kept():
    result = lint_imports(PACKAGE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("module, added, broken", [
    ("io/atomic.py", "import limacot.report", "limacot.io.atomic -> limacot.report"),  # a lower layer upwards
    ("train/dropout.py", "from limacot.eval import scores", "limacot.train.dropout -> limacot.eval.scores"),  # stages
    ("stats/bootstrap.py", "from limacot import errors", "limacot.stats.bootstrap -> limacot.errors"),  # stats: none
    ("report/doc.py", "from limacot.run import plan", "limacot.report.doc -> limacot.run.plan"),  # report: study only
])
def test_a_wrong_import_is_caught(tmp_path, module, added, broken):
    """A copy of the package with one import added breaks a contract, and lint-imports names it."""
    copy = tmp_path / "limacot"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with open(copy / module, "a", encoding="utf-8") as handle:
        handle.write(f"\n{added}  # the wrong way\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert broken in result.stdout and "BROKEN" in result.stdout


def test_the_cli_imports_no_model_library_until_a_command_runs():
    """`limacot --help` and the app's import stay light, and the libraries' progress bars and
    notices are switched off (limacot.io.cli_common.quiet_libraries) before transformers reads its
    settings at import: a module-level `import transformers` in any command's import chain
    breaks both."""
    code = ("import sys, limacot.cli; "
            "print(','.join(m for m in ('torch', 'transformers', 'lm_eval', 'datasets') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
