"""`evsim compare` interrupted or pointed at another comparison's cells: the command speaks in
flags (--restart, rerun to resume), the API in keywords (restart=True)."""

import numpy as np
import pytest
from tiny_onnx import save_tiny_onnx

import evsim.comparison
from evsim.cellstore import CellStore
from evsim.cli import main
from evsim.data import load_bundled_sample


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare_resume")
    save_tiny_onnx(root / "model.onnx")
    images, labels = load_bundled_sample("test")
    np.savez(root / "calibration.npz", images=load_bundled_sample("train")[0][:16])
    np.savez(root / "test.npz", images=images[:8], labels=labels[:8])
    return root


def _argv(root, out):
    return ["compare", str(root / "model.onnx"), str(root / "calibration.npz"),
            str(root / "test.npz"), "--T", "1", "-o", str(out)]


def test_an_interrupted_compare_says_a_rerun_resumes(inputs, tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evsim.comparison, "compare_methods", interrupted)
    assert main(_argv(inputs, tmp_path / "cmp")) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted" in err
    assert "run the same command again to resume" in err and str(tmp_path / "cmp") in err


def test_other_cells_are_refused_with_the_flag_on_the_cli_and_the_keyword_in_python(
        inputs, tmp_path, capsys):
    CellStore(tmp_path / "cmp" / "cells", {"images": "other"})
    assert main(_argv(inputs, tmp_path / "cmp")) == 2
    err = capsys.readouterr().err
    assert "--restart" in err and "restart=True" not in err
    with pytest.raises(evsim.EvsimValueError) as refused:
        CellStore(tmp_path / "cmp" / "cells", {"images": "mine"})
    assert "restart=True" in str(refused.value) and "--restart" not in str(refused.value)
