"""The evsim command: demo, convert, run and report; --json; one-line errors with exit code 2."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import evsim
from evsim.cli import main
from evsim.data import load_bundled_sample
from evsim.models import load_model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    images, labels = load_bundled_sample("test")
    calibration, _ = load_bundled_sample("train")
    evsim.save(load_model(), root / "ann.npz")
    np.savez(root / "data.npz", images=images[:12], labels=labels[:12])
    np.savez(root / "unlabelled.npz", images=images[:5])
    np.savez(root / "calibration.npz", images=calibration[:64])
    np.savez(root / "no_images.npz", pictures=images[:2])
    (root / "not_a_zip.npz").write_text("hello")
    snn = evsim.convert(load_model(), calibration[:100])
    evsim.save(snn, root / "snn.npz")
    return root, snn, images[:12], labels[:12]


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_demo_json_has_sops_and_energy_per_checkpoint(capsys):
    out = _json(capsys, ["demo", "--images", "16", "--T", "8", "--json", "--no-report"])
    assert out["T"] == [1, 2, 4, 8] and len(out["energy_pj_per_image"]) == 4
    assert out["energy_pj_per_image"] == sorted(out["energy_pj_per_image"])
    assert out["energy_pj_per_image"][-1] == pytest.approx(out["energy"]["snn_pj"])
    assert out["energy"]["table"]["e_ac_pj"] == 0.9 and out["energy"]["convention"] == "reinject"
    assert out["ann_energy_pj"] == pytest.approx(4.6 * out["ann_macs"])
    assert out["report"] is None


def test_demo_writes_its_report_folder_by_default(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--images", "4", "--T", "2"]) == 0
    assert "report: evsim-demo-report" in capsys.readouterr().out
    assert (tmp_path / "evsim-demo-report" / "index.html").is_file()


def test_demo_prints_energy_and_writes_a_report(capsys, tmp_path):
    assert main(["demo", "--images", "6", "--T", "4", "--engine", "dense", "--energy-table",
                 "int8", "--report", str(tmp_path / "rep"), "--analysis-images", "3"]) == 0
    out = capsys.readouterr().out
    assert "| T | accuracy (%) | SOPs per image | energy per image (" in out
    assert re.search(r"\| ANN \| [\d.]+ \| [\d.e+]+ MACs \|", out)
    assert "energy per image at T = 4: SNN" in out and "int8, 45 nm" in out
    assert (tmp_path / "rep" / "index.html").is_file()
    assert (tmp_path / "rep" / "report.md").is_file()


def test_convert_applies_method_and_component_options(capsys, files):
    root, _, _, _ = files
    out = _json(capsys, ["convert", str(root / "ann.npz"), str(root / "calibration.npz"), "-o",
                         str(root / "converted"), "--method", "max", "--reset", "subtract",
                         "--initial-potential", "0.5", "--burst", "2", "--json"])
    assert out["output"].endswith("converted.npz") and out["calibration_images"] == 64
    snn = evsim.load(out["output"])
    assert snn.method == "max"
    spec = snn.neurons["relu1"]
    assert (spec.reset, spec.burst) == ("subtract", 2)
    assert np.allclose(spec.v_init, 0.5 * spec.threshold)
    # max normalisation on the same 64 images: θ of relu1 is its largest ANN activation
    _, acts = evsim.forward(evsim.convert(load_model(), np.load(root / "calibration.npz")[
        "images"], "max").network, np.load(root / "calibration.npz")["images"],
        activations=["relu1"])
    assert float(spec.threshold) == pytest.approx(float(acts["relu1"].max()), rel=1e-6)
    assert out["layers"]["relu1"]["threshold_max"] == pytest.approx(float(spec.threshold))


def test_convert_text_output_with_bundled_calibration(capsys, files):
    root, _, _, _ = files
    assert main(["convert", str(root / "ann.npz"), "bundled", "-o", str(root / "b.npz"),
                 "--calibration-images", "32", "--channelwise"]) == 0
    out = capsys.readouterr().out
    assert "calibrated on 32 images of the bundled Fashion-MNIST train sample" in out
    assert evsim.load(root / "b.npz").neurons["relu2"].threshold.shape == (32, 1, 1)


def test_run_json_matches_a_direct_simulation(capsys, files):
    root, snn, images, labels = files
    out = _json(capsys, ["run", str(root / "snn.npz"), str(root / "data.npz"), "--T", "8",
                         "--json"])
    direct = evsim.simulate(snn, images, T=8, engine="event")
    assert out["accuracy"] == direct.accuracy(labels).tolist()
    sops = np.cumsum(sum(direct.sops.values()))[[0, 1, 3, 7]] / len(images)
    assert np.allclose(out["sops_per_image"], sops)
    assert out["firing_rates"] == pytest.approx(direct.firing_rates())
    assert out["images"] == 12 and out["engine"] == "event"


def test_run_text_without_labels(capsys, files):
    root, _, _, _ = files
    assert main(["run", str(root / "snn.npz"), str(root / "unlabelled.npz"), "--T", "4",
                 "--engine", "dense", "--convention", "recompute"]) == 0
    out = capsys.readouterr().out
    assert "no labels: accuracy not measured" in out and "| 4 | – |" in out
    assert "recomputed every step (T·MACs)" in out and "| **total** |" in out


def test_run_warns_that_a_spicalib_network_is_set_for_one_T(capsys, files):
    root, _, _, _ = files
    assert main(["convert", str(root / "ann.npz"), str(root / "calibration.npz"), "-o",
                 str(root / "spicalib.npz"), "--method", "spicalib", "--T", "8"]) == 0
    capsys.readouterr()
    assert main(["run", str(root / "spicalib.npz"), str(root / "data.npz"), "--T", "8"]) == 0
    assert "allowance A = 4 steps is chosen for one T" in capsys.readouterr().out
    assert main(["run", str(root / "snn.npz"), str(root / "data.npz"), "--T", "8"]) == 0
    assert "allowance" not in capsys.readouterr().out


def test_report_writes_a_self_contained_folder(capsys, files, tmp_path):
    root, _, _, _ = files
    out = _json(capsys, ["report", str(root / "snn.npz"), str(root / "data.npz"), "-o",
                         str(tmp_path / "r"), "--T", "8", "--analysis-images", "4", "--json"])
    folder = tmp_path / "r"
    names = {p.split("/")[-1] for p in out["images"]}
    assert {"accuracy_vs_T.png", "energy.png", "rate_vs_activation.png", "raster.png",
            "membrane.png", "spike_counts.png"} <= names
    markdown = (folder / "report.md").read_text()
    for name in re.findall(r"!\[.*?\]\((.+?)\)", markdown):
        assert (folder / name).read_bytes()[:4] == b"\x89PNG"
    page = (folder / "index.html").read_text()
    sources = re.findall(r'src="([^"]+)"', page)
    assert len(sources) == len(names) and all(s.startswith("data:image/png;base64,")
                                              for s in sources)
    assert "<table>" in page and "no rate factor" in page
    assert out["checkpoints"]["T"] == [1, 2, 4, 8]


@pytest.mark.parametrize("argv, message", [
    (["run", "{root}/missing.npz", "bundled"], "missing.npz: no such file"),
    (["run", "{root}/ann.npz", "bundled"], "is an ANN, not a spiking network"),
    (["convert", "{root}/snn.npz", "bundled", "-o", "{root}/x"], "already a spiking network"),
    (["run", "{root}/snn.npz", "{root}/no_images.npz"], "has no 'images' array"),
    (["run", "{root}/snn.npz", "{root}/not_a_zip.npz"], "not_a_zip.npz: not a readable"),
    (["run", "{root}/not_a_zip.npz", "bundled"], "not_a_zip.npz:"),
    (["convert", "{root}/ann.npz", "bundled", "-o", "{root}/x", "--percentile", "101"],
     "percentile"),
    (["demo", "--images", "4", "--T", "2", "--method", "magic", "--no-report"],
     "unknown method"),
    (["run", "{root}/snn.npz", "bundled", "--T", "0"], "expected a positive integer"),
    (["report", "{root}/snn.npz", "bundled"], "-o/--output"),
])
def test_errors_are_one_line_with_exit_code_2(capsys, files, argv, message):
    root = files[0]
    argv = [a.format(root=root) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exit_:                       # argparse usage errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert err.startswith(f"evsim {argv[0]}: error:")


@pytest.mark.parametrize("command", ["demo", "convert", "run", "report"])
def test_help_of_each_subcommand(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: evsim {command}") and "--json" in out


def test_the_installed_command_fails_cleanly(tmp_path):
    done = subprocess.run([sys.executable, "-m", "evsim", "run", "nothing.npz", "bundled"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == "evsim run: error: nothing.npz: no such file\n"


def test_convert_passes_T_to_methods_tuned_for_it(capsys, files):
    root, _, _, _ = files
    argv = ["convert", str(root / "ann.npz"), str(root / "calibration.npz"), "-o",
            str(root / "spicalib.npz"), "--method", "spicalib"]
    assert main(argv) == 2
    assert "needs T=" in capsys.readouterr().err
    assert main(argv + ["--T", "16"]) == 0
    spec = evsim.load(root / "spicalib.npz").neurons["relu1"]
    assert (spec.allowance, spec.burst) == (8.0, 5)


def test_temporal_scheme_shows_latency_and_reports_without_traces(capsys, files, tmp_path):
    root, _, _, _ = files
    assert main(["convert", str(root / "ann.npz"), str(root / "calibration.npz"), "-o",
                 str(root / "temporal.npz"), "--time-scheme", "temporal"]) == 0
    capsys.readouterr()
    out = _json(capsys, ["run", str(root / "temporal.npz"), str(root / "data.npz"), "--T", "4",
                         "--json"])
    assert out["T"] == [4] and out["latency"] == [16]        # (3 spiking layers + 1) windows
    assert main(["report", str(root / "temporal.npz"), str(root / "data.npz"), "-o",
                 str(tmp_path / "r"), "--T", "4", "--analysis-images", "3"]) == 0
    markdown = (tmp_path / "r" / "report.md").read_text()
    assert "| T | latency (steps) |" in markdown and "no per-step spike trains" in markdown
    assert not (tmp_path / "r" / "raster.png").exists()
