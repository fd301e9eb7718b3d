"""Bayesian optimisation of conversion options (SpiCalib's p and A, methods.md §3).

The objective is the converted network's accuracy at a fixed T on labelled
validation images held out from the training data — never the test set.
Uses optuna's TPE sampler (optional extra ``bo``); seeded, so a run is
reproducible. Without optuna, :func:`tune` warns and returns the defaults.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .network import Network

#: Search ranges: the percentile p (per cent) and the allowance A as a fraction of T.
PERCENTILE_RANGE = (99.0, 99.999)
ALLOWANCE_RANGE = (0.05, 1.0)


@dataclass(frozen=True)
class TuneResult:
    """The best options found, their validation accuracy, and every trial."""

    options: dict
    accuracy: float
    trials: list[dict] = field(default_factory=list)
    optimised: bool = True


def tune(network: Network, calibration_inputs: np.ndarray,
         validation: tuple[np.ndarray, np.ndarray], *, T: int, method: str = "spicalib",
         search: tuple[str, ...] = ("percentile", "allowance"), per_layer: bool = False,
         n_trials: int = 20, seed: int = 0, n_jobs: int = 1, engine: str = "event",
         **options) -> TuneResult:
    """Search conversion options that maximise validation accuracy at ``T`` steps.

    Parameters
    ----------
    network, calibration_inputs:
        As for :func:`evsim.convert`.
    validation:
        ``(images, labels)`` held out from the training data.
    T:
        Time steps of the simulation that scores a trial.
    method:
        The conversion preset whose options are searched.
    search:
        Options to search: ``"percentile"`` (p in [99, 99.999]) and/or
        ``"allowance"`` (A in [0.05 T, T]).
    per_layer:
        One percentile per activation layer instead of one for all.
    n_trials, seed, n_jobs:
        Trials, the sampler's seed, and trials run in parallel (threads).
    **options:
        Fixed conversion options passed to every trial.

    Returns
    -------
    A :class:`TuneResult`; ``optimised`` is False when optuna is missing and
    the defaults were returned untried.
    """
    from .convert import convert, prepare
    from .simulate import simulate

    unknown = set(search) - {"percentile", "allowance"}
    if unknown:
        raise ValueError(f"cannot search {sorted(unknown)}; search 'percentile' and/or "
                         "'allowance'")
    images, labels = validation
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError("validation must be (images, labels) of equal, non-zero length")
    try:
        import optuna
    except ImportError:
        warnings.warn("optuna is not installed (pip install evsim[bo]): using the default "
                      "options without optimisation", stacklevel=2)
        return TuneResult(dict(options), float("nan"), [], optimised=False)

    layers = prepare(network).activations

    def suggest(trial) -> dict:
        chosen = dict(options)
        if "percentile" in search:
            if per_layer:
                chosen["percentile"] = {name: trial.suggest_float(f"p_{name}", *PERCENTILE_RANGE)
                                        for name in layers}
            else:
                chosen["percentile"] = trial.suggest_float("percentile", *PERCENTILE_RANGE)
        if "allowance" in search:
            chosen["allowance"] = T * trial.suggest_float("allowance_fraction",
                                                          *ALLOWANCE_RANGE)
        return chosen

    def objective(trial) -> float:
        chosen = suggest(trial)
        snn = convert(network, calibration_inputs, method=method, T=T, **chosen)
        result = simulate(snn, images, T=T, engine=engine, checkpoints=[T])
        return float(result.accuracy(labels)[-1])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials, n_jobs=n_jobs)
    best = suggest(optuna.trial.FixedTrial(study.best_params))
    trials = [{"params": t.params, "accuracy": t.value} for t in study.trials]
    return TuneResult(best, float(study.best_value), trials)


__all__ = ["tune", "TuneResult", "PERCENTILE_RANGE", "ALLOWANCE_RANGE"]
