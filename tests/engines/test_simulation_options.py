"""SimulationOptions, the engine registry and the one request check of both paths."""

import dataclasses
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from dyadic import dyadic, dyadic_threshold

import evsim
from evsim import Conv2d, Dense, Flatten, NetworkBuilder, NeuronSpec, ReLU, SpikingNetwork
from evsim.cli import build_parser
from evsim.errors import EvsimTypeError, EvsimValueError
from evsim.options import OptionError
from evsim.signals import ENCODINGS
from evsim import engines
from evsim.simulate.dense import DenseRunner
from evsim.engines import ENGINES, ChunkResult, register_engine
from evsim.simulation_options import SimulationOptions
from evsim.timeplan import time_plan


def _snn(seed=0, time_scheme="synchronous"):
    rng = np.random.default_rng(seed)
    b = NetworkBuilder((1, 6, 6))
    b.add_layer(Conv2d(dyadic(rng, (3, 1, 3, 3), low=-2), dyadic(rng, 3), padding=1), name="c1")
    b.add_layer(ReLU(), name="r1")
    b.add_layer(Flatten(), name="flat")
    b.add_layer(Dense(dyadic(rng, (4, 108))), name="fc")
    net = b.build()
    neurons = {"r1": NeuronSpec(dyadic_threshold(rng, (3, 1, 1)))}
    return SpikingNetwork(net, neurons, time_scheme=time_scheme), dyadic(rng, (5, 1, 6, 6), low=0)


@pytest.mark.parametrize("option, value, error", [
    ("engine", "gpu", OptionError), ("encoding", "spikes", OptionError),
    ("checkpoints", [0, 2], OptionError), ("checkpoints", [], OptionError),
    ("checkpoints", [1.5], OptionError), ("record", {"r1": [-1]}, OptionError),
    ("record", 3, OptionError), ("per_image_counts", "yes", OptionError),
    ("seed", -1, OptionError), ("seed", 1.5, OptionError), ("dtype", np.int32, OptionError),
    ("dtype", "nonsense", OptionError), ("progress", 1, OptionError),
    ("batch_size", 0, EvsimValueError), ("batch_size", True, EvsimTypeError),
    ("threads", 0, EvsimValueError)])
def test_a_bad_option_is_refused_when_made_naming_it(option, value, error):
    with pytest.raises(error) as info:
        SimulationOptions(**{option: value})
    assert str(info.value).startswith(option)
    if error is OptionError:
        assert info.value.option.startswith(option)
    with pytest.raises(error, match=f"^{option}"):  # simulate's keywords are the same check
        snn, x = _snn()
        evsim.simulate(snn, x, T=2, **{option: value})


def test_options_are_normalised_frozen_hashable_and_picklable():
    options = SimulationOptions(checkpoints=range(4, 0, -1), record="r1", dtype="float64",
                                seed=np.int64(3), threads=np.int64(2))
    assert options.checkpoints == (1, 2, 3, 4) and options.record == {"r1": None}
    assert options.dtype == np.float64 and type(options.seed) is int and options.threads == 2
    assert SimulationOptions(record={"r1": np.array([2, 0])}).record == {"r1": (2, 0)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.engine = "dense"
    assert pickle.loads(pickle.dumps(options)) == options
    assert hash(options) == hash(dataclasses.replace(options))
    with pytest.raises(EvsimTypeError, match="unknown simulation option.*enigne"):
        options.replace(enigne="dense")


def test_options_and_keywords_give_the_same_run():
    snn, x = _snn()
    options = SimulationOptions(engine="dense", encoding="rate", seed=5, batch_size=2,
                                per_image_counts=True)
    by_options = evsim.simulate(snn, x / 4, T=6, options=options)
    by_keywords = evsim.simulate(snn, x / 4, T=6, engine="dense", encoding="rate", seed=5,
                                 batch_size=2, per_image_counts=True)
    assert evsim.results_equal(by_options, by_keywords)
    changed = evsim.simulate(snn, x / 4, T=6, options=options, engine="event")
    assert changed.engine == "event" and changed.seed == 5
    assert evsim.difference(by_options, changed)["spikes"] == 0
    with pytest.raises(EvsimTypeError, match="unknown simulation option.*colour"):
        evsim.simulate(snn, x, T=2, colour="red")
    with pytest.raises(OptionError, match="options must be a SimulationOptions"):
        evsim.simulate(snn, x, T=2, options={"engine": "dense"})


def _help(command: str) -> str:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a.choices, dict))
    return commands.choices[command].format_help()


