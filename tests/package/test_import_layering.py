"""evsim's import contracts (``[tool.importlinter]`` in pyproject.toml): the layers of the data
flow, no import cycles, no module importing the package's public API. Each import cycle that
the contracts were written against breaks them when put back."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[2]
LINT = ("import sys\nfrom importlinter.cli import lint_imports_command\n"
        "sys.exit(lint_imports_command())")


def _lint(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the evsim package under ``root`` with the contracts in its
    pyproject.toml (with this interpreter, so the test venv's import-linter runs)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache", "--no-logo",
                           "pyproject.toml"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)


def test_evsim_keeps_its_import_contracts():
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "3 kept, 0 broken" in done.stdout


#: (module, import line appended to it, contract it breaks): the cycles that were removed.
CYCLES = [
    ("result.py", "from .io.hashing import content_hash", "data flow"),
    ("distributed.py", "from .simulate import simulate", "data flow"),
    ("spiking.py", "from .timescheme import latency", "data flow"),
    ("io/torch.py", "from .. import training", "data flow"),
    ("io/nir.py", "from .. import __version__", "public API"),
]


@pytest.mark.parametrize("module, line, contract", CYCLES)
def test_putting_a_removed_cycle_back_breaks_a_contract(tmp_path, module, line, contract):
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "evsim", tmp_path / "evsim",
                    ignore=shutil.ignore_patterns("__pycache__", "*.npz", "*.json", "*.md"))
    with open(tmp_path / "evsim" / module, "a", encoding="utf-8") as source:
        source.write(f"\n\ndef _cycle():\n    {line}\n")
    done = _lint(tmp_path)
    assert done.returncode == 1, done.stdout[-4000:]
    broken = done.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken and "0 broken" not in done.stdout
