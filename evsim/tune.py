"""Bayesian optimisation of conversion options (SpiCalib's p and A, methods.md §3).

The objective is the converted network's score at a fixed T on validation
data held out from the training data — never the test set: accuracy against
labels, the output's mean squared error against targets (for dense
prediction such as denoising), or a function of your own. Uses optuna's
TPE sampler (optional extra ``bo``); seeded, so a run is reproducible.
Without optuna, :func:`tune` warns and returns the defaults.

With ``client=`` (a ``dask.distributed.Client``; extra ``distributed``)
trials run on the cluster's workers, the network, calibration and validation
images sent once to every worker. Two schedules:

* ``parallel="rounds"`` (default, reproducible): TPE runs here; each round
  asks ``n_jobs`` trials, the workers score them, and the scores are told in
  trial order. The trials depend on ``seed`` and ``n_jobs`` only, not on the
  workers or their speed; ``n_jobs=1`` gives the local run's trials exactly.
* ``parallel="async"``: Optuna's Dask integration
  (``optuna_integration.DaskStorage``: the study lives on the scheduler).
  Each task samples its trial with its own TPE (seed ``seed + i`` for task i)
  from the trials finished so far and no worker waits for a round, but which
  trials have finished when one is sampled depends on timing: not
  reproducible.

:func:`tune` returns :class:`~evsim.options.ConversionOptions`; convert
with them (``evsim.convert(network, calibration, method, options=found.options)``).
Conversion itself never tunes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .extras import missing_extra_message, require
from .network import Network
from .options import ConversionOptions
from .errors import EvsimValueError
from .simulation_options import SimulationOptions

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
         n_trials: int = 20, seed: int = 0, n_jobs: int | None = None,
         engine: str | None = None, simulation: SimulationOptions | None = None,
         score: str | Callable = "accuracy", client=None, parallel: str = "rounds",
         **overrides) -> TuneResult:
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
        Trials, the sampler's seed, and trials run at once: threads (default
        1), or with ``client`` the trials of a round (default: the client's
        worker threads; give it to reproduce a run on another cluster).
    engine, simulation:
        How a trial is simulated: a
        :class:`~evsim.simulation_options.SimulationOptions` (default: its
        defaults, the event engine), and ``engine`` changed from it by name.
        Each trial keeps the output at ``T`` only, on one thread per task on a
        cluster.
    score:
        ``"accuracy"`` (maximised), ``"mse"`` of the mean output per step
        (minimised), or a function ``(SimResult, targets) -> float`` that is
        maximised (picklable, to run on a cluster).
    client, parallel:
        A ``dask.distributed.Client`` to run the trials on, and how:
        ``"rounds"`` (reproducible) or ``"async"`` (Optuna's DaskStorage; not
        reproducible). See the module docstring.

    Returns
    -------
    A :class:`TuneResult`; ``optimised`` is False when optuna is missing and
    the starting options were returned untried.
    """
    from .convert import prepare, resolve
    from .simulation_options import resolve_simulation

    simulation = resolve_simulation(simulation, **({} if engine is None else {"engine": engine}))
    _check_arguments(search, parallel, n_jobs, validation)
    images, targets = validation
    metric, measure, direction = _scoring(score)
    start = resolve(method, options, T, **overrides).replace(T=T)
    if "percentile" in search and start.normalization not in PERCENTILE_RANGE:
        raise EvsimValueError(f"cannot search the percentile of {start.normalization!r} "
                              "normalisation; it has none")
    try:
        import optuna
    except ImportError:
        warnings.warn(missing_extra_message("optuna", "tuning (evsim.tune)")
                      + "; using the starting options without optimisation", stacklevel=2)
        return TuneResult(start, float("nan"), metric, [], optimised=False)

    space = _Space(start, tuple(search), T, tuple(prepare(network).activations), per_layer)
    trial_run = _TrialRun(method, T, simulation, measure)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = (network, calibration_inputs, images, targets)
    if client is None:
        study = _tune_here(n_jobs, n_trials, seed, direction, space, trial_run, data)
    else:
        study = _tune_on(client, parallel, n_jobs, n_trials, seed, direction, space, trial_run,
                         data)
    best = space.options(optuna.trial.FixedTrial(study.best_params))
    trials = [{"params": t.params, "score": t.value} for t in study.trials]
    return TuneResult(best, float(study.best_value), metric, trials, tuned=tuple(search))


#: How trials run on a Dask client (:func:`tune`'s ``parallel``).
PARALLEL = ("rounds", "async")


def _check_arguments(search, parallel: str, n_jobs: int | None, validation) -> None:
    """Check what :func:`tune` searches, how it runs its trials and the validation data."""
    unknown = set(search) - {"percentile", "allowance"}
    if unknown:
        raise EvsimValueError(f"cannot search {sorted(unknown)}; search 'percentile' and/or "
                              "'allowance'")
    if parallel not in PARALLEL:
        raise EvsimValueError(f"parallel must be one of {PARALLEL}, got {parallel!r}")
    if n_jobs is not None and (isinstance(n_jobs, bool) or int(n_jobs) != n_jobs or n_jobs < 1):
        raise EvsimValueError(f"n_jobs must be a positive integer or None, got {n_jobs!r}")
    images, targets = validation
    if len(images) != len(targets) or len(images) == 0:
        raise EvsimValueError("validation must be (inputs, targets) of equal, non-zero length")