def test_every_option_marked_for_the_commands_is_a_flag_of_evsim_run():
    marked = [f for f in dataclasses.fields(SimulationOptions) if f.metadata["cli"]]
    assert {f.name for f in marked} >= {"engine", "encoding", "seed", "batch_size", "threads",
                                        "checkpoints"}
    text = " ".join(_help("run").split())
    for f in marked:
        flag = "--" + f.name.replace("_", "-")
        assert flag in text, flag
        assert " ".join(f.metadata["help"].split()) in text, f.name
    assert "--engine {" + ",".join(ENGINES) + "}" in text
    assert "--encoding {" + ",".join(ENCODINGS) + "}" in text
    compare = " ".join(_help("compare").split())
    assert "--engine" in compare and "--seed" in compare and "--checkpoints" not in compare
    done = subprocess.run([sys.executable, "-m", "evsim", "run", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and all("--" + f.name.replace("_", "-") in done.stdout
                                        for f in marked)


class _Recorder:
    """A third engine: the dense engine's arithmetic behind a runner of its own, which notes
    the chunks it is given."""

    calls = []

    def __init__(self, setup):
        self.inner = DenseRunner(setup)

    def run_chunk(self, x, first_image, on_steps=None):
        _Recorder.calls.append((len(x), first_image))
        chunk = self.inner.run_chunk(x, first_image, on_steps)
        assert isinstance(chunk, ChunkResult)
        return chunk


@pytest.fixture
def third_engine():
    _Recorder.calls = []
    register_engine("recorder", _Recorder)
    yield "recorder"
    engines._REGISTRY.pop("recorder")


def test_a_registered_engine_runs_through_simulate_and_the_cli(third_engine):
    snn, x = _snn()
    result = evsim.simulate(snn, x, T=5, engine=third_engine, batch_size=2, first_image=10)
    assert result.engine == third_engine
    assert _Recorder.calls == [(2, 10), (2, 12), (1, 14)]
    dense = evsim.simulate(snn, x, T=5, engine="dense", batch_size=2, first_image=10)
    assert evsim.difference(result, dense) == evsim.difference(dense, dense)
    assert third_engine in " ".join(_help("run").split())
    with pytest.raises(EvsimValueError, match="needs engine='dense'; engine 'recorder'"):
        evsim.simulate(snn, x, T=5, engine=third_engine, record="r1")
    with pytest.raises(EvsimValueError, match="already registered"):
        register_engine(third_engine, _Recorder)


def test_the_engine_modules_are_imported_when_first_used():
    code = ("import sys, numpy as np, evsim\n"
            "print('evsim.simulate.event' in sys.modules)\n"
            "snn = evsim.convert(evsim.models.load_model('fashion_cnn'), np.ones((2, 1, 28, 28)))\n"
            "evsim.simulate(snn, np.ones((1, 1, 28, 28), np.float32), T=1)\n"
            "print('evsim.simulate.event' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "True"]


class _NoClient:
    """Never reached: a bad request fails before anything is sent to a cluster."""


@pytest.mark.parametrize("bad", [
    dict(T=0), dict(first_image=-1), dict(checkpoints=[9]), dict(record="r1"),
    dict(record={"r1": [10_000]}), dict(record="fc", engine="dense"), dict(inputs="empty"),
    dict(inputs="one image"), dict(encoding="rate", inputs="large"), dict(snn="ann"),
    dict(time_scheme="temporal", checkpoints=[2]), dict(time_scheme="ilif", encoding="rate")])
def test_the_local_and_the_distributed_path_refuse_a_bad_request_alike(bad):
    bad = dict(bad)
    snn, x = _snn(time_scheme=bad.pop("time_scheme", "synchronous"))
    x = {"empty": x[:0], "one image": x[0], "large": x * 4 + 1, None: x}[bad.pop("inputs", None)]
    snn = snn.network if bad.pop("snn", None) else snn
    call = dict(T=bad.pop("T", 4), **bad)
    errors = []
    for client in (None, _NoClient()):
        with pytest.raises((EvsimValueError, EvsimTypeError)) as info, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            evsim.simulate(snn, x, client=client, **call)
        errors.append((type(info.value), str(info.value)))
    assert errors[0] == errors[1]


def test_the_time_plan_lowers_each_scheme_in_one_place():
    snn, _ = _snn()
    plan = time_plan(snn, 8, "analog")
    assert (plan.window, plan.binary, plan.steps_simulated, plan.input_scale) == (0, False, 8, 1)
    assert plan.checkpoints.tolist() == [1, 2, 4, 8] and plan.latency == 8
    temporal, _ = _snn(time_scheme="temporal")
    plan = time_plan(temporal, 8, "analog")
    assert (plan.window, plan.binary, plan.steps_simulated, plan.input_scale) == (8, False, 1, 8)
    assert plan.checkpoints.tolist() == [8] and plan.engine_checkpoints.tolist() == [1]
    assert plan.snn.network["c1"].layer.bias.tolist() == (
        8 * temporal.network["c1"].layer.bias).tolist()
    assert time_plan(temporal, 8, "rate").input_scale == 1
    ilif, _ = _snn(time_scheme="ilif")
    plan = time_plan(ilif, 4, "analog")
    assert (plan.window, plan.binary, plan.steps_simulated) == (15, True, 1)
    with pytest.raises(EvsimValueError, match="one checkpoint"):
        time_plan(temporal, 8, "analog", checkpoints=(2,))
    with pytest.raises(EvsimValueError, match=r"checkpoints must be steps in \[1, 8\]"):
        time_plan(snn, 8, "analog", checkpoints=(9,))


@pytest.mark.parametrize("argument, value", [
    ("T", 2 ** 63), ("T", 2 ** 70), ("first_image", 2 ** 63), ("first_image", 2 ** 63 - 2),
    ("seed", 2 ** 63), ("seed", 2 ** 64)])
def test_integers_past_int64_are_refused_by_name(argument, value):
    snn, x = _snn()
    arguments = {"T": 3, "encoding": "rate", argument: value}
    with pytest.raises(EvsimValueError, match=rf"{argument}\b.*2\*\*63"):
        evsim.simulate(snn, x, **arguments)


@pytest.mark.parametrize("step", [2.5, 2.0, True, np.True_])
def test_a_step_that_is_no_integer_is_refused_everywhere_as_T_is(step):
    from evsim.analysis import energy_report, memory_energy_report

    snn, x = _snn()
    with pytest.raises(EvsimTypeError):
        evsim.simulate(snn, x, T=step)
    with pytest.raises((OptionError, EvsimTypeError), match="checkpoints"):
        evsim.simulate(snn, x, T=4, checkpoints=[step])
    result = evsim.simulate(snn, x, T=4)
    with pytest.raises(EvsimTypeError, match="step"):
        result.mean_output(step)
    with pytest.raises(EvsimTypeError, match="steps"):
        energy_report(snn, result, steps=step)
    with pytest.raises(EvsimTypeError, match="steps"):
        memory_energy_report(snn, result, steps=step)
