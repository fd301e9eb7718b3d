"""OPI (methods.md §2): the expected conversion error is (θ/T)(α − 1/2) and the MSE
(θ/T)² ((1 − α)³ + α³) / 3, so v(0) = θ/2 is optimal; checked by Monte Carlo on the engine."""

import numpy as np
import pytest

import evsim
from evsim import Dense, NeuronSpec, ReLU, SpikingNetwork


def _errors(alpha, T=8, theta=1.0, n=40_000, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.uniform(0, theta, n)  # the fractional part of Tz/θ is then uniform
    net = evsim.Network.sequential((1,), [Dense(np.ones((n, 1)), z), ReLU(),
                                          Dense(np.ones((1, n)))])
    snn = SpikingNetwork(net, {"relu1": NeuronSpec(np.float64(theta), np.float64(alpha * theta))})
    r = evsim.simulate(snn, np.zeros((1, 1)), T=T, per_image_counts=True, dtype=np.float64,
                       engine="event")
    rate = theta * r.spike_counts["relu1"][0] / T
    err = rate - np.clip(z, 0, theta)
    return err.mean(), (err ** 2).mean()


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 0.75])
def test_mean_and_mse_follow_the_formulas(alpha):
    T, theta = 8, 1.0
    mean, mse = _errors(alpha, T, theta)
    step = theta / T
    assert mean == pytest.approx(step * (alpha - 0.5), abs=0.01 * step)
    assert mse == pytest.approx(step ** 2 * ((1 - alpha) ** 3 + alpha ** 3) / 3, rel=0.03)


def test_half_threshold_minimises_the_mse_and_is_four_times_better_than_zero():
    alphas = np.linspace(0, 1, 11)
    mses = [_errors(a)[1] for a in alphas]
    assert alphas[int(np.argmin(mses))] == 0.5
    assert mses[0] / mses[5] == pytest.approx(4.0, rel=0.05)
