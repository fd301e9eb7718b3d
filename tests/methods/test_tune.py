"""Bayesian optimisation of p and A: seeded, reproducible, scored on held-out data."""

import numpy as np
import pytest

import evsim
from evsim.data import load_bundled_sample
from evsim.models import load_model
from evsim.tune import tune


@pytest.fixture(scope="module")
def setting():
    images, labels = load_bundled_sample("train")
    # calibration and validation both from the training sample, disjoint
    return load_model(), images[:200], (images[800:880], labels[800:880])


def test_tuning_is_reproducible_and_scores_the_best_trial(setting):
    pytest.importorskip("optuna")
    network, calib, validation = setting
    a = tune(network, calib, validation, T=16, n_trials=4, seed=1)
    b = tune(network, calib, validation, T=16, n_trials=4, seed=1)
    assert a.options == b.options and a.score == b.score and a.metric == "accuracy"
    assert len(a.trials) == 4 and a.score == max(t["score"] for t in a.trials)
    assert 97.0 <= a.options.percentile <= 99.99  # SpiCalib's range: BrainCog's rule
    assert 0.05 * 16 <= a.options.allowance <= 16 and a.options.T == 16
    assert a.tuned == ("percentile", "allowance")
    # the reported accuracy is what the chosen options give
    snn = evsim.convert(network, calib, method="spicalib", options=a.options)
    r = evsim.simulate(snn, validation[0], T=16, checkpoints=[16], engine="event")
    assert r.accuracy(validation[1])[-1] == a.score


def test_mse_is_minimised_against_targets():
    pytest.importorskip("optuna")
    rng = np.random.default_rng(0)
    b = evsim.NetworkBuilder((4,))
    b.add_layer(evsim.Dense(rng.normal(size=(6, 4)), rng.normal(size=6)))
    b.add_layer(evsim.ReLU())
    b.add_layer(evsim.Dense(rng.normal(size=(3, 6))))
    network = b.build()
    inputs = rng.random((40, 4)).astype(np.float32)
    targets = evsim.forward(network, inputs[20:])  # the ANN's own outputs
    result = tune(network, inputs[:20], (inputs[20:], targets), T=8, n_trials=5, seed=0,
                  score="mse", search=("allowance",))
    assert result.metric == "mse" and result.score == min(t["score"] for t in result.trials)
    snn = evsim.convert(network, inputs[:20], method="spicalib", options=result.options)
    r = evsim.simulate(snn, inputs[20:], T=8, checkpoints=[8], engine="event")
    assert np.mean((r.mean_output() - targets) ** 2) == pytest.approx(result.score, rel=1e-12)
    with pytest.raises(ValueError, match="score must be one of"):
        tune(network, inputs[:20], (inputs[20:], targets), T=8, score="mae")


def test_per_layer_percentiles(setting):
    pytest.importorskip("optuna")
    network, calib, validation = setting
    result = tune(network, calib, validation, T=8, n_trials=2, per_layer=True,
                  search=("percentile",))
    assert set(result.options.percentile) == {"relu1", "relu2", "relu3"}
    snn = evsim.convert(network, calib, method="spicalib", options=result.options)
    assert snn.options["percentile"] == dict(result.options.percentile)


def test_spicalib_preset_needs_T_and_uses_a_quarter_of_it(setting):
    network, calib, _ = setting
    with pytest.raises(evsim.options.OptionError, match="T is needed by method .spicalib."):
        evsim.convert(network, calib, method="spicalib")
    snn = evsim.convert(network, calib, method="spicalib", T=64)
    assert all(s.allowance == 16 and s.burst == 5 for s in snn.neurons.values())
    assert snn.options["T"] == 64


def test_convert_never_tunes_and_points_to_tune(setting):
    network, calib, validation = setting
    with pytest.raises(TypeError, match=r"convert\(\) does not tune: call evsim.tune.tune"):
        evsim.convert(network, calib, method="spicalib", T=8, validation=validation)


def test_a_given_allowance_is_kept_while_the_percentile_is_tuned(setting):
    pytest.importorskip("optuna")
    network, calib, validation = setting
    found = tune(network, calib, validation, T=8, allowance=3.0, search=("percentile",),
                 n_trials=2)
    assert found.options.allowance == 3.0 and found.options.T == 8
    snn = evsim.convert(network, calib, method="spicalib", options=found.options)
    assert all(s.allowance == 3.0 for s in snn.neurons.values())
    assert 97.0 <= snn.options["percentile"] <= 99.99


def test_without_optuna_the_defaults_come_back_with_a_warning(setting, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_optuna(name, *args, **kwargs):
        if name == "optuna":
            raise ImportError("no optuna")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_optuna)
    network, calib, validation = setting
    with pytest.warns(UserWarning, match=r'needs optuna, an optional extra: pip install '
                      r'"evsim\[bo\]" \(in a clone of evsim: pip install -e "\.\[bo\]"\)'):
        result = tune(network, calib, validation, T=8, percentile=99.5)
    assert not result.optimised
    assert result.options == evsim.METHODS["spicalib"].replace(percentile=99.5, allowance=2.0,
                                                               T=8)
