"""The tutorials in docs/tutorials run: each jupytext script is converted to a notebook and
executed in a fresh kernel (nbclient, ipykernel), with the images of the smoke mode
(``EVSIM_TUTORIAL_SMOKE=1``), and shows its figures."""

import base64
import os
import re
import time
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

TUTORIALS = Path(__file__).resolve().parents[2] / "docs" / "tutorials"
#: Each tutorial, the figures (PNG outputs) it shows at least, and the files it writes.
EXPECTED = {
    "01_one_neuron.py": (3, []),
    "02_ann_to_snn.py": (7, ["spikes.gif"]),
    "03_conversion_error.py": (2, []),
    "04_methods.py": (2, []),
    "05_operations_and_energy.py": (3, []),
}


def test_every_tutorial_is_tested():
    assert sorted(p.name for p in TUTORIALS.glob("[0-9]*.py")) == sorted(EXPECTED)


def _png_outputs(notebook) -> list[bytes]:
    return [base64.b64decode(output["data"]["image/png"])
            for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.get("outputs", []) if "image/png" in output.get("data", {})]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tutorial_runs_and_shows_its_figures(name, tmp_path, monkeypatch):
    monkeypatch.setenv("EVSIM_TUTORIAL_SMOKE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    root = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    notebook = jupytext.read(TUTORIALS / name)
    start = time.perf_counter()
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    seconds = time.perf_counter() - start
    errors = [o for cell in notebook.cells for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    figures, files = EXPECTED[name]
    pngs = _png_outputs(notebook)
    assert len(pngs) >= figures and all(p[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    for file in files:
        assert (tmp_path / file).stat().st_size > 1000
    print(f"{name}: {seconds:.1f} s")


def test_readme_links_every_tutorial_and_shows_a_small_picture_of_one():
    readme = (TUTORIALS.parents[1] / "README.md").read_text()
    for name in EXPECTED:
        assert f"(docs/tutorials/{name})" in readme
    pictures = [TUTORIALS.parents[1] / p for p in
                re.findall(r"!\[[^\]]*\]\((docs/tutorials/img/[^)]+\.png)\)", readme)]
    assert pictures and all(0 < p.stat().st_size < 150_000 for p in pictures)
