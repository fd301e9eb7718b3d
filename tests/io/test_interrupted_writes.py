"""Killing a writer at random moments leaves the old output or the complete new one.

Each child process writes the same output over and over, alternating between
two different contents; it is killed (SIGKILL or SIGINT) at a random moment,
and the output must then be exactly one of the two complete versions. Two
report writers also run at once on the same folder.
"""

import base64
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from interruptible import default_sigint

import evsim
from evsim.cli import main
from evsim.data import load_bundled_sample
from evsim.models import load_model

ROOT = Path(__file__).resolve().parents[2]
SIGNALS = [signal.SIGKILL, signal.SIGINT]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("interrupted")
    images, labels = load_bundled_sample("test")
    calibration, _ = load_bundled_sample("train")
    ann = load_model()
    evsim.save(ann, root / "ann.npz")
    np.savez(root / "calibration.npz", images=calibration[:32])
    np.savez(root / "data.npz", images=images[:2], labels=labels[:2])
    snns = {m: evsim.convert(ann, calibration[:32], method=m) for m in ("max", "percentile")}
    evsim.save(snns["max"], root / "snn.npz")
    return root, ann, snns


def _start(code: str) -> subprocess.Popen:
    """A child running ``code``; it prints a line when its writing loop is under way."""
    return subprocess.Popen([sys.executable, "-u", "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, preexec_fn=default_sigint)


def _kill_at_random(children: list[subprocess.Popen], rng: random.Random, latest: float,
                    sig: signal.Signals) -> None:
    """Once every child has printed its first line, wait up to ``latest`` s and signal them."""
    for child in children:
        assert child.stdout.readline(), "the writer died before it started"
    time.sleep(rng.uniform(0, latest))
    for child in children:
        child.send_signal(sig)
    for child in children:
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:  # SIGINT lands between loop iterations at worst
            child.kill()
            child.wait()


def _same_snn(a, b) -> bool:
    return (a.method == b.method and a.network.equals(b.network)
            and all(np.array_equal(a.neurons[k].threshold, b.neurons[k].threshold)
                    for k in a.neurons))


@pytest.mark.slow
def test_killed_save_leaves_old_or_new(tmp_path, inputs):
    root, ann, snns = inputs
    target = tmp_path / "net.npz"
    evsim.save(ann, target)
    code = (f"import itertools, evsim\nann, snn = evsim.load({str(root / 'ann.npz')!r}), "
            f"evsim.load({str(root / 'snn.npz')!r})\nprint('writing')\n"
            f"for i in itertools.count():\n    evsim.save((snn, ann)[i % 2], {str(target)!r})\n")
    rng = random.Random(0)
    for attempt in range(6):
        _kill_at_random([_start(code)], rng, 0.5, SIGNALS[attempt % 2])
        loaded = evsim.load(target)
        assert (loaded.equals(ann) if isinstance(loaded, evsim.Network)
                else _same_snn(loaded, snns["max"]))


@pytest.mark.slow
def test_killed_convert_leaves_old_or_new(tmp_path):
    # A wide MLP (4 M weights): writing its file takes most of each conversion, so most
    # kills land while the output is being written.
    rng = np.random.default_rng(0)
    ann = evsim.Network.sequential((64,), [
        evsim.Dense(rng.standard_normal((2048, 64)).astype(np.float32)), evsim.ReLU(),
        evsim.Dense(rng.standard_normal((2048, 2048)).astype(np.float32)), evsim.ReLU(),
        evsim.Dense(rng.standard_normal((10, 2048)).astype(np.float32))])
    calibration = rng.random((16, 64)).astype(np.float32)
    evsim.save(ann, tmp_path / "ann.npz")
    np.savez(tmp_path / "calibration.npz", images=calibration)
    snns = {m: evsim.convert(ann, calibration, method=m) for m in ("max", "percentile")}
    target = tmp_path / "snn.npz"
    evsim.save(snns["max"], target)
    argv = ["convert", str(tmp_path / "ann.npz"), str(tmp_path / "calibration.npz"), "-o",
            str(target), "--json"]
    code = (f"import itertools\nfrom evsim.cli import main\nprint('writing')\n"
            f"for i in itertools.count():\n"
            f"    if main({argv!r} + ['--method', ('percentile', 'max')[i % 2]]) != 0:\n"
            "        break\n")
    rng = random.Random(1)
    for attempt in range(6):
        _kill_at_random([_start(code)], rng, 3.0, SIGNALS[attempt % 2])
        loaded = evsim.load(target)
        assert _same_snn(loaded, snns[loaded.method])


def _check_report(folder: Path) -> str:
    """The T of the complete, single-run report in ``folder``; fails on a torn or mixed one."""
    markdown = (folder / "report.md").read_text()
    assert markdown.endswith("```\n"), "report.md is cut short"
    html = (folder / "index.html").read_text()
    assert html.endswith("</html>\n"), "index.html is cut short"
    linked = re.findall(r"^!\[.*\]\((.+\.png)\)$", markdown, re.M)
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert sorted(linked) == sorted(p.name for p in folder.glob("*.png")), "plots missing"
    pages = ["explorer.html"] if "`explorer.html`" in markdown else []  # with evsim[explore]
    for page in pages:
        assert (folder / page).read_text().rstrip().endswith("</html>"), f"{page} is cut short"
    assert sorted(p.name for p in folder.iterdir()) == sorted(linked + ["index.html",
                                                                        "report.md"] + pages)
    for name, data in zip(linked, embedded, strict=True):  # each plot is the one of this run
        assert (folder / name).read_bytes() == base64.b64decode(data), f"{name} is from another run"
    steps = set(re.findall(r"T = (\d+), on", markdown))
    assert len(steps) == 1, f"report.md mentions T = {sorted(steps)}"
    return steps.pop()


@pytest.mark.slow
def test_killed_and_concurrent_reports_leave_one_complete_report(tmp_path, inputs):
    root, _, _ = inputs
    target = tmp_path / "report"
    argv = ["report", str(root / "snn.npz"), str(root / "data.npz"), "-o", str(target),
            "--engine", "dense", "--analysis-images", "1", "--json"]
    assert main(argv + ["--T", "2"]) == 0
    code = (f"import itertools\nfrom evsim.cli import main\nprint('writing')\n"
            f"for i in itertools.count():\n"
            f"    if main({argv!r} + ['--T', ('4', '2')[i % 2]]) != 0:\n        break\n")
    rng = random.Random(3)
    for attempt in range(4):  # alone and two at once, each with SIGKILL and SIGINT
        children = [_start(code) for _ in range(1 + attempt % 2)]
        _kill_at_random(children, rng, 10.0, SIGNALS[attempt // 2])
        assert _check_report(target) in ("2", "4")
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "report"]
    assert all(name.startswith(".report.") for name in leftovers), leftovers
