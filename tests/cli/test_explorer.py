"""`evsim explore`: the explorer page's content, its errors, and the report's explorer."""

import json
import re

import numpy as np
import pytest

import evsim
from evsim.cli import main
from evsim.data import load_bundled_sample
from evsim.models import load_model

pytest.importorskip("plotly")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore")
    images, labels = load_bundled_sample("test")
    evsim.save(evsim.convert(load_model(), load_bundled_sample("train")[0][:32]),
               root / "snn.npz")
    np.savez(root / "empty.npz", images=images[:0])
    np.savez(root / "unlabelled.npz", images=images[:2])
    return root


@pytest.fixture(scope="module")
def page(root):
    assert main(["explore", str(root / "snn.npz"), "bundled", "-o", str(root / "page.html"),
                 "--images", "2", "--T", "6", "--neurons", "3"]) == 0
    return (root / "page.html").read_text(encoding="utf-8")


def _figure(page: str) -> tuple[list, list, dict]:
    """(data, frames, layout) of the page's Plotly.newPlot call."""
    call = page[page.index("Plotly.newPlot("):]
    decoder = json.JSONDecoder()
    rest = call[call.index("[") :]
    data, end = decoder.raw_decode(rest)
    rest = rest[end:].lstrip(", \n")
    layout, end = decoder.raw_decode(rest)
    frames_at = call.index("addFrames(")
    frames, _ = decoder.raw_decode(call[frames_at + len("addFrames("):].split(",", 1)[1].lstrip())
    return data, frames, layout


def test_the_page_is_self_contained(page):
    assert not re.search(r"<script[^>]+src=[\"']?https?:", page, re.I)
    assert "https://cdn" not in page.split("</script>", 2)[-1]
    assert len(page) > 3_000_000  # plotly.js itself is inline


def test_the_page_holds_a_frame_per_image_and_step(page):
    data, frames, layout = _figure(page)
    assert sorted(f["name"] for f in frames) == sorted(f"{i}:{t}" for i in range(2)
                                                       for t in range(1, 7))
    assert len(layout["sliders"]) == 2 and [s["visible"] for s in layout["sliders"]] == [
        True, False]
    assert [len(s["steps"]) for s in layout["sliders"]] == [6, 6]
    assert [b["label"] for b in layout["updatemenus"][0]["buttons"]] == [
        "image 0, label Ankle boot", "image 1, label Pullover"]
    # heatmap, readout, SOPs, then per layer one raster and one trace per neuron
    assert len(data) == 3 + 3 * (1 + 3)
    assert data[1]["x"] == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                            "Shirt", "Sneaker", "Bag", "Ankle boot"]


def test_the_explorer_records_what_the_engine_records(root):
    from evsim.explorer import record_exploration

    snn = evsim.load(root / "snn.npz")
    images, labels = load_bundled_sample("test")
    seen = record_exploration(snn, images[:2], labels[:2], T=5, neurons=4, layers=["relu2"])
    alone = evsim.simulate(snn, images[1:2], T=5, engine="dense", checkpoints=[5],
                           first_image=1, record={"relu2": tuple(seen.neurons["relu2"])})
    trace = seen.images[1]
    assert list(seen.neurons) == ["relu2"] and len(seen.neurons["relu2"]) == 4
    assert trace.sops[-1] == alone.total_sops()
    np.testing.assert_array_equal(trace.readout[-1], alone.mean_output()[0])
    np.testing.assert_array_equal(trace.membrane["relu2"], alone.membrane["relu2"][:, 0])
    assert trace.spikes["relu2"][2].sum() == alone.spike_counts["relu2"].reshape(-1)[
        seen.neurons["relu2"]].sum()


@pytest.mark.parametrize("argv, message", [
    (["--layers", "relu1,conv9"], "layers: no spiking layer named conv9; the spiking layers "
                                  "are relu1, relu2, relu3"),
    (["--data", "{root}/empty.npz"], "empty.npz: holds no images to explore"),
    (["--output", "{root}"], "is a folder; give a file name"),
    (["--output", "{root}/snn.npz/page.html"], "is a file, not a folder"),
])
def test_user_errors_are_one_line(capsys, root, argv, message):
    options = {"--data": "bundled", "--output": str(root / "p.html")}
    extra = []
    for flag, value in zip(argv[::2], argv[1::2]):
        if flag in options:
            options[flag] = value.format(root=root)
        else:
            extra += [flag, value]
    code = main(["explore", str(root / "snn.npz"), options["--data"], "-o", options["--output"],
                 "--T", "3", *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err, err
    assert not (root / "p.html").exists()


def test_json_names_the_page_and_its_size(capsys, root):
    assert main(["explore", str(root / "snn.npz"), str(root / "unlabelled.npz"), "-o",
                 str(root / "u.html"), "--T", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bytes"] == (root / "u.html").stat().st_size and out["images"] == 2


def test_a_missing_plotly_is_one_install_line(capsys, root, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "plotly", None)
    code = main(["explore", str(root / "snn.npz"), "bundled", "-o", str(root / "m.html")])
    err = capsys.readouterr().err
    assert code == 2 and 'pip install "evsim[explore]"' in err and err.count("\n") == 1


def test_the_report_has_an_explorer(root):
    from evsim.report import write_report

    snn = evsim.load(root / "snn.npz")
    images, labels = load_bundled_sample("test")
    report = write_report(root / "report", snn, images[:3], labels[:3], T=4,
                          analysis_images=2)
    page = (report.directory / "explorer.html").read_text(encoding="utf-8")
    assert '"name":"2:4"' in page.replace(" ", "") and "## Interactive explorer" in (
        report.markdown.read_text())


def test_a_map_output_is_drawn_as_an_image():
    from evsim.explorer import explorer_figure, record_exploration

    snn = evsim.convert(load_model("denoiser"), load_bundled_sample("train")[0][:8])
    seen = record_exploration(snn, load_bundled_sample("test")[0][:1], T=3, neurons=2)
    figure = explorer_figure(seen)
    assert seen.output_shape == (1, 28, 28) and figure.data[1].type == "heatmap"
    assert np.asarray(figure.frames[0].data[0].z).shape == (28, 28)
    assert [frame.name for frame in figure.frames] == ["0:1", "0:2", "0:3"]


def test_a_windowed_scheme_has_no_steps_to_explore(capsys, root):
    snn = evsim.convert(load_model(), load_bundled_sample("train")[0][:16],
                        time_scheme="temporal")
    evsim.save(snn, root / "temporal.npz")
    code = main(["explore", str(root / "temporal.npz"), "bundled", "-o", str(root / "t.html")])
    err = capsys.readouterr().err
    assert code == 2 and "the 'temporal' scheme simulates whole windows" in err
    assert not (root / "t.html").exists()
