"""Dask distributed: a 2-worker LocalCluster gives exactly the local results (simulate,
compare_methods, the command line), also after a worker process is killed mid-run; tuning
on the cluster; the local path imports no Dask."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import evsim
from evsim.data import load_bundled_sample
from evsim.errors import EvsimTypeError, EvsimValueError
from evsim.extras import MissingExtraError, missing_extra_message
from evsim.models import load_model
from evsim.options import TunedForOtherTWarning

distributed = pytest.importorskip("distributed")


def _blas_threads() -> str:
    """The BLAS thread count of this process (OpenBLAS's default: the cores it may use)."""
    for name in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(name):
            return os.environ[name]
    return str(len(os.sched_getaffinity(0)))


#: Read before any cluster starts: Dask's nanny writes its worker settings into os.environ.
BLAS_THREADS = _blas_threads()


@contextlib.contextmanager
def _cluster():
    """Two worker processes of one thread whose BLAS uses as many threads as this process's:
    float sums in BLAS (the analog first layer) depend on its thread count, and Dask would
    give workers one (docs/scaling.md). This process's environment is restored after."""
    import dask

    saved = dict(os.environ)
    blas = {name: BLAS_THREADS for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                            "MKL_NUM_THREADS")}
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": blas}), \
                distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                         dashboard_address=":0") as cluster:
            yield cluster
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def client():
    with _cluster() as cluster, distributed.Client(cluster) as connected:
        yield connected


@pytest.fixture(scope="module")
def data():
    calibration, _ = load_bundled_sample("train")
    images, labels = load_bundled_sample("test")
    network = load_model("fashion_cnn")
    return network, evsim.convert(network, calibration[:64]), calibration[:64], images, labels


def _fields_equal(a, b) -> bool:
    """Spike counts, SOPs, pooling operations and outputs identical, and the same run."""
    return (evsim.results_equal(a, b) and a.outputs.dtype == b.outputs.dtype
            and all(np.array_equal(a.spike_counts[k], b.spike_counts[k]) for k in a.spike_counts)
            and all(np.array_equal(a.sops[k], b.sops[k]) for k in a.sops)
            and (a.n_images, a.first_image, a.network_hash, a.seed, a.batch_size) == (
                b.n_images, b.first_image, b.network_hash, b.seed, b.batch_size))


@pytest.mark.parametrize("encoding, engine", [("analog", "event"), ("rate", "event"),
                                              ("rate", "dense")])
def test_simulate_on_two_worker_processes_equals_the_local_run(client, data, encoding, engine):
    _, snn, _, images, _ = data
    kwargs = dict(T=8, encoding=encoding, engine=engine, seed=5, batch_size=16, first_image=3,
                  per_image_counts=engine == "dense")
    local = evsim.simulate(snn, images[:100], **kwargs)
    shared = evsim.simulate(snn, images[:100], client=client, **kwargs)
    assert _fields_equal(local, shared)
    if engine == "dense":
        assert all(np.array_equal(local.spike_counts[k], shared.spike_counts[k])
                   for k in local.spike_counts)


def test_the_cluster_gives_the_warnings_a_local_run_gives(client, data):
    network, _, calibration, images, _ = data
    with pytest.warns(evsim.UnscaledInputWarning, match="above 1"):
        evsim.simulate(data[1], images[:8] * 255, T=2, client=client)
    spicalib = evsim.convert(network, calibration, "spicalib", T=8)
    with pytest.warns(TunedForOtherTWarning, match="runs for T = 16"):
        evsim.simulate(spicalib, images[:8], T=16, client=client)


def test_compare_methods_on_the_cluster_equals_the_local_comparison(client, data):
    network, _, calibration, images, labels = data
    kwargs = dict(methods=["percentile", "qcfs", "spicalib", "spikeconverter"], T=[1, 2, 8],
                  batch_size=16)
    local = evsim.compare_methods(network, calibration, images[:64], labels[:64], **kwargs)
    lines = []
    shared = evsim.compare_methods(network, calibration, images[:64], labels[:64],
                                   client=client, progress=lines.append, **kwargs)
    assert shared.to_json() == local.to_json()
    assert not shared["qcfs"].applies and len(lines) == 1 + 1 + 3 + 3


@pytest.mark.slow
def test_a_worker_killed_mid_run_has_its_shards_recomputed(data):
    _, snn, _, images, _ = data
    images = images[:800]
    expected = evsim.simulate(snn, images, T=32, batch_size=16)
    with _cluster() as cluster, distributed.Client(cluster) as fresh:
        pids = fresh.run(os.getpid)
        outcome = {}

        def run():
            outcome["result"] = evsim.simulate(snn, images, T=32, batch_size=16, client=fresh)

        thread = threading.Thread(target=run)
        thread.start()
        deadline, victim = time.monotonic() + 120, None
        while victim is None and time.monotonic() < deadline:
            busy = [w for w, keys in fresh.processing().items() if keys and w in pids]
            victim = busy[0] if busy else None
            time.sleep(0.05)
        assert victim is not None and thread.is_alive(), "no shard was in flight"
        os.kill(pids[victim], signal.SIGKILL)
        thread.join(timeout=300)
        assert not thread.is_alive()
        assert pids[victim] not in fresh.run(os.getpid).values()
    assert _fields_equal(outcome["result"], expected)


