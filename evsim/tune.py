"""Bayesian optimisation of conversion options (SpiCalib's p and A, methods.md §3).

The objective is the converted network's score at a fixed T on validation
data held out from the training data — never the test set: accuracy against
labels, the output's mean squared error against targets (for dense
prediction such as denoising), or a function of your own. Uses optuna's
TPE sampler (optional extra ``bo``); seeded, so a run is reproducible.
Without optuna, :func:`tune` warns and returns the defaults.

:func:`tune` returns :class:`~evsim.options.ConversionOptions`; convert
with them (``evsim.convert(network, calibration, method, options=found.options)``).
Conversion itself never tunes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .extras import missing_extra_message
from .network import Network
from .options import ConversionOptions

#: Search ranges of the percentile p (per cent), by normalisation: BrainCog's rule takes p of
#: all values, zeros included, and the published λ lies near p = 97-99.9 % of them.
PERCENTILE_RANGE = {"percentile": (99.0, 99.999), "braincog": (97.0, 99.99)}
#: Search range of the allowance A, as a fraction of T (the best A measured lay at T/8-T/4).
ALLOWANCE_RANGE = (0.05, 1.0)


def _accuracy(result, labels: np.ndarray) -> float:
    return float(result.accuracy(labels)[-1])


def _mse(result, targets: np.ndarray) -> float:
    return float(np.mean((result.mean_output() - targets) ** 2))


#: Named scores: (function of (SimResult, targets), optimisation direction).
SCORES: dict[str, tuple[Callable, str]] = {"accuracy": (_accuracy, "maximize"),
                                           "mse": (_mse, "minimize")}


@dataclass(frozen=True)
class TuneResult:
    """The best options found, their validation score, and every trial.

    ``options`` are complete :class:`~evsim.options.ConversionOptions` with
    ``T`` set to the steps they were scored at; ``score`` is in the units of
    ``metric`` (accuracy as a fraction, or MSE); each trial is
    ``{"params": ..., "score": ...}``; ``tuned`` names the options searched.
    """

    options: ConversionOptions
    score: float
    metric: str = "accuracy"
    trials: list[dict] = field(default_factory=list)
    optimised: bool = True
    tuned: tuple[str, ...] = ()


def tune(network: Network, calibration_inputs: np.ndarray,
         validation: tuple[np.ndarray, np.ndarray], *, T: int, method: str = "spicalib",
         options: ConversionOptions | None = None,
         search: tuple[str, ...] = ("percentile", "allowance"), per_layer: bool = False,
         n_trials: int = 20, seed: int = 0, n_jobs: int = 1, engine: str = "event",
         score: str | Callable = "accuracy", **overrides) -> TuneResult:
    """Search conversion options that optimise a validation score at ``T`` steps.

    Parameters
    ----------
    network, calibration_inputs:
        As for :func:`evsim.convert`.
    validation:
        ``(inputs, targets)`` held out from the training data: labels (N,) for
        ``score="accuracy"``, target outputs (N, *output shape) for ``"mse"``.
    T:
        Time steps of the simulation that scores a trial.
    method, options, **overrides:
        The starting options, as for :func:`evsim.convert`: the ``method``
        preset (or ``options``) with single ``overrides``; the searched
        options replace theirs in every trial.
    search:
        Options to search: ``"percentile"`` (p in :data:`PERCENTILE_RANGE` of
        the normalisation: [99, 99.999] for ``"percentile"``, [97, 99.99] for
        ``"braincog"``, SpiCalib's) and/or ``"allowance"`` (A in [0.05 T, T]).
    per_layer:
        One percentile per activation layer instead of one for all.
    n_trials, seed, n_jobs:
        Trials, the sampler's seed, and trials run in parallel (threads).
    score:
        ``"accuracy"`` (maximised), ``"mse"`` of the mean output per step
        (minimised), or a function ``(SimResult, targets) -> float`` that is
        maximised.

    Returns
    -------
    A :class:`TuneResult`; ``optimised`` is False when optuna is missing and
    the starting options were returned untried.
    """
    from .convert import convert, prepare, resolve
    from .simulate import simulate

    unknown = set(search) - {"percentile", "allowance"}
    if unknown:
        raise ValueError(f"cannot search {sorted(unknown)}; search 'percentile' and/or "
                         "'allowance'")
    images, targets = validation
    if len(images) != len(targets) or len(images) == 0:
        raise ValueError("validation must be (inputs, targets) of equal, non-zero length")
    if callable(score):
        metric, (measure, direction) = getattr(score, "__name__", "custom"), (score, "maximize")
    elif score in SCORES:
        metric, (measure, direction) = score, SCORES[score]
    else:
        raise ValueError(f"score must be one of {sorted(SCORES)} or a function, got {score!r}")
    start = resolve(method, options, T, **overrides).replace(T=T)
    if "percentile" in search and start.normalization not in PERCENTILE_RANGE:
        raise ValueError(f"cannot search the percentile of {start.normalization!r} "
                         "normalisation; it has none")
    p_range = PERCENTILE_RANGE.get(start.normalization)
    try:
        import optuna
    except ImportError:
        warnings.warn(missing_extra_message("optuna", "tuning (evsim.tune)")
                      + "; using the starting options without optimisation", stacklevel=2)
        return TuneResult(start, float("nan"), metric, [], optimised=False)

    layers = prepare(network).activations

    def suggest(trial) -> ConversionOptions:
        chosen = {}
        if "percentile" in search:
            if per_layer:
                chosen["percentile"] = {name: trial.suggest_float(f"p_{name}", *p_range)
                                        for name in layers}
            else:
                chosen["percentile"] = trial.suggest_float("percentile", *p_range)
        if "allowance" in search:
            chosen["allowance"] = T * trial.suggest_float("allowance_fraction",
                                                          *ALLOWANCE_RANGE)
        return start.replace(**chosen)

    def objective(trial) -> float:
        snn = convert(network, calibration_inputs, method=method, options=suggest(trial))
        result = simulate(snn, images, T=T, engine=engine, checkpoints=[T])
        return measure(result, targets)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=direction,
                                sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials, n_jobs=n_jobs)
    best = suggest(optuna.trial.FixedTrial(study.best_params))
    trials = [{"params": t.params, "score": t.value} for t in study.trials]
    return TuneResult(best, float(study.best_value), metric, trials, tuned=tuple(search))


__all__ = ["tune", "TuneResult", "SCORES", "PERCENTILE_RANGE", "ALLOWANCE_RANGE"]
