"""Optional extras: a missing one is one line naming both install commands; the core needs none."""

import importlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from tiny_onnx import save_tiny_onnx

import evsim
from evsim.extras import MissingExtraError, missing_extra_message, require

BLOCK = "import sys\nfor name in ('torch', 'nir', 'optuna', 'dask', 'h5py'):\n" \
        "    sys.modules[name] = None\n"


@pytest.mark.parametrize("module, extra", [("torch", "torch"), ("nir", "nir"), ("optuna", "bo"),
                                           ("dask", "distributed"), ("h5py", "nir")])
def test_the_message_names_both_install_commands(module, extra):
    assert missing_extra_message(module, "feature X") == (
        f'feature X needs {module}, an optional extra: pip install "evsim[{extra}]" '
        f'(in a clone of evsim: pip install -e ".[{extra}]")')


def test_require_raises_the_message_when_the_package_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingExtraError) as caught:
        require("torch", "evsim.io.from_torch")
    assert str(caught.value) == missing_extra_message("torch", "evsim.io.from_torch")
    assert "\n" not in str(caught.value) and isinstance(caught.value, ImportError)


def test_every_feature_with_an_extra_says_so(monkeypatch):
    for name in ("torch", "nir", "h5py"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingExtraError, match=r'evsim.io.from_torch needs torch, .*'
                                                r'pip install "evsim\[torch\]"'):
        evsim.io.from_torch(None, (1, 2, 2))
    snn = evsim.SpikingNetwork(
        evsim.Network.sequential((2,), [evsim.Dense(np.eye(2)), evsim.ReLU(),
                                        evsim.Dense(np.eye(2))]),
        {"relu1": evsim.NeuronSpec(threshold=1.0)})
    with pytest.raises(MissingExtraError, match=r'pip install -e "\.\[nir\]"'):
        evsim.io.to_nir(snn)
    monkeypatch.delitem(sys.modules, "evsim.training", raising=False)
    with pytest.raises(MissingExtraError, match=r"evsim.training needs torch"):
        importlib.import_module("evsim.training")


def test_the_core_converts_and_runs_an_onnx_model_from_the_command_line(tmp_path):
    """No torch, nir, optuna or dask: `evsim convert model.onnx` and `evsim run` work."""
    save_tiny_onnx(tmp_path / "model.onnx")
    script = BLOCK + textwrap.dedent("""
        from evsim.cli import main
        assert main(["convert", "model.onnx", "bundled", "--calibration-images", "64",
                     "-o", "snn.npz"]) == 0
        assert main(["run", "snn.npz", "bundled", "--images", "8", "--T", "4"]) == 0
        blocked = [m for m in ("torch", "nir", "optuna", "dask", "h5py")
                   if sys.modules.get(m) is not None]
        assert not blocked, blocked
        """)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "wrote snn.npz" in done.stdout and "| 4 |" in done.stdout
    assert "Traceback" not in done.stderr
