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
    np.savez(root / "empty.npz", images=images[:0])
    (root / "not_a_zip.npz").write_text("hello")
    snn = evsim.convert(load_model(), calibration[:100])
    evsim.save(snn, root / "snn.npz")
    return root, snn, images[:12], labels[:12]


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_demo_json_has_sops_and_energy_per_checkpoint_with_units(capsys):
    assert main(["demo", "--images", "16", "--T", "8", "--json", "--no-report"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert "simulate" in captured.err and "calibrate" in captured.err  # progress, on stderr
    assert out["units"]["accuracy"] == "fraction of images in [0, 1]"
    assert out["units"]["energy"].startswith("µJ per image")
    assert out["T"] == [1, 2, 4, 8] and len(out["energy_uj_per_image"]) == 4
    assert all(0 <= a <= 1 for a in out["accuracy"])
    assert out["energy_uj_per_image"] == sorted(out["energy_uj_per_image"])
    assert out["energy_uj_per_image"][-1] == pytest.approx(out["energy"]["snn_uj"])
    assert out["energy"]["table"]["e_ac_pj"] == 0.9 and out["energy"]["convention"] == "reinject"
    assert out["ann_energy_uj"] == pytest.approx(4.6e-6 * out["ann_macs"])
    assert out["report"] is None and out["model"] == "fashion_cnn"
    assert out["neurobench"]["SynapticOperations"]["Effective_ACs"] > 0


@pytest.mark.parametrize("method, model", [("opi", "vgg_tcl"), ("qcfs", "vgg_qcfs"),
                                           ("nq", "vgg_nq")])
def test_demo_picks_the_model_trained_for_the_method(capsys, method, model):
    out = _json(capsys, ["demo", "--method", method, "--images", "4", "--T", "4", "--json",
                         "--no-report"])
    assert out["model"] == model and out["method"] == method
    assert out["thresholds_from"].startswith("the trained activation bounds")


def test_demo_names_the_model_a_method_needs(capsys):
    assert main(["demo", "--method", "opi", "--model", "fashion_cnn", "--images", "2",
                 "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "--method opi needs a model trained with Clip or QCFS activations" in err
    assert "pass --model vgg_tcl" in err


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
    assert "| 0: T-shirt/top |" in (tmp_path / "rep" / "report.md").read_text()


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
    captured = capsys.readouterr()
    assert "calibrated on 32 images of the bundled Fashion-MNIST train sample" in (
        captured.out)
    assert "calibrate" in captured.err                          # the progress bar
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
    assert main(["run", str(root / "spicalib.npz"), str(root / "data.npz"), "--T", "16"]) == 0
    assert ("evsim run: warning: this network's options were chosen for T = 8 (SpiCalib's "
            "allowance or tuning) but it runs for T = 16") in capsys.readouterr().err
    out = _json(capsys, ["run", str(root / "spicalib.npz"), str(root / "data.npz"), "--T", "8",
                         "--json"])
    assert out["warnings"] and "earlier checkpoints (1, 2, 4)" in out["warnings"][0]
    assert "can emit bursts (Γ = 5)" in out["neurobench"]["note"]
    assert out["neurobench"]["ParameterCount"] > 0 and "SynapticOperations" not in (
        out["neurobench"])
    out = _json(capsys, ["run", str(root / "spicalib.npz"), str(root / "data.npz"), "--T", "8",
                         "--checkpoints", "8", "--json"])
    assert out["warnings"] == [] and out["T"] == [8]
    assert main(["run", str(root / "snn.npz"), str(root / "data.npz"), "--T", "8"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_report_writes_a_self_contained_folder(capsys, files, tmp_path):
    root, _, _, _ = files
    out = _json(capsys, ["report", str(root / "snn.npz"), str(root / "data.npz"), "-o",
                         str(tmp_path / "r"), "--T", "8", "--analysis-images", "4", "--json"])
    folder = tmp_path / "r"
    names = {p.split("/")[-1] for p in out["images"]}
    assert {"accuracy_vs_T.png", "energy.png", "rate_vs_activation.png", "raster.png",
            "membrane.png", "spike_counts.png", "confusion_matrix.png", "feature_maps.png"} <= names
    markdown = (folder / "report.md").read_text()
    for name in re.findall(r"!\[.*?\]\((.+?)\)", markdown):
        assert (folder / name).read_bytes()[:4] == b"\x89PNG"
    page = (folder / "index.html").read_text()
    sources = re.findall(r'src="([^"]+)"', page)
    assert len(sources) == len(names) and all(s.startswith("data:image/png;base64,")
                                              for s in sources)
    assert "<table>" in page and "no rate factor" in page
    assert out["checkpoints"]["T"] == [1, 2, 4, 8]
    assert "## Accuracy per class" in markdown and "\n| 0 | " in markdown
    assert sum(out["classes"]["images"]) == 12
    assert np.sum(out["classes"]["snn_confusion_matrix"]) == 12
    assert "## NeuroBench metrics (NeuroBench 2.3.0 definitions)" in markdown
    exact = out["neurobench"]["image_0"]
    assert exact["MembraneUpdates"] > 0
    assert out["neurobench"]["all_images"]["MembraneUpdates"] is None
    assert "channel" in markdown and "row by row" in markdown


@pytest.mark.parametrize("argv, message", [
    (["run", "{root}/missing.npz", "bundled"], "missing.npz: no such file"),
    (["run", "{root}/ann.npz", "bundled"], "is an ANN, not a spiking network"),
    (["convert", "{root}/snn.npz", "bundled", "-o", "{root}/x"], "already a spiking network"),
    (["run", "{root}/snn.npz", "{root}/no_images.npz"], "has no 'images' array"),
    (["run", "{root}/snn.npz", "{root}/not_a_zip.npz"], "not_a_zip.npz: not a readable"),
    (["run", "{root}/not_a_zip.npz", "bundled"], "not_a_zip.npz:"),
    (["convert", "{root}/ann.npz", "bundled", "-o", "{root}/x", "--percentile", "101"],
     r"--percentile must be a number in (0, 100] (per cent), got 101.0"),
    (["convert", "{root}/ann.npz", "bundled", "-o", "{root}/x", "--burst", "65"],
     "--burst (Γ) must be an integer in 1..64, got 65"),
    (["convert", "{root}/ann.npz", "bundled", "-o", "{root}/x", "--burst", "2.5"],
     "argument --burst: expected an integer, got '2.5'"),
    (["convert", "{root}/ann.npz", "bundled", "-o", "{root}/x", "--method", "spicalib"],
     "--T is needed by method 'spicalib'"),
    (["convert", "{root}/ann.npz", "{root}/empty.npz", "-o", "{root}/x"],
     "CALIBRATION (the calibration images) hold no image"),
    (["demo", "--images", "4", "--T", "2", "--method", "magic", "--no-report"],
     "argument --method: invalid choice: 'magic'"),
    (["run", "{root}/snn.npz", "bundled", "--T", "8", "--checkpoints", "4,16"],
     "--checkpoints must be steps in 1..8 (--T), got 16"),
    (["run", "{root}/snn.npz", "bundled", "--threads", "100000"],
     "argument --threads: expected 1.."),
    (["run", "{root}/snn.npz", "bundled", "--seed", "-1"],
     "argument --seed: expected an integer >= 0"),
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
    assert "--T is needed by method 'spicalib'" in capsys.readouterr().err
    assert main(argv + ["--T", "16"]) == 0
    spec = evsim.load(root / "spicalib.npz").neurons["relu1"]
    assert (spec.allowance, spec.burst) == (4.0, 5)


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


def test_run_flags_reach_the_simulation(capsys, files):
    root, snn, images, labels = files
    out = _json(capsys, ["run", str(root / "snn.npz"), str(root / "data.npz"), "--T", "8",
                         "--checkpoints", "2,5", "--batch-size", "5", "--threads", "1",
                         "--json"])
    direct = evsim.simulate(snn, images, T=8, checkpoints=[2, 5, 8])
    assert out["T"] == [2, 5, 8] and out["accuracy"] == direct.accuracy(labels).tolist()
    rate = _json(capsys, ["run", str(root / "snn.npz"), str(root / "data.npz"), "--T", "8",
                          "--encoding", "rate", "--seed", "7", "--json"])
    direct = evsim.simulate(snn, images, T=8, encoding="rate", seed=7)
    assert rate["accuracy"] == direct.accuracy(labels).tolist()


def test_run_prints_the_neurobench_metrics(capsys, files):
    from evsim.analysis.neurobench import neurobench_metrics

    root, snn, images, labels = files
    out = _json(capsys, ["run", str(root / "snn.npz"), str(root / "data.npz"), "--T", "8",
                         "--json"])
    expected = neurobench_metrics(snn, evsim.simulate(snn, images, T=8), images)
    assert out["neurobench"]["version"] == "2.3.0"
    assert out["neurobench"]["SynapticOperations"] == expected["SynapticOperations"]
    assert out["neurobench"]["MembraneUpdates"] is None and "membrane traces" in (
        out["neurobench"]["note"])
    assert main(["run", str(root / "snn.npz"), str(root / "data.npz"), "--T", "8"]) == 0
    text = capsys.readouterr().out
    assert "NeuroBench 2.3.0 metrics" in text and "Effective_ACs" in text


def test_convert_with_trained_bounds_says_the_calibration_is_unused(capsys, tmp_path):
    evsim.save(load_model("vgg_qcfs"), tmp_path / "qcfs.npz")
    assert main(["convert", str(tmp_path / "qcfs.npz"), "bundled", "-o", str(tmp_path / "s"),
                 "--method", "qcfs"]) == 0
    out = capsys.readouterr().out
    assert "thresholds from the trained activation bounds (calibration images not used)" in out
    assert "calibrated on no images" in out and "1000 images" not in out


def test_every_conversion_option_has_a_flag():
    from dataclasses import fields

    from evsim.cli import build_parser
    from evsim.options import ConversionOptions

    convert = build_parser()._subparsers._group_actions[0].choices["convert"]
    flags = {s for action in convert._actions for s in action.option_strings}
    for f in fields(ConversionOptions):
        assert "--" + f.name.replace("_", "-") in flags, f.name


def _all_flags():
    from evsim.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        for action in sub._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    yield name, flag


@pytest.mark.parametrize("command, flag", list(_all_flags()))
def test_every_flag_is_in_docs_cli(command, flag):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    section = text.split(f"## `evsim {command}")[1].split("\n## ")[0]
    shared = text.split("## Options shared")[1].split("\n## ")[0] if (
        "## Options shared" in text) else ""
    assert f"`{flag}" in section or f"`{flag}" in shared, (command, flag)


def test_run_prints_neurobench_synaptic_operations_for_a_max_pool_network(capsys):
    out = _json(capsys, ["demo", "--model", "vgg_relu", "--images", "4", "--T", "4", "--json",
                         "--no-report"])
    assert out["neurobench"]["SynapticOperations"]["Effective_ACs"] > 0
    assert "max pooling" not in (out["neurobench"]["note"] or "")


def test_unscaled_images_warning_gives_the_cli_way_to_silence_it(capsys, files):
    root, *_ = files
    images, labels = load_bundled_sample("test")
    np.savez(root / "raw.npz", images=images[:3] * 255, labels=labels[:3])
    argv = ["run", str(root / "snn.npz"), str(root / "raw.npz"), "--T", "2"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "range over [0, 255]" in err and "--unscaled-ok" in err
    assert "filterwarnings" not in err
    assert main(argv + ["--unscaled-ok"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_convert_with_trained_bounds_needs_no_calibration_argument(capsys, tmp_path):
    evsim.save(load_model("vgg_qcfs"), tmp_path / "qcfs.npz")
    assert main(["convert", str(tmp_path / "qcfs.npz"), "-o", str(tmp_path / "s"),
                 "--method", "qcfs"]) == 0
    assert "calibrated on no images" in capsys.readouterr().out
    assert evsim.load(tmp_path / "s.npz").method == "qcfs"
    assert main(["convert", str(tmp_path / "qcfs.npz"), "-o", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "CALIBRATION" in err and "are needed by method 'percentile'" in err


def test_convert_says_where_spicalib_thresholds_come_from(capsys, files):
    root, *_ = files
    assert main(["convert", str(root / "ann.npz"), str(root / "calibration.npz"), "-o",
                 str(root / "spicalib"), "--method", "spicalib", "--T", "16"]) == 0
    out = capsys.readouterr().out
    assert "braincog of" not in out
    assert "thresholds from BrainCog's per-layer λ (p = 99%) of the ANN activations on 64" in out
