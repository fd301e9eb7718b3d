"""`evsim compare`: an ONNX model gives a report folder; a rerun reuses the finished cells;
changed inputs and foreign folders are refused in one line."""

import argparse
import json

import numpy as np
import pytest
from tiny_onnx import save_tiny_onnx

from evsim.cli import main
from evsim.data import load_bundled_sample


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    save_tiny_onnx(root / "model.onnx")
    images, labels = load_bundled_sample("test")
    calibration, _ = load_bundled_sample("train")
    np.savez(root / "calibration.npz", images=calibration[:32])
    np.savez(root / "test.npz", images=images[:24], labels=labels[:24])
    np.savez(root / "other.npz", images=images[24:48], labels=labels[24:48])
    return root


def _compare(root, out, *extra):
    return main(["compare", str(root / "model.onnx"), str(root / "calibration.npz"),
                 str(root / "test.npz"), "--methods", "percentile,qcfs,spicalib", "--T", "1,4",
                 "-o", str(out), *extra])


def test_compare_on_an_onnx_model_writes_a_report_folder_and_resumes(inputs, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert _compare(inputs, out, "--json") == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert sorted(p.name for p in out.iterdir()) == [
        "accuracy_tradeoffs.png", "cells", "comparison.json", "comparison.md", "index.html",
        "report.md"]
    assert printed["html"] == str(out / "index.html")
    assert [m["label"] for m in printed["comparison"]["methods"]] == ["percentile", "qcfs",
                                                                      "spicalib"]
    # percentile: one run read at T = 1, 4; qcfs: one (not applicable); spicalib: one per T
    assert captured.err.count("evsim compare: [") == 4
    cells = sorted(p.name for p in (out / "cells").iterdir())
    assert len(cells) == 5 and "inputs.json" in cells
    report = (out / "report.md").read_text()
    assert "model.onnx" in report and "| percentile |" in report
    assert "- qcfs (any T): method 'qcfs' needs trained QCFS activations" in report
    html = (out / "index.html").read_text()
    assert "<table>" in html and "data:image/png;base64," in html
    saved = json.loads((out / "comparison.json").read_text())
    assert saved == printed["comparison"]

    stamps = {name: (out / "cells" / name).stat().st_mtime_ns for name in cells}
    assert _compare(inputs, out) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("evsim compare: [")]
    assert len(lines) == 4 and all("reused" in line for line in lines)
    assert {name: (out / "cells" / name).stat().st_mtime_ns
            for name in cells if name != "inputs.json"} == {
        k: v for k, v in stamps.items() if k != "inputs.json"}
    assert "| percentile |" in captured.out


def test_compare_refuses_other_inputs_in_the_same_folder_unless_restarted(inputs, tmp_path,
                                                                          capsys):
    out = tmp_path / "cmp"
    assert _compare(inputs, out, "--T", "1") == 0
    capsys.readouterr()
    argv = ["compare", str(inputs / "model.onnx"), str(inputs / "calibration.npz"),
            str(inputs / "other.npz"), "--T", "1", "-o", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "its images, labels differ" in err and "--restart" in err
    assert main(argv + ["--restart"]) == 0


def test_compare_refuses_a_folder_of_other_files_and_bad_flags(inputs, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert _compare(inputs, tmp_path) == 2
    err = capsys.readouterr().err
    assert "evsim compare did not write (notes.txt)" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as exit_:
        main(["compare", "a.onnx", "bundled", "bundled", "--methods", "bogus", "-o", "x"])
    assert exit_.value.code == 2
    assert "unknown preset 'bogus'. Presets are max, percentile" in capsys.readouterr().err
    assert main(["compare", str(inputs / "model.onnx"), "bundled",
                 str(inputs / "calibration.npz"), "-o", str(tmp_path / "new")]) == 2
    assert "has no 'labels' array" in capsys.readouterr().err


def test_compare_names_a_cells_record_that_is_not_a_json_object(inputs, tmp_path, capsys):
    record = tmp_path / "cmp" / "cells" / "inputs.json"
    record.parent.mkdir(parents=True)
    record.write_text("[1, 2]")
    assert _compare(inputs, tmp_path / "cmp") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{record}: is not a record" in err and "--restart" in err


def test_compare_takes_variants_labelled_as_written_with_intervals_and_tradeoffs(
        inputs, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", str(inputs / "model.onnx"), str(inputs / "calibration.npz"),
                 str(inputs / "test.npz"), "--methods", "percentile, percentile+opi(burst=2), "
                 "spicalib(p=0.995)", "--T", "2,4", "-o", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)["comparison"]
    rows = {m["label"]: m for m in printed["methods"]}
    assert list(rows) == ["percentile", "percentile+opi(burst=2)", "spicalib(p=0.995)"]
    assert rows["percentile+opi(burst=2)"]["options"]["4"]["initial_potential"] == 0.5
    assert rows["spicalib(p=0.995)"]["options"]["4"]["percentile"] == 99.5
    points = printed["tradeoffs"]
    assert len(points) == 6 and all(p["images"] == 24 and p["low"] <= p["accuracy"] <= p["high"]
                                    for p in points)
    assert any(p["pareto"] for p in points)
    table = (out / "comparison.md").read_text()
    assert "| spicalib(p=0.995) | 4 | 4 |" in table and "Pareto-optimal in" in table


@pytest.mark.parametrize("methods, words", [
    ("percentile+op", "did you mean '+opi'?"),
    ("percentile(burts=2)", "did you mean 'burst'?"),
    ("spicalib(p=99.5)", "write percentile=99.5"),
    ("percentile, percentile", "named twice"),
])
def test_compare_refuses_a_bad_variant_and_says_what_fixes_it(methods, words, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["compare", "a.onnx", "bundled", "bundled", "--methods", methods, "-o", "x"])
    assert exit_.value.code == 2 and words in capsys.readouterr().err


def test_opi_on_a_relu_network_says_how_to_keep_its_initial_potential(tmp_path, capsys):
    from pathlib import Path

    import evsim.models

    model = Path(evsim.models.__file__).parent / "fashion_cnn.npz"
    assert main(["convert", str(model), "bundled", "--method", "opi",
                 "-o", str(tmp_path / "snn")]) == 2
    err = capsys.readouterr().err
    assert "--method percentile --initial-potential 0.5" in err and "percentile+opi" in err


def test_methods_can_come_from_a_spec_file(tmp_path):
    from evsim.cli import _methods

    listed = tmp_path / "methods.txt"
    listed.write_text("percentile   # the baseline\n\npercentile+opi\nspicalib(p=0.995, burst=3)\n")
    assert _methods(f"@{listed}") == ["percentile", "percentile+opi",
                                      "spicalib(p=0.995, burst=3)"]
    (tmp_path / "m.json").write_text('["percentile", "spicalib(p=0.995)"]')
    assert _methods(f"@{tmp_path / 'm.json'}") == ["percentile", "spicalib(p=0.995)"]
    (tmp_path / "bad.json").write_text('{"percentile": 1}')
    for spec, words in ((f"@{tmp_path / 'bad.json'}", "expected a JSON list"),
                        (f"@{tmp_path / 'missing.txt'}", "cannot read the methods file")):
        with pytest.raises(argparse.ArgumentTypeError, match=words):
            _methods(spec)
