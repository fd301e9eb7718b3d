"""Every numbered example runs with --smoke and writes its files into the folder it is given."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("[0-9][0-9]_*.py"))

# Files each script must write (scripts added later need only write something).
WRITES = {
    "01_first_conversion.py": ["fashion_cnn_snn.npz"],
    "02_event_vs_dense.py": ["sops.md", "sops_per_step.npz"],
    "03_compare_methods.py": ["methods.md", "methods.png"],
    "04_energy.py": ["energy.md", "energy.png"],
    "05_look_inside.py": ["raster.png", "membrane.png", "rate_vs_activation.png",
                          "conversion_error.png", "output_error.png", "spike_counts.png"],
}


def test_the_five_teaching_scripts_exist():
    assert set(WRITES) <= {script.name for script in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_example_runs_in_smoke_mode(script, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(script), "--smoke", "--out", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip()
    written = {p.name for p in out.iterdir()}
    assert written and set(WRITES.get(script.name, [])) <= written, written
    for name in written:
        assert (out / name).stat().st_size > 0
    assert list(tmp_path.iterdir()) == [out]          # nothing written outside --out