def test_the_command_line_runs_on_a_scheduler(client, data, tmp_path, capsys):
    from evsim.cli import main

    _, snn, _, images, labels = data
    evsim.save(snn, tmp_path / "snn.npz")
    np.savez(tmp_path / "data.npz", images=images[:40], labels=labels[:40])
    argv = ["run", str(tmp_path / "snn.npz"), str(tmp_path / "data.npz"), "--T", "8", "--json"]
    assert main(argv) == 0
    local = json.loads(capsys.readouterr().out)
    assert main(argv + ["--scheduler", client.scheduler.address]) == 0
    captured = capsys.readouterr()
    shared = json.loads(captured.out)
    assert "on the Dask cluster at" in captured.err
    for key in ("accuracy", "sops_per_image", "energy_uj_per_image", "firing_rates"):
        assert shared[key] == local[key], key


def test_tune_on_the_cluster_is_reproducible(client, data):
    from evsim.tune import tune

    network, _, calibration, images, labels = data
    kwargs = dict(T=4, n_trials=4, seed=3, validation=(images[:24], labels[:24]))
    local = tune(network, calibration, **kwargs)
    one_per_round = tune(network, calibration, client=client, n_jobs=1, **kwargs)
    assert one_per_round.trials == local.trials and one_per_round.options == local.options
    rounds = [tune(network, calibration, client=client, n_jobs=2, **kwargs) for _ in range(2)]
    assert rounds[0].trials == rounds[1].trials
    asynchronous = tune(network, calibration, client=client, parallel="async", **kwargs)
    assert len(asynchronous.trials) == 4 and asynchronous.optimised


def test_the_local_path_imports_no_dask():
    script = ("import sys, numpy as np, evsim\n"
              "net = evsim.Network.sequential((2,), [evsim.Dense(np.eye(2)), evsim.ReLU(), "
              "evsim.Dense(np.eye(2))])\n"
              "snn = evsim.convert(net, np.ones((4, 2), np.float32))\n"
              "evsim.simulate(snn, np.ones((3, 2), np.float32), T=4)\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in "
              "('dask', 'distributed', 'optuna_integration')))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_a_missing_dask_or_a_wrong_client_says_what_to_do(data, monkeypatch):
    _, snn, _, images, _ = data
    with pytest.raises(EvsimTypeError, match="client must be a dask.distributed.Client"):
        evsim.simulate(snn, images[:2], T=2, client="tcp://127.0.0.1:8786")
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MissingExtraError) as caught:
        evsim.simulate(snn, images[:2], T=2, client=object())
    assert str(caught.value) == missing_extra_message(
        "distributed", "evsim.simulate(client=...)")


def test_an_unreachable_scheduler_is_one_clear_error():
    from evsim.distributed import connect

    with pytest.raises(EvsimValueError, match=r"cannot reach a Dask scheduler at "
                                              r"'tcp://127.0.0.1:9'.*dask scheduler"):
        connect("tcp://127.0.0.1:9", timeout=1)


_RELEASE_SHARDS = threading.Event()


def _slow_shard(snn, images, T, options=None, first_image=0):
    _RELEASE_SHARDS.wait(20)  # a shard in flight until the test is done


def test_a_scheduler_lost_mid_run_is_one_evsim_error_saying_how_to_resume():
    """The scheduler dies while shards run: an EvsimError says what was lost and what to do,
    not Dask's FutureCancelledError."""
    from evsim.distributed import ClusterLostError, ShardedRuns

    net = evsim.Network.sequential((4,), [evsim.Dense(np.eye(2, 4)), evsim.ReLU()])
    snn = evsim.convert(net, np.full((2, 4), 0.5, np.float32), method="max")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        runs = ShardedRuns(client, np.zeros((4, 4), np.float32), simulate=_slow_shard,
                           batch_size=2)
        runs.submit("percentile", snn, T=2)
        threading.Timer(1.0, lambda: client.sync(cluster.scheduler.close)).start()
        with pytest.raises(ClusterLostError) as lost:
            list(runs.completed())
        runs.close()
    finally:
        _RELEASE_SHARDS.set()
        for closing in (client, cluster):
            with contextlib.suppress(Exception):  # the scheduler is gone
                closing.close(timeout=2)
    message = str(lost.value)
    assert isinstance(lost.value, evsim.EvsimError)
    assert "lost the connection to the Dask scheduler" in message
    assert "2 of 2 image shards of run 'percentile'" in message and "run it again" in message
    assert isinstance(lost.value.__cause__, distributed.client.FutureCancelledError)


@pytest.mark.slow
def test_the_command_says_in_one_line_that_the_scheduler_was_lost(data, tmp_path):
    """`evsim run --scheduler`: the scheduler process is killed mid-run; exit 2, one line
    saying what was lost, no traceback."""
    _, snn, _, images, labels = data
    evsim.save(snn, tmp_path / "snn.npz")
    bin_dir = os.path.dirname(sys.executable)
    port = "8797"
    scheduler = subprocess.Popen([os.path.join(bin_dir, "dask"), "scheduler", "--port", port,
                                  "--no-dashboard"], stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([os.path.join(bin_dir, "dask"), "worker",
                               f"tcp://127.0.0.1:{port}", "--nthreads", "1", "--no-dashboard"],
                              stderr=subprocess.DEVNULL)
    try:
        time.sleep(8)
        run = subprocess.Popen([sys.executable, "-m", "evsim", "run", str(tmp_path / "snn.npz"),
                                "bundled", "--T", "1024", "--scheduler",
                                f"tcp://127.0.0.1:{port}"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        time.sleep(12)
        scheduler.kill()
        _, err = run.communicate(timeout=120)
    finally:
        for process in (scheduler, worker):
            process.kill()
            process.wait()
    assert run.returncode == 2, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert "the Dask cluster lost this simulation" in err and "run it again" in err
