"""The README's Python examples, the benchmark scripts and the API reference stay true."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


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
@pytest.mark.parametrize("script", ["bench_kernels.py", "bench_network.py", "peers.py",
                                    "bench_scaling.py", "dense_bound.py",
                                    "depthwise_bound.py", "dense_depthwise.py"])
def test_benchmark_scripts_run_in_quick_mode(script):
    if script == "bench_scaling.py":
        pytest.importorskip("distributed")
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"^\|.*\|$", done.stdout, re.M)


def test_the_breakdown_runs_the_engines_step_and_checks_it():
    """bench_network.py --breakdown runs the event engine's steps row by row under a cycle
    counter; it raises unless that run gives the engine's outputs and SOPs (resnet: Adds,
    fills, scatters of several kinds), and prints the neuron pass against its bare floor and
    every scatter against an isolated kernel: the residual shortcuts and the dense layer
    read through a Flatten against the engine's own rows on random events (marked †)."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_network.py"),
                           "--breakdown", "--quick", "--model", "resnet"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| neuron updates |" in done.stdout and "| scatter |" in done.stdout
    assert re.search(r"a bare pass over their buffers .* takes \d+\.\d+ ms", done.stdout)
    assert re.search(r"whole network / kernels would be \d\.\d\d", done.stdout)
    for layer in ("add", "add_1", "fc"):
        assert re.search(rf"^\| {layer} † \| \d+\.\d\d % \| [^|]+ \| \d+\.\d\d \| \d+\.\d\d \|",
                         done.stdout, re.M), layer


def test_the_sparse_table_checks_every_way_on_the_same_frames():
    """bench_network.py --sparse times each dense convolution by the GEMM path, the gather
    and the tiles on the frames it receives (raising if they differ), then whole dense
    runs with and without them; where this machine's BLAS is not the one they follow it
    says so."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_network.py"),
                           "--sparse", "--quick", "--model", "fashion_cnn"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    if "another order" in done.stdout:
        pytest.skip("this machine's BLAS sums its GEMMs in another order")
    row = re.search(r"^\| 16->32 3x3/1 at 14x14 \| \d+\.\d % \| \d+\.\d % \| \d+\.\d+ \| "
                    r"\d+\.\d+ \([\d.]+×\) \| \d+\.\d+ \([\d.]+×\) \|", done.stdout, re.M)
    assert row, done.stdout
    assert "results bit for bit the same: True" in done.stdout


def test_the_memory_table_times_both_engines_on_kept_and_fresh_memory():
    """bench_network.py --memory runs each engine on memory kept from the run before and on
    fresh memory (raising if their results differ): a row per engine and thread count. Its
    page faults are measurements, not checked here: they depend on the allocator's history
    and on the threads a run starts (that a run reuses the kept memory is
    tests/engines/test_arena.py's)."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_network.py"),
                           "--memory", "--quick", "--threads", "2"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = re.findall(r"^\| (event|dense) \| ([12]) \| [\d.]+ \| [\d.]+ \| [\d.]+x \| (\d+) \| "
                      r"(\d+) \|$", done.stdout, re.M)
    assert sorted((engine, k) for engine, k, _, _ in rows) == [
        ("dense", "1"), ("dense", "2"), ("event", "1"), ("event", "2")], done.stdout
    assert "results bit for bit the same on kept and on fresh memory: True" in done.stdout


def test_the_scaling_table_gives_each_convolutions_gemm_groups():
    """bench_network.py --scaling times both engines at one and two threads and lists the
    GEMM groups per block of each convolution that the dense engine runs every step (not
    the analog head's first layer, which runs once per image)."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_network.py"),
                           "--scaling", "--quick", "--model", "resnet"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "results bit for bit the same at 1 and 2 threads: True" in done.stdout
    assert re.search(r"^dense engine: [\d.]+ ms per image at one thread, [\d.]+ at 2 "
                     r"\([\d.]+x\)$", done.stdout, re.M), done.stdout
    frames = int(re.search(r"GEMM groups per block of (\d+) frames", done.stdout).group(1))
    rows = re.findall(r"^\| (\w+) \| (\d+) \| (\d+) \|$", done.stdout, re.M)
    assert [name for name, _, _ in rows] == ["block1_conv1", "block1_conv2", "conv2",
                                            "block2_conv1", "block2_conv2"], done.stdout
    for _, step, groups in rows:
        assert 1 <= int(step) <= frames and int(groups) == -(-frames // int(step))


def test_the_breakdown_checks_a_segmenter_whose_output_is_a_map():
    """The readout of unet_relu is a (C, H, W) map, which the engine keeps channels last: the
    breakdown's check against evsim.simulate compares it channels first (it had failed here).
    Its transposed convolution and the layers read through a Concat are marked †."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_network.py"),
                           "--breakdown", "--quick", "--model", "unet_relu"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for layer in ("upconv1", "conv4", "conv5"):
        assert re.search(rf"^\| {layer} † \|", done.stdout, re.M), layer


def test_api_reference_is_up_to_date():
    done = subprocess.run([sys.executable, str(ROOT / "docs" / "make_api.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
