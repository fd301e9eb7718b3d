"""ConversionOptions: checked when made, presets as instances, convert's keyword overrides."""

import dataclasses
import json
import warnings

import numpy as np
import pytest

import evsim
from evsim.options import (BURST_MAX, METHODS, ConversionOptions, OptionError,
                           TunedForOtherTWarning, option_names, steps_message, tuned_for,
                           warn_if_tuned_for_other_T)


def _net():
    rng = np.random.default_rng(0)
    return evsim.Network.sequential((4,), [evsim.Dense(rng.normal(size=(6, 4))), evsim.ReLU(),
                                           evsim.Dense(rng.normal(size=(3, 6)))])


def test_presets_are_complete_frozen_instances():
    assert set(METHODS) == {"max", "percentile", "channelwise", "opi", "qcfs", "nq",
                            "spikeconverter", "spicalib"}
    for options in METHODS.values():
        assert isinstance(options, ConversionOptions)
    with pytest.raises(dataclasses.FrozenInstanceError):
        METHODS["opi"].burst = 2
    assert METHODS["max"].reset == "zero" and METHODS["opi"].normalization == "trained"
    assert METHODS["spicalib"].burst == 5 and METHODS["spicalib"].allowance is None


@pytest.mark.parametrize("burst", [2.5, 2.0, True, 0, -1, BURST_MAX + 1, 10 ** 6, "3", None])
def test_burst_must_be_an_integer_in_range(burst):
    with pytest.raises(OptionError, match=rf"burst \(Γ\) must be an integer in 1..{BURST_MAX}"):
        ConversionOptions(burst=burst)


@pytest.mark.parametrize("burst", [1, 5, BURST_MAX, np.int64(3)])
def test_burst_in_range_is_kept_as_int(burst):
    options = ConversionOptions(burst=burst)
    assert options.burst == int(burst) and type(options.burst) is int


@pytest.mark.parametrize("field, value, message", [
    ("normalization", "mean", "normalization must be one of max, percentile, braincog, trained"),
    ("reset", "soft", "reset must be one of subtract, zero"),
    ("max_pool", "avg", "max_pool must be one of lipooling, gate"),
    ("time_scheme", "async", "time_scheme must be one of synchronous, temporal, ilif"),
    ("initial_potential_unit", "volt", "initial_potential_unit must be one of"),
    ("percentile", 0.0, r"percentile must be a number in \(0, 100\]"),
    ("percentile", 100.5, r"percentile must be a number in \(0, 100\]"),
    ("percentile", float("nan"), r"percentile must be a number in \(0, 100\]"),
    ("percentile", {"relu": 101}, r"percentile for layer 'relu' must be in \(0, 100\]"),
    ("channelwise", "yes", "channelwise must be True or False"),
    ("initial_potential", float("inf"), "initial_potential must be a finite number"),
    ("allowance", -1.0, "allowance .* must be a finite number >= 0"),
    ("T", 2.0, "T must be a positive integer"),
    ("T", 0, "T must be a positive integer"),
])
def test_each_field_is_checked_with_its_name(field, value, message):
    with pytest.raises(OptionError, match=message) as caught:
        ConversionOptions(**{field: value})
    assert caught.value.option == field


def test_options_round_trip_through_json_and_into_the_network():
    options = METHODS["spicalib"].replace(percentile={"r1": 99.5}, allowance=3.0, T=8)
    assert ConversionOptions.from_dict(json.loads(json.dumps(options.as_dict()))) == options
    with pytest.raises(TypeError, match="unknown conversion option.*treshold"):
        options.replace(treshold=1.0)


def test_every_field_has_a_help_text():
    for f in dataclasses.fields(ConversionOptions):
        assert f.metadata["help"], f.name
    assert option_names()[0] == "normalization" and "T" in option_names()


def test_convert_takes_options_and_keyword_overrides():
    net = _net()
    x = np.random.default_rng(1).random((20, 4))
    by_keywords = evsim.convert(net, x, "max", burst=2, initial_potential=0.5)
    by_options = evsim.convert(net, x, "max", options=METHODS["max"].replace(
        burst=2, initial_potential=0.5))
    assert by_keywords.equals(by_options)
    assert by_keywords.options == METHODS["max"].replace(burst=2, initial_potential=0.5).as_dict()
    json.dumps(by_keywords.options)                            # files store it as JSON
    with pytest.raises(OptionError, match=r"burst \(Γ\) must be an integer"):
        evsim.convert(net, x, burst=2.5)
    with pytest.raises(OptionError, match="options must be a ConversionOptions"):
        evsim.convert(net, x, options={"burst": 2})


def test_convert_refuses_bad_inputs_with_clear_messages():
    net = _net()
    x = np.random.default_rng(1).random((20, 4))
    with pytest.raises(OptionError, match="calibration_inputs hold no image"):
        evsim.convert(net, x[:0])
    snn = evsim.convert(net, x)
    with pytest.raises(TypeError, match="already a SpikingNetwork: simulate it"):
        evsim.convert(snn, x)
    with pytest.raises(OptionError, match="batch_size must be a positive integer"):
        evsim.convert(net, x, batch_size=0)
    with pytest.raises(OptionError, match="T must be a positive integer"):
        evsim.convert(net, x, "spicalib", T=8.5)
    with pytest.raises(OptionError, match="chosen for T = 8"):
        evsim.convert(net, x, "spicalib", options=METHODS["spicalib"].replace(T=8), T=16)


def test_a_network_tuned_for_one_T_warns_at_another():
    net = _net()
    x = np.random.default_rng(1).random((20, 4))
    spicalib = evsim.convert(net, x, "spicalib", T=8)
    plain = evsim.convert(net, x, "percentile", T=8)         # nothing depends on T here
    assert plain.options["T"] is None and steps_message(plain, 64) == ""
    assert steps_message(spicalib, 8) == ""
    assert "chosen for T = 8" in steps_message(spicalib, 16)
    assert "earlier checkpoints (1, 2, 4)" in steps_message(spicalib, 8, [1, 2, 4, 8])
    with pytest.warns(TunedForOtherTWarning, match="runs for T = 16"):
        warn_if_tuned_for_other_T(spicalib, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_tuned_for_other_T(spicalib, 8, [8])


def test_per_layer_percentiles_keep_options_hashable_picklable_and_json_ready():
    import pickle

    options = ConversionOptions(percentile={"relu1": 99.0, "relu2": 99.5})
    assert pickle.loads(pickle.dumps(options)) == options
    assert hash(options) == hash(ConversionOptions(percentile={"relu2": 99.5, "relu1": 99.0}))
    assert options.percentile == {"relu1": 99.0, "relu2": 99.5}
    assert json.loads(json.dumps(options.as_dict()))["percentile"] == {"relu1": 99.0,
                                                                       "relu2": 99.5}
    with pytest.raises(TypeError):
        options.percentile["relu1"] = 1.0


def test_a_windowed_network_run_at_its_T_does_not_warn_about_checkpoints():
    net = _net()
    x = np.random.default_rng(1).random((20, 4))
    # options chosen for T = 8 (as evsim.tune returns them)
    temporal = evsim.convert(net, x, options=METHODS["spikeconverter"].replace(T=8))
    assert tuned_for(temporal) == 8
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = evsim.simulate(temporal, x[:3], T=8, engine="dense")
    assert result.checkpoints.tolist() == [8]
    with pytest.warns(TunedForOtherTWarning, match="runs for T = 16"):
        evsim.simulate(temporal, x[:3], T=16, engine="dense")
