"""Importing evsim is light: ``import evsim``, loading a saved network or result, and the
``evsim`` command's help load no simulation engine (no Numba); the lazy public names
(PEP 562) still work."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import evsim

ROOT = Path(__file__).resolve().parents[2]


def _fresh(script: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``script`` in a new interpreter that imports this checkout's evsim."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _tiny_snn() -> evsim.SpikingNetwork:
    network = evsim.Network.sequential((3,), [evsim.Dense(np.eye(3)), evsim.ReLU(),
                                              evsim.Dense(np.ones((2, 3)))])
    return evsim.SpikingNetwork(network, {"relu1": evsim.NeuronSpec(threshold=0.5)})


def test_loading_saved_files_imports_no_engine(tmp_path):
    snn = _tiny_snn()
    result = evsim.simulate(snn, np.full((2, 3), 0.25, np.float32), T=4)
    evsim.save(result, tmp_path / "result.npz")
    evsim.save(snn, tmp_path / "snn.npz")
    evsim.save(snn.network, tmp_path / "ann.npz")
    done = _fresh("""
        import sys
        import evsim
        assert "numba" not in sys.modules, "import evsim"
        result = evsim.load("result.npz")
        snn = evsim.load("snn.npz")
        ann = evsim.load("ann.npz")
        assert type(result).__name__ == "SimResult" and result.T == 4
        assert type(snn).__name__ == "SpikingNetwork" and type(ann).__name__ == "Network"
        print(result.total_sops(), result.accuracy([0, 1]).tolist())
        engines = sorted(m for m in sys.modules if m == "numba" or m.startswith("evsim.simulate"))
        assert not engines, engines
        """, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[0] == str(result.total_sops())


def test_the_command_line_help_imports_no_engine(tmp_path):
    done = _fresh("""
        import sys
        from evsim.cli import main
        for args in (["--help"], ["run", "--help"], ["compare", "--help"]):
            try:
                main(args)
            except SystemExit as done:
                assert done.code == 0, (args, done.code)
        assert "numba" not in sys.modules
        """, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "usage: evsim" in done.stdout


def test_the_lazy_names_load_their_modules_and_stay_functions(tmp_path):
    done = _fresh("""
        import sys, types
        import evsim
        assert "numba" not in sys.modules
        assert {"simulate", "compare_methods", "Comparison", "tune"} <= set(dir(evsim))
        import evsim.simulate.dense  # loading the submodule does not replace the function
        assert isinstance(evsim.simulate, types.FunctionType)
        from evsim import simulate, compare_methods, tune
        assert simulate is evsim.simulate and simulate.__module__ == "evsim.simulate"
        assert isinstance(tune, types.ModuleType) and callable(compare_methods)
        missing = [name for name in evsim.__all__ if not hasattr(evsim, name)]
        assert not missing, missing
        try:
            evsim.no_such_name
        except AttributeError as err:
            assert "no_such_name" in str(err)
        else:
            raise AssertionError("evsim.no_such_name")
        """, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
