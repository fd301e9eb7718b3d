"""The evsim command, the README's Python examples and the benchmark scripts still run."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from evsim.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_demo_json_reports_accuracy_per_checkpoint(capsys):
    assert main(["demo", "--images", "40", "--T", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["T"] == [1, 2, 4, 8] and len(report["accuracy"]) == 4
    assert report["images"] == 40 and 0 <= report["ann_accuracy"] <= 1
    assert report["sops_per_image"] == sorted(report["sops_per_image"])


def test_demo_table(capsys):
    assert main(["demo", "--images", "20", "--T", "4", "--engine", "dense"]) == 0
    out = capsys.readouterr().out
    assert "| T | accuracy (%) | SOPs per image |" in out and "| ANN |" in out


def test_errors_are_one_line_with_nonzero_exit(capsys):
    assert main(["demo", "--images", "5", "--T", "4", "--method", "magic"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("evsim demo: error:") and "unknown method" in err
    assert "\n" not in err


@pytest.mark.slow
def test_readme_python_examples_run(tmp_path):
    text = (ROOT / "README.md").read_text()
    code = "\n".join(re.findall(r"```python\n(.*?)```", text, re.S))
    assert "evsim.convert" in code
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| T | accuracy (%) | SOPs per image |" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("script", ["bench_kernels.py", "bench_network.py"])
def test_benchmark_scripts_run_in_quick_mode(script):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"^\|.*\|$", done.stdout, re.M)


def test_api_reference_is_up_to_date():
    done = subprocess.run([sys.executable, str(ROOT / "docs" / "make_api.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
