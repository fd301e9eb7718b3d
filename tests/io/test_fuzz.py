"""A bounded, seeded fuzz of evsim.load and of the evsim command on damaged files.

Valid seed files (an ANN, a spiking network, a simulation result, an ONNX
model) are mutated byte by byte and structurally (a damaged JSON header or
array inside a well-formed .npz; a damaged node or initializer inside a
well-formed ONNX model). Every mutant must load or raise an evsim error
naming the file, within a few seconds; the command must exit 0 or 2 with
one line and no traceback. Runs in CI in well under a minute.
"""

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from corrupt import mutate, mutate_evsim_npz, mutate_onnx, onnx_model

import evsim
from evsim import EvsimError
from evsim.data import load_bundled_sample
from evsim.models import load_model

CASES_PER_SEED = 400  # half byte-level, half structural
SECONDS_PER_LOAD = 5


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_seeds")
    calibration, _ = load_bundled_sample("train")
    images, _ = load_bundled_sample("test")
    ann = load_model()
    snn = evsim.convert(ann, calibration[:32])
    evsim.save(ann, root / "ann.npz")
    evsim.save(snn, root / "snn.npz")
    evsim.save(evsim.simulate(snn, images[:3], T=4, engine="dense", per_image_counts=True,
                              record={"relu3": [0, 5, 9]}), root / "result.npz")
    paths = [root / "ann.npz", root / "snn.npz", root / "result.npz"]
    try:
        import onnx
        onnx.save(onnx_model(), str(root / "model.onnx"))
        paths.append(root / "model.onnx")
    except ImportError:  # the onnx extra is part of the test install; fuzz the rest without it
        pass
    return paths


def _mutants(seed_path: Path, rng: random.Random):
    raw = seed_path.read_bytes()
    if seed_path.suffix == ".onnx":
        import onnx
        model = onnx.load(str(seed_path))
    else:
        with np.load(seed_path) as data:
            arrays = {key: data[key] for key in data.files}
    for i in range(CASES_PER_SEED):
        if i % 2 == 0:
            yield mutate(raw, rng)
        elif seed_path.suffix == ".onnx":
            yield mutate_onnx(model, rng)
        else:
            yield mutate_evsim_npz(arrays, rng)


def test_damaged_files_load_or_raise_an_evsim_error_naming_them(seeds, tmp_path):
    previous = signal.signal(signal.SIGALRM, _alarm)
    outcomes = {}
    started = time.perf_counter()
    try:
        for number, seed_path in enumerate(seeds):
            rng = random.Random(number)
            path = tmp_path / f"mutant{seed_path.suffix}"
            for i, data in enumerate(_mutants(seed_path, rng)):
                path.write_bytes(data)
                signal.setitimer(signal.ITIMER_REAL, SECONDS_PER_LOAD)
                try:
                    evsim.load(path)
                    outcome = "loaded"
                except EvsimError as err:
                    assert str(path) in str(err), (seed_path.name, i, err)
                    outcome = type(err).__name__
                except _Hang:
                    pytest.fail(f"{seed_path.name} mutant {i}: load took over "
                                f"{SECONDS_PER_LOAD} s")
                except Exception as err:  # the failure this test exists for
                    (tmp_path / f"escaped{seed_path.suffix}").write_bytes(data)
                    pytest.fail(f"{seed_path.name} mutant {i}: {type(err).__name__}: {err}")
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert sum(outcomes.values()) == CASES_PER_SEED * len(seeds)
    assert outcomes.get("EvsimFileError", 0) > CASES_PER_SEED  # the mutations do damage
    assert time.perf_counter() - started < 45


def _first_failing_mutants(seed_path: Path, tmp_path: Path, count: int, rng: random.Random):
    found = []
    for i, data in enumerate(_mutants(seed_path, rng)):
        path = tmp_path / f"{seed_path.stem}_{i}{seed_path.suffix}"
        path.write_bytes(data)
        try:
            evsim.load(path)
        except EvsimError:
            found.append(path)
            if len(found) == count:
                break
    return found


def test_the_command_on_damaged_files_exits_2_with_one_line(seeds, tmp_path):
    by_name = {p.name: p for p in seeds}
    runs = []
    for name, command, count in [("snn.npz", "run", 2), ("result.npz", "run", 1),
                                 ("ann.npz", "convert", 2), ("model.onnx", "convert", 1)]:
        if name not in by_name:
            continue
        small = (["--images", "2", "--T", "2"] if command == "run" else
                 ["--calibration-images", "8", "-o", str(tmp_path / "out.npz")])
        for path in _first_failing_mutants(by_name[name], tmp_path, count,
                                           random.Random(name)):
            runs.append([command, str(path), "bundled", *small])
    assert len(runs) >= 5
    for argv in runs:
        done = subprocess.run([sys.executable, "-m", "evsim", *argv], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2, (argv, done.stderr)
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
        assert argv[1] in done.stderr
