"""NQ (methods.md §5): noisy QCFS training activation and σ estimated with the dense engine."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from evsim.training import QCFS, NoisyQCFS, estimate_noise  # noqa: E402


def _dyadic(rng, shape, bits=3, kmax=8, low=None):
    low = -kmax if low is None else low
    return rng.integers(low, kmax + 1, size=shape).astype(np.float32) / 2 ** bits


def test_zero_sigma_is_exactly_qcfs_and_noise_is_absent_at_inference():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 5) * 4
    noisy, plain = NoisyQCFS(4, 2.0), QCFS(4, 2.0)
    noisy.train()
    assert torch.equal(noisy(x), plain(x))
    noisy.sigma.fill_(0.5)
    assert not torch.equal(noisy(x), plain(x))  # training mode with σ > 0 adds noise
    noisy.eval()
    assert torch.equal(noisy(x), plain(x)) and torch.equal(noisy(x), noisy(x))


def test_first_layer_sigma_is_zero_when_T_equals_L():
    """Constant analog input, T = L, v(0) = θ/2: the first layer's rate is the QCFS output."""
    rng = np.random.default_rng(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), NoisyQCFS(4, 2.0),
                                torch.nn.Conv2d(4, 4, 3, padding=1), NoisyQCFS(4, 2.0),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3))
    with torch.no_grad():
        for m in model:
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.copy_(torch.from_numpy(_dyadic(rng, tuple(m.weight.shape))))
                m.bias.copy_(torch.from_numpy(_dyadic(rng, tuple(m.bias.shape), kmax=4)))
    images = _dyadic(rng, (16, 1, 6, 6), low=0)
    sigmas = estimate_noise(model, images, (1, 6, 6), T=4)
    assert set(sigmas) == {"1", "3"}
    assert sigmas["1"] == 0.0
    assert sigmas["3"] > 0.0  # deeper layers see spiking, time-varying input
    assert float(model[1].sigma) == 0.0
    assert float(model[3].sigma) == pytest.approx(sigmas["3"], rel=1e-6)


def test_needs_a_noisy_activation():
    with pytest.raises(ValueError, match="no NoisyQCFS"):
        estimate_noise(torch.nn.Sequential(torch.nn.Linear(2, 2)), np.zeros((1, 2)), (2,))