def _scoring(score: str | Callable) -> tuple[str, Callable, str]:
    """``(metric name, measure, optimisation direction)`` of :func:`tune`'s ``score``."""
    if callable(score):
        return getattr(score, "__name__", "custom"), score, "maximize"
    if score in SCORES:
        return (score, *SCORES[score])
    raise EvsimValueError(f"score must be one of {sorted(SCORES)} or a function, got {score!r}")


@dataclass(frozen=True)
class _Space:
    """The options a trial suggests: ``start`` with the searched ones replaced."""

    start: ConversionOptions
    search: tuple[str, ...]
    T: int
    layers: tuple[str, ...]
    per_layer: bool

    def options(self, trial) -> ConversionOptions:
        chosen = {}
        if "percentile" in self.search:
            if self.per_layer:
                p_range = PERCENTILE_RANGE[self.start.normalization]
                chosen["percentile"] = {name: trial.suggest_float(f"p_{name}", *p_range)
                                        for name in self.layers}
            else:
                chosen["percentile"] = trial.suggest_float(
                    "percentile", *PERCENTILE_RANGE[self.start.normalization])
        if "allowance" in self.search:
            chosen["allowance"] = self.T * trial.suggest_float("allowance_fraction",
                                                               *ALLOWANCE_RANGE)
        return self.start.replace(**chosen)


@dataclass(frozen=True)
class _TrialRun:
    """Scores one trial's options: convert, simulate T steps, measure (here or on a worker)."""

    method: str
    T: int
    simulation: SimulationOptions
    measure: Callable

    def __call__(self, network, calibration, images, targets, options) -> float:
        from .convert import convert
        from .simulate import simulate

        snn = convert(network, calibration, method=self.method, options=options)
        how = self.simulation.replace(checkpoints=[self.T],
                                      threads=1 if _on_worker() else self.simulation.threads)
        return self.measure(simulate(snn, images, T=self.T, options=how), targets)


def _on_worker() -> bool:
    """Whether this code runs in a Dask worker (whose threads each run a task)."""
    import sys

    if "distributed" not in sys.modules:
        return False
    try:
        sys.modules["distributed"].get_worker()
    except ValueError:
        return False
    return True


def _tune_here(n_jobs, n_trials, seed, direction, space, trial_run, data):
    """The study of ``n_trials`` trials scored here, ``n_jobs`` at once (default 1)."""
    import optuna

    study = optuna.create_study(direction=direction,
                                sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(lambda trial: trial_run(*data, space.options(trial)),
                   n_trials=n_trials, n_jobs=n_jobs or 1)
    return study


def _tune_on(client, parallel, n_jobs, n_trials, seed, direction, space, trial_run, data):
    """The study of ``n_trials`` trials scored on the workers of ``client``."""
    import optuna

    from .distributed import check_client

    distributed = check_client(client, "evsim.tune.tune(client=...)")
    shared = client.scatter(list(data), broadcast=True, hash=False)
    try:
        if parallel == "async":
            return _async_study(client, distributed, n_trials, seed, direction, space,
                                trial_run, shared)
        per_round = n_jobs or sum(client.nthreads().values()) or 1
        study = optuna.create_study(direction=direction,
                                    sampler=optuna.samplers.TPESampler(seed=seed))
        while len(study.trials) < n_trials:
            trials = [study.ask() for _ in range(min(per_round, n_trials - len(study.trials)))]
            futures = [client.submit(trial_run, *shared, space.options(trial), pure=False)
                       for trial in trials]
            scores = client.gather(futures)
            for trial, value in zip(trials, scores):
                study.tell(trial, value)
        return study
    finally:
        for future in shared:
            future.release()


def _async_trial(storage_name: str, study_name: str, seed: int, space, trial_run, network,
                 calibration, images, targets) -> None:
    """Run on a worker: one trial of the study kept on the scheduler."""
    import optuna
    from optuna_integration import DaskStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = DaskStorage(name=storage_name, register=False)
    study = optuna.load_study(study_name=study_name, storage=storage,
                              sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(lambda trial: trial_run(network, calibration, images, targets,
                                           space.options(trial)), n_trials=1)


def _async_study(client, distributed, n_trials, seed, direction, space, trial_run, shared):
    import optuna

    integration = require("optuna_integration", "tune(parallel='async')")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = integration.DaskStorage(client=client)
    study = optuna.create_study(direction=direction, storage=storage)
    futures = [client.submit(_async_trial, storage.name, study.study_name, seed + i, space,
                             trial_run, *shared, pure=False) for i in range(n_trials)]
    distributed.wait(futures)
    client.gather(futures)  # raises a trial's exception, if any
    return optuna.load_study(study_name=study.study_name, storage=storage)


__all__ = ["tune", "TuneResult", "SCORES", "PERCENTILE_RANGE", "ALLOWANCE_RANGE", "PARALLEL"]
